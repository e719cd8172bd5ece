//! The `events` table: the audit log. Rows are written once and deleted by the sweep after
//! `audit.retention_days`.

use serde::Serialize;

use super::{Store, StoreResult};

/// An event about to be recorded.
pub struct NewEvent<'a> {
    pub at: i64,
    pub kind: &'a str,
    pub actor: &'a str,
    pub subject: Option<i64>,
    pub ip: Option<&'a str>,
    pub client: Option<&'a str>,
    /// A small JSON object.
    pub detail: &'a str,
}

/// An event as read back.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EventRecord {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    pub actor: String,
    pub subject_user_id: Option<i64>,
    pub ip: Option<String>,
    pub client: Option<String>,
    pub detail: String,
}

const EVENT_COLUMNS: &str = "id, at, kind, actor, subject_user_id, ip, client, detail";

impl Store {
    pub async fn record_event(&self, event: NewEvent<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO events (at, kind, actor, subject_user_id, ip, client, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(event.at)
        .bind(event.kind)
        .bind(event.actor)
        .bind(event.subject)
        .bind(event.ip)
        .bind(event.client)
        .bind(event.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user's most recent events of these kinds, newest first.
    pub async fn events_of(&self, user_id: i64, kinds: &[&str], limit: i64) -> StoreResult<Vec<EventRecord>> {
        // At most a handful of kinds: a small IN list of bound parameters.
        let placeholders: Vec<String> = (0..kinds.len()).map(|n| format!("${}", n + 3)).collect();
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE subject_user_id = $1 AND kind IN ({})
             ORDER BY at DESC, id DESC LIMIT $2",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as(&sql).bind(user_id).bind(limit);
        for kind in kinds {
            query = query.bind(*kind);
        }
        query.fetch_all(&self.pool).await
    }

    /// Every event, newest first (for tests and, later, the console).
    pub async fn recent_events(&self, limit: i64) -> StoreResult<Vec<EventRecord>> {
        sqlx::query_as(&format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY at DESC, id DESC LIMIT $1"))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
    }

    /// Deletes at most `batch` events older than `before`; returns how many went.
    pub async fn sweep_events(&self, before: i64, batch: i64) -> StoreResult<u64> {
        let deleted =
            sqlx::query("DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < $1 LIMIT $2)")
                .bind(before)
                .bind(batch)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(deleted)
    }
}
