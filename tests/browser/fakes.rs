//! Fake Google and GitHub that a browser can visit (wiremock on `127.0.0.1`, a different site
//! from the portal's `localhost`), and "elsewhere": a third server playing an attacker's
//! site and a small SameSite laboratory.
//!
//! The providers are stateless: the authorize endpoint renders a consent page whose Allow
//! button goes (through the provider's own `/consent`, which redirects as real providers do)
//! back to `redirect_uri` with a `code` made of the PKCE challenge and the OIDC nonce. The
//! token endpoint checks the verifier against that challenge and, for Google, signs an ID
//! token carrying that nonce with `tests/data/google-test-key.pem`.

use std::collections::HashMap;

use oauth2::url::{form_urlencoded, Url};
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey,
};
use openidconnect::{
    Audience, EmptyAdditionalClaims, EndUserEmail, EndUserName, IssuerUrl, JsonWebKeyId, LocalizedClaim,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub const GOOGLE_CLIENT_ID: &str = "browser-test-google";
pub const GOOGLE_CLIENT_SECRET: &str = "browser-test-google-secret";
pub const GITHUB_CLIENT_ID: &str = "browser-test-github";
pub const GITHUB_CLIENT_SECRET: &str = "browser-test-github-secret";

/// Who the fake Google says you are.
pub const GOOGLE_EMAIL: &str = "grace.hopper@example.com";
/// Who the fake GitHub says you are.
pub const GITHUB_LOGIN: &str = "octocat";
pub const GITHUB_EMAIL: &str = "octo@example.com";

const GITHUB_TOKEN: &str = "gho_browser-test-token";
const KEY: &str = include_str!("../data/google-test-key.pem");

fn html(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("Cache-Control", "no-store")
        .set_body_raw(body, "text/html; charset=utf-8")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn query(request: &Request) -> HashMap<String, String> {
    request.url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn form(request: &Request) -> HashMap<String, String> {
    form_urlencoded::parse(&request.body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// The provider's authorize endpoint: checks the request and renders "Allow" / "Deny".
fn consent_page(provider: &str, client_id: &str, account: &str, request: &Request) -> ResponseTemplate {
    let q = query(request);
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let problem = if get("client_id") != client_id {
        Some("unknown client_id")
    } else if get("response_type") != "code" {
        Some("response_type must be code")
    } else if get("code_challenge_method") != "S256" || get("code_challenge").is_empty() {
        Some("PKCE S256 is required")
    } else if get("state").is_empty() || Url::parse(get("redirect_uri")).is_err() {
        Some("state and redirect_uri are required")
    } else {
        None
    };
    if let Some(problem) = problem {
        return ResponseTemplate::new(400).set_body_string(format!("{provider} (fake): {problem}"));
    }
    // Stateless: the code carries what the token endpoint will need to check and sign.
    let code = format!("{}.{}", get("code_challenge"), get("nonce"));
    let hidden =
        |name: &str, value: &str| format!(r#"<input type="hidden" name="{name}" value="{}">"#, escape(value));
    html(format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{provider} (fake) · Sign in</title></head>
<body>
<h1>{provider} (fake)</h1>
<p>The application <strong>{client}</strong> wants to know your name and email address.</p>
<p>You are signed in to {provider} as <strong>{account}</strong>.</p>
<form method="post" action="/consent">
{redirect}{state}{code}
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
</body></html>"#,
        provider = escape(provider),
        client = escape(client_id),
        account = escape(account),
        redirect = hidden("redirect_uri", get("redirect_uri")),
        state = hidden("state", get("state")),
        code = hidden("code", &code),
    ))
}

/// `POST /consent`: back to the application, as the provider's redirect.
fn consent_decision(request: &Request) -> ResponseTemplate {
    let f = form(request);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let Ok(mut back) = Url::parse(get("redirect_uri")) else {
        return ResponseTemplate::new(400).set_body_string("no redirect_uri");
    };
    if get("decision") == "allow" {
        back.query_pairs_mut().append_pair("code", get("code")).append_pair("state", get("state"));
    } else {
        back.query_pairs_mut().append_pair("error", "access_denied").append_pair("state", get("state"));
    }
    ResponseTemplate::new(302).insert_header("Location", back.as_str())
}

/// Checks the token request's PKCE verifier against the challenge inside the code; returns
/// the nonce that was inside it too, or why the grant is refused.
fn redeem(request: &Request) -> Result<String, &'static str> {
    let f = form(request);
    if f.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return Err("grant_type must be authorization_code");
    }
    let (Some(code), Some(verifier)) = (f.get("code"), f.get("code_verifier")) else {
        return Err("code and code_verifier are required");
    };
    let Some((challenge, nonce)) = code.split_once('.') else {
        return Err("not a code of ours");
    };
    let computed = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.clone()));
    if computed.as_str() != challenge {
        return Err("the PKCE verifier does not match");
    }
    Ok(nonce.to_owned())
}

fn invalid_grant(why: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant", "error_description": why}))
}

fn signing_key() -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(KEY, Some(JsonWebKeyId::new("browser-test-key".into())))
        .expect("the test key parses")
}

