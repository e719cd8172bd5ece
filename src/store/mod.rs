//! The store: a sqlx pool on SQLite (the default) or PostgreSQL, its migrations (a set per
//! backend, the same versions), its health, and a module per table.
//!
//! The SQL is written once for both backends (`$n` parameters, `RETURNING`, `ON CONFLICT`,
//! BIGINT Unix times); [`on_pool!`] runs the same statement on whichever pool is
//! configured, each arm compiled and type-checked for its own backend. Where the two differ
//! (how a write transaction takes its lock, `SKIP LOCKED`), [`PoolDialect`] and
//! [`ConnDialect`] say it once per backend. That machinery is in `pool.rs`.

// First, so that its macros are in scope in the table modules.
#[macro_use]
mod pool;
// Before the tables that queue mail in their transactions (`queue_mail!`).
#[macro_use]
mod outbox;

mod cache;
mod copy;
mod directory;
mod events;
mod factors;
mod identities;
mod keys;
mod notify;
mod oidc;
mod passkeys;
// Before `users`, which stores an invitation's link in its transaction (`replace_links!`).
#[macro_use]
mod resets;
mod sessions;
mod throttle;
mod username;
mod users;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection};

use self::cache::SessionCache;
pub use self::copy::{CopyError, CopyReport, SchemaReport, COPIED_TABLES};
pub use self::directory::{Cursor, DirectoryRow, LiveCutoffs, UserPage, UserSearch};
pub use self::events::{EventCursor, EventFilter, EventRecord, NewEvent, Subject};
pub use self::factors::{Factors, Removed, TotpRow, NOTICE_SECOND_FACTOR_RESET};
pub use self::identities::{LinkError, LinkedIdentity, Unlinked};
pub use self::keys::SigningKey;
pub use self::oidc::{ClientRow, CodeTaken, ConsentRow, GrantRow, Rotation};
pub use self::outbox::{ClaimedMail, MailRow, NewMail, OutboxCounts};
pub use self::passkeys::{Ceremony, PasskeyRow};
use self::pool::pool_size;
pub use self::pool::{class, Backend, ErrorClass};
pub(crate) use self::pool::{is_unique_violation, skip_locked, Built, ConnDialect, Pool, PoolDialect};
pub use self::resets::NewResetLink;
pub use self::sessions::{DeviceSeen, LiveSession, NewSession, SessionRecord, SweepBefore};
pub use self::username::{
    account_key, email_characters_ok, email_key, is_invisible, search_key, Username, UsernameError,
    MAX_USERNAME_CHARS,
};
pub use self::users::{AfterCreate, CreateUserError, Credentials, Guarded, NewUser, User};
use crate::config::PoolSettings;

pub type StoreResult<T> = Result<T, sqlx::Error>;

/// The store as managed state; cheap to clone (the pool and the cache are shared).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// SQLite: how to open the file afresh (through SQLite only, never `std::fs`). The health
    /// check does, since a pooled connection may answer from its page cache after the file
    /// under it was replaced.
    sqlite_options: Option<SqliteConnectOptions>,
    sessions: Arc<SessionCache>,
    /// PostgreSQL: the schema is up to date and the first-start work is done; until then
    /// `/health` says why not and requests get `503`.
    ready: Arc<notify::Readiness>,
    /// The nonces of announcements this instance's listener has heard (PostgreSQL).
    heard: tokio::sync::broadcast::Sender<u64>,
    /// Whether the listener was started (once per store, however often bring-up is tried).
    listening: Arc<std::sync::atomic::AtomicBool>,
}

impl Store {
    /// Opens the store with default pool settings, waiting for it (the CLI, tests).
    pub async fn connect(url: &str) -> StoreResult<Store> {
        let store = Store::open(url, PoolSettings::default())?;
        store.bring_up().await?;
        Ok(store)
    }

