//! The `sessions` table: one row per sign-in, with a hash of the secret its cookie carries.
//! Ending a session sets `ended_at`; the sweep deletes old rows in bounded batches.

use serde::Serialize;

use super::notify::Revoked;
use super::{skip_locked, NewMail, Store, StoreResult, User};

/// A session as the account page and the API show it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: i64,
    /// The first step: `password`, `google`, `github` or `passkey`.
    pub method: String,
    /// Every method used, space-separated: `pwd`, `otp`, `recovery`, `passkey` or a
    /// provider's name (`pwd otp`).
    pub methods: String,
    /// The assurance level: 1 (one factor) or 2 (two, or a passkey with user verification).
    pub aal: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub ended_at: Option<i64>,
    /// "Firefox on Linux".
    pub client: String,
    pub ip: Option<String>,
    pub persist: bool,
    /// The provider's session (`sid`) it was made through, for back-channel logout.
    #[serde(skip)]
    pub upstream_sid: Option<String>,
}

/// A session as the guard reads it: the record and the hash its secret must match.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LiveSession {
    #[sqlx(flatten)]
    pub record: SessionRecord,
    pub secret_hash: String,
}

/// A session and its user, as one query reads them.
#[derive(sqlx::FromRow)]
struct Joined {
    #[sqlx(flatten)]
    session: LiveSession,
    u_username: String,
    u_email: Option<String>,
    u_email_verified: bool,
    u_is_admin: bool,
    u_disabled: bool,
    u_created_at: i64,
    u_last_login_at: Option<i64>,
}

impl Joined {
    fn split(self) -> (LiveSession, User) {
        let user = User {
            id: self.session.record.user_id,
            username: self.u_username,
            email: self.u_email,
            email_verified: self.u_email_verified,
            is_admin: self.u_is_admin,
            disabled: self.u_disabled,
            created_at: self.u_created_at,
            last_login_at: self.u_last_login_at,
        };
        (self.session, user)
    }
}

/// The device a session is made from, as the new-device notice knows it.
#[derive(Debug, Clone, Copy)]
pub struct DeviceSeen<'a> {
    /// A hash of the browser's description and the address.
    pub key: &'a str,
    /// Seen at or after this, it is known.
    pub known_since: i64,
}

/// Inserts a session on `$executor`.
macro_rules! insert_session {
    ($executor:expr, $new:expr) => {
        sqlx::query(
            "INSERT INTO sessions (id, secret_hash, user_id, method, methods, aal, created_at, last_seen_at, client, ip, persist, upstream_sid)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11)",
        )
        .bind($new.id)
        .bind($new.secret_hash)
        .bind($new.user_id)
        .bind($new.method)
        .bind($new.methods)
        .bind($new.aal)
        .bind($new.now)
        .bind($new.client)
        .bind($new.ip)
        .bind($new.persist)
        .bind($new.upstream_sid)
        .execute($executor)
        .await
        .map(|_| ())
    };
}

/// A session about to be stored.
pub struct NewSession<'a> {
    pub id: &'a str,
    pub secret_hash: &'a str,
    pub user_id: i64,
    pub method: &'a str,
    pub methods: &'a str,
    pub aal: i64,
    pub client: &'a str,
    pub ip: Option<&'a str>,
    pub persist: bool,
    pub upstream_sid: Option<&'a str>,
    pub now: i64,
}

/// Which sessions the sweep deletes: ended, idle or past their absolute lifetime before
/// these times.
#[derive(Debug, Clone, Copy)]
pub struct SweepBefore {
    pub ended: i64,
    pub last_seen: i64,
    pub created: i64,
}

const SESSION_COLUMNS: &str =
    "id, user_id, method, methods, aal, created_at, last_seen_at, ended_at, client, ip, persist, upstream_sid";

impl Store {
    pub async fn create_session(&self, new: NewSession<'_>) -> StoreResult<()> {
        on_pool!(&self.pool, p => insert_session!(p, new))
    }

