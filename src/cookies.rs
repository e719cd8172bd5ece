//! Where every cookie the portal sets gets its attributes: private (encrypted and
//! authenticated with `secret_key`), `SameSite=Lax`, `HttpOnly`, `Path=/`, and `Secure` when
//! Rocket serves TLS or `secure_cookies` says a TLS proxy is in front.

use rocket::http::{Cookie, CookieJar, SameSite};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::time::{Duration, OffsetDateTime};

use crate::config::Settings;

/// The request's cookies, with the portal's attributes applied to what is added.
pub struct Jar<'r> {
    cookies: &'r CookieJar<'r>,
    secure: bool,
}

impl<'r> Jar<'r> {
    pub fn of(request: &'r Request<'_>) -> Jar<'r> {
        let secure = request.rocket().state::<Settings>().is_some_and(|s| s.secure_cookies);
        Jar { cookies: request.cookies(), secure }
    }

    /// Adds an encrypted cookie. `max_age: None` makes it a browser-session cookie.
    pub fn set(&self, name: &'static str, value: String, max_age: Option<Duration>) {
        let mut cookie =
            Cookie::build((name, value)).path("/").same_site(SameSite::Lax).http_only(true).build();
        match max_age {
            Some(age) => {
                cookie.set_max_age(age);
                // Rocket would otherwise add a one-week `Expires` beside `Max-Age`.
                cookie.set_expires(OffsetDateTime::now_utc() + age);
            }
            // Rocket gives private cookies a one-week expiry unless told otherwise.
            None => cookie.set_expires(None),
        }
        if self.secure {
            // Left unset otherwise, so Rocket still adds `Secure` when it serves TLS itself.
            cookie.set_secure(true);
        }
        self.cookies.add_private(cookie);
    }

    /// The decrypted value, or `None` when absent, tampered with, or sealed with another key.
    pub fn get(&self, name: &'static str) -> Option<String> {
        self.cookies.get_private(name).map(|c| c.value().to_owned())
    }

    pub fn remove(&self, name: &'static str) {
        self.cookies.remove_private(Cookie::build(name).path("/").same_site(SameSite::Lax));
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Jar<'r> {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(Jar::of(request))
    }
}
