//! Cross-site request defences for state-changing forms: a same-origin check on the
//! browser's `Sec-Fetch-Site` / `Origin` headers, and a token for browsers that send neither.
//! [`Checked`] is the data guard that does both for a form.
//!
//! The token is bound to what the request acts as. Signed in, it is the session's: an HMAC,
//! under a key derived from `secret_key`, of the session record's id, so only a page of that
//! session can carry it, and a token and `portal_csrf` cookie from another browser (an
//! attacker's own pair, planted from a sibling subdomain when cookies are not `__Host-`) do
//! not pass. Signed out, it is a random value in a private cookie (`portal_csrf`); that
//! cookie is dropped at sign-in, and its token no longer works once the browser is signed in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rocket::data::{Data, FromData, Outcome as DataOutcome};
use rocket::form::{Form, FromForm};
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use subtle::ConstantTimeEq;

use crate::config::Settings;
use crate::web::cookies::{CookieName, Jar};
use crate::web::guard::{LoggedIn, Presence};

pub const CSRF_COOKIE: CookieName = CookieName::new("portal_csrf", "__Host-portal_csrf");

/// The token that forms on this page carry in their `csrf_token` field.
pub struct CsrfToken(String);

impl CsrfToken {
    pub fn value(&self) -> &str {
        &self.0
    }

    /// Whether a submitted token is this one, compared in constant time.
    pub fn matches(&self, submitted: Option<&str>) -> bool {
        submitted.is_some_and(|s| bool::from(s.as_bytes().ct_eq(self.0.as_bytes())))
    }

    /// The token for a request made by `me` (the session's), or by nobody signed in (the
    /// browser's cookie, minted and set on first use in a request).
    pub fn of(request: &Request<'_>, me: Option<&LoggedIn>) -> CsrfToken {
        match me {
            Some(me) => CsrfToken(session_token(request, me.session_id())),
            None => CsrfToken(cookie_token(request).to_owned()),
        }
    }

    /// Forgets the signed-out token, so it cannot outlive the sign-in (done at sign-in).
    pub fn rotate(jar: &Jar<'_>) {
        jar.remove(CSRF_COOKIE);
    }
}

/// The token of the request's session, or of its cookie; 503 when the store cannot say
/// whether the session is live.
#[rocket::async_trait]
impl<'r> FromRequest<'r> for CsrfToken {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        match Presence::from_request(request).await {
            Outcome::Success(Presence::In(me)) => Outcome::Success(CsrfToken::of(request, Some(me))),
            Outcome::Success(Presence::StoreDown) => Outcome::Error((Status::ServiceUnavailable, ())),
            _ => Outcome::Success(CsrfToken::of(request, None)),
        }
    }
}

/// The key of signed-in sessions' tokens (managed state), made once from `csrf_key`: ring
/// hashes a key's inner and outer pads when the key is made, which would otherwise be done
/// again on every signed-in page.
pub struct SessionKey(ring::hmac::Key);

impl SessionKey {
    pub fn new(settings: &Settings) -> SessionKey {
        SessionKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &settings.csrf_key.0))
    }
}

/// A signed-in session's token: base64url(HMAC-SHA256(csrf_key, session id)). The id alone
/// would not do: it is shown on account and console pages.
fn session_token(request: &Request<'_>, session_id: &str) -> String {
    let Some(SessionKey(key)) = request.rocket().state::<SessionKey>() else {
        // Fails closed: no token would ever match, and the log says why.
        log::error!("the CSRF key is not managed; is the app built with portal::rocket_with?");
        return URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    };
    URL_SAFE_NO_PAD.encode(ring::hmac::sign(key, session_id.as_bytes()))
}

/// This browser's signed-out token, minted (and its cookie set) on first use in a request.
fn cookie_token<'r>(request: &'r Request<'_>) -> &'r str {
    // Cached under its own type: the request-local cache is keyed by type.
    let CookieToken(token) = request.local_cache(|| {
        let jar = Jar::of(request);
        CookieToken(jar.get(CSRF_COOKIE).unwrap_or_else(|| {
            let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
            jar.set(CSRF_COOKIE, token.clone(), None);
            token
        }))
    });
    token
}

struct CookieToken(String);

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
    /// The store could not say whether the session is live, so which token is right: 503.
    StoreDown,
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
            FormRefused::StoreDown => Status::ServiceUnavailable,
            FormRefused::Unreadable(status) => status,
        }
    }
}

/// A form from this site, with this session's (or signed-out browser's) CSRF token: the data guard of every POST
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
        let expected = match CsrfToken::from_request(request).await {
            Outcome::Success(token) => token,
            _ => return DataOutcome::Error((Status::ServiceUnavailable, FormRefused::StoreDown)),
        };
        if !expected.matches(form.csrf_token()) {
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
