//! The user store: a sqlx pool (SQLite by default), its migrations, and every query.
//!
//! The SQL sticks to what SQLite and PostgreSQL both accept (`$n` parameters, `RETURNING`,
//! BIGINT Unix times) so a PostgreSQL store needs a migration set, not a rewrite.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection};
use unicode_normalization::UnicodeNormalization;

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

/// Users as the session guard last read them, for `ttl` seconds. Every write through this
/// store forgets the user it touched, so logout, a password change or disabling take
/// effect at once; a write from another process (the `users` CLI) within `ttl` seconds.
struct SessionCache {
    ttl: i64,
    users: Mutex<HashMap<i64, (i64, User)>>,
    /// Bumped by every write: a read that overlapped one is not cached.
    writes: AtomicU64,
}

/// The cache is cleared rather than grown past this many users.
const MAX_CACHED_USERS: usize = 10_000;

impl SessionCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (i64, User)>> {
        self.users.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A user as the rest of the portal sees one (no password hash).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub is_admin: bool,
    pub disabled: bool,
    pub session_epoch: i64,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

/// A user together with what a password check needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credentials {
    #[sqlx(flatten)]
    pub user: User,
    pub password_hash: Option<String>,
}

/// A provider identity linked to a user.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LinkedIdentity {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the identity already belongs to another user")]
    TakenByAnother,
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub is_admin: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("{0}")]
    InvalidUsername(#[from] UsernameError),
    #[error("the username is taken")]
    Taken,
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("a username needs 1 to {MAX_USERNAME_CHARS} characters")]
    Length,
    #[error("a username cannot contain spaces or control characters")]
    Characters,
}

pub const MAX_USERNAME_CHARS: usize = 64;

/// The form a username is stored and shown in (NFKC), and the key it is compared by
/// (NFKC, lowercased, NFKC again since lowercasing can denormalise).
pub fn normalize_username(raw: &str) -> Result<(String, String), UsernameError> {
    let display: String = raw.trim().nfkc().collect();
    let chars = display.chars().count();
    if chars == 0 || chars > MAX_USERNAME_CHARS {
        return Err(UsernameError::Length);
    }
    if display.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UsernameError::Characters);
    }
    let key = display.to_lowercase().nfkc().collect();
    Ok((display, key))
}

