//! The `outbox` table: mail waiting to be sent, sent, or given up on. A message is queued in
//! the transaction of the change that caused it ([`queue_mail!`]); a worker claims due
//! messages for a while (a lease, so that a crash leaves nothing claimed for long; on
//! PostgreSQL the claim skips rows another instance is claiming), sends them, and marks
//! each sent, due again later, or failed. The sealed message is dropped once sent or failed.

use serde::Serialize;

use super::{skip_locked, Store, StoreResult};

/// A message about to be queued.
#[derive(Debug, Clone, Copy)]
pub struct NewMail<'a> {
    pub message_id: &'a str,
    pub kind: &'a str,
    pub user_id: Option<i64>,
    pub recipient: &'a str,
    pub sealed: &'a str,
    pub now: i64,
}

/// A message claimed for sending.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedMail {
    pub id: i64,
    pub message_id: String,
    pub kind: String,
    pub user_id: Option<i64>,
    pub sealed: Option<String>,
    /// Attempts so far, this one included.
    pub attempts: i32,
    pub created_at: i64,
}

/// A message as the console shows it (never its content).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct MailRow {
    pub id: i64,
    pub kind: String,
    pub user_id: Option<i64>,
    pub recipient: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// How many messages are in each state.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: i64,
    pub sent: i64,
    pub failed: i64,
}

/// Queues a message on `$executor` (a transaction, usually).
macro_rules! queue_mail {
    ($executor:expr, $mail:expr) => {{
        let mail = &$mail;
        sqlx::query(
            "INSERT INTO outbox (message_id, kind, user_id, recipient, sealed, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(mail.message_id)
        .bind(mail.kind)
        .bind(mail.user_id)
        .bind(mail.recipient)
        .bind(mail.sealed)
        .bind(mail.now)
        .execute($executor)
        .await
        .map(|_| ())
    }};
}

/// Queues `$notice` (an `Option<&NewMail>`) on `$tx`, then commits it: a change and the
/// notice that tells of it, both or neither.
macro_rules! commit_with {
    ($tx:ident, $notice:expr) => {{
        if let Some(mail) = $notice {
            queue_mail!(&mut *$tx, mail)?;
        }
        $tx.commit().await
    }};
}

impl Store {
    /// Queues a message on its own (when nothing else changes with it).
    pub async fn queue_mail(&self, mail: NewMail<'_>) -> StoreResult<()> {
        on_pool!(&self.pool, p => queue_mail!(p, mail))?;
        Ok(())
    }

    /// Claims at most `batch` messages due at `now` until `until`, counting an attempt for
    /// each. Another claim (another instance) does not get them until then.
    pub async fn claim_mail(&self, now: i64, until: i64, batch: i64) -> StoreResult<Vec<ClaimedMail>> {
        on_pool!(&self.pool, p => {
            let sql = format!(
                "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1
                 WHERE status = 'pending' AND next_attempt_at <= $2
                   AND (claimed_until IS NULL OR claimed_until <= $2)
                   AND id IN (SELECT id FROM outbox
                              WHERE status = 'pending' AND next_attempt_at <= $2
                                AND (claimed_until IS NULL OR claimed_until <= $2)
                              ORDER BY id LIMIT $3{})
                 RETURNING id, message_id, kind, user_id, sealed, attempts, created_at",
                skip_locked(p)
            );
            sqlx::query_as(&sql).bind(until).bind(now).bind(batch).fetch_all(p).await
        })
    }

    /// SQLite at start: the one process that sends (this one) holds no claims, so those a
    /// crash left behind are let go at once instead of when their lease ends.
    pub async fn release_mail_claims(&self) -> StoreResult<u64> {
        match &self.pool {
            super::Pool::Sqlite(p) => Ok(sqlx::query(
                "UPDATE outbox SET claimed_until = NULL WHERE status = 'pending' AND claimed_until IS NOT NULL",
            )
            .execute(p)
            .await?
            .rows_affected()),
            // Other instances may be sending: their leases stand.
            super::Pool::Postgres(_) => Ok(0),
        }
    }

    /// The message went out: it is marked sent and its content dropped.
    pub async fn mail_sent(&self, id: i64, now: i64) -> StoreResult<()> {
        on_pool!(&self.pool, p => sqlx::query(
            "UPDATE outbox SET status = 'sent', sent_at = $1, sealed = NULL, claimed_until = NULL, last_error = NULL
             WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The attempt failed for now: due again at `at`.
    pub async fn mail_retry(&self, id: i64, at: i64, error: &str) -> StoreResult<()> {
        on_pool!(&self.pool, p => sqlx::query(
            "UPDATE outbox SET next_attempt_at = $1, last_error = $2, claimed_until = NULL WHERE id = $3",
        )
        .bind(at)
        .bind(error)
        .bind(id)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Given up: marked failed with why, and its content dropped.
    pub async fn mail_failed(&self, id: i64, error: &str) -> StoreResult<()> {
        on_pool!(&self.pool, p => sqlx::query(
            "UPDATE outbox SET status = 'failed', last_error = $1, sealed = NULL, claimed_until = NULL WHERE id = $2",
        )
        .bind(error)
        .bind(id)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Messages of `kind` queued for `user_id` after `since` (a per-account limit, read
    /// before the transaction that checks it again, so that a flood of requests past the
    /// limit takes no write lock).
    pub async fn mail_count_since(&self, user_id: i64, kind: &str, since: i64) -> StoreResult<i64> {
        on_pool!(&self.pool, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE user_id = $1 AND kind = $2 AND created_at > $3",
        )
        .bind(user_id)
        .bind(kind)
        .bind(since)
        .fetch_one(p)
        .await)
    }

    pub async fn outbox_counts(&self) -> StoreResult<OutboxCounts> {
        let rows: Vec<(String, i64)> = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT status, COUNT(*) FROM outbox GROUP BY status",
        )
        .fetch_all(p)
        .await)?;
        let mut counts = OutboxCounts::default();
        for (status, n) in rows {
            match status.as_str() {
                "pending" => counts.pending = n,
                "sent" => counts.sent = n,
                _ => counts.failed += n,
            }
        }
        Ok(counts)
    }

    /// The newest `limit` messages, in `status` when given.
    pub async fn outbox_recent(&self, status: Option<&str>, limit: i64) -> StoreResult<Vec<MailRow>> {
        const COLUMNS: &str =
            "id, kind, user_id, recipient, status, attempts, next_attempt_at, last_error, created_at, sent_at";
        let sql = match status {
            Some(_) => format!("SELECT {COLUMNS} FROM outbox WHERE status = $1 ORDER BY id DESC LIMIT $2"),
            None => format!("SELECT {COLUMNS} FROM outbox WHERE $1 = $1 ORDER BY id DESC LIMIT $2"),
        };
        on_pool!(&self.pool, p => sqlx::query_as(&sql)
            .bind(status.unwrap_or(""))
            .bind(limit)
            .fetch_all(p)
            .await)
    }

    /// Deletes at most `batch` sent or failed messages created before `before`.
    pub async fn sweep_outbox(&self, before: i64, batch: i64) -> StoreResult<u64> {
        let deleted = on_pool!(&self.pool, p => {
            let sql = format!(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
                 WHERE status <> 'pending' AND created_at < $1 LIMIT $2{})",
                skip_locked(p)
            );
            sqlx::query(&sql).bind(before).bind(batch).execute(p).await?.rows_affected()
        });
        Ok(deleted)
    }
}
