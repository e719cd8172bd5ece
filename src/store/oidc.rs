//! The OpenID provider's tables: `oidc_clients` (applications added at run time),
//! `oidc_consents`, `oidc_grants` (one authorization each, with its single-use code) and
//! `oidc_refresh_tokens` (each used once; a second use revokes its grant). Codes and tokens
//! are stored as SHA-256 only.

use super::notify::Revoked;
use super::{is_unique_violation, Store, StoreResult, User};

/// An application as stored (see the migration for the column forms).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientRow {
    pub client_id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub public: bool,
    pub consent: String,
    pub allow: String,
    pub second_factor: bool,
    pub signing_alg: String,
    pub created_at: i64,
}

const CLIENT_COLUMNS: &str =
    "client_id, name, secret_hash, redirect_uris, post_logout_redirect_uris, public, \
                              consent, allow, second_factor, signing_alg, created_at";

/// A consent as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsentRow {
    pub client_id: String,
    pub scopes: String,
    pub granted_at: i64,
}

/// A grant as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GrantRow {
    pub id: String,
    pub client_id: String,
    pub user_id: i64,
    pub session_id: Option<String>,
    pub scopes: String,
    pub nonce: Option<String>,
    pub auth_time: i64,
    pub methods: String,
    pub aal: i64,
    pub code_hash: String,
    pub code_expires_at: i64,
    pub code_used_at: Option<i64>,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub offline: bool,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

pub(super) const GRANT_COLUMNS: &str = "id, client_id, user_id, session_id, scopes, nonce, auth_time, methods, aal, code_hash, \
                             code_expires_at, code_used_at, redirect_uri, code_challenge, offline, created_at, revoked_at";

/// What taking a code found.
#[derive(Debug)]
pub enum CodeTaken {
    /// Taken now; the refresh token (when one was asked for) is stored with it.
    Taken,
    /// Already taken, or expired: nothing issued.
    Spent,
}

/// What presenting a refresh token found.
#[derive(Debug)]
pub enum Rotation {
    /// It was live: it is used now, and the new one is stored. Its grant.
    Rotated(GrantRow),
    /// It had been used already: its grant is revoked now (the whole family). The grant.
    Replayed(GrantRow),
    /// Unknown, expired, or its grant is revoked.
    Unknown,
}

