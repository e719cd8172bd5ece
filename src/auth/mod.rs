//! Who is who: password checks, the session cookie, the request guards, and `next`.

pub mod guard;
pub mod next;
pub mod oauth;
pub mod password;
pub mod session;

use crate::auth::oauth::Identity;
use crate::auth::password::{HashError, Hasher};
use crate::auth::session::{Method, Session};
use crate::config::SessionSettings;
use crate::cookies::Jar;
use crate::csrf::CsrfToken;
use crate::error::Error;
use crate::flash::Kind;
use crate::store::{LinkError, Store, User, MAX_USERNAME_CHARS};

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
    // A name that cannot be valid finds nobody, and still pays for one (dummy) verify.
    let found = store.credentials(username).await?;
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
    log::info!(target: crate::logging::AUDIT_TARGET, "{}", attempt_line(now, username, ip, outcome));
}

/// The line for an attempt refused by throttling, before any hash ran.
pub fn log_throttled(now: i64, username: &str, ip: Option<std::net::IpAddr>) {
    log::warn!(target: crate::logging::AUDIT_TARGET, "{}", attempt_line(now, username, ip, "throttled"));
}

fn attempt_line(now: i64, username: &str, ip: Option<std::net::IpAddr>, outcome: &str) -> String {
    let shown: String = username.chars().take(MAX_USERNAME_CHARS).collect();
    let ip = ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
    format!("sign-in at={} username={shown:?} ip={ip} outcome={outcome}", rfc3339(now))
}

fn rfc3339(unix: i64) -> String {
    use rocket::time::{format_description::well_known::Rfc3339, OffsetDateTime};
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// Signs `user` in, whatever proved who they are: a fresh session cookie, a fresh CSRF
/// token, the sign-in time recorded, and a greeting on the next page.
pub async fn complete_sign_in(
    jar: &Jar<'_>,
    settings: &SessionSettings,
    store: &Store,
    user: &User,
    method: Method,
    persist: bool,
    now: i64,
) {
    Session::start(jar, settings, user, method, persist, now);
    CsrfToken::rotate(jar);
    if let Err(e) = store.record_login(user.id, now).await {
        log::warn!("could not record the sign-in time of user {}: {e}", user.id);
    }
    jar.flash(Kind::Success, "You are now signed in.");
}

/// What a verified provider identity leads to.
#[derive(Debug)]
pub enum Arrival {
    /// Sign this user in (found by the identity, or just created for it).
    SignIn(User),
    /// The identity is now linked to the signed-in user.
    Linked,
    /// The identity belongs to someone else; nothing changed.
    LinkedElsewhere,
    Disabled,
}

/// Finds or creates the user for an identity, or links it to `link_to`. Accounts are
/// keyed on (provider, subject) only: a matching email never links accounts, so nobody can
/// pre-register someone's address and wait for them.
pub async fn arrive(
    store: &Store,
    identity: &Identity,
    link_to: Option<&User>,
    now: i64,
) -> Result<Arrival, Error> {
    let provider = identity.provider.slug();
    let email = identity.email.as_deref();
    if let Some(user) = link_to {
        return match store.link_identity(user.id, provider, &identity.subject, email, now).await {
            Ok(()) => Ok(Arrival::Linked),
            Err(LinkError::TakenByAnother) => Ok(Arrival::LinkedElsewhere),
            Err(LinkError::Store(e)) => Err(e.into()),
        };
    }
    match store.user_by_identity(provider, &identity.subject).await? {
        Some(user) if user.disabled => Ok(Arrival::Disabled),
        Some(user) => Ok(Arrival::SignIn(user)),
        None => {
            let user = store
                .create_user_for_identity(&identity.username_hint, email, provider, &identity.subject, now)
                .await
                .map_err(|e| {
                    Error::Internal(format!("could not create a user for a {provider} identity: {e}"))
                })?;
            log::info!("created user {} (id {}) for a first {provider} sign-in", user.username, user.id);
            Ok(Arrival::SignIn(user))
        }
    }
}
