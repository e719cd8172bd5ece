//! What administrators do, one set of operations for the console, the JSON API and the
//! command line: find users, look at one, disable, enable, make or remove an admin, delete,
//! create, hand out a one-time password link, end sessions, and read the audit log.
//!
//! Every operation first checks, in the store (never a cached copy), that whoever acts may:
//! an enabled administrator, or the command line. The rules live here and in the store's
//! guarded statements: never remove, disable or delete the last enabled administrator;
//! never disable, delete or end the sessions of your own account from the console.

use base64::Engine as _;
use rand::RngCore as _;
use serde_json::json;

use crate::auth::audit::{Actor, Event, EventKind};
use crate::auth::password::{check_policy, HashError, PolicyError, MAX_PASSWORD_BYTES};
use crate::auth::session::freshness;
use crate::auth::{Auth, AuthError, ClientInfo};
use crate::mail::Notice;
use crate::store::{
    search_key, CreateUserError, Cursor, EventCursor, EventFilter, EventRecord, Guarded, LinkedIdentity,
    LiveCutoffs, MailRow, NewResetLink, NewUser, OutboxCounts, Removed, SessionRecord, Subject, User,
    UserPage, UserSearch, UsernameError,
};
use crate::when::parse_moment;

/// How long a one-time password link works.
pub const RESET_LINK_SECS: i64 = 24 * 60 * 60;
/// Rows on a page of users or events, at most.
pub const MAX_PAGE: i64 = 100;
/// Rows on a page of users or events when the query does not say.
pub const DEFAULT_PAGE: i64 = 50;
/// Longest search text accepted.
pub const MAX_SEARCH_BYTES: usize = 256;
/// Longest email accepted.
pub const MAX_EMAIL_BYTES: usize = 254;

/// Who is acting, and from where.
#[derive(Debug, Clone, Copy)]
pub struct Operator<'a> {
    pub actor: Actor,
    pub client: Option<&'a ClientInfo>,
}

impl<'a> Operator<'a> {
    /// An administrator signed in to the console or the API.
    pub fn user(user: &User, client: &'a ClientInfo) -> Operator<'a> {
        Operator { actor: Actor::User(user.id), client: Some(client) }
    }

    /// The `portal` command line on the server.
    pub fn cli() -> Operator<'static> {
        Operator { actor: Actor::Cli, client: None }
    }

    fn is(&self, user_id: i64) -> bool {
        self.actor == Actor::User(user_id)
    }
}

