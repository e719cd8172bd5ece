//! What a session is: who signed in, how, and since when; and what its timestamps say at a
//! given moment. Carrying it in a cookie is the web layer's job.
//!
//! There is no session table. The session carries the user's session epoch at sign-in;
//! logout, a password change or disabling the user bumps the epoch in the store, and every
//! session carrying an older one stops working.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::config::SessionSettings;
use crate::store::User;

/// How the user proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Password,
    Google,
    Github,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::Google => "google",
            Method::Github => "github",
        }
    }

    /// How pages name it.
    pub fn display_name(self) -> &'static str {
        match self {
            Method::Password => "Password",
            Method::Google => "Google",
            Method::Github => "GitHub",
        }
    }
}

/// A session, as its cookie carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub uid: i64,
    pub method: Method,
    /// Random per sign-in: two logins never produce the same cookie, and logs can name a
    /// session without showing the cookie.
    pub sid: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Last seen (Unix seconds), rewritten at most every `refresh_after` seconds.
    pub seen: i64,
    pub epoch: i64,
    /// "Keep me signed in": the cookie outlives the browser, up to the absolute lifetime.
    /// Otherwise it is a browser-session cookie. The server's limits apply either way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub persist: bool,
}

/// What the timestamps say about a session at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// Valid, but last-seen is old enough to be rewritten.
    Stale,
    Expired,
}

impl Session {
    /// A new session for `user`.
    pub fn new(user: &User, method: Method, persist: bool, now: i64) -> Session {
        Session {
            uid: user.id,
            method,
            sid: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()),
            iat: now,
            seen: now,
            epoch: user.session_epoch,
            persist,
        }
    }

    pub fn freshness(&self, settings: &SessionSettings, now: i64) -> Freshness {
        let idle = now - self.seen;
        let age = now - self.iat;
        // A timestamp from the future means a forged or confused clock: refuse it.
        if idle < 0 || age < 0 || idle >= settings.idle_timeout || age >= settings.absolute_timeout {
            Freshness::Expired
        } else if idle >= settings.refresh_after {
            Freshness::Stale
        } else {
            Freshness::Fresh
        }
    }

    /// Seconds left of the absolute lifetime, from last-seen (what a kept cookie's
    /// `Max-Age` is).
    pub fn remaining(&self, settings: &SessionSettings) -> i64 {
        (settings.absolute_timeout - (self.seen - self.iat)).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(iat: i64, seen: i64) -> Session {
        Session { uid: 1, method: Method::Password, sid: "s".into(), iat, seen, epoch: 0, persist: false }
    }

    const SETTINGS: SessionSettings =
        SessionSettings { idle_timeout: 1800, absolute_timeout: 43200, refresh_after: 60, cache_ttl: 2 };

    #[test]
    fn a_session_is_fresh_then_stale_then_idle_expired() {
        let s = session(1000, 1000);
        assert_eq!(s.freshness(&SETTINGS, 1000), Freshness::Fresh);
        assert_eq!(s.freshness(&SETTINGS, 1059), Freshness::Fresh);
        assert_eq!(s.freshness(&SETTINGS, 1060), Freshness::Stale);
        assert_eq!(s.freshness(&SETTINGS, 1000 + 1799), Freshness::Stale);
        assert_eq!(s.freshness(&SETTINGS, 1000 + 1800), Freshness::Expired);
    }

    #[test]
    fn activity_does_not_extend_past_the_absolute_lifetime() {
        let s = session(0, 43_100);
        assert_eq!(s.freshness(&SETTINGS, 43_150), Freshness::Fresh);
        assert_eq!(s.freshness(&SETTINGS, 43_200), Freshness::Expired);
        assert_eq!(s.remaining(&SETTINGS), 100);
    }

    #[test]
    fn timestamps_from_the_future_are_expired() {
        assert_eq!(session(5000, 5000).freshness(&SETTINGS, 4000), Freshness::Expired);
    }
}
