//! What the auth service sends by mail, and the outbox's worker. "Forgot password?"
//! (`/reset`) queues a one-time link in the transaction that makes it; the worker sends
//! what is due, retries what the server could not take (with backoff, for a day), gives up
//! on what it refused (5xx), and records each message sent or failed in the audit log
//! (never its content).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::auth::admin::{new_token, token_hash};
use crate::auth::audit::{self, Actor, Event, EventKind};
use crate::auth::throttle::RetryAfter;
use crate::auth::{Auth, AuthError, ClientInfo};
use crate::clock::Clock;
use crate::mail::{Letter, Mailer, SendError, To};
use crate::store::{ClaimedMail, NewResetLink, Store, StoreResult, User};

/// How long a link asked for by mail works.
pub const RESET_BY_MAIL_SECS: i64 = 60 * 60;
/// Reset messages one account is sent in an hour at most; more requests get the same answer
/// and send nothing.
const RESETS_PER_HOUR: i64 = 3;
/// Accounts one address may reach (an address several accounts share).
const ACCOUNTS_PER_ADDRESS: i64 = 5;
/// Longest text the "forgot password" field takes.
pub const MAX_LOGIN_BYTES: usize = 320;

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
        for user in self.accounts_named(login).await? {
            let Some(email) = user.email.as_deref().filter(|_| !user.disabled) else { continue };
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
            };
            let mail = outgoing.for_store(Some(user.id), now);
            let since = now - 60 * 60;
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
