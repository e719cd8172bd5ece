//! Mail: messages rendered from the `email/*.j2` templates (`templates`), sealed for the
//! outbox, and sent over SMTP (`smtp`). When mail is written and sent (the outbox's worker,
//! its audit events) is the auth service's; the outbox table is the store's.

mod smtp;
pub mod templates;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};
use minijinja::Environment;
use serde::{Deserialize, Serialize};

pub use self::smtp::SendError;
use self::smtp::Smtp;
use crate::config::{EmailSettings, InstanceKey, PublicUrl};
use crate::seal::Sealer;
use crate::store::NewMail;

/// A message the portal sends: which one, and what only it says.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Letter {
    /// A one-time link to set a new password, asked for on `/reset`.
    Reset { link: String, minutes: i64 },
    /// A link that proves a new address (`/verify/<token>`).
    Verify { link: String, hours: i64 },
    /// An administrator made an account: a link to set its password.
    Invite { link: String, days: i64, admin: bool },
    /// Something happened to the account that its owner should know of.
    Notice {
        notice: Notice,
        /// When, as pages write it.
        when: String,
        /// The browser and the address it came from (`Firefox on Linux`, `203.0.113.7`).
        device: String,
        ip: String,
        /// What was added or removed ("an authenticator app"), or the new address.
        detail: String,
    },
}

/// The security notices, each a preference on `/account`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// A sign-in from a browser and address not seen in 90 days.
    NewDevice,
    /// The password was changed or reset.
    PasswordChanged,
    FactorAdded,
    FactorRemoved,
    /// Sent to the old address.
    EmailChanged,
}

impl Notice {
    /// The outbox's `kind`.
    pub fn kind(self) -> &'static str {
        match self {
            Notice::NewDevice => "notice_new_device",
            Notice::PasswordChanged => "notice_password",
            Notice::FactorAdded => "notice_factor_added",
            Notice::FactorRemoved => "notice_factor_removed",
            Notice::EmailChanged => "notice_email",
        }
    }

    /// The preference that turns it off.
    pub fn preference(self) -> &'static str {
        match self {
            Notice::NewDevice => "new_device",
            Notice::PasswordChanged => "password",
            Notice::FactorAdded | Notice::FactorRemoved => "factor",
            Notice::EmailChanged => "email",
        }
    }
}

/// The preferences (`users.notices_off` holds those turned off), and how `/account` names them.
pub const NOTICE_PREFERENCES: [(&str, &str); 4] = [
    ("new_device", "A sign-in from a new device or address"),
    ("password", "My password is changed or reset"),
    ("factor", "A second factor or passkey is added or removed"),
    ("email", "My email address is changed (sent to the old one)"),
];

impl Letter {
    /// The template's name (`email/<kind>.txt`, `email/<kind>.html`) and the outbox's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Letter::Reset { .. } => "reset",
            Letter::Verify { .. } => "verify",
            Letter::Invite { .. } => "invite",
            Letter::Notice { notice, .. } => notice.kind(),
        }
    }

    /// The templates' name: `email/<name>.txt`, `email/<name>.html`.
    pub fn template(&self) -> &'static str {
        match self {
            Letter::Notice { .. } => "notice",
            other => other.kind(),
        }
    }

    /// One of each, with representative values (the templates' check at start).
    pub fn samples() -> Vec<Letter> {
        [
            Letter::Reset { link: "https://auth.example.com/reset/TOKEN".into(), minutes: 60 },
            Letter::Verify { link: "https://auth.example.com/verify/TOKEN".into(), hours: 24 },
            Letter::Invite { link: "https://auth.example.com/reset/TOKEN".into(), days: 7, admin: true },
        ]
        .into_iter()
        .chain(
            [
                (Notice::NewDevice, ""),
                (Notice::PasswordChanged, ""),
                (Notice::FactorAdded, "an authenticator app"),
                (Notice::FactorRemoved, "a passkey (Phone)"),
                (Notice::EmailChanged, "new@example.com"),
            ]
            .map(|(notice, detail)| Letter::Notice {
                notice,
                when: "2027-01-15 09:30 UTC".into(),
                device: "Firefox on Linux".into(),
                ip: "203.0.113.7".into(),
                detail: detail.into(),
            }),
        )
        .collect()
    }
}

/// Whom a message goes to: their username (shown as the recipient's name) and address.
pub struct To<'a> {
    pub name: &'a str,
    pub address: &'a str,
}

/// A message made and sealed, ready for the outbox.
#[derive(Debug)]
pub struct Outgoing {
    /// Random: the Message-ID's left part, and the seal's associated data.
    pub message_id: String,
    pub kind: &'static str,
    pub recipient: String,
    pub sealed: String,
}

impl Outgoing {
    /// The outbox row to queue it as.
    pub fn for_store(&self, user_id: Option<i64>, now: i64) -> NewMail<'_> {
        NewMail {
            message_id: &self.message_id,
            kind: self.kind,
            user_id,
            recipient: &self.recipient,
            sealed: &self.sealed,
            now,
        }
    }
}

