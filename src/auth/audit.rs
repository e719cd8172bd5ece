//! The audit log's vocabulary and the one way events are written: what happened, by whom,
//! to whom, from where, and a few plain facts. Never a password, cookie value, token, code
//! or client secret (a test reads the table back for them).

use serde_json::{json, Value};

use crate::auth::{Auth, ClientInfo};
use crate::store::{NewEvent, MAX_USERNAME_CHARS};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    SignInSucceeded,
    SignInFailed,
    SignInThrottled,
    /// A provider's policy (domains, organisations) or a missing verified email refused it.
    ProviderRefused,
    SignOut,
    /// A session ended by someone other than its device (another device, a password
    /// change, an administrator).
    SessionEnded,
    PasswordChanged,
    IdentityLinked,
    IdentityUnlinked,
    UserCreated,
    UserDisabled,
    UserEnabled,
    UserDeleted,
    AdminGranted,
    AdminRevoked,
    ResetLinkCreated,
    ResetLinkUsed,
    /// An authenticator app, a passkey or recovery codes were added (`factor` says which).
    SecondFactorAdded,
    /// One was removed by its owner.
    SecondFactorRemoved,
    /// A wrong, replayed or unreadable code at a second step.
    SecondFactorFailed,
    RecoveryCodeUsed,
    /// An administrator removed every second factor of a user.
    SecondFactorReset,
    /// Someone let an application (OpenID client) see what it asked for.
    ConsentGiven,
    /// Someone disconnected an application (its tokens end).
    ConsentRevoked,
    /// An application exchanged a code for tokens.
    TokenIssued,
    /// A code or refresh token was presented a second time: its grant is revoked.
    TokenReplayed,
    ClientAdded,
    ClientRemoved,
    ClientSecretRotated,
    /// A provider's session ended portal sessions (back-channel logout), or signing out of
    /// the portal went on to end the provider's session (`detail.by` says which).
    UpstreamLogout,
    /// Someone set, changed or removed their email address (`detail.by`: the user).
    EmailChanged,
    /// A link proved an address.
    EmailVerified,
    /// A message left the outbox (`detail.kind` says which: reset, verify, …).
    MailSent,
    /// A message was given up on: the server refused it, or it could not be sent for a day.
    MailFailed,
}

impl EventKind {
    /// The stable name stored in the table.
    pub fn slug(self) -> &'static str {
        match self {
            EventKind::SignInSucceeded => "sign_in_succeeded",
            EventKind::SignInFailed => "sign_in_failed",
            EventKind::SignInThrottled => "sign_in_throttled",
            EventKind::ProviderRefused => "provider_refused",
            EventKind::SignOut => "sign_out",
            EventKind::SessionEnded => "session_ended",
            EventKind::PasswordChanged => "password_changed",
            EventKind::IdentityLinked => "identity_linked",
            EventKind::IdentityUnlinked => "identity_unlinked",
            EventKind::UserCreated => "user_created",
            EventKind::UserDisabled => "user_disabled",
            EventKind::UserEnabled => "user_enabled",
            EventKind::UserDeleted => "user_deleted",
            EventKind::AdminGranted => "admin_granted",
            EventKind::AdminRevoked => "admin_revoked",
            EventKind::ResetLinkCreated => "reset_link_created",
            EventKind::ResetLinkUsed => "reset_link_used",
            EventKind::SecondFactorAdded => "second_factor_added",
            EventKind::SecondFactorRemoved => "second_factor_removed",
            EventKind::SecondFactorFailed => "second_factor_failed",
            EventKind::RecoveryCodeUsed => "recovery_code_used",
            EventKind::SecondFactorReset => "second_factor_reset",
            EventKind::ConsentGiven => "consent_given",
            EventKind::ConsentRevoked => "consent_revoked",
            EventKind::TokenIssued => "token_issued",
            EventKind::TokenReplayed => "token_replayed",
            EventKind::ClientAdded => "client_added",
            EventKind::ClientRemoved => "client_removed",
            EventKind::ClientSecretRotated => "client_secret_rotated",
            EventKind::UpstreamLogout => "upstream_logout",
            EventKind::EmailChanged => "email_changed",
            EventKind::EmailVerified => "email_verified",
            EventKind::MailSent => "mail_sent",
            EventKind::MailFailed => "mail_failed",
        }
    }

    /// How a person reads it: "sign-in failed".
    pub fn words(self) -> &'static str {
        match self {
            EventKind::SignInSucceeded => "sign-in succeeded",
            EventKind::SignInFailed => "sign-in failed",
            EventKind::SignInThrottled => "sign-in throttled",
            EventKind::ProviderRefused => "provider sign-in refused",
            EventKind::SignOut => "sign-out",
            EventKind::SessionEnded => "session ended",
            EventKind::PasswordChanged => "password changed",
            EventKind::IdentityLinked => "identity linked",
            EventKind::IdentityUnlinked => "identity unlinked",
            EventKind::UserCreated => "user created",
            EventKind::UserDisabled => "user disabled",
            EventKind::UserEnabled => "user enabled",
            EventKind::UserDeleted => "user deleted",
            EventKind::AdminGranted => "made admin",
            EventKind::AdminRevoked => "admin removed",
            EventKind::ResetLinkCreated => "password reset link created",
            EventKind::ResetLinkUsed => "password reset link used",
            EventKind::SecondFactorAdded => "second factor added",
            EventKind::SecondFactorRemoved => "second factor removed",
            EventKind::SecondFactorFailed => "second factor failed",
            EventKind::RecoveryCodeUsed => "recovery code used",
            EventKind::SecondFactorReset => "second factor reset",
            EventKind::ConsentGiven => "application allowed",
            EventKind::ConsentRevoked => "application disconnected",
            EventKind::TokenIssued => "tokens issued to an application",
            EventKind::TokenReplayed => "token replay detected",
            EventKind::ClientAdded => "application added",
            EventKind::ClientRemoved => "application removed",
            EventKind::ClientSecretRotated => "application secret rotated",
            EventKind::UpstreamLogout => "signed out at the provider",
            EventKind::EmailChanged => "email address changed",
            EventKind::EmailVerified => "email address verified",
            EventKind::MailSent => "mail sent",
            EventKind::MailFailed => "mail not delivered",
        }
    }

    pub const SIGN_INS: [EventKind; 3] =
        [EventKind::SignInSucceeded, EventKind::SignInFailed, EventKind::SignInThrottled];

    pub fn from_slug(slug: &str) -> Option<EventKind> {
        ALL_KINDS.into_iter().find(|k| k.slug() == slug)
    }
}

