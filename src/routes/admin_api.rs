//! `/api/admin`: the console's operations as JSON, for an administrator's browser session.
//! Reads need an enabled administrator (`Acting`: 401 without a session, 403 for anyone
//! else, as JSON); changes also need the request to say it is same-origin
//! (`SameOriginRequired`), like the rest of `/api`. The operations are
//! [`crate::auth::admin`]'s, shared with the console and the command line.

use rocket::http::uri::Origin;
use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{delete, get, patch, post, FromForm, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::admin::{EventsQuery, NewAccount, QueryParams, QueryText, UserOverview, UsersQuery};
use crate::auth::audit::{Actor, EventKind};
use crate::auth::Auth;
use crate::store::{EventRecord, User};
use crate::web::api::{
    ApiError, ErrorJson, JsonBodyErrors, JsonObject, NotAdmin, NotAdminOrCrossSite, SignedInErrors,
    UserIdErrors,
};
use crate::web::client::SiteOrigin;
use crate::web::csrf::SameOriginRequired;
use crate::web::guard::Acting;
use crate::when::rfc3339;

/// A user as the admin API shows one.
#[derive(Serialize, ToSchema)]
pub struct UserJson {
    id: i64,
    username: String,
    email: Option<String>,
    admin: bool,
    disabled: bool,
    /// Unix seconds.
    created_at: i64,
    /// Unix seconds; none before the first sign-in.
    last_sign_in_at: Option<i64>,
}

impl From<&User> for UserJson {
    fn from(u: &User) -> UserJson {
        UserJson {
            id: u.id,
            username: u.username.clone(),
            email: u.email.clone(),
            admin: u.is_admin,
            disabled: u.disabled,
            created_at: u.created_at,
            last_sign_in_at: u.last_login_at,
        }
    }
}

/// A row of the users list: the user, how they sign in, and their live sessions.
#[derive(Serialize, ToSchema)]
pub struct UserRowJson {
    #[serde(flatten)]
    user: UserJson,
    /// Linked providers: `google`, `github`.
    providers: Vec<String>,
    live_sessions: i64,
}

/// A page of users in username order.
#[derive(Serialize, ToSchema)]
pub struct UsersJson {
    users: Vec<UserRowJson>,
    /// Pass as `after` for the next page; none on the last.
    next: Option<String>,
    /// Pass as `before` for the previous page; none on the first.
    previous: Option<String>,
}

/// The users list's query.
#[derive(FromForm, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersParams {
    /// Usernames or emails starting with this (case-insensitive).
    #[param(max_length = 256)]
    q: Option<String>,
    /// The page after this cursor (a previous answer's `next`).
    #[param(max_length = 256)]
    after: Option<String>,
    /// The page before this cursor (a previous answer's `previous`).
    #[param(max_length = 256)]
    before: Option<String>,
    /// Rows per page, 1 to 100 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// Each query parameter at most once: Rocket reads an optional field given twice
/// (`?limit=1&limit=2`) as absent, which would quietly drop a filter or a bound.
fn once_each(uri: &Origin<'_>) -> Result<(), ApiError> {
    let mut seen = std::collections::HashSet::new();
    match uri.query() {
        Some(query) if !query.segments().all(|(name, _)| seen.insert(name)) => {
            Err(ApiError(Status::UnprocessableEntity, "a parameter is given more than once".into()))
        }
        _ => Ok(()),
    }
}

/// Users, a page at a time, found by username or email prefix.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_list_users",
    params(UsersParams),
    responses(
        (status = 200, description = "A page of users", body = UsersJson),
        SignedInErrors,
        NotAdmin,
        (status = 422, description = "A parameter is out of range, or given twice", body = ErrorJson),
    )
)]
#[get("/users?<params..>")]
pub async fn users(
    params: UsersParams,
    uri: &Origin<'_>,
    admin: Acting<'_>,
    auth: &State<Auth>,
) -> Result<Json<UsersJson>, ApiError> {
    once_each(uri)?;
    let text = QueryParams {
        q: params.q.as_deref(),
        after: params.after.as_deref(),
        before: params.before.as_deref(),
        limit: params.limit.as_deref(),
        ..QueryParams::default()
    };
    let query = UsersQuery::parse(text)?;
    let by = admin.by();
    let page = auth.find_users(&by, &query.search).await?;
    let users = page
        .users
        .iter()
        .map(|r| UserRowJson {
            user: (&r.user).into(),
            providers: r.providers.clone(),
            live_sessions: r.live_sessions,
        })
        .collect();
    Ok(Json(UsersJson { users, next: page.next, previous: page.previous }))
}

