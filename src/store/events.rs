//! The `events` table: the audit log. Rows are written once and deleted by the sweep after
//! `audit.retention_days`.

use std::str::FromStr;

use super::{skip_locked, Built, Store, StoreResult};
use serde::Serialize;

/// An event about to be recorded.
pub struct NewEvent<'a> {
    pub at: i64,
    pub kind: &'a str,
    pub actor: &'a str,
    pub subject: Option<i64>,
    /// The subject's username, when the caller has it (a deleted user's); otherwise the
    /// store reads it from `users`.
    pub subject_name: Option<&'a str>,
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
    /// The subject's username when the event was written.
    pub subject_name: Option<String>,
    pub ip: Option<String>,
    pub client: Option<String>,
    pub detail: String,
}

const EVENT_COLUMNS: &str = "id, at, kind, actor, subject_user_id, subject_name, ip, client, detail";

/// Which events the console and `portal events` show: newest first, a page at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub subject: Option<Subject>,
    pub kind: Option<String>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
    /// Events older than this one (the last of the previous page).
    pub before: Option<EventCursor>,
    pub limit: i64,
}

/// Whose events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Id(i64),
    /// A user who no longer exists, by the name the events kept.
    Name(String),
}

/// A position in the log: an event's time and id. Its text (a page link's `before`, the
/// API's `next`) is `AT.ID`: [`Display`](std::fmt::Display) writes it, [`FromStr`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCursor {
    pub at: i64,
    pub id: i64,
}

impl EventCursor {
    /// Where this event is in the log.
    pub fn of(event: &EventRecord) -> EventCursor {
        EventCursor { at: event.at, id: event.id }
    }
}

impl std::fmt::Display for EventCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.at, self.id)
    }
}

/// Text that is not `AT.ID` (two whole numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a cursor")]
pub struct NotACursor;

impl FromStr for EventCursor {
    type Err = NotACursor;

    fn from_str(text: &str) -> Result<EventCursor, NotACursor> {
        let (at, id) = text.split_once('.').ok_or(NotACursor)?;
        Ok(EventCursor { at: at.parse().map_err(|_| NotACursor)?, id: id.parse().map_err(|_| NotACursor)? })
    }
}

impl Store {
    pub async fn record_event(&self, event: NewEvent<'_>) -> StoreResult<()> {
        on_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO events (at, kind, actor, subject_user_id, subject_name, ip, client, detail)
             VALUES ($1, $2, $3, $4, COALESCE($5, (SELECT username FROM users WHERE id = $4)), $6, $7, $8)",
        )
        .bind(event.at)
        .bind(event.kind)
        .bind(event.actor)
        .bind(event.subject)
        .bind(event.subject_name)
        .bind(event.ip)
        .bind(event.client)
        .bind(event.detail)
        .execute(p)
        .await
        .map(|_| ()))?;
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
        on_pool!(&self.pool, p => {
            let mut query = sqlx::query_as(&sql).bind(user_id).bind(limit);
            for kind in kinds {
                query = query.bind(*kind);
            }
            query.fetch_all(p).await
        })
    }

    /// Every event, newest first (for tests and, later, the console).
    pub async fn recent_events(&self, limit: i64) -> StoreResult<Vec<EventRecord>> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY at DESC, id DESC LIMIT $1");
        on_pool!(&self.pool, p => sqlx::query_as(&sql).bind(limit).fetch_all(p).await)
    }

    /// A page of events matching `filter`, newest first, and whether there are more.
    pub async fn find_events(&self, filter: &EventFilter) -> StoreResult<(Vec<EventRecord>, bool)> {
        let mut query = Built::new(format!("SELECT {EVENT_COLUMNS} FROM events WHERE 1 = 1"));
        match &filter.subject {
            Some(Subject::Id(id)) => {
                query.push(" AND subject_user_id = ").push_bind(*id);
            }
            Some(Subject::Name(name)) => {
                query.push(" AND subject_name = ").push_bind(name.as_str());
            }
            None => {}
        }
        if let Some(kind) = &filter.kind {
            query.push(" AND kind = ").push_bind(kind.as_str());
        }
        if let Some(since) = filter.since {
            query.push(" AND at >= ").push_bind(since);
        }
        if let Some(until) = filter.until {
            query.push(" AND at < ").push_bind(until);
        }
        if let Some(EventCursor { at, id }) = filter.before {
            query.push(" AND (at < ").push_bind(at);
            query.push(" OR (at = ").push_bind(at).push(" AND id < ").push_bind(id).push("))");
        }
        query.push(" ORDER BY at DESC, id DESC LIMIT ").push_bind(filter.limit + 1);
        let mut events: Vec<EventRecord> =
            on_pool!(&self.pool, p => bind_all!(sqlx::query_as(&query.sql), query).fetch_all(p).await)?;
        let more = events.len() as i64 > filter.limit;
        events.truncate(usize::try_from(filter.limit).unwrap_or(0));
        Ok((events, more))
    }

    /// Deletes at most `batch` events older than `before`; returns how many went.
    pub async fn sweep_events(&self, before: i64, batch: i64) -> StoreResult<u64> {
        let deleted = on_pool!(&self.pool, p => {
            let sql = format!(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < $1 LIMIT $2{})",
                skip_locked(p)
            );
            sqlx::query(&sql).bind(before).bind(batch).execute(p).await?.rows_affected()
        });
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_cursor_reads_back_what_it_writes() {
        for cursor in [
            EventCursor { at: 1_800_000_000, id: 42 },
            EventCursor { at: 0, id: 0 },
            EventCursor { at: -5, id: i64::MAX },
        ] {
            assert_eq!(cursor.to_string().parse::<EventCursor>(), Ok(cursor));
        }
        assert_eq!(EventCursor { at: 1_800_000_000, id: 42 }.to_string(), "1800000000.42");
        for bad in ["", "1", "1.", ".1", "a.1", "1.b", "1.2.3", "1,2", "99999999999999999999.1"] {
            assert_eq!(bad.parse::<EventCursor>(), Err(NotACursor), "{bad:?}");
        }
    }
}
