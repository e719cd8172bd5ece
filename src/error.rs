//! The portal's one error type. Each variant says what the person sees; the details are
//! logged, never shown.

use rocket::http::{Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder};

use crate::routes::pages::error_page;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// "Something went wrong on our side" (500).
    #[error("store error: {0}")]
    Store(#[from] sqlx::Error),
    /// "The portal is busy, try again in a moment" (503 with Retry-After).
    #[error("too many sign-ins are waiting for a password check")]
    Busy,
    /// "Something went wrong on our side" (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn status(&self) -> Status {
        match self {
            Error::Busy => Status::ServiceUnavailable,
            Error::Store(_) | Error::Internal(_) => Status::InternalServerError,
        }
    }
}

impl<'r> Responder<'r, 'static> for Error {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let status = self.status();
        if status == Status::ServiceUnavailable {
            log::warn!("{} {}: {self}", request.method(), request.uri().path());
        } else {
            log::error!("{} {}: {self}", request.method(), request.uri().path());
        }
        let mut response = error_page(status).respond_to(request)?;
        if status == Status::ServiceUnavailable {
            response.set_header(Header::new("Retry-After", "2"));
        }
        Ok(response)
    }
}