/// A new user: no password; the answer holds a one-time link with which they set one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserJson {
    /// 1 to 64 characters once trimmed and NFKC-normalised (the form it is stored in), with no
    /// spaces, control, format (invisible, bidirectional), private-use or unassigned
    /// characters, and none of `, ; " < > \`; otherwise 422.
    #[schema(min_length = 1)]
    username: String,
    /// An address (one `@`, 254 bytes at most, no spaces, control or invisible characters,
    /// none of `, ; " < > ( ) \`) once trimmed, otherwise 422; empty is none.
    email: Option<String>,
    #[serde(default)]
    admin: bool,
    /// Mail the person a link to set their password (7 days, single use) instead of answering
    /// with one: needs `email` and the portal's `[email]` (otherwise 422).
    #[serde(default)]
    invite: bool,
}

/// A one-time link to set a password (24 hours, single use).
#[derive(Serialize, ToSchema)]
pub struct ResetLinkJson {
    /// `/reset/<token>`, absolute when the portal knows its origin.
    url: String,
    /// Unix seconds.
    expires_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedJson {
    user: UserJson,
    /// The link to hand over; absent when an invitation was mailed.
    #[serde(skip_serializing_if = "Option::is_none")]
    reset_link: Option<ResetLinkJson>,
    /// An invitation carrying the link went to the user's address.
    invited: bool,
}

/// Creates a user and answers with their one-time password link (shown only here).
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_create_user",
    request_body = NewUserJson,
    responses(
        (status = 201, description = "Created", body = CreatedJson),
        SignedInErrors,
        NotAdminOrCrossSite,
        JsonBodyErrors,
        (status = 409, description = "The username is taken", body = ErrorJson),
        (status = 422, description = "An invalid username or email, an invitation without an address or mail, or unreadable fields", body = ErrorJson),
    )
)]
#[post("/users", data = "<body>")]
pub async fn create_user(
    body: JsonObject<NewUserJson>,
    _same_origin: SameOriginRequired,
    admin: Acting<'_>,
    origin: SiteOrigin,
    auth: &State<Auth>,
) -> Result<(Status, Json<CreatedJson>), ApiError> {
    let by = admin.by();
    let account = NewAccount {
        username: &body.username,
        email: body.email.as_deref(),
        admin: body.admin,
        invite: body.invite,
    };
    let (user, link) = auth.create_account(&by, account, None).await?;
    let reset_link =
        link.map(|link| ResetLinkJson { url: link.url(origin.0.as_deref()), expires_at: link.expires_at });
    Ok((Status::Created, Json(CreatedJson { user: (&user).into(), reset_link, invited: body.invite })))
}

