//! What the auth service sends by mail, and the outbox's worker. "Forgot password?"
//! (`/reset`) queues a one-time link in the transaction that makes it; the worker sends
//! what is due, retries what the server could not take (with backoff, for a day), gives up
//! on what it refused (5xx), and records each message sent or failed in the audit log
//! (never its content).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sha2::Digest as _;

use crate::auth::admin::{looks_like_token, new_token, token_hash, valid_email};
use crate::auth::audit::{self, Actor, Event, EventKind};
use crate::auth::throttle::RetryAfter;
use crate::auth::{Auth, AuthError, ClientInfo, SECONDS_PER_DAY};
use crate::clock::Clock;
use crate::mail::{Letter, Mailer, Notice, Outgoing, SendError, To, NOTICE_PREFERENCES};
use crate::store::{
    email_key, AfterCreate, ClaimedMail, CreateUserError, NewResetLink, NewUser, Store, StoreResult, User,
};

/// How long a link asked for by mail works.
pub const RESET_BY_MAIL_SECS: i64 = 60 * 60;
/// Reset messages one account is sent in an hour at most; more requests get the same answer
/// and send nothing.
const RESETS_PER_HOUR: i64 = 3;
/// Accounts one address may reach (an address several accounts share).
const ACCOUNTS_PER_ADDRESS: i64 = 5;
/// Longest text the "forgot password" field takes.
pub const MAX_LOGIN_BYTES: usize = 320;

/// A device not seen for this long is new again.
pub const KNOWN_DEVICE_SECS: i64 = 90 * 24 * 60 * 60;

/// How long a verification link works.
pub const VERIFY_SECS: i64 = 24 * 60 * 60;
/// How long an invitation's set-password link works.
pub const INVITE_SECS: i64 = 7 * 24 * 60 * 60;

/// Messages claimed at once.
const BATCH: i64 = 8;
/// How long a claim holds: longer than a send may take (`email.timeout` is checked against
/// it), short enough that a crashed instance's messages go out soon after.
const LEASE_SECS: i64 = 120;
/// How often the worker looks for due messages when nothing woke it (another instance
/// queued them, or a retry came due).
const POLL: Duration = Duration::from_secs(1);
/// First retry after this many seconds; each later one waits twice as long, up to
/// [`MAX_BACKOFF_SECS`].
const FIRST_BACKOFF_SECS: i64 = 5;
const MAX_BACKOFF_SECS: i64 = 30 * 60;
/// A message the server could not take for this long is given up on.
const GIVE_UP_SECS: i64 = 24 * 60 * 60;

/// What changing one's email came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailChange {
    /// A link went to the new address; it counts once it is followed.
    LinkSent(String),
    /// The address is gone.
    Removed,
    /// That is the address already, verified.
    Unchanged,
}

/// Why an email change did not happen. Each says what the person sees.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// "That is not an email address." (the form again)
    #[error("that is not an email address")]
    Invalid,
    /// "The portal sends no mail." (404: the form is not there)
    #[error("the portal sends no mail")]
    MailOff,
    #[error(transparent)]
    Failed(#[from] AuthError),
}

/// The answer to "forgot password": the same whoever was asked about, unless this client
/// asked too often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetRequest {
    /// "If an account matches, we sent a link."
    Answered,
    /// Too many requests from this address: wait.
    Throttled(RetryAfter),
}

impl Auth {
    /// Adds the mailer (`[email]`): mail is off without one.
    pub fn with_mail(mut self, mailer: Option<Mailer>) -> Auth {
        self.mail = mailer.map(Arc::new);
        self
    }

    /// Whether the portal sends mail (`[email]` is set).
    pub fn mail_enabled(&self) -> bool {
        self.mail.is_some()
    }

