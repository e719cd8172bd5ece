//! The JSON side of the web layer: errors as `{"error": "…"}` with their status (never an
//! HTML page or a redirect), and the catchers mounted under `/api`.

use std::borrow::Cow;

use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::serde::json::{json, Json, Value};
use rocket::{catch, catchers, Catcher, Request};

use crate::auth::admin::AdminError;
use crate::auth::AuthError;
use crate::web::error::{admin_status, status_of};

/// A JSON error: `{"error": message}` with `status`.
#[derive(Debug)]
pub struct ApiError(pub Status, pub Cow<'static, str>);

impl ApiError {
    /// The status's own message (see [`message`]).
    pub fn status(status: Status) -> ApiError {
        ApiError(status, message(status).into())
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        let status = status_of(&error);
        if status.code >= 500 {
            log::error!("api: {error}");
        }
        ApiError::status(status)
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> ApiError {
        match error {
            AdminError::Failed(e) => e.into(),
            AdminError::NotAdmin => ApiError::status(Status::Forbidden),
            AdminError::NoSuchUser => ApiError::status(Status::NotFound),
            other => ApiError(admin_status(&other), other.to_string().into()),
        }
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        (self.0, Json(json!({ "error": self.1 }))).respond_to(request)
    }
}

/// What an API client is told for each error status: no internals.
pub fn message(status: Status) -> &'static str {
    match status.code {
        400 => "bad request",
        401 => "not signed in",
        403 => "forbidden",
        404 => "not found",
        405 => "method not allowed",
        409 => "conflict",
        413 => "too large",
        415 => "unsupported media type",
        422 => "unprocessable request",
        429 => "too many attempts",
        503 => "unavailable, try again shortly",
        500..=599 => "internal error",
        _ => "error",
    }
}

pub fn catchers() -> Vec<Catcher> {
    catchers![api_default]
}

#[catch(default)]
fn api_default(status: Status, _: &Request<'_>) -> (Status, Json<Value>) {
    (status, Json(json!({ "error": message(status) })))
}