#[derive(Serialize, ToSchema)]
pub struct IdentityJson {
    /// `google` or `github`.
    provider: String,
    /// The provider's id for the person.
    subject: String,
    email: Option<String>,
    /// Unix seconds.
    linked_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct AdminSessionJson {
    id: String,
    /// `password`, `google` or `github`.
    method: String,
    /// "Firefox on Linux".
    client: String,
    ip: Option<String>,
    /// Unix seconds.
    created_at: i64,
    last_seen_at: i64,
    persistent: bool,
}

/// An audit event.
#[derive(Serialize, ToSchema)]
pub struct EventJson {
    id: i64,
    /// Unix seconds.
    at: i64,
    /// RFC 3339, UTC.
    time: String,
    /// `sign_in_failed`, `user_disabled`, …
    kind: String,
    /// "sign-in failed".
    what: String,
    /// A user id, or `cli`, `system`, `anonymous`.
    actor: String,
    /// The acting user's name, while they exist.
    actor_name: Option<String>,
    subject_id: Option<i64>,
    /// The subject's name when the event was written.
    subject_name: Option<String>,
    ip: Option<String>,
    client: Option<String>,
    /// Plain facts: the method, a reason, a provider, the name typed at a failed sign-in.
    #[schema(value_type = Object)]
    detail: serde_json::Map<String, serde_json::Value>,
}

fn event_json(e: &EventRecord, names: &std::collections::HashMap<i64, String>) -> EventJson {
    let actor_name = match Actor::parse(&e.actor) {
        Some(Actor::User(id)) => names.get(&id).cloned(),
        _ => None,
    };
    EventJson {
        id: e.id,
        at: e.at,
        time: rfc3339(e.at),
        kind: e.kind.clone(),
        what: EventKind::from_slug(&e.kind).map_or_else(|| e.kind.clone(), |k| k.words().to_owned()),
        actor: e.actor.clone(),
        actor_name,
        subject_id: e.subject_user_id,
        subject_name: e.subject_name.clone(),
        ip: e.ip.clone(),
        client: e.client.clone(),
        detail: serde_json::from_str(&e.detail).unwrap_or_default(),
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserDetailJson {
    user: UserJson,
    has_password: bool,
    identities: Vec<IdentityJson>,
    /// Live sessions, most recently active first.
    sessions: Vec<AdminSessionJson>,
    /// The latest events about the user, newest first.
    events: Vec<EventJson>,
}

async fn detail(auth: &Auth, overview: UserOverview) -> Result<UserDetailJson, ApiError> {
    let names = auth.actor_names(&overview.events).await?;
    Ok(UserDetailJson {
        user: (&overview.user).into(),
        has_password: overview.has_password,
        identities: overview
            .identities
            .into_iter()
            .map(|i| IdentityJson {
                provider: i.provider,
                subject: i.subject,
                email: i.email,
                linked_at: i.created_at,
            })
            .collect(),
        sessions: overview
            .sessions
            .into_iter()
            .map(|s| AdminSessionJson {
                id: s.id,
                method: s.method,
                client: s.client,
                ip: s.ip,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                persistent: s.persist,
            })
            .collect(),
        events: overview.events.iter().map(|e| event_json(e, &names)).collect(),
    })
}

/// One user: identities, live sessions and recent events.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_get_user",
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = UserDetailJson),
        SignedInErrors,
        NotAdmin,
        UserIdErrors,
    )
)]
#[get("/users/<id>")]
pub async fn user(id: i64, admin: Acting<'_>, auth: &State<Auth>) -> Result<Json<UserDetailJson>, ApiError> {
    let by = admin.by();
    let overview = auth.user_overview(&by, id).await?;
    Ok(Json(detail(auth, overview).await?))
}

/// What to change about a user: either or both.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChangeJson {
    /// Disabling ends every session of theirs.
    disabled: Option<bool>,
    admin: Option<bool>,
}

/// Disables or enables a user, makes them an administrator or not. Never the last enabled
/// administrator, and never disabling yourself (409).
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_change_user",
    params(("id" = i64, Path, description = "The user's id")),
    request_body = UserChangeJson,
    responses(
        (status = 200, description = "The user as changed", body = UserJson),
        SignedInErrors,
        NotAdminOrCrossSite,
        JsonBodyErrors,
        (status = 404, description = "No such user", body = ErrorJson),
        (status = 409, description = "The last administrator, or yourself", body = ErrorJson),
        (status = 422, description = "Unreadable fields, or an id that is not a number", body = ErrorJson),
    )
)]
#[patch("/users/<id>", data = "<body>")]
pub async fn change_user(
    id: i64,
    body: JsonObject<UserChangeJson>,
    _same_origin: SameOriginRequired,
    admin: Acting<'_>,
    auth: &State<Auth>,
) -> Result<Json<UserJson>, ApiError> {
    let by = admin.by();
    let mut user = None;
    if let Some(disabled) = body.disabled {
        user = Some(auth.set_user_disabled(&by, id, disabled).await?);
    }
    if let Some(admin) = body.admin {
        user = Some(auth.set_user_admin(&by, id, admin).await?);
    }
    let user = match user {
        Some(user) => user,
        None => auth.user_overview(&by, id).await?.user,
    };
    Ok(Json((&user).into()))
}