/// What the seal holds: the message, rendered.
#[derive(Serialize, Deserialize)]
struct Rendered {
    to_name: String,
    to: String,
    subject: String,
    text: String,
    html: String,
}

/// Why a message could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("that is not an address mail can go to")]
    BadAddress,
    #[error("the mail template does not render: {0}")]
    Template(String),
    #[error("the message could not be sealed")]
    Seal,
}

/// Makes, seals, opens and sends the portal's mail (`[email]`).
pub struct Mailer {
    env: Environment<'static>,
    from: Mailbox,
    site_name: String,
    /// `public_url`'s origin: the base of every link.
    base: String,
    /// The right part of Message-IDs: `public_url`'s host.
    host: String,
    sealer: Sealer,
    smtp: Smtp,
    /// Rung when a message is queued, so the worker sends it at once.
    wake: Arc<tokio::sync::Notify>,
}

impl Mailer {
    /// The mailer of `[email]`; its templates read from `template_dir`'s `email/` folder over
    /// the embedded ones, and checked. The error is one line fit to stop startup with.
    pub fn new(
        settings: &EmailSettings,
        public_url: &PublicUrl,
        site_name: &str,
        key: &InstanceKey,
        template_dir: Option<&Path>,
    ) -> Result<Mailer, String> {
        let from: Mailbox = settings.from.parse().map_err(|e| {
            format!("email.from {:?} is not a mailbox (`Name <address>` or an address): {e}", settings.from)
        })?;
        let smtp = Smtp::new(settings.smtp_url.expose(), Duration::from_secs(settings.timeout))?;
        let env = templates::load(template_dir, site_name, public_url.origin())?;
        let sealer = Sealer::new(&key.0).ok_or("could not make the outbox's sealing key")?;
        let host = url::Url::parse(public_url.origin())
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "portal.invalid".into());
        Ok(Mailer {
            env,
            from,
            site_name: site_name.to_owned(),
            base: public_url.origin().to_owned(),
            host,
            sealer,
            smtp,
            wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// `path` (`/reset/…`) as an absolute link.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Renders `letter` for `to` and seals it for the outbox.
    pub fn compose(&self, letter: &Letter, to: &To<'_>) -> Result<Outgoing, ComposeError> {
        if to.address.parse::<Address>().is_err() {
            return Err(ComposeError::BadAddress);
        }
        let (subject, text, html) =
            templates::render(&self.env, letter, to.name, &self.site_name, &self.base)
                .map_err(|e| ComposeError::Template(crate::templates::one_line(&e)))?;
        let rendered =
            Rendered { to_name: to.name.to_owned(), to: to.address.to_owned(), subject, text, html };
        let message_id = random_id();
        let plain = serde_json::to_vec(&rendered).map_err(|_| ComposeError::Seal)?;
        let sealed = self.sealer.seal(message_id.as_bytes(), &plain).ok_or(ComposeError::Seal)?;
        Ok(Outgoing { message_id, kind: letter.kind(), recipient: to.address.to_owned(), sealed })
    }

    /// The message a sealed outbox row holds; a permanent error when it does not open (it was
    /// sealed under another `secret_key`) or no longer makes a message.
    pub fn open(&self, message_id: &str, sealed: &str) -> Result<Message, SendError> {
        let plain = self.sealer.open(message_id.as_bytes(), sealed).ok_or_else(|| {
            SendError::Permanent("the message does not open: it was queued under another secret_key".into())
        })?;
        let rendered: Rendered = serde_json::from_slice(&plain)
            .map_err(|_| SendError::Permanent("the message in the outbox is unreadable".into()))?;
        let address: Address = rendered
            .to
            .parse()
            .map_err(|_| SendError::Permanent("the recipient is not an address mail can go to".into()))?;
        Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(Some(one_line_text(&rendered.to_name)), address))
            .subject(one_line_text(&rendered.subject))
            .message_id(Some(format!("<{message_id}@{}>", self.host)))
            .multipart(MultiPart::alternative_plain_html(rendered.text, rendered.html))
            .map_err(|e| SendError::Permanent(format!("the message could not be built: {e}")))
    }

    /// Sends one message over SMTP.
    pub async fn send(&self, message: &Message) -> Result<(), SendError> {
        self.smtp.send(message).await
    }

    /// Tells the worker something was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits until [`Mailer::wake`] is called or `most` passes.
    pub async fn woken(&self, most: Duration) {
        let _ = tokio::time::timeout(most, self.wake.notified()).await;
    }
}

/// 128 random bits, base64url: a Message-ID's left part.
fn random_id() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// `text` on one line, without control characters: what a header may carry (a name or a
/// subject never starts a header of its own).
fn one_line_text(text: &str) -> String {
    text.split(|c: char| c.is_control()).flat_map(str::split_whitespace).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_loses_its_line_breaks_and_controls() {
        assert_eq!(one_line_text("Reset\r\nBcc: evil@example.com"), "Reset Bcc: evil@example.com");
        assert_eq!(one_line_text("  a\tb\u{0}c  "), "a b c");
        assert_eq!(one_line_text("Ünïcode name"), "Ünïcode name");
    }
}
