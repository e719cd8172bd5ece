//! Signing in with a username and password, and starting a session for whoever proved who
//! they are; one log line per attempt.

use serde_json::json;

use crate::auth::audit::{typed_name, EventKind};
use crate::auth::factors::FirstStep;
use crate::auth::password::{HashError, PasswordMatch, MAX_PASSWORD_BYTES};
use crate::auth::session::{Method, Proof, SessionToken};
use crate::auth::throttle::RetryAfter;
use crate::auth::{Auth, AuthError, ClientInfo, SignInError, MAX_USERNAME_BYTES};
use crate::logging::AUDIT_TARGET;
use crate::mail::Notice;
use crate::store::{
    account_key, DeviceSeen, NewSession, SessionRecord, User, MAX_USERNAME_CHARS, NOTICE_SECOND_FACTOR_RESET,
};
use crate::when::rfc3339;

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
    /// When an administrator reset the user's second factors, if they have not been told.
    pub factors_reset_at: Option<i64>,
}

impl Auth {
    /// Checks a username and password. Every path that reaches the hash runs exactly one
    /// Argon2 verification, so an unknown username costs what a wrong password costs; the
    /// attempt is taken out of the throttle's budgets before the hash and given back only
    /// when it was not a guess.
    pub async fn sign_in_with_password(
        &self,
        form: PasswordSignIn<'_>,
        client: &ClientInfo,
    ) -> Result<FirstStep, SignInError> {
        let result = self.check_password_sign_in(form, client).await;
        let outcome = match &result {
            Ok(FirstStep::SignedIn(_)) => "success",
            Ok(FirstStep::SecondStep(_)) => "second-step",
            Err(SignInError::Invalid) => "invalid",
            Err(SignInError::Disabled) => "disabled",
            Err(SignInError::Failed(AuthError::Throttled(_))) => "throttled",
            Err(SignInError::Failed(AuthError::Busy)) => "busy",
            Err(SignInError::Failed(_)) => "error",
            Err(_) => "unreadable",
        };
        crate::metrics::get().sign_in("password", outcome);
        result
    }

    async fn check_password_sign_in(
        &self,
        form: PasswordSignIn<'_>,
        client: &ClientInfo,
    ) -> Result<FirstStep, SignInError> {
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
        let attempt =
            match self.throttle.reserve_login(&account, client.ip, now).await.map_err(AuthError::from)? {
                Ok(attempt) => attempt,
                Err(RetryAfter(seconds)) => {
                    log_attempt(now, username, client, "throttled");
                    if self.throttle.first_refusal(&account, client.ip).await {
                        let detail = json!({ "method": "password", "username": typed_name(username) });
                        self.attempt_failed(EventKind::SignInThrottled, None, client, detail).await;
                    }
                    return Err(AuthError::Throttled(seconds).into());
                }
            };
        let verdict = match self.verify(username, password).await {
            Ok(verdict) => verdict,
            Err(e) => {
                // No answer was learned: the attempt was not a guess.
                attempt.refund().await;
                return Err(e.into());
            }
        };
        match verdict {
            Verdict::Invalid(known) => {
                // A wrong guess keeps its place in the budget.
                drop(attempt);
                log_attempt(now, username, client, "invalid-credentials");
                // An unknown name is kept as typed (shortened), so a spray shows; a known
                // one is the subject.
                let detail = match known {
                    Some(_) => json!({ "method": "password", "reason": "invalid-credentials" }),
                    None => {
                        json!({ "method": "password", "reason": "unknown-user", "username": typed_name(username) })
                    }
                };
                self.attempt_failed(EventKind::SignInFailed, known, client, detail).await;
                Err(SignInError::Invalid)
            }
            Verdict::Disabled(id) => {
                attempt.refund().await;
                log_attempt(now, username, client, "disabled-account");
                let detail = json!({ "method": "password", "reason": "disabled-account" });
                self.attempt_failed(EventKind::SignInFailed, Some(id), client, detail).await;
                Err(SignInError::Disabled)
            }
            Verdict::Valid(user) => {
                attempt.refund().await;
                log_attempt(now, username, client, "success");
                Ok(self.after_first_step(user, Proof::first(Method::Password), remember, client, now).await?)
            }
        }
    }