    /// "Forgot password?": for every enabled account `login` names (a username, else an
    /// email) that has an email, queues a one-time link valid an hour, in the transaction
    /// that makes it. The answer says nothing about the accounts; the work is the same
    /// small write whoever they are, and nothing waits for the mail server.
    pub async fn request_reset(&self, login: &str, client: &ClientInfo) -> Result<ResetRequest, AuthError> {
        let Some(mailer) = &self.mail else { return Ok(ResetRequest::Answered) };
        let now = self.now();
        if let Err(retry) = self.throttle.reset_request(client.ip, now).await? {
            return Ok(ResetRequest::Throttled(retry));
        }
        let login = login.trim();
        if login.is_empty() || login.len() > MAX_LOGIN_BYTES {
            return Ok(ResetRequest::Answered);
        }
        let since = now - 60 * 60;
        for user in self.accounts_named(login).await? {
            let Some(email) = user.email.as_deref().filter(|_| !user.disabled) else { continue };
            if self.store.mail_count_since(user.id, "reset", since).await? >= RESETS_PER_HOUR {
                log::info!("user {}: reset mail not sent: {RESETS_PER_HOUR} in the last hour", user.id);
                continue;
            }
            let token = new_token();
            let letter = Letter::Reset {
                link: mailer.link(&format!("/reset/{token}")),
                minutes: RESET_BY_MAIL_SECS / 60,
            };
            let outgoing = match mailer.compose(&letter, &To { name: &user.username, address: email }) {
                Ok(outgoing) => outgoing,
                Err(e) => {
                    log::warn!("user {}: no reset mail: {e}", user.id);
                    continue;
                }
            };
            let hash = token_hash(&token);
            let link = NewResetLink {
                token_hash: &hash,
                user_id: user.id,
                now,
                expires_at: now + RESET_BY_MAIL_SECS,
                created_by: "mail",
                sent_to: Some(email),
            };
            let mail = outgoing.for_store(Some(user.id), now);
            if self.store.create_reset_link_by_mail(link, mail, since, RESETS_PER_HOUR).await? {
                mailer.wake();
                let detail = json!({ "by": "mail", "expires_at": now + RESET_BY_MAIL_SECS });
                self.record(Event {
                    kind: EventKind::ResetLinkCreated,
                    actor: Actor::Anonymous,
                    subject: Some(user.id),
                    subject_name: None,
                    client: Some(client),
                    detail,
                })
                .await;
                log::info!("user {}: a password link was queued by mail", user.id);
            } else {
                log::info!("user {}: reset mail not sent: {RESETS_PER_HOUR} in the last hour", user.id);
            }
        }
        Ok(ResetRequest::Answered)
    }

    /// Sets, changes or (empty) removes the signed-in user's email. A new address is not
    /// verified until the link mailed to it is followed (within a day).
    pub async fn change_email(
        &self,
        user: &User,
        raw: &str,
        client: &ClientInfo,
    ) -> Result<EmailChange, EmailError> {
        let mailer = self.mail.as_ref().ok_or(EmailError::MailOff)?;
        let email = raw.trim();
        let now = self.now();
        if email.is_empty() {
            if user.email.is_none() {
                return Ok(EmailChange::Removed);
            }
            let notice = self.notice_for(user, Notice::EmailChanged, Some(client), "none (removed)").await;
            let mails: Vec<_> = notice.iter().map(|n| n.for_store(Some(user.id), now)).collect();
            self.store
                .change_email(user.id, None, false, None, &mails, now)
                .await
                .map_err(AuthError::from)?;
            mailer.wake();
            let detail = json!({ "removed": true });
            self.user_did(user.id, EventKind::EmailChanged, Some(client), detail).await;
            return Ok(EmailChange::Removed);
        }
        if !valid_email(email) {
            return Err(EmailError::Invalid);
        }
        let same = user.email.as_deref().is_some_and(|old| email_key(old) == email_key(email));
        if same && user.email_verified {
            return Ok(EmailChange::Unchanged);
        }
        let token = new_token();
        let letter =
            Letter::Verify { link: mailer.link(&format!("/verify/{token}")), hours: VERIFY_SECS / 3600 };
        let outgoing =
            mailer.compose(&letter, &To { name: &user.username, address: email }).map_err(|e| {
                log::warn!("user {}: no verification mail: {e}", user.id);
                EmailError::Invalid
            })?;
        let hash = token_hash(&token);
        // The old address hears of it, when it was verified (and wants to).
        let old_notice = match user.verified_email().filter(|_| !same) {
            Some(_) => self.notice_for(user, Notice::EmailChanged, Some(client), email).await,
            None => None,
        };
        let mut mails = vec![outgoing.for_store(Some(user.id), now)];
        mails.extend(old_notice.as_ref().map(|n| n.for_store(Some(user.id), now)));
        let link = Some((hash.as_str(), now + VERIFY_SECS));
        self.store
            .change_email(user.id, Some(email), false, link, &mails, now)
            .await
            .map_err(AuthError::from)?;
        mailer.wake();
        let detail = json!({ "removed": false, "verified": false });
        self.user_did(user.id, EventKind::EmailChanged, Some(client), detail).await;
        Ok(EmailChange::LinkSent(email.to_owned()))
    }

