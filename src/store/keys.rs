//! The `signing_keys` table: the keys that sign forward-auth assertions and the OpenID
//! provider's tokens (Ed25519, and RSA once RS256 is asked for).

use super::{Store, StoreResult};

/// A signing key as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKey {
    pub kid: String,
    /// `EdDSA` or `RS256`.
    pub algorithm: String,
    /// PKCS#8 DER, base64.
    pub private_pkcs8: String,
    /// The JWK's `x` (Ed25519: the raw public key) or `n` (RSA: the modulus; `e` is
    /// always 65537), base64url.
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

    /// Stores a new key and retires the ones of its algorithm it replaces, in one transaction.
    pub async fn add_signing_key(&self, key: &SigningKey) -> StoreResult<()> {
        let insert = format!("INSERT INTO signing_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL)");
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND algorithm = $2")
                .bind(key.created_at)
                .bind(&key.algorithm)
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
