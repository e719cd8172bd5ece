//! Following a one-time password link (`/reset/<token>`): the person sets a new password
//! (the policy applies), every session of theirs ends, and they are signed in here.

use serde_json::json;

use crate::auth::admin::{looks_like_token, token_hash};
use crate::auth::audit::EventKind;
use crate::auth::password::{check_policy, normalized, PolicyError, MAX_PASSWORD_BYTES};
use crate::auth::session::{Method, Proof};
use crate::auth::{Auth, AuthError, ClientInfo, FirstStep};
use crate::mail::Notice;
use crate::store::User;

/// A new password as the reset form submits it.
pub struct Reset<'a> {
    pub new: &'a str,
    /// When given, it must equal `new`.
    pub confirm: Option<&'a str>,
}

/// Why a link did not set a password. Each variant says what the person sees.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// "This link does not work: it expired, was used, or was mistyped." (404)
    #[error("the link is unknown, used or expired")]
    BadLink,
    /// "This account is disabled." (403)
    #[error("the account is disabled")]
    Disabled,
    /// "Enter a new password." (the form again)
    #[error("no password")]
    Missing,
    /// "That password is too long." (the form again)
    #[error("too long")]
    TooLong,
    /// "The password and its confirmation differ." (the form again)
    #[error("the confirmation differs")]
    Mismatch,
    /// The policy's own words (the form again).
    #[error("{0}")]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Failed(#[from] AuthError),
}

impl Auth {
    /// Who a link is for, while it works (for showing its form).
    pub async fn reset_link_user(&self, token: &str) -> Result<Option<User>, AuthError> {
        if !looks_like_token(token) {
            return Ok(None);
        }
        Ok(self.store.reset_link_user(&token_hash(token), self.now()).await?)
    }

    /// Follows a link: checks the new password, then (in one transaction) uses the link up,
    /// sets the password and ends every session of the user; then signs them in.
    pub async fn reset_password(
        &self,
        token: &str,
        reset: Reset<'_>,
        client: &ClientInfo,
    ) -> Result<FirstStep, ResetError> {
        let user = self.reset_link_user(token).await?.ok_or(ResetError::BadLink)?;
        if user.disabled {
            return Err(ResetError::Disabled);
        }
        if reset.new.is_empty() {
            return Err(ResetError::Missing);
        }
        if reset.new.len() > MAX_PASSWORD_BYTES || reset.confirm.is_some_and(|c| c.len() > MAX_PASSWORD_BYTES)
        {
            return Err(ResetError::TooLong);
        }
        if reset.confirm.is_some_and(|c| normalized(c) != normalized(reset.new)) {
            return Err(ResetError::Mismatch);
        }
        check_policy(reset.new, &user.username)?;
        let hash = self.hash(reset.new).await?;
        let now = self.now();
        // Used at the same moment elsewhere, or expired while hashing: nothing changes.
        let notice = self.notice_for(&user, Notice::PasswordChanged, Some(client), "").await;
        let mail = notice.as_ref().map(|n| n.for_store(Some(user.id), now));
        let Some(user_id) = self
            .store
            .redeem_reset_link(&token_hash(token), &hash, now, mail.as_ref())
            .await
            .map_err(AuthError::from)?
        else {
            return Err(ResetError::BadLink);
        };
        self.mail_queued();
        log::info!("user {user_id} set a password with a one-time link; every session ended");
        let detail = json!({ "sessions_ended": true });
        self.user_did(user_id, EventKind::ResetLinkUsed, Some(client), detail).await;
        // A second factor still stands: the link replaces the password, not the app.
        Ok(self.after_first_step(user, Proof::first(Method::Password), false, client, now).await?)
    }
}
