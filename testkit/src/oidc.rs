//! A fake OpenID provider on loopback (wiremock on `127.0.0.1`), with state the test changes
//! while the portal runs: whether discovery answers, which keys the JWKS publishes and which
//! one signs, the ID token's and userinfo's claims, whether it sends RFC 9207's `iss`. Its
//! flows are stateless as the Google fake's are: the authorize endpoint's `code` is the PKCE
//! challenge and the nonce, so a test (or a browser through `/consent`) completes them.

use std::sync::{Arc, Mutex};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use openidconnect::core::CoreRsaPrivateSigningKey;
use openidconnect::{JsonWebKeyId, PrivateSigningKey};
use rocket::figment::Figment;
use serde_json::{json, Map, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::fakes::{escape, html, query};

pub use crate::fakes::{ATTACKER_KEY as OTHER_KEY, KEY};
pub const OIDC_SECRET: &str = "oidc-client-secret-never-shown";
/// The access token it hands out, and the only one its userinfo answers.
pub const OIDC_ACCESS_TOKEN: &str = "oidc-access-token";

/// What the fake does, changeable while it runs.
pub struct State {
    /// Discovery and JWKS answer (`false`: 503, a provider that is down).
    pub up: bool,
    /// The keys the JWKS publishes: (PEM, kid).
    pub published: Vec<(&'static str, String)>,
    /// The key and kid that sign.
    pub signing: (&'static str, String),
    /// Advertise `authorization_response_iss_parameter_supported` and add `iss` to callbacks.
    pub iss_parameter: bool,
    /// Claims the ID token carries beyond `iss`, `aud`, `sub`, `nonce`, `iat`, `exp`.
    pub id_claims: Map<String, Value>,
    /// What userinfo answers (its `sub` included).
    pub userinfo: Map<String, Value>,
    pub sub: String,
    /// Publish an `end_session_endpoint`.
    pub end_session: bool,
    /// Microsoft's multi-tenant shape: the portal is configured with `{uri}/common/v2.0`, the
    /// document's issuer is `{uri}/{tenantid}/v2.0`, and the ID token carries `tid` = `.0`
    /// and `iss` = `{uri}/.1/v2.0`.
    pub tenant: Option<(String, String)>,
}

pub struct FakeOidc {
    pub server: MockServer,
    pub slug: String,
    pub client_id: String,
    pub state: Arc<Mutex<State>>,
}

impl FakeOidc {
    /// A provider named by `slug` whose account is `email` (verified), `sub` = `sub-<slug>`.
    pub async fn start(slug: &str) -> FakeOidc {
        let server = MockServer::start().await;
        let sub = format!("sub-{slug}");
        let email = format!("{slug}.user@example.com");
        let mut id_claims = Map::new();
        id_claims.insert("email".into(), json!(email));
        id_claims.insert("email_verified".into(), json!(true));
        id_claims.insert("name".into(), json!(format!("{slug} user")));
        id_claims.insert("preferred_username".into(), json!(format!("{slug}-user")));
        id_claims.insert("sid".into(), json!(format!("sid-{slug}-1")));
        let mut userinfo = Map::new();
        userinfo.insert("sub".into(), json!(sub));
        let state = State {
            up: true,
            published: vec![(KEY, "key-1".into())],
            signing: (KEY, "key-1".into()),
            iss_parameter: false,
            id_claims,
            userinfo,
            sub,
            end_session: true,
            tenant: None,
        };
        let fake = FakeOidc {
            server,
            slug: slug.to_owned(),
            client_id: format!("{slug}-client"),
            state: Arc::new(Mutex::new(state)),
        };
        fake.mount().await;
        fake
    }

    pub fn issuer(&self) -> String {
        self.server.uri()
    }

    /// What the portal is configured with: the issuer, or in the multi-tenant shape the
    /// `common` endpoint.
    pub fn configured_issuer(&self) -> String {
        match self.state.lock().unwrap().tenant {
            Some(_) => format!("{}/common/v2.0", self.issuer()),
            None => self.issuer(),
        }
    }

    pub fn with<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        change(&mut self.state.lock().unwrap())
    }

    async fn mount(&self) {
        let issuer = self.issuer();
        let state = Arc::clone(&self.state);
        let discovery_issuer = issuer.clone();
        Mock::given(method("GET"))
            .and(path_regex(r"^(/common/v2\.0)?/\.well-known/openid-configuration$"))
            .respond_with(move |_: &Request| {
                let state = state.lock().unwrap();
                if !state.up {
                    return ResponseTemplate::new(503);
                }
                let i = &discovery_issuer;
                let issuer = match &state.tenant {
                    Some(_) => format!("{i}/{{tenantid}}/v2.0"),
                    None => i.clone(),
                };
                let mut doc = json!({
                    "issuer": issuer,
                    "authorization_endpoint": format!("{i}/authorize"),
                    "token_endpoint": format!("{i}/token"),
                    "userinfo_endpoint": format!("{i}/userinfo"),
                    "jwks_uri": format!("{i}/jwks"),
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                    "backchannel_logout_supported": true,
                    "backchannel_logout_session_supported": true,
                    "authorization_response_iss_parameter_supported": state.iss_parameter,
                });
                if state.end_session {
                    doc["end_session_endpoint"] = json!(format!("{i}/logout"));
                }
                ResponseTemplate::new(200).set_body_json(doc)
            })
            .mount(&self.server)
            .await;
        let state = Arc::clone(&self.state);
        Mock::given(method("GET"))
            .and(path("/jwks"))
            .respond_with(move |_: &Request| {
                let state = state.lock().unwrap();
                if !state.up {
                    return ResponseTemplate::new(503);
                }
                let keys: Vec<Value> =
                    state.published.iter().map(|(pem, kid)| public_jwk(pem, kid)).collect();
                ResponseTemplate::new(200).set_body_json(json!({ "keys": keys }))
            })
            .mount(&self.server)
            .await;
        let (state, client_id, token_issuer) =
            (Arc::clone(&self.state), self.client_id.clone(), issuer.clone());
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(move |request: &Request| match crate::fakes::redeem_code(request) {
                Ok(nonce) => {
                    let state = state.lock().unwrap();
                    let id_token = sign_id_token(&state, &token_issuer, &client_id, &nonce);
                    ResponseTemplate::new(200).set_body_json(json!({
                        "access_token": OIDC_ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600,
                        "id_token": id_token,
                    }))
                }
                Err(why) => ResponseTemplate::new(400)
                    .set_body_json(json!({"error": "invalid_grant", "error_description": why})),
            })
            .mount(&self.server)
            .await;
        let state = Arc::clone(&self.state);
        Mock::given(method("GET"))
            .and(path("/userinfo"))
            .respond_with(move |request: &Request| {
                let bearer = request.headers.get("authorization").and_then(|v| v.to_str().ok());
                if bearer != Some(&format!("Bearer {OIDC_ACCESS_TOKEN}")) {
                    return ResponseTemplate::new(401);
                }
                ResponseTemplate::new(200)
                    .set_body_json(Value::Object(state.lock().unwrap().userinfo.clone()))
            })
            .mount(&self.server)
            .await;
        // For a browser: the consent page, and back with the code (and `iss`).
        let (state, name, client_id) = (Arc::clone(&self.state), self.slug.clone(), self.client_id.clone());
        let consent_issuer = issuer.clone();
        Mock::given(method("GET"))
            .and(path("/authorize"))
            .respond_with(move |request: &Request| {
                let iss = state.lock().unwrap().iss_parameter.then(|| consent_issuer.clone());
                consent_page(&name, &client_id, request, iss)
            })
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path("/logout"))
            .respond_with(|request: &Request| {
                let back =
                    query(request.url.as_str()).get("post_logout_redirect_uri").cloned().unwrap_or_default();
                html(format!("<h1>Signed out of the provider</h1><a href=\"{}\">Back</a>", escape(&back)))
            })
            .mount(&self.server)
            .await;
    }

    /// The code the provider would hand back for the flow that `authorize_url` starts.
    pub fn code_for(authorize_url: &str) -> String {
        let q = query(authorize_url);
        format!("{}.{}", q["code_challenge"], q.get("nonce").cloned().unwrap_or_default())
    }

    /// A logout token from this provider (signed with the signing key unless `key` says),
    /// with `claims` merged over valid ones for `sub` and `sid` (a `null` removes one).
    pub fn logout_token(&self, claims: Value, key: Option<&str>) -> String {
        let state = self.state.lock().unwrap();
        let now = chrono::Utc::now().timestamp();
        let mut payload = json!({
            "iss": self.issuer(), "aud": self.client_id, "iat": now, "exp": now + 120,
            "jti": format!("jti-{now}"), "sub": state.sub,
            "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
        });
        for (name, value) in claims.as_object().cloned().unwrap_or_default() {
            if value.is_null() {
                payload.as_object_mut().unwrap().remove(&name);
            } else {
                payload[name] = value;
            }
        }
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(state.signing.1.clone());
        header.typ = Some("logout+jwt".into());
        let pem = key.unwrap_or(state.signing.0);
        jsonwebtoken::encode(&header, &payload, &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()).unwrap()
    }

    /// The portal's `oauth.<slug>` settings for this fake, with callbacks to `site`.
    pub fn settings(&self, site: &str) -> Vec<(&'static str, String)> {
        vec![
            ("kind", "oidc".to_owned()),
            ("name", display_name(&self.slug)),
            ("issuer", self.configured_issuer()),
            ("client_id", self.client_id.clone()),
            ("client_secret", OIDC_SECRET.to_owned()),
            ("redirect_uri", format!("{site}/auth/{}", self.slug)),
        ]
    }

    /// `ROCKET_OAUTH` (as `fakes::rocket_oauth` makes it) with this provider added.
    pub fn add_to_rocket_oauth(&self, rocket_oauth: &str, site: &str) -> String {
        let pairs: Vec<String> =
            self.settings(site).iter().map(|(key, value)| format!("{key}=\"{value}\"")).collect();
        let table = format!("{}={{{}}}", self.slug, pairs.join(","));
        let trimmed = rocket_oauth.trim();
        let inner = trimmed.strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or(trimmed);
        if inner.is_empty() {
            format!("{{{table}}}")
        } else {
            format!("{{{inner},{table}}}")
        }
    }

    pub fn figment(&self, figment: Figment) -> Figment {
        self.settings("http://127.0.0.1:8000")
            .into_iter()
            .fold(figment, |f, (key, value)| f.merge((format!("oauth.{}.{key}", self.slug), value)))
    }
}

/// "Alpha" for `alpha`: the button's name.
pub fn display_name(slug: &str) -> String {
    let mut chars = slug.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn public_jwk(pem: &str, kid: &str) -> Value {
    let key = CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new(kid.into()))).unwrap();
    serde_json::to_value(key.as_verification_key()).unwrap()
}

