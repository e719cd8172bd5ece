//! The `throttle` table: fixed windows of attempts per bucket, shared by every instance on
//! one PostgreSQL (a failure on instance A counts on instance B). A bucket is an HMAC the
//! throttle computes; the store never sees what was typed.

use super::{PoolDialect, Store, StoreResult};

/// A window as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct ThrottleWindow {
    started: i64,
    attempts: i64,
}

/// Opens the bucket's window (or a new one when the last has passed) and returns it.
macro_rules! open_window {
    ($tx:expr, $bucket:expr, $window:expr, $now:expr) => {
        sqlx::query_as::<_, ThrottleWindow>(
            "INSERT INTO throttle (bucket, started, attempts, reported) VALUES ($1, $2, 0, FALSE)
             ON CONFLICT (bucket) DO UPDATE SET
                 started = CASE WHEN throttle.started + $3 <= $2 THEN $2 ELSE throttle.started END,
                 attempts = CASE WHEN throttle.started + $3 <= $2 THEN 0 ELSE throttle.attempts END,
                 reported = CASE WHEN throttle.started + $3 <= $2 THEN FALSE ELSE throttle.reported END
             RETURNING started, attempts",
        )
        .bind($bucket)
        .bind($now)
        .bind($window)
        .fetch_one($tx)
        .await
    };
}

impl Store {
    /// Takes one attempt out of every bucket's budget, or none when any bucket is at its
    /// limit: `Err(seconds until that window ends)`. One transaction; the buckets' rows stay
    /// locked until it ends, so concurrent attempts from any instance are counted one after
    /// another and a burst cannot pass the limit. Buckets are locked in the order given.
    pub async fn throttle_take(
        &self,
        buckets: &[(&str, i64)],
        window: i64,
        now: i64,
    ) -> StoreResult<Result<(), i64>> {
        on_pool!(&self.pool, p => {
            let mut tx = p.begin_write().await?;
            let mut wait: Option<i64> = None;
            for (bucket, limit) in buckets {
                let open = open_window!(&mut *tx, *bucket, window, now)?;
                if open.attempts >= *limit {
                    let left = (open.started + window - now).max(1);
                    wait = Some(wait.map_or(left, |w| w.max(left)));
                }
            }
            if wait.is_none() {
                for (bucket, _) in buckets {
                    sqlx::query("UPDATE throttle SET attempts = attempts + 1 WHERE bucket = $1")
                        .bind(*bucket)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok(wait.map_or(Ok(()), Err))
        })
    }

    /// Marks the buckets' windows as reported; whether any was not yet.
    pub async fn throttle_first_refusal(&self, buckets: &[&str]) -> StoreResult<bool> {
        let mut first = false;
        for bucket in buckets {
            let marked = on_pool!(&self.pool, p => {
                sqlx::query("UPDATE throttle SET reported = TRUE WHERE bucket = $1 AND NOT reported")
                    .bind(*bucket)
                    .execute(p)
                    .await?
                    .rows_affected()
            });
            first |= marked > 0;
        }
        Ok(first)
    }

    /// Gives an attempt back: `clear` loses its window, `decrement` one attempt.
    pub async fn throttle_refund(&self, clear: &str, decrement: &str) -> StoreResult<()> {
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM throttle WHERE bucket = $1").bind(clear).execute(&mut *tx).await?;
            sqlx::query(
                "UPDATE throttle SET attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END WHERE bucket = $1",
            )
            .bind(decrement)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })
    }

    /// Deletes windows that started before `before` (they have passed).
    pub async fn sweep_throttle(&self, before: i64) -> StoreResult<u64> {
        Ok(on_pool!(&self.pool, p => {
            sqlx::query("DELETE FROM throttle WHERE started < $1").bind(before).execute(p).await?.rows_affected()
        }))
    }
}
