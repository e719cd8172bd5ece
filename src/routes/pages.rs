//! The public and protected pages, the stylesheet, and the error page.

use rocket::get;
use rocket::http::{Header, Status};
use rocket::Responder;

use crate::auth::guard::LoggedIn;
use crate::csrf::CsrfToken;
use crate::flash::Flash;
use crate::views::{self, Html, Layout};

#[get("/")]
pub fn index(me: Option<&LoggedIn>, flash: Option<Flash>, csrf: CsrfToken) -> Html {
    let layout = Layout { me: me.map(LoggedIn::user), csrf: csrf.value(), flash: flash.as_ref() };
    Html::of(&views::Index { layout })
}

#[get("/welcome")]
pub fn welcome(me: &LoggedIn, flash: Option<Flash>, csrf: CsrfToken) -> Html {
    let layout = Layout { me: Some(me.user()), csrf: csrf.value(), flash: flash.as_ref() };
    Html::of(&views::Welcome { layout, me: me.user(), method: me.method().as_str() })
}

#[derive(Responder)]
#[response(content_type = "text/css")]
pub struct Stylesheet(&'static str, Header<'static>);

#[get("/static/portal.css")]
pub fn stylesheet() -> Stylesheet {
    Stylesheet(include_str!("../../static/portal.css"), Header::new("Cache-Control", "public, max-age=3600"))
}

/// What a person is told for each error status: no internals, ever.
fn explain(status: Status) -> &'static str {
    match status.code {
        400 => "The request could not be understood.",
        403 => {
            "That request was refused. If you were submitting a form, go back, reload the page and try again."
        }
        404 => "There is no page at this address.",
        405 => "That action is not available here.",
        413 => "That was more than the portal accepts.",
        415 => "The portal only accepts form submissions here.",
        422 => "Some of what was sent could not be read.",
        429 => "Too many attempts. Wait a moment, then try again.",
        503 => "The portal is busy. Please try again in a moment.",
        500..=599 => "Something went wrong on our side. Please try again.",
        _ => "That did not work.",
    }
}

/// The error page, in the site layout.
pub fn error_page(status: Status) -> (Status, Html) {
    message_page(status, explain(status))
}

/// The error page with a message of the caller's.
pub fn message_page(status: Status, message: &str) -> (Status, Html) {
    let title = status.reason().unwrap_or("Error");
    let page = views::ErrorPage { layout: Layout::anonymous(), code: status.code, title, message };
    (status, Html::of(&page))
}