/// Why an administrator's operation did not happen. Each variant says what they are told.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// 403: whoever asked is not (or no longer) an enabled administrator.
    #[error("only administrators can do that")]
    NotAdmin,
    /// 404.
    #[error("there is no such user")]
    NoSuchUser,
    /// 404 (a name given on the command line).
    #[error("no user named {0:?}")]
    NoUserNamed(String),
    /// 409.
    #[error("that would leave no enabled administrator")]
    LastAdmin,
    /// 409: disabling, deleting or signing out your own account from the console.
    #[error("you cannot do that to your own account here")]
    OwnAccount,
    /// 422.
    #[error("{0}")]
    InvalidUsername(#[from] UsernameError),
    /// 409.
    #[error("that username is taken")]
    Taken,
    /// 422.
    #[error("that is not an email address")]
    InvalidEmail,
    /// 422: an invitation is mailed, so it needs an address and `[email]`.
    #[error("an invitation needs an email address, and the portal set up to send mail")]
    CannotInvite,
    /// 422 (a password given on the command line).
    #[error("{0}")]
    Policy(#[from] PolicyError),
    /// 404.
    #[error("there is no such application")]
    NoSuchClient,
    /// 409.
    #[error("that client_id is taken")]
    ClientTaken,
    /// 409: an application from the configuration file.
    #[error("that application is set in the configuration file; change it there")]
    ConfiguredClient,
    /// 409: a public client has no secret.
    #[error("a public application has no secret")]
    PublicClient,
    /// 422.
    #[error("{0}")]
    InvalidClient(String),
    #[error(transparent)]
    Failed(#[from] AuthError),
}

impl From<sqlx::Error> for AdminError {
    fn from(e: sqlx::Error) -> AdminError {
        AdminError::Failed(e.into())
    }
}

/// A new account as an administrator describes it: no password (they get a link), or, on
/// the command line, one typed there.
pub struct NewAccount<'a> {
    pub username: &'a str,
    pub email: Option<&'a str>,
    /// Mail the set-password link to `email` (valid 7 days) instead of making one to hand over.
    pub invite: bool,
    pub admin: bool,
}

/// A one-time link to set a password: `/reset/<token>`. The token is shown once, to whoever
/// made the link, and never stored.
#[derive(Debug, Clone)]
pub struct ResetLink {
    pub token: String,
    pub expires_at: i64,
}

impl ResetLink {
    pub fn path(&self) -> String {
        format!("/reset/{}", self.token)
    }

    /// The link, absolute when the portal's origin is known.
    pub fn url(&self, origin: Option<&str>) -> String {
        format!("{}{}", origin.unwrap_or(""), self.path())
    }
}

/// How a token is stored and looked up: as a session's secret is (SHA-256, hex).
pub(crate) use crate::auth::session::hash_secret as token_hash;

/// A new one-time link's token: 256 random bits, base64url (43 characters).
pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether text could be a token this portal made (43 base64url characters: 256 bits).
pub fn looks_like_token(token: &str) -> bool {
    token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One user as the console's user page shows them.
#[derive(Debug, Clone)]
pub struct UserOverview {
    pub user: User,
    pub has_password: bool,
    pub identities: Vec<LinkedIdentity>,
    /// Live sessions, most recently active first.
    pub sessions: Vec<SessionRecord>,
    /// The latest events about them, newest first.
    pub events: Vec<EventRecord>,
    /// Their second factors.
    pub factors: crate::store::Factors,
}

/// Why a users or events query was refused. Each variant says what the person is told: the
/// console answers 400 with a sentence of its own, the API 422 with this text as
/// `{"error": …}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A value over [`MAX_SEARCH_BYTES`]. Console: "Search for at most 256 characters." (users)
    /// or "A filter is too long." (events).
    #[error("a parameter is longer than 256 bytes")]
    TooLong,
    /// `limit` is not a whole number from 1 to [`MAX_PAGE`] (only the API takes one).
    #[error("limit must be a whole number from 1 to 100")]
    BadLimit,
    /// Not one of the event kinds. Console: "Choose what to show from the list."
    #[error("unknown kind")]
    BadKind,
    /// `since` or `until` is not a time: how to write one (the console, which takes the forms
    /// [`parse_moment`] reads), or that they are Unix seconds (the API).
    #[error("{0}")]
    BadTime(String),
    /// `before` is not an event cursor (`AT.ID`). Console: "That page link is not valid."
    #[error("before is not a cursor")]
    BadCursor,
}

/// How a query's text is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryText {
    /// The console's forms: an empty field is no filter, text is trimmed, and times are as a
    /// person types them ([`parse_moment`], relative to `now`).
    Form { now: i64 },
    /// The API's parameters: a value given is read as given (an empty kind, time or cursor
    /// is refused), and times are Unix seconds.
    Api,
}

impl QueryText {
    /// A present value as this dialect reads it: a form's empty field is absent.
    fn value(self, text: Option<&str>) -> Option<&str> {
        match self {
            QueryText::Form { .. } => text.map(str::trim).filter(|t| !t.is_empty()),
            QueryText::Api => text,
        }
    }

    fn time(self, text: &str) -> Result<i64, QueryError> {
        match self {
            QueryText::Form { now } => parse_moment(text, now).map_err(QueryError::BadTime),
            QueryText::Api => {
                text.parse().map_err(|_| QueryError::BadTime("since and until are Unix seconds".into()))
            }
        }
    }
}

/// No value longer than [`MAX_SEARCH_BYTES`].
fn within_limits(values: &[Option<&str>]) -> Result<(), QueryError> {
    match values.iter().flatten().any(|v| v.len() > MAX_SEARCH_BYTES) {
        true => Err(QueryError::TooLong),
        false => Ok(()),
    }
}

