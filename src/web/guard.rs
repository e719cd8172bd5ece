//! Request guards: `LoggedIn` (a valid, unexpired, unrevoked session of an enabled user).
//!
//! `LoggedIn` has no public constructor, so a function taking `&LoggedIn` can only run for a
//! signed-in user. It is loaded once per request and cached, whatever the number of guards.

use rocket::http::Status;
use rocket::outcome::IntoOutcome;
use rocket::request::{FromRequest, Outcome, Request};

use crate::auth::session::{Method, Session};
use crate::auth::{Auth, SessionCheck};
use crate::store::User;
use crate::web::cookies::Jar;

/// A signed-in user and the session they arrived with.
#[derive(Debug)]
pub struct LoggedIn {
    user: User,
    session: Session,
}

impl LoggedIn {
    pub fn user(&self) -> &User {
        &self.user
    }

    pub fn method(&self) -> Method {
        self.session.method
    }

    pub fn session_id(&self) -> &str {
        &self.session.sid
    }
}

enum Loaded {
    Yes(LoggedIn),
    No,
    /// The store did not answer: a 503, not a trip to the login page.
    StoreDown,
}

async fn load(request: &Request<'_>) -> Loaded {
    let jar = Jar::of(request);
    let Some(session) = jar.session() else {
        return Loaded::No;
    };
    let Some(auth) = request.rocket().state::<Auth>() else {
        log::error!("the auth service is not managed; is the app built with portal::rocket_with?");
        return Loaded::StoreDown;
    };
    match auth.check_session(session.clone()).await {
        Ok(SessionCheck::Valid { user, refreshed }) => match refreshed {
            Some(session) => {
                jar.write_session(&session, auth.session_settings());
                Loaded::Yes(LoggedIn { user, session })
            }
            None => Loaded::Yes(LoggedIn { user, session }),
        },
        Ok(SessionCheck::Invalid) => {
            jar.end_session();
            Loaded::No
        }
        Err(e) => {
            log::error!("store error while checking a session: {e}");
            Loaded::StoreDown
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for &'r LoggedIn {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        match request.local_cache_async(load(request)).await {
            Loaded::Yes(me) => Outcome::Success(me),
            Loaded::No => None.or_forward(Status::Unauthorized),
            Loaded::StoreDown => Outcome::Error((Status::ServiceUnavailable, ())),
        }
    }
}
