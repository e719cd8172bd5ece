//! Fake Google and GitHub on loopback (wiremock on `127.0.0.1`): discovery, JWKS, token and
//! API endpoints, with ID tokens signed by a key the tests hold, and the portal's settings
//! for them (a figment, or `ROCKET_OAUTH` for the real binary).
//!
//! A fake answers at its token endpoint what the test mounts there (`token_answers`). For a
//! browser, `serve_consent` runs whole flows, statelessly: the authorize endpoint renders a
//! consent page whose Allow button goes (through the provider's own `/consent`, which
//! redirects as real providers do) back to `redirect_uri` with a `code` made of the PKCE
//! challenge and the OIDC nonce. The token endpoint checks the verifier against that
//! challenge and, for Google, signs an ID token carrying that nonce.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use oauth2::url::{form_urlencoded, Url};
use openidconnect::core::{
    CoreGenderClaim, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    AdditionalClaims, Audience, EndUserEmail, EndUserName, IdToken, IdTokenClaims, IssuerUrl, JsonWebKeyId,
    LocalizedClaim, Nonce, PkceCodeChallenge, PkceCodeVerifier, PrivateSigningKey, StandardClaims,
    SubjectIdentifier,
};
use rocket::figment::Figment;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const GOOGLE_ID: &str = "google-client-id.apps.example";
pub const GITHUB_ID: &str = "github-client-id";
pub const CLIENT_SECRET: &str = "client-secret-never-shown";

/// Who the fake Google says you are.
pub const GOOGLE_EMAIL: &str = "grace.hopper@example.com";
/// Who the fake GitHub says you are.
pub const GITHUB_LOGIN: &str = "octocat";
pub const GITHUB_EMAIL: &str = "octo@example.com";
/// The access token the fake GitHub hands out, and the only one its API answers.
pub const GITHUB_TOKEN: &str = "gho_github-access-token";

/// The portal's own address in a test figment: the local client never listens, so only the
/// redirect URIs sent to the providers carry it.
const FIGMENT_SITE: &str = "http://127.0.0.1:8000";

/// The key the fakes sign with, and another (an attacker's, or a rotated one).
pub const KEY: &str = include_str!("../../tests/data/google-test-key.pem");
pub const ATTACKER_KEY: &str = include_str!("../../tests/data/attacker-test-key.pem");

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GoogleExtra {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hd: Option<String>,
}
impl AdditionalClaims for GoogleExtra {}

type GoogleIdToken =
    IdToken<GoogleExtra, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

/// What goes into a test ID token; `Claims::new` is a valid one for `sub` 1001.
pub struct Claims {
    pub issuer: Option<String>,
    pub audience: String,
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub hd: Option<String>,
    pub nonce: String,
    pub expires_in: i64,
    pub attacker_key: bool,
}

impl Claims {
    pub fn new(nonce: &str) -> Claims {
        Claims {
            issuer: None,
            audience: GOOGLE_ID.into(),
            sub: "1001".into(),
            email: Some(GOOGLE_EMAIL.into()),
            email_verified: true,
            name: None,
            hd: None,
            nonce: nonce.into(),
            expires_in: 3600,
            attacker_key: false,
        }
    }
}

/// Google, through OpenID Connect.
pub struct FakeGoogle {
    pub server: MockServer,
}

impl FakeGoogle {
    /// Discovery and JWKS; the token endpoint answers what the test mounts.
    pub async fn start() -> FakeGoogle {
        let server = MockServer::start().await;
        let google = FakeGoogle { server };
        google.serve_discovery().await;
        google
    }

    /// `http://127.0.0.1:PORT`: the issuer.
    pub fn issuer(&self) -> String {
        self.server.uri()
    }