    /// Makes the pool without waiting for the database: SQLite opens its file at the first
    /// query, PostgreSQL connects when a connection is first needed. Call
    /// [`Store::bring_up`] (or [`Store::keep_bringing_up`]) next.
    pub fn open(url: &str, pool: PoolSettings) -> StoreResult<Store> {
        let timeout = Duration::from_secs(pool.connect_timeout.max(1));
        match Backend::of_url(url) {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)?
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true);
                let pooled = SqlitePoolOptions::new()
                    .max_connections(pool_size(&pool, Backend::Sqlite))
                    .acquire_timeout(timeout)
                    .connect_lazy_with(options.clone());
                Ok(Store {
                    pool: Pool::Sqlite(pooled),
                    sqlite_options: Some(options),
                    sessions: Arc::new(SessionCache::new(0)),
                    ready: Arc::new(notify::Readiness::ready()),
                    heard: tokio::sync::broadcast::channel(1024).0,
                    listening: Arc::default(),
                })
            }
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(url)?.application_name("portal");
                let pooled = PgPoolOptions::new()
                    .max_connections(pool_size(&pool, Backend::Postgres))
                    .min_connections(0)
                    .acquire_timeout(timeout)
                    .idle_timeout(Some(Duration::from_secs(pool.idle_timeout.max(1))))
                    .connect_lazy_with(options);
                let store = Store {
                    pool: Pool::Postgres(pooled),
                    sqlite_options: None,
                    sessions: Arc::new(SessionCache::new(0)),
                    ready: Arc::new(notify::Readiness::waiting()),
                    heard: tokio::sync::broadcast::channel(1024).0,
                    listening: Arc::default(),
                };
                // Until the revocation listener is listening, nothing is cached.
                store.sessions.set_degraded(true);
                Ok(store)
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Creates the SQLite file (private) if the URL allows, brings the schema up to date
    /// (on PostgreSQL under sqlx's advisory lock, so instances starting together apply each
    /// migration once), fills columns added later, and on PostgreSQL starts the listener
    /// that drops cached sessions other instances ended.
    pub async fn bring_up(&self) -> StoreResult<()> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                let file = self.sqlite_options.as_ref().map(|o| o.get_filename().to_owned());
                let existed = file.as_ref().is_some_and(|f| f.exists());
                // The first connection creates the file.
                drop(pool.acquire().await?);
                if let Some(file) = &file {
                    keep_private(file, existed);
                }
                sqlx::migrate!("./migrations/sqlite").run(pool).await?;
            }
            Pool::Postgres(pool) => {
                sqlx::migrate!("./migrations/postgres").run(pool).await?;
            }
        }
        self.fill_email_keys().await?;
        if let Pool::Postgres(pool) = &self.pool {
            if !self.listening.swap(true, std::sync::atomic::Ordering::AcqRel) {
                notify::spawn_listener(pool.clone(), Arc::downgrade(&self.sessions), self.heard.clone());
            }
        }
        self.ready.set_ready();
        Ok(())
    }

    /// The server's start on PostgreSQL: tries [`Store::bring_up`] now, and if the database
    /// does not answer, logs why and keeps trying every two seconds in the background; the
    /// portal serves `503` meanwhile. `then` runs once the store is up (the signing key).
    pub async fn keep_bringing_up<F, Fut>(&self, then: F) -> StoreResult<()>
    where
        F: Fn(Store) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send,
    {
        match self.bring_up().await {
            Ok(()) => {
                if let Err(e) = then(self.clone()).await {
                    return Err(sqlx::Error::Protocol(e));
                }
                Ok(())
            }
            Err(e) if self.backend() == Backend::Postgres && class(&e) == ErrorClass::Unavailable => {
                log::error!("the store is not reachable yet ({e}); serving 503 and retrying every 2 s");
                self.ready.set_waiting(e.to_string());
                let store = self.clone();
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        match store.bring_up().await {
                            Ok(()) => match then(store.clone()).await {
                                Ok(()) => {
                                    log::info!("the store is up: schema current, serving");
                                    return;
                                }
                                Err(e) => store.ready.set_waiting(e),
                            },
                            Err(e) => store.ready.set_waiting(e.to_string()),
                        }
                    }
                });
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Lets [`Store::live_session`] answer from memory for `ttl` seconds (0: never).
    pub fn with_session_cache(self, ttl: i64) -> Store {
        self.sessions.set_ttl(ttl);
        self
    }

    /// Closes the pool: later queries fail. For shutdown (and tests of a store that is down).
    pub async fn close(&self) {
        on_pool!(&self.pool, p => p.close().await)
    }

    /// Answers when the database does. SQLite: reads the schema version and a row of
    /// `users` through the pool, and again through a connection opened afresh (a pooled one
    /// may answer from its page cache), so a replaced, truncated or corrupted file fails
    /// here, not only at the next sign-in. PostgreSQL: the first start's work is done, and
    /// the same reads through the pool.
    pub async fn ping(&self) -> StoreResult<()> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut pooled = pool.acquire().await?;
                read_something_real!(&mut *pooled)?;
                let Some(options) = &self.sqlite_options else { return Ok(()) };
                let file = options.get_filename();
                if file.as_os_str() != ":memory:" {
                    check_main_file(file).await?;
                    let mut fresh = options.clone().create_if_missing(false).connect().await?;
                    let read = read_something_real!(&mut fresh);
                    let _ = fresh.close().await;
                    read?;
                }
                Ok(())
            }
            Pool::Postgres(pool) => {
                self.ready.check()?;
                let mut pooled = pool.acquire().await?;
                read_something_real!(&mut *pooled)
            }
        }
    }

    /// Whether the first-start work is done (always, once [`Store::bring_up`] returned).
    pub fn is_up(&self) -> bool {
        self.ready.is_ready()
    }

    /// Whether cached sessions are being dropped as other instances end them (always on
    /// SQLite; on PostgreSQL while the listener is connected).
    pub fn revocations_heard(&self) -> bool {
        !self.sessions.is_degraded()
    }

    /// How many times the revocation listener has (re)connected and caching resumed (for
    /// tests: a lost connection shows as this number going up).
    pub fn listener_connects(&self) -> u64 {
        self.sessions.times_resumed()
    }

    /// Connections open and idle in the pool (for metrics).
    pub fn pool_state(&self) -> (u32, usize) {
        on_pool!(&self.pool, p => (p.size(), p.num_idle()))
    }
}

