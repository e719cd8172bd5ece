//! The store: a sqlx pool (SQLite by default), its migrations, its health, and a module per
//! table (`users`, `identities`), the username rule and the session cache.
//!
//! The SQL sticks to what SQLite and PostgreSQL both accept (`$n` parameters, `RETURNING`,
//! BIGINT Unix times) so a PostgreSQL store needs a migration set, not a rewrite.

mod cache;
mod directory;
mod events;
mod identities;
mod keys;
mod resets;
mod sessions;
mod username;
mod users;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection};

use self::cache::SessionCache;
pub use self::directory::{Cursor, DirectoryRow, LiveCutoffs, UserPage, UserSearch};
pub use self::events::{EventCursor, EventFilter, EventRecord, NewEvent, Subject};
pub use self::identities::{LinkError, LinkedIdentity, Unlinked};
pub use self::keys::SigningKey;
pub use self::resets::NewResetLink;
pub use self::sessions::{LiveSession, NewSession, SessionRecord, SweepBefore};
pub use self::username::{account_key, email_key, search_key, Username, UsernameError, MAX_USERNAME_CHARS};
pub use self::users::{CreateUserError, Credentials, Guarded, NewUser, User};

pub type StoreResult<T> = Result<T, sqlx::Error>;

/// The store as managed state; cheap to clone (the pool and the cache are shared).
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// How to open the file afresh: the health check does, since a pooled connection may
    /// answer from its page cache after the file under it was replaced or corrupted.
    options: SqliteConnectOptions,
    sessions: Arc<SessionCache>,
}

impl Store {
    /// Opens (creating if the URL allows) the database and brings its schema up to date.
    pub async fn connect(url: &str) -> StoreResult<Store> {
        let options = SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let file = options.get_filename().to_owned();
        let existed = file.exists();
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await?;
        keep_private(&file, existed);
        sqlx::migrate!("./migrations").run(&pool).await?;
        let options = options.create_if_missing(false);
        let store = Store { pool, options, sessions: Arc::new(SessionCache::new(0)) };
        store.fill_email_keys().await?;
        Ok(store)
    }

    /// Lets [`Store::live_session`] answer from memory for `ttl` seconds (0: never).
    pub fn with_session_cache(mut self, ttl: i64) -> Store {
        self.sessions = Arc::new(SessionCache::new(ttl));
        self
    }

    /// Closes the pool: later queries fail. For shutdown (and tests of a store that is down).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Answers when the database does: reads the schema version and a row of `users`
    /// through the pool, and again through a connection opened afresh (a pooled one may
    /// answer from its page cache), so a replaced, truncated or corrupted file fails here,
    /// not only at the next sign-in.
    pub async fn ping(&self) -> StoreResult<()> {
        let mut pooled = self.pool.acquire().await?;
        read_something_real(&mut pooled).await?;
        let file = self.options.get_filename();
        if file.as_os_str() != ":memory:" {
            // With WAL, recent pages are read from the `-wal` file: only the main file's
            // header shows that the file itself was overwritten.
            check_header(file)?;
            let mut fresh = self.options.connect().await?;
            let read = read_something_real(&mut fresh).await;
            let _ = fresh.close().await;
            read?;
        }
        Ok(())
    }
}

/// The schema version and one row of `users`: what every sign-in needs to be readable.
async fn read_something_real(conn: &mut sqlx::SqliteConnection) -> StoreResult<()> {
    let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut *conn)
        .await?;
    if version.is_none() {
        return Err(sqlx::Error::Protocol("the store has no applied migrations".into()));
    }
    sqlx::query("SELECT id FROM users ORDER BY id LIMIT 1").fetch_optional(&mut *conn).await?;
    Ok(())
}

/// Every SQLite database file starts with these 16 bytes.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

fn check_header(file: &std::path::Path) -> StoreResult<()> {
    use std::io::Read;
    let mut header = [0u8; 16];
    std::fs::File::open(file).and_then(|mut f| f.read_exact(&mut header))?;
    if &header != SQLITE_MAGIC {
        return Err(sqlx::Error::Protocol(format!("{} is not an SQLite database any more", file.display())));
    }
    Ok(())
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

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_unique_violation())
}

#[cfg(test)]
pub(crate) async fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.sqlite").display());
    let store = Store::connect(&url).await.unwrap_or_else(|e| panic!("store: {e}"));
    (dir, store)
}