    /// Follows a verification link (`/verify/<token>`): the address it was sent to, now
    /// verified, or `None` for a link that is unknown, used, expired, or for an address the
    /// user no longer has.
    pub async fn verify_email(&self, token: &str, client: &ClientInfo) -> Result<Option<String>, AuthError> {
        if !looks_like_token(token) {
            return Ok(None);
        }
        let Some((user_id, email)) = self.store.verify_email(&token_hash(token), self.now()).await? else {
            return Ok(None);
        };
        self.record(Event {
            kind: EventKind::EmailVerified,
            actor: Actor::Anonymous,
            subject: Some(user_id),
            subject_name: None,
            client: Some(client),
            detail: json!({}),
        })
        .await;
        log::info!("user {user_id} verified their email address");
        Ok(Some(email))
    }

    /// A new user whose address is proved by mail: a verification link, or an invitation
    /// (a set-password link valid a week), made and queued with the user in one transaction.
    pub(crate) async fn create_user_mailing(
        &self,
        by: &crate::auth::admin::Operator<'_>,
        new: NewUser<'_>,
        email: &str,
        invite: bool,
    ) -> Result<User, CreateUserError> {
        let Some(mailer) = &self.mail else { return self.store.create_user(new, self.now()).await };
        let now = self.now();
        let token = new_token();
        let hash = token_hash(&token);
        let created_by = by.actor.text();
        let (letter, after) = if invite {
            let letter = Letter::Invite {
                link: mailer.link(&format!("/reset/{token}")),
                days: INVITE_SECS / SECONDS_PER_DAY,
                admin: new.is_admin,
            };
            (
                letter,
                AfterCreate::Invite {
                    token_hash: &hash,
                    expires_at: now + INVITE_SECS,
                    created_by: &created_by,
                },
            )
        } else {
            let letter =
                Letter::Verify { link: mailer.link(&format!("/verify/{token}")), hours: VERIFY_SECS / 3600 };
            (letter, AfterCreate::Verify { token_hash: &hash, expires_at: now + VERIFY_SECS })
        };
        // The name is checked by the store; the letter needs it as given.
        let outgoing = mailer.compose(&letter, &To { name: new.username, address: email }).map_err(|e| {
            CreateUserError::Store(sqlx::Error::Protocol(format!("the mail could not be made: {e}")))
        })?;
        let user = self.store.create_user_mailing(new, now, after, outgoing.for_store(None, now)).await?;
        mailer.wake();
        Ok(user)
    }

