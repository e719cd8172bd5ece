//! Error responses: 401 becomes a trip to the login page; everything else an error page in
//! the site layout.

use rocket::http::{RawStr, Status};
use rocket::response::Redirect;
use rocket::{catch, catchers, Catcher, Request};

use crate::auth::next::safe_next;
use crate::auth::session::{Session, SESSION_COOKIE};
use crate::cookies::Jar;
use crate::flash::Kind;
use crate::routes::pages::error_page;
use crate::views::Html;

pub fn catchers() -> Vec<Catcher> {
    catchers![unauthorized, default]
}

/// A protected page without a valid session: back to the login page, which says why and
/// returns here afterwards.
#[catch(401)]
fn unauthorized(request: &Request<'_>) -> Redirect {
    let jar = Jar::of(request);
    if jar.has(SESSION_COOKIE) {
        // The guard found it stale; cookies set before a catcher runs are discarded, so
        // clear it here.
        Session::end(&jar);
    }
    jar.flash(Kind::Info, "You need to log in first.");
    let here = request.uri().to_string();
    match safe_next(&here) {
        Some(next) if !request.method().supports_payload() => {
            Redirect::to(format!("/login?next={}", RawStr::new(next).percent_encode()))
        }
        _ => Redirect::to("/login"),
    }
}

#[catch(default)]
fn default(status: Status, _: &Request<'_>) -> (Status, Html) {
    error_page(status)
}
