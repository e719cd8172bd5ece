//! A session's life after sign-in: checking it on every request, ending one or all, listing
//! them, changing the password (which renews this one and ends the rest), and the sweep.

use std::sync::Arc;

use serde_json::json;

use crate::auth::audit::EventKind;
use crate::auth::password::{check_policy, normalized, MAX_PASSWORD_BYTES};
use crate::auth::session::{freshness, Freshness, Proof, SessionToken};
use crate::auth::sign_in::{log_attempt, Verdict};
use crate::auth::throttle::RetryAfter;
use crate::auth::{Auth, AuthError, ClientInfo, PasswordChangeError, SignedIn, SECONDS_PER_DAY};
use crate::clock::Clock;
use crate::config::SessionSettings;
use crate::mail::Notice;
use crate::store::{account_key, SessionRecord, Store, SweepBefore, User};

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

/// How long after a provider sign-in a person without a password may set one: a fresh
/// proof of who they are stands in for the current password they do not have.
pub const FRESH_SIGN_IN_SECS: i64 = 10 * 60;

/// Sessions deleted by one statement of the sweep: small enough that a sign-in never waits
/// long for the write lock.
pub const SWEEP_BATCH: i64 = 1_000;

impl Auth {
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
        let detail = json!({ "session": session.id });
        self.user_did(user.id, EventKind::SignOut, None, detail).await;
        Ok(())
    }

    /// Ends every session of the user ("sign out everywhere").
    pub async fn sign_out_everywhere(&self, user: &User) -> Result<u64, AuthError> {
        let ended = self.store.end_sessions_of(user.id, None, self.now()).await?;
        log::info!("sign-out everywhere user_id={} sessions={ended}", user.id);
        let detail = json!({ "everywhere": true, "sessions": ended });
        self.user_did(user.id, EventKind::SignOut, None, detail).await;
        Ok(ended)
    }

    /// Ends every session of the user but `current` ("sign out all other devices").
    pub async fn end_other_sessions(&self, user: &User, current: &SessionRecord) -> Result<u64, AuthError> {
        let ended = self.store.end_sessions_of(user.id, Some(&current.id), self.now()).await?;
        log::info!("user {} ended {ended} other session(s)", user.id);
        let detail = json!({ "by": "user", "others": true, "sessions": ended });
        self.user_did(user.id, EventKind::SessionEnded, None, detail).await;
        Ok(ended)
    }

    /// Ends one of the user's own sessions; `false` when `id` is not a live session of
    /// theirs (nothing is ended then).
    pub async fn end_session(&self, user: &User, id: &str) -> Result<bool, AuthError> {
        let ended = self.store.end_session(user.id, id, self.now()).await?;
        if ended {
            log::info!("user {} ended session {id}", user.id);
            let detail = json!({ "by": "user", "session": id });
            self.user_did(user.id, EventKind::SessionEnded, None, detail).await;
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
        if confirm.is_some_and(|c| normalized(c) != normalized(new)) {
            return Err(PasswordChangeError::Mismatch);
        }
        check_policy(new, &user.username)?;
        let now = self.now();
        if self.store.has_password(user.id).await.map_err(AuthError::from)? {
            if current.is_empty() {
                return Err(PasswordChangeError::Missing);
            }
            let reserved = self.throttle.reserve_login(&account_key(&user.username), client.ip, now).await;
            let attempt = match reserved.map_err(AuthError::from)? {
                Ok(attempt) => attempt,
                Err(RetryAfter(seconds)) => {
                    crate::metrics::get()
                        .throttled
                        .get_or_create(&crate::metrics::WhatLabels { what: "password" })
                        .inc();
                    return Err(AuthError::Throttled(seconds).into());
                }
            };
            match self.verify(&user.username, current).await {
                Ok(Verdict::Valid(_)) => attempt.refund().await,
                Ok(_) => {
                    log_attempt(now, &user.username, client, "invalid-current-password");
                    let detail = json!({ "method": "password", "reason": "wrong-current-password" });
                    self.user_did(user.id, EventKind::SignInFailed, Some(client), detail).await;
                    return Err(PasswordChangeError::WrongCurrent);
                }
                Err(e) => {
                    attempt.refund().await;
                    return Err(e.into());
                }
            }
            if normalized(current) == normalized(new) {
                return Err(PasswordChangeError::Unchanged);
            }
        } else if now - session.created_at >= FRESH_SIGN_IN_SECS {
            return Err(PasswordChangeError::NotFresh);
        }
        let hash = self.hash(new).await?;
        let notice = self.notice_for(user, Notice::PasswordChanged, Some(client), "").await;
        let mail = notice.as_ref().map(|n| n.for_store(Some(user.id), now));
        self.store.set_password(user.id, &hash, now, mail.as_ref()).await.map_err(AuthError::from)?;
        self.mail_queued();
        log::info!("user {} changed their password; every session ended", user.id);
        let detail = json!({ "by": "user", "sessions_ended": true });
        self.user_did(user.id, EventKind::PasswordChanged, Some(client), detail).await;
        Ok(self.start_session(user.clone(), Proof::of(session), session.persist, client, now).await?)
    }

    /// The sweep, detached from the service so it can run in its own task.
    pub fn sweeper(&self) -> Sweeper {
        Sweeper {
            store: self.store.clone(),
            clock: Arc::clone(&self.clock),
            session: self.session.clone(),
            audit_retention: self.audit_retention,
            throttle_window: self.throttle.window(),
            grant_keep: SECONDS_PER_DAY.max(self.oidc.settings().access_token_secs),
        }
    }
}