    /// After a provider sign-in: the provider's verified address proves the user's, when
    /// they are the same.
    pub(crate) async fn provider_verified(&self, user: &User, email: Option<&str>) {
        let Some(email) = email.filter(|_| !user.email_verified) else { return };
        match self.store.mark_email_verified(user.id, email).await {
            Ok(true) => {
                log::info!("user {}: their address is verified by a provider's sign-in", user.id);
                let detail = json!({ "by": "provider" });
                self.user_did(user.id, EventKind::EmailVerified, None, detail).await;
            }
            Ok(false) => {}
            Err(e) => log::warn!("user {}: could not mark the address verified: {e}", user.id),
        }
    }

    /// The notice `notice` for `user`, made and sealed for the outbox: when the portal sends
    /// mail, the user has a verified address and has not turned that notice off. `client`
    /// is where the change came from (`None`: an administrator's console or the command
    /// line); `detail` what was added or removed, or the new address.
    pub(crate) async fn notice_for(
        &self,
        user: &User,
        notice: Notice,
        client: Option<&ClientInfo>,
        detail: &str,
    ) -> Option<Outgoing> {
        let mailer = self.mail.as_ref()?;
        let address = user.verified_email()?;
        match self.store.notices_off(user.id).await {
            Ok(off) if off.split(',').any(|p| p == notice.preference()) => return None,
            Ok(_) => {}
            Err(e) => log::warn!("user {}: could not read their notice preferences: {e}", user.id),
        }
        let (device, ip) = match client {
            Some(client) => (client.device.clone(), client.ip_text()),
            None => ("an administrator (the console or the command line)".to_owned(), "-".to_owned()),
        };
        let letter = Letter::Notice {
            notice,
            when: crate::when::human(self.now()),
            device,
            ip,
            detail: detail.to_owned(),
        };
        match mailer.compose(&letter, &To { name: &user.username, address }) {
            Ok(outgoing) => Some(outgoing),
            Err(e) => {
                log::warn!("user {}: no {} notice: {e}", user.id, notice.preference());
                None
            }
        }
    }

    /// Which notices the user gets (each preference, and whether it is on); none without mail.
    pub async fn notice_preferences(
        &self,
        user: &User,
    ) -> Result<Vec<(&'static str, &'static str, bool)>, AuthError> {
        if self.mail.is_none() {
            return Ok(Vec::new());
        }
        let off = self.store.notices_off(user.id).await?;
        Ok(NOTICE_PREFERENCES
            .iter()
            .map(|(slug, words)| (*slug, *words, !off.split(',').any(|p| p == *slug)))
            .collect())
    }

    /// Keeps the notices named in `on` and turns the others off.
    pub async fn set_notice_preferences(&self, user: &User, on: &[&str]) -> Result<(), AuthError> {
        let off: Vec<&str> =
            NOTICE_PREFERENCES.iter().map(|(slug, _)| *slug).filter(|slug| !on.contains(slug)).collect();
        self.store.set_notices_off(user.id, &off.join(",")).await?;
        Ok(())
    }

    /// Wakes the worker after a notice was queued.
    pub(crate) fn mail_queued(&self) {
        if let Some(mailer) = &self.mail {
            mailer.wake();
        }
    }

    /// The device a sign-in comes from, as the new-device notice compares them: a hash of
    /// the browser's description and the address (with mail only).
    pub(crate) fn device_of(&self, client: &ClientInfo) -> Option<String> {
        self.mail.as_ref()?;
        let digest = sha2::Sha256::digest(format!("{}\n{}", client.device, client.ip_text()).as_bytes());
        Some(digest.iter().take(16).map(|b| format!("{b:02x}")).collect())
    }

    /// The accounts `login` names: the user of that name, else those with that email.
    async fn accounts_named(&self, login: &str) -> Result<Vec<User>, AuthError> {
        if let Some(credentials) = self.store.credentials(login).await? {
            return Ok(vec![credentials.user]);
        }
        if !login.contains('@') {
            return Ok(Vec::new());
        }
        Ok(self.store.users_with_email(login, ACCOUNTS_PER_ADDRESS).await?)
    }

