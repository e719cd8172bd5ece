//! The store's machinery, apart from its tables: the pool on either backend ([`Pool`],
//! [`Backend`]), what differs between them ([`PoolDialect`], [`ConnDialect`]), the macros
//! that run one statement on whichever pool is configured, statements put together at run
//! time ([`Built`]), and the class of a store error ([`ErrorClass`]), read by the web layer
//! (503, 400 or 500) and by the metrics.

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::{PgConnection, SqliteConnection};

use super::StoreResult;
use crate::config::PoolSettings;

/// Runs `$body` with `$p` bound to the concrete pool (`&SqlitePool` or `&PgPool`).
/// A macro because each arm must be compiled and type-checked for its own backend.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::store::pool::Pool::Sqlite($p) => $body,
            $crate::store::pool::Pool::Postgres($p) => $body,
        }
    };
}

/// Ends every live session of the user but `except`, on a pool or inside a caller's
/// transaction (a password change, disabling a user); the number ended.
/// A macro because the executor is a pool or a transaction of either backend.
macro_rules! end_all_but {
    ($executor:expr, $user_id:expr, $except:expr, $now:expr) => {
        sqlx::query(
            "UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL AND id <> COALESCE($3, '')",
        )
        .bind($now)
        .bind($user_id)
        .bind($except)
        .execute($executor)
        .await
        .map(|done| done.rows_affected())
    };
}

/// Sets a user's password hash and ends every session they have, inside a caller's
/// transaction (a password change, a reset link followed).
/// A macro because the transaction is either backend's, and its `?` returns from the caller.
macro_rules! set_password_ending_sessions {
    ($tx:expr, $user_id:expr, $password_hash:expr, $now:expr) => {{
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind($password_hash)
            .bind($user_id)
            .execute(&mut *$tx)
            .await?;
        revoke_grants_of!(&mut *$tx, $user_id, $now)?;
        end_all_but!(&mut *$tx, $user_id, None::<&str>, $now)
    }};
}

/// Revokes every OpenID grant of a user (and so every token they issued), on a pool or
/// inside a caller's transaction: signing out everywhere, a password change, disabling.
macro_rules! revoke_grants_of {
    ($executor:expr, $user_id:expr, $now:expr) => {
        sqlx::query("UPDATE oidc_grants SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
            .bind($now)
            .bind($user_id)
            .execute($executor)
            .await
            .map(|done| done.rows_affected())
    };
}

/// The schema version and one row of `users`: what every sign-in needs to be readable.
/// A macro because the connection is pooled or fresh, of either backend.
macro_rules! read_something_real {
    ($conn:expr) => {{
        let conn = $conn;
        // `fetch_all`: each statement runs to its end. A SQLite statement left on a row
        // keeps its read transaction open, and that pooled connection would go on reading
        // the snapshot of that moment (writes from other processes unseen).
        let version: Vec<Option<i64>> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_all(&mut *conn)
                .await?;
        if version.first().copied().flatten().is_none() {
            Err(sqlx::Error::Protocol("the store has no applied migrations".into()))
        } else {
            sqlx::query("SELECT id FROM users ORDER BY id LIMIT 1").fetch_all(&mut *conn).await.map(|_| ())
        }
    }};
}

/// Binds every value of a [`Built`] statement to a query, in order.
/// A macro because the query's type (its arguments) is each backend's own.
macro_rules! bind_all {
    ($query:expr, $built:expr) => {{
        let mut query = $query;
        for value in &$built.values {
            query = match value {
                $crate::store::pool::Value::Int(n) => query.bind(*n),
                $crate::store::pool::Value::Text(text) => query.bind(text.as_str()),
            };
        }
        query
    }};
}

/// The pool, on whichever backend `databases.portal.url` names.
#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Which database the store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a URL names: `postgres://` or `postgresql://`, else SQLite.
    pub fn of_url(url: &str) -> Backend {
        let scheme = url.split(':').next().unwrap_or("").to_ascii_lowercase();
        if scheme == "postgres" || scheme == "postgresql" {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// Connections in the pool: `max_connections`, or 8 on SQLite and 16 on PostgreSQL (one of
/// which the revocation listener keeps); never fewer than two.
pub(super) fn pool_size(pool: &PoolSettings, backend: Backend) -> u32 {
    let default = match backend {
        Backend::Sqlite => 8,
        Backend::Postgres => 16,
    };
    pool.max_connections.unwrap_or(default).max(2)
}

/// What differs between the backends' pools.
pub(crate) trait PoolDialect {
    /// Appended to the `SELECT` that picks a sweep's batch: on PostgreSQL, instances sweeping
    /// at once take disjoint batches instead of waiting on each other's rows.
    const SKIP_LOCKED: &'static str;
    type Tx;
    /// A transaction for a rule-bearing write (read, check, write): on SQLite it takes the
    /// write lock at `BEGIN` (`BEGIN IMMEDIATE`), on PostgreSQL the caller locks the rows
    /// the rule reads ([`ConnDialect::lock_user`]).
    async fn begin_write(&self) -> StoreResult<Self::Tx>;
}

impl PoolDialect for SqlitePool {
    const SKIP_LOCKED: &'static str = "";
    type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;
    async fn begin_write(&self) -> StoreResult<Self::Tx> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl PoolDialect for PgPool {
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    type Tx = sqlx::Transaction<'static, sqlx::Postgres>;
    async fn begin_write(&self) -> StoreResult<Self::Tx> {
        self.begin().await
    }
}

/// `SKIP_LOCKED` of the pool `p` is (for use inside [`on_pool!`]).
pub(crate) fn skip_locked<P: PoolDialect>(_: &P) -> &'static str {
    P::SKIP_LOCKED
}

/// What differs between the backends inside a write transaction.
pub(crate) trait ConnDialect {
    /// Locks a user's row until the transaction ends, so a rule about that user (their
    /// last way to sign in) is read and kept by one writer at a time. SQLite: already done
    /// by `BEGIN IMMEDIATE`.
    async fn lock_user(&mut self, id: i64) -> StoreResult<()>;
    /// Serialises changes that could leave no enabled administrator: the rule's `EXISTS`
    /// must see every other such change. SQLite runs writes one at a time already.
    async fn lock_admins(&mut self) -> StoreResult<()>;
}

impl ConnDialect for SqliteConnection {
    async fn lock_user(&mut self, _id: i64) -> StoreResult<()> {
        Ok(())
    }
    async fn lock_admins(&mut self) -> StoreResult<()> {
        Ok(())
    }
}

/// The advisory lock key of "the set of enabled administrators".
const ADMINS_LOCK: i64 = 0x706f_7274_616c_0001;

impl ConnDialect for PgConnection {
    async fn lock_user(&mut self, id: i64) -> StoreResult<()> {
        sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *self)
            .await?;
        Ok(())
    }
    async fn lock_admins(&mut self) -> StoreResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(ADMINS_LOCK).execute(&mut *self).await?;
        Ok(())
    }
}

/// A statement put together at run time, with `$n` parameters (both backends read them)
/// and the values they stand for.
#[derive(Debug, Default)]
pub(crate) struct Built {
    pub(crate) sql: String,
    pub(crate) values: Vec<Value>,
}

#[derive(Debug, Clone)]
pub(crate) enum Value {
    Int(i64),
    Text(String),
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::Text(text)
    }
}

