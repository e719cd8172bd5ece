//! The JSON side of the web layer: errors as `{"error": "…"}` with their status (never an
//! HTML page or a redirect), and the sets of them the OpenAPI document lists; the catchers
//! under `/api` (`routes::catchers`) say the same.

use std::borrow::Cow;

use rocket::data::{self, Data, FromData, Limits};
use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::serde::json::{json, Json, Value};
use rocket::Request;
use serde::de::{DeserializeOwned, Error as _, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Map;
use utoipa::{IntoResponses, ToSchema};

use crate::auth::admin::{AdminError, QueryError};
use crate::auth::AuthError;
use crate::web::error::{admin_status, status_of};

/// A JSON error: `{"error": message}` with `status`.
#[derive(Debug)]
pub struct ApiError(pub Status, pub Cow<'static, str>);

/// An error: `{"error": "…"}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorJson {
    error: String,
}

// The error statuses routes share, for their `#[utoipa::path(responses(…))]`, as kanidm's
// `apidocs/response_schema.rs` keeps them: a route lists the sets that apply, then its own
// rows. Nothing builds these values; they only describe what `ApiError` answers.

/// 401 and 503: every route that needs a session.
#[derive(IntoResponses)]
pub enum SignedInErrors {
    #[response(status = 401, description = "Not signed in")]
    NotSignedIn(ErrorJson),
    #[response(status = 503, description = "The store is busy")]
    Busy(ErrorJson),
}

/// 403 on a read of `/api/admin`.
#[derive(IntoResponses)]
#[response(status = 403, description = "Not an administrator")]
pub struct NotAdmin(pub ErrorJson);

/// 403 on a change through `/api/admin`, which must also be same-origin.
#[derive(IntoResponses)]
#[response(status = 403, description = "Not an administrator, or not same-origin")]
pub struct NotAdminOrCrossSite(pub ErrorJson);

/// 404 and 422 on `/api/admin/users/{id}…`.
#[derive(IntoResponses)]
pub enum UserIdErrors {
    #[response(status = 404, description = "No such user")]
    NoSuchUser(ErrorJson),
    #[response(status = 422, description = "The id is not a number")]
    NotANumber(ErrorJson),
}

/// What [`JsonObject`] refuses before the route sees the body (its 422 is the route's own
/// row, which says what else it refuses).
#[derive(IntoResponses)]
pub enum JsonBodyErrors {
    #[response(status = 400, description = "The body is not JSON, or names a key twice")]
    NotJson(ErrorJson),
    #[response(status = 413, description = "Too large")]
    TooLarge(ErrorJson),
    #[response(status = 415, description = "Not sent as application/json")]
    NotJsonMediaType(ErrorJson),
}

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

impl From<QueryError> for ApiError {
    /// 422 with the refusal's own words.
    fn from(error: QueryError) -> ApiError {
        ApiError(Status::UnprocessableEntity, error.to_string().into())
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        (self.0, Json(json!({ "error": self.1 }))).respond_to(request)
    }
}

/// The one way a JSON body comes into `/api`: an object, read into `T`, from a request that
/// says it is JSON. Refused, before `T` sees it, with
/// - 415 without `Content-Type: application/json`: Rocket's `Json` reads any body, and a
///   browser sends `text/plain` cross-site without a preflight, so the media type is what
///   keeps a cross-site form post from being read as JSON;
/// - 400 when it is not JSON, or an object in it names a key twice (`{"admin":false,
///   "admin":true}`): parsers disagree on which one wins, so neither does;
/// - 413 over `limits.json`;
/// - 422 when it is not an object (`Json<T>` would read a struct from an array of its fields
///   in order, a shape the OpenAPI document does not allow) or has fields `T` does not take.
///
/// The `/api` catcher answers each in JSON.
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
        let refuse = |status: Status, why: String| data::Outcome::Error((status, why));
        if !request.content_type().is_some_and(|t| t.is_json()) {
            return refuse(Status::UnsupportedMediaType, "the body is not application/json".into());
        }
        let limit = request.limits().get("json").unwrap_or(Limits::JSON);
        let text = match data.open(limit).into_string().await {
            Ok(text) if text.is_complete() => text.into_inner(),
            Ok(_) => return refuse(Status::PayloadTooLarge, "the body is over limits.json".into()),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return refuse(Status::BadRequest, "the body is not UTF-8".into())
            }
            Err(e) => return refuse(Status::BadRequest, e.to_string()),
        };
        let object = match serde_json::from_str::<UniqueKeys>(&text) {
            Ok(UniqueKeys(Value::Object(object))) => object,
            Ok(_) => return refuse(Status::UnprocessableEntity, "the body is not an object".into()),
            Err(e) => return refuse(Status::BadRequest, e.to_string()),
        };
        match serde_json::from_value(Value::Object(object)) {
            Ok(value) => data::Outcome::Success(JsonObject(value)),
            Err(e) => refuse(Status::UnprocessableEntity, e.to_string()),
        }
    }
}

/// A JSON value in which no object names a key twice (at any depth); a repeated key is a
/// parse error.
struct UniqueKeys(Value);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<UniqueKeys, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor).map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        UniqueKeys::deserialize(deserializer).map(|v| v.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let UniqueKeys(value) = map.next_value()?;
            if object.contains_key(&key) {
                return Err(A::Error::custom(format_args!("the key {key:?} is given twice")));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
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

#[cfg(test)]
mod tests {
    use super::UniqueKeys;

    fn parse(text: &str) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str::<UniqueKeys>(text).map(|v| v.0)
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth() {
        assert!(parse(r#"{"admin":false,"admin":true}"#).is_err());
        assert!(parse(r#"{"a":{"b":1,"b":2}}"#).is_err());
        assert!(parse(r#"[{"b":1},{"c":[{"d":1,"d":1}]}]"#).is_err());
        // Keys equal only after escapes are decoded are the same key.
        assert!(parse(r#"{"admin":false,"\u0061dmin":true}"#).is_err());
    }

    #[test]
    fn values_read_as_serde_json_reads_them() {
        let text = r#"{"a":[1,-2,3.5,"x",null,true],"b":{"c":18446744073709551615},"d":"é\n"}"#;
        assert_eq!(parse(text).unwrap(), serde_json::from_str::<serde_json::Value>(text).unwrap());
        assert!(parse("{").is_err());
    }
}