/// Deletes a user with their identities, sessions and links (not yourself; never the last
/// enabled administrator). The audit log keeps their events.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_delete_user",
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Deleted"),
        SignedInErrors,
        NotAdminOrCrossSite,
        UserIdErrors,
        (status = 409, description = "The last administrator, or yourself", body = ErrorJson),
    )
)]
#[delete("/users/<id>")]
pub async fn delete_user(
    id: i64,
    _same_origin: SameOriginRequired,
    admin: Acting<'_>,
    auth: &State<Auth>,
) -> Result<Status, ApiError> {
    let by = admin.by();
    auth.delete_user(&by, id).await?;
    Ok(Status::NoContent)
}

/// A new one-time password link for the user; their earlier links stop working.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_create_reset_link",
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 201, description = "The link (shown only here)", body = ResetLinkJson),
        SignedInErrors,
        NotAdminOrCrossSite,
        UserIdErrors,
    )
)]
#[post("/users/<id>/reset-link")]
pub async fn reset_link(
    id: i64,
    _same_origin: SameOriginRequired,
    admin: Acting<'_>,
    origin: SiteOrigin,
    auth: &State<Auth>,
) -> Result<(Status, Json<ResetLinkJson>), ApiError> {
    let by = admin.by();
    let (_, link) = auth.create_reset_link(&by, id).await?;
    Ok((
        Status::Created,
        Json(ResetLinkJson { url: link.url(origin.0.as_deref()), expires_at: link.expires_at }),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct EndedJson {
    /// How many sessions ended.
    ended: u64,
}

/// Signs a user out everywhere (not yourself: use `/api/sessions`).
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_end_sessions",
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Sessions ended", body = EndedJson),
        SignedInErrors,
        NotAdminOrCrossSite,
        UserIdErrors,
        (status = 409, description = "Your own account", body = ErrorJson),
    )
)]
#[delete("/users/<id>/sessions")]
pub async fn end_sessions(
    id: i64,
    uri: &Origin<'_>,
    _same_origin: SameOriginRequired,
    admin: Acting<'_>,
    auth: &State<Auth>,
) -> Result<Json<EndedJson>, ApiError> {
    // Rocket would route `…/sessions/` here too: a client that built `…/sessions/{id}` with
    // an empty id must not end every session.
    if uri.path().ends_with('/') {
        return Err(ApiError::status(Status::NotFound));
    }
    let by = admin.by();
    let ended = auth.end_user_sessions(&by, id, None).await?;
    Ok(Json(EndedJson { ended }))
}

/// What a reset of a user's second factors removed.
#[derive(Serialize, ToSchema)]
pub struct FactorsResetJson {
    /// Whether an authenticator app was removed.
    totp: bool,
    /// Passkeys removed.
    passkeys: u64,
    /// Unused recovery codes removed.
    recovery_codes: u64,
}

/// Removes every second factor of a user who lost them (app, passkeys, recovery codes):
/// audited, and the person is told at their next sign-in. Not your own account.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_reset_second_factor",
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 200, description = "What was removed", body = FactorsResetJson),
        SignedInErrors,
        NotAdminOrCrossSite,
        UserIdErrors,
        (status = 409, description = "Your own account", body = ErrorJson),
    )
)]
#[delete("/users/<id>/second-factor")]
pub async fn reset_second_factor(
    id: i64,
    _same_origin: SameOriginRequired,
    admin: Acting<'_>,
    auth: &State<Auth>,
) -> Result<Json<FactorsResetJson>, ApiError> {
    let by = admin.by();
    let removed = auth.reset_second_factor(&by, id).await?;
    Ok(Json(FactorsResetJson {
        totp: removed.totp,
        passkeys: removed.passkeys,
        recovery_codes: removed.recovery_codes,
    }))
}

/// Ends one session of a user: 204; an unknown or already ended one: 404.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_end_session",
    params(
        ("id" = i64, Path, description = "The user's id"),
        ("session" = String, Path, description = "The session's id"),
    ),
    responses(
        (status = 204, description = "Ended"),
        SignedInErrors,
        NotAdminOrCrossSite,
        (status = 404, description = "No such user or live session", body = ErrorJson),
        (status = 409, description = "Your own account", body = ErrorJson),
        (status = 422, description = "The id is not a number", body = ErrorJson),
    )
)]
#[delete("/users/<id>/sessions/<session>")]
pub async fn end_session(
    id: i64,
    session: &str,
    _same_origin: SameOriginRequired,
    admin: Acting<'_>,
    auth: &State<Auth>,
) -> Result<Status, ApiError> {
    let by = admin.by();
    match auth.end_user_sessions(&by, id, Some(session)).await? {
        0 => Err(ApiError::status(Status::NotFound)),
        _ => Ok(Status::NoContent),
    }
}

