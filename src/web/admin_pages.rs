//! The admin console's pages and the one-time password link's page: what each template
//! receives (part of the template interface, docs/templates.md); their samples are in
//! `web::samples`.
//!
//! - `admin_users.html`: `q`, `users` (`id`, `username`, `email`, `providers`, `is_admin`,
//!   `disabled`, `created`, `last_sign_in`, `live_sessions`), `previous` and `next` (links or
//!   none), `total_shown`.
//! - `admin_user.html`: `user` (as a row above, plus `has_password`), `identities`
//!   (`provider`, `name`, `linked_as`, `linked`), `sessions` (`id`, `client`, `ip`,
//!   `method_name`, `signed_in`, `last_active`), `events` (as on the events page), `is_me`,
//!   `events_href`.
//! - `admin_new_user.html`: `username`, `email`, `admin`, `error`.
//! - `admin_link.html`: `username`, `user_id`, `link`, `expires`, `created` (a new account).
//! - `admin_events.html`: `filter` (`user`, `kind`, `since`, `until`), `kinds` (`slug`,
//!   `words`), `events` (`when`, `what`, `kind`, `subject`, `subject_id`, `actor`, `ip`,
//!   `client`, `detail`), `older` (a link or none).
//! - `reset.html`: `username`, `error`.

use std::collections::HashMap;

use rocket::http::RawStr;
use serde::Serialize;

use crate::auth::admin::UserOverview;
use crate::auth::audit::{Actor, EventKind, ALL_KINDS};
use crate::auth::oauth::Providers;
use crate::store::{DirectoryRow, EventRecord, SessionRecord, User, UserPage};
use crate::web::pages::Layout;
use crate::web::render::Page;
use crate::when::human;

pub const ADMIN_USERS: &str = "admin_users.html";
pub const ADMIN_USER: &str = "admin_user.html";
pub const ADMIN_NEW_USER: &str = "admin_new_user.html";
pub const ADMIN_LINK: &str = "admin_link.html";
pub const ADMIN_EVENTS: &str = "admin_events.html";
pub const RESET: &str = "reset.html";

#[derive(Serialize)]
pub(super) struct UsersPage<'a> {
    q: &'a str,
    users: Vec<UserView>,
    previous: Option<String>,
    next: Option<String>,
}

#[derive(Serialize)]
struct UserView {
    id: i64,
    username: String,
    email: Option<String>,
    /// "GitHub, Google".
    providers: String,
    is_admin: bool,
    disabled: bool,
    created: String,
    last_sign_in: Option<String>,
    live_sessions: i64,
    has_password: bool,
}

fn user_view(
    user: &User,
    providers: &[String],
    live_sessions: i64,
    has_password: bool,
    known: &Providers,
) -> UserView {
    let providers = providers.iter().map(|slug| known.name_of(slug)).collect::<Vec<_>>().join(", ");
    UserView {
        id: user.id,
        username: user.username.clone(),
        email: user.email.clone(),
        providers,
        is_admin: user.is_admin,
        disabled: user.disabled,
        created: human(user.created_at),
        last_sign_in: user.last_login_at.map(human),
        live_sessions,
        has_password,
    }
}

/// `/admin?q=…&after=…`, percent-encoded.
fn users_href(q: &str, key: &str, cursor: &str) -> String {
    let mut href = format!("/admin?{key}={}", RawStr::new(cursor).percent_encode());
    if !q.is_empty() {
        href.push_str(&format!("&q={}", RawStr::new(q).percent_encode()));
    }
    href
}

pub(super) fn users_page<'a>(q: &'a str, page: &UserPage, known: &Providers) -> UsersPage<'a> {
    let users = page
        .users
        .iter()
        .map(|r: &DirectoryRow| user_view(&r.user, &r.providers, r.live_sessions, true, known))
        .collect();
    UsersPage {
        q,
        users,
        previous: page.previous.as_deref().map(|c| users_href(q, "before", c)),
        next: page.next.as_deref().map(|c| users_href(q, "after", c)),
    }
}

