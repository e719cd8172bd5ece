//! The pages, as templates compiled into the binary (askama): the markup lives in
//! `templates/`, is checked against these structs at build time, and every value is escaped
//! for HTML unless a template says otherwise (none does).

use askama::Template;
use rocket::http::{ContentType, Status};
use rocket::response::{self, Responder};
use rocket::Request;

use crate::flash::Flash;
use crate::store::User;

/// What the layout around every page shows: who is signed in (the top bar, with the logout
/// form and its CSRF token) and a flash message.
pub struct Layout<'a> {
    pub me: Option<&'a User>,
    pub csrf: &'a str,
    pub flash: Option<&'a Flash>,
}

impl Layout<'static> {
    /// The layout of a page for nobody in particular: error pages.
    pub fn anonymous() -> Layout<'static> {
        Layout { me: None, csrf: "", flash: None }
    }
}

#[derive(Template)]
#[template(path = "index.html")]
pub struct Index<'a> {
    pub layout: Layout<'a>,
}

#[derive(Template)]
#[template(path = "welcome.html")]
pub struct Welcome<'a> {
    pub layout: Layout<'a>,
    pub me: &'a User,
    pub method: &'a str,
}

/// A "Sign in with …" button.
pub struct ProviderButton {
    pub slug: &'static str,
    pub name: &'static str,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct Login<'a> {
    pub layout: Layout<'a>,
    pub error: Option<&'a str>,
    pub username: &'a str,
    pub next: Option<&'a str>,
    pub providers: Vec<ProviderButton>,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct Logout<'a> {
    pub layout: Layout<'a>,
    pub me: &'a User,
}

/// A provider on the account page, linked or not.
pub struct ProviderRow {
    pub slug: &'static str,
    pub name: &'static str,
    /// The linked identity's email (or subject), when linked.
    pub linked_as: Option<String>,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct Account<'a> {
    pub layout: Layout<'a>,
    pub me: &'a User,
    pub has_password: bool,
    pub providers: Vec<ProviderRow>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub layout: Layout<'static>,
    pub code: u16,
    pub title: &'a str,
    pub message: &'a str,
}

/// A rendered page, answered as `text/html; charset=utf-8`.
pub struct Html(Result<String, askama::Error>);

impl Html {
    pub fn of(page: &impl Template) -> Html {
        Html(page.render())
    }
}

impl<'r> Responder<'r, 'static> for Html {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        match self.0 {
            Ok(html) => (ContentType::HTML, html).respond_to(request),
            // Rendering fails only if a value's Display does; say so, and let the 500
            // catcher answer.
            Err(e) => {
                log::error!("a page could not be rendered: {e}");
                Err(Status::InternalServerError)
            }
        }
    }
}
