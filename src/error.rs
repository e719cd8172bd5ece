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
    /// "Too many attempts. Wait a moment, then try again." (429 with Retry-After).
    #[error("throttled for {0} s")]
    TooManyAttempts(i64),
}

impl Error {
    pub fn status(&self) -> Status {
        match self {
            Error::Busy => Status::ServiceUnavailable,
            Error::TooManyAttempts(_) => Status::TooManyRequests,
            Error::Store(_) | Error::Internal(_) => Status::InternalServerError,
        }
    }
}

impl<'r> Responder<'r, 'static> for Error {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let status = self.status();
        let retry_after = match self {
            Error::Busy => Some(2),
            Error::TooManyAttempts(seconds) => Some(seconds),
            Error::Store(_) | Error::Internal(_) => None,
        };
        if retry_after.is_some() {
            log::warn!("{} {}: {self}", request.method(), request.uri().path());
        } else {
            log::error!("{} {}: {self}", request.method(), request.uri().path());
        }
        let mut response = error_page(status).respond_to(request)?;
        if let Some(seconds) = retry_after {
            response.set_header(Header::new("Retry-After", seconds.to_string()));
        }
        Ok(response)
    }
}
