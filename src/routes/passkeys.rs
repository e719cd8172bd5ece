//! Passkeys: the JSON the portal's own script (`/static/passkeys.js`) exchanges with the
//! browser's WebAuthn, for adding one on `/account`, signing in with one on `/login`, and the
//! second step; and removing one (a form). Each ceremony is two calls: `…/options` (the
//! ceremony's id goes into a private cookie) and the answer. Same-origin only; errors are
//! `{"error": …}` with a 4xx.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{post, Route, State};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::factors::passkey::PasskeyError;
use crate::auth::{Auth, AuthError, ClientInfo, SignedIn};
use crate::routes::factors::destination;
use crate::web::cookies::Jar;
use crate::web::csrf::{Checked, CsrfOnly, SameOriginRequired};
use crate::web::flash::Kind;
use crate::web::guard::LoggedIn;
use crate::web::pages::Reply;

const EXPIRED: &str = "That took too long, or was started elsewhere: try again.";

/// A JSON answer: the status and the body.
type Answer = (Status, Json<Value>);

fn error(status: Status, message: &str) -> Answer {
    (status, Json(json!({ "error": message })))
}

/// What the person reads for a refused ceremony; a store error is the usual 503/500.
fn refused(e: PasskeyError) -> Result<Answer, AuthError> {
    Ok(match e {
        PasskeyError::Failed(e) => return Err(e),
        PasskeyError::Off => error(Status::NotFound, "Passkeys are off here."),
        PasskeyError::Expired => {
            error(Status::BadRequest, "That took too long, or was started elsewhere: try again.")
        }
        PasskeyError::Refused(why) => {
            log::info!("a passkey answer was refused: {why}");
            error(Status::BadRequest, "That passkey was not accepted.")
        }
        PasskeyError::BadName => {
            error(Status::UnprocessableEntity, "Name the passkey in 64 characters or fewer.")
        }
        PasskeyError::Taken => error(Status::Conflict, "That passkey is already added."),
        PasskeyError::Disabled => error(Status::Forbidden, "This account is disabled."),
        PasskeyError::NotFresh => error(Status::Forbidden, "Sign in again, then do this within 10 minutes."),
    })
}

/// Options for the browser, the ceremony bound to it.
fn options(jar: &Jar<'_>, started: Result<(String, Value), PasskeyError>) -> Result<Answer, AuthError> {
    match started {
        Ok((id, options)) => {
            jar.start_ceremony(id);
            Ok((Status::Ok, Json(options)))
        }
        Err(e) => refused(e),
    }
}

/// The browser's answer to a ceremony, and what goes with it.
#[derive(Deserialize)]
pub struct Finish {
    /// `PublicKeyCredential.toJSON()`.
    credential: Value,
    /// A new passkey's name (empty: the browser's name).
    #[serde(default)]
    name: String,
    /// "Keep me signed in" on the login page.
    #[serde(default)]
    remember: bool,
    next: Option<String>,
    rd: Option<String>,
}

/// The JSON body, or the 4xx for one that could not be read.
fn read(body: Result<Json<Finish>, rocket::serde::json::Error<'_>>) -> Result<Finish, Answer> {
    match body {
        Ok(Json(finish)) => Ok(finish),
        Err(rocket::serde::json::Error::Io(_)) => {
            Err(error(Status::PayloadTooLarge, "That answer is too large."))
        }
        Err(rocket::serde::json::Error::Parse(..)) => {
            Err(error(Status::BadRequest, "That answer could not be read."))
        }
    }
}

/// The ceremony this browser started (taken, whatever comes next) and its answer; or the
/// 4xx for an unreadable body or a browser with no ceremony under way.
fn answered(
    jar: &Jar<'_>,
    body: Result<Json<Finish>, rocket::serde::json::Error<'_>>,
) -> Result<(String, Finish), Answer> {
    let ceremony = jar.take_ceremony();
    let finish = read(body)?;
    match ceremony {
        Some(ceremony) => Ok((ceremony, finish)),
        None => Err(error(Status::BadRequest, EXPIRED)),
    }
}

/// Signed in: the cookie, and where the script goes next.
fn signed_in(jar: &Jar<'_>, signed_in: &SignedIn, auth: &Auth, after: String) -> Answer {
    jar.sign_in(signed_in, auth.session_settings());
    (Status::Ok, Json(json!({ "redirect": after })))
}

fn after(auth: &Auth, next: Option<&str>, rd: Option<&str>) -> String {
    auth.destination(next, rd).unwrap_or_else(|| "/".to_owned())
}

