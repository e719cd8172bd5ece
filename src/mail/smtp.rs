//! SMTP through lettre: the transport `email.smtp_url` names, and what a failure means for
//! the outbox (a 5xx is final; anything else is tried again later).

use std::time::Duration;

use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The server refused it for good (5xx), or it cannot be sent at all: no retry.
    #[error("{0}")]
    Permanent(String),
    /// The server is down or slow, or answered 4xx: tried again later.
    #[error("{0}")]
    Transient(String),
}

pub(super) struct Smtp(AsyncSmtpTransport<Tokio1Executor>);

impl Smtp {
    /// The transport `url` names (lettre's URL forms). Nothing connects until a message is
    /// sent. The error names the key, never the URL (it may hold a password).
    pub(super) fn new(url: &str, timeout: Duration) -> Result<Smtp, String> {
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|e| {
            format!(
                "email.smtp_url is not an SMTP URL (smtp://host:port, smtp://host:port?tls=required, smtps://host:port): {}",
                e.to_string().replace(url, "…")
            )
        })?;
        Ok(Smtp(builder.timeout(Some(timeout)).build()))
    }

    pub(super) async fn send(&self, message: &Message) -> Result<(), SendError> {
        match self.0.send(message.clone()).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Transient(e.to_string())),
        }
    }
}
