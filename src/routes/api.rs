//! `/api`: the signed-in person and their sessions as JSON, for scripts and single-page
//! apps. Errors are JSON too (`{"error": …}`); without a session, 401, never a redirect.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{delete, get, State};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::web::api::{ApiError, ErrorJson, SignedInErrors};
use crate::web::csrf::SameOriginRequired;
use crate::web::guard::LoggedIn;

/// The signed-in person.
#[derive(Serialize, ToSchema)]
pub struct Me {
    id: i64,
    username: String,
    email: Option<String>,
    /// Whether `email` is verified (a link sent to it was followed, a provider said so, or
    /// an administrator set it while the portal sends no mail).
    email_verified: bool,
    admin: bool,
    /// How this session signed in: `password`, `passkey`, or a provider's slug (`google`, `github`, `gitlab`…).
    method: String,
    /// Every method this session was made with: `pwd`, `otp`, `recovery`, `passkey`, or a
    /// provider's slug.
    methods: Vec<String>,
    /// The session's assurance level: 1, or 2 with a second factor (or a passkey with user
    /// verification).
    aal: i64,
    /// Whether the person has a second factor (an authenticator app or a passkey).
    second_factor: bool,
    /// The providers linked to the account.
    providers: Vec<String>,
}

/// The signed-in person: who they are, how this session signed in, their providers.
#[utoipa::path(
    tag = "me",
    responses(
        (status = 200, description = "The signed-in person", body = Me),
        SignedInErrors,
    )
)]
#[get("/me")]
pub async fn me(me: &LoggedIn, auth: &State<Auth>) -> Result<Json<Me>, ApiError> {
    let user = me.user();
    let (identities, factors) = auth.identities_and_factors(user).await?;
    Ok(Json(Me {
        id: user.id,
        username: user.username.clone(),
        email: user.email.clone(),
        email_verified: user.email_verified,
        admin: user.is_admin,
        method: me.session().method.clone(),
        methods: me.session().methods.split(' ').map(str::to_owned).collect(),
        aal: me.session().aal,
        second_factor: factors.any(),
        providers: identities.into_iter().map(|i| i.provider).collect(),
    }))
}

/// The person's live sessions.
#[derive(Serialize, ToSchema)]
pub struct Sessions {
    sessions: Vec<SessionJson>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionJson {
    id: String,
    current: bool,
    method: String,
    /// Every method the session was made with (`pwd otp`), as for `/api/me`.
    methods: Vec<String>,
    /// Its assurance level: 1 or 2.
    aal: i64,
    /// The browser, as a person would name it ("Firefox on Linux").
    client: String,
    ip: Option<String>,
    /// Unix seconds.
    created_at: i64,
    last_seen_at: i64,
    /// "Keep me signed in".
    persistent: bool,
}

/// Where the person is signed in, most recently active first.
#[utoipa::path(
    tag = "me",
    responses(
        (status = 200, description = "Live sessions", body = Sessions),
        SignedInErrors,
    )
)]
#[get("/sessions")]
pub async fn sessions(me: &LoggedIn, auth: &State<Auth>) -> Result<Json<Sessions>, ApiError> {
    let current = me.session_id();
    let sessions = auth.sessions(me.user()).await?;
    let sessions = sessions
        .into_iter()
        .map(|s| SessionJson {
            current: s.id == current,
            id: s.id,
            method: s.method,
            methods: s.methods.split(' ').map(str::to_owned).collect(),
            aal: s.aal,
            client: s.client,
            ip: s.ip,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            persistent: s.persist,
        })
        .collect();
    Ok(Json(Sessions { sessions }))
}

/// Ends one of the person's own sessions (this one included): 204; another person's, a
/// made-up or an already ended id: 404, and nothing ends.
#[utoipa::path(
    tag = "me",
    params(("id" = String, Path, description = "The session's id")),
    responses(
        (status = 204, description = "Ended"),
        SignedInErrors,
        (status = 403, description = "Not same-origin", body = ErrorJson),
        (status = 404, description = "Not a live session of yours", body = ErrorJson),
    )
)]
#[delete("/sessions/<id>")]
pub async fn end_session(
    id: &str,
    _same_origin: SameOriginRequired,
    me: &LoggedIn,
    auth: &State<Auth>,
) -> Result<Status, ApiError> {
    if auth.end_session(me.user(), id).await? {
        Ok(Status::NoContent)
    } else {
        Err(ApiError::status(Status::NotFound))
    }
}

/// Where [`routes`] are mounted.
pub const BASE: &str = "/api";

documented_routes!(me, sessions, end_session);