    pub async fn serve_discovery(&self) {
        let issuer = self.issuer();
        let discovery = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/o/oauth2/v2/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        Mock::given(method("GET"))
            .and(path("/.well-known/openid-configuration"))
            .respond_with(ResponseTemplate::new(200).set_body_json(discovery))
            .mount(&self.server)
            .await;
        let jwks = CoreJsonWebKeySet::new(vec![signing_key(KEY).as_verification_key()]);
        Mock::given(method("GET"))
            .and(path("/jwks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(&jwks))
            .mount(&self.server)
            .await;
    }

    /// Consent pages a browser clicks through, and a token endpoint that signs the ID token
    /// of a whole flow (see the module's comment).
    pub async fn serve_consent(&self) {
        let consent = |r: &Request| consent_page("Google", GOOGLE_ID, GOOGLE_EMAIL, r);
        serve_consent_pages(&self.server, "/o/oauth2/v2/auth", consent).await;
        let issuer = self.issuer();
        self.token_answers(move |r: &Request| match redeem_code(r) {
            Ok(nonce) => {
                let claims = Claims { name: Some("Grace Hopper".into()), ..Claims::new(&nonce) };
                id_token_answer(&sign_id_token(&issuer, claims))
            }
            Err(why) => invalid_grant(why),
        })
        .await;
    }

    pub fn id_token(&self, claims: Claims) -> String {
        sign_id_token(&self.issuer(), claims)
    }

    /// An unsigned token (`alg: none`) with otherwise valid claims.
    pub fn unsigned_id_token(&self, nonce: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let now = chrono::Utc::now().timestamp();
        let payload = json!({
            "iss": self.issuer(), "aud": GOOGLE_ID, "sub": "1001", "nonce": nonce,
            "email": GOOGLE_EMAIL, "email_verified": true,
            "iat": now, "exp": now + 3600,
        });
        format!("{header}.{}.", URL_SAFE_NO_PAD.encode(payload.to_string()))
    }

    /// The token endpoint answers with `response` (wiremock answers with the first mock
    /// mounted that matches, so the first answer mounted stays).
    pub async fn token_answers(&self, response: impl Respond + 'static) {
        Mock::given(method("POST")).and(path("/token")).respond_with(response).mount(&self.server).await;
    }

    pub async fn token_returns_id_token(&self, id_token: &str) {
        self.token_answers(id_token_answer(id_token)).await;
    }

    /// The portal's `oauth.google` settings for this fake, with callbacks to `site`.
    pub fn settings(&self, site: &str) -> Vec<(&'static str, String)> {
        vec![
            ("client_id", GOOGLE_ID.to_owned()),
            ("client_secret", CLIENT_SECRET.to_owned()),
            ("redirect_uri", format!("{site}/auth/google")),
            ("issuer", self.issuer()),
        ]
    }

    pub fn figment(&self, figment: Figment) -> Figment {
        merge_settings(figment, "google", self.settings(FIGMENT_SITE))
    }
}

fn signing_key(pem: &str) -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new("test-key".into()))).unwrap()
}

/// A real RS256 ID token from `issuer` (signed with the attacker's key if the claims say so).
fn sign_id_token(issuer: &str, claims: Claims) -> String {
    let issuer = claims.issuer.unwrap_or_else(|| issuer.to_owned());
    let now = chrono::Utc::now();
    let mut standard = StandardClaims::new(SubjectIdentifier::new(claims.sub));
    if let Some(email) = claims.email {
        standard = standard
            .set_email(Some(EndUserEmail::new(email)))
            .set_email_verified(Some(claims.email_verified));
    }
    if let Some(name) = claims.name {
        let mut localized = LocalizedClaim::new();
        localized.insert(None, EndUserName::new(name));
        standard = standard.set_name(Some(localized));
    }
    let token_claims = IdTokenClaims::new(
        IssuerUrl::new(issuer).unwrap(),
        vec![Audience::new(claims.audience)],
        now + chrono::Duration::seconds(claims.expires_in),
        now - chrono::Duration::seconds(5),
        standard,
        GoogleExtra { hd: claims.hd },
    )
    .set_nonce(Some(Nonce::new(claims.nonce)));
    let key = signing_key(if claims.attacker_key { ATTACKER_KEY } else { KEY });
    GoogleIdToken::new(token_claims, &key, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, None, None)
        .unwrap()
        .to_string()
}

fn id_token_answer(id_token: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": "ya29.google-access-token",
        "token_type": "Bearer",
        "expires_in": 3600,
        "id_token": id_token,
    }))
}

/// GitHub, through OAuth 2.0.
pub struct FakeGithub {
    pub server: MockServer,
    /// Where the API lives below the server: "" (github.com style) or "/api/v3" (Enterprise).
    pub api_prefix: &'static str,
}

impl FakeGithub {
    /// `/user` and `/user/emails` for octocat; the token endpoint answers what the test mounts.
    pub async fn start() -> FakeGithub {
        FakeGithub::start_at("").await
    }

    pub async fn start_at(api_prefix: &'static str) -> FakeGithub {
        let github = FakeGithub { server: MockServer::start().await, api_prefix };
        github.serve_user(4242, GITHUB_LOGIN, &[(GITHUB_EMAIL, true, true)]).await;
        github
    }

    /// Consent pages a browser clicks through, and a token endpoint that checks the PKCE
    /// verifier of a whole flow (see the module's comment).
    pub async fn serve_consent(&self) {
        let consent = |r: &Request| consent_page("GitHub", GITHUB_ID, GITHUB_LOGIN, r);
        serve_consent_pages(&self.server, "/login/oauth/authorize", consent).await;
        self.token_answers(|r: &Request| match redeem_code(r) {
            Ok(_) => github_token_answer(),
            Err(why) => invalid_grant(why),
        })
        .await;
    }

