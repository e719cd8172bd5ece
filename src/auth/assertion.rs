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
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::KeyPair as _;
use serde::Serialize;

use crate::config::SigningAlg;
use crate::store::{SessionRecord, SigningKey, Store, User};

/// How long an assertion is valid.
pub const ASSERTION_SECS: i64 = 60;
/// How long a replaced key stays published.
pub const RETIRED_KEY_SECS: i64 = 24 * 60 * 60;
/// The public exponent of every RSA key the portal makes (65537), base64url.
const RSA_EXPONENT: &str = "AQAB";
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
    /// The user's email, only when it is verified.
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
            email: user.verified_email().map(str::to_owned),
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

/// A key that signs: its id and the key.
struct Signing {
    kid: String,
    key: EncodingKey,
}

/// The keys as loaded: the signing one per algorithm, every published one for checking
/// signatures, and the published set as JSON.
struct Loaded {
    at: i64,
    ed: Signing,
    rsa: Option<Signing>,
    published: Vec<(String, Algorithm, DecodingKey)>,
    jwks: Arc<str>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    #[error("a signing key is unusable: {0}")]
    Bad(String),
}

/// The algorithm names as stored.
const ED25519: &str = "EdDSA";
const RSA: &str = "RS256";
/// RSA keys the provider makes: 2048 bits, the size every verifier takes.
const RSA_BITS: usize = 2048;

/// Signs assertions and the OpenID provider's tokens, and publishes the keys (managed
/// inside the auth service). Ed25519 keys exist from the first start; an RSA key is made
/// the first time something asks for RS256 (2048-bit generation takes a while).
pub struct Signer {
    store: Store,
    loaded: Mutex<Option<Arc<Loaded>>>,
    /// One RSA key generation at a time in this process.
    making_rsa: tokio::sync::Mutex<()>,
}

impl Signer {
    pub fn new(store: Store) -> Signer {
        Signer { store, loaded: Mutex::new(None), making_rsa: tokio::sync::Mutex::new(()) }
    }

    /// Makes the first Ed25519 key when the store has none.
    pub async fn ensure_key(&self, now: i64) -> Result<(), KeyError> {
        let keys = self.store.signing_keys(now - RETIRED_KEY_SECS).await?;
        if !keys.iter().any(|k| k.algorithm == ED25519 && k.retired_at.is_none()) {
            self.rotate_ed25519(now).await?;
        }
        Ok(())
    }

    /// Makes the RSA key when the store has none: before any application can read the JWK
    /// Set (at start when there are clients, and when one is added), since applications
    /// keep the set they read at discovery.
    pub async fn ensure_rsa(&self, now: i64) -> Result<(), KeyError> {
        if self.current(now).await?.rsa.is_some() {
            return Ok(());
        }
        let _one = self.making_rsa.lock().await;
        self.forget();
        if self.current(now).await?.rsa.is_none() {
            let kid = self.rotate_rsa(now).await?;
            log::info!("made the RS256 signing key {kid}");
        }
        Ok(())
    }

    /// Makes a new key for every algorithm in use; the ones they replace stay published
    /// for a day. Returns the new ids.
    pub async fn rotate(&self, now: i64) -> Result<Vec<String>, KeyError> {
        let keys = self.store.signing_keys(now - RETIRED_KEY_SECS).await?;
        let mut made = vec![self.rotate_ed25519(now).await?];
        if keys.iter().any(|k| k.algorithm == RSA) {
            made.push(self.rotate_rsa(now).await?);
        }
        Ok(made)
    }

