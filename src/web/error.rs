//! Domain errors as pages: the one place where an [`AuthError`] becomes a status, a page and
//! a `Retry-After`. The details are logged, never shown.

use rocket::http::{Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder};

use crate::auth::admin::AdminError;
use crate::auth::AuthError;
use crate::store::ErrorClass;
use crate::web::pages::error_page;

/// What the person sees for each failure. A store that does not answer (no pooled
/// connection within the timeout, an I/O error, PostgreSQL restarting or not up yet) is
/// "busy, try again": 503, not 500.
pub fn status_of(error: &AuthError) -> Status {
    match error {
        AuthError::Busy => Status::ServiceUnavailable,
        AuthError::Throttled(_) => Status::TooManyRequests,
        AuthError::Store(e) => match crate::store::class(e) {
            ErrorClass::Unavailable => Status::ServiceUnavailable,
            ErrorClass::BadInput => Status::BadRequest,
            ErrorClass::Other => Status::InternalServerError,
        },
        AuthError::Internal(_) => Status::InternalServerError,
    }
}

/// The status of an administrator's operation that did not happen.
pub fn admin_status(error: &AdminError) -> Status {
    match error {
        AdminError::NotAdmin => Status::Forbidden,
        AdminError::NoSuchUser | AdminError::NoUserNamed(_) | AdminError::NoSuchClient => Status::NotFound,
        AdminError::LastAdmin
        | AdminError::OwnAccount
        | AdminError::Taken
        | AdminError::ClientTaken
        | AdminError::ConfiguredClient
        | AdminError::PublicClient => Status::Conflict,
        AdminError::InvalidUsername(_)
        | AdminError::InvalidEmail
        | AdminError::CannotInvite
        | AdminError::Policy(_)
        | AdminError::InvalidClient(_) => Status::UnprocessableEntity,
        AdminError::Failed(e) => status_of(e),
    }
}

/// Seconds to wait before trying again (503 busy: two; 429: until the window ends).
const BUSY_RETRY_AFTER: i64 = 2;

impl<'r> Responder<'r, 'static> for AuthError {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let status = status_of(&self);
        let retry_after = match self {
            AuthError::Throttled(seconds) => Some(seconds),
            _ if status == Status::ServiceUnavailable => Some(BUSY_RETRY_AFTER),
            AuthError::Busy | AuthError::Store(_) | AuthError::Internal(_) => None,
        };
        if retry_after.is_some() {
            log::warn!("{} {}: {self}", request.method(), request.uri().path());
        } else {
            log::error!("{} {}: {self}", request.method(), request.uri().path());
        }
        let mut response = error_page(request, status).respond_to(request)?;
        if let Some(seconds) = retry_after {
            response.set_header(Header::new("Retry-After", seconds.to_string()));
        }
        Ok(response)
    }
}

impl<'r> Responder<'r, 'static> for AdminError {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        match self {
            AdminError::Failed(e) => e.respond_to(request),
            other => {
                let status = admin_status(&other);
                log::info!("{} {}: {other}", request.method(), request.uri().path());
                error_page(request, status).respond_to(request)
            }
        }
    }
}
