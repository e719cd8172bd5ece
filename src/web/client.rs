//! Who is asking, as the auth service wants to know it: the client's address (Rocket's
//! `client_ip`, which honours `ip_header` only when configured).

use rocket::request::{FromRequest, Outcome, Request};

use crate::auth::ClientInfo;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientInfo {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(ClientInfo { ip: request.client_ip() })
    }
}
