//! The catchers, handlers like the routes: on pages, 401 becomes a trip to the login page
//! and everything else an error page in the site layout; under `/api`, every error is
//! `{"error": "…"}` with its status (a forwarded 401 included: the longer base wins).

use rocket::http::{RawStr, Status};
use rocket::response::Redirect;
use rocket::serde::json::{json, Json, Value};
use rocket::{catch, catchers, uri, Catcher, Request};

use crate::auth::next::safe_next;
use crate::routes::login::rocket_uri_macro_login_page;
use crate::web::api::message;
use crate::web::cookies::Jar;
use crate::web::flash::Kind;
use crate::web::pages::error_page;
use crate::web::render::Page;

/// The catchers of pages, registered at `/`.
pub fn catchers() -> Vec<Catcher> {
    catchers![unauthorized, default]
}

/// The catchers of `/api`, registered there.
pub fn api_catchers() -> Vec<Catcher> {
    catchers![api_default]
}

/// A protected page without a valid session: back to the login page, which says why and
/// returns here afterwards.
#[catch(401)]
fn unauthorized(request: &Request<'_>) -> Redirect {
    let jar = Jar::of(request);
    if jar.has_session() {
        // The guard found it stale; cookies set before a catcher runs are discarded, so
        // clear it here.
        jar.end_session();
    }
    jar.flash(Kind::Info, "You need to log in first.");
    let here = request.uri().to_string();
    match safe_next(&here) {
        Some(next) if !request.method().supports_payload() => {
            Redirect::to(format!("/login?next={}", RawStr::new(next).percent_encode()))
        }
        _ => Redirect::to(uri!(login_page(_, _))),
    }
}

#[catch(default)]
fn default(status: Status, request: &Request<'_>) -> (Status, Page) {
    error_page(request, status)
}

#[catch(default)]
fn api_default(status: Status, _: &Request<'_>) -> (Status, Json<Value>) {
    (status, Json(json!({ "error": message(status) })))
}