/// `limit`, when given: a whole number from 1 to [`MAX_PAGE`].
fn page_size(limit: Option<&str>) -> Result<i64, QueryError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(QueryError::BadLimit),
        },
    }
}

/// A users or events query's parameters as sent, each absent or not: the console's form
/// fields, the API's query. Each query reads its own: users `q`, `after`, `before`, `limit`;
/// events `user`, `kind`, `since`, `until`, `before`, `limit`.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueryParams<'a> {
    /// Usernames or emails starting with this.
    pub q: Option<&'a str>,
    /// Whose events, by name.
    pub user: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    /// Users: a page's `next`, for the page after it.
    pub after: Option<&'a str>,
    /// Users: a page's `previous`, for the page before it; events: a page's `next`
    /// ([`EventCursor`] as text), for older ones.
    pub before: Option<&'a str>,
    pub limit: Option<&'a str>,
}

/// A users query, read.
#[derive(Debug, Clone)]
pub struct UsersQuery {
    /// The search text, trimmed (shown back in the search box).
    pub q: String,
    pub search: UserSearch,
}

impl UsersQuery {
    pub fn parse(text: QueryParams<'_>) -> Result<UsersQuery, QueryError> {
        within_limits(&[text.q, text.after, text.before])?;
        let limit = page_size(text.limit)?;
        // A users cursor is the username key itself; the parameter's name says which way.
        let cursor = match (text.after, text.before) {
            (Some(after), _) => Some(Cursor::After(after.to_owned())),
            (None, Some(before)) => Some(Cursor::Before(before.to_owned())),
            (None, None) => None,
        };
        let search = UserSearch { prefix: text.q.map(search_key), cursor, limit };
        Ok(UsersQuery { q: text.q.unwrap_or("").trim().to_owned(), search })
    }
}

/// An audit log query, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsQuery {
    /// Whose events, by name: [`Auth::events_filter`] looks them up.
    pub user: Option<String>,
    /// The rest of the filter (no subject yet).
    pub filter: EventFilter,
}

impl EventsQuery {
    pub fn parse(text: QueryParams<'_>, how: QueryText) -> Result<EventsQuery, QueryError> {
        within_limits(&[text.user, text.kind, text.since, text.until, text.before])?;
        let limit = page_size(text.limit)?;
        let kind = match how.value(text.kind) {
            None => None,
            Some(slug) if EventKind::from_slug(slug).is_some() => Some(slug.to_owned()),
            Some(_) => return Err(QueryError::BadKind),
        };
        let before = how
            .value(text.before)
            .map(|t| t.parse::<EventCursor>().map_err(|_| QueryError::BadCursor))
            .transpose()?;
        let since = how.value(text.since).map(|t| how.time(t)).transpose()?;
        let until = how.value(text.until).map(|t| how.time(t)).transpose()?;
        let filter = EventFilter { subject: None, kind, since, until, before, limit };
        Ok(EventsQuery { user: how.value(text.user).map(str::to_owned), filter })
    }
}

/// Events a user page shows.
const USER_PAGE_EVENTS: i64 = 20;

/// A plain check that text is an email address: one `@` with something either side, 254
/// bytes at most, and nothing that would break or hide in a header (no whitespace, control
/// or invisible characters, none of `, ; " < > ( ) \\`). (Whether it receives mail is not
/// the portal's business: it sends none.)
pub fn valid_email(email: &str) -> bool {
    let ok_chars = crate::store::email_characters_ok(email);
    match email.split_once('@') {
        Some((local, domain)) => {
            ok_chars
                && !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && email.len() <= MAX_EMAIL_BYTES
        }
        None => false,
    }
}

impl Auth {
    /// Checks, in the store, that `by` may administer: the command line, or an enabled
    /// administrator (read afresh: a role removed a moment ago counts).
    pub async fn authorize(&self, by: &Operator<'_>) -> Result<(), AdminError> {
        match by.actor {
            Actor::Cli => Ok(()),
            Actor::User(id) => match self.store.user_by_id(id).await? {
                Some(user) if user.is_admin && !user.disabled => Ok(()),
                _ => Err(AdminError::NotAdmin),
            },
            Actor::System | Actor::Anonymous => Err(AdminError::NotAdmin),
        }
    }

