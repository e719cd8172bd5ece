//! Who is who: the auth service, one set of operations for the pages, the CLI and (later)
//! the API: sign in with a password or a provider, check a session, sign out, link and
//! unlink providers. No HTTP here: operations take plain values and return domain results
//! and errors; the web layer turns those into pages, cookies and redirects.

pub mod device;
pub mod next;
pub mod oauth;
pub mod password;
pub mod session;

use std::net::IpAddr;
use std::sync::Arc;

use crate::auth::oauth::{
    tidy_provider_text, Admission, Flow, FlowError, OAuthError, ProviderKind, Providers,
};
use crate::auth::password::{check_policy, HashError, Hasher, PolicyError, MAX_PASSWORD_BYTES};
use crate::auth::session::{freshness, Freshness, Method, SessionToken};
use crate::clock::Clock;
use crate::config::SessionSettings;
use crate::logging::AUDIT_TARGET;
use crate::store::{
    account_key, LinkError, LinkedIdentity, NewSession, SessionRecord, Store, SweepBefore, Unlinked, User,
    MAX_USERNAME_CHARS,
};
use crate::throttle::{RetryAfter, Throttle};

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
    fn ip_text(&self) -> String {
        self.ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string())
    }
}

/// A password sign-in as submitted.
pub struct PasswordSignIn<'a> {
    pub username: &'a str,
    pub password: &'a str,
    /// "Keep me signed in".
    pub remember: bool,
}

/// A successful sign-in: whom, the session record, and the token its cookie carries.
#[derive(Debug)]
pub struct SignedIn {
    pub user: User,
    pub session: SessionRecord,
    pub token: SessionToken,
}

/// Why an operation could not run. Each variant says what the person sees.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// "Something went wrong on our side" (500).
    #[error("store error: {0}")]
    Store(#[from] sqlx::Error),
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

/// A provider's callback, as it arrived.
#[derive(Debug, Default)]
pub struct Callback<'a> {
    pub code: Option<&'a str>,
    pub state: Option<&'a str>,
    pub error: Option<&'a str>,
    pub error_description: Option<&'a str>,
}

/// Where a provider's callback leads.
#[derive(Debug)]
pub enum Arrival {
    /// Signed in; go to `next`.
    SignedIn { signed_in: Box<SignedIn>, next: String },
    /// The identity is now linked to the signed-in user.
    Linked,
    /// The identity belongs to someone else; nothing changed.
    LinkedElsewhere,
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

/// What the account page shows about the ways to sign in.
#[derive(Debug)]
pub struct Account {
    pub identities: Vec<LinkedIdentity>,
    pub has_password: bool,
}

/// What a session cookie turned out to be worth.
// Made once per request and moved straight into the guard: boxing the valid case would only
// add an allocation to every signed-in request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum SessionCheck {
    Valid {
        user: User,
        session: SessionRecord,
    },
    /// Unknown, ended, expired, or its user is gone or disabled: sign the browser out.
    Invalid,
}

/// A password change as submitted on the account page.
pub struct PasswordChange<'a> {
    /// Required when the account has a password.
    pub current: &'a str,
    pub new: &'a str,
    /// When given, it must equal `new`.
    pub confirm: Option<&'a str>,
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

/// How long after a provider sign-in a person without a password may set one: a fresh
/// proof of who they are stands in for the current password they do not have.
pub const FRESH_SIGN_IN_SECS: i64 = 10 * 60;

/// Sessions deleted by one statement of the sweep: small enough that a sign-in never waits
/// long for the write lock.
pub const SWEEP_BATCH: i64 = 1_000;

/// The auth service (managed state): the store, the hasher, the throttle, the providers,
/// the clock and the session settings, behind one set of operations.
pub struct Auth {
    store: Store,
    hasher: Hasher,
    throttle: Throttle,
    providers: Providers,
    clock: Arc<dyn Clock>,
    session: SessionSettings,
}