    pub(super) async fn verify(&self, username: &str, password: &str) -> Result<Verdict, AuthError> {
        // A name that cannot be valid finds nobody, and still pays for one (dummy) verify.
        let found = self.store.credentials(username).await?;
        let (user, hash) = match found {
            Some(c) => (Some(c.user), c.password_hash),
            None => (None, None),
        };
        let stored = hash.clone();
        let matched = self.hasher.check(password.to_owned(), hash).await.map_err(|e| match e {
            HashError::Busy => AuthError::Busy,
            HashError::Failed(why) => AuthError::Internal(why),
        })?;
        Ok(match user {
            Some(user) if matched != PasswordMatch::No && user.disabled => Verdict::Disabled(user.id),
            Some(user) if matched != PasswordMatch::No => {
                if let (PasswordMatch::AsTyped, Some(old)) = (matched, stored) {
                    self.renew_hash(user.id, &old, password).await;
                }
                Verdict::Valid(user)
            }
            known => Verdict::Invalid(known.map(|u| u.id)),
        })
    }

    /// Replaces a hash made before passwords were normalised (it matched the password only
    /// as typed) with a hash of the NFC form, so the same characters typed any way match
    /// from now on. Sessions stay: the password is the same. A failure is logged, not the
    /// sign-in's: the old hash keeps working.
    async fn renew_hash(&self, user_id: i64, old: &str, password: &str) {
        let renewed = match self.hash(password).await {
            Ok(new) => self.store.renew_password_hash(user_id, old, &new).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match renewed {
            Ok(true) => log::info!("user {user_id}'s password hash was renewed from its NFC form"),
            Ok(false) => {}
            Err(e) => log::warn!("could not renew user {user_id}'s password hash: {e}"),
        }
    }

    /// Signs `user` in, whatever proved who they are: a new session record, and the sign-in
    /// time recorded (a failure to record that is logged, not fatal).
    pub(super) async fn start_session(
        &self,
        user: User,
        proof: Proof,
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
            method: proof.method.as_str(),
            methods: &proof.methods,
            aal: proof.aal,
            client: &client.device,
            ip: ip.as_deref(),
            persist,
            upstream_sid: proof.upstream_sid.as_deref(),
            now,
        };
        // With mail, the device is noted, and a new one may send a notice (in the same
        // transaction as the session).
        match self.device_of(client) {
            Some(device) => {
                let notice = self.notice_for(&user, Notice::NewDevice, Some(client), "").await;
                let mail = notice.as_ref().map(|n| n.for_store(Some(user.id), now));
                let seen = DeviceSeen { key: &device, known_since: now - crate::auth::KNOWN_DEVICE_SECS };
                if self.store.create_session_noting_device(new, seen, mail.as_ref()).await? && mail.is_some()
                {
                    self.mail_queued();
                }
            }
            None => self.store.create_session(new).await?,
        }
        crate::metrics::get()
            .sessions_started
            .get_or_create(&crate::metrics::MethodLabels { method: proof.method.label() })
            .inc();
        if let Err(e) = self.store.record_login(user.id, now).await {
            log::warn!("could not record the sign-in time of user {}: {e}", user.id);
        }
        let detail = json!({
            "method": proof.method.as_str(), "methods": proof.methods, "aal": proof.aal, "session": token.id
        });
        self.user_did(user.id, EventKind::SignInSucceeded, Some(client), detail).await;
        let factors_reset_at = match self.store.take_notice(user.id, NOTICE_SECOND_FACTOR_RESET).await {
            Ok(at) => at,
            Err(e) => {
                log::warn!("could not read the notices of user {}: {e}", user.id);
                None
            }
        };
        let session = SessionRecord {
            id: token.id.clone(),
            user_id: user.id,
            method: proof.method.as_str().to_owned(),
            methods: proof.methods,
            aal: proof.aal,
            created_at: now,
            last_seen_at: now,
            ended_at: None,
            client: client.device.clone(),
            ip,
            persist,
            upstream_sid: proof.upstream_sid,
        };
        Ok(SignedIn { user, session, token, factors_reset_at })
    }
}

/// The result of checking a username and password.
#[derive(Debug)]
pub(super) enum Verdict {
    Valid(User),
    /// Unknown user (`None`), wrong password, or an account without a password: all look
    /// the same to the person.
    Invalid(Option<i64>),
    /// Right password, but the account is disabled.
    Disabled(i64),
}

/// One line per sign-in attempt: when, who, from where, and how it went. Never the
/// password; the username is escaped and shortened, since it is whatever was typed.
pub(super) fn log_attempt(now: i64, username: &str, client: &ClientInfo, outcome: &str) {
    let shown: String = username.chars().take(MAX_USERNAME_CHARS).collect();
    let line =
        format!("sign-in at={} username={shown:?} ip={} outcome={outcome}", rfc3339(now), client.ip_text());
    if outcome == "throttled" {
        log::warn!(target: AUDIT_TARGET, "{line}");
    } else {
        log::info!(target: AUDIT_TARGET, "{line}");
    }
}
