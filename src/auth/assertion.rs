//! Forward-auth assertions: a short-lived JWT (`X-Portal-Assertion`, EdDSA over Ed25519)
//! saying who the user is, for an application that would rather verify a signature than
//! trust headers. The keys live in the store: one is made on first start, `portal keys
//! rotate` makes a new one, and the public halves are served as a JWK Set at
//! `/.well-known/jwks.json` (the current key, and keys retired within the last day).
//!
//! Each instance reads the keys again at most every [`RELOAD_SECS`] seconds, so a rotation
//! on the command line reaches a running server within a minute.

use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::KeyPair as _;
use serde::Serialize;

use crate::store::{SessionRecord, SigningKey, Store, User};

/// How long an assertion is valid.
pub const ASSERTION_SECS: i64 = 60;
/// How long a replaced key stays published.
pub const RETIRED_KEY_SECS: i64 = 24 * 60 * 60;
/// How often the keys are read from the store again.
pub const RELOAD_SECS: i64 = 60;

/// What an assertion says.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The portal's origin (`public_url`).
    pub iss: String,
    /// The user's id.
    pub sub: String,
    /// The username.
    pub name: String,
    pub email: Option<String>,
    /// `["admins"]` for administrators, otherwise empty.
    pub groups: Vec<String>,
    /// The host of the request the proxy asked about.
    pub aud: String,
    /// How the session was made (RFC 8176 names where there is one): `pwd`, `otp`,
    /// `recovery`, `passkey`, or a provider's name.
    pub amr: Vec<String>,
    /// The assurance level: `aal1`, or `aal2` with a second factor.
    pub acr: String,
    pub iat: i64,
    pub exp: i64,
}

impl Claims {
    pub fn new(issuer: &str, user: &User, session: &SessionRecord, audience: &str, now: i64) -> Claims {
        Claims {
            amr: session.methods.split(' ').filter(|m| !m.is_empty()).map(str::to_owned).collect(),
            acr: format!("aal{}", session.aal),
            iss: issuer.to_owned(),
            sub: user.id.to_string(),
            name: user.username.clone(),
            email: user.email.clone(),
            groups: groups(user).iter().map(|g| (*g).to_owned()).collect(),
            aud: audience.to_owned(),
            iat: now,
            exp: now + ASSERTION_SECS,
        }
    }
}

/// The groups forward-auth reports for a user (`Remote-Groups`, the assertion's `groups`).
pub fn groups(user: &User) -> &'static [&'static str] {
    if user.is_admin {
        &["admins"]
    } else {
        &[]
    }
}

/// The keys as loaded: the signing one, and the published set as JSON.
struct Loaded {
    at: i64,
    kid: String,
    key: EncodingKey,
    jwks: Arc<str>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    #[error("a signing key is unusable: {0}")]
    Bad(String),
}

/// Signs assertions and publishes the keys (managed inside the auth service).
pub struct Signer {
    store: Store,
    loaded: Mutex<Option<Arc<Loaded>>>,
}

impl Signer {
    pub fn new(store: Store) -> Signer {
        Signer { store, loaded: Mutex::new(None) }
    }

    /// Makes the first key when the store has none.
    pub async fn ensure_key(&self, now: i64) -> Result<(), KeyError> {
        if self.store.signing_keys(now - RETIRED_KEY_SECS).await?.iter().all(|k| k.retired_at.is_some()) {
            self.rotate(now).await?;
        }
        Ok(())
    }

    /// Makes a new signing key; the one it replaces stays published for a day. Returns its
    /// id.
    pub async fn rotate(&self, now: i64) -> Result<String, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| KeyError::Bad("the system's random source failed".into()))?;
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|e| KeyError::Bad(e.to_string()))?;
        let mut id = [0u8; 12];
        ring::rand::SecureRandom::fill(&rng, &mut id).map_err(|_| KeyError::Bad("no randomness".into()))?;
        let key = SigningKey {
            kid: URL_SAFE_NO_PAD.encode(id),
            algorithm: "EdDSA".into(),
            private_pkcs8: STANDARD.encode(pkcs8.as_ref()),
            public_key: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            created_at: now,
            retired_at: None,
        };
        self.store.add_signing_key(&key).await?;
        self.store.delete_retired_keys(now - RETIRED_KEY_SECS).await?;
        *self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        Ok(key.kid)
    }

    /// The published keys, newest first (for `portal keys list`).
    pub async fn keys(&self, now: i64) -> Result<Vec<SigningKey>, KeyError> {
        Ok(self.store.signing_keys(now - RETIRED_KEY_SECS).await?)
    }

    async fn current(&self, now: i64) -> Result<Arc<Loaded>, KeyError> {
        {
            let loaded = self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(loaded) = loaded.as_ref().filter(|l| now - l.at < RELOAD_SECS && now >= l.at) {
                return Ok(Arc::clone(loaded));
            }
        }
        let keys = self.store.signing_keys(now - RETIRED_KEY_SECS).await?;
        let signing = keys.first().ok_or_else(|| KeyError::Bad("the store has no signing key".into()))?;
        let der = STANDARD.decode(&signing.private_pkcs8).map_err(|e| KeyError::Bad(e.to_string()))?;
        let jwks = serde_json::json!({
            "keys": keys.iter().map(|k| serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": k.public_key,
                "kid": k.kid,
                "alg": "EdDSA",
                "use": "sig",
            })).collect::<Vec<_>>()
        });
        let loaded = Arc::new(Loaded {
            at: now,
            kid: signing.kid.clone(),
            key: EncodingKey::from_ed_der(&der),
            jwks: jwks.to_string().into(),
        });
        *self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::clone(&loaded));
        Ok(loaded)
    }

    /// A signed assertion of these claims.
    pub async fn sign(&self, claims: &Claims, now: i64) -> Result<String, KeyError> {
        let loaded = self.current(now).await?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(loaded.kid.clone());
        jsonwebtoken::encode(&header, claims, &loaded.key).map_err(|e| KeyError::Bad(e.to_string()))
    }

    /// The JWK Set, as served at `/.well-known/jwks.json`.
    pub async fn jwks(&self, now: i64) -> Result<Arc<str>, KeyError> {
        Ok(Arc::clone(&self.current(now).await?.jwks))
    }
}
