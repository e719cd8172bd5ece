//! Security headers on every response, error pages included.

use rocket::fairing::{self, Fairing, Info};
use rocket::http::Header;
use rocket::shield::{Frame, NoSniff, Policy, Referrer, Shield};
use rocket::{Request, Response};

/// A Content-Security-Policy that allows no inline script and nothing from elsewhere.
#[derive(Default)]
struct ContentSecurityPolicy;

impl Policy for ContentSecurityPolicy {
    const NAME: &'static str = "Content-Security-Policy";

    fn header(&self) -> Header<'static> {
        Header::new(
            Self::NAME,
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; \
             form-action 'self'; base-uri 'none'; object-src 'none'",
        )
    }
}

pub fn shield() -> Shield {
    Shield::default()
        .enable(Frame::Deny)
        .enable(NoSniff::Enable)
        .enable(Referrer::SameOrigin)
        .enable(ContentSecurityPolicy)
}

/// Pages show or change sign-in state, so none may be stored by the browser or a proxy
/// (this is also what stops the back button from showing a page after logout). A
/// response that set its own `Cache-Control` (the stylesheet) keeps it.
pub struct NoStore;

#[rocket::async_trait]
impl Fairing for NoStore {
    fn info(&self) -> Info {
        Info { name: "Cache-Control: no-store", kind: fairing::Kind::Response }
    }

    async fn on_response<'r>(&self, _: &'r Request<'_>, response: &mut Response<'r>) {
        if !response.headers().contains("Cache-Control") {
            response.set_header(Header::new("Cache-Control", "no-store"));
        }
    }
}
