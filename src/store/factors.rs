//! The second factors' tables: `totp` (one authenticator app per user, its secret sealed),
//! `recovery_codes` (hashed, single use), and `notices` (what to tell a person on their next
//! sign-in). Single use is a rule inside the statement: a code's step or a recovery code is
//! taken by an `UPDATE … WHERE` that only one request can win.

use super::{NewMail, Store, StoreResult};

/// Which second factors a user has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Factors {
    /// A confirmed authenticator app.
    pub totp: bool,
    pub passkeys: i64,
    /// Recovery codes not yet used.
    pub recovery_left: i64,
}

impl Factors {
    /// Whether signing in takes a second step.
    pub fn any(&self) -> bool {
        self.totp || self.passkeys > 0
    }
}

/// A user's authenticator app as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TotpRow {
    pub sealed_secret: String,
    pub created_at: i64,
    /// `None` while setup waits for its first code.
    pub confirmed_at: Option<i64>,
    pub last_step: i64,
}

/// What a reset took away.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub totp: bool,
    pub passkeys: u64,
    pub recovery_codes: u64,
}

/// The notice left for a person whose second factors an administrator reset.
pub const NOTICE_SECOND_FACTOR_RESET: &str = "second_factor_reset";

impl Store {
    /// One statement: the user's confirmed app, passkeys and unused recovery codes.
    pub async fn factors_of(&self, user_id: i64) -> StoreResult<Factors> {
        on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM totp WHERE user_id = $1 AND confirmed_at IS NOT NULL) AS totp,
                    (SELECT COUNT(*) FROM passkeys WHERE user_id = $1) AS passkeys,
                    (SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL) AS recovery_left",
        )
        .bind(user_id)
        .fetch_one(p)
        .await)
    }

    /// Whether the user has a password, their second factors, and how many applications
    /// they let sign them in: one round trip, for the account page and `/api/me`.
    pub async fn password_and_factors(&self, user_id: i64) -> StoreResult<(bool, Factors, i64)> {
        #[derive(sqlx::FromRow)]
        struct Row {
            has_password: bool,
            applications: i64,
            #[sqlx(flatten)]
            factors: Factors,
        }
        let row: Option<Row> = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT password_hash IS NOT NULL AS has_password,
                    EXISTS (SELECT 1 FROM totp WHERE user_id = $1 AND confirmed_at IS NOT NULL) AS totp,
                    (SELECT COUNT(*) FROM passkeys WHERE user_id = $1) AS passkeys,
                    (SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL) AS recovery_left,
                    (SELECT COUNT(*) FROM oidc_consents WHERE user_id = $1) AS applications
             FROM users WHERE id = $1",
        )
        .bind(user_id)
        .fetch_optional(p)
        .await)?;
        Ok(row.map_or((false, Factors::default(), 0), |r| (r.has_password, r.factors, r.applications)))
    }

    pub async fn totp_of(&self, user_id: i64) -> StoreResult<Option<TotpRow>> {
        on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT sealed_secret, created_at, confirmed_at, last_step FROM totp WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(p)
        .await)
    }

    /// Stores a secret waiting for its first code, replacing an earlier unconfirmed one;
    /// `false` (nothing written) when the user already has a confirmed app.
    pub async fn put_pending_totp(&self, user_id: i64, sealed: &str, now: i64) -> StoreResult<bool> {
        let written = on_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO totp (user_id, sealed_secret, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET sealed_secret = $2, created_at = $3, last_step = 0
             WHERE totp.confirmed_at IS NULL",
        )
        .bind(user_id)
        .bind(sealed)
        .bind(now)
        .execute(p)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(written == 1)
    }

    /// Turns the waiting secret on, its first code's step taken; `false` when there was no
    /// waiting secret (confirmed meanwhile, or removed).
    /// `notice` is queued with it, in one transaction.
    pub async fn confirm_totp(
        &self,
        user_id: i64,
        sealed: &str,
        step: i64,
        now: i64,
        notice: Option<&NewMail<'_>>,
    ) -> StoreResult<bool> {
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "UPDATE totp SET confirmed_at = $1, last_step = $2
                 WHERE user_id = $3 AND sealed_secret = $4 AND confirmed_at IS NULL",
            )
            .bind(now)
            .bind(step)
            .bind(user_id)
            .bind(sealed)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done != 1 {
                return Ok(false);
            }
            commit_with!(tx, notice)?;
            Ok(true)
        })
    }

    /// Takes a code's step: `true` for the one request that moves `last_step` forward to it;
    /// `false` for a step already used (or older than one used).
    pub async fn take_totp_step(&self, user_id: i64, step: i64) -> StoreResult<bool> {
        let done = on_pool!(&self.pool, p => sqlx::query(
            "UPDATE totp SET last_step = $1
             WHERE user_id = $2 AND confirmed_at IS NOT NULL AND last_step < $1",
        )
        .bind(step)
        .bind(user_id)
        .execute(p)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(done == 1)
    }

    /// Removes the user's app (confirmed or waiting), and queues `notice` when it was
    /// confirmed, in one transaction; whether there was one.
    pub async fn delete_totp(&self, user_id: i64, notice: Option<&NewMail<'_>>) -> StoreResult<bool> {
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let confirmed: Option<Option<i64>> =
                sqlx::query_scalar("DELETE FROM totp WHERE user_id = $1 RETURNING confirmed_at")
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(confirmed) = confirmed else { return Ok(false) };
            commit_with!(tx, notice.filter(|_| confirmed.is_some()))?;
            Ok(true)
        })
    }

    /// Replaces the user's recovery codes with these hashes, and queues `notice`, in one
    /// transaction.
    pub async fn replace_recovery_codes(
        &self,
        user_id: i64,
        hashes: &[String],
        now: i64,
        notice: Option<&NewMail<'_>>,
    ) -> StoreResult<()> {
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            for hash in hashes {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)")
                    .bind(user_id)
                    .bind(hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            commit_with!(tx, notice)
        })
    }

    /// Uses a recovery code: `true` for the one request that marks it used.
    pub async fn use_recovery_code(&self, user_id: i64, hash: &str, now: i64) -> StoreResult<bool> {
        let done = on_pool!(&self.pool, p => sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .bind(hash)
        .execute(p)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(done == 1)
    }

    /// Removes every second factor of the user (app, passkeys, recovery codes, passkey
    /// ceremonies under way) and, when there was one, leaves them a notice (on the next
    /// sign-in's page, and `notice` by mail); one transaction.
    pub async fn reset_second_factor(
        &self,
        user_id: i64,
        now: i64,
        notice: Option<&NewMail<'_>>,
    ) -> StoreResult<Removed> {
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let totp = sqlx::query("DELETE FROM totp WHERE user_id = $1 AND confirmed_at IS NOT NULL")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM totp WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            let passkeys = sqlx::query("DELETE FROM passkeys WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let recovery_codes = sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM ceremonies WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            let removed = Removed { totp: totp > 0, passkeys, recovery_codes };
            if removed == Removed::default() {
                tx.commit().await?;
                return Ok(removed);
            }
            sqlx::query(
                "INSERT INTO notices (user_id, kind, at) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id, kind) DO UPDATE SET at = $3",
            )
            .bind(user_id)
            .bind(NOTICE_SECOND_FACTOR_RESET)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            commit_with!(tx, notice)?;
            Ok(removed)
        })
    }

    /// Takes a notice left for the user: when it was left, and it is gone (told once).
    pub async fn take_notice(&self, user_id: i64, kind: &str) -> StoreResult<Option<i64>> {
        on_pool!(&self.pool, p => sqlx::query_scalar(
            "DELETE FROM notices WHERE user_id = $1 AND kind = $2 RETURNING at",
        )
        .bind(user_id)
        .bind(kind)
        .fetch_optional(p)
        .await)
    }
}