/// Google, through OpenID Connect: discovery, JWKS, consent page, token endpoint.
pub struct FakeGoogle {
    server: MockServer,
}

impl FakeGoogle {
    pub async fn start() -> FakeGoogle {
        let server = MockServer::start().await;
        let base = server.uri();
        let discovery = json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/o/oauth2/v2/auth"),
            "token_endpoint": format!("{base}/token"),
            "jwks_uri": format!("{base}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        Mock::given(method("GET"))
            .and(path("/.well-known/openid-configuration"))
            .respond_with(ResponseTemplate::new(200).set_body_json(discovery))
            .mount(&server)
            .await;
        let jwks = CoreJsonWebKeySet::new(vec![signing_key().as_verification_key()]);
        Mock::given(method("GET"))
            .and(path("/jwks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(&jwks))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/o/oauth2/v2/auth"))
            .respond_with(|r: &Request| consent_page("Google", GOOGLE_CLIENT_ID, GOOGLE_EMAIL, r))
            .mount(&server)
            .await;
        Mock::given(method("POST")).and(path("/consent")).respond_with(consent_decision).mount(&server).await;
        let issuer = base.clone();
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(move |r: &Request| match redeem(r) {
                Ok(nonce) => ResponseTemplate::new(200).set_body_json(json!({
                    "access_token": "ya29.browser-test",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "id_token": id_token(&issuer, &nonce),
                })),
                Err(why) => invalid_grant(why),
            })
            .mount(&server)
            .await;
        FakeGoogle { server }
    }

    /// `http://127.0.0.1:PORT`: the issuer.
    pub fn base(&self) -> String {
        self.server.uri()
    }
}

/// A real RS256 ID token for Grace, for this client, with this nonce.
fn id_token(issuer: &str, nonce: &str) -> String {
    let now = chrono::Utc::now();
    let mut name = LocalizedClaim::new();
    name.insert(None, EndUserName::new("Grace Hopper".into()));
    let standard = StandardClaims::new(SubjectIdentifier::new("1001".into()))
        .set_email(Some(EndUserEmail::new(GOOGLE_EMAIL.into())))
        .set_email_verified(Some(true))
        .set_name(Some(name));
    let claims = CoreIdTokenClaims::new(
        IssuerUrl::new(issuer.to_owned()).expect("the issuer is a URL"),
        vec![Audience::new(GOOGLE_CLIENT_ID.into())],
        now + chrono::Duration::minutes(10),
        now,
        standard,
        EmptyAdditionalClaims {},
    )
    .set_nonce(Some(Nonce::new(nonce.to_owned())));
    CoreIdToken::new(claims, &signing_key(), CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, None, None)
        .expect("the ID token is signed")
        .to_string()
}

/// GitHub, through OAuth 2.0: consent page, token endpoint, `/user` and `/user/emails`.
pub struct FakeGithub {
    server: MockServer,
}

impl FakeGithub {
    pub async fn start() -> FakeGithub {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/login/oauth/authorize"))
            .respond_with(|r: &Request| consent_page("GitHub", GITHUB_CLIENT_ID, GITHUB_LOGIN, r))
            .mount(&server)
            .await;
        Mock::given(method("POST")).and(path("/consent")).respond_with(consent_decision).mount(&server).await;
        Mock::given(method("POST"))
            .and(path("/login/oauth/access_token"))
            .respond_with(|r: &Request| match redeem(r) {
                Ok(_) => ResponseTemplate::new(200).set_body_json(json!({
                    "access_token": GITHUB_TOKEN, "token_type": "bearer", "scope": "read:user,user:email",
                })),
                Err(why) => invalid_grant(why),
            })
            .mount(&server)
            .await;
        let bearer = format!("Bearer {GITHUB_TOKEN}");
        Mock::given(method("GET"))
            .and(path("/user"))
            .and(header("authorization", bearer.as_str()))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"id": 4242, "login": GITHUB_LOGIN, "name": "The Octocat"})),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/user/emails"))
            .and(header("authorization", bearer.as_str()))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!([{"email": GITHUB_EMAIL, "primary": true, "verified": true}])),
            )
            .mount(&server)
            .await;
        FakeGithub { server }
    }

    /// `http://127.0.0.1:PORT`: authorize, token and API all live here.
    pub fn base(&self) -> String {
        self.server.uri()
    }
}

