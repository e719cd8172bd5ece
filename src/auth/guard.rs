//! Request guards: `LoggedIn` (a valid, unexpired, unrevoked session of an enabled user).
//!
//! `LoggedIn` has no public constructor, so a function taking `&LoggedIn` can only run for a
//! signed-in user. It is loaded once per request and cached, whatever the number of guards.

use rocket::http::Status;
use rocket::outcome::IntoOutcome;
use rocket::request::{FromRequest, Outcome, Request};

use crate::auth::session::{Freshness, Method, Session};
use crate::clock::Now;
use crate::config::Settings;
use crate::cookies::Jar;
use crate::store::{Store, User};

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
    let Some(mut session) = Session::read(&jar) else {
        return Loaded::No;
    };
    let rocket = request.rocket();
    let (Some(settings), Some(store), Some(now)) =
        (rocket.state::<Settings>(), rocket.state::<Store>(), rocket.state::<Now>())
    else {
        log::error!("the portal's state is not managed; is the app built with portal::rocket_with?");
        return Loaded::StoreDown;
    };
    let now = now.get();
    let freshness = session.freshness(&settings.session, now);
    if freshness == Freshness::Expired {
        Session::end(&jar);
        return Loaded::No;
    }
    let user = match store.session_user(session.uid, now).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            Session::end(&jar);
            return Loaded::No;
        }
        Err(e) => {
            log::error!("store error while checking a session: {e}");
            return Loaded::StoreDown;
        }
    };
    if user.disabled || user.session_epoch != session.epoch {
        Session::end(&jar);
        return Loaded::No;
    }
    if freshness == Freshness::Stale {
        session.touch(&jar, &settings.session, now);
    }
    Loaded::Yes(LoggedIn { user, session })
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
