//! The console's view of the users: a page of them at a time, found by username or email
//! prefix, with what each row shows (providers, live sessions).
//!
//! Every query here is index-backed: prefixes are ranges on `username_key` and `email_key`
//! (both indexed), pages are keyset ranges on `username_key` (never an OFFSET), and the
//! per-row extras are read for the page's ids only. `tests/api/admin.rs` checks the query
//! plans on 100,000 users; BENCHMARKS.md has the timings.

use std::collections::HashMap;

use super::users::USER_COLUMNS;
use super::{Built, Pool, Store, StoreResult, User};

/// Which page of users.
#[derive(Debug, Clone, Default)]
pub struct UserSearch {
    /// A search key ([`super::search_key`]): usernames or emails starting with it.
    pub prefix: Option<String>,
    /// The page after this username key, or the page before it.
    pub cursor: Option<Cursor>,
    /// Rows per page (the caller caps it).
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    After(String),
    Before(String),
}

/// A page of users in username order, with the keys of the pages either side.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub users: Vec<DirectoryRow>,
    /// The cursor for the next page (`after`), when there are more rows.
    pub next: Option<String>,
    /// The cursor for the previous page (`before`), when there are rows before.
    pub previous: Option<String>,
}

/// One row of the list.
#[derive(Debug, Clone)]
pub struct DirectoryRow {
    pub user: User,
    pub username_key: String,
    /// Linked providers' slugs, sorted.
    pub providers: Vec<String>,
    /// Sessions not ended, idle or past their lifetime.
    pub live_sessions: i64,
}

#[derive(sqlx::FromRow)]
struct Keyed {
    #[sqlx(flatten)]
    user: User,
    username_key: String,
}

/// Above every character a key can hold: `prefix..prefix + MAX` holds exactly the keys
/// starting with `prefix` (byte order of UTF-8 is code point order).
const ABOVE: char = char::MAX;

/// Whether a session counts as live, as SQL, for the given idle and absolute cut-offs.
pub struct LiveCutoffs {
    /// Sessions last seen before this have gone idle.
    pub seen_after: i64,
    /// Sessions created before this have outlived their absolute lifetime.
    pub created_after: i64,
}

impl Store {
    /// A page of users, in username order.
    pub async fn search_users(&self, search: &UserSearch, live: LiveCutoffs) -> StoreResult<UserPage> {
        let backwards = matches!(search.cursor, Some(Cursor::Before(_)));
        let query = search_query(search, "");
        let mut rows: Vec<Keyed> =
            on_pool!(&self.pool, p => bind_all!(sqlx::query_as(&query.sql), query).fetch_all(p).await)?;
        let more = rows.len() as i64 > search.limit;
        rows.truncate(usize::try_from(search.limit).unwrap_or(0));
        if backwards {
            rows.reverse();
        }
        let (has_next, has_previous) = match (&search.cursor, more) {
            (Some(Cursor::Before(_)), more) => (true, more),
            (Some(Cursor::After(_)), more) => (more, true),
            (None, more) => (more, false),
        };
        let next = has_next.then(|| rows.last().map(|r| r.username_key.clone())).flatten();
        let previous = has_previous.then(|| rows.first().map(|r| r.username_key.clone())).flatten();
        let ids: Vec<i64> = rows.iter().map(|r| r.user.id).collect();
        let mut providers = self.providers_of(&ids).await?;
        let mut sessions = self.live_session_counts(&ids, &live).await?;
        let users = rows
            .into_iter()
            .map(|row| DirectoryRow {
                providers: providers.remove(&row.user.id).unwrap_or_default(),
                live_sessions: sessions.remove(&row.user.id).unwrap_or(0),
                username_key: row.username_key,
                user: row.user,
            })
            .collect();
        Ok(UserPage { users, next, previous })
    }

    /// The providers linked to each of these users.
    async fn providers_of(&self, ids: &[i64]) -> StoreResult<HashMap<i64, Vec<String>>> {
        let mut out: HashMap<i64, Vec<String>> = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let mut query = Built::new("SELECT user_id, provider FROM identities WHERE user_id IN ");
        query.push_list(ids.iter().copied()).push(" ORDER BY provider");
        let rows: Vec<(i64, String)> =
            on_pool!(&self.pool, p => bind_all!(sqlx::query_as(&query.sql), query).fetch_all(p).await)?;
        for (id, provider) in rows {
            out.entry(id).or_default().push(provider);
        }
        Ok(out)
    }

