//! Request guards: `LoggedIn` (a live, unexpired session of an enabled user), and `Admin`
//! (and `Acting`), the same for an enabled administrator: anyone else signed in gets 403.
//! Nobody signed in: the guard forwards with 401, and the 401 catcher decides what that
//! means: the login page, or on `/api` (whose catcher has the longer base) 401 in JSON.
//! The operations they lead to check the role again, in the store.
//!
//! `LoggedIn` has no public constructor, so a function taking `&LoggedIn` can only run for a
//! signed-in user. It is loaded once per request and cached, whatever the number of guards.

use rocket::http::Status;
use rocket::outcome::IntoOutcome;
use rocket::request::{FromRequest, Outcome, Request};

use crate::auth::admin::Operator;
use crate::auth::session::Method;
use crate::auth::{Auth, ClientInfo, SessionCheck};
use crate::store::{SessionRecord, User};
use crate::web::cookies::Jar;

/// A signed-in user and the session they arrived with.
#[derive(Debug)]
pub struct LoggedIn {
    user: User,
    session: SessionRecord,
}

impl LoggedIn {
    pub fn user(&self) -> &User {
        &self.user
    }

    pub fn session(&self) -> &SessionRecord {
        &self.session
    }

    pub fn method(&self) -> Method {
        Method::parse(&self.session.method).unwrap_or(Method::Password)
    }

    pub fn session_id(&self) -> &str {
        &self.session.id
    }
}

// One per request, in the request-local cache: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Loaded {
    Yes(LoggedIn),
    No,
    /// The store did not answer: a 503, not a trip to the login page.
    StoreDown,
}

async fn load(request: &Request<'_>) -> Loaded {
    let jar = Jar::of(request);
    let Some(token) = jar.session_token() else {
        return Loaded::No;
    };
    let Some(auth) = request.rocket().state::<Auth>() else {
        log::error!("the auth service is not managed; is the app built with portal::rocket_with?");
        return Loaded::StoreDown;
    };
    match auth.check_session(&token).await {
        Ok(SessionCheck::Valid { user, session }) => Loaded::Yes(LoggedIn { user, session }),
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

/// An enabled administrator (the console's pages and forms).
pub struct Admin<'r>(pub &'r LoggedIn);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Admin<'r> {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        match request.local_cache_async(load(request)).await {
            Loaded::Yes(me) if is_admin(me) => Outcome::Success(Admin(me)),
            Loaded::Yes(_) => Outcome::Error((Status::Forbidden, ())),
            Loaded::No => None.or_forward(Status::Unauthorized),
            Loaded::StoreDown => Outcome::Error((Status::ServiceUnavailable, ())),
        }
    }
}

fn is_admin(me: &LoggedIn) -> bool {
    me.user.is_admin && !me.user.disabled
}

/// An enabled administrator and where they act from: what the console's operations take
/// (`by()`). Fails as [`Admin`] does.
pub struct Acting<'r> {
    pub me: &'r LoggedIn,
    client: ClientInfo,
}

impl Acting<'_> {
    pub fn by(&self) -> Operator<'_> {
        Operator::user(self.me.user(), &self.client)
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Acting<'r> {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let admin = match Admin::from_request(request).await {
            Outcome::Success(admin) => admin,
            Outcome::Error(e) => return Outcome::Error(e),
            Outcome::Forward(status) => return Outcome::Forward(status),
        };
        let client = ClientInfo::from_request(request).await.succeeded().unwrap_or_default();
        Outcome::Success(Acting { me: admin.0, client })
    }
}

/// Whether the request carries a valid session, without failing or forwarding: what the
/// forward-auth endpoints ask (they answer 401 themselves, and 503 when the store is down).
pub enum Presence<'r> {
    In(&'r LoggedIn),
    Out,
    StoreDown,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Presence<'r> {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(match request.local_cache_async(load(request)).await {
            Loaded::Yes(me) => Presence::In(me),
            Loaded::No => Presence::Out,
            Loaded::StoreDown => Presence::StoreDown,
        })
    }
}