    /// A page of users, found by username or email prefix.
    pub async fn find_users(&self, by: &Operator<'_>, search: &UserSearch) -> Result<UserPage, AdminError> {
        self.authorize(by).await?;
        let mut search = search.clone();
        search.limit = search.limit.clamp(1, MAX_PAGE);
        let now = self.now();
        let live = LiveCutoffs {
            seen_after: now - self.session.idle_timeout,
            created_after: now - self.session.absolute_timeout,
        };
        Ok(self.store.search_users(&search, live).await?)
    }

    /// A user by name (for the command line).
    pub async fn user_named(&self, by: &Operator<'_>, name: &str) -> Result<User, AdminError> {
        self.authorize(by).await?;
        self.store.user_by_username(name).await?.ok_or_else(|| AdminError::NoUserNamed(name.to_owned()))
    }

    /// Everything the user page shows.
    pub async fn user_overview(&self, by: &Operator<'_>, id: i64) -> Result<UserOverview, AdminError> {
        self.authorize(by).await?;
        let user = self.store.user_by_id(id).await?.ok_or(AdminError::NoSuchUser)?;
        let identities = self.store.identities(id).await?;
        let has_password = self.store.has_password(id).await?;
        let now = self.now();
        let mut sessions = self.store.sessions_of(id).await?;
        sessions.retain(|s| freshness(s, &self.session, now) != crate::auth::session::Freshness::Expired);
        let filter = EventFilter {
            subject: Some(crate::store::Subject::Id(id)),
            limit: USER_PAGE_EVENTS,
            ..EventFilter::default()
        };
        let (events, _) = self.store.find_events(&filter).await?;
        let factors = self.store.factors_of(id).await?;
        Ok(UserOverview { user, has_password, identities, sessions, events, factors })
    }

    /// Disables a user (every session of theirs ends) or enables them again.
    pub async fn set_user_disabled(
        &self,
        by: &Operator<'_>,
        id: i64,
        disabled: bool,
    ) -> Result<User, AdminError> {
        self.authorize(by).await?;
        if disabled && by.is(id) {
            return Err(AdminError::OwnAccount);
        }
        guarded(self.store.set_disabled(id, disabled, self.now()).await?)?;
        let (kind, detail) = if disabled {
            (EventKind::UserDisabled, json!({ "sessions_ended": true }))
        } else {
            (EventKind::UserEnabled, json!({}))
        };
        self.admin_did(by, kind, id, None, detail).await;
        log::info!("user {id} {} by {}", kind.words(), by.actor.text());
        self.store.user_by_id(id).await?.ok_or(AdminError::NoSuchUser)
    }

    /// Makes a user an administrator, or removes the role (never from the last one).
    pub async fn set_user_admin(&self, by: &Operator<'_>, id: i64, admin: bool) -> Result<User, AdminError> {
        self.authorize(by).await?;
        guarded(self.store.set_admin(id, admin).await?)?;
        let kind = if admin { EventKind::AdminGranted } else { EventKind::AdminRevoked };
        self.admin_did(by, kind, id, None, json!({})).await;
        log::info!("user {id}: {} by {}", kind.words(), by.actor.text());
        self.store.user_by_id(id).await?.ok_or(AdminError::NoSuchUser)
    }

    /// Deletes a user, with their identities, sessions and links; the audit log keeps what
    /// happened to them, under their id and name.
    pub async fn delete_user(&self, by: &Operator<'_>, id: i64) -> Result<User, AdminError> {
        self.authorize(by).await?;
        if by.is(id) {
            return Err(AdminError::OwnAccount);
        }
        let user = self.store.user_by_id(id).await?.ok_or(AdminError::NoSuchUser)?;
        guarded(self.store.delete_user(id).await?)?;
        let detail = json!({ "username": user.username });
        self.admin_did(by, EventKind::UserDeleted, id, Some(&user.username), detail).await;
        log::info!("user {id} deleted by {}", by.actor.text());
        Ok(user)
    }

