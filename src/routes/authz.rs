//! Forward-auth for reverse proxies: `GET /authz/auth-request` (nginx `auth_request`) and
//! `GET /authz/forward-auth` (Caddy `forward_auth`, Traefik `ForwardAuth`), and the
//! assertion keys at `/.well-known/jwks.json`.
//!
//! Both answer `200` with the identity headers when the session is valid and the rules allow
//! the original request, `403` when they refuse it, and without a session `401`, except that
//! `forward-auth` sends a browser navigation (`Accept: text/html`) to the login page with
//! `rd` = the original URL (Caddy and Traefik pass the answer on), and `auth-request` puts
//! that URL in the 401's `Location` for nginx to redirect to (nginx wants no redirects
//! from an `auth_request`, and cannot percent-encode `rd` itself). A path that backends may
//! read in different ways, on a host with path rules, is a `403` with or without a session.
//! No template and nothing heavier than the guard's cached session read on the way to a 200.

use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use rocket::{get, Route, State};

use crate::auth::assertion::groups;
use crate::auth::forward::Target;
use crate::auth::{Auth, AuthError, Gate};
use crate::config::Settings;
use crate::routes::factors::SECOND_STEP;
use crate::web::guard::Presence;
use crate::web::pages::error_page;

/// The request the proxy asks about, from its headers.
pub struct Original(Option<Target>);

/// The headers that describe it, read as each proxy sets them.
pub struct Described<'r> {
    original_url: Option<&'r str>,
    proto: Option<&'r str>,
    host: Option<&'r str>,
    uri: Option<&'r str>,
}

impl Described<'_> {
    /// nginx: `X-Original-URL` (the shipped snippet sets it, overwriting the client's), or
    /// the `X-Forwarded-*` trio for a configuration that sets those instead.
    fn for_nginx(&self) -> Original {
        Original(Target::from_headers(self.original_url, self.proto, self.host, self.uri))
    }

    /// Caddy and Traefik set `X-Forwarded-Proto/Host/Uri` themselves and pass every other
    /// header of the client's on: an `X-Original-URL` here is the client's, and ignored.
    fn for_forward_auth(&self) -> Original {
        Original(Target::from_headers(None, self.proto, self.host, self.uri))
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Described<'r> {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let h = request.headers();
        Outcome::Success(Described {
            original_url: h.get_one("X-Original-URL"),
            proto: h.get_one("X-Forwarded-Proto"),
            host: h.get_one("X-Forwarded-Host"),
            uri: h.get_one("X-Forwarded-Uri"),
        })
    }
}

/// What a check answers.
pub enum Answer {
    /// 200, with the identity headers.
    Through {
        user: String,
        email: Option<String>,
        groups: &'static str,
        level: i64,
        assertion: Option<String>,
    },
    /// 401, empty; with the login page's URL (and `rd`) in `Location` for nginx to send
    /// the browser to (`auth_request_set` + `error_page 401 =302`): a 401 is no redirect.
    SignIn(Option<String>),
    /// 302 to the login page, coming back to the original URL.
    ToLogin(String),
    /// 403: an empty body for nginx, the error page for the others (which show it).
    Refused { page: bool },
    /// 503.
    Unavailable,
}

impl<'r> Responder<'r, 'static> for Answer {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let result = match &self {
            Answer::Through { .. } => "allowed",
            Answer::SignIn(_) | Answer::ToLogin(_) => "unauthenticated",
            Answer::Refused { .. } => "forbidden",
            Answer::Unavailable => "unavailable",
        };
        crate::metrics::get().forward_auth.get_or_create(&crate::metrics::ResultLabels { result }).inc();
        match self {
            Answer::Through { user, email, groups, level, assertion } => {
                let mut response = Response::build();
                response.status(Status::Ok);
                let email = email.unwrap_or_default();
                response.header(Header::new("Remote-User", user.clone()));
                response.header(Header::new("Remote-Email", email.clone()));
                response.header(Header::new("Remote-Groups", groups));
                response.header(Header::new("Remote-Auth-Level", level.to_string()));
                response.header(Header::new("X-Auth-Request-User", user));
                response.header(Header::new("X-Auth-Request-Email", email));
                if let Some(assertion) = assertion {
                    response.header(Header::new("X-Portal-Assertion", assertion));
                }
                Ok(response.finalize())
            }
            Answer::SignIn(login) => {
                let mut response = Response::build();
                response.status(Status::Unauthorized);
                if let Some(login) = login {
                    response.header(Header::new("Location", login));
                }
                Ok(response.finalize())
            }
            Answer::ToLogin(location) => {
                Response::build().status(Status::Found).header(Header::new("Location", location)).ok()
            }
            Answer::Refused { page: true } => error_page(request, Status::Forbidden).respond_to(request),
            Answer::Refused { page: false } => Response::build().status(Status::Forbidden).ok(),
            Answer::Unavailable => Response::build()
                .status(Status::ServiceUnavailable)
                .header(Header::new("Retry-After", "2"))
                .ok(),
        }
    }
}

