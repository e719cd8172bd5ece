//! Second factors: an authenticator app (`totp`, its secret sealed by `crate::seal`), recovery
//! codes (`recovery`), and the two-step sign-in they make: after a first step (a password,
//! a provider, a reset link) a user with a second factor gets a half-done sign-in
//! ([`Pending`]), not a session; a code finishes it. A session at level 1 can step up the
//! same way. The policy (`second_factor.required`) sends a user without one to set one up
//! before anything opens.

pub mod passkey;
pub mod recovery;
pub mod totp;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::audit::EventKind;
use crate::auth::session::{Factor, Method, Proof};
use crate::auth::throttle::RetryAfter;
use crate::auth::{Auth, AuthError, ClientInfo, CodeError, FactorError, SignedIn, FRESH_SIGN_IN_SECS};
use crate::mail::Notice;
use crate::store::{account_key, Factors, SessionRecord, User};

/// How long a half-done sign-in lasts.
pub const PENDING_SECS: i64 = 5 * 60;
/// Longest code field read (a recovery code with spaces is 20 or so).
pub const MAX_CODE_BYTES: usize = 64;

/// A sign-in between its two steps, carried by this browser only (a private cookie): who,
/// how the first step went, and where to go afterwards. Nobody is signed in yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub user_id: i64,
    pub method: Method,
    pub remember: bool,
    /// Until when (Unix seconds) the second step may finish it.
    pub until: i64,
    /// The user has no second factor and the policy requires one: set one up first.
    pub setup: bool,
    pub next: Option<String>,
    pub rd: Option<String>,
    /// The provider's session (`sid`), when the first step was a provider's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_sid: Option<String>,
}

/// What a first step comes to.
// Made once per sign-in and taken apart at once: boxing the session would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum FirstStep {
    SignedIn(SignedIn),
    /// A second step (or, with `setup`, setting up a second factor) comes first.
    SecondStep(Pending),
}

/// An authenticator app waiting for its first code: what the setup page shows.
#[derive(Debug, Clone)]
pub struct TotpSetup {
    /// Base32, for typing in.
    pub secret: String,
    /// `otpauth://totp/…`.
    pub uri: String,
    pub qr: Option<totp::QrPath>,
}

/// A code as typed, read.
#[derive(Debug, PartialEq, Eq)]
enum Code {
    Totp(String),
    Recovery(String),
}

fn read_code(typed: &str) -> Result<Code, CodeError> {
    if typed.len() > MAX_CODE_BYTES {
        return Err(CodeError::Malformed);
    }
    let compact: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(CodeError::Missing);
    }
    if compact.len() == totp::DIGITS && compact.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Code::Totp(compact));
    }
    recovery::normalize(&compact).map(Code::Recovery).ok_or(CodeError::Malformed)
}

impl Auth {
    /// After a first step that proved who `user` is: a session, unless they have a second
    /// factor (then its step) or must set one up (then setup, as a half-done sign-in).
    pub(crate) async fn after_first_step(
        &self,
        user: User,
        first: Proof,
        remember: bool,
        client: &ClientInfo,
        now: i64,
    ) -> Result<FirstStep, AuthError> {
        let method = first.method;
        let factors = self.store.factors_of(user.id).await?;
        let setup = !factors.any() && self.second_factor.requires(user.is_admin);
        // A verified passkey is two factors already.
        if method != Method::Passkey && (factors.any() || setup) {
            let until = now + PENDING_SECS;
            let upstream_sid = first.upstream_sid;
            let pending = Pending {
                user_id: user.id,
                method,
                remember,
                until,
                setup,
                next: None,
                rd: None,
                upstream_sid,
            };
            log::info!("sign-in user_id={} first step done, second step next", user.id);
            return Ok(FirstStep::SecondStep(pending));
        }
        Ok(FirstStep::SignedIn(self.start_session(user, first, remember, client, now).await?))
    }

    /// The user of a half-done sign-in and their factors, while it lasts and they may sign in.
    pub async fn pending_user(&self, pending: &Pending) -> Result<(User, Factors), CodeError> {
        if pending.until <= self.now() || pending.until > self.now() + PENDING_SECS {
            return Err(CodeError::Expired);
        }
        let user = self.store.user_by_id(pending.user_id).await.map_err(AuthError::from)?;
        let user = user.ok_or(CodeError::Expired)?;
        if user.disabled {
            return Err(CodeError::Disabled);
        }
        let factors = self.store.factors_of(user.id).await.map_err(AuthError::from)?;
        Ok((user, factors))
    }