    pub async fn serve_user(&self, id: u64, login: &str, emails: &[(&str, bool, bool)]) {
        let emails: Vec<Value> = emails
            .iter()
            .map(|(e, primary, verified)| json!({"email": e, "primary": primary, "verified": verified}))
            .collect();
        self.api("/user", ResponseTemplate::new(200).set_body_json(json!({"id": id, "login": login, "name": "The Octocat", "avatar_url": "https://example.com/a.png"}))).await;
        self.api("/user/emails", ResponseTemplate::new(200).set_body_json(emails)).await;
    }

    /// `GET route` below the API prefix answers `response`, to a request carrying the token.
    pub async fn api(&self, route: &str, response: ResponseTemplate) {
        Mock::given(method("GET"))
            .and(path(format!("{}{route}", self.api_prefix)))
            .and(header("authorization", format!("Bearer {GITHUB_TOKEN}").as_str()))
            .respond_with(response)
            .mount(&self.server)
            .await;
    }

    /// The token endpoint answers with `response` (the first answer mounted stays).
    pub async fn token_answers(&self, response: impl Respond + 'static) {
        Mock::given(method("POST"))
            .and(path("/login/oauth/access_token"))
            .respond_with(response)
            .mount(&self.server)
            .await;
    }

    pub async fn token_ok(&self) {
        self.token_answers(github_token_answer()).await;
    }

    /// The portal's `oauth.github` settings for this fake, with callbacks to `site`.
    pub fn settings(&self, site: &str) -> Vec<(&'static str, String)> {
        let base = self.server.uri();
        vec![
            ("client_id", GITHUB_ID.to_owned()),
            ("client_secret", CLIENT_SECRET.to_owned()),
            ("redirect_uri", format!("{site}/auth/github")),
            ("auth_uri", format!("{base}/login/oauth/authorize")),
            ("token_uri", format!("{base}/login/oauth/access_token")),
            ("api_uri", format!("{base}{}", self.api_prefix)),
        ]
    }

    pub fn figment(&self, figment: Figment) -> Figment {
        merge_settings(figment, "github", self.settings(FIGMENT_SITE))
    }

    /// Requests the portal made to `route`.
    pub async fn requests_to(&self, route: &str) -> Vec<Request> {
        requests_to(&self.server, route).await
    }
}

fn github_token_answer() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": GITHUB_TOKEN, "token_type": "bearer", "scope": "read:user,user:email",
    }))
}

fn merge_settings(figment: Figment, provider: &str, settings: Vec<(&str, String)>) -> Figment {
    settings
        .into_iter()
        .fold(figment, |figment, (key, value)| figment.merge((format!("oauth.{provider}.{key}"), value)))
}

/// `ROCKET_OAUTH` for the real binary: the given fakes, with callbacks to `site`.
pub fn rocket_oauth(site: &str, google: Option<&FakeGoogle>, github: Option<&FakeGithub>) -> String {
    let table = |settings: Vec<(&str, String)>| {
        let pairs: Vec<String> = settings.iter().map(|(key, value)| format!("{key}=\"{value}\"")).collect();
        format!("{{{}}}", pairs.join(","))
    };
    let mut providers = Vec::new();
    if let Some(google) = google {
        providers.push(format!("google={}", table(google.settings(site))));
    }
    if let Some(github) = github {
        providers.push(format!("github={}", table(github.settings(site))));
    }
    format!("{{{}}}", providers.join(","))
}

pub async fn requests_to(server: &MockServer, route: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == route)
        .collect()
}

/// The query parameters of a URL, decoded.
pub fn query(url: &str) -> HashMap<String, String> {
    let parsed = Url::parse(url).unwrap();
    parsed.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn form(request: &Request) -> HashMap<String, String> {
    form_urlencoded::parse(&request.body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// A page a browser may show: not cached, UTF-8.
pub fn html(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("Cache-Control", "no-store")
        .set_body_raw(body, "text/html; charset=utf-8")
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The authorize endpoint at `authorize` (rendering `consent`) and `POST /consent`.
async fn serve_consent_pages(server: &MockServer, authorize: &str, consent: impl Respond + 'static) {
    Mock::given(method("GET")).and(path(authorize)).respond_with(consent).mount(server).await;
    Mock::given(method("POST")).and(path("/consent")).respond_with(consent_decision).mount(server).await;
}

/// The provider's authorize endpoint: checks the request and renders "Allow" / "Deny".
fn consent_page(provider: &str, client_id: &str, account: &str, request: &Request) -> ResponseTemplate {
    let q = query(request.url.as_str());
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
pub fn redeem_code(request: &Request) -> Result<String, &'static str> {
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