#[derive(Serialize)]
pub(super) struct UserPageView {
    user: UserView,
    identities: Vec<IdentityView>,
    sessions: Vec<SessionView>,
    events: Vec<EventView>,
    /// The administrator is looking at their own account.
    is_me: bool,
    /// The audit log filtered to this user.
    events_href: String,
    /// "Authenticator app, 1 passkey", or empty.
    factors: String,
}

#[derive(Serialize)]
struct IdentityView {
    provider: String,
    name: String,
    linked_as: String,
    linked: String,
}

#[derive(Serialize)]
struct SessionView {
    id: String,
    client: String,
    ip: String,
    method_name: String,
    /// "Password + authenticator app".
    methods: String,
    signed_in: String,
    last_active: String,
}

fn session_views(sessions: &[SessionRecord], known: &Providers) -> Vec<SessionView> {
    sessions
        .iter()
        .map(|s| SessionView {
            id: s.id.clone(),
            client: s.client.clone(),
            ip: s.ip.clone().unwrap_or_else(|| "unknown address".into()),
            method_name: known.method_name(&s.method).into_owned(),
            methods: crate::auth::session::describe_methods(&s.methods, |slug| {
                known.name_of(slug).into_owned()
            }),
            signed_in: human(s.created_at),
            last_active: human(s.last_seen_at),
        })
        .collect()
}

pub(super) fn user_page(
    overview: &UserOverview,
    names: &HashMap<i64, String>,
    me: i64,
    known: &Providers,
) -> UserPageView {
    let providers: Vec<String> = overview.identities.iter().map(|i| i.provider.clone()).collect();
    let live = i64::try_from(overview.sessions.len()).unwrap_or(i64::MAX);
    let identities = overview
        .identities
        .iter()
        .map(|i| IdentityView {
            provider: i.provider.clone(),
            name: known.name_of(&i.provider).into_owned(),
            linked_as: i.email.clone().unwrap_or_else(|| i.subject.clone()),
            linked: human(i.created_at),
        })
        .collect();
    UserPageView {
        user: user_view(&overview.user, &providers, live, overview.has_password, known),
        identities,
        sessions: session_views(&overview.sessions, known),
        events: event_views(&overview.events, names),
        is_me: overview.user.id == me,
        events_href: format!("/admin/events?user={}", RawStr::new(&overview.user.username).percent_encode()),
        factors: describe_factors(&overview.factors),
    }
}

/// A user's second factors as the console lists them: "authenticator app, 2 passkeys".
fn describe_factors(factors: &crate::store::Factors) -> String {
    let mut parts = Vec::new();
    if factors.totp {
        parts.push("authenticator app".to_owned());
    }
    match factors.passkeys {
        0 => {}
        1 => parts.push("1 passkey".to_owned()),
        n => parts.push(format!("{n} passkeys")),
    }
    if !parts.is_empty() {
        parts.push(format!("{} recovery codes left", factors.recovery_left));
    }
    parts.join(", ")
}

/// What the new-user form shows (again, after a mistake).
#[derive(Debug, Default, Serialize)]
pub struct NewUserView<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub admin: bool,
    /// "Send an invitation by mail" was ticked (offered with mail only: `site.mail`).
    pub invite: bool,
    pub error: Option<String>,
}

#[derive(Serialize)]
pub(super) struct LinkPage<'a> {
    pub(super) username: &'a str,
    pub(super) user_id: i64,
    pub(super) link: &'a str,
    pub(super) expires: String,
    /// The link was made with a new account.
    pub(super) created: bool,
}

/// The events page's filter, as typed (shown back in the form).
#[derive(Debug, Default, Serialize)]
pub struct EventsFilterView<'a> {
    pub user: &'a str,
    pub kind: &'a str,
    pub since: &'a str,
    pub until: &'a str,
    pub error: Option<String>,
}

