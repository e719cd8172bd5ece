//! The pages mail brings: "Forgot password?" (`/reset`) and the console's outbox
//! (`/admin/outbox`). What each template receives.

use serde::Serialize;

use crate::store::{MailRow, OutboxCounts};
use crate::web::pages::Layout;
use crate::web::render::Page;
use crate::when::human;

pub const RESET_REQUEST: &str = "reset_request.html";
pub const ADMIN_OUTBOX: &str = "admin_outbox.html";

/// `/reset`: the form (`login`), or the one answer after it.
#[derive(Serialize)]
pub struct ResetRequestPage<'a> {
    /// The form was sent: "If an account matches, we sent a link."
    pub sent: bool,
    pub login: &'a str,
    pub error: Option<&'a str>,
}

/// One message as the console lists it.
#[derive(Serialize)]
pub(super) struct MailView<'a> {
    id: i64,
    kind: &'a str,
    user_id: Option<i64>,
    recipient: &'a str,
    status: &'a str,
    attempts: i32,
    created: String,
    /// When it was sent, or when it is tried next.
    when: Option<String>,
    last_error: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct OutboxPage<'a> {
    pub(super) counts: OutboxCounts,
    /// `pending`, `sent`, `failed`, or empty for every message.
    pub(super) status: &'a str,
    pub(super) mails: Vec<MailView<'a>>,
}

pub(super) fn outbox_page<'a>(counts: OutboxCounts, status: &'a str, rows: &'a [MailRow]) -> OutboxPage<'a> {
    let mails = rows
        .iter()
        .map(|row| MailView {
            id: row.id,
            kind: &row.kind,
            user_id: row.user_id,
            recipient: &row.recipient,
            status: &row.status,
            attempts: row.attempts,
            created: human(row.created_at),
            when: match row.status.as_str() {
                "sent" => row.sent_at.map(human),
                "pending" => Some(human(row.next_attempt_at)),
                _ => None,
            },
            last_error: row.last_error.as_deref(),
        })
        .collect();
    OutboxPage { counts, status, mails }
}

impl Layout<'_> {
    pub fn reset_request(&self, page: ResetRequestPage<'_>) -> Page {
        self.render(RESET_REQUEST, page)
    }

    pub fn admin_outbox(&self, counts: OutboxCounts, status: &str, rows: &[MailRow]) -> Page {
        self.render(ADMIN_OUTBOX, outbox_page(counts, status, rows))
    }
}
