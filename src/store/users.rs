//! The `users` table.

use serde::Serialize;

use super::notify::Revoked;
use super::outbox::NewMail;
use super::resets::NewResetLink;
use super::{email_key, is_unique_violation, ConnDialect, Store, StoreResult, Username, UsernameError};

/// A user as the rest of the portal sees one (no password hash).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    /// The address was proved (a link sent to it was followed, a provider said so, or an
    /// administrator set it while the portal sends no mail).
    pub email_verified: bool,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

impl User {
    /// The email address when it is verified: what other applications are told.
    pub fn verified_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_verified)
    }
}

/// A user together with what a password check needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credentials {
    #[sqlx(flatten)]
    pub user: User,
    pub password_hash: Option<String>,
}

/// What [`Store::create_user_mailing`] makes besides the user.
pub enum AfterCreate<'a> {
    /// A verification link (`/verify/<token>`) for the new address.
    Verify { token_hash: &'a str, expires_at: i64 },
    /// A set-password link (`/reset/<token>`) mailed to the new address: an invitation.
    Invite { token_hash: &'a str, expires_at: i64, created_by: &'a str },
}

/// Inserts a user on `$executor` and returns them.
macro_rules! insert_user {
    ($executor:expr, $username:expr, $new:expr, $verified:expr, $now:expr) => {{
        let sql = format!(
            "INSERT INTO users (username, username_key, email, email_key, email_verified, password_hash, is_admin, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {USER_COLUMNS}"
        );
        sqlx::query_as::<_, User>(&sql)
            .bind($username.display())
            .bind($username.key())
            .bind($new.email)
            .bind($new.email.map(email_key))
            .bind($verified)
            .bind($new.password_hash)
            .bind($new.is_admin)
            .bind($now)
            .fetch_one($executor)
            .await
    }};
}

/// Inserts a verification link on `$executor`.
macro_rules! insert_email_link {
    ($executor:expr, $token_hash:expr, $user_id:expr, $email:expr, $now:expr, $expires_at:expr) => {
        sqlx::query(
            "INSERT INTO email_links (token_hash, user_id, email, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind($token_hash)
        .bind($user_id)
        .bind($email)
        .bind($now)
        .bind($expires_at)
        .execute($executor)
        .await
        .map(|_| ())
    };
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

/// What a guarded change to a user came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarded {
    Done,
    NoSuchUser,
    /// It would have left no enabled administrator.
    LastAdmin,
}

/// True for the row being changed unless it is the last enabled administrator. The
/// condition is part of the one statement that makes the change, and the statement runs
/// under [`ConnDialect::lock_admins`], so two concurrent changes cannot both pass it (SQLite
/// runs writes one at a time; PostgreSQL takes an advisory lock first).
const KEEPS_AN_ADMIN: &str = "(NOT is_admin OR disabled OR EXISTS (
        SELECT 1 FROM users other WHERE other.is_admin AND NOT other.disabled AND other.id <> users.id))";

pub(super) const USER_COLUMNS: &str =
    "id, username, email, email_verified, is_admin, disabled, created_at, last_login_at";

impl Store {
    pub async fn count_users(&self) -> StoreResult<i64> {
        on_pool!(&self.pool, p => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(p).await)
    }