const USER_COLUMNS: &str =
    "id, username, email, is_admin, disabled, session_epoch, created_at, last_login_at";

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
        let options = options.create_if_missing(false);
        keep_private(&file, existed);
        sqlx::migrate!("./migrations").run(&pool).await?;
        let sessions = Arc::new(SessionCache { ttl: 0, users: Mutex::default(), writes: AtomicU64::new(0) });
        Ok(Store { pool, options, sessions })
    }

    /// Lets [`Store::session_user`] answer from memory for `ttl` seconds (0: never).
    pub fn with_session_cache(mut self, ttl: i64) -> Store {
        self.sessions = Arc::new(SessionCache { ttl, users: Mutex::default(), writes: AtomicU64::new(0) });
        self
    }

    /// The user behind a session, read at most once per `ttl` seconds.
    pub async fn session_user(&self, id: i64, now: i64) -> StoreResult<Option<User>> {
        let ttl = self.sessions.ttl;
        if ttl > 0 {
            if let Some((read_at, user)) = self.sessions.lock().get(&id) {
                if (0..ttl).contains(&(now - read_at)) {
                    return Ok(Some(user.clone()));
                }
            }
        }
        let writes = self.sessions.writes.load(Ordering::Acquire);
        let user = self.user_by_id(id).await?;
        if ttl > 0 {
            let mut users = self.sessions.lock();
            if self.sessions.writes.load(Ordering::Acquire) != writes {
                return Ok(user);
            }
            match &user {
                Some(user) => {
                    if users.len() >= MAX_CACHED_USERS {
                        users.clear();
                    }
                    users.insert(id, (now, user.clone()));
                }
                None => {
                    users.remove(&id);
                }
            }
        }
        Ok(user)
    }

    /// Called after every write to a user.
    fn forget(&self, id: i64) {
        let mut users = self.sessions.lock();
        self.sessions.writes.fetch_add(1, Ordering::AcqRel);
        users.remove(&id);
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

    pub async fn count_users(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await
    }

    pub async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    /// Looks a user up by name; a name that cannot be valid finds nobody.
    pub async fn credentials(&self, username: &str) -> StoreResult<Option<Credentials>> {
        let Ok((_, key)) = normalize_username(username) else {
            return Ok(None);
        };
        sqlx::query_as(&format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE username_key = $1"))
            .bind(key)
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        Ok(self.credentials(username).await?.map(|c| c.user))
    }

    pub async fn list_users(&self) -> StoreResult<Vec<User>> {
        sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id")).fetch_all(&self.pool).await
    }

    pub async fn create_user(&self, new: NewUser<'_>, now: i64) -> Result<User, CreateUserError> {
        let (username, key) = normalize_username(new.username)?;
        let result = sqlx::query_as(&format!(
            "INSERT INTO users (username, username_key, email, password_hash, is_admin, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {USER_COLUMNS}"
        ))
        .bind(username)
        .bind(key)
        .bind(new.email)
        .bind(new.password_hash)
        .bind(new.is_admin)
        .bind(now)
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(user) => Ok(user),
            Err(e) if is_unique_violation(&e) => Err(CreateUserError::Taken),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets a new password and ends every session the user has.
    pub async fn set_password(&self, id: i64, password_hash: &str) -> StoreResult<()> {
        sqlx::query("UPDATE users SET password_hash = $1, session_epoch = session_epoch + 1 WHERE id = $2")
            .bind(password_hash)
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.forget(id);
        Ok(())
    }

    /// Disables (or re-enables) a user; disabling ends every session they have.
    pub async fn set_disabled(&self, id: i64, disabled: bool) -> StoreResult<()> {
        sqlx::query("UPDATE users SET disabled = $1, session_epoch = session_epoch + 1 WHERE id = $2")
            .bind(disabled)
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.forget(id);
        Ok(())
    }

    /// Ends every session of the user: cookies carrying the old epoch stop working.
    pub async fn bump_epoch(&self, id: i64) -> StoreResult<()> {
        sqlx::query("UPDATE users SET session_epoch = session_epoch + 1 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.forget(id);
        Ok(())
    }

    pub async fn record_login(&self, id: i64, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.forget(id);
        Ok(())
    }
}

impl Store {
    /// The user a provider identity belongs to.
    pub async fn user_by_identity(&self, provider: &str, subject: &str) -> StoreResult<Option<User>> {
        let columns = USER_COLUMNS.replace(", ", ", u.");
        sqlx::query_as(&format!(
            "SELECT u.{columns} FROM users u JOIN identities i ON i.user_id = u.id
             WHERE i.provider = $1 AND i.subject = $2"
        ))
        .bind(provider)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await
    }

    /// Creates a password-less user for a first sign-in through a provider, with a username
    /// made unique from `hint` (`hint`, `hint2`, `hint3`, …), and links the identity.
    pub async fn create_user_for_identity(
        &self,
        hint: &str,
        email: Option<&str>,
        provider: &str,
        subject: &str,
        now: i64,
    ) -> Result<User, CreateUserError> {
        let username = self.free_username(hint).await?;
        let (username, key) = normalize_username(&username)?;
        let mut tx = self.pool.begin().await?;
        let user: User = sqlx::query_as(&format!(
            "INSERT INTO users (username, username_key, email, created_at)
             VALUES ($1, $2, $3, $4) RETURNING {USER_COLUMNS}"
        ))
        .bind(username)
        .bind(key)
        .bind(email)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| if is_unique_violation(&e) { CreateUserError::Taken } else { e.into() })?;
        sqlx::query(
            "INSERT INTO identities (provider, subject, user_id, email, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(provider)
        .bind(subject)
        .bind(user.id)
        .bind(email)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn free_username(&self, hint: &str) -> StoreResult<String> {
        for n in 1..=100 {
            let candidate = if n == 1 { hint.to_owned() } else { format!("{hint}{n}") };
            let Ok((_, key)) = normalize_username(&candidate) else { break };
            let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE username_key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
            if taken.is_none() {
                return Ok(candidate);
            }
        }
        let suffix: u32 = rand::random();
        Ok(format!("user-{suffix:08x}"))
    }

    /// Links an identity to a user; an identity belongs to one user only.
    pub async fn link_identity(
        &self,
        user_id: i64,
        provider: &str,
        subject: &str,
        email: Option<&str>,
        now: i64,
    ) -> Result<(), LinkError> {
        if let Some(owner) = self.user_by_identity(provider, subject).await? {
            return if owner.id == user_id { Ok(()) } else { Err(LinkError::TakenByAnother) };
        }
        sqlx::query(
            "INSERT INTO identities (provider, subject, user_id, email, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(provider)
        .bind(subject)
        .bind(user_id)
        .bind(email)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| if is_unique_violation(&e) { LinkError::TakenByAnother } else { e.into() })?;
        Ok(())
    }

    pub async fn identities(&self, user_id: i64) -> StoreResult<Vec<LinkedIdentity>> {
        sqlx::query_as(
            "SELECT provider, subject, email, created_at FROM identities WHERE user_id = $1 ORDER BY provider",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn has_password(&self, user_id: i64) -> StoreResult<bool> {
        let hash: Option<Option<String>> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(matches!(hash, Some(Some(_))))
    }

    /// Removes the user's identities from `provider`; returns how many went.
    pub async fn unlink_identity(&self, user_id: i64, provider: &str) -> StoreResult<u64> {
        sqlx::query("DELETE FROM identities WHERE user_id = $1 AND provider = $2")
            .bind(user_id)
            .bind(provider)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
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
mod tests {
    use super::*;

    #[test]
    fn usernames_compare_case_insensitively_after_nfkc() {
        let (_, a) = normalize_username("Admin").unwrap();
        let (_, b) = normalize_username("ＡＤＭＩＮ").unwrap(); // fullwidth letters
        assert_eq!(a, b);
        assert_eq!(a, "admin");
    }

    #[test]
    fn usernames_keep_their_case_for_display() {
        assert_eq!(normalize_username("  Alice ").unwrap().0, "Alice");
    }

    #[test]
    fn odd_usernames_are_refused() {
        assert_eq!(normalize_username(""), Err(UsernameError::Length));
        assert_eq!(normalize_username("   "), Err(UsernameError::Length));
        assert_eq!(normalize_username(&"a".repeat(65)), Err(UsernameError::Length));
        assert_eq!(normalize_username("a b"), Err(UsernameError::Characters));
        assert_eq!(normalize_username("a\u{0}b"), Err(UsernameError::Characters));
    }

    async fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.sqlite").display());
        (dir, Store::connect(&url).await.unwrap())
    }

    #[tokio::test]
    async fn a_taken_username_is_reported_as_taken_whatever_its_case() {
        let (_dir, store) = temp_store().await;
        let new = |name| NewUser { username: name, email: None, password_hash: None, is_admin: false };
        store.create_user(new("bob"), 1).await.unwrap();
        let err = store.create_user(new("BOB"), 2).await.unwrap_err();
        assert!(matches!(err, CreateUserError::Taken), "{err:?}");
        assert_eq!(store.count_users().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn setting_a_password_or_disabling_bumps_the_epoch() {
        let (_dir, store) = temp_store().await;
        let new = NewUser { username: "carol", email: None, password_hash: None, is_admin: false };
        let user = store.create_user(new, 1).await.unwrap();
        store.set_password(user.id, "x").await.unwrap();
        store.set_disabled(user.id, true).await.unwrap();
        let after = store.user_by_id(user.id).await.unwrap().unwrap();
        assert_eq!(after.session_epoch, user.session_epoch + 2);
        assert!(after.disabled);
    }
}
