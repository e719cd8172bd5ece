//! Cross-site request defences for state-changing forms: a same-origin check on the
//! browser's `Sec-Fetch-Site` / `Origin` headers, and a token bound to a private cookie for
//! browsers that send neither. [`Checked`] is the data guard that does both for a form.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rocket::data::{Data, FromData, Outcome as DataOutcome};
use rocket::form::{Form, FromForm};
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use subtle::ConstantTimeEq;

use crate::config::Settings;
use crate::web::cookies::{CookieName, Jar};

pub const CSRF_COOKIE: CookieName = CookieName::new("portal_csrf", "__Host-portal_csrf");

/// The token that forms on this page carry in their `csrf_token` field.
pub struct CsrfToken(String);

impl CsrfToken {
    pub fn value(&self) -> &str {
        &self.0
    }

    /// Whether a submitted token is this browser's, compared in constant time.
    pub fn matches(&self, submitted: Option<&str>) -> bool {
        submitted.is_some_and(|s| bool::from(s.as_bytes().ct_eq(self.0.as_bytes())))
    }

    /// This browser's token, minted (and its cookie set) on first use in a request.
    pub fn of(request: &Request<'_>) -> CsrfToken {
        CsrfToken(token(request).to_owned())
    }

    /// Forgets the token, so the next page issues a new one (done at sign-in).
    pub fn rotate(jar: &Jar<'_>) {
        jar.remove(CSRF_COOKIE);
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CsrfToken {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(CsrfToken(token(request).to_owned()))
    }
}

/// This browser's token, minted (and its cookie set) on first use in a request.
fn token<'r>(request: &'r Request<'_>) -> &'r str {
    // Cached under its own type: the request-local cache is keyed by type.
    let CsrfToken(token) = request.local_cache(|| {
        let jar = Jar::of(request);
        CsrfToken(jar.get(CSRF_COOKIE).unwrap_or_else(|| {
            let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
            jar.set(CSRF_COOKIE, token.clone(), None);
            token
        }))
    });
    token
}

/// A form that carries the CSRF token field.
pub trait CsrfProtected {
    fn csrf_token(&self) -> Option<&str>;
}

/// A form whose only field is the token (logout, connect, disconnect).
#[derive(FromForm)]
pub struct CsrfOnly<'r> {
    pub csrf_token: Option<&'r str>,
}

impl CsrfProtected for CsrfOnly<'_> {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token
    }
}

/// Why a form was refused before its handler ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormRefused {
    /// Another site sent it (`Sec-Fetch-Site`, `Origin`): 403.
    CrossSite,
    /// Its token is missing or not this browser's (an old page, or a forgery): 403.
    Forged,
    /// It could not be read: too large (413), not a form (415), bad UTF-8 (400), a missing
    /// field (422).
    Unreadable(Status),
}

impl FormRefused {
    pub fn status(self) -> Status {
        match self {
            FormRefused::CrossSite | FormRefused::Forged => Status::Forbidden,
            FormRefused::Unreadable(status) => status,
        }
    }
}

/// A form from this site, with this browser's CSRF token: the data guard of every POST
/// form. Refusals fail with their status (the catcher renders the page); a handler that
/// takes `Result<Checked<T>, FormRefused>` answers them itself.
pub struct Checked<T>(pub T);

#[rocket::async_trait]
impl<'r, T: FromForm<'r> + CsrfProtected> FromData<'r> for Checked<T> {
    type Error = FormRefused;

    async fn from_data(request: &'r Request<'_>, data: Data<'r>) -> DataOutcome<'r, Self> {
        if let Some(reason) = cross_site_reason(request) {
            log::warn!("refused a cross-site {} {}: {reason}", request.method(), request.uri().path());
            return DataOutcome::Error((Status::Forbidden, FormRefused::CrossSite));
        }
        let form = match Form::<T>::from_data(request, data).await {
            DataOutcome::Success(form) => form.into_inner(),
            DataOutcome::Error((status, errors)) => {
                log::info!("an unreadable form was refused ({status}): {} error(s)", errors.len());
                return DataOutcome::Error((status, FormRefused::Unreadable(status)));
            }
            DataOutcome::Forward(forward) => return DataOutcome::Forward(forward),
        };
        if !CsrfToken::of(request).matches(form.csrf_token()) {
            log::warn!("a form without a valid CSRF token was refused: {}", request.uri().path());
            return DataOutcome::Error((Status::Forbidden, FormRefused::Forged));
        }
        DataOutcome::Success(Checked(form))
    }
}

/// A guard for JSON state changes (`DELETE /api/…`): the browser must say the request is
/// same-origin, with `Sec-Fetch-Site: same-origin` or a same-origin `Origin`; a request that
/// says neither (or the opposite) is refused with 403.
pub struct SameOriginRequired;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SameOriginRequired {
    type Error = &'static str;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let headers = request.headers();
        let vouched =
            headers.get_one("Sec-Fetch-Site") == Some("same-origin") || headers.get_one("Origin").is_some();
        let reason = match cross_site_reason(request) {
            Some(reason) => reason,
            None if vouched => return Outcome::Success(SameOriginRequired),
            None => "neither Sec-Fetch-Site nor Origin says same-origin",
        };
        log::warn!("refused a {} {}: {reason}", request.method(), request.uri().path());
        Outcome::Error((Status::Forbidden, reason))
    }
}

fn cross_site_reason(request: &Request<'_>) -> Option<&'static str> {
    let headers = request.headers();
    if let Some(site) = headers.get_one("Sec-Fetch-Site") {
        // `none` is a user typing the URL or using a bookmark.
        if !matches!(site, "same-origin" | "none") {
            return Some("Sec-Fetch-Site is not same-origin");
        }
    }
    if let Some(origin) = headers.get_one("Origin") {
        let settings = request.rocket().state::<Settings>();
        if let Some(public) = settings.and_then(|s| s.public_url.as_ref()) {
            if !origin.eq_ignore_ascii_case(public.origin()) {
                return Some("Origin is not public_url");
            }
            return None;
        }
        // Without public_url, the portal's origin is the Host it was asked for, over https
        // when a TLS proxy is in front (`secure_cookies`), over http otherwise.
        let scheme = if settings.is_some_and(|s| s.secure_cookies) { "https" } else { "http" };
        let same = match (origin.split_once("://"), headers.get_one("Host")) {
            (Some((given, authority)), Some(host)) => {
                given.eq_ignore_ascii_case(scheme) && authority.eq_ignore_ascii_case(host)
            }
            _ => false,
        };
        if !same {
            return Some("Origin does not match the scheme and Host");
        }
    }
    None
}