/// For nginx `auth_request`: 200, 401 or 403; never a redirect.
#[get("/authz/auth-request")]
pub async fn auth_request(
    presence: Presence<'_>,
    described: Described<'_>,
    settings: &State<Settings>,
    auth: &State<Auth>,
) -> Answer {
    check(presence, described.for_nginx(), settings, auth, Login::Header).await
}

/// For Caddy `forward_auth` and Traefik `ForwardAuth`: a browser without a session is sent
/// to the login page.
#[get("/authz/forward-auth")]
pub async fn forward_auth(
    presence: Presence<'_>,
    described: Described<'_>,
    navigation: Navigation,
    settings: &State<Settings>,
    auth: &State<Auth>,
) -> Answer {
    let login = if navigation.0 { Login::Redirect } else { Login::None };
    check(presence, described.for_forward_auth(), settings, auth, login).await
}

/// How a check that needs the person to sign in (or take the second step) points there.
#[derive(Clone, Copy)]
enum Login {
    /// nginx: a 401 carrying the URL in `Location`; refusals are bare statuses.
    Header,
    /// Caddy and Traefik, a browser navigation: a 302 there.
    Redirect,
    /// Caddy and Traefik, anything else: a bare 401.
    None,
}

impl Login {
    /// A 401 (nginx carries the URL in `Location`), or a browser's 302, to `path` on the
    /// portal with `rd` = the original URL. The URL is made only here, when it is sent.
    fn answer(self, settings: &Settings, path: &str, original: Option<&Target>) -> Answer {
        match self {
            Login::Redirect => Answer::ToLogin(portal_url(settings, path, original)),
            Login::Header => Answer::SignIn(Some(portal_url(settings, path, original))),
            Login::None => Answer::SignIn(None),
        }
    }
}

/// Sends someone signed out to the login page, and a session a rule finds short of a second
/// factor to the second step, as `login` says.
async fn check(
    presence: Presence<'_>,
    original: Original,
    settings: &Settings,
    auth: &Auth,
    login: Login,
) -> Answer {
    let page = !matches!(login, Login::Header);
    // Before the session: a host outside `allowed_domains` (or no target), and an
    // ambiguous path, are refused whoever asks, so a signed-out browser is not sent to sign
    // in for a request no one may make.
    let target = original.0.as_ref();
    if !auth.gates(target) || target.is_some_and(|target| auth.refuses_unseen(target)) {
        return Answer::Refused { page };
    }
    let me = match presence {
        Presence::In(me) => me,
        Presence::Out => return login.answer(settings, "/login", target),
        Presence::StoreDown => return Answer::Unavailable,
    };
    let user = me.user();
    match auth.gate(user, me.session(), original.0.as_ref()).await {
        Ok(Gate::Allowed { assertion }) => Answer::Through {
            user: user.username.clone(),
            email: user.verified_email().map(str::to_owned),
            groups: groups(user).first().copied().unwrap_or(""),
            level: me.session().aal,
            assertion,
        },
        Ok(Gate::Refused) => Answer::Refused { page },
        Ok(Gate::SecondFactor) => login.answer(settings, SECOND_STEP, target),
        Err(e @ (AuthError::Store(_) | AuthError::Busy)) => {
            log::warn!("forward-auth: {e}");
            Answer::Unavailable
        }
        Err(e) => {
            log::error!("forward-auth: {e}");
            Answer::Unavailable
        }
    }
}

/// Whether the caller is a browser navigating (its `Accept` names `text/html`).
pub struct Navigation(bool);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Navigation {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let html = request.headers().get("Accept").any(|accept| accept.contains("text/html"));
        Outcome::Success(Navigation(html))
    }
}

/// `{public_url}{path}` (`/login`, the second step), with `rd` = the original URL when there
/// is one.
fn portal_url(settings: &Settings, path: &str, original: Option<&Target>) -> String {
    let base = settings.public_url.as_ref().map_or_else(|| path.to_owned(), |p| p.join(path));
    match original {
        Some(target) => format!("{base}?rd={}", rocket::http::RawStr::new(&target.url).percent_encode()),
        None => base,
    }
}

/// The public keys that verify `X-Portal-Assertion`, as a JWK Set.
#[get("/.well-known/jwks.json")]
pub async fn jwks(auth: &State<Auth>) -> Result<(ContentType, String), AuthError> {
    Ok((ContentType::JSON, auth.jwks().await?.to_string()))
}

/// This module's routes, mounted at `/`.
pub fn routes() -> Vec<Route> {
    rocket::routes![auth_request, forward_auth, jwks]
}