    async fn rotate_ed25519(&self, now: i64) -> Result<String, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| KeyError::Bad("the system's random source failed".into()))?;
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|e| KeyError::Bad(e.to_string()))?;
        let public = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        self.store_key(ED25519, pkcs8.as_ref(), public, now).await
    }

    async fn rotate_rsa(&self, now: i64) -> Result<String, KeyError> {
        let (pkcs8, modulus) = tokio::task::spawn_blocking(|| {
            use rsa::pkcs8::EncodePrivateKey as _;
            use rsa::traits::PublicKeyParts as _;
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS).map_err(|e| e.to_string())?;
            let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
            Ok::<_, String>((der.as_bytes().to_vec(), URL_SAFE_NO_PAD.encode(key.n().to_bytes_be())))
        })
        .await
        .map_err(|e| KeyError::Bad(e.to_string()))?
        .map_err(KeyError::Bad)?;
        self.store_key(RSA, &pkcs8, modulus, now).await
    }

    async fn store_key(
        &self,
        algorithm: &str,
        pkcs8: &[u8],
        public: String,
        now: i64,
    ) -> Result<String, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let mut id = [0u8; 12];
        ring::rand::SecureRandom::fill(&rng, &mut id).map_err(|_| KeyError::Bad("no randomness".into()))?;
        let key = SigningKey {
            kid: URL_SAFE_NO_PAD.encode(id),
            algorithm: algorithm.into(),
            private_pkcs8: STANDARD.encode(pkcs8),
            public_key: public,
            created_at: now,
            retired_at: None,
        };
        self.store.add_signing_key(&key).await?;
        self.store.delete_retired_keys(now - RETIRED_KEY_SECS).await?;
        self.forget();
        Ok(key.kid)
    }

    fn forget(&self) {
        *self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
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
        let signing_of =
            |algorithm: &str| keys.iter().find(|k| k.algorithm == algorithm && k.retired_at.is_none());
        let ed = signing_of(ED25519).ok_or_else(|| KeyError::Bad("the store has no signing key".into()))?;
        let der = STANDARD.decode(&ed.private_pkcs8).map_err(|e| KeyError::Bad(e.to_string()))?;
        let ed = Signing { kid: ed.kid.clone(), key: EncodingKey::from_ed_der(&der) };
        let rsa = match signing_of(RSA) {
            None => None,
            Some(key) => Some(Signing { kid: key.kid.clone(), key: rsa_encoding_key(&key.private_pkcs8)? }),
        };
        let mut published = Vec::new();
        let mut jwks = Vec::new();
        for k in &keys {
            match k.algorithm.as_str() {
                ED25519 => {
                    let decoding = DecodingKey::from_ed_components(&k.public_key)
                        .map_err(|e| KeyError::Bad(e.to_string()))?;
                    published.push((k.kid.clone(), Algorithm::EdDSA, decoding));
                    jwks.push(serde_json::json!({
                        "kty": "OKP", "crv": "Ed25519", "x": k.public_key, "kid": k.kid, "alg": ED25519, "use": "sig",
                    }));
                }
                RSA => {
                    let decoding = DecodingKey::from_rsa_components(&k.public_key, RSA_EXPONENT)
                        .map_err(|e| KeyError::Bad(e.to_string()))?;
                    published.push((k.kid.clone(), Algorithm::RS256, decoding));
                    jwks.push(serde_json::json!({
                        "kty": "RSA", "n": k.public_key, "e": RSA_EXPONENT, "kid": k.kid, "alg": RSA, "use": "sig",
                    }));
                }
                other => {
                    log::warn!("signing key {} has an unknown algorithm {other:?}; not published", k.kid)
                }
            }
        }
        let loaded = Arc::new(Loaded {
            at: now,
            ed,
            rsa,
            published,
            jwks: serde_json::json!({ "keys": jwks }).to_string().into(),
        });
        *self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::clone(&loaded));
        Ok(loaded)
    }

    /// Signs `claims` as a JWT with `algorithm` (`RS256` makes the RSA key on first use)
    /// and the header's `typ`.
    pub async fn sign_as<T: Serialize>(
        &self,
        algorithm: SigningAlg,
        typ: &str,
        claims: &T,
        now: i64,
    ) -> Result<String, KeyError> {
        let mut loaded = self.current(now).await?;
        if algorithm == SigningAlg::RS256 && loaded.rsa.is_none() {
            self.ensure_rsa(now).await?;
            loaded = self.current(now).await?;
        }
        let (alg, signing) = match algorithm {
            SigningAlg::EdDSA => (Algorithm::EdDSA, &loaded.ed),
            SigningAlg::RS256 => {
                (Algorithm::RS256, loaded.rsa.as_ref().ok_or_else(|| KeyError::Bad("no RSA key".into()))?)
            }
        };
        let mut header = Header::new(alg);
        header.typ = Some(typ.to_owned());
        header.kid = Some(signing.kid.clone());
        jsonwebtoken::encode(&header, claims, &signing.key).map_err(|e| KeyError::Bad(e.to_string()))
    }

    /// Checks a JWT this portal signed: a published key by its `kid`, the algorithm that key
    /// is for, the header's `typ`, `iss` and `exp` (`validate_exp: false` for an
    /// `id_token_hint`, which may have expired). `None` for anything else.
    pub async fn verify<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        issuer: &str,
        validate_exp: bool,
        now: i64,
    ) -> Result<Option<T>, KeyError> {
        let Ok(header) = jsonwebtoken::decode_header(token) else { return Ok(None) };
        if header.typ.as_deref() != Some(typ) {
            return Ok(None);
        }
        let loaded = self.current(now).await?;
        let Some((_, alg, key)) = loaded
            .published
            .iter()
            .find(|(kid, alg, _)| header.kid.as_deref() == Some(kid.as_str()) && *alg == header.alg)
        else {
            return Ok(None);
        };
        let mut validation = Validation::new(*alg);
        validation.set_issuer(&[issuer]);
        validation.validate_aud = false;
        validation.validate_exp = validate_exp;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["iss", "sub", "exp"]);
        Ok(jsonwebtoken::decode::<T>(token, key, &validation).ok().map(|data| data.claims))
    }

    /// The JWK Set, as served at `/.well-known/jwks.json`.
    pub async fn jwks(&self, now: i64) -> Result<Arc<str>, KeyError> {
        Ok(Arc::clone(&self.current(now).await?.jwks))
    }

    /// A signed assertion of these claims.
    pub async fn sign(&self, claims: &Claims, now: i64) -> Result<String, KeyError> {
        let loaded = self.current(now).await?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(loaded.ed.kid.clone());
        jsonwebtoken::encode(&header, claims, &loaded.ed.key).map_err(|e| KeyError::Bad(e.to_string()))
    }
}

/// jsonwebtoken signs RS256 from PKCS#1; the store keeps PKCS#8.
fn rsa_encoding_key(pkcs8_base64: &str) -> Result<EncodingKey, KeyError> {
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    use rsa::pkcs8::DecodePrivateKey as _;
    let der = STANDARD.decode(pkcs8_base64).map_err(|e| KeyError::Bad(e.to_string()))?;
    let key = rsa::RsaPrivateKey::from_pkcs8_der(&der).map_err(|e| KeyError::Bad(e.to_string()))?;
    let pkcs1 = key.to_pkcs1_der().map_err(|e| KeyError::Bad(e.to_string()))?;
    Ok(EncodingKey::from_rsa_der(pkcs1.as_bytes()))
}