    /// Creates an account. Without a password, it answers with a one-time link for the
    /// person to set one; with one (the command line), the policy applies and no link is
    /// made.
    pub async fn create_account(
        &self,
        by: &Operator<'_>,
        account: NewAccount<'_>,
        password: Option<&str>,
    ) -> Result<(User, Option<ResetLink>), AdminError> {
        self.authorize(by).await?;
        let email = account.email.map(str::trim).filter(|e| !e.is_empty());
        if email.is_some_and(|e| !valid_email(e)) {
            return Err(AdminError::InvalidEmail);
        }
        if account.invite && (email.is_none() || !self.mail_enabled() || password.is_some()) {
            return Err(AdminError::CannotInvite);
        }
        let hash = match password {
            Some(password) => {
                let display = crate::store::Username::parse(account.username)?;
                check_policy(password, display.display())?;
                Some(self.hash(password).await?)
            }
            None => None,
        };
        let new = NewUser {
            username: account.username,
            email,
            password_hash: hash.as_deref(),
            is_admin: account.admin,
        };
        // With mail, a new address is verified by a link to it (or proved by the invitation
        // that goes there); without, an administrator's word is all there is.
        let created = match email {
            Some(email) if self.mail_enabled() => {
                self.create_user_mailing(by, new, email, account.invite).await
            }
            _ => self.store.create_user(new, self.now()).await,
        };
        let user = match created {
            Ok(user) => user,
            Err(CreateUserError::InvalidUsername(e)) => return Err(e.into()),
            Err(CreateUserError::Taken) => return Err(AdminError::Taken),
            Err(CreateUserError::Store(e)) => return Err(e.into()),
        };
        let detail = json!({ "admin": account.admin, "email": email.is_some(), "invited": account.invite });
        self.admin_did(by, EventKind::UserCreated, user.id, None, detail).await;
        log::info!("user {} created by {}", user.id, by.actor.text());
        let link = match password {
            Some(_) => None,
            None if account.invite => None,
            None => Some(self.make_reset_link(by, &user).await?),
        };
        Ok((user, link))
    }

    /// A fresh one-time link for the user to set a password; their earlier links stop
    /// working. Their password and sessions are unchanged until the link is followed.
    pub async fn create_reset_link(
        &self,
        by: &Operator<'_>,
        id: i64,
    ) -> Result<(User, ResetLink), AdminError> {
        self.authorize(by).await?;
        let user = self.store.user_by_id(id).await?.ok_or(AdminError::NoSuchUser)?;
        let link = self.make_reset_link(by, &user).await?;
        Ok((user, link))
    }

    async fn make_reset_link(&self, by: &Operator<'_>, user: &User) -> Result<ResetLink, AdminError> {
        let token = new_token();
        let now = self.now();
        let expires_at = now + RESET_LINK_SECS;
        let created_by = by.actor.text();
        let hash = token_hash(&token);
        let new = NewResetLink {
            token_hash: &hash,
            user_id: user.id,
            now,
            expires_at,
            created_by: &created_by,
            sent_to: None,
        };
        self.store.create_reset_link(new).await?;
        let detail = json!({ "expires_at": expires_at });
        self.admin_did(by, EventKind::ResetLinkCreated, user.id, None, detail).await;
        log::info!("password link created for user {} by {}", user.id, by.actor.text());
        Ok(ResetLink { token, expires_at })
    }

    /// Sets a user's password (the command line's `users passwd`): the policy applies and
    /// every session of theirs ends.
    pub async fn set_user_password(
        &self,
        by: &Operator<'_>,
        id: i64,
        password: &str,
    ) -> Result<User, AdminError> {
        self.authorize(by).await?;
        let user = self.store.user_by_id(id).await?.ok_or(AdminError::NoSuchUser)?;
        check_policy(password, &user.username)?;
        let hash = self.hash(password).await?;
        let now = self.now();
        let notice = self.notice_for(&user, Notice::PasswordChanged, by.client, "").await;
        let mail = notice.as_ref().map(|n| n.for_store(Some(id), now));
        self.store.set_password(id, &hash, now, mail.as_ref()).await?;
        self.mail_queued();
        let detail = json!({ "by": by.actor.text(), "sessions_ended": true });
        self.admin_did(by, EventKind::PasswordChanged, id, None, detail).await;
        Ok(user)
    }

