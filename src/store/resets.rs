//! The `reset_links` table: one-time links to set a password. Only the SHA-256 of a link's
//! token is stored; following one marks it used in the same transaction that sets the
//! password and ends the user's sessions, so a link works once, even if followed twice at
//! the same moment.

use super::notify::Revoked;
use super::outbox::NewMail;
use super::users::USER_COLUMNS;
use super::{ConnDialect, PoolDialect, Store, StoreResult, User};

/// A link about to be stored.
pub struct NewResetLink<'a> {
    pub token_hash: &'a str,
    pub user_id: i64,
    pub now: i64,
    pub expires_at: i64,
    /// A user id (as text), `cli`, or `mail` (asked for on `/reset`).
    pub created_by: &'a str,
    /// The address the link is mailed to; `None` when it is handed over.
    pub sent_to: Option<&'a str>,
}

/// Inside `$tx`: ends the user's unused links and stores `$new`.
macro_rules! replace_links {
    ($tx:expr, $new:expr) => {{
        let new = &$new;
        async {
            sqlx::query("UPDATE reset_links SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
                .bind(new.now)
                .bind(new.user_id)
                .execute(&mut *$tx)
                .await?;
            sqlx::query(
                "INSERT INTO reset_links (token_hash, user_id, created_at, expires_at, created_by, sent_to)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(new.token_hash)
            .bind(new.user_id)
            .bind(new.now)
            .bind(new.expires_at)
            .bind(new.created_by)
            .bind(new.sent_to)
            .execute(&mut *$tx)
            .await
            .map(|_| ())
        }
        .await
    }};
}

impl Store {
    /// Stores a link; the user's earlier unused links stop working (the newest one is the
    /// one that was handed over).
    pub async fn create_reset_link(&self, new: NewResetLink<'_>) -> StoreResult<()> {
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            replace_links!(tx, new)?;
            tx.commit().await
        })
    }

    /// Stores a link asked for by mail together with the message that carries it, in one
    /// transaction (both or neither), unless `limit` such messages went to the user since
    /// `since` (then nothing is stored: `false`). The user's earlier unused links stop
    /// working, as with any new link.
    pub async fn create_reset_link_by_mail(
        &self,
        new: NewResetLink<'_>,
        mail: NewMail<'_>,
        since: i64,
        limit: i64,
    ) -> StoreResult<bool> {
        on_pool!(&self.pool, p => {
            let mut tx = p.begin_write().await?;
            tx.lock_user(new.user_id).await?;
            let recent: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM outbox WHERE user_id = $1 AND kind = $2 AND created_at > $3",
            )
            .bind(new.user_id)
            .bind(mail.kind)
            .bind(since)
            .fetch_one(&mut *tx)
            .await?;
            if recent >= limit {
                return Ok(false);
            }
            replace_links!(tx, new)?;
            queue_mail!(&mut *tx, mail)?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// The user a link is for, while it is unused and unexpired.
    pub async fn reset_link_user(&self, token_hash: &str, now: i64) -> StoreResult<Option<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = (
                 SELECT user_id FROM reset_links
                 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2)"
        );
        on_pool!(&self.pool, p => sqlx::query_as(&sql).bind(token_hash).bind(now).fetch_optional(p).await)
    }

    /// Uses a link: marks it used, sets the password, ends every session of its user and
    /// queues `notice` (when it is for that user), in one transaction. `None` (and nothing changed) when the link is unknown, used or
    /// expired.
    pub async fn redeem_reset_link(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: i64,
        notice: Option<&NewMail<'_>>,
    ) -> StoreResult<Option<i64>> {
        let user_id = on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let link: Option<(i64, Option<String>)> = sqlx::query_as(
                "UPDATE reset_links SET used_at = $1
                 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id, sent_to",
            )
            .bind(now)
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((user_id, sent_to)) = link else {
                return Ok(None);
            };
            // A link that came by mail proves the address it came to, while it is the user's.
            if let Some(sent_to) = sent_to {
                sqlx::query("UPDATE users SET email_verified = TRUE WHERE id = $1 AND email_key = $2")
                    .bind(user_id)
                    .bind(super::email_key(&sent_to))
                    .execute(&mut *tx)
                    .await?;
            }
            let ended = set_password_ending_sessions!(tx, user_id, password_hash, now)?;
            commit_with!(tx, notice.filter(|mail| mail.user_id == Some(user_id)))?;
            crate::metrics::get().sessions_ended.inc_by(ended);
            user_id
        });
        self.revoked(Revoked::User(user_id)).await;
        Ok(Some(user_id))
    }
}
