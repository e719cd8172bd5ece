//! What the auth service's operations answer when they do not succeed. Each variant says,
//! in its `///` line, what the person sees; the web layer maps them to pages and statuses.

use crate::auth::oauth::OAuthError;
use crate::auth::password::PolicyError;

/// Why an operation could not run. Each variant says what the person sees.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// "The portal is busy" (503) when the store did not answer, "That request could not be
    /// read" (400) for a value it refused, else "Something went wrong on our side" (500).
    #[error("store error: {0}")]
    Store(sqlx::Error),
    /// "The portal is busy, try again in a moment" (503 with Retry-After).
    #[error("too many sign-ins are waiting for a password check")]
    Busy,
    /// "Too many attempts. Wait a moment, then try again." (429 with Retry-After).
    #[error("throttled for {0} s")]
    Throttled(i64),
    /// "Something went wrong on our side" (500).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Every store error an operation meets becomes this, and is counted
/// (`portal_store_errors_total`).
impl From<sqlx::Error> for AuthError {
    fn from(e: sqlx::Error) -> AuthError {
        crate::metrics::get().store_error(crate::store::class(&e).label());
        AuthError::Store(e)
    }
}

/// Why a password sign-in did not sign anyone in. Each variant says what the person sees.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// "That username or password is too long." (413, the form again)
    #[error("a field is too long")]
    TooLong,
    /// "The form contained characters that could not be read." (400, the form again)
    #[error("the form had unreadable characters")]
    Unreadable,
    /// "Enter your username and password." (422, the form again)
    #[error("a field is missing")]
    Missing,
    /// "Invalid username or password." (the form again)
    #[error("invalid credentials")]
    Invalid,
    /// "This account is disabled." (403, the form again)
    #[error("the account is disabled")]
    Disabled,
    #[error(transparent)]
    Failed(#[from] AuthError),
}

/// Why a provider sign-in could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The provider is not configured (404).
    #[error("the provider is not configured")]
    NotConfigured,
    /// "Sign-in with X is not available right now." (back to the login page)
    #[error("the provider could not be reached: {0}")]
    Unavailable(OAuthError),
    #[error(transparent)]
    Failed(#[from] AuthError),
}

/// Why a provider's callback signed nobody in. Each variant says what the person sees;
/// the reason is logged (never with a code, token or secret), not shown.
#[derive(Debug, thiserror::Error)]
pub enum ArrivalError {
    /// The provider is not configured (404).
    #[error("the provider is not configured")]
    NotConfigured,
    /// "Sign-in cancelled: X did not share your account."
    #[error("the person cancelled at the provider")]
    Cancelled,
    /// "Sign-in with X failed: <the provider's words>" (only with our own flow).
    #[error("the provider said: {0}")]
    ProviderSaid(String),
    /// "Sign-in failed, please try again."
    #[error("{0}")]
    TryAgain(String),
    /// "Your X account has no verified email address. …"
    #[error("the account has no verified email address")]
    NoVerifiedEmail,
    /// "Your X account is not allowed to sign in here." (403 page)
    #[error("refused by policy: {0}")]
    NotAllowed(String),
    /// "This account is disabled."
    #[error("the account is disabled")]
    Disabled,
    #[error(transparent)]
    Failed(#[from] AuthError),
}

/// Why a password change was refused. Each variant says what the person sees.
#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    /// "Enter your current password and a new one." (422)
    #[error("a field is missing")]
    Missing,
    /// "That password is too long." (413)
    #[error("a field is too long")]
    TooLong,
    /// "Your current password is not right." (403; counted like a failed sign-in)
    #[error("the current password is wrong")]
    WrongCurrent,
    /// "The new password and its confirmation differ." (422)
    #[error("the confirmation differs")]
    Mismatch,
    /// "Choose a password different from the current one." (422)
    #[error("the new password is the old one")]
    Unchanged,
    /// The policy's own words (422).
    #[error("{0}")]
    Policy(#[from] PolicyError),
    /// "Sign in again with your provider, then set a password within 10 minutes." (403)
    #[error("no password yet, and the session is not a fresh sign-in")]
    NotFresh,
    #[error(transparent)]
    Failed(#[from] AuthError),
}

/// Why a code (an authenticator app's, or a recovery code) did not do what it was for.
/// Each variant says what the person sees.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// "Enter the 6-digit code from your app, or a recovery code." (422, the form again)
    #[error("no code")]
    Missing,
    /// "A code is 6 digits, or a recovery code like 1a2b-3c4d-5e6f." (422, the form again)
    #[error("not a code")]
    Malformed,
    /// "That code is not right." (the form again; counted like a wrong password)
    #[error("wrong or used code")]
    Wrong,
    /// "That took too long: sign in again." (back to the login page)
    #[error("the half-done sign-in expired")]
    Expired,
    /// "This account is disabled." (back to the login page)
    #[error("the account is disabled")]
    Disabled,
    #[error(transparent)]
    Failed(#[from] AuthError),
}

/// Why adding or removing a second factor was refused. Each variant says what the person sees.
#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    /// "Authenticator apps are off here: the server has no secret_key." (the account page)
    #[error("authenticator apps need secret_key")]
    Unavailable,
    /// "You already have an authenticator app. Remove it first to set up another."
    #[error("already set up")]
    AlreadySet,
    /// "Sign in again, then do this within 10 minutes." (the account page)
    #[error("the session is not a fresh sign-in")]
    NotFresh,
    #[error(transparent)]
    Failed(#[from] AuthError),
}
