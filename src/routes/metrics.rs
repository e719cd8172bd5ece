//! `GET /metrics`: Prometheus text, for a scraper holding `metrics.token`. Without a token
//! configured the route is not there (`404`); with one, anything but `Authorization: Bearer
//! <token>` is `401`.

use rocket::get;
use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use rocket::Route;
use rocket::State;

use crate::auth::Auth;
use crate::config::Settings;

/// Who asked, as far as `/metrics` cares.
pub enum Scraper {
    /// `metrics.token` is not set: there is no `/metrics`.
    Off,
    /// No token, or the wrong one.
    Refused,
    Allowed,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Scraper {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let Some(token) = request.rocket().state::<Settings>().and_then(|s| s.metrics.token.as_deref())
        else {
            return Outcome::Success(Scraper::Off);
        };
        let sent = request.headers().get_one("Authorization").and_then(|value| {
            let (scheme, credentials) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim())
        });
        // Compared as SHA-256 digests: equal length, and a timing difference tells nothing
        // about the token.
        let digest = |text: &str| ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
        let allowed = sent.is_some_and(|sent| digest(sent).as_ref() == digest(token).as_ref());
        Outcome::Success(if allowed { Scraper::Allowed } else { Scraper::Refused })
    }
}

/// The answer: the exposition, or a bare status.
pub enum Exposition {
    Text(String),
    NotFound,
    Unauthorized,
}

impl<'r> Responder<'r, 'static> for Exposition {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        match self {
            Exposition::Text(text) => Response::build()
                .status(Status::Ok)
                .header(
                    ContentType::new("application", "openmetrics-text")
                        .with_params([("version", "1.0.0"), ("charset", "utf-8")]),
                )
                .header(Header::new("Cache-Control", "no-store"))
                .sized_body(text.len(), std::io::Cursor::new(text))
                .ok(),
            Exposition::NotFound => Response::build().status(Status::NotFound).ok(),
            Exposition::Unauthorized => Response::build()
                .status(Status::Unauthorized)
                .header(Header::new("WWW-Authenticate", "Bearer realm=\"portal metrics\""))
                .ok(),
        }
    }
}

#[get("/metrics")]
pub async fn metrics(scraper: Scraper, auth: &State<Auth>) -> Exposition {
    match scraper {
        Scraper::Off => Exposition::NotFound,
        Scraper::Refused => Exposition::Unauthorized,
        Scraper::Allowed => {
            let metrics = crate::metrics::get();
            let (open, idle) = auth.store().pool_state();
            metrics.store_connections.set(i64::from(open));
            metrics.store_idle_connections.set(i64::try_from(idle).unwrap_or(i64::MAX));
            metrics.hash_queue_depth.set(i64::try_from(auth.hasher().queue_depth()).unwrap_or(i64::MAX));
            metrics.revocations_heard.set(i64::from(auth.store().revocations_heard()));
            Exposition::Text(metrics.encode())
        }
    }
}

/// This module's routes, mounted at `/`.
pub fn routes() -> Vec<Route> {
    rocket::routes![metrics]
}
