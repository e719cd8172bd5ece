//! `/login/<provider>` (leave for the provider) and `/auth/<provider>` (come back), from
//! the account page `/account/connect/<provider>` (leave to link one) and
//! `/account/unlink/<provider>`, and the provider's back-channel logout,
//! `POST /auth/<provider>/backchannel-logout`.

use rocket::http::{ContentType, Status};
use rocket::{get, post, uri, FromForm, Route, State};

use crate::auth::oauth::Slug;
use crate::auth::{
    Arrival, ArrivalError, Auth, AuthError, BackchannelError, Callback, ClientInfo, FirstStep, StartError,
};
use crate::routes::account::rocket_uri_macro_account;
use crate::routes::factors::carry_on;
use crate::routes::login::rocket_uri_macro_login_page;
use crate::store::Unlinked;
use crate::web::cookies::Jar;
use crate::web::csrf::{Checked, CsrfOnly};
use crate::web::flash::Kind;
use crate::web::guard::LoggedIn;
use crate::web::pages::{message_page_reply, Reply};

const TRY_AGAIN: &str = "Sign-in failed, please try again.";

#[get("/login/<provider>?<next>&<rd>")]
pub async fn start(
    provider: Result<Slug, &str>,
    next: Option<&str>,
    rd: Option<&str>,
    client: ClientInfo,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    let Ok(provider) = provider else { return Ok(Reply::Error(Status::NotFound)) };
    let after = auth.destination(next, rd);
    let started = auth.start_provider_sign_in(provider.as_str(), after.as_deref(), &client).await;
    leave_for(auth, provider, started, &jar)
}

/// Sends the browser to the provider with the flow in its cookie, or says why not.
pub fn leave_for(
    auth: &Auth,
    provider: Slug,
    started: Result<(crate::auth::oauth::Flow, String), StartError>,
    jar: &Jar<'_>,
) -> Result<Reply, AuthError> {
    match started {
        Ok((flow, authorize_url)) => {
            jar.save_flow(&flow);
            Ok(Reply::to(authorize_url))
        }
        Err(StartError::NotConfigured) => Ok(Reply::Error(Status::NotFound)),
        Err(StartError::Unavailable(_)) => {
            let name = auth.providers().name_of(provider.as_str());
            jar.flash(
                Kind::Error,
                format!("{name} is not reachable right now. Please try again in a minute."),
            );
            Ok(Reply::to(uri!(login_page(_, _))))
        }
        Err(StartError::Failed(e)) => Err(e),
    }
}

#[post("/account/connect/<provider>", data = "<_form>")]
pub async fn connect(
    provider: Result<Slug, &str>,
    _form: Checked<CsrfOnly<'_>>,
    me: &LoggedIn,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    let Ok(provider) = provider else { return Ok(Reply::Error(Status::NotFound)) };
    leave_for(auth, provider, auth.start_provider_link(provider.as_str(), me.user()).await, &jar)
}

#[post("/account/unlink/<provider>", data = "<_form>")]
pub async fn unlink(
    provider: Result<Slug, &str>,
    _form: Checked<CsrfOnly<'_>>,
    me: &LoggedIn,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    let Ok(provider) = provider else { return Ok(Reply::Error(Status::NotFound)) };
    let name = auth.providers().name_of(provider.as_str());
    match auth.unlink(me.user(), provider.as_str()).await? {
        Unlinked::Done => jar.flash(Kind::Success, format!("Your {name} account is disconnected.")),
        Unlinked::NotLinked => jar.flash(Kind::Info, format!("No {name} account is connected.")),
        Unlinked::LastWayIn => jar
            .flash(Kind::Error, format!("{name} is your only way to sign in, so it cannot be disconnected.")),
    }
    Ok(Reply::to(uri!(account)))
}

/// A provider's callback query.
#[derive(FromForm)]
pub struct CallbackQuery<'r> {
    code: Option<&'r str>,
    state: Option<&'r str>,
    error: Option<&'r str>,
    error_description: Option<&'r str>,
    iss: Option<&'r str>,
}

