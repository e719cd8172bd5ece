//! The `passkeys` table (each credential with its name, backup flags, signature counter and
//! times) and `ceremonies` (a passkey ceremony's challenge state, taken by the one response
//! that may answer it: a `DELETE … RETURNING`, so a replayed response finds nothing).

use super::{is_unique_violation, NewMail, Store, StoreResult};

/// A passkey as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PasskeyRow {
    /// base64url of the credential id.
    pub credential_id: String,
    pub user_id: i64,
    /// The opaque user id the authenticator keeps and returns (a UUID).
    pub user_handle: String,
    pub name: String,
    /// The WebAuthn library's credential (JSON): public key, counter, flags.
    pub credential: String,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub sign_count: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A ceremony's state, taken.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Ceremony {
    pub user_id: Option<i64>,
    pub state: String,
    pub expires_at: i64,
}

const PASSKEY_COLUMNS: &str = "credential_id, user_id, user_handle, name, credential, backup_eligible, \
                               backup_state, sign_count, created_at, last_used_at";

impl Store {
    /// The user's passkeys, oldest first.
    pub async fn passkeys_of(&self, user_id: i64) -> StoreResult<Vec<PasskeyRow>> {
        let sql = format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, credential_id"
        );
        on_pool!(&self.pool, p => sqlx::query_as(&sql).bind(user_id).fetch_all(p).await)
    }

    pub async fn passkey(&self, credential_id: &str) -> StoreResult<Option<PasskeyRow>> {
        let sql = format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = $1");
        on_pool!(&self.pool, p => sqlx::query_as(&sql).bind(credential_id).fetch_optional(p).await)
    }

    /// Stores a new passkey and queues `notice`, in one transaction; `false` (and nothing
    /// queued) when its credential id is already registered (to anyone).
    pub async fn add_passkey(&self, row: &PasskeyRow, notice: Option<&NewMail<'_>>) -> StoreResult<bool> {
        let sql = format!(
            "INSERT INTO passkeys ({PASSKEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        // In a block of its own, so that a unique violation comes out here as a value.
        let done: StoreResult<()> = on_pool!(&self.pool, p => async {
            let mut tx = p.begin().await?;
            sqlx::query(&sql)
                .bind(&row.credential_id)
                .bind(row.user_id)
                .bind(&row.user_handle)
                .bind(&row.name)
                .bind(&row.credential)
                .bind(row.backup_eligible)
                .bind(row.backup_state)
                .bind(row.sign_count)
                .bind(row.created_at)
                .bind(row.last_used_at)
                .execute(&mut *tx)
                .await?;
            commit_with!(tx, notice)
        }
        .await);
        match done {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Records a sign-in with a passkey: its credential as updated (counter, flags), and when.
    pub async fn passkey_used(&self, row: &PasskeyRow, now: i64) -> StoreResult<()> {
        on_pool!(&self.pool, p => sqlx::query(
            "UPDATE passkeys SET credential = $1, backup_eligible = $2, backup_state = $3, sign_count = $4,
                    last_used_at = $5
             WHERE credential_id = $6",
        )
        .bind(&row.credential)
        .bind(row.backup_eligible)
        .bind(row.backup_state)
        .bind(row.sign_count)
        .bind(now)
        .bind(&row.credential_id)
        .execute(p)
        .await
        .map(|_| ()))
    }

    /// Removes one of the user's passkeys and queues `notice`, in one transaction; whether
    /// it was theirs and there (nothing is queued when not).
    pub async fn delete_passkey(
        &self,
        user_id: i64,
        credential_id: &str,
        notice: Option<&NewMail<'_>>,
    ) -> StoreResult<bool> {
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let done = sqlx::query("DELETE FROM passkeys WHERE user_id = $1 AND credential_id = $2")
                .bind(user_id)
                .bind(credential_id)
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

    pub async fn put_ceremony(
        &self,
        id: &str,
        user_id: Option<i64>,
        kind: &str,
        state: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        on_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO ceremonies (id, user_id, kind, state, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(user_id)
        .bind(kind)
        .bind(state)
        .bind(expires_at)
        .execute(p)
        .await
        .map(|_| ()))
    }

    /// Takes a ceremony of this kind: it is gone whatever its answer turns out to be.
    pub async fn take_ceremony(&self, id: &str, kind: &str) -> StoreResult<Option<Ceremony>> {
        on_pool!(&self.pool, p => sqlx::query_as(
            "DELETE FROM ceremonies WHERE id = $1 AND kind = $2 RETURNING user_id, state, expires_at",
        )
        .bind(id)
        .bind(kind)
        .fetch_optional(p)
        .await)
    }

    /// Deletes ceremonies that expired before `now`.
    pub async fn sweep_ceremonies(&self, now: i64) -> StoreResult<u64> {
        on_pool!(&self.pool, p => sqlx::query("DELETE FROM ceremonies WHERE expires_at < $1")
            .bind(now)
            .execute(p)
            .await
            .map(|done| done.rows_affected()))
    }
}