#[post("/account/passkeys/options")]
pub async fn add_options(
    _same_origin: SameOriginRequired,
    me: &LoggedIn,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Answer, AuthError> {
    options(&jar, auth.begin_passkey_registration(me.user()).await)
}

/// Adds the passkey: `201` with `recovery_codes` (ten, shown once) when it is the person's
/// first second factor, else `201` with none.
#[post("/account/passkeys", format = "json", data = "<body>")]
pub async fn add(
    _same_origin: SameOriginRequired,
    body: Result<Json<Finish>, rocket::serde::json::Error<'_>>,
    me: &LoggedIn,
    client: ClientInfo,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Answer, AuthError> {
    let (ceremony, finish) = match answered(&jar, body) {
        Ok(answered) => answered,
        Err(answer) => return Ok(answer),
    };
    match auth
        .finish_passkey_registration(me.user(), &ceremony, &finish.name, &finish.credential, &client)
        .await
    {
        Ok(codes) => Ok((Status::Created, Json(json!({ "recovery_codes": codes.unwrap_or_default() })))),
        Err(e) => refused(e),
    }
}

#[post("/login/passkey/options")]
pub async fn sign_in_options(
    _same_origin: SameOriginRequired,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Answer, AuthError> {
    options(&jar, auth.begin_passkey_sign_in().await)
}

/// Signs in with a passkey alone: `{"redirect": …}` and the session cookie.
#[post("/login/passkey", format = "json", data = "<body>")]
pub async fn sign_in(
    _same_origin: SameOriginRequired,
    body: Result<Json<Finish>, rocket::serde::json::Error<'_>>,
    client: ClientInfo,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Answer, AuthError> {
    let (ceremony, finish) = match answered(&jar, body) {
        Ok(answered) => answered,
        Err(answer) => return Ok(answer),
    };
    match auth.finish_passkey_sign_in(&ceremony, &finish.credential, finish.remember, &client).await {
        Ok(done) => {
            Ok(signed_in(&jar, &done, auth, after(auth, finish.next.as_deref(), finish.rd.as_deref())))
        }
        Err(e) => refused(e),
    }
}

/// Options for the second step: the half-done sign-in's user, or the signed-in one
/// stepping up.
#[post("/login/second-factor/passkey/options")]
pub async fn step_options(
    _same_origin: SameOriginRequired,
    me: Option<&LoggedIn>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Answer, AuthError> {
    if let Some(me) = me {
        return options(&jar, auth.begin_passkey_step(me.user()).await);
    }
    let Some(pending) = jar.pending() else { return refused(PasskeyError::Expired) };
    match auth.pending_user(&pending).await {
        Ok((user, _)) => options(&jar, auth.begin_passkey_step(&user).await),
        Err(crate::auth::CodeError::Failed(e)) => Err(e),
        Err(_) => refused(PasskeyError::Expired),
    }
}

/// The second step with a passkey: `{"redirect": …}` and the session cookie.
#[post("/login/second-factor/passkey", format = "json", data = "<body>")]
pub async fn step(
    _same_origin: SameOriginRequired,
    body: Result<Json<Finish>, rocket::serde::json::Error<'_>>,
    me: Option<&LoggedIn>,
    client: ClientInfo,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Answer, AuthError> {
    let (ceremony, finish) = match answered(&jar, body) {
        Ok(answered) => answered,
        Err(answer) => return Ok(answer),
    };
    if let Some(me) = me {
        let done =
            auth.step_up_with_passkey(me.user(), me.session(), &ceremony, &finish.credential, &client).await;
        return match done {
            Ok(done) => {
                jar.write_session(&done, auth.session_settings());
                jar.flash(Kind::Success, "Second step done.");
                let after = after(auth, finish.next.as_deref(), finish.rd.as_deref());
                Ok((Status::Ok, Json(json!({ "redirect": after }))))
            }
            Err(e) => refused(e),
        };
    }
    let Some(pending) = jar.pending() else { return refused(PasskeyError::Expired) };
    match auth.finish_second_step_with_passkey(&pending, &ceremony, &finish.credential, &client).await {
        Ok(done) => Ok(signed_in(&jar, &done, auth, destination(&pending))),
        Err(e) => refused(e),
    }
}

/// Removes one of the person's passkeys (a fresh sign-in is required).
#[post("/account/passkeys/<id>/remove", data = "<_form>")]
pub async fn remove(
    id: &str,
    _form: Checked<CsrfOnly<'_>>,
    me: &LoggedIn,
    client: ClientInfo,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    match auth.remove_passkey(me.user(), me.session(), id, &client).await {
        Ok(true) => jar.flash(Kind::Success, "That passkey is removed."),
        Ok(false) => return Ok(Reply::Error(Status::NotFound)),
        Err(PasskeyError::Failed(e)) => return Err(e),
        Err(_) => jar.flash(Kind::Error, "For this, sign in again, then do it within 10 minutes."),
    }
    Ok(Reply::to("/account"))
}

/// This module's routes, mounted at `/`.
pub fn routes() -> Vec<Route> {
    rocket::routes![add_options, add, sign_in_options, sign_in, step_options, step, remove]
}