#[get("/auth/<provider>?<query..>")]
pub async fn callback(
    provider: Result<Slug, &str>,
    query: CallbackQuery<'_>,
    me: Option<&LoggedIn>,
    client: ClientInfo,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    let Ok(provider) = provider else { return Ok(Reply::Error(Status::NotFound)) };
    let CallbackQuery { code, state, error, error_description, iss } = query;
    let callback = Callback { code, state, error, error_description, iss };
    // Taken first, so the flow is spent whatever happens next.
    let flow = jar.take_flow();
    let arrival = auth
        .finish_provider_sign_in(
            provider.as_str(),
            callback,
            flow.as_deref(),
            me.map(LoggedIn::user),
            &client,
        )
        .await;
    let name = auth.providers().name_of(provider.as_str());
    let (kind, message) = match arrival {
        Ok(Arrival::SignedIn { signed_in, next }) => {
            jar.sign_in(&signed_in, auth.session_settings());
            return Ok(Reply::to(next));
        }
        Ok(Arrival::SecondStep { pending, next }) => {
            let step = FirstStep::SecondStep(*pending);
            return Ok(carry_on(&jar, step, auth.session_settings(), Some(next.clone()), None, next));
        }
        Ok(Arrival::Linked) => {
            jar.flash(Kind::Success, format!("Your {name} account is connected."));
            return Ok(Reply::to(uri!(account)));
        }
        Ok(Arrival::LinkedElsewhere) => {
            jar.flash(Kind::Error, format!("That {name} account is already connected to another user."));
            return Ok(Reply::to(uri!(account)));
        }
        Err(ArrivalError::NotConfigured) => return Ok(Reply::Error(Status::NotFound)),
        Err(ArrivalError::NotAllowed(_)) => {
            let message = format!("Your {name} account is not allowed to sign in here.");
            return Ok(message_page_reply(Status::Forbidden, &message));
        }
        Err(ArrivalError::Failed(e)) => return Err(e),
        Err(ArrivalError::Cancelled) => {
            (Kind::Info, format!("Sign-in cancelled: {name} did not share your account."))
        }
        Err(ArrivalError::ProviderSaid(detail)) => {
            (Kind::Error, format!("Sign-in with {name} failed: {detail}"))
        }
        Err(ArrivalError::TryAgain(_)) => (Kind::Error, TRY_AGAIN.to_owned()),
        Err(ArrivalError::NoVerifiedEmail) => (
            Kind::Error,
            format!(
                "Your {name} account has no verified email address. Verify one with {name}, then try again."
            ),
        ),
        Err(ArrivalError::Disabled) => (Kind::Error, "This account is disabled.".to_owned()),
    };
    jar.flash(kind, message);
    Ok(Reply::to(uri!(login_page(_, _))))
}

/// A back-channel logout request's body.
#[derive(FromForm)]
pub struct LogoutTokenForm<'r> {
    logout_token: Option<&'r str>,
}

/// OpenID Connect Back-Channel Logout 1.0: the provider posts a logout token; 200 when it
/// checked out (whether or not a session was still live), 400 with an OAuth error body when
/// not. Never cached. No CSRF token: the signed logout token is the proof.
#[post("/auth/<provider>/backchannel-logout", data = "<form>")]
pub async fn backchannel_logout(
    provider: Result<Slug, &str>,
    form: Option<rocket::form::Form<LogoutTokenForm<'_>>>,
    auth: &State<Auth>,
) -> BackchannelReply {
    let Ok(provider) = provider else { return BackchannelReply::status(Status::NotFound) };
    let Some(token) = form.as_ref().and_then(|f| f.logout_token).filter(|t| !t.is_empty()) else {
        return BackchannelReply::invalid("logout_token is required");
    };
    match auth.backchannel_logout(provider.as_str(), token).await {
        Ok(_) => BackchannelReply::status(Status::Ok),
        Err(BackchannelError::NotConfigured) => BackchannelReply::status(Status::NotFound),
        Err(BackchannelError::Invalid) => BackchannelReply::invalid("the logout token is not valid"),
        Err(BackchannelError::Failed(e)) => {
            log::error!("{provider}: back-channel logout failed: {e}");
            BackchannelReply::status(Status::ServiceUnavailable)
        }
    }
}

/// The back-channel logout's answer: a status, and for a refusal the OAuth error JSON.
#[derive(rocket::Responder)]
pub struct BackchannelReply {
    body: (Status, (ContentType, String)),
    cache: rocket::http::Header<'static>,
}

impl BackchannelReply {
    fn new(status: Status, content_type: ContentType, body: String) -> BackchannelReply {
        BackchannelReply {
            body: (status, (content_type, body)),
            cache: rocket::http::Header::new("Cache-Control", "no-store"),
        }
    }

    fn status(status: Status) -> BackchannelReply {
        BackchannelReply::new(status, ContentType::Plain, String::new())
    }

    fn invalid(description: &str) -> BackchannelReply {
        let body = serde_json::json!({ "error": "invalid_request", "error_description": description });
        BackchannelReply::new(Status::BadRequest, ContentType::JSON, body.to_string())
    }
}

/// This module's routes, mounted at `/`.
pub fn routes() -> Vec<Route> {
    rocket::routes![start, callback, connect, unlink, backchannel_logout]
}
