//! What a session is: a record in the store (who, how, since when, from where), and the
//! token its cookie carries (the record's id and a secret whose hash the record keeps, so a
//! copy of the database cannot be replayed as cookies). Carrying the token in a cookie is
//! the web layer's job.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::oauth::Slug;
use crate::config::SessionSettings;
use crate::store::SessionRecord;

/// How the user proved who they are (a session's first step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Password,
    /// Through a provider, by its slug.
    Provider(Slug),
    /// A passkey with user verification, on its own.
    Passkey,
}

impl Method {
    pub fn as_str(&self) -> &str {
        match self {
            Method::Password => "password",
            Method::Provider(slug) => slug.as_str(),
            Method::Passkey => "passkey",
        }
    }

    /// Its metrics label (no allocation for the built-in ones).
    pub fn label(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Method::Password => "password".into(),
            Method::Passkey => "passkey".into(),
            Method::Provider(slug) => slug.as_str().to_owned().into(),
        }
    }

    /// Its name in a session's methods (and an assertion's `amr`).
    pub fn amr(&self) -> &str {
        match self {
            Method::Password => "pwd",
            other => other.as_str(),
        }
    }

    pub fn parse(text: &str) -> Option<Method> {
        match text {
            "password" => Some(Method::Password),
            "passkey" => Some(Method::Passkey),
            slug => Slug::new(slug).map(Method::Provider),
        }
    }
}

impl Serialize for Method {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Method, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Method::parse(&text).ok_or_else(|| serde::de::Error::custom("not a sign-in method"))
    }
}

/// A second step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Factor {
    /// A code from an authenticator app.
    Otp,
    Recovery,
    Passkey,
}

impl Factor {
    pub fn amr(self) -> &'static str {
        match self {
            Factor::Otp => "otp",
            Factor::Recovery => "recovery",
            Factor::Passkey => "passkey",
        }
    }
}

/// How a session was made: its first step, every method used (`pwd otp`), and the
/// assurance level that gives (1, or 2 with a second factor or a verified passkey).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub method: Method,
    pub methods: String,
    pub aal: i64,
    /// The provider's session (`sid`) when the first step was a provider's, for its
    /// back-channel logout.
    pub upstream_sid: Option<String>,
}

impl Proof {
    /// One step. A passkey sign-in reaches here only with user verification: two factors
    /// in one (something held, and a PIN or biometric).
    pub fn first(method: Method) -> Proof {
        let aal = if method == Method::Passkey { 2 } else { 1 };
        Proof { method, methods: method.amr().to_owned(), aal, upstream_sid: None }
    }

    /// The provider's session this one rides on.
    pub fn with_upstream_sid(mut self, sid: Option<String>) -> Proof {
        self.upstream_sid = sid;
        self
    }

    /// With a second step.
    pub fn and(mut self, factor: Factor) -> Proof {
        if !self.methods.split(' ').any(|m| m == factor.amr()) {
            self.methods.push(' ');
            self.methods.push_str(factor.amr());
        }
        self.aal = 2;
        self
    }

    /// What an existing session was made with (a password change renews it as it was).
    pub fn of(record: &SessionRecord) -> Proof {
        Proof {
            method: Method::parse(&record.method).unwrap_or(Method::Password),
            methods: record.methods.clone(),
            aal: record.aal,
            upstream_sid: record.upstream_sid.clone(),
        }
    }
}

/// A session's methods as a person reads them: "Password + authenticator app".
/// `provider_name` names a provider by its slug (the configured providers' names).
pub fn describe_methods(methods: &str, provider_name: impl Fn(&str) -> String) -> String {
    let words: Vec<String> = methods
        .split(' ')
        .filter(|m| !m.is_empty())
        .map(|m| match m {
            "pwd" => "Password".to_owned(),
            "otp" => "authenticator app".to_owned(),
            "recovery" => "recovery code".to_owned(),
            "passkey" => "passkey".to_owned(),
            slug => provider_name(slug),
        })
        .collect();
    let mut text = words.join(" + ");
    if let Some(first) = text.get(..1) {
        text = first.to_uppercase() + &text[1..];
    }
    text
}

/// What the session cookie carries: which session, and the secret that proves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionToken {
    pub id: String,
    pub secret: String,
}

impl SessionToken {
    /// A new token (128-bit id, 256-bit secret) and the hash of its secret, to store.
    pub fn mint() -> (SessionToken, String) {
        let token = SessionToken {
            id: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()),
            secret: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()),
        };
        let hash = hash_secret(&token.secret);
        (token, hash)
    }

    /// Whether this token's secret is the one whose hash was stored (constant time).
    pub fn proves(&self, stored_hash: &str) -> bool {
        bool::from(hash_secret(&self.secret).as_bytes().ct_eq(stored_hash.as_bytes()))
    }
}

