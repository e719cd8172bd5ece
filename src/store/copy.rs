//! `portal store copy` and `portal store check`: moving a store from one database to another
//! (SQLite to PostgreSQL, usually) with every id kept, and reading a store's schema version.

use rocket::futures::TryStreamExt;

use super::oidc::GRANT_COLUMNS;
use super::{Backend, GrantRow, Pool, Store, StoreResult};

/// The tables a copy moves, in an order the foreign keys accept. `throttle` is left behind:
/// its windows last minutes and are keyed per deployment; so are `ceremonies` (a passkey
/// ceremony lasts minutes and is bound to one browser).
pub const COPIED_TABLES: [&str; 17] = [
    "users",
    "identities",
    "sessions",
    "known_devices",
    "reset_links",
    "email_links",
    "events",
    "signing_keys",
    "totp",
    "recovery_codes",
    "passkeys",
    "notices",
    "oidc_clients",
    "oidc_consents",
    "oidc_grants",
    "oidc_refresh_tokens",
    "outbox",
];

/// What a store holds and which schema it is on.
#[derive(Debug, Clone)]
pub struct SchemaReport {
    pub backend: Backend,
    /// The newest migration applied, if any.
    pub applied: Option<i64>,
    /// The newest migration this binary has.
    pub latest: i64,
    /// Rows per table (only when the schema is there).
    pub rows: Vec<(&'static str, i64)>,
}

/// What a copy moved: rows per table, counted on both sides after the copy.
#[derive(Debug, Clone)]
pub struct CopyReport {
    pub rows: Vec<(&'static str, i64)>,
}

/// Why a copy did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the target is not empty ({0} has rows): copy into an empty database")]
    TargetNotEmpty(&'static str),
    #[error("after the copy, {table} has {source_rows} rows in the source but {target_rows} in the target")]
    Mismatch { table: &'static str, source_rows: i64, target_rows: i64 },
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// `INSERT INTO table (columns) VALUES ($1, …, $n)`.
fn insert_sql(table: &str, columns: &str) -> String {
    let n = columns.split(',').count();
    let params: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!("INSERT INTO {table} ({columns}) VALUES ({})", params.join(", "))
}

/// Streams every row of a table from `$from` (a pool) into `$tx` (the target's
/// transaction), decoding each as the tuple type given.
macro_rules! copy_rows {
    ($from:expr, $tx:expr, $table:literal, $columns:literal, ($($ty:ty),+), ($($i:tt),+)) => {{
        let select = concat!("SELECT ", $columns, " FROM ", $table);
        let insert = insert_sql($table, $columns);
        on_pool!($from, source => {
            let mut rows = sqlx::query_as::<_, ($($ty,)+)>(select).fetch(source);
            while let Some(row) = rows.try_next().await? {
                sqlx::query(&insert)$(.bind(row.$i))+.execute(&mut *$tx).await?;
            }
        });
    }};
}

impl Store {
    /// Rows in each copied table.
    pub async fn table_counts(&self) -> StoreResult<Vec<(&'static str, i64)>> {
        let mut out = Vec::new();
        for table in COPIED_TABLES {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let n: i64 = on_pool!(&self.pool, p => sqlx::query_scalar(&sql).fetch_one(p).await?);
            out.push((table, n));
        }
        Ok(out)
    }

    /// The schema version and the rows per table, without changing anything.
    pub async fn check(&self) -> StoreResult<SchemaReport> {
        let latest = match self.backend() {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").iter().map(|m| m.version).max(),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").iter().map(|m| m.version).max(),
        }
        .unwrap_or(0);
        let applied: Result<Option<i64>, sqlx::Error> = on_pool!(&self.pool, p => {
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success").fetch_one(p).await
        });
        let applied = match applied {
            Ok(version) => version,
            // No migrations table: nothing was ever applied.
            Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("42P01")) => None,
            Err(sqlx::Error::Database(e)) if e.message().contains("no such table") => None,
            Err(e) => return Err(e),
        };
        let rows = if applied.is_some() { self.table_counts().await? } else { Vec::new() };
        Ok(SchemaReport { backend: self.backend(), applied, latest, rows })
    }

    /// Copies every user, identity, session, known device, password and email link, second
    /// factor, notice, event,
    /// signing key, OpenID client, consent, grant and refresh token, and message in the
    /// outbox from `self`
    /// into `target`, ids kept, in one transaction on the target; refuses a target that
    /// holds anything. Both stores must be brought up (schema current) first. On a
    /// PostgreSQL target, the id sequences are moved past the copied ids.
    pub async fn copy_into(&self, target: &Store) -> Result<CopyReport, CopyError> {
        for (table, rows) in target.table_counts().await? {
            if rows > 0 {
                return Err(CopyError::TargetNotEmpty(table));
            }
        }
        on_pool!(&target.pool, to => {
            let mut tx = to.begin().await?;
            copy_rows!(&self.pool, tx, "users",
                "id, username, username_key, email, email_key, password_hash, is_admin, disabled, created_at, last_login_at, email_verified, notices_off",
                (i64, String, String, Option<String>, Option<String>, Option<String>, bool, bool, i64, Option<i64>, bool, String),
                (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
            copy_rows!(&self.pool, tx, "identities", "provider, subject, user_id, email, created_at",
                (String, String, i64, Option<String>, i64), (0, 1, 2, 3, 4));
            copy_rows!(&self.pool, tx, "sessions",
                "id, secret_hash, user_id, method, methods, aal, created_at, last_seen_at, ended_at, client, ip, persist, upstream_sid",
                (String, String, i64, String, String, i64, i64, i64, Option<i64>, String, Option<String>, bool, Option<String>),
                (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12));
            copy_rows!(&self.pool, tx, "reset_links",
                "token_hash, user_id, created_at, expires_at, used_at, created_by, sent_to",
                (String, i64, i64, i64, Option<i64>, String, Option<String>), (0, 1, 2, 3, 4, 5, 6));
            copy_rows!(&self.pool, tx, "known_devices", "user_id, device, first_seen, last_seen",
                (i64, String, i64, i64), (0, 1, 2, 3));
            copy_rows!(&self.pool, tx, "email_links", "token_hash, user_id, email, created_at, expires_at, used_at",
                (String, i64, String, i64, i64, Option<i64>), (0, 1, 2, 3, 4, 5));
            copy_rows!(&self.pool, tx, "events",
                "id, at, kind, actor, subject_user_id, subject_name, ip, client, detail",
                (i64, i64, String, String, Option<i64>, Option<String>, Option<String>, Option<String>, String),
                (0, 1, 2, 3, 4, 5, 6, 7, 8));
            copy_rows!(&self.pool, tx, "signing_keys",
                "kid, algorithm, private_pkcs8, public_key, created_at, retired_at",
                (String, String, String, String, i64, Option<i64>), (0, 1, 2, 3, 4, 5));
            copy_rows!(&self.pool, tx, "totp", "user_id, sealed_secret, created_at, confirmed_at, last_step",
                (i64, String, i64, Option<i64>, i64), (0, 1, 2, 3, 4));
            copy_rows!(&self.pool, tx, "recovery_codes", "user_id, code_hash, created_at, used_at",
                (i64, String, i64, Option<i64>), (0, 1, 2, 3));
            copy_rows!(&self.pool, tx, "passkeys",
                "credential_id, user_id, user_handle, name, credential, backup_eligible, backup_state, sign_count, created_at, last_used_at",
                (String, i64, String, String, String, bool, bool, i64, i64, Option<i64>),
                (0, 1, 2, 3, 4, 5, 6, 7, 8, 9));
            copy_rows!(&self.pool, tx, "notices", "user_id, kind, at", (i64, String, i64), (0, 1, 2));
            copy_rows!(&self.pool, tx, "oidc_clients",
                "client_id, name, secret_hash, redirect_uris, post_logout_redirect_uris, public, consent, allow, second_factor, signing_alg, created_at",
                (String, String, Option<String>, String, String, bool, String, String, bool, String, i64),
                (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
            copy_rows!(&self.pool, tx, "oidc_consents", "user_id, client_id, scopes, granted_at",
                (i64, String, String, i64), (0, 1, 2, 3));
            // Seventeen columns: more than a tuple reads, so the row type.
            let insert = insert_sql("oidc_grants", GRANT_COLUMNS);
            on_pool!(&self.pool, source => {
                let select = format!("SELECT {GRANT_COLUMNS} FROM oidc_grants");
                let mut rows = sqlx::query_as::<_, GrantRow>(&select).fetch(source);
                while let Some(g) = rows.try_next().await? {
                    sqlx::query(&insert)
                        .bind(g.id).bind(g.client_id).bind(g.user_id).bind(g.session_id).bind(g.scopes)
                        .bind(g.nonce).bind(g.auth_time).bind(g.methods).bind(g.aal).bind(g.code_hash)
                        .bind(g.code_expires_at).bind(g.code_used_at).bind(g.redirect_uri).bind(g.code_challenge)
                        .bind(g.offline).bind(g.created_at).bind(g.revoked_at)
                        .execute(&mut *tx).await?;
                }
            });
            copy_rows!(&self.pool, tx, "oidc_refresh_tokens", "token_hash, grant_id, created_at, expires_at, used_at",
                (String, String, i64, i64, Option<i64>), (0, 1, 2, 3, 4));
            // Not `claimed_until`: a claim in flight is not copied (the copy's sender starts afresh).
            copy_rows!(&self.pool, tx, "outbox",
                "id, message_id, kind, user_id, recipient, sealed, status, attempts, next_attempt_at, last_error, created_at, sent_at",
                (i64, String, String, Option<i64>, String, Option<String>, String, i32, i64, Option<String>, i64, Option<i64>),
                (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
            tx.commit().await?;
        });
        if let Pool::Postgres(pool) = &target.pool {
            for table in ["users", "events", "outbox"] {
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
                );
                sqlx::query(&sql).execute(pool).await?;
            }
        }
        let source = self.table_counts().await?;
        let copied = target.table_counts().await?;
        for ((table, source_rows), (_, target_rows)) in source.iter().zip(&copied) {
            if source_rows != target_rows {
                return Err(CopyError::Mismatch {
                    table,
                    source_rows: *source_rows,
                    target_rows: *target_rows,
                });
            }
        }
        Ok(CopyReport { rows: copied })
    }
}