/// Whether the main database file is still an SQLite database, as SQLite reads it, so that a
/// file overwritten in place is noticed even while every page the pool reads is in the WAL.
///
/// Never `std::fs`: POSIX locks belong to the process, and closing *any* descriptor of the
/// file drops all of them, SQLite's own included ("How To Corrupt An SQLite Database File",
/// §2.2). Another process (the CLI, a backup) may then checkpoint and delete the live WAL
/// while this one goes on writing to it. SQLite's unix VFS knows every descriptor it opened
/// on the file and defers closing one while the process holds locks there, so a connection
/// of its own is safe. `immutable` makes that connection read the main file alone (no WAL,
/// no locks), and `PRAGMA page_count` reads its header, where SQLite checks the magic
/// string, the format and the page size. The main file alone may be behind its WAL, or
/// halfway through a checkpoint that a crash cut short (its header then counts pages the
/// file does not have yet): both are healthy stores that SQLite recovers from the WAL, so
/// `writable_schema` lets that count go unchecked. An empty file is not a store.
async fn check_main_file(file: &std::path::Path) -> StoreResult<()> {
    let options = SqliteConnectOptions::new()
        .filename(file)
        .immutable(true)
        .read_only(true)
        .create_if_missing(false)
        .pragma("writable_schema", "ON");
    let mut raw = options.connect().await?;
    let pages: StoreResult<Vec<i64>> = sqlx::query_scalar("PRAGMA page_count").fetch_all(&mut raw).await;
    let _ = raw.close().await;
    match pages?.first() {
        Some(pages) if *pages > 0 => Ok(()),
        _ => Err(sqlx::Error::Protocol(format!("{} is empty: not an SQLite database", file.display()))),
    }
}

/// The store holds password hashes and emails: a file the portal creates is made readable
/// by its owner only (`0600`), before the schema (or anything else) is written to it. SQLite
/// creates `-wal` and `-shm` with the main file's mode, so they follow; those already
/// created with the process umask are tightened too. A file that existed with looser
/// permissions is left alone, with a warning: it is the operator's.
fn keep_private(file: &std::path::Path, existed: bool) {
    use std::os::unix::fs::PermissionsExt;
    if file.as_os_str().is_empty() || file.as_os_str() == ":memory:" {
        return;
    }
    if existed {
        if let Ok(meta) = std::fs::metadata(file) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                log::warn!(
                    "the database {} can be read by other users (mode {mode:o}): `chmod 600` it and its -wal and -shm files",
                    file.display()
                );
            }
        }
        return;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut path = file.as_os_str().to_owned();
        path.push(suffix);
        let path = std::path::PathBuf::from(path);
        if path.exists() {
            if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
                log::warn!("could not make {} private (chmod 600): {e}", path.display());
            }
        }
    }
}

#[cfg(test)]
pub(crate) async fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.sqlite").display());
    let store = Store::connect(&url).await.unwrap_or_else(|e| panic!("store: {e}"));
    (dir, store)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed unwrap is a failed test
    use super::check_main_file;

    #[tokio::test]
    async fn a_main_file_a_checkpoint_left_short_is_a_store_but_garbage_and_an_empty_file_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("whole.sqlite");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await.unwrap();
        sqlx::query("CREATE TABLE t (x TEXT)").execute(&pool).await.unwrap();
        for _ in 0..200 {
            sqlx::query("INSERT INTO t VALUES ($1)").bind("x".repeat(500)).execute(&pool).await.unwrap();
        }
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&pool).await.unwrap();
        pool.close().await;
        check_main_file(&file).await.unwrap();

        // A checkpoint writes pages in order, the header first: cut short by a crash, the
        // file's header counts pages the file does not have yet (the WAL still holds them).
        let short = dir.path().join("short.sqlite");
        std::fs::copy(&file, &short).unwrap();
        let len = std::fs::metadata(&short).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&short).unwrap().set_len(len / 2).unwrap();
        check_main_file(&short).await.unwrap();

        let garbage = dir.path().join("garbage.sqlite");
        std::fs::write(
            &garbage,
            (0..65_536u32).map(|n| (n.wrapping_mul(2_654_435_761) >> 24) as u8).collect::<Vec<_>>(),
        )
        .unwrap();
        assert!(check_main_file(&garbage).await.is_err(), "garbage is not a store");
        let empty = dir.path().join("empty.sqlite");
        std::fs::write(&empty, b"").unwrap();
        assert!(check_main_file(&empty).await.is_err(), "an empty file is not a store");
    }
}