    pub async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        on_pool!(&self.pool, p => sqlx::query_as(&sql).bind(id).fetch_optional(p).await)
    }

    /// The users whose email is `email` (compared as stored keys are: trimmed, lowercase),
    /// at most `limit`, oldest first.
    pub async fn users_with_email(&self, email: &str, limit: i64) -> StoreResult<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email_key = $1 ORDER BY id LIMIT $2");
        on_pool!(&self.pool, p => sqlx::query_as(&sql).bind(email_key(email)).bind(limit).fetch_all(p).await)
    }

    /// Looks a user up by name; a name that cannot be valid finds nobody.
    pub async fn credentials(&self, username: &str) -> StoreResult<Option<Credentials>> {
        let Ok(username) = Username::lookup(username) else {
            return Ok(None);
        };
        let sql = format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE username_key = $1");
        on_pool!(&self.pool, p => sqlx::query_as(&sql).bind(username.key()).fetch_optional(p).await)
    }

    pub async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        Ok(self.credentials(username).await?.map(|c| c.user))
    }

    pub async fn list_users(&self) -> StoreResult<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id");
        on_pool!(&self.pool, p => sqlx::query_as(&sql).fetch_all(p).await)
    }

    /// Creates a user; an email given here counts as verified (an administrator or the
    /// command line set it, and no mail can prove it): [`Store::create_user_mailing`] is the
    /// way with mail.
    pub async fn create_user(&self, new: NewUser<'_>, now: i64) -> Result<User, CreateUserError> {
        let username = Username::parse(new.username)?;
        let result = on_pool!(&self.pool, p => insert_user!(p, username, new, new.email.is_some(), now));
        match result {
            Ok(user) => Ok(user),
            Err(e) if is_unique_violation(&e) => Err(CreateUserError::Taken),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a user whose email is not verified yet and, in the same transaction, the link
    /// `after` says and the message carrying it (queued for the new user).
    pub async fn create_user_mailing(
        &self,
        new: NewUser<'_>,
        now: i64,
        after: AfterCreate<'_>,
        mail: NewMail<'_>,
    ) -> Result<User, CreateUserError> {
        let username = Username::parse(new.username)?;
        let email = new.email.unwrap_or_default();
        // In a block of its own, so that a unique violation comes out here as a value.
        let result: StoreResult<User> = on_pool!(&self.pool, p => async {
            let mut tx = p.begin().await?;
            let user: User = insert_user!(&mut *tx, username, new, false, now)?;
            match after {
                AfterCreate::Verify { token_hash, expires_at } => {
                    insert_email_link!(&mut *tx, token_hash, user.id, email, now, expires_at)?;
                }
                AfterCreate::Invite { token_hash, expires_at, created_by } => {
                    let link = NewResetLink {
                        token_hash,
                        user_id: user.id,
                        now,
                        expires_at,
                        created_by,
                        sent_to: Some(email),
                    };
                    replace_links!(tx, link)?;
                }
            }
            queue_mail!(&mut *tx, NewMail { user_id: Some(user.id), ..mail })?;
            tx.commit().await?;
            Ok(user)
        }
        .await);
        match result {
            Ok(user) => Ok(user),
            Err(e) if is_unique_violation(&e) => Err(CreateUserError::Taken),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets (or, with `None`, removes) a user's email, `verified` or not, and in the same
    /// transaction: ends the user's earlier verification links, stores `link` (a new one for
    /// this address) and queues `mails`.
    pub async fn change_email(
        &self,
        user_id: i64,
        email: Option<&str>,
        verified: bool,
        link: Option<(&str, i64)>,
        mails: &[NewMail<'_>],
        now: i64,
    ) -> StoreResult<()> {
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE users SET email = $1, email_key = $2, email_verified = $3 WHERE id = $4")
                .bind(email)
                .bind(email.map(email_key))
                .bind(verified)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE email_links SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
                .bind(now)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            if let (Some((token_hash, expires_at)), Some(email)) = (link, email) {
                insert_email_link!(&mut *tx, token_hash, user_id, email, now, expires_at)?;
            }
            for mail in mails {
                queue_mail!(&mut *tx, mail)?;
            }
            tx.commit().await
        })?;
        self.revoked(Revoked::User(user_id)).await;
        Ok(())
    }

    /// Follows a verification link: uses it up and marks the user's address verified, when
    /// it is still the address the link was sent to. The user and the address, or `None`
    /// (nothing changed) for an unknown, used or expired link or a changed address.
    pub async fn verify_email(&self, token_hash: &str, now: i64) -> StoreResult<Option<(i64, String)>> {
        let verified = on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let link: Option<(i64, String)> = sqlx::query_as(
                "UPDATE email_links SET used_at = $1
                 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id, email",
            )
            .bind(now)
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((user_id, email)) = link else { return Ok(None) };
            let done = sqlx::query("UPDATE users SET email_verified = TRUE WHERE id = $1 AND email_key = $2")
                .bind(user_id)
                .bind(email_key(&email))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            (done == 1).then_some((user_id, email))
        });
        if let Some((user_id, _)) = &verified {
            self.revoked(Revoked::User(*user_id)).await;
        }
        Ok(verified)
    }

    /// The security notices the user turned off (comma-separated preferences).
    pub async fn notices_off(&self, user_id: i64) -> StoreResult<String> {
        on_pool!(&self.pool, p => sqlx::query_scalar("SELECT notices_off FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(p)
            .await)
        .map(Option::unwrap_or_default)
    }

    pub async fn set_notices_off(&self, user_id: i64, off: &str) -> StoreResult<()> {
        on_pool!(&self.pool, p => sqlx::query("UPDATE users SET notices_off = $1 WHERE id = $2")
            .bind(off)
            .bind(user_id)
            .execute(p)
            .await
            .map(|_| ()))
    }

    /// Marks the user's address verified when it is `email` (a provider said it verified it).
    /// Whether it changed anything.
    pub async fn mark_email_verified(&self, user_id: i64, email: &str) -> StoreResult<bool> {
        let done = on_pool!(&self.pool, p => sqlx::query(
            "UPDATE users SET email_verified = TRUE WHERE id = $1 AND email_key = $2 AND NOT email_verified",
        )
        .bind(user_id)
        .bind(email_key(email))
        .execute(p)
        .await?
        .rows_affected());
        if done > 0 {
            self.revoked(Revoked::User(user_id)).await;
        }
        Ok(done > 0)
    }

    /// Sets a new password and ends every session the user has, and queues `notice`, in one
    /// transaction.
    pub async fn set_password(
        &self,
        id: i64,
        password_hash: &str,
        now: i64,
        notice: Option<&NewMail<'_>>,
    ) -> StoreResult<()> {
        on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            let ended = set_password_ending_sessions!(tx, id, password_hash, now)?;
            commit_with!(tx, notice)?;
            crate::metrics::get().sessions_ended.inc_by(ended);
        });
        self.revoked(Revoked::User(id)).await;
        Ok(())
    }

    /// Replaces a password hash with another hash of the same password (its NFC form): no
    /// session ends. Only while the stored hash is still `old`, so a password changed in the
    /// meantime stays; whether it was replaced.
    pub async fn renew_password_hash(&self, id: i64, old: &str, new: &str) -> StoreResult<bool> {
        let sql = "UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3";
        let changed = on_pool!(&self.pool, p => {
            sqlx::query(sql).bind(new).bind(id).bind(old).execute(p).await?.rows_affected()
        });
        Ok(changed == 1)
    }

    /// Disables (or re-enables) a user; disabling ends every session they have, in the same
    /// transaction. Disabling the last enabled administrator is refused.
    pub async fn set_disabled(&self, id: i64, disabled: bool, now: i64) -> StoreResult<Guarded> {
        let sql = format!("UPDATE users SET disabled = $1 WHERE id = $2 AND (NOT $1 OR {KEEPS_AN_ADMIN})");
        let changed = on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            if disabled {
                tx.lock_admins().await?;
            }
            let changed = sqlx::query(&sql).bind(disabled).bind(id).execute(&mut *tx).await?.rows_affected();
            if changed > 0 {
                let ended = if disabled {
                    revoke_grants_of!(&mut *tx, id, now)?;
                    end_all_but!(&mut *tx, id, None::<&str>, now)?
                } else {
                    0
                };
                tx.commit().await?;
                crate::metrics::get().sessions_ended.inc_by(ended);
            }
            changed
        });
        if changed == 0 {
            return self.why_unchanged(id).await;
        }
        self.revoked(Revoked::User(id)).await;
        Ok(Guarded::Done)
    }

    /// Makes a user an administrator, or not; removing the last enabled administrator is
    /// refused.
    pub async fn set_admin(&self, id: i64, admin: bool) -> StoreResult<Guarded> {
        let sql = format!("UPDATE users SET is_admin = $1 WHERE id = $2 AND ($1 OR {KEEPS_AN_ADMIN})");
        let changed = on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            if !admin {
                tx.lock_admins().await?;
            }
            let changed = sqlx::query(&sql).bind(admin).bind(id).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            changed
        });
        if changed == 0 {
            return self.why_unchanged(id).await;
        }
        self.revoked(Revoked::User(id)).await;
        Ok(Guarded::Done)
    }

    /// Deletes a user; their identities, sessions and reset links go with them (the
    /// foreign keys cascade), their audit events stay. Deleting the last enabled
    /// administrator is refused.
    pub async fn delete_user(&self, id: i64) -> StoreResult<Guarded> {
        let sql = format!("DELETE FROM users WHERE id = $1 AND {KEEPS_AN_ADMIN}");
        let changed = on_pool!(&self.pool, p => {
            let mut tx = p.begin().await?;
            tx.lock_admins().await?;
            let changed = sqlx::query(&sql).bind(id).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            changed
        });
        if changed == 0 {
            return self.why_unchanged(id).await;
        }
        self.revoked(Revoked::User(id)).await;
        Ok(Guarded::Done)
    }

    async fn why_unchanged(&self, id: i64) -> StoreResult<Guarded> {
        Ok(match self.user_by_id(id).await? {
            None => Guarded::NoSuchUser,
            Some(_) => Guarded::LastAdmin,
        })
    }

    pub async fn record_login(&self, id: i64, now: i64) -> StoreResult<()> {
        on_pool!(&self.pool, p => sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(p)
            .await
            .map(|_| ()))?;
        // Not a revocation: the other instances' cached copies may show the older time.
        self.sessions.forget_user(id);
        Ok(())
    }

    pub async fn has_password(&self, user_id: i64) -> StoreResult<bool> {
        let hash: Option<Option<String>> = on_pool!(&self.pool, p => {
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1").bind(user_id).fetch_optional(p).await?
        });
        Ok(matches!(hash, Some(Some(_))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store;

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
    async fn setting_a_password_or_disabling_ends_every_session() {
        use crate::store::NewSession;
        let (_dir, store) = temp_store().await;
        let new = NewUser { username: "carol", email: None, password_hash: None, is_admin: false };
        let user = store.create_user(new, 1).await.unwrap();
        let session = |id| NewSession {
            id,
            secret_hash: "h",
            user_id: user.id,
            method: "password",
            methods: "pwd",
            aal: 1,
            client: "c",
            ip: None,
            persist: false,
            upstream_sid: None,
            now: 1,
        };
        store.create_session(session("a")).await.unwrap();
        store.create_session(session("b")).await.unwrap();
        store.set_password(user.id, "x", 2, None).await.unwrap();
        assert!(store.sessions_of(user.id).await.unwrap().is_empty());
        store.create_session(session("c")).await.unwrap();
        store.set_disabled(user.id, true, 3).await.unwrap();
        assert!(store.sessions_of(user.id).await.unwrap().is_empty());
        assert!(store.user_by_id(user.id).await.unwrap().unwrap().disabled);
    }
}
