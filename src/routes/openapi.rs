//! `/api/openapi.json`: the OpenAPI document of `/api`, generated from the handlers'
//! `#[utoipa::path]` annotations, which read each path and its parameters from the Rocket
//! route attribute beneath them; the list of handlers is each module's `routes()`
//! (`documented_routes!`), nested at the module's base. `tests/api/openapi.rs` checks that
//! it lists exactly the `/api` routes that are mounted, and `.ci/run` runs schemathesis
//! against it.

use rocket::get;
use rocket::http::ContentType;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{admin_api, api};

#[derive(OpenApi)]
#[openapi(
    info(title = "Portal API", description = "The signed-in person, their sessions, and the admin console's operations. \
        Authentication is the browser's session cookie; changes must be same-origin (an `Origin` or \
        `Sec-Fetch-Site: same-origin` header)."),
    modifiers(&SessionCookie),
    security(("session" = []))
)]
pub struct ApiDoc;

/// The session cookie as the security scheme (its name without the `__Host-` prefix).
struct SessionCookie;

impl Modify for SessionCookie {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let cookie = ApiKey::Cookie(ApiKeyValue::with_description(
            "portal_session",
            "The session cookie a sign-in sets (`__Host-portal_session` behind TLS).",
        ));
        components.add_security_scheme("session", SecurityScheme::ApiKey(cookie));
    }
}

/// The whole document: the paths of each `/api` module's `routes()` (their `Paths`), at
/// the base it is mounted at.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
        .nest(BASE, Paths::openapi())
        .nest(api::BASE, api::Paths::openapi())
        .nest(admin_api::BASE, admin_api::Paths::openapi())
}

/// The document, built once.
static DOCUMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
});

/// This document.
#[utoipa::path(tag = "meta", operation_id = "openapi", security(()), responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
#[get("/openapi.json")]
pub fn document() -> (ContentType, &'static str) {
    (ContentType::JSON, DOCUMENT.as_str())
}

/// Where [`routes`] are mounted.
pub const BASE: &str = "/api";

documented_routes!(document);