impl Auth {
    pub fn new(
        store: Store,
        hasher: Hasher,
        throttle: Throttle,
        providers: Providers,
        clock: Arc<dyn Clock>,
        session: SessionSettings,
    ) -> Auth {
        Auth { store, hasher, throttle, providers, clock, session }
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

    /// Whether the store answers (for `/health`).
    pub async fn health(&self) -> Result<(), AuthError> {
        Ok(self.store.ping().await?)
    }

    /// Checks a username and password. Every path that reaches the hash runs exactly one
    /// Argon2 verification, so an unknown username costs what a wrong password costs; the
    /// attempt is taken out of the throttle's budgets before the hash and given back only
    /// when it was not a guess.
    pub async fn sign_in_with_password(
        &self,
        form: PasswordSignIn<'_>,
        client: &ClientInfo,
    ) -> Result<SignedIn, SignInError> {
        let PasswordSignIn { username, password, remember } = form;
        if username.len() > MAX_USERNAME_BYTES || password.len() > MAX_PASSWORD_BYTES {
            return Err(SignInError::TooLong);
        }
        // Rocket decodes bad percent-escapes to U+FFFD; no real credential contains one.
        if username.contains('\u{FFFD}') || password.contains('\u{FFFD}') {
            return Err(SignInError::Unreadable);
        }
        if username.trim().is_empty() || password.is_empty() {
            return Err(SignInError::Missing);
        }
        // Shed before the store read and the queue: under a flood this is most requests.
        if self.hasher.is_saturated() {
            return Err(AuthError::Busy.into());
        }
        let now = self.now();
        let account = account_key(username);
        let attempt = match self.throttle.reserve_login(&account, client.ip, now) {
            Ok(attempt) => attempt,
            Err(RetryAfter(seconds)) => {
                log_attempt(now, username, client, "throttled");
                return Err(AuthError::Throttled(seconds).into());
            }
        };
        let verdict = match self.verify(username, password).await {
            Ok(verdict) => verdict,
            Err(e) => {
                // No answer was learned: the attempt was not a guess.
                attempt.refund();
                return Err(e.into());
            }
        };
        match verdict {
            Verdict::Invalid => {
                // A wrong guess keeps its place in the budget.
                drop(attempt);
                log_attempt(now, username, client, "invalid-credentials");
                Err(SignInError::Invalid)
            }
            Verdict::Disabled => {
                attempt.refund();
                log_attempt(now, username, client, "disabled-account");
                Err(SignInError::Disabled)
            }
            Verdict::Valid(user) => {
                attempt.refund();
                log_attempt(now, username, client, "success");
                Ok(self.start_session(user, Method::Password, remember, client, now).await?)
            }
        }
    }

    async fn verify(&self, username: &str, password: &str) -> Result<Verdict, AuthError> {
        // A name that cannot be valid finds nobody, and still pays for one (dummy) verify.
        let found = self.store.credentials(username).await?;
        let (user, hash) = match found {
            Some(c) => (Some(c.user), c.password_hash),
            None => (None, None),
        };
        let matched = self.hasher.verify(password.to_owned(), hash).await.map_err(|e| match e {
            HashError::Busy => AuthError::Busy,
            HashError::Failed(why) => AuthError::Internal(why),
        })?;
        Ok(match user {
            Some(user) if matched && user.disabled => Verdict::Disabled,
            Some(user) if matched => Verdict::Valid(user),
            _ => Verdict::Invalid,
        })
    }

    /// Signs `user` in, whatever proved who they are: a new session record, and the sign-in
    /// time recorded (a failure to record that is logged, not fatal).
    async fn start_session(
        &self,
        user: User,
        method: Method,
        persist: bool,
        client: &ClientInfo,
        now: i64,
    ) -> Result<SignedIn, AuthError> {
        let (token, secret_hash) = SessionToken::mint();
        let ip = client.ip.map(|ip| ip.to_string());
        let new = NewSession {
            id: &token.id,
            secret_hash: &secret_hash,
            user_id: user.id,
            method: method.as_str(),
            client: &client.device,
            ip: ip.as_deref(),
            persist,
            now,
        };
        self.store.create_session(new).await?;
        if let Err(e) = self.store.record_login(user.id, now).await {
            log::warn!("could not record the sign-in time of user {}: {e}", user.id);
        }
        let session = SessionRecord {
            id: token.id.clone(),
            user_id: user.id,
            method: method.as_str().to_owned(),
            created_at: now,
            last_seen_at: now,
            ended_at: None,
            client: client.device.clone(),
            ip,
            persist,
        };
        Ok(SignedIn { user, session, token })
    }

    /// What a session cookie's token is worth now. A valid session's last-seen is written
    /// at most every `session.refresh_after` seconds.
    pub async fn check_session(&self, token: &SessionToken) -> Result<SessionCheck, AuthError> {
        let now = self.now();
        let Some((live, user)) = self.store.live_session(&token.id, now).await? else {
            return Ok(SessionCheck::Invalid);
        };
        if !token.proves(&live.secret_hash) || user.disabled {
            return Ok(SessionCheck::Invalid);
        }
        let mut session = live.record;
        match freshness(&session, &self.session, now) {
            Freshness::Expired => return Ok(SessionCheck::Invalid),
            Freshness::Stale => {
                self.store.touch_session(&session.id, now).await?;
                session.last_seen_at = now;
            }
            Freshness::Fresh => {}
        }
        Ok(SessionCheck::Valid { user, session })
    }

    /// Ends this session (logout on this device).
    pub async fn sign_out(&self, user: &User, session: &SessionRecord) -> Result<(), AuthError> {
        self.store.end_session(user.id, &session.id, self.now()).await?;
        log::info!("sign-out user_id={} session={}", user.id, session.id);
        Ok(())
    }

    /// Ends every session of the user ("sign out everywhere").
    pub async fn sign_out_everywhere(&self, user: &User) -> Result<u64, AuthError> {
        let ended = self.store.end_sessions_of(user.id, None, self.now()).await?;
        log::info!("sign-out everywhere user_id={} sessions={ended}", user.id);
        Ok(ended)
    }

    /// Ends every session of the user but `current` ("sign out all other devices").
    pub async fn end_other_sessions(&self, user: &User, current: &SessionRecord) -> Result<u64, AuthError> {
        let ended = self.store.end_sessions_of(user.id, Some(&current.id), self.now()).await?;
        log::info!("user {} ended {ended} other session(s)", user.id);
        Ok(ended)
    }

    /// Ends one of the user's own sessions; `false` when `id` is not a live session of
    /// theirs (nothing is ended then).
    pub async fn end_session(&self, user: &User, id: &str) -> Result<bool, AuthError> {
        let ended = self.store.end_session(user.id, id, self.now()).await?;
        if ended {
            log::info!("user {} ended session {id}", user.id);
        }
        Ok(ended)
    }

    /// The user's live sessions, most recently active first.
    pub async fn sessions(&self, user: &User) -> Result<Vec<SessionRecord>, AuthError> {
        let now = self.now();
        let mut sessions = self.store.sessions_of(user.id).await?;
        sessions.retain(|s| freshness(s, &self.session, now) != Freshness::Expired);
        Ok(sessions)
    }

    /// Changes (or, for someone who signed up through a provider and signed in within
    /// [`FRESH_SIGN_IN_SECS`], sets) the password: the current one is checked like a
    /// sign-in (a wrong one counts toward the throttle), the new one passes the policy and
    /// differs from the old; then every session of the user ends and this device gets a new
    /// one.
    pub async fn change_password(
        &self,
        change: PasswordChange<'_>,
        user: &User,
        session: &SessionRecord,
        client: &ClientInfo,
    ) -> Result<SignedIn, PasswordChangeError> {
        let PasswordChange { current, new, confirm } = change;
        if new.is_empty() {
            return Err(PasswordChangeError::Missing);
        }
        if current.len() > MAX_PASSWORD_BYTES || confirm.is_some_and(|c| c.len() > MAX_PASSWORD_BYTES) {
            return Err(PasswordChangeError::TooLong);
        }
        if confirm.is_some_and(|c| c != new) {
            return Err(PasswordChangeError::Mismatch);
        }
        check_policy(new, &user.username)?;
        let now = self.now();
        if self.store.has_password(user.id).await.map_err(AuthError::from)? {
            if current.is_empty() {
                return Err(PasswordChangeError::Missing);
            }
            let attempt = match self.throttle.reserve_login(&account_key(&user.username), client.ip, now) {
                Ok(attempt) => attempt,
                Err(RetryAfter(seconds)) => return Err(AuthError::Throttled(seconds).into()),
            };
            match self.verify(&user.username, current).await {
                Ok(Verdict::Valid(_)) => attempt.refund(),
                Ok(_) => {
                    log_attempt(now, &user.username, client, "invalid-current-password");
                    return Err(PasswordChangeError::WrongCurrent);
                }
                Err(e) => {
                    attempt.refund();
                    return Err(e.into());
                }
            }
            if current == new {
                return Err(PasswordChangeError::Unchanged);
            }
        } else if now - session.created_at >= FRESH_SIGN_IN_SECS {
            return Err(PasswordChangeError::NotFresh);
        }
        let hash = self.hasher.hash(new.to_owned()).await.map_err(|e| match e {
            HashError::Busy => AuthError::Busy,
            HashError::Failed(why) => AuthError::Internal(why),
        })?;
        self.store.set_password(user.id, &hash, now).await.map_err(AuthError::from)?;
        log::info!("user {} changed their password; every session ended", user.id);
        let method = Method::parse(&session.method).unwrap_or(Method::Password);
        Ok(self.start_session(user.clone(), method, session.persist, client, now).await?)
    }

    /// The sweep, detached from the service so it can run in its own task.
    pub fn sweeper(&self) -> Sweeper {
        Sweeper { store: self.store.clone(), clock: Arc::clone(&self.clock), session: self.session }
    }

    /// Mints a flow for a sign-in through `kind` (throttled per client address), returning
    /// it with the URL to send the browser to. `next` must already be a safe path.
    pub async fn start_provider_sign_in(
        &self,
        kind: ProviderKind,
        next: Option<&str>,
        client: &ClientInfo,
    ) -> Result<(Flow, String), StartError> {
        if !self.providers.is_enabled(kind) {
            return Err(StartError::NotConfigured);
        }
        if let Err(RetryAfter(seconds)) = self.throttle.oauth_start(client.ip, self.now()) {
            log::warn!("{}: throttled sign-in starts from {}", kind.slug(), client.ip_text());
            return Err(AuthError::Throttled(seconds).into());
        }
        self.begin(kind, next, None).await
    }

    /// Mints a flow that links `kind` to the signed-in `user` and comes back to `/account`.
    pub async fn start_provider_link(
        &self,
        kind: ProviderKind,
        user: &User,
    ) -> Result<(Flow, String), StartError> {
        if !self.providers.is_enabled(kind) {
            return Err(StartError::NotConfigured);
        }
        self.begin(kind, Some("/account"), Some(user.id)).await
    }

    async fn begin(
        &self,
        kind: ProviderKind,
        next: Option<&str>,
        link_user: Option<i64>,
    ) -> Result<(Flow, String), StartError> {
        let now = self.now();
        let started = self.providers.start(kind, now).await.map_err(|e| {
            log::warn!("{}: could not start a sign-in: {e}", kind.slug());
            StartError::Unavailable(e)
        })?;
        let flow = Flow {
            provider: kind,
            state: started.state,
            verifier: started.verifier,
            nonce: started.nonce,
            next: next.map(str::to_owned),
            link_user,
            expires: now + oauth::FLOW_LIFETIME_SECS,
        };
        Ok((flow, started.authorize_url))
    }

    /// Completes a provider's callback: checks the flow the browser brought back (already
    /// taken out of it, so it is spent whatever happens), exchanges the code, applies the
    /// policy, and signs in, creates, or links the user. Every failure is logged once with
    /// the provider and a reason.
    pub async fn finish_provider_sign_in(
        &self,
        kind: ProviderKind,
        callback: Callback<'_>,
        stored_flow: Option<&str>,
        me: Option<&User>,
        client: &ClientInfo,
    ) -> Result<Arrival, ArrivalError> {
        if !self.providers.is_enabled(kind) {
            return Err(ArrivalError::NotConfigured);
        }
        let (slug, now) = (kind.slug(), self.now());
        let flow = Flow::check(stored_flow, kind, callback.state, now);
        if let Some(error) = callback.error {
            let error = tidy_provider_text(error);
            log::warn!("{slug}: the provider returned error={error:?}");
            // Without our flow this is a crafted link: show none of its text.
            if flow.is_err() {
                return Err(ArrivalError::TryAgain("an error callback without our flow".into()));
            }
            if error == "access_denied" {
                return Err(ArrivalError::Cancelled);
            }
            return Err(ArrivalError::ProviderSaid(
                callback.error_description.map_or(error, tidy_provider_text),
            ));
        }
        let flow = flow.map_err(|e: FlowError| refused(slug, e.reason()))?;
        let code = callback.code.filter(|c| !c.is_empty()).ok_or_else(|| refused(slug, "no code"))?;

        let (identity, admission) = match self.providers.finish(kind, code, &flow, now).await {
            Ok(found) => found,
            Err(OAuthError::NoVerifiedEmail) => {
                log::warn!("{slug}: sign-in refused: no verified email");
                return Err(ArrivalError::NoVerifiedEmail);
            }
            Err(e) => {
                log::warn!("{slug}: sign-in failed: {e}");
                return Err(ArrivalError::TryAgain(e.to_string()));
            }
        };
        if let Admission::Refused(why) = admission {
            log::warn!("{slug}: sign-in refused by policy: {why}");
            return Err(ArrivalError::NotAllowed(why));
        }

        let email = identity.email.as_deref();
        if let Some(link_user) = flow.link_user {
            let Some(me) = me.filter(|me| me.id == link_user) else {
                return Err(refused(slug, "a link flow that does not belong to the signed-in user"));
            };
            return match self.store.link_identity(me.id, slug, &identity.subject, email, now).await {
                Ok(()) => {
                    log::info!("user {} connected {slug}", me.id);
                    Ok(Arrival::Linked)
                }
                Err(LinkError::TakenByAnother) => Ok(Arrival::LinkedElsewhere),
                Err(LinkError::Store(e)) => Err(AuthError::from(e).into()),
            };
        }
        // Accounts are keyed on (provider, subject) only: a matching email never links
        // accounts, so nobody can pre-register someone's address and wait for them.
        let user = match self
            .store
            .user_by_identity(slug, &identity.subject)
            .await
            .map_err(AuthError::from)?
        {
            Some(user) if user.disabled => {
                log::info!(target: AUDIT_TARGET, "sign-in provider={slug} ip={} outcome=disabled-account", client.ip_text());
                return Err(ArrivalError::Disabled);
            }
            Some(user) => user,
            None => {
                let user = self
                    .store
                    .create_user_for_identity(&identity.username_hint, email, slug, &identity.subject, now)
                    .await
                    .map_err(|e| {
                        AuthError::Internal(format!("could not create a user for a {slug} identity: {e}"))
                    })?;
                log::info!("created user {} (id {}) for a first {slug} sign-in", user.username, user.id);
                user
            }
        };
        log::info!(target: AUDIT_TARGET, "sign-in provider={slug} user_id={} ip={} outcome=success", user.id, client.ip_text());
        let signed_in = self.start_session(user, kind.method(), false, client, now).await?;
        Ok(Arrival::SignedIn {
            signed_in: Box::new(signed_in),
            next: flow.next.unwrap_or_else(|| "/welcome".to_owned()),
        })
    }

    /// The user's ways to sign in.
    pub async fn account(&self, user: &User) -> Result<Account, AuthError> {
        let identities = self.store.identities(user.id).await?;
        let has_password = self.store.has_password(user.id).await?;
        Ok(Account { identities, has_password })
    }

    /// Disconnects `kind` from the user, unless it is their last way to sign in (the rule
    /// and the delete are one store transaction).
    pub async fn unlink(&self, user: &User, kind: ProviderKind) -> Result<Unlinked, AuthError> {
        let unlinked = self.store.unlink_identity(user.id, kind.slug()).await?;
        if unlinked == Unlinked::Done {
            log::info!("user {} disconnected {}", user.id, kind.slug());
        }
        Ok(unlinked)
    }
}

/// Deletes old sessions: what the periodic sweep runs (every `session.sweep_interval`).
pub struct Sweeper {
    store: Store,
    clock: Arc<dyn Clock>,
    session: SessionSettings,
}

impl Sweeper {
    /// Deletes sessions that ended, went idle or outlived their absolute lifetime more than
    /// `session.retention` seconds ago, in batches of [`SWEEP_BATCH`], yielding between
    /// them so that requests are never held up for long. Returns how many went and in how
    /// many batches.
    pub async fn sweep(&self) -> Result<(u64, u64), AuthError> {
        let now = self.clock.now();
        let keep = self.session.retention;
        let before = SweepBefore {
            ended: now - keep,
            last_seen: now - self.session.idle_timeout - keep,
            created: now - self.session.absolute_timeout - keep,
        };
        let (mut deleted, mut batches) = (0, 0);
        loop {
            let gone = self.store.sweep_sessions(before, SWEEP_BATCH).await?;
            deleted += gone;
            batches += 1;
            if gone < SWEEP_BATCH.unsigned_abs() {
                break;
            }
            tokio::task::yield_now().await;
        }
        if deleted > 0 {
            log::info!("swept {deleted} old session(s) in {batches} batch(es)");
        }
        Ok((deleted, batches))
    }

