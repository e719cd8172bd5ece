//! The `signing_keys` table: the keys that sign forward-auth assertions.

use super::{Store, StoreResult};

/// A signing key as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKey {
    pub kid: String,
    pub algorithm: String,
    /// PKCS#8 DER, base64.
    pub private_pkcs8: String,
    /// The JWK's `x`: the raw public key, base64url.
    pub public_key: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

const KEY_COLUMNS: &str = "kid, algorithm, private_pkcs8, public_key, created_at, retired_at";

impl Store {
    /// Keys not retired before `since`, newest first: the first signs, all are published.
    pub async fn signing_keys(&self, since: i64) -> StoreResult<Vec<SigningKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM signing_keys WHERE retired_at IS NULL OR retired_at >= $1
             ORDER BY retired_at IS NOT NULL, created_at DESC, kid DESC"
        );
        on_pool!(&self.pool, p => sqlx::query_as(&sql).bind(since).fetch_all(p).await)
    }

    /// Stores a new key and retires the ones it replaces, in one transaction.
    pub async fn add_signing_key(&self, key: &SigningKey) -> StoreResult<()> {
        let insert = format!("INSERT INTO signing_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL)");
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
                .bind(key.created_at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&insert)
                .bind(&key.kid)
                .bind(&key.algorithm)
                .bind(&key.private_pkcs8)
                .bind(&key.public_key)
                .bind(key.created_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
    }

    /// Deletes keys retired before `before` (no assertion they signed is still valid).
    pub async fn delete_retired_keys(&self, before: i64) -> StoreResult<u64> {
        Ok(on_pool!(&self.pool, p => sqlx::query("DELETE FROM signing_keys WHERE retired_at < $1")
            .bind(before)
            .execute(p)
            .await
            .map(|done| done.rows_affected()))?)
    }
}