/// Every kind, for reading slugs back and for the console's filter.
pub const ALL_KINDS: [EventKind; 34] = [
    EventKind::SignInSucceeded,
    EventKind::SignInFailed,
    EventKind::SignInThrottled,
    EventKind::ProviderRefused,
    EventKind::SignOut,
    EventKind::SessionEnded,
    EventKind::PasswordChanged,
    EventKind::IdentityLinked,
    EventKind::IdentityUnlinked,
    EventKind::UserCreated,
    EventKind::UserDisabled,
    EventKind::UserEnabled,
    EventKind::UserDeleted,
    EventKind::AdminGranted,
    EventKind::AdminRevoked,
    EventKind::ResetLinkCreated,
    EventKind::ResetLinkUsed,
    EventKind::SecondFactorAdded,
    EventKind::SecondFactorRemoved,
    EventKind::SecondFactorFailed,
    EventKind::RecoveryCodeUsed,
    EventKind::SecondFactorReset,
    EventKind::ConsentGiven,
    EventKind::ConsentRevoked,
    EventKind::TokenIssued,
    EventKind::TokenReplayed,
    EventKind::ClientAdded,
    EventKind::ClientRemoved,
    EventKind::ClientSecretRotated,
    EventKind::UpstreamLogout,
    EventKind::EmailChanged,
    EventKind::EmailVerified,
    EventKind::MailSent,
    EventKind::MailFailed,
];

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User(i64),
    /// The `portal users` command line.
    Cli,
    /// The portal itself (the sweep, expiry).
    System,
    /// Nobody signed in yet (a sign-in attempt).
    Anonymous,
}

impl Actor {
    /// Reads a stored actor back.
    pub fn parse(text: &str) -> Option<Actor> {
        match text {
            "cli" => Some(Actor::Cli),
            "system" => Some(Actor::System),
            "anonymous" => Some(Actor::Anonymous),
            id => id.parse().ok().map(Actor::User),
        }
    }

    pub fn text(self) -> String {
        match self {
            Actor::User(id) => id.to_string(),
            Actor::Cli => "cli".into(),
            Actor::System => "system".into(),
            Actor::Anonymous => "anonymous".into(),
        }
    }
}

/// An event, ready to be written.
pub struct Event<'a> {
    pub kind: EventKind,
    pub actor: Actor,
    pub subject: Option<i64>,
    /// The subject's name when the store can no longer tell it (a deleted user).
    pub subject_name: Option<&'a str>,
    pub client: Option<&'a ClientInfo>,
    pub detail: Value,
}

/// What was typed as a username, as the log may keep it: shortened, without control
/// characters.
pub fn typed_name(raw: &str) -> Value {
    let shown: String = raw.chars().filter(|c| !c.is_control()).take(MAX_USERNAME_CHARS).collect();
    json!(shown)
}

impl Auth {
    /// Records something a signed-in user did to their own account.
    pub async fn user_did(&self, user_id: i64, kind: EventKind, client: Option<&ClientInfo>, detail: Value) {
        self.record(Event {
            kind,
            actor: Actor::User(user_id),
            subject: Some(user_id),
            subject_name: None,
            client,
            detail,
        })
        .await;
    }

    /// Records a sign-in attempt that got nobody in (the subject, when the account is known).
    pub async fn attempt_failed(
        &self,
        kind: EventKind,
        subject: Option<i64>,
        client: &ClientInfo,
        detail: Value,
    ) {
        self.record(Event {
            kind,
            actor: Actor::Anonymous,
            subject,
            subject_name: None,
            client: Some(client),
            detail,
        })
        .await;
    }

    /// Writes an event. A failure to write is logged, and does not fail what happened.
    pub async fn record(&self, event: Event<'_>) {
        write(&self.store, self.now(), event).await;
    }
}

/// Writes an event at `at` (for what runs apart from the service: the outbox's worker).
pub(crate) async fn write(store: &crate::store::Store, at: i64, event: Event<'_>) {
    let ip = event.client.and_then(|c| c.ip).map(|ip| ip.to_string());
    let client = event.client.map(|c| c.device.as_str());
    let actor = event.actor.text();
    let detail = event.detail.to_string();
    let new = NewEvent {
        at,
        kind: event.kind.slug(),
        actor: &actor,
        subject: event.subject,
        subject_name: event.subject_name,
        ip: ip.as_deref(),
        client,
        detail: &detail,
    };
    if let Err(e) = store.record_event(new).await {
        log::error!("could not record a {} event: {e}", event.kind.words());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_slug() {
        for kind in ALL_KINDS {
            assert_eq!(EventKind::from_slug(kind.slug()), Some(kind));
        }
        assert_eq!(EventKind::from_slug("nonsense"), None);
    }
}