    /// Which second factors the user has (the account page, `/api/me`).
    pub async fn factors(&self, user: &User) -> Result<Factors, AuthError> {
        Ok(self.store.factors_of(user.id).await?)
    }

    /// Finishes a half-done sign-in with a code: a session at level 2.
    pub async fn finish_second_step(
        &self,
        pending: &Pending,
        typed: &str,
        client: &ClientInfo,
    ) -> Result<SignedIn, CodeError> {
        let (user, _) = self.pending_user(pending).await?;
        let factor = self.check_code(&user, typed, client).await?;
        let proof = Proof::first(pending.method).with_upstream_sid(pending.upstream_sid.clone()).and(factor);
        Ok(self.start_session(user, proof, pending.remember, client, self.now()).await?)
    }

    /// Steps a level-1 session up with a code: a new session at level 2 (a new id, as for
    /// any change of privilege) and the old one ended.
    pub async fn step_up(
        &self,
        user: &User,
        session: &SessionRecord,
        typed: &str,
        client: &ClientInfo,
    ) -> Result<SignedIn, CodeError> {
        let factor = self.check_code(user, typed, client).await?;
        Ok(self.raise(user, session, factor, client).await?)
    }

    /// A new session at level 2 for `session`'s person, the second factor added to its
    /// methods, and `session` ended.
    pub(crate) async fn raise(
        &self,
        user: &User,
        session: &SessionRecord,
        factor: Factor,
        client: &ClientInfo,
    ) -> Result<SignedIn, AuthError> {
        let now = self.now();
        let proof = Proof::of(session).and(factor);
        let signed_in = self.start_session(user.clone(), proof, session.persist, client, now).await?;
        self.store.end_session(user.id, &session.id, now).await?;
        Ok(signed_in)
    }

    /// Checks a code for `user`: an app's code (each step once) or an unused recovery code
    /// (used up by this). Counted like a password: a wrong one keeps its place in the
    /// throttle's budget for this account and address.
    async fn check_code(&self, user: &User, typed: &str, client: &ClientInfo) -> Result<Factor, CodeError> {
        let code = match read_code(typed) {
            Ok(code) => code,
            Err(e) => {
                if matches!(e, CodeError::Malformed) {
                    self.code_failed(user, client, "unreadable").await;
                }
                return Err(e);
            }
        };
        let now = self.now();
        let account = account_key(&user.username);
        let attempt =
            match self.throttle.reserve_login(&account, client.ip, now).await.map_err(AuthError::from)? {
                Ok(attempt) => attempt,
                Err(RetryAfter(seconds)) => {
                    if self.throttle.first_refusal(&account, client.ip).await {
                        let detail = json!({ "method": "code" });
                        self.attempt_failed(EventKind::SignInThrottled, Some(user.id), client, detail).await;
                    }
                    return Err(AuthError::Throttled(seconds).into());
                }
            };
        let accepted = match &code {
            Code::Totp(digits) => self.take_totp_code(user, digits, now).await?.then_some(Factor::Otp),
            Code::Recovery(normal) => {
                let hash = recovery::hash(user.id, normal);
                let used =
                    self.store.use_recovery_code(user.id, &hash, now).await.map_err(AuthError::from)?;
                if used {
                    let left =
                        self.store.factors_of(user.id).await.map(|f| f.recovery_left).unwrap_or_default();
                    self.user_did(
                        user.id,
                        EventKind::RecoveryCodeUsed,
                        Some(client),
                        json!({ "left": left }),
                    )
                    .await;
                }
                used.then_some(Factor::Recovery)
            }
        };
        match accepted {
            Some(factor) => {
                attempt.refund().await;
                Ok(factor)
            }
            None => {
                drop(attempt);
                let kind = if matches!(code, Code::Totp(_)) { "totp" } else { "recovery" };
                self.code_failed(user, client, kind).await;
                Err(CodeError::Wrong)
            }
        }
    }

    async fn code_failed(&self, user: &User, client: &ClientInfo, kind: &str) {
        log::info!("second step user_id={} ip={} outcome=wrong-code kind={kind}", user.id, client.ip_text());
        let detail = json!({ "code": kind });
        self.attempt_failed(EventKind::SecondFactorFailed, Some(user.id), client, detail).await;
    }