    /// Stores a session and notes the device it came from, in one transaction; when the
    /// device is new to the user (not seen since `device.known_since`) and the user had
    /// signed in from somewhere before, queues `notice` too. Whether it was such a device.
    pub async fn create_session_noting_device(
        &self,
        new: NewSession<'_>,
        device: DeviceSeen<'_>,
        notice: Option<&NewMail<'_>>,
    ) -> StoreResult<bool> {
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            insert_session!(&mut *tx, new)?;
            let (seen, any): (Option<i64>, i64) = sqlx::query_as(
                "SELECT (SELECT last_seen FROM known_devices WHERE user_id = $1 AND device = $2),
                        (SELECT COUNT(*) FROM known_devices WHERE user_id = $1)",
            )
            .bind(new.user_id)
            .bind(device.key)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO known_devices (user_id, device, first_seen, last_seen) VALUES ($1, $2, $3, $3)
                 ON CONFLICT (user_id, device) DO UPDATE SET last_seen = $3",
            )
            .bind(new.user_id)
            .bind(device.key)
            .bind(new.now)
            .execute(&mut *tx)
            .await?;
            let new_device = any > 0 && seen.is_none_or(|at| at < device.known_since);
            commit_with!(tx, notice.filter(|_| new_device))?;
            Ok(new_device)
        })
    }

    /// Forgets devices last seen before `before` (a notice's 90 days have passed).
    pub async fn sweep_devices(&self, before: i64) -> StoreResult<u64> {
        on_pool!(&self.pool, p => sqlx::query("DELETE FROM known_devices WHERE last_seen < $1")
            .bind(before)
            .execute(p)
            .await
            .map(|done| done.rows_affected()))
    }

    /// A session and its user, read at most once per `session.cache_ttl` seconds.
    pub async fn live_session(&self, id: &str, now: i64) -> StoreResult<Option<(LiveSession, User)>> {
        if let Some(found) = self.sessions.get(id, now) {
            return Ok(found);
        }
        let ticket = self.sessions.begin_read();
        // One round trip: the session and its user together.
        let joined: Option<Joined> = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT s.id, s.user_id, s.method, s.methods, s.aal, s.created_at, s.last_seen_at, s.ended_at, s.client, s.ip,
                    s.persist, s.upstream_sid, s.secret_hash, u.username AS u_username, u.email AS u_email, u.email_verified AS u_email_verified,
                    u.is_admin AS u_is_admin, u.disabled AS u_disabled, u.created_at AS u_created_at,
                    u.last_login_at AS u_last_login_at
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await)?;
        let found = joined.map(Joined::split);
        self.sessions.put(ticket, id, found.as_ref(), now);
        Ok(found)
    }

    /// Records activity (at most every `session.refresh_after` seconds, the guard decides).
    pub async fn touch_session(&self, id: &str, now: i64) -> StoreResult<()> {
        on_pool!(&self.pool, p => sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND ended_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(p)
            .await
            .map(|_| ()))?;
        // Activity, not a revocation: only this instance's copy is stale.
        self.sessions.forget_session(id);
        Ok(())
    }

    /// Ends one live session of `user_id`; `false` when there is no such live session of
    /// theirs (another user's id, a made-up one, one already ended).
    pub async fn end_session(&self, user_id: i64, id: &str, now: i64) -> StoreResult<bool> {
        let ended = on_pool!(&self.pool, p => sqlx::query(
            "UPDATE sessions SET ended_at = $1 WHERE id = $2 AND user_id = $3 AND ended_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .bind(user_id)
        .execute(p)
        .await
        .map(|done| done.rows_affected()))?;
        self.revoked(Revoked::Session(id)).await;
        crate::metrics::get().sessions_ended.inc_by(ended);
        Ok(ended == 1)
    }

    /// Ends every live session of the user but `except`: one statement. Ending all of them
    /// (no `except`) revokes every OpenID grant of theirs too, in the same transaction.
    pub async fn end_sessions_of(&self, user_id: i64, except: Option<&str>, now: i64) -> StoreResult<u64> {
        let ended = on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            if except.is_none() {
                revoke_grants_of!(&mut *tx, user_id, now)?;
            }
            let ended = end_all_but!(&mut *tx, user_id, except, now)?;
            tx.commit().await?;
            ended
        });
        self.revoked(Revoked::User(user_id)).await;
        crate::metrics::get().sessions_ended.inc_by(ended);
        Ok(ended)
    }

    /// Ends the live sessions made through provider `method` (a slug) that rode on its
    /// session `sid`, or (without one) every live one of `user_id` made through it; with
    /// both, only that user's with that `sid`. Returns the sessions ended, `(id, user_id)`.
    pub async fn end_upstream_sessions(
        &self,
        method: &str,
        sid: Option<&str>,
        user_id: Option<i64>,
        now: i64,
    ) -> StoreResult<Vec<(String, i64)>> {
        let (by_sid, by_user) = (sid.is_some(), user_id.is_some());
        if !by_sid && !by_user {
            return Ok(Vec::new());
        }
        let sql = format!(
            "UPDATE sessions SET ended_at = $1 WHERE method = $2 AND ended_at IS NULL{}{}
             RETURNING id, user_id",
            if by_sid { " AND upstream_sid = $3" } else { "" },
            match (by_sid, by_user) {
                (true, true) => " AND user_id = $4",
                (false, true) => " AND user_id = $3",
                _ => "",
            },
        );
        let ended: Vec<(String, i64)> = on_pool!(&self.pool, p => {
            let mut query = sqlx::query_as(&sql).bind(now).bind(method);
            if let Some(sid) = sid {
                query = query.bind(sid);
            }
            if let Some(user_id) = user_id {
                query = query.bind(user_id);
            }
            query.fetch_all(p).await
        })?;
        for (id, _) in &ended {
            self.revoked(Revoked::Session(id)).await;
        }
        crate::metrics::get().sessions_ended.inc_by(ended.len() as u64);
        Ok(ended)
    }

    /// The user's sessions that have not been ended, most recently active first.
    pub async fn sessions_of(&self, user_id: i64) -> StoreResult<Vec<SessionRecord>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND ended_at IS NULL
             ORDER BY last_seen_at DESC, created_at DESC"
        );
        on_pool!(&self.pool, p => sqlx::query_as(&sql).bind(user_id).fetch_all(p).await)
    }

    /// Deletes at most `batch` sessions that ended, went idle or outlived their absolute
    /// lifetime before the given times; returns how many went. One short statement, so the
    /// sweep never holds the write lock for long; on PostgreSQL the batch skips rows another
    /// instance's sweep holds, so every instance can sweep at once.
    pub async fn sweep_sessions(&self, before: SweepBefore, batch: i64) -> StoreResult<u64> {
        let deleted = on_pool!(&self.pool, p => {
            let sql = format!(
                "DELETE FROM sessions WHERE id IN (
                     SELECT id FROM sessions
                     WHERE ended_at < $1 OR last_seen_at < $2 OR created_at < $3
                     LIMIT $4{})",
                skip_locked(p)
            );
            sqlx::query(&sql)
                .bind(before.ended)
                .bind(before.last_seen)
                .bind(before.created)
                .bind(batch)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(deleted)
    }

    /// Sessions stored, ended or not (for tests and metrics).
    pub async fn count_sessions(&self) -> StoreResult<i64> {
        on_pool!(&self.pool, p => sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(p).await)
    }
}
