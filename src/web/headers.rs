//! Security headers on every response, error pages included.

use std::sync::{LazyLock, OnceLock};

use rocket::fairing::{self, Fairing, Info};
use rocket::http::Header;
use rocket::shield::Shield;
use rocket::{Build, Request, Response, Rocket};

/// Rocket attaches a default `Shield` unless one is attached; this one adds nothing, since
/// [`Defaults`] sets the same headers for less (Rocket's header map hashes each name byte by
/// byte, case-folded, and `Shield` looks every header up before setting it: a sixth of an
/// in-process `GET /login`).
pub fn shield() -> Shield {
    Shield::new()
}

/// Set on every response; no route sets its own, so they are not looked up first. What
/// `Shield::default()` with `Frame::Deny` and `Referrer::SameOrigin` sends, less its
/// `Permissions-Policy: interest-cohort=()`: FLoC is gone from every browser, Chromium
/// logs "Unrecognized feature: 'interest-cohort'" on each page that sends it, and every
/// header costs each response about 2,500 instructions (Rocket's header map hashes the
/// name byte by byte, then hyper's takes it again).
const ALWAYS: [(&str, &str); 3] =
    [("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"), ("Referrer-Policy", "same-origin")];

/// The Content-Security-Policy: no inline script, nothing from elsewhere, and forms that
/// only submit to `form_action` (`'self'` plus, on the account page, the providers' sign-in
/// pages, since Chromium applies `form-action` to the redirect after a form's POST).
pub fn content_security_policy(form_action: &str) -> Header<'static> {
    Header::new("Content-Security-Policy", csp(form_action))
}

fn csp(form_action: &str) -> String {
    format!(
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; \
         form-action {form_action}; base-uri 'none'; object-src 'none'"
    )
}

/// The policy of every page but the account page, built once so that no response has to.
static DEFAULT_CSP: LazyLock<String> = LazyLock::new(|| csp("'self'"));

/// A page whose forms may end up at an application's URL (`rd`): the form is posted to the
/// portal, but Chromium applies `form-action` to the redirect that follows too, so the
/// page's CSP names that URL's origin (already checked against `allowed_domains`).
pub struct FormsTo<R>(pub R, pub Option<String>);

impl<'r, R: rocket::response::Responder<'r, 'static>> rocket::response::Responder<'r, 'static>
    for FormsTo<R>
{
    fn respond_to(self, request: &'r Request<'_>) -> rocket::response::Result<'static> {
        let mut response = self.0.respond_to(request)?;
        let origin = self
            .1
            .as_deref()
            .and_then(|url| url::Url::parse(url).ok())
            .map(|u| u.origin().ascii_serialization());
        if let Some(origin) = origin {
            response.set_header(content_security_policy(&format!("'self' {origin}")));
        }
        Ok(response)
    }
}

/// Two years, subdomains included: what the HSTS preload list asks for.
const HSTS: &str = "max-age=63072000; includeSubDomains";

/// The [`ALWAYS`] headers on every response, error pages included; and, where the response
/// did not set its own, the strict CSP and `Cache-Control: no-store`, since pages show or
/// change sign-in state (this is also what stops the back button from showing a page after
/// logout). The stylesheet sets its own caching; the account page its own CSP. With
/// `hsts = true`, `Strict-Transport-Security` too (read once, at ignition).
#[derive(Default)]
pub struct Defaults {
    hsts: OnceLock<bool>,
}

#[rocket::async_trait]
impl Fairing for Defaults {
    fn info(&self) -> Info {
        Info { name: "security headers", kind: fairing::Kind::Ignite | fairing::Kind::Response }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        let hsts = rocket.figment().extract_inner::<bool>("hsts").unwrap_or(false);
        let _ = self.hsts.set(hsts);
        Ok(rocket)
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        // A forward-auth answer without a body (200, 401) is read by a proxy, never
        // rendered: it needs no page headers, and the check runs on every request of every
        // gated application. Its 403 page and 302 get them all.
        if matches!(response.status().code, 200 | 401) && request.uri().path().starts_with("/authz/") {
            response.set_header(Header::new("Cache-Control", "no-store"));
            return;
        }
        for (name, value) in ALWAYS {
            response.set_header(Header::new(name, value));
        }
        if self.hsts.get() == Some(&true) {
            response.set_header(Header::new("Strict-Transport-Security", HSTS));
        }
        // One look at the few headers the response has, rather than two lookups in Rocket's
        // map (each hashes the name byte by byte).
        let (mut csp, mut caching) = (false, false);
        for header in response.headers().iter() {
            csp |= header.name() == "Content-Security-Policy";
            caching |= header.name() == "Cache-Control";
        }
        if !csp {
            response.set_header(Header::new("Content-Security-Policy", DEFAULT_CSP.as_str()));
        }
        if !caching {
            response.set_header(Header::new("Cache-Control", "no-store"));
        }
    }
}