    /// Whether `digits` is the user's app's code now, for a step not used before (the step is
    /// then taken).
    async fn take_totp_code(&self, user: &User, digits: &str, now: i64) -> Result<bool, AuthError> {
        let Some(sealer) = &self.sealer else { return Ok(false) };
        let Some(row) = self.store.totp_of(user.id).await? else { return Ok(false) };
        if row.confirmed_at.is_none() {
            return Ok(false);
        }
        let Some(secret) = sealer.open(&user.id.to_be_bytes(), &row.sealed_secret) else {
            log::error!("user {}'s authenticator secret does not open: was secret_key changed?", user.id);
            return Ok(false);
        };
        let Some(step) = totp::matching_step(&secret, digits, now) else { return Ok(false) };
        Ok(self.store.take_totp_step(user.id, step).await?)
    }

    /// Whether authenticator apps can be set up here.
    pub fn totp_available(&self) -> bool {
        self.sealer.is_some()
    }

    /// The app waiting for its first code, made now unless one is already waiting.
    pub async fn totp_setup(&self, user: &User) -> Result<TotpSetup, FactorError> {
        let sealer = self.sealer.as_ref().ok_or(FactorError::Unavailable)?;
        let existing = self.store.totp_of(user.id).await.map_err(AuthError::from)?;
        let secret = match existing {
            Some(row) if row.confirmed_at.is_some() => return Err(FactorError::AlreadySet),
            Some(row) => sealer.open(&user.id.to_be_bytes(), &row.sealed_secret),
            None => None,
        };
        let secret = match secret {
            Some(secret) => secret,
            None => {
                let secret = totp::new_secret().to_vec();
                let sealed = sealer
                    .seal(&user.id.to_be_bytes(), &secret)
                    .ok_or_else(|| AuthError::Internal("could not seal a secret".into()))?;
                if !self
                    .store
                    .put_pending_totp(user.id, &sealed, self.now())
                    .await
                    .map_err(AuthError::from)?
                {
                    return Err(FactorError::AlreadySet);
                }
                secret
            }
        };
        let uri = totp::otpauth_uri(&secret, &self.site_name, &user.username);
        Ok(TotpSetup { secret: totp::secret_text(&secret), qr: totp::qr_path(&uri), uri })
    }

    /// Turns the waiting app on with its first code. The first second factor of a user
    /// comes with ten recovery codes, returned to be shown once.
    pub async fn confirm_totp(
        &self,
        user: &User,
        typed: &str,
        client: &ClientInfo,
    ) -> Result<Option<Vec<String>>, CodeError> {
        let digits = match read_code(typed)? {
            Code::Totp(digits) => digits,
            Code::Recovery(_) => return Err(CodeError::Malformed),
        };
        let Some(sealer) = &self.sealer else { return Err(CodeError::Expired) };
        let row = self.store.totp_of(user.id).await.map_err(AuthError::from)?;
        let Some(row) = row.filter(|r| r.confirmed_at.is_none()) else { return Err(CodeError::Expired) };
        let secret = sealer.open(&user.id.to_be_bytes(), &row.sealed_secret).ok_or(CodeError::Expired)?;
        let now = self.now();
        let Some(step) = totp::matching_step(&secret, &digits, now) else {
            self.code_failed(user, client, "totp-setup").await;
            return Err(CodeError::Wrong);
        };
        let before = self.store.factors_of(user.id).await.map_err(AuthError::from)?;
        let notice = self.notice_for(user, Notice::FactorAdded, Some(client), "An authenticator app").await;
        let mail = notice.as_ref().map(|n| n.for_store(Some(user.id), now));
        if !self
            .store
            .confirm_totp(user.id, &row.sealed_secret, step, now, mail.as_ref())
            .await
            .map_err(AuthError::from)?
        {
            return Err(CodeError::Expired);
        }
        self.mail_queued();
        log::info!("user {} set up an authenticator app", user.id);
        self.user_did(user.id, EventKind::SecondFactorAdded, Some(client), json!({ "factor": "totp" })).await;
        if before.any() {
            return Ok(None);
        }
        Ok(Some(self.replace_recovery_codes(user, client, false).await?))
    }

