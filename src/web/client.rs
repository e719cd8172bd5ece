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