/// Deletes old sessions: what the periodic sweep runs (every `session.sweep_interval`).
pub struct Sweeper {
    store: Store,
    clock: Arc<dyn Clock>,
    session: SessionSettings,
    /// Seconds events are kept (`audit.retention_days`).
    audit_retention: i64,
    /// `throttle.window`: stored throttle windows older than this have passed.
    throttle_window: i64,
    /// OpenID grants older than this with no live refresh token are deleted (a day, or an
    /// access token's life if that is longer: a deleted grant ends its tokens).
    grant_keep: i64,
}

impl Sweeper {
    /// Deletes sessions that ended, went idle or outlived their absolute lifetime more than
    /// `session.retention` seconds ago, and audit events older than
    /// `audit.retention_days`, in batches of [`SWEEP_BATCH`], yielding between them so that
    /// requests are never held up for long. Returns how many sessions went and in how many
    /// batches.
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
        let kept_since = now - self.audit_retention;
        let events = in_batches(|| self.store.sweep_events(kept_since, SWEEP_BATCH)).await?;
        if events > 0 {
            log::info!("swept {events} audit event(s) older than the retention");
        }
        // Devices whose notice window has passed.
        self.store.sweep_devices(now - crate::auth::KNOWN_DEVICE_SECS).await?;
        // Sent and failed mail, as long as the audit log keeps its events.
        let mail = in_batches(|| self.store.sweep_outbox(kept_since, SWEEP_BATCH)).await?;
        if mail > 0 {
            log::info!("swept {mail} sent or failed message(s) from the outbox");
        }
        // Throttle windows in the store (PostgreSQL) that have passed.
        self.store.sweep_throttle(now - self.throttle_window).await?;
        // Passkey ceremonies nobody finished.
        self.store.sweep_ceremonies(now).await?;
        // OpenID grants nothing can use any more, and spent refresh tokens.
        let grants = self.store.sweep_grants(now - self.grant_keep, now).await?;
        if grants > 0 {
            log::info!("swept {grants} spent OpenID grant(s) and refresh token(s)");
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

/// Runs `sweep` (one batch of [`SWEEP_BATCH`] deletions) until a batch comes back short,
/// letting other tasks run between batches; how many rows went in all.
async fn in_batches<F, Fut>(mut sweep: F) -> Result<u64, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, sqlx::Error>>,
{
    let mut total = 0;
    loop {
        let gone = sweep().await?;
        total += gone;
        if gone < SWEEP_BATCH.unsigned_abs() {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}