    /// Sweeps now and then every `session.sweep_interval` seconds, for as long as the
    /// server runs.
    pub async fn run(self) {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(self.session.sweep_interval));
        loop {
            every.tick().await;
            if let Err(e) = self.sweep().await {
                log::warn!("the session sweep failed (it runs again later): {e}");
            }
        }
    }
}

/// Logs why a callback was refused, and says "try again" to the person.
fn refused(slug: &str, why: &str) -> ArrivalError {
    log::warn!("{slug}: refused a callback: {why}");
    ArrivalError::TryAgain(why.to_owned())
}

/// The result of checking a username and password.
#[derive(Debug)]
enum Verdict {
    Valid(User),
    /// Unknown user, wrong password, or an account without a password: all look the same.
    Invalid,
    /// Right password, but the account is disabled.
    Disabled,
}

/// One line per sign-in attempt: when, who, from where, and how it went. Never the
/// password; the username is escaped and shortened, since it is whatever was typed.
fn log_attempt(now: i64, username: &str, client: &ClientInfo, outcome: &str) {
    let shown: String = username.chars().take(MAX_USERNAME_CHARS).collect();
    let line =
        format!("sign-in at={} username={shown:?} ip={} outcome={outcome}", rfc3339(now), client.ip_text());
    if outcome == "throttled" {
        log::warn!(target: AUDIT_TARGET, "{line}");
    } else {
        log::info!(target: AUDIT_TARGET, "{line}");
    }
}

fn rfc3339(unix: i64) -> String {
    use rocket::time::{format_description::well_known::Rfc3339, OffsetDateTime};
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}
