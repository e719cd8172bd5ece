//! What the provider's tokens say: the ID token (OpenID Connect Core 1.0 §2), the access
//! token (a JWT per RFC 9068, `typ: at+jwt`) and the claims about the person that the scopes
//! release, the same in the ID token and at userinfo.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::store::{GrantRow, User};

/// The header `typ` of an access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// The header `typ` of an ID token.
pub const ID_TOKEN_TYP: &str = "JWT";

/// The scopes the provider knows, in the order the consent page lists them.
pub const SCOPES: [&str; 5] = ["openid", "profile", "email", "groups", "offline_access"];

/// The claims a scope releases.
pub fn claims_of(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => &["preferred_username", "name"],
        "email" => &["email", "email_verified"],
        "groups" => &["groups"],
        _ => &[],
    }
}

/// What a scope lets an application see, in a person's words.
pub fn scope_words(scope: &str) -> &'static str {
    match scope {
        "openid" => "Who you are on this portal (an identifier that never changes)",
        "profile" => "Your username",
        "email" => "Your email address",
        "groups" => "Your groups (whether you are an administrator)",
        "offline_access" => "Stay connected while you are away (until you disconnect it)",
        _ => "",
    }
}

/// Every claim the provider can release (discovery's `claims_supported`).
pub const CLAIMS: [&str; 15] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "amr",
    "acr",
    "azp",
    "preferred_username",
    "name",
    "email",
    "email_verified",
    "groups",
];

/// Whether a space-separated scope string holds `scope`.
pub fn has_scope(scopes: &str, scope: &str) -> bool {
    scopes.split(' ').any(|s| s == scope)
}

/// The claims about the person that `scopes` release (the same set goes into the ID token
/// and userinfo: applications differ in where they look).
pub fn person_claims(user: &User, scopes: &str) -> Map<String, Value> {
    let mut out = Map::new();
    if has_scope(scopes, "profile") {
        out.insert("preferred_username".into(), Value::from(user.username.clone()));
        out.insert("name".into(), Value::from(user.username.clone()));
    }
    if has_scope(scopes, "email") {
        if let Some(email) = &user.email {
            out.insert("email".into(), Value::from(email.clone()));
            // A new address is verified by a link sent to it; until then applications are
            // told it is not.
            out.insert("email_verified".into(), Value::Bool(user.email_verified));
        }
    }
    if has_scope(scopes, "groups") {
        let groups: Vec<Value> =
            crate::auth::assertion::groups(user).iter().map(|g| Value::from(*g)).collect();
        out.insert("groups".into(), Value::Array(groups));
    }
    out
}

/// The methods a grant's session was made with, as `amr` (RFC 8176 names where there are).
pub fn amr(grant: &GrantRow) -> Vec<String> {
    grant.methods.split(' ').filter(|m| !m.is_empty()).map(str::to_owned).collect()
}

/// `acr`: the assurance level, `aal1` or `aal2`.
pub fn acr(aal: i64) -> String {
    format!("aal{}", aal.clamp(1, 2))
}

/// An ID token's claims.
#[derive(Debug, Serialize, Deserialize)]
pub struct IdToken {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub azp: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default)]
    pub amr: Vec<String>,
    #[serde(default)]
    pub acr: String,
    #[serde(flatten)]
    pub person: Map<String, Value>,
}

/// An access token's claims (RFC 9068 §2.2) and the grant it belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessToken {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub scope: String,
    pub auth_time: i64,
    pub acr: String,
    /// The grant: every check looks it up, so revoking it ends the token.
    pub grant: String,
}

/// The access tokens whose signatures were checked, by SHA-256 of the token, until they
/// expire: an application calls userinfo (or a resource server introspects) with the same
/// token many times, and an RS256 check costs more than the rest of the request. Only the
/// signature's check is remembered; the grant is looked up every time, so revocation is not
/// delayed by this.
#[derive(Default)]
pub struct VerifiedTokens {
    tokens: std::sync::Mutex<std::collections::HashMap<[u8; 32], std::sync::Arc<AccessToken>>>,
}

/// Entries kept before the expired ones are dropped (and, if that is not enough, all).
const MAX_VERIFIED: usize = 10_000;

impl VerifiedTokens {
    fn key(token: &str) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(token.as_bytes()).into()
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<[u8; 32], std::sync::Arc<AccessToken>>> {
        self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The claims of `token` if its signature was checked before and it has not expired.
    pub fn get(&self, token: &str, now: i64) -> Option<std::sync::Arc<AccessToken>> {
        let found = self.lock().get(&Self::key(token)).cloned()?;
        (found.exp > now && found.iat <= now).then_some(found)
    }

    pub fn put(&self, token: &str, claims: std::sync::Arc<AccessToken>, now: i64) {
        let mut tokens = self.lock();
        if tokens.len() >= MAX_VERIFIED {
            tokens.retain(|_, c| c.exp > now);
            if tokens.len() >= MAX_VERIFIED {
                tokens.clear();
            }
        }
        tokens.insert(Self::key(token), claims);
    }
}