    /// Ten new recovery codes for the user; `notify`: a notice goes out (codes made anew, not
    /// the first ones that come with a first factor, whose own notice said it).
    async fn replace_recovery_codes(
        &self,
        user: &User,
        client: &ClientInfo,
        notify: bool,
    ) -> Result<Vec<String>, AuthError> {
        let codes = recovery::new_codes();
        let hashes: Vec<String> = codes
            .iter()
            .filter_map(|c| recovery::normalize(c))
            .map(|n| recovery::hash(user.id, &n))
            .collect();
        let now = self.now();
        let notice = match notify {
            true => self.notice_for(user, Notice::FactorAdded, Some(client), "New recovery codes").await,
            false => None,
        };
        let mail = notice.as_ref().map(|n| n.for_store(Some(user.id), now));
        self.store.replace_recovery_codes(user.id, &hashes, now, mail.as_ref()).await?;
        self.mail_queued();
        let detail = json!({ "factor": "recovery_codes", "count": hashes.len() });
        self.user_did(user.id, EventKind::SecondFactorAdded, Some(client), detail).await;
        Ok(codes)
    }

    /// A fresh set of ten recovery codes, replacing the old ones; only within
    /// [`FRESH_SIGN_IN_SECS`] of signing in, and only for someone with a second factor.
    pub async fn new_recovery_codes(
        &self,
        user: &User,
        session: &SessionRecord,
        client: &ClientInfo,
    ) -> Result<Vec<String>, FactorError> {
        if self.now() - session.created_at >= FRESH_SIGN_IN_SECS {
            return Err(FactorError::NotFresh);
        }
        if !self.store.factors_of(user.id).await.map_err(AuthError::from)?.any() {
            return Err(FactorError::Unavailable);
        }
        Ok(self.replace_recovery_codes(user, client, true).await?)
    }

    /// Removes the user's app (only within [`FRESH_SIGN_IN_SECS`] of signing in). With no
    /// second factor left, the recovery codes go too.
    pub async fn remove_totp(
        &self,
        user: &User,
        session: &SessionRecord,
        client: &ClientInfo,
    ) -> Result<bool, FactorError> {
        if self.now() - session.created_at >= FRESH_SIGN_IN_SECS {
            return Err(FactorError::NotFresh);
        }
        let notice = self.notice_for(user, Notice::FactorRemoved, Some(client), "An authenticator app").await;
        let mail = notice.as_ref().map(|n| n.for_store(Some(user.id), self.now()));
        if !self.store.delete_totp(user.id, mail.as_ref()).await.map_err(AuthError::from)? {
            return Ok(false);
        }
        self.mail_queued();
        if !self.store.factors_of(user.id).await.map_err(AuthError::from)?.any() {
            self.store
                .replace_recovery_codes(user.id, &[], self.now(), None)
                .await
                .map_err(AuthError::from)?;
        }
        log::info!("user {} removed their authenticator app", user.id);
        self.user_did(user.id, EventKind::SecondFactorRemoved, Some(client), json!({ "factor": "totp" }))
            .await;
        Ok(true)
    }

    /// Sets up the app during a half-done sign-in the policy sent to setup, and finishes the
    /// sign-in with it: a session at level 2 and the recovery codes to show.
    pub async fn finish_setup(
        &self,
        pending: &Pending,
        typed: &str,
        client: &ClientInfo,
    ) -> Result<(SignedIn, Vec<String>), CodeError> {
        let (user, _) = self.pending_user(pending).await?;
        let codes = self.confirm_totp(&user, typed, client).await?.unwrap_or_default();
        let proof =
            Proof::first(pending.method).with_upstream_sid(pending.upstream_sid.clone()).and(Factor::Otp);
        let signed_in = self.start_session(user, proof, pending.remember, client, self.now()).await?;
        Ok((signed_in, codes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_as_six_digits_or_a_recovery_code_and_nothing_else() {
        assert_eq!(read_code(" 123 456 ").unwrap(), Code::Totp("123456".into()));
        assert_eq!(read_code("abcd-efgh-jkmn").unwrap(), Code::Recovery("abcdefghjkmn".into()));
        assert!(matches!(read_code(""), Err(CodeError::Missing)));
        assert!(matches!(read_code("   "), Err(CodeError::Missing)));
        assert!(matches!(read_code("12345"), Err(CodeError::Malformed)));
        assert!(matches!(read_code("1234567"), Err(CodeError::Malformed)));
        assert!(matches!(read_code("12a456"), Err(CodeError::Malformed)));
        assert!(matches!(read_code(&"1".repeat(1 << 20)), Err(CodeError::Malformed)));
    }
}