    /// Removes every second factor of a user (app, passkeys, recovery codes), for someone who
    /// lost them: audited, and the person is told at their next sign-in. Their sessions
    /// stay. Not for one's own account (use the account page).
    pub async fn reset_second_factor(&self, by: &Operator<'_>, id: i64) -> Result<Removed, AdminError> {
        self.authorize(by).await?;
        if by.is(id) {
            return Err(AdminError::OwnAccount);
        }
        let user = self.store.user_by_id(id).await?.ok_or(AdminError::NoSuchUser)?;
        let notice = self.notice_for(&user, Notice::FactorRemoved, None, "Every second factor").await;
        let now = self.now();
        let mail = notice.as_ref().map(|n| n.for_store(Some(id), now));
        let removed = self.store.reset_second_factor(id, now, mail.as_ref()).await?;
        self.mail_queued();
        let detail = json!({
            "totp": removed.totp, "passkeys": removed.passkeys, "recovery_codes": removed.recovery_codes
        });
        self.admin_did(by, EventKind::SecondFactorReset, id, None, detail).await;
        log::info!("user {id}'s second factors reset by {}", by.actor.text());
        Ok(removed)
    }

    /// Ends one session of a user (`Some(id)`), or all of them; how many ended.
    pub async fn end_user_sessions(
        &self,
        by: &Operator<'_>,
        user_id: i64,
        session: Option<&str>,
    ) -> Result<u64, AdminError> {
        self.authorize(by).await?;
        if by.is(user_id) {
            return Err(AdminError::OwnAccount);
        }
        if self.store.user_by_id(user_id).await?.is_none() {
            return Err(AdminError::NoSuchUser);
        }
        let now = self.now();
        let ended = match session {
            Some(id) => u64::from(self.store.end_session(user_id, id, now).await?),
            None => self.store.end_sessions_of(user_id, None, now).await?,
        };
        if ended > 0 {
            let detail = match session {
                Some(id) => json!({ "by": "admin", "session": id }),
                None => json!({ "by": "admin", "all": true, "sessions": ended }),
            };
            self.admin_did(by, EventKind::SessionEnded, user_id, None, detail).await;
            log::info!("{ended} session(s) of user {user_id} ended by {}", by.actor.text());
        }
        Ok(ended)
    }

    /// Whose events a filter by name means: the user's id while they exist, else the name
    /// the log kept for a deleted one.
    pub async fn events_subject(&self, name: &str) -> Result<Subject, AuthError> {
        Ok(match self.store.user_by_username(name).await? {
            Some(user) => Subject::Id(user.id),
            None => Subject::Name(name.to_owned()),
        })
    }

    /// The filter a query describes: its user looked up ([`Auth::events_subject`]).
    pub async fn events_filter(&self, query: &EventsQuery) -> Result<EventFilter, AuthError> {
        let subject = match &query.user {
            Some(name) => Some(self.events_subject(name).await?),
            None => None,
        };
        Ok(EventFilter { subject, ..query.filter.clone() })
    }

    /// A page of the audit log, newest first, and where the next (older) page starts when
    /// there is more.
    pub async fn find_events(
        &self,
        by: &Operator<'_>,
        filter: &EventFilter,
    ) -> Result<(Vec<EventRecord>, Option<EventCursor>), AdminError> {
        self.authorize(by).await?;
        let mut filter = filter.clone();
        filter.limit = filter.limit.clamp(1, MAX_PAGE);
        let (events, more) = self.store.find_events(&filter).await?;
        let next = if more { events.last().map(EventCursor::of) } else { None };
        Ok((events, next))
    }

    /// The outbox: how many messages are in each state, and the newest 100 (in `status` when
    /// it is `pending`, `sent` or `failed`).
    pub async fn outbox_messages(
        &self,
        by: &Operator<'_>,
        status: Option<&str>,
    ) -> Result<(OutboxCounts, Vec<MailRow>), AdminError> {
        self.authorize(by).await?;
        let status = status.filter(|s| ["pending", "sent", "failed"].contains(s));
        let counts = self.store.outbox_counts().await?;
        let rows = self.store.outbox_recent(status, 100).await?;
        Ok((counts, rows))
    }