impl Built {
    pub(crate) fn new(sql: impl Into<String>) -> Built {
        Built { sql: sql.into(), values: Vec::new() }
    }

    pub(crate) fn push(&mut self, sql: &str) -> &mut Built {
        self.sql.push_str(sql);
        self
    }

    /// Appends a parameter standing for `value`.
    pub(crate) fn push_bind(&mut self, value: impl Into<Value>) -> &mut Built {
        self.values.push(value.into());
        self.sql.push('$');
        self.sql.push_str(&self.values.len().to_string());
        self
    }

    /// Appends `(p1, p2, …)` for the values.
    pub(crate) fn push_list(&mut self, values: impl IntoIterator<Item = impl Into<Value>>) -> &mut Built {
        self.sql.push('(');
        for (n, value) in values.into_iter().enumerate() {
            if n > 0 {
                self.sql.push_str(", ");
            }
            self.push_bind(value);
        }
        self.sql.push(')');
        self
    }
}

/// What a store error means for the one who asked: the one place a `sqlx::Error` is
/// classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The database is not answering now (down, restarting, out of connections, not yet
    /// migrated): `503` with `Retry-After`, never `500`.
    Unavailable,
    /// The database refused a value the request carried: `400`.
    BadInput,
    /// Anything else: `500`.
    Other,
}

impl ErrorClass {
    /// The `kind` label of `portal_store_errors_total`.
    pub fn label(self) -> &'static str {
        match self {
            ErrorClass::Unavailable => "unavailable",
            ErrorClass::BadInput => "refused",
            ErrorClass::Other => "other",
        }
    }
}

/// The class of a store error.
pub fn class(e: &sqlx::Error) -> ErrorClass {
    if is_unavailable(e) {
        ErrorClass::Unavailable
    } else if is_bad_input(e) {
        ErrorClass::BadInput
    } else {
        ErrorClass::Other
    }
}

/// Whether an error means "the database is not answering now" (down, restarting, out of
/// connections, or not yet migrated) rather than a fault in the request: such requests
/// get `503` with `Retry-After`, never `500`.
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Protocol(_) => true,
        // A migration that could not run because the database did not answer.
        sqlx::Error::Migrate(migrate) => match &**migrate {
            sqlx::migrate::MigrateError::Execute(inner) => is_unavailable(inner),
            _ => false,
        },
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            // Class 08: connection exception; 57P01-57P05: shutdown, crash, cannot
            // connect now; 53300: too many connections; 40001/40P01: serialization failure
            // or deadlock (retry); 42P01: a table not there yet (the first start's
            // migrations are running); 25006: read-only transaction (a standby).
            code.starts_with("08")
                || code.starts_with("57P")
                || matches!(code, "53300" | "40001" | "40P01" | "42P01" | "25006")
        }
        _ => false,
    }
}

/// Whether the database refused a value itself (PostgreSQL's class 22, "data exception":
/// a NUL character in text, a number out of range): the request carried it, so `400`.
fn is_bad_input(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.code().is_some_and(|code| code.starts_with("22")),
        _ => false,
    }
}

/// Whether a write broke a `UNIQUE` constraint (a name or an identity taken meanwhile).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_unique_violation())
}