    /// The outbox's worker, when mail is on (spawned once the server is up).
    pub fn outbox(&self) -> Option<Outbox> {
        let mailer = self.mail.clone()?;
        Some(Outbox { store: self.store.clone(), mailer, clock: Arc::clone(&self.clock) })
    }
}

/// Sends what the outbox holds: due messages, a batch at a time, woken when one is queued
/// here and looking every second for the rest.
pub struct Outbox {
    store: Store,
    mailer: Arc<Mailer>,
    clock: Arc<dyn Clock>,
}

/// Seconds to wait after the `attempts`-th failed attempt.
fn backoff(attempts: i32) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(20);
    FIRST_BACKOFF_SECS.saturating_mul(1 << doublings).min(MAX_BACKOFF_SECS)
}

impl Outbox {
    pub async fn run(self) {
        match self.store.release_mail_claims().await {
            Ok(0) => {}
            Ok(n) => log::info!("outbox: {n} message(s) an earlier run was sending are due again"),
            Err(e) => log::warn!("outbox: could not release earlier claims: {e}"),
        }
        loop {
            match self.deliver_due().await {
                Ok(n) if n as i64 == BATCH => continue,
                Ok(_) => {}
                Err(e) => log::warn!("outbox: could not read the outbox (tried again shortly): {e}"),
            }
            self.mailer.woken(POLL).await;
        }
    }

    /// Sends what is due now; how many messages were claimed.
    pub async fn deliver_due(&self) -> StoreResult<usize> {
        let now = self.clock.now();
        let claimed = self.store.claim_mail(now, now + LEASE_SECS, BATCH).await?;
        for mail in &claimed {
            self.deliver(mail).await?;
        }
        Ok(claimed.len())
    }

    async fn deliver(&self, mail: &ClaimedMail) -> StoreResult<()> {
        let outcome = match mail.sealed.as_deref() {
            None => Err(SendError::Permanent("the message's content is gone".into())),
            Some(sealed) => match self.mailer.open(&mail.message_id, sealed) {
                Ok(message) => self.mailer.send(&message).await,
                Err(e) => Err(e),
            },
        };
        let now = self.clock.now();
        let detail = |extra: Option<&str>| {
            let mut detail =
                json!({ "kind": mail.kind, "message": mail.message_id, "attempts": mail.attempts });
            if let Some(error) = extra {
                detail["error"] = json!(error);
            }
            detail
        };
        let (kind, error) = match outcome {
            Ok(()) => {
                self.store.mail_sent(mail.id, now).await?;
                log::info!("outbox: {} message {} sent", mail.kind, mail.id);
                (EventKind::MailSent, None)
            }
            Err(SendError::Transient(why)) if now < mail.created_at + GIVE_UP_SECS => {
                let at = now + backoff(mail.attempts);
                self.store.mail_retry(mail.id, at, &why).await?;
                log::warn!("outbox: message {} not sent ({why}); trying again in {} s", mail.id, at - now);
                return Ok(());
            }
            Err(SendError::Transient(why)) => {
                let why = format!("gave up after a day of trying: {why}");
                self.store.mail_failed(mail.id, &why).await?;
                (EventKind::MailFailed, Some(why))
            }
            Err(SendError::Permanent(why)) => {
                self.store.mail_failed(mail.id, &why).await?;
                (EventKind::MailFailed, Some(why))
            }
        };
        if let Some(why) = &error {
            log::error!("outbox: {} message {} not delivered: {why}", mail.kind, mail.id);
        }
        let event = Event {
            kind,
            actor: Actor::System,
            subject: mail.user_id,
            subject_name: None,
            client: None,
            detail: detail(error.as_deref()),
        };
        audit::write(&self.store, now, event).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_half_an_hour() {
        let waits: Vec<i64> = (1..=12).map(backoff).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640, 1280, 1800, 1800, 1800]);
        assert_eq!(backoff(0), 5);
        assert_eq!(backoff(i32::MAX), 1800);
    }
}
