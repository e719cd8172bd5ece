//! Fake Google and GitHub on loopback (wiremock): discovery, JWKS, token and API endpoints,
//! with ID tokens signed by a key the tests hold.

use openidconnect::core::{
    CoreGenderClaim, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    AdditionalClaims, Audience, EndUserEmail, IdToken, IdTokenClaims, IssuerUrl, JsonWebKeyId, Nonce,
    PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use rocket::figment::Figment;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub const GOOGLE_ID: &str = "google-client-id.apps.example";
pub const GITHUB_ID: &str = "github-client-id";
pub const CLIENT_SECRET: &str = "client-secret-never-shown";

const KEY: &str = include_str!("../data/google-test-key.pem");
const ATTACKER_KEY: &str = include_str!("../data/attacker-test-key.pem");

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GoogleExtra {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hd: Option<String>,
}
impl AdditionalClaims for GoogleExtra {}

type GoogleIdToken =
    IdToken<GoogleExtra, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

/// What goes into a test ID token; `Default` is a valid one for `sub` 1001.
pub struct Claims {
    pub issuer: Option<String>,
    pub audience: String,
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: bool,
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
            email: Some("grace.hopper@example.com".into()),
            email_verified: true,
            hd: None,
            nonce: nonce.into(),
            expires_in: 3600,
            attacker_key: false,
        }
    }
}

pub struct FakeGoogle {
    pub server: MockServer,
}

impl FakeGoogle {
    pub async fn start() -> FakeGoogle {
        let server = MockServer::start().await;
        let google = FakeGoogle { server };
        google.serve_discovery().await;
        google
    }

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
        let key = signing_key(KEY);
        let jwks = CoreJsonWebKeySet::new(vec![key.as_verification_key()]);
        Mock::given(method("GET"))
            .and(path("/jwks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(&jwks))
            .mount(&self.server)
            .await;
    }

    pub fn id_token(&self, claims: Claims) -> String {
        let issuer = claims.issuer.unwrap_or_else(|| self.issuer());
        let now = chrono::Utc::now();
        let mut standard = StandardClaims::new(SubjectIdentifier::new(claims.sub));
        if let Some(email) = claims.email {
            standard = standard
                .set_email(Some(EndUserEmail::new(email)))
                .set_email_verified(Some(claims.email_verified));
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

    /// An unsigned token (`alg: none`) with otherwise valid claims.
    pub fn unsigned_id_token(&self, nonce: &str) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let now = chrono::Utc::now().timestamp();
        let payload = json!({
            "iss": self.issuer(), "aud": GOOGLE_ID, "sub": "1001", "nonce": nonce,
            "email": "grace.hopper@example.com", "email_verified": true,
            "iat": now, "exp": now + 3600,
        });
        format!("{header}.{}.", URL_SAFE_NO_PAD.encode(payload.to_string()))
    }

    /// The token endpoint answers with this ID token (once per mount; later mounts win).
    pub async fn token_answers(&self, response: ResponseTemplate) {
        Mock::given(method("POST")).and(path("/token")).respond_with(response).mount(&self.server).await;
    }

    pub async fn token_returns_id_token(&self, id_token: &str) {
        self.token_answers(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "ya29.google-access-token",
            "token_type": "Bearer",
            "expires_in": 3600,
            "id_token": id_token,
        })))
        .await;
    }

    pub fn figment(&self, figment: Figment) -> Figment {
        figment
            .merge(("oauth.google.client_id", GOOGLE_ID))
            .merge(("oauth.google.client_secret", CLIENT_SECRET))
            .merge(("oauth.google.redirect_uri", "http://127.0.0.1:8000/auth/google"))
            .merge(("oauth.google.issuer", self.issuer()))
    }
}

fn signing_key(pem: &str) -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new("test-key".into()))).unwrap()
}

pub const GITHUB_TOKEN: &str = "gho_github-access-token";

pub struct FakeGithub {
    pub server: MockServer,
    /// Where the API lives below the server: "" (github.com style) or "/api/v3" (Enterprise).
    pub api_prefix: &'static str,
}

impl FakeGithub {
    pub async fn start() -> FakeGithub {
        FakeGithub::start_at("").await
    }

    pub async fn start_at(api_prefix: &'static str) -> FakeGithub {
        let github = FakeGithub { server: MockServer::start().await, api_prefix };
        github.serve_user(4242, "octocat", &[("octo@example.com", true, true)]).await;
        github
    }

    pub async fn serve_user(&self, id: u64, login: &str, emails: &[(&str, bool, bool)]) {
        let emails: Vec<Value> = emails
            .iter()
            .map(|(e, primary, verified)| json!({"email": e, "primary": primary, "verified": verified}))
            .collect();
        self.api("/user", ResponseTemplate::new(200).set_body_json(json!({"id": id, "login": login, "name": "The Octocat", "avatar_url": "https://example.com/a.png"}))).await;
        self.api("/user/emails", ResponseTemplate::new(200).set_body_json(emails)).await;
    }

    pub async fn api(&self, route: &str, response: ResponseTemplate) {
        Mock::given(method("GET"))
            .and(path(format!("{}{route}", self.api_prefix)))
            .respond_with(response)
            .mount(&self.server)
            .await;
    }

    pub async fn token_answers(&self, response: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path("/login/oauth/access_token"))
            .respond_with(response)
            .mount(&self.server)
            .await;
    }

    pub async fn token_ok(&self) {
        self.token_answers(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": GITHUB_TOKEN, "token_type": "bearer", "scope": "read:user,user:email",
        })))
        .await;
    }

    pub fn figment(&self, figment: Figment) -> Figment {
        let base = self.server.uri();
        figment
            .merge(("oauth.github.client_id", GITHUB_ID))
            .merge(("oauth.github.client_secret", CLIENT_SECRET))
            .merge(("oauth.github.redirect_uri", "http://127.0.0.1:8000/auth/github"))
            .merge(("oauth.github.auth_uri", format!("{base}/login/oauth/authorize")))
            .merge(("oauth.github.token_uri", format!("{base}/login/oauth/access_token")))
            .merge(("oauth.github.api_uri", format!("{base}{}", self.api_prefix)))
    }

    /// Requests the portal made to `route`.
    pub async fn requests_to(&self, route: &str) -> Vec<Request> {
        requests_to(&self.server, route).await
    }
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
pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    let parsed = oauth2::url::Url::parse(url).unwrap();
    parsed.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}