fn sign_id_token(state: &State, issuer: &str, client_id: &str, nonce: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut payload = json!({
        "iss": issuer, "aud": client_id, "sub": state.sub, "nonce": nonce, "iat": now, "exp": now + 3600,
    });
    if let Some((tid, iss_tid)) = &state.tenant {
        payload["tid"] = json!(tid);
        payload["iss"] = json!(format!("{issuer}/{iss_tid}/v2.0"));
    }
    for (name, value) in &state.id_claims {
        payload[name] = value.clone();
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(state.signing.1.clone());
    jsonwebtoken::encode(&header, &payload, &EncodingKey::from_rsa_pem(state.signing.0.as_bytes()).unwrap())
        .unwrap()
}

/// The authorize endpoint for a browser: "Allow" goes back with the code, state (and iss).
fn consent_page(name: &str, client_id: &str, request: &Request, iss: Option<String>) -> ResponseTemplate {
    let q = query(request.url.as_str());
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    if get("client_id") != client_id || get("code_challenge_method") != "S256" || get("state").is_empty() {
        return ResponseTemplate::new(400).set_body_string("fake provider: a bad authorization request");
    }
    let mut back = oauth2::url::Url::parse(get("redirect_uri")).unwrap();
    back.query_pairs_mut()
        .append_pair("code", &format!("{}.{}", get("code_challenge"), get("nonce")))
        .append_pair("state", get("state"));
    if let Some(iss) = iss {
        back.query_pairs_mut().append_pair("iss", &iss);
    }
    let name = escape(&display_name(name));
    html(format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{name} (fake) · Sign in</title></head>
<body><h1>{name} (fake)</h1><p>Sign in to <strong>{client}</strong>?</p>
<a id="allow" href="{href}">Allow</a></body></html>"#,
        client = escape(client_id),
        href = escape(back.as_str()),
    ))
}
