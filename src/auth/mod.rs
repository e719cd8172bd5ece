//! Who is who: password checks, the session cookie, the request guards, and `next`.

pub mod guard;
pub mod next;
pub mod password;
pub mod session;

use crate::auth::password::{HashError, Hasher, MAX_PASSWORD_BYTES};
use crate::error::Error;
use crate::store::{Store, User, MAX_USERNAME_CHARS};

/// The result of checking a username and password.
#[derive(Debug)]
pub enum Verdict {
    Valid(User),
    /// Unknown user, wrong password, or an account without a password: all look the same.
    Invalid,
    /// Right password, but the account is disabled.
    Disabled,
}

/// Checks credentials. Every path runs exactly one Argon2 verification, so an unknown
/// username costs what a wrong password costs.
pub async fn authenticate(
    store: &Store,
    hasher: &Hasher,
    username: &str,
    password: &str,
) -> Result<Verdict, Error> {
    // Inputs too long to be valid still pay for a verify, like any other miss.
    let plausible =
        username.chars().count() <= MAX_USERNAME_CHARS * 4 && password.len() <= MAX_PASSWORD_BYTES;
    let found = if plausible { store.credentials(username).await? } else { None };
    let (user, hash) = match found {
        Some(c) => (Some(c.user), c.password_hash),
        None => (None, None),
    };
    let matched = hasher.verify(password.to_owned(), hash).await.map_err(|e| match e {
        HashError::Busy => Error::Busy,
        HashError::Failed(why) => Error::Internal(why),
    })?;
    Ok(match user {
        Some(user) if matched && user.disabled => Verdict::Disabled,
        Some(user) if matched => Verdict::Valid(user),
        _ => Verdict::Invalid,
    })
}

/// One line per sign-in attempt: when, who, from where, and how it went. Never the
/// password; the username is escaped and shortened, since it is whatever was typed.
pub fn log_attempt(now: i64, username: &str, ip: Option<std::net::IpAddr>, verdict: &Verdict) {
    let outcome = match verdict {
        Verdict::Valid(_) => "success",
        Verdict::Invalid => "invalid-credentials",
        Verdict::Disabled => "disabled-account",
    };
    let shown: String = username.chars().take(MAX_USERNAME_CHARS).collect();
    let ip = ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
    log::info!(target: "portal::audit", "sign-in at={} username={shown:?} ip={ip} outcome={outcome}", rfc3339(now));
}

fn rfc3339(unix: i64) -> String {
    use rocket::time::{format_description::well_known::Rfc3339, OffsetDateTime};
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}