/// SHA-256, hex: the secret is 256 random bits, so a fast hash is enough (no guessing).
/// Runs on every signed-in request, so it writes the hex without a string per byte. Also
/// what a one-time password link's token is stored as.
pub(crate) fn hash_secret(secret: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(secret.as_bytes());
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

/// What a session's timestamps say at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// Valid, but last-seen is old enough to be rewritten.
    Stale,
    Expired,
}

/// The idle and absolute lifetimes, from the record.
pub fn freshness(record: &SessionRecord, settings: &SessionSettings, now: i64) -> Freshness {
    let idle = now - record.last_seen_at;
    let age = now - record.created_at;
    // A timestamp from the future means a confused clock: refuse it.
    if record.ended_at.is_some()
        || idle < 0
        || age < 0
        || idle >= settings.idle_timeout
        || age >= settings.absolute_timeout
    {
        Freshness::Expired
    } else if idle >= settings.refresh_after {
        Freshness::Stale
    } else {
        Freshness::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(created: i64, seen: i64) -> SessionRecord {
        SessionRecord {
            id: "s".into(),
            user_id: 1,
            method: "password".into(),
            methods: "pwd".into(),
            aal: 1,
            created_at: created,
            last_seen_at: seen,
            ended_at: None,
            client: "c".into(),
            ip: None,
            persist: false,
            upstream_sid: None,
        }
    }

    const SETTINGS: SessionSettings = SessionSettings {
        idle_timeout: 1800,
        absolute_timeout: 43200,
        refresh_after: 60,
        cache_ttl: 2,
        retention: 0,
        sweep_interval: 1,
        cookie_domain: None,
    };

    #[test]
    fn a_session_is_fresh_then_stale_then_idle_expired() {
        let s = record(1000, 1000);
        assert_eq!(freshness(&s, &SETTINGS, 1000), Freshness::Fresh);
        assert_eq!(freshness(&s, &SETTINGS, 1059), Freshness::Fresh);
        assert_eq!(freshness(&s, &SETTINGS, 1060), Freshness::Stale);
        assert_eq!(freshness(&s, &SETTINGS, 1000 + 1799), Freshness::Stale);
        assert_eq!(freshness(&s, &SETTINGS, 1000 + 1800), Freshness::Expired);
    }

    #[test]
    fn activity_does_not_extend_past_the_absolute_lifetime() {
        let s = record(0, 43_100);
        assert_eq!(freshness(&s, &SETTINGS, 43_150), Freshness::Fresh);
        assert_eq!(freshness(&s, &SETTINGS, 43_200), Freshness::Expired);
    }

    #[test]
    fn timestamps_from_the_future_and_ended_sessions_are_expired() {
        assert_eq!(freshness(&record(5000, 5000), &SETTINGS, 4000), Freshness::Expired);
        let ended = SessionRecord { ended_at: Some(1001), ..record(1000, 1000) };
        assert_eq!(freshness(&ended, &SETTINGS, 1002), Freshness::Expired);
    }

    #[test]
    fn a_proof_names_each_method_once_and_a_second_factor_makes_level_two() {
        let password = Proof::first(Method::Password);
        assert_eq!((password.methods.as_str(), password.aal), ("pwd", 1));
        let both = password.and(Factor::Otp).and(Factor::Otp);
        assert_eq!((both.methods.as_str(), both.aal), ("pwd otp", 2));
        assert_eq!(Proof::first(Method::Passkey).aal, 2, "a verified passkey is two factors");
        assert_eq!(
            Proof::first(Method::Provider(Slug::new("github").unwrap())).and(Factor::Recovery).methods,
            "github recovery"
        );
        let names = |slug: &str| if slug == "google" { "Google".to_owned() } else { slug.to_owned() };
        assert_eq!(describe_methods("pwd otp", names), "Password + authenticator app");
        assert_eq!(describe_methods("passkey", names), "Passkey");
        assert_eq!(describe_methods("google recovery", names), "Google + recovery code");
    }

    #[test]
    fn a_token_proves_only_its_own_hash() {
        let (token, hash) = SessionToken::mint();
        assert!(token.proves(&hash));
        let (other, other_hash) = SessionToken::mint();
        assert!(!other.proves(&hash) && !token.proves(&other_hash));
        assert_ne!(token.id, other.id);
        assert!(!hash.contains(&token.secret), "the store never sees the secret");
        // SHA-256("abc"), as published in FIPS 180-2.
        assert_eq!(hash_secret("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
