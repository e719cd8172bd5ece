//! Where every cookie the portal sets gets its attributes: private (encrypted and
//! authenticated with `secret_key`), `SameSite=Lax`, `HttpOnly`, `Path=/`, and `Secure` when
//! Rocket serves TLS or `secure_cookies` says a TLS proxy is in front. Behind TLS every name
//! takes the `__Host-` prefix, so the browser itself refuses a copy set without `Secure`,
//! for another path, or by a sibling subdomain (OWASP's session management cheat sheet).
//!
//! With `session.cookie_domain`, the session cookie (and only it) is set for that domain, so
//! one sign-in covers every subdomain; `__Host-` forbids a `Domain`, so behind TLS it is
//! named with the `__Secure-` prefix instead (the browser still refuses it without
//! `Secure`).

use rocket::http::{Cookie, CookieJar, SameSite};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::time::Duration;

use crate::config::Settings;

/// A cookie's name on plain http, and behind TLS (with the `__Host-` prefix, which browsers
/// refuse without `Secure`, so plain http keeps the bare name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieName {
    plain: &'static str,
    host_only: &'static str,
    /// For the one cookie that may be shared with subdomains: its name behind TLS then
    /// (`__Secure-` prefixed).
    domain_wide: Option<&'static str>,
}

impl CookieName {
    /// `host_only` must be `plain` with the `__Host-` prefix (a unit test checks each).
    pub const fn new(plain: &'static str, host_only: &'static str) -> CookieName {
        CookieName { plain, host_only, domain_wide: None }
    }

    /// A cookie that `session.cookie_domain` shares with subdomains; `domain_wide` is
    /// `plain` with the `__Secure-` prefix.
    pub const fn shareable(
        plain: &'static str,
        host_only: &'static str,
        domain_wide: &'static str,
    ) -> CookieName {
        CookieName { plain, host_only, domain_wide: Some(domain_wide) }
    }

    /// The name under a domain-wide deployment, behind TLS.
    pub fn domain_wide(self) -> Option<&'static str> {
        self.domain_wide
    }

    /// The name this deployment uses.
    pub fn get(self, secure: bool) -> &'static str {
        if secure {
            self.host_only
        } else {
            self.plain
        }
    }
}

/// The request's cookies, with the portal's attributes applied to what is added.
pub struct Jar<'r> {
    cookies: &'r CookieJar<'r>,
    secure: bool,
    /// `session.cookie_domain`.
    domain: Option<&'r str>,
}

impl<'r> Jar<'r> {
    pub fn of(request: &'r Request<'_>) -> Jar<'r> {
        let settings = request.rocket().state::<Settings>();
        let secure = settings.is_some_and(|s| s.secure_cookies);
        let domain = settings.and_then(|s| s.session.cookie_domain.as_deref());
        Jar { cookies: request.cookies(), secure, domain }
    }

    /// The domain a cookie is set for: `session.cookie_domain` for a shareable cookie, else
    /// none (host-only).
    fn domain_of(&self, name: CookieName) -> Option<&'r str> {
        name.domain_wide.and(self.domain)
    }

    /// The name this deployment gives a cookie.
    pub fn name(&self, name: CookieName) -> &'static str {
        match (self.domain_of(name), name.domain_wide) {
            (Some(_), Some(wide)) if self.secure => wide,
            _ => name.get(self.secure),
        }
    }

    /// Adds an encrypted cookie. `max_age: None` makes it a browser-session cookie.
    pub fn set(&self, name: CookieName, value: String, max_age: Option<Duration>) {
        let mut cookie = Cookie::build((self.name(name), value))
            .path("/")
            .same_site(SameSite::Lax)
            .http_only(true)
            .build();
        match max_age {
            Some(age) => {
                cookie.set_max_age(age);
                // `Max-Age` alone: every browser in support honours it (RFC 6265 §5.3 puts it
                // before `Expires`), and an `Expires` date is a clock read and an HTTP-date
                // formatted for every cookie set. "Session" here only stops Rocket from adding
                // its one-week `Expires`; nothing is printed for it.
                cookie.set_expires(None);
            }
            // Rocket gives private cookies a one-week expiry unless told otherwise.
            None => cookie.set_expires(None),
        }
        if self.secure {
            // Left unset otherwise, so Rocket still adds `Secure` when it serves TLS itself.
            cookie.set_secure(true);
        }
        if let Some(domain) = self.domain_of(name) {
            cookie.set_domain(domain.to_owned());
        }
        self.cookies.add_private(cookie);
    }

    /// The decrypted value, or `None` when absent, tampered with, or sealed with another key.
    pub fn get(&self, name: CookieName) -> Option<String> {
        self.cookies.get_private(self.name(name)).map(|c| c.value().to_owned())
    }

    /// Whether the browser sent the cookie at all (without decrypting it).
    pub fn has(&self, name: CookieName) -> bool {
        self.cookies.get(self.name(name)).is_some()
    }

    pub fn remove(&self, name: CookieName) {
        let mut removal = Cookie::build(self.name(name)).path("/").same_site(SameSite::Lax).build();
        if self.secure {
            removal.set_secure(true);
        }
        if let Some(domain) = self.domain_of(name) {
            removal.set_domain(domain.to_owned());
        }
        self.cookies.remove_private(removal);
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Jar<'r> {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(Jar::of(request))
    }
}

#[cfg(test)]
mod tests {
    use super::CookieName;

    #[test]
    fn every_cookie_takes_the_host_prefix_behind_tls_only() {
        let names = [
            crate::web::session::SESSION_COOKIE,
            crate::web::csrf::CSRF_COOKIE,
            crate::web::flash::FLASH_COOKIE,
            crate::web::session::FLOW_COOKIE,
        ];
        for name in names {
            let name: CookieName = name;
            assert_eq!(name.get(true), format!("__Host-{}", name.get(false)));
            assert!(name.get(false).starts_with("portal_"));
            if let Some(wide) = name.domain_wide() {
                assert_eq!(wide, format!("__Secure-{}", name.get(false)));
            }
        }
    }
}