/// The audit log's query.
#[derive(FromForm, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// Events about this user (by name; a deleted user's by the name they had).
    #[param(max_length = 256)]
    user: Option<String>,
    /// One kind: `sign_in_failed`, `user_disabled`, …
    #[param(max_length = 256)]
    kind: Option<String>,
    /// From this time, Unix seconds (inclusive).
    #[param(value_type = Option<i64>)]
    since: Option<String>,
    /// Before this time, Unix seconds.
    #[param(value_type = Option<i64>)]
    until: Option<String>,
    /// Older than this cursor (a previous answer's `next`).
    #[param(max_length = 256)]
    before: Option<String>,
    /// Events per page, 1 to 100 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EventsJson {
    /// Newest first.
    events: Vec<EventJson>,
    /// Pass as `before` for older events; none when there are no more.
    next: Option<String>,
}

/// The audit log, newest first, filtered by user, kind and time.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_events",
    params(EventsParams),
    responses(
        (status = 200, description = "A page of events", body = EventsJson),
        SignedInErrors,
        NotAdmin,
        (status = 422, description = "A parameter is invalid, or given twice", body = ErrorJson),
    )
)]
#[get("/events?<params..>")]
pub async fn events(
    params: EventsParams,
    uri: &Origin<'_>,
    admin: Acting<'_>,
    auth: &State<Auth>,
) -> Result<Json<EventsJson>, ApiError> {
    once_each(uri)?;
    let text = QueryParams {
        user: params.user.as_deref(),
        kind: params.kind.as_deref(),
        since: params.since.as_deref(),
        until: params.until.as_deref(),
        before: params.before.as_deref(),
        limit: params.limit.as_deref(),
        ..QueryParams::default()
    };
    let query = EventsQuery::parse(text, QueryText::Api)?;
    let filter = auth.events_filter(&query).await?;
    let by = admin.by();
    let (events, next) = auth.find_events(&by, &filter).await?;
    let names = auth.actor_names(&events).await?;
    let next = next.map(|cursor| cursor.to_string());
    Ok(Json(EventsJson { events: events.iter().map(|e| event_json(e, &names)).collect(), next }))
}

/// An application (OpenID client) as the admin API shows one. Never its secret.
#[derive(Serialize, ToSchema)]
pub struct ClientJson {
    client_id: String,
    name: String,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    /// No secret; PKCE required.
    public: bool,
    /// `explicit` (a consent page) or `implicit`.
    consent: String,
    /// `"signed-in"`, `"admins"` or a list of usernames.
    #[schema(value_type = Value)]
    allow: serde_json::Value,
    second_factor: bool,
    /// `RS256` or `EdDSA`.
    signing_alg: String,
    /// From the configuration file: read-only here.
    configured: bool,
}

impl From<&crate::auth::provider::Client> for ClientJson {
    fn from(c: &crate::auth::provider::Client) -> ClientJson {
        ClientJson {
            client_id: c.id.clone(),
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            public: c.public,
            consent: match c.consent {
                crate::config::ConsentMode::Explicit => "explicit".into(),
                crate::config::ConsentMode::Implicit => "implicit".into(),
            },
            allow: serde_json::to_value(&c.allow_settings).unwrap_or(serde_json::Value::Null),
            second_factor: c.second_factor,
            signing_alg: c.signing_alg.name().into(),
            configured: c.configured,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ClientsJson {
    clients: Vec<ClientJson>,
}

/// Every application: the configuration file's, then those added here.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_list_clients",
    responses((status = 200, description = "The applications", body = ClientsJson), SignedInErrors, NotAdmin)
)]
#[get("/clients")]
pub async fn clients(admin: Acting<'_>, auth: &State<Auth>) -> Result<Json<ClientsJson>, ApiError> {
    let by = admin.by();
    let clients = auth.list_clients(&by).await?;
    Ok(Json(ClientsJson { clients: clients.iter().map(ClientJson::from).collect() }))
}

/// A new application.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientJson {
    /// 1 to 64 of `A-Z a-z 0-9 . _ -`.
    client_id: String,
    name: Option<String>,
    /// Absolute: https, http on a loopback host, or a native app's private-use scheme.
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    public: bool,
    /// `explicit` (the default) or `implicit`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    consent: crate::config::ConsentMode,
    /// `"signed-in"` (the default), `"admins"` or a list of usernames.
    #[serde(default)]
    #[schema(value_type = Option<Value>)]
    allow: crate::config::AllowSettings,
    #[serde(default)]
    second_factor: bool,
    /// `RS256` (the default) or `EdDSA`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    signing_alg: crate::config::SigningAlg,
}

