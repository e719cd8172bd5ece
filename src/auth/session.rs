//! The identity cookie: who is signed in, how, and since when, sealed in a private cookie.
//!
//! There is no session table. The cookie carries the user's session epoch at sign-in;
//! logout, a password change or disabling the user bumps the epoch in the store, and every
//! cookie carrying an older one stops working.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rocket::time::Duration;
use serde::{Deserialize, Serialize};

use crate::config::SessionSettings;
use crate::cookies::{CookieName, Jar};
use crate::store::User;

pub const SESSION_COOKIE: CookieName = CookieName::new("portal_session", "__Host-portal_session");

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
}

/// What the session cookie holds.
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
    /// Starts a new session for `user`, replacing any cookie the browser had.
    pub fn start(
        jar: &Jar<'_>,
        settings: &SessionSettings,
        user: &User,
        method: Method,
        persist: bool,
        now: i64,
    ) -> Session {
        let session = Session {
            uid: user.id,
            method,
            sid: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()),
            iat: now,
            seen: now,
            epoch: user.session_epoch,
            persist,
        };
        session.write(jar, settings);
        session
    }

    /// The session in the browser's cookie, if it decrypts and parses.
    pub fn read(jar: &Jar<'_>) -> Option<Session> {
        serde_json::from_str(&jar.get(SESSION_COOKIE)?).ok()
    }

    pub fn end(jar: &Jar<'_>) {
        jar.remove(SESSION_COOKIE);
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

    /// Marks the session as seen now and rewrites the cookie.
    pub fn touch(&mut self, jar: &Jar<'_>, settings: &SessionSettings, now: i64) {
        self.seen = now;
        self.write(jar, settings);
    }

    fn write(&self, jar: &Jar<'_>, settings: &SessionSettings) {
        // A kept session may be dropped by the browser once the absolute lifetime is over;
        // the server enforces both limits from the timestamps regardless.
        let remaining = settings.absolute_timeout - (self.seen - self.iat);
        let max_age = self.persist.then(|| Duration::seconds(remaining.max(0)));
        match serde_json::to_string(self) {
            Ok(value) => jar.set(SESSION_COOKIE, value, max_age),
            Err(e) => log::error!("could not encode a session: {e}"),
        }
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
    }

    #[test]
    fn timestamps_from_the_future_are_expired() {
        assert_eq!(session(5000, 5000).freshness(&SETTINGS, 4000), Freshness::Expired);
    }
}
