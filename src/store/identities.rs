//! The `identities` table: (provider, subject) pairs linked to users. Rule-bearing writes
//! (link, unlink) run in one write transaction, so two requests cannot both pass a rule.

use serde::Serialize;

use super::users::USER_COLUMNS;
use super::{
    email_key, is_unique_violation, ConnDialect, CreateUserError, PoolDialect, Store, StoreResult, User,
    Username,
};

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

/// What an unlink did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlinked {
    Done,
    /// Nothing from that provider was linked.
    NotLinked,
    /// It is the user's last way to sign in (no password, no other identity): kept.
    LastWayIn,
}

/// Inserts an identity row inside a caller's transaction.
macro_rules! insert_identity {
    ($tx:expr, $user_id:expr, $provider:expr, $subject:expr, $email:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO identities (provider, subject, user_id, email, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind($provider)
        .bind($subject)
        .bind($user_id)
        .bind($email)
        .bind($now)
        .execute($tx)
        .await
        .map(|_| ())
    };
}

impl Store {
    /// The user a provider identity belongs to.
    pub async fn user_by_identity(&self, provider: &str, subject: &str) -> StoreResult<Option<User>> {
        let columns = USER_COLUMNS.replace(", ", ", u.");
        let sql = format!(
            "SELECT u.{columns} FROM users u JOIN identities i ON i.user_id = u.id
             WHERE i.provider = $1 AND i.subject = $2"
        );
        on_pool!(&self.pool, p => sqlx::query_as(&sql).bind(provider).bind(subject).fetch_optional(p).await)
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
        let username = Username::parse(&self.free_username(hint).await?)?;
        let sql = format!(
            "INSERT INTO users (username, username_key, email, email_key, email_verified, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {USER_COLUMNS}"
        );
        on_pool!(&self.pool, p => {
            let mut tx = p.begin_write().await?;
            let user: User = sqlx::query_as(&sql)
                .bind(username.display())
                .bind(username.key())
                .bind(email)
                .bind(email.map(email_key))
                // A provider's address is kept only when it says it verified it (or the
                // configuration trusts it).
                .bind(email.is_some())
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| if is_unique_violation(&e) { CreateUserError::Taken } else { e.into() })?;
            insert_identity!(&mut *tx, user.id, provider, subject, email, now)?;
            tx.commit().await?;
            Ok(user)
        })
    }

    async fn free_username(&self, hint: &str) -> StoreResult<String> {
        for n in 1..=100 {
            let candidate = if n == 1 { hint.to_owned() } else { format!("{hint}{n}") };
            let Ok(username) = Username::parse(&candidate) else { break };
            let taken: Option<i64> = on_pool!(&self.pool, p => {
                sqlx::query_scalar("SELECT id FROM users WHERE username_key = $1")
                    .bind(username.key())
                    .fetch_optional(p)
                    .await?
            });
            if taken.is_none() {
                return Ok(candidate);
            }
        }
        let suffix: u32 = rand::random();
        Ok(format!("user-{suffix:08x}"))
    }

    /// Links an identity to a user; an identity belongs to one user only. The ownership
    /// check and the insert are one transaction.
    pub async fn link_identity(
        &self,
        user_id: i64,
        provider: &str,
        subject: &str,
        email: Option<&str>,
        now: i64,
    ) -> Result<(), LinkError> {
        on_pool!(&self.pool, p => {
            let mut tx = p.begin_write().await?;
            let owner: Option<i64> =
                sqlx::query_scalar("SELECT user_id FROM identities WHERE provider = $1 AND subject = $2")
                    .bind(provider)
                    .bind(subject)
                    .fetch_optional(&mut *tx)
                    .await?;
            match owner {
                Some(owner) if owner == user_id => return Ok(()),
                Some(_) => return Err(LinkError::TakenByAnother),
                None => {}
            }
            insert_identity!(&mut *tx, user_id, provider, subject, email, now).map_err(|e| {
                if is_unique_violation(&e) {
                    LinkError::TakenByAnother
                } else {
                    e.into()
                }
            })?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn identities(&self, user_id: i64) -> StoreResult<Vec<LinkedIdentity>> {
        on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT provider, subject, email, created_at FROM identities WHERE user_id = $1 ORDER BY provider",
        )
        .bind(user_id)
        .fetch_all(p)
        .await)
    }

    /// Removes the user's identities from `provider`, unless that would leave them no way
    /// to sign in (no password and no other identity). Rule and delete are one transaction.
    pub async fn unlink_identity(&self, user_id: i64, provider: &str) -> StoreResult<Unlinked> {
        on_pool!(&self.pool, p => {
            let mut tx = p.begin_write().await?;
            tx.lock_user(user_id).await?;
            // COUNT, not SUM: a bigint on both backends.
            let (this, others): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(CASE WHEN provider = $2 THEN 1 END), COUNT(CASE WHEN provider <> $2 THEN 1 END)
                 FROM identities WHERE user_id = $1",
            )
            .bind(user_id)
            .bind(provider)
            .fetch_one(&mut *tx)
            .await?;
            if this == 0 {
                return Ok(Unlinked::NotLinked);
            }
            let has_password: bool =
                sqlx::query_scalar("SELECT password_hash IS NOT NULL FROM users WHERE id = $1")
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .unwrap_or(false);
            if others == 0 && !has_password {
                return Ok(Unlinked::LastWayIn);
            }
            sqlx::query("DELETE FROM identities WHERE user_id = $1 AND provider = $2")
                .bind(user_id)
                .bind(provider)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Unlinked::Done)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{temp_store, NewUser};

    #[tokio::test]
    async fn concurrent_unlinks_never_leave_a_user_without_a_way_in() {
        let (_dir, store) = temp_store().await;
        let new = NewUser { username: "dana", email: None, password_hash: None, is_admin: false };
        let user = store.create_user(new, 1).await.unwrap();
        store.link_identity(user.id, "google", "g-1", None, 1).await.unwrap();
        store.link_identity(user.id, "github", "h-1", None, 1).await.unwrap();
        for _ in 0..20 {
            let (a, b) = tokio::join!(
                store.unlink_identity(user.id, "google"),
                store.unlink_identity(user.id, "github")
            );
            let outcomes = [a.unwrap(), b.unwrap()];
            assert!(outcomes.contains(&Unlinked::LastWayIn), "one of the two must be refused: {outcomes:?}");
            assert_eq!(store.identities(user.id).await.unwrap().len(), 1);
            let gone = if outcomes[0] == Unlinked::Done { "google" } else { "github" };
            let subject = if gone == "google" { "g-1" } else { "h-1" };
            store.link_identity(user.id, gone, subject, None, 1).await.unwrap();
        }
    }

    #[tokio::test]
    async fn an_identity_belongs_to_one_user() {
        let (_dir, store) = temp_store().await;
        let new = |name| NewUser { username: name, email: None, password_hash: None, is_admin: false };
        let (a, b) =
            (store.create_user(new("a"), 1).await.unwrap(), store.create_user(new("b"), 1).await.unwrap());
        store.link_identity(a.id, "github", "7", None, 1).await.unwrap();
        store.link_identity(a.id, "github", "7", None, 1).await.expect("linking again is a no-op");
        assert!(matches!(
            store.link_identity(b.id, "github", "7", None, 1).await,
            Err(LinkError::TakenByAnother)
        ));
    }
}