/// An application and its secret, shown only in this answer.
#[derive(Serialize, ToSchema)]
pub struct CreatedClientJson {
    client: ClientJson,
    /// None for a public client.
    client_secret: Option<String>,
}

/// Adds an application; a confidential one's secret is in this answer only.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_create_client",
    request_body = NewClientJson,
    responses(
        (status = 201, description = "Added", body = CreatedClientJson),
        SignedInErrors,
        NotAdminOrCrossSite,
        JsonBodyErrors,
        (status = 409, description = "The client id is taken", body = ErrorJson),
        (status = 422, description = "An invalid id, URI or rule", body = ErrorJson),
    )
)]
#[post("/clients", data = "<body>")]
pub async fn create_client(
    body: JsonObject<NewClientJson>,
    _same_origin: SameOriginRequired,
    admin: Acting<'_>,
    auth: &State<Auth>,
) -> Result<(Status, Json<CreatedClientJson>), ApiError> {
    let by = admin.by();
    let body = body.0;
    let new = crate::auth::provider::NewClient {
        client_id: body.client_id,
        name: body.name,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        public: body.public,
        consent: body.consent,
        allow: body.allow,
        second_factor: body.second_factor,
        signing_alg: body.signing_alg,
    };
    let (client, client_secret) = auth.add_client(&by, new).await?;
    Ok((Status::Created, Json(CreatedClientJson { client: (&client).into(), client_secret })))
}

#[derive(Serialize, ToSchema)]
pub struct SecretJson {
    client_secret: String,
}

/// A new secret for an application added here (the old one stops working at once).
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_rotate_client_secret",
    params(("client_id" = String, Path, description = "The client id")),
    responses(
        (status = 200, description = "The new secret, shown once", body = SecretJson),
        SignedInErrors,
        NotAdminOrCrossSite,
        (status = 404, description = "No such application", body = ErrorJson),
        (status = 409, description = "A configured or public application", body = ErrorJson),
    )
)]
#[post("/clients/<client_id>/secret")]
pub async fn rotate_client_secret(
    client_id: &str,
    _same_origin: SameOriginRequired,
    admin: Acting<'_>,
    auth: &State<Auth>,
) -> Result<Json<SecretJson>, ApiError> {
    let by = admin.by();
    let client_secret = auth.rotate_client_secret(&by, client_id).await?;
    Ok(Json(SecretJson { client_secret }))
}

/// Removes an application added here, with every consent and token it holds.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_remove_client",
    params(("client_id" = String, Path, description = "The client id")),
    responses(
        (status = 204, description = "Removed"),
        SignedInErrors,
        NotAdminOrCrossSite,
        (status = 404, description = "No such application", body = ErrorJson),
        (status = 409, description = "A configured application", body = ErrorJson),
    )
)]
#[delete("/clients/<client_id>")]
pub async fn remove_client(
    client_id: &str,
    _same_origin: SameOriginRequired,
    admin: Acting<'_>,
    auth: &State<Auth>,
) -> Result<Status, ApiError> {
    let by = admin.by();
    auth.remove_client(&by, client_id).await?;
    Ok(Status::NoContent)
}

/// Where [`routes`] are mounted.
pub const BASE: &str = "/api/admin";

documented_routes!(
    users,
    create_user,
    user,
    change_user,
    delete_user,
    reset_link,
    reset_second_factor,
    end_sessions,
    end_session,
    events,
    clients,
    create_client,
    rotate_client_secret,
    remove_client
);