/// Another server, visited both as `127.0.0.1` and as `localhost` (two different sites).
pub struct Elsewhere {
    server: MockServer,
}

impl Elsewhere {
    pub async fn start() -> Elsewhere {
        Elsewhere { server: MockServer::start().await }
    }

    pub fn on_127(&self, route: &str) -> String {
        format!("{}{route}", self.server.uri())
    }

    pub fn on_localhost(&self, route: &str) -> String {
        self.on_127(route).replacen("127.0.0.1", "localhost", 1)
    }

    /// An attacker's page on `127.0.0.1` that, once opened, submits a login form with valid
    /// credentials to `action` (login CSRF: signing the victim in as the attacker).
    pub async fn serve_login_csrf(&self, action: &str, username: &str, password: &str) {
        let page = format!(
            r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Win a prize</title></head>
<body>
<h1>Win a prize</h1>
<form id="f" method="post" action="{action}">
<input type="hidden" name="username" value="{username}">
<input type="hidden" name="password" value="{password}">
<input type="hidden" name="next" value="/welcome">
</form>
<script>document.getElementById("f").submit();</script>
</body></html>"#,
            action = escape(action),
            username = escape(username),
            password = escape(password),
        );
        Mock::given(method("GET")).and(path("/prize")).respond_with(html(page)).mount(&self.server).await;
    }

    /// The SameSite laboratory. `/lab/start` (open it on `127.0.0.1`) links to
    /// `localhost/lab/set`, which sets a `Strict` and a `Lax` cookie and redirects to
    /// `/lab/show`, which prints the `Cookie` header it received. This is the shape of an
    /// OAuth callback: a chain begun on another site that sets a cookie and redirects.
    pub async fn serve_samesite_lab(&self) {
        let start = format!(
            r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Lab</title></head>
<body><a href="{}">Go to the other site</a></body></html>"#,
            self.on_localhost("/lab/set")
        );
        Mock::given(method("GET"))
            .and(path("/lab/start"))
            .respond_with(html(start))
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path("/lab/set"))
            .respond_with(
                ResponseTemplate::new(303)
                    .append_header("Set-Cookie", "lab_strict=1; Path=/; HttpOnly; SameSite=Strict")
                    .append_header("Set-Cookie", "lab_lax=1; Path=/; HttpOnly; SameSite=Lax")
                    .insert_header("Location", "/lab/show"),
            )
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path("/lab/show"))
            .respond_with(|r: &Request| {
                let cookies = r.headers.get("cookie").and_then(|v| v.to_str().ok()).unwrap_or("(none)");
                html(format!(
                    r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Lab</title></head>
<body><p>Cookies received: <span id="cookies">{}</span></p></body></html>"#,
                    escape(cookies)
                ))
            })
            .mount(&self.server)
            .await;
    }
}
