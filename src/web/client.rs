//! Who is asking, as the auth service wants to know it: the client's address (Rocket's
//! `client_ip`, which honours `ip_header` only when configured) and its browser, described.

use rocket::request::{FromRequest, Outcome, Request};

use crate::auth::{device, ClientInfo};

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientInfo {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let device = device::describe(request.headers().get_one("User-Agent"));
        Outcome::Success(ClientInfo { ip: request.client_ip(), device })
    }
}

/// The portal's own origin, for links it hands out (a one-time password link): the origin
/// of `public_url` when set, otherwise the Host the request was made to, over https when a
/// TLS proxy is in front (`secure_cookies`). `None` without either: links are then paths.
pub struct SiteOrigin(pub Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SiteOrigin {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let settings = request.rocket().state::<crate::config::Settings>();
        if let Some(public) = settings.and_then(|s| s.public_url.as_ref()) {
            return Outcome::Success(SiteOrigin(Some(public.origin().to_owned())));
        }
        let scheme = if settings.is_some_and(|s| s.secure_cookies) { "https" } else { "http" };
        // Rocket's parsed Host, or the header as given when it was set after the request
        // was made (local requests), if it parses as an authority.
        let host = request.host().map(|h| h.to_string()).or_else(|| {
            let header = request.headers().get_one("Host")?;
            rocket::http::uri::Authority::parse(header).ok().filter(|a| a.user_info().is_none())?;
            Some(header.to_owned())
        });
        let origin = host.map(|host| format!("{scheme}://{host}"));
        Outcome::Success(SiteOrigin(origin))
    }
}