#[derive(Serialize)]
pub(super) struct EventsPage<'a> {
    filter: EventsFilterView<'a>,
    kinds: Vec<KindView>,
    events: Vec<EventView>,
    older: Option<String>,
}

#[derive(Serialize)]
struct KindView {
    slug: &'static str,
    words: &'static str,
}

#[derive(Serialize)]
struct EventView {
    when: String,
    /// "sign-in failed".
    what: String,
    kind: String,
    /// The subject's name (kept after they are deleted), or empty.
    subject: String,
    /// The subject's id while they exist (for a link), else none.
    subject_id: Option<i64>,
    /// "alice", "cli", "system", "anonymous", or "#12" for a deleted user.
    actor: String,
    ip: String,
    client: String,
    /// The detail object's facts as `key: value` text.
    detail: String,
}

fn event_views(events: &[EventRecord], names: &HashMap<i64, String>) -> Vec<EventView> {
    events
        .iter()
        .map(|e| {
            let actor = match Actor::parse(&e.actor) {
                Some(Actor::User(id)) => names.get(&id).cloned().unwrap_or_else(|| format!("#{id}")),
                _ => e.actor.clone(),
            };
            let deleted = e.kind == EventKind::UserDeleted.slug();
            EventView {
                when: human(e.at),
                what: EventKind::from_slug(&e.kind).map_or_else(|| e.kind.clone(), |k| k.words().to_owned()),
                kind: e.kind.clone(),
                subject: e.subject_name.clone().unwrap_or_default(),
                subject_id: if deleted { None } else { e.subject_user_id },
                actor,
                ip: e.ip.clone().unwrap_or_default(),
                client: e.client.clone().unwrap_or_default(),
                detail: detail_text(&e.detail),
            }
        })
        .collect()
}

/// `{"method":"password","reason":"invalid-credentials"}` → `method: password, reason: …`.
fn detail_text(detail: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(detail) else {
        return String::new();
    };
    map.iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}: {s}"),
            other => format!("{k}: {other}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Serialize)]
pub(super) struct ResetPage<'a> {
    pub(super) username: &'a str,
    pub(super) error: Option<&'a str>,
}

impl Layout<'_> {
    pub fn admin_users(&self, q: &str, page: &UserPage) -> Page {
        self.render(ADMIN_USERS, users_page(q, page, self.providers()))
    }

    pub fn admin_user(&self, overview: &UserOverview, names: &HashMap<i64, String>, me: i64) -> Page {
        self.render(ADMIN_USER, user_page(overview, names, me, self.providers()))
    }

    pub fn admin_new_user(&self, form: NewUserView<'_>) -> Page {
        self.render(ADMIN_NEW_USER, form)
    }

    pub fn admin_link(&self, user: &User, link: &str, expires_at: i64, created: bool) -> Page {
        let page = LinkPage {
            username: &user.username,
            user_id: user.id,
            link,
            expires: human(expires_at),
            created,
        };
        self.render(ADMIN_LINK, page)
    }

    pub fn admin_events(
        &self,
        filter: EventsFilterView<'_>,
        events: &[EventRecord],
        names: &HashMap<i64, String>,
        older: Option<String>,
    ) -> Page {
        self.render(ADMIN_EVENTS, events_page(filter, events, names, older))
    }

    pub fn reset(&self, username: &str, error: Option<&str>) -> Page {
        self.render(RESET, ResetPage { username, error })
    }
}

pub(super) fn events_page<'a>(
    filter: EventsFilterView<'a>,
    events: &[EventRecord],
    names: &HashMap<i64, String>,
    older: Option<String>,
) -> EventsPage<'a> {
    let kinds = ALL_KINDS.iter().map(|k| KindView { slug: k.slug(), words: k.words() }).collect();
    EventsPage { filter, kinds, events: event_views(events, names), older }
}