impl Store {
    /// The applications added at run time, by id.
    pub async fn oidc_clients(&self) -> StoreResult<Vec<ClientRow>> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM oidc_clients ORDER BY client_id");
        on_pool!(&self.pool, p => sqlx::query_as(&sql).fetch_all(p).await)
    }

    pub async fn oidc_client(&self, client_id: &str) -> StoreResult<Option<ClientRow>> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM oidc_clients WHERE client_id = $1");
        on_pool!(&self.pool, p => sqlx::query_as(&sql).bind(client_id).fetch_optional(p).await)
    }

    /// Stores a new application; `false` when its id is taken.
    pub async fn add_oidc_client(&self, row: &ClientRow) -> StoreResult<bool> {
        let sql = format!(
            "INSERT INTO oidc_clients ({CLIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        let done = on_pool!(&self.pool, p => sqlx::query(&sql)
            .bind(&row.client_id)
            .bind(&row.name)
            .bind(&row.secret_hash)
            .bind(&row.redirect_uris)
            .bind(&row.post_logout_redirect_uris)
            .bind(row.public)
            .bind(&row.consent)
            .bind(&row.allow)
            .bind(row.second_factor)
            .bind(&row.signing_alg)
            .bind(row.created_at)
            .execute(p)
            .await
            .map(|_| ()));
        match done {
            Ok(()) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Replaces a confidential application's secret; `false` when there is no such one.
    pub async fn set_oidc_client_secret(&self, client_id: &str, secret_hash: &str) -> StoreResult<bool> {
        let done = on_pool!(&self.pool, p => sqlx::query(
            "UPDATE oidc_clients SET secret_hash = $1 WHERE client_id = $2 AND NOT public",
        )
        .bind(secret_hash)
        .bind(client_id)
        .execute(p)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(done == 1)
    }

    /// Removes an application with its consents and grants (and so its tokens), in one
    /// transaction; `false` when there was no such one.
    pub async fn remove_oidc_client(&self, client_id: &str) -> StoreResult<bool> {
        let removed = on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let removed = sqlx::query("DELETE FROM oidc_clients WHERE client_id = $1")
                .bind(client_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM oidc_consents WHERE client_id = $1").bind(client_id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM oidc_grants WHERE client_id = $1").bind(client_id).execute(&mut *tx).await?;
            tx.commit().await?;
            removed == 1
        });
        self.revoked(Revoked::Grants).await;
        Ok(removed)
    }

    /// The scopes a user let an application see, if they did.
    pub async fn consent(&self, user_id: i64, client_id: &str) -> StoreResult<Option<String>> {
        on_pool!(&self.pool, p => sqlx::query_scalar(
            "SELECT scopes FROM oidc_consents WHERE user_id = $1 AND client_id = $2",
        )
        .bind(user_id)
        .bind(client_id)
        .fetch_optional(p)
        .await)
    }

    /// Records (or widens) a consent.
    pub async fn give_consent(
        &self,
        user_id: i64,
        client_id: &str,
        scopes: &str,
        now: i64,
    ) -> StoreResult<()> {
        on_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO oidc_consents (user_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(scopes)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ()))
    }

    /// A user's consents, by application.
    pub async fn consents_of(&self, user_id: i64) -> StoreResult<Vec<ConsentRow>> {
        on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT client_id, scopes, granted_at FROM oidc_consents WHERE user_id = $1 ORDER BY client_id",
        )
        .bind(user_id)
        .fetch_all(p)
        .await)
    }

    /// Forgets a consent and revokes the user's grants to that application, in one
    /// transaction; whether there was anything to revoke.
    pub async fn revoke_consent(&self, user_id: i64, client_id: &str, now: i64) -> StoreResult<bool> {
        let done = on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let forgotten = sqlx::query("DELETE FROM oidc_consents WHERE user_id = $1 AND client_id = $2")
                .bind(user_id)
                .bind(client_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let revoked = sqlx::query(
                "UPDATE oidc_grants SET revoked_at = $1 WHERE user_id = $2 AND client_id = $3 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(user_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            forgotten + revoked > 0
        });
        self.revoked(Revoked::Grants).await;
        Ok(done)
    }

    /// Stores a new grant with its code.
    pub async fn create_grant(&self, grant: &GrantRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO oidc_grants ({GRANT_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        );
        on_pool!(&self.pool, p => sqlx::query(&sql)
            .bind(&grant.id)
            .bind(&grant.client_id)
            .bind(grant.user_id)
            .bind(&grant.session_id)
            .bind(&grant.scopes)
            .bind(&grant.nonce)
            .bind(grant.auth_time)
            .bind(&grant.methods)
            .bind(grant.aal)
            .bind(&grant.code_hash)
            .bind(grant.code_expires_at)
            .bind(grant.code_used_at)
            .bind(&grant.redirect_uri)
            .bind(&grant.code_challenge)
            .bind(grant.offline)
            .bind(grant.created_at)
            .bind(grant.revoked_at)
            .execute(p)
            .await
            .map(|_| ()))
    }

    /// The grant a code belongs to (used or not).
    pub async fn grant_by_code(&self, code_hash: &str) -> StoreResult<Option<GrantRow>> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM oidc_grants WHERE code_hash = $1");
        on_pool!(&self.pool, p => sqlx::query_as(&sql).bind(code_hash).fetch_optional(p).await)
    }

    pub async fn grant(&self, id: &str) -> StoreResult<Option<GrantRow>> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM oidc_grants WHERE id = $1");
        on_pool!(&self.pool, p => sqlx::query_as(&sql).bind(id).fetch_optional(p).await)
    }

    /// Takes a grant's code once, while it is live, and stores the refresh token it issues
    /// (if any) in the same transaction.
    pub async fn take_code(
        &self,
        grant_id: &str,
        refresh: Option<(&str, i64)>,
        now: i64,
    ) -> StoreResult<CodeTaken> {
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let taken = sqlx::query(
                "UPDATE oidc_grants SET code_used_at = $1
                 WHERE id = $2 AND code_used_at IS NULL AND code_expires_at >= $1 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(grant_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if taken != 1 {
                return Ok(CodeTaken::Spent);
            }
            if let Some((hash, expires_at)) = refresh {
                sqlx::query(
                    "INSERT INTO oidc_refresh_tokens (token_hash, grant_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(hash)
                .bind(grant_id)
                .bind(now)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(CodeTaken::Taken)
        })
    }

    /// A grant and its user, read at most once per `session.cache_ttl` seconds (what every
    /// access token's check needs); every revocation through the store forgets it.
    pub async fn grant_with_user(&self, id: &str, now: i64) -> StoreResult<Option<(GrantRow, User)>> {
        if let Some(found) = self.sessions.get_grant(id, now) {
            return Ok(found);
        }
        let ticket = self.sessions.begin_read();
        let found = match self.grant(id).await? {
            Some(grant) => self.user_by_id(grant.user_id).await?.map(|user| (grant, user)),
            None => None,
        };
        self.sessions.put_grant(ticket, id, &found, now);
        Ok(found)
    }

    /// Revokes one grant; whether it was live.
    pub async fn revoke_grant(&self, id: &str, now: i64) -> StoreResult<bool> {
        let done = on_pool!(&self.pool, p => sqlx::query(
            "UPDATE oidc_grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(p)
        .await
        .map(|done| done.rows_affected()))?;
        self.revoked(Revoked::Grants).await;
        Ok(done == 1)
    }

    /// Revokes every grant a portal session made, `offline_access` ones too (RP-initiated
    /// logout); how many.
    pub async fn revoke_grants_of_session(&self, session_id: &str, now: i64) -> StoreResult<u64> {
        let revoked = on_pool!(&self.pool, p => sqlx::query(
            "UPDATE oidc_grants SET revoked_at = $1 WHERE session_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(session_id)
        .execute(p)
        .await
        .map(|done| done.rows_affected()))?;
        self.revoked(Revoked::Grants).await;
        Ok(revoked)
    }

    /// Uses a refresh token of `client_id` once: when it is live, marks it used and stores
    /// `next` in its place, in one transaction; when it was used before, revokes its grant.
    /// Another client's token is `Unknown`, and left as it was.
    pub async fn rotate_refresh(
        &self,
        token_hash: &str,
        client_id: &str,
        next: (&str, i64),
        now: i64,
    ) -> StoreResult<Rotation> {
        let rotation = self.rotate_refresh_once(token_hash, client_id, next, now).await?;
        if matches!(rotation, Rotation::Replayed(_)) {
            self.revoked(Revoked::Grants).await;
        }
        Ok(rotation)
    }

    /// The write comes first: a SQLite transaction that reads and then writes can be refused
    /// at once (its snapshot went stale under another writer), while one that starts by
    /// writing waits its turn for the lock.
    async fn rotate_refresh_once(
        &self,
        token_hash: &str,
        client_id: &str,
        next: (&str, i64),
        now: i64,
    ) -> StoreResult<Rotation> {
        let sql = refresh_joined_sql();
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let claimed = sqlx::query(
                "UPDATE oidc_refresh_tokens SET used_at = $1
                 WHERE token_hash = $2 AND used_at IS NULL AND expires_at >= $1 AND EXISTS (
                     SELECT 1 FROM oidc_grants g
                     WHERE g.id = oidc_refresh_tokens.grant_id AND g.client_id = $3 AND g.revoked_at IS NULL)",
            )
            .bind(now)
            .bind(token_hash)
            .bind(client_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let found: Option<RefreshJoined> = sqlx::query_as(&sql).bind(token_hash).fetch_optional(&mut *tx).await?;
            let Some(found) = found else { return Ok(Rotation::Unknown) };
            let grant = found.grant;
            if claimed == 1 {
                sqlx::query(
                    "INSERT INTO oidc_refresh_tokens (token_hash, grant_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(next.0)
                .bind(&grant.id)
                .bind(now)
                .bind(next.1)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok(Rotation::Rotated(grant));
            }
            // Not claimed: another client's, a revoked grant's, expired, or used before.
            if grant.revoked_at.is_some() || grant.client_id != client_id || found.r_used_at.is_none() {
                return Ok(Rotation::Unknown);
            }
            sqlx::query("UPDATE oidc_grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(&grant.id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Rotation::Replayed(grant))
        })
    }

    /// The grant a refresh token belongs to, used or not (for introspection and revocation).
    pub async fn grant_by_refresh(&self, token_hash: &str) -> StoreResult<Option<(GrantRow, i64, bool)>> {
        let sql = refresh_joined_sql();
        let found: Option<RefreshJoined> =
            on_pool!(&self.pool, p => sqlx::query_as(&sql).bind(token_hash).fetch_optional(p).await)?;
        Ok(found.map(|f| (f.grant, f.r_expires_at, f.r_used_at.is_some())))
    }

    /// Deletes grants nothing can use any more: created before `before` with no refresh
    /// token live at `now` (their codes and access tokens are long expired), and refresh
    /// tokens expired before `before`.
    pub async fn sweep_grants(&self, before: i64, now: i64) -> StoreResult<u64> {
        on_pool!(&self.pool, p => {
            let tokens = sqlx::query("DELETE FROM oidc_refresh_tokens WHERE expires_at < $1 OR used_at < $1")
                .bind(before)
                .execute(p)
                .await?
                .rows_affected();
            let grants = sqlx::query(
                "DELETE FROM oidc_grants WHERE created_at < $1 AND (revoked_at IS NOT NULL OR NOT EXISTS (
                     SELECT 1 FROM oidc_refresh_tokens r WHERE r.grant_id = oidc_grants.id AND r.used_at IS NULL
                     AND r.expires_at >= $2))",
            )
            .bind(before)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected();
            Ok(tokens + grants)
        })
    }
}

/// A refresh token's use and expiry, and its grant.
fn refresh_joined_sql() -> String {
    let grant: Vec<String> = GRANT_COLUMNS.split(", ").map(|c| format!("g.{c}")).collect();
    format!(
        "SELECT r.used_at AS r_used_at, r.expires_at AS r_expires_at, {} FROM oidc_refresh_tokens r
         JOIN oidc_grants g ON g.id = r.grant_id WHERE r.token_hash = $1",
        grant.join(", ")
    )
}

#[derive(sqlx::FromRow)]
struct RefreshJoined {
    r_used_at: Option<i64>,
    r_expires_at: i64,
    #[sqlx(flatten)]
    grant: GrantRow,
}