    /// The usernames of the users among these actors (for showing the log).
    pub async fn actor_names(
        &self,
        events: &[EventRecord],
    ) -> Result<std::collections::HashMap<i64, String>, AuthError> {
        let mut ids: Vec<i64> = events
            .iter()
            .filter_map(|e| match Actor::parse(&e.actor) {
                Some(Actor::User(id)) => Some(id),
                _ => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(self.store.usernames(&ids).await?)
    }

    async fn admin_did(
        &self,
        by: &Operator<'_>,
        kind: EventKind,
        subject: i64,
        subject_name: Option<&str>,
        detail: serde_json::Value,
    ) {
        let event =
            Event { kind, actor: by.actor, subject: Some(subject), subject_name, client: by.client, detail };
        self.record(event).await;
    }

    pub(crate) async fn hash(&self, password: &str) -> Result<String, AuthError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(AuthError::Internal("password over the limit reached the hasher".into()));
        }
        self.hasher.hash(password.to_owned()).await.map_err(|e| match e {
            HashError::Busy => AuthError::Busy,
            HashError::Failed(why) => AuthError::Internal(why),
        })
    }
}

fn guarded(outcome: Guarded) -> Result<(), AdminError> {
    match outcome {
        Guarded::Done => Ok(()),
        Guarded::NoSuchUser => Err(AdminError::NoSuchUser),
        Guarded::LastAdmin => Err(AdminError::LastAdmin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_plainly() {
        for good in ["a@b", "bob@example.com", "Zoë@exämple.org"] {
            assert!(valid_email(good), "{good}");
        }
        for bad in [
            "",
            "bob",
            "@example.com",
            "bob@",
            "a b@c",
            "a@b@c",
            "a\n@b",
            "a,b@c.com",
            "<a@b>",
            "a@b\u{200E}",
        ] {
            assert!(!valid_email(bad), "{bad:?}");
        }
        assert!(!valid_email(&format!("{}@example.com", "a".repeat(250))));
    }

    #[test]
    fn a_users_query_reads_its_search_cursor_and_page_size() {
        let text = QueryParams { q: Some("  Bob "), after: Some("carol"), ..QueryParams::default() };
        let query = UsersQuery::parse(text).unwrap();
        assert_eq!(query.q, "Bob");
        assert_eq!(query.search.prefix.as_deref(), Some("bob"));
        assert_eq!(query.search.cursor, Some(Cursor::After("carol".into())));
        assert_eq!(query.search.limit, DEFAULT_PAGE);
        let text = QueryParams { before: Some("alice"), limit: Some("100"), ..QueryParams::default() };
        let query = UsersQuery::parse(text).unwrap();
        assert_eq!((query.search.cursor, query.search.limit), (Some(Cursor::Before("alice".into())), 100));
        // A page's `next` and `previous` are the keys themselves: they come back unchanged.
        let text = QueryParams { after: Some("ﬁ ⅻ"), ..QueryParams::default() };
        assert_eq!(UsersQuery::parse(text).unwrap().search.cursor, Some(Cursor::After("ﬁ ⅻ".into())));
    }

    #[test]
    fn a_users_query_refuses_long_text_and_odd_page_sizes() {
        let long = "a".repeat(MAX_SEARCH_BYTES + 1);
        for text in [
            QueryParams { q: Some(&long), ..QueryParams::default() },
            QueryParams { after: Some(&long), ..QueryParams::default() },
            QueryParams { before: Some(&long), ..QueryParams::default() },
        ] {
            assert_eq!(UsersQuery::parse(text).unwrap_err(), QueryError::TooLong);
        }
        for limit in ["0", "101", "-5", "abc", "", "99999999999999999999"] {
            let text = QueryParams { limit: Some(limit), ..QueryParams::default() };
            assert_eq!(UsersQuery::parse(text).unwrap_err(), QueryError::BadLimit, "{limit:?}");
        }
        let fits = "a".repeat(MAX_SEARCH_BYTES);
        assert!(UsersQuery::parse(QueryParams { q: Some(&fits), ..QueryParams::default() }).is_ok());
    }

    #[test]
    fn an_events_query_reads_a_form_and_the_api_each_its_own_way() {
        let now = 1_800_000_000;
        let form = QueryText::Form { now };
        let text = QueryParams {
            user: Some(" bob "),
            kind: Some("sign_in_failed"),
            since: Some("24h"),
            until: Some(""),
            before: Some("1800000000.7"),
            ..QueryParams::default()
        };
        let query = EventsQuery::parse(text, form).unwrap();
        let filter = EventFilter {
            subject: None,
            kind: Some("sign_in_failed".into()),
            since: Some(now - 86_400),
            until: None,
            before: Some(EventCursor { at: 1_800_000_000, id: 7 }),
            limit: DEFAULT_PAGE,
        };
        let expected = EventsQuery { user: Some("bob".into()), filter };
        assert_eq!(query, expected);
        // A form's empty (or blank) fields are no filter.
        let blank = Some(" ");
        let empty = QueryParams {
            user: blank,
            kind: blank,
            since: blank,
            until: blank,
            before: blank,
            ..QueryParams::default()
        };
        let query = EventsQuery::parse(empty, form).unwrap();
        assert_eq!(
            query,
            EventsQuery { user: None, filter: EventFilter { limit: DEFAULT_PAGE, ..EventFilter::default() } }
        );
        // The API takes Unix seconds, and refuses what is empty but means something.
        let text = QueryParams { since: Some("1800000000"), limit: Some("7"), ..QueryParams::default() };
        let query = EventsQuery::parse(text, QueryText::Api).unwrap();
        assert_eq!((query.filter.since, query.filter.limit), (Some(now), 7));
        for (text, refusal) in [
            (QueryParams { kind: Some(""), ..QueryParams::default() }, QueryError::BadKind),
            (QueryParams { before: Some(""), ..QueryParams::default() }, QueryError::BadCursor),
            (QueryParams { since: Some("24h"), ..QueryParams::default() }, QueryError::BadTime("".into())),
        ] {
            let got = EventsQuery::parse(text, QueryText::Api).unwrap_err();
            assert_eq!(std::mem::discriminant(&got), std::mem::discriminant(&refusal), "{text:?}");
        }
    }

    #[test]
    fn an_events_query_refuses_what_it_cannot_read() {
        let long = "x".repeat(MAX_SEARCH_BYTES + 1);
        let form = QueryText::Form { now: 1_800_000_000 };
        for how in [form, QueryText::Api] {
            let refused = |text: QueryParams<'_>| EventsQuery::parse(text, how).unwrap_err();
            for text in [
                QueryParams { user: Some(&long), ..QueryParams::default() },
                QueryParams { kind: Some(&long), ..QueryParams::default() },
                QueryParams { since: Some(&long), ..QueryParams::default() },
                QueryParams { before: Some(&long), ..QueryParams::default() },
            ] {
                assert_eq!(refused(text), QueryError::TooLong, "{how:?}");
            }
            assert_eq!(
                refused(QueryParams { kind: Some("nonsense"), ..QueryParams::default() }),
                QueryError::BadKind
            );
            assert_eq!(
                refused(QueryParams { before: Some("1"), ..QueryParams::default() }),
                QueryError::BadCursor
            );
            assert_eq!(
                refused(QueryParams { limit: Some("0"), ..QueryParams::default() }),
                QueryError::BadLimit
            );
            let bad_time = refused(QueryParams { until: Some("yesterday"), ..QueryParams::default() });
            assert!(matches!(bad_time, QueryError::BadTime(_)), "{how:?}");
        }
        let api =
            EventsQuery::parse(QueryParams { since: Some("abc"), ..QueryParams::default() }, QueryText::Api);
        assert_eq!(api.unwrap_err().to_string(), "since and until are Unix seconds");
        let form =
            EventsQuery::parse(QueryParams { since: Some("2027-13-45"), ..QueryParams::default() }, form);
        assert!(form.unwrap_err().to_string().contains("is not a time"));
    }

    #[test]
    fn tokens_are_256_bits_of_base64url() {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        assert!(looks_like_token(&token), "{token}");
        assert!(!looks_like_token(&token[1..]));
        assert!(!looks_like_token(&format!("{}+", &token[1..])));
        assert_eq!(token_hash("x").len(), 64);
    }
}
