//! Who is who: the auth service, one set of operations for the pages and the JSON API: sign
//! in with a password or a provider (`sign_in`, `providers`), check, list and end sessions
//! and change the password (`lifecycle`), link and unlink providers, follow a one-time
//! password link (`reset`), and what administrators do (`admin`). No HTTP here: operations take plain values and return domain results
//! and errors; the web layer turns those into pages, cookies and redirects.

pub mod admin;
pub mod assertion;
pub mod audit;
mod authz;
pub mod device;
mod errors;
pub mod factors;
pub mod forward;
mod lifecycle;
mod mail;
pub mod next;
pub mod oauth;
pub mod password;
pub mod provider;
mod providers;
mod reset;
pub mod session;
mod sign_in;
pub mod throttle;

use std::net::IpAddr;
use std::sync::Arc;

use crate::auth::oauth::Providers;
use crate::auth::password::Hasher;
use crate::clock::Clock;
use crate::config::{SecondFactorSettings, SessionSettings, Settings};

const SECONDS_PER_DAY: i64 = 24 * 60 * 60;
use crate::auth::throttle::Throttle;
use crate::store::Store;

pub use self::authz::Gate;
pub use self::errors::{
    ArrivalError, AuthError, CodeError, FactorError, PasswordChangeError, SignInError, StartError,
};
pub use self::factors::{FirstStep, Pending, TotpSetup};
pub use self::lifecycle::{PasswordChange, SessionCheck, Sweeper, FRESH_SIGN_IN_SECS, SWEEP_BATCH};
pub use self::mail::{
    EmailChange, EmailError, Outbox, ResetRequest, INVITE_SECS, KNOWN_DEVICE_SECS, MAX_LOGIN_BYTES,
    RESET_BY_MAIL_SECS, VERIFY_SECS,
};
pub use self::providers::{Account, Arrival, BackchannelError, Callback};
pub use self::reset::{Reset, ResetError};
pub use self::sign_in::{PasswordSignIn, SignedIn};

/// Longest username field accepted (usernames are 64 characters at most; this leaves room
/// for multi-byte ones).
pub const MAX_USERNAME_BYTES: usize = 256;

/// Who is asking: the client's address as the portal sees it, and its browser as a person
/// would name it ("Firefox on Linux", from [`device::describe`]).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub device: String,
}

impl ClientInfo {
    pub(crate) fn ip_text(&self) -> String {
        self.ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string())
    }
}

/// The auth service (managed state): the store, the hasher, the throttle, the providers,
/// the clock and the session settings, behind one set of operations.
pub struct Auth {
    store: Store,
    hasher: Hasher,
    throttle: Throttle,
    providers: Providers,
    clock: Arc<dyn Clock>,
    session: SessionSettings,
    /// Seconds audit events are kept.
    audit_retention: i64,
    /// Forward-auth's rules.
    forward: self::forward::Policy,
    /// Signs forward-auth assertions.
    signer: self::assertion::Signer,
    /// The assertions' `iss`: `public_url`'s origin (empty without one).
    issuer: String,
    /// Who must have a second factor.
    second_factor: SecondFactorSettings,
    /// Seals authenticator-app secrets; `None` without `secret_key` (apps are off then).
    sealer: Option<crate::seal::Sealer>,
    /// `branding.name`: the issuer authenticator apps show.
    site_name: String,
    /// The passkeys' relying party, or why passkeys are off.
    passkeys: Result<self::factors::passkey::Passkeys, &'static str>,
    /// The OpenID provider: its settings and configured clients.
    oidc: self::provider::Provider,
    /// Makes and sends mail (`[email]`); `None`: the portal sends none.
    mail: Option<Arc<crate::mail::Mailer>>,
}

impl Auth {
    /// The service; `settings` were validated section by section. The forward-auth policy is
    /// read here, once: a bad one is the one-line error that stops startup.
    pub fn new(
        store: Store,
        hasher: Hasher,
        throttle: Throttle,
        providers: Providers,
        clock: Arc<dyn Clock>,
        settings: &Settings,
    ) -> Result<Auth, String> {
        let audit_retention = settings.audit.retention_days.saturating_mul(SECONDS_PER_DAY);
        let forward = self::forward::Policy::from_settings(&settings.forward_auth)?;
        let signer = self::assertion::Signer::new(store.clone());
        let oidc = self::provider::Provider::from_settings(&settings.oidc)?;
        let issuer = settings.public_url.as_ref().map(|p| p.origin().to_owned()).unwrap_or_default();
        Ok(Auth {
            store,
            hasher,
            throttle,
            providers,
            clock,
            session: settings.session.clone(),
            audit_retention,
            forward,
            signer,
            issuer,
            second_factor: settings.second_factor,
            sealer: settings.factor_key.as_ref().and_then(|key| crate::seal::Sealer::new(&key.0)),
            site_name: settings.branding.name.clone(),
            passkeys: self::factors::passkey::Passkeys::new(
                settings.public_url.as_ref(),
                &settings.branding.name,
            ),
            oidc,
            mail: None,
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    pub fn session_settings(&self) -> &SessionSettings {
        &self.session
    }

    pub fn second_factor_settings(&self) -> &SecondFactorSettings {
        &self.second_factor
    }

    /// Whether the store answers (for `/health`).
    pub async fn health(&self) -> Result<(), AuthError> {
        Ok(self.store.ping().await?)
    }
}
