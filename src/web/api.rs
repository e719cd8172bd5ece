//! The JSON side of the web layer: errors as `{"error": "…"}` with their status (never an
//! HTML page or a redirect), and the catchers mounted under `/api`.

use std::borrow::Cow;

use rocket::data::{self, Data, FromData};
use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::serde::json::{json, Json, Value};
use rocket::{catch, catchers, Catcher, Request};
use serde::de::DeserializeOwned;
use serde_json::Map;

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

/// A JSON body that must be an object, read into `T`. `Json<T>` alone would also read a
/// struct from an array of its fields in order (`[true, null]`), a shape the OpenAPI document
/// does not allow. Refused as `Json` refuses: 400 (not JSON), 413 (over `limits.json`), 422
/// (not an object, or fields `T` does not take); the `/api` catcher answers in JSON.
pub struct JsonObject<T>(pub T);

impl<T> std::ops::Deref for JsonObject<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

#[rocket::async_trait]
impl<'r, T: DeserializeOwned + Send> FromData<'r> for JsonObject<T> {
    type Error = String;

    async fn from_data(request: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let object = match Json::<Map<String, Value>>::from_data(request, data).await {
            data::Outcome::Success(Json(object)) => object,
            data::Outcome::Error((status, e)) => return data::Outcome::Error((status, e.to_string())),
            data::Outcome::Forward(forward) => return data::Outcome::Forward(forward),
        };
        match serde_json::from_value(Value::Object(object)) {
            Ok(value) => data::Outcome::Success(JsonObject(value)),
            Err(e) => data::Outcome::Error((Status::UnprocessableEntity, e.to_string())),
        }
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