    /// How many live sessions each of these users has.
    async fn live_session_counts(&self, ids: &[i64], live: &LiveCutoffs) -> StoreResult<HashMap<i64, i64>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut query =
            Built::new("SELECT user_id, COUNT(*) FROM sessions WHERE ended_at IS NULL AND last_seen_at > ");
        query.push_bind(live.seen_after).push(" AND created_at > ").push_bind(live.created_after);
        query.push(" AND user_id IN ").push_list(ids.iter().copied()).push(" GROUP BY user_id");
        let rows: Vec<(i64, i64)> =
            on_pool!(&self.pool, p => bind_all!(sqlx::query_as(&query.sql), query).fetch_all(p).await)?;
        Ok(rows.into_iter().collect())
    }

    /// Usernames of these ids (for showing who did what in the audit log).
    pub async fn usernames(&self, ids: &[i64]) -> StoreResult<HashMap<i64, String>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut query = Built::new("SELECT id, username FROM users WHERE id IN ");
        query.push_list(ids.iter().copied());
        let rows: Vec<(i64, String)> =
            on_pool!(&self.pool, p => bind_all!(sqlx::query_as(&query.sql), query).fetch_all(p).await)?;
        Ok(rows.into_iter().collect())
    }

    /// Fills `email_key` where it is missing (rows written before it existed): the
    /// lowercasing is Rust's (Unicode), the same as on every write.
    pub(super) async fn fill_email_keys(&self) -> StoreResult<()> {
        on_pool!(&self.pool, p => {
            let missing: Vec<(i64, String)> =
                sqlx::query_as("SELECT id, email FROM users WHERE email_key IS NULL AND email IS NOT NULL")
                    .fetch_all(p)
                    .await?;
            if missing.is_empty() {
                return Ok(());
            }
            let mut tx = p.begin().await?;
            for (id, email) in missing {
                sqlx::query("UPDATE users SET email_key = $1 WHERE id = $2")
                    .bind(super::email_key(&email))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })
    }

    /// The query plan of a users search, one line per step (for the test that shows every
    /// step uses an index): SQLite's `EXPLAIN QUERY PLAN`, PostgreSQL's `EXPLAIN`.
    pub async fn explain_search_users(&self, search: &UserSearch) -> StoreResult<Vec<String>> {
        match &self.pool {
            Pool::Sqlite(p) => {
                let query = search_query(search, "EXPLAIN QUERY PLAN ");
                let rows: Vec<(i64, i64, i64, String)> =
                    bind_all!(sqlx::query_as(&query.sql), query).fetch_all(p).await?;
                Ok(rows.into_iter().map(|(.., detail)| detail).collect())
            }
            Pool::Postgres(p) => {
                let query = search_query(search, "EXPLAIN ");
                bind_all!(sqlx::query_scalar(&query.sql), query).fetch_all(p).await
            }
        }
    }
}

/// The one users search statement: one index range (or two, merged, with a prefix), the
/// keyset cursor, the order and one row more than a page (to know whether there is more).
fn search_query(search: &UserSearch, lead: &str) -> Built {
    let backwards = matches!(search.cursor, Some(Cursor::Before(_)));
    let mut query = Built::new(lead);
    let select = |query: &mut Built, range: Option<(&str, &str, String)>| {
        query.push(&format!("SELECT {USER_COLUMNS}, username_key FROM users WHERE 1 = 1"));
        if let Some((column, low, high)) = range {
            query.push(&format!(" AND {column} >= ")).push_bind(low);
            query.push(&format!(" AND {column} < ")).push_bind(high);
        }
        match &search.cursor {
            Some(Cursor::After(key)) => {
                query.push(" AND username_key > ").push_bind(key.as_str());
            }
            Some(Cursor::Before(key)) => {
                query.push(" AND username_key < ").push_bind(key.as_str());
            }
            None => {}
        }
    };
    match search.prefix.as_deref().filter(|p| !p.is_empty()) {
        Some(prefix) => {
            let high = format!("{prefix}{ABOVE}");
            // Two index ranges, merged: usernames, then emails, with the prefix.
            select(&mut query, Some(("username_key", prefix, high.clone())));
            query.push(" UNION ");
            select(&mut query, Some(("email_key", prefix, high)));
        }
        None => select(&mut query, None),
    }
    query.push(if backwards { " ORDER BY username_key DESC" } else { " ORDER BY username_key" });
    query.push(" LIMIT ").push_bind(search.limit + 1);
    query
}
