//! `/reset`: "Forgot password?" (with `[email]`): a username or email in, one answer out,
//! and a link by mail when an account matches.
//!
//! `/reset/<token>`: a one-time password link. The page asks for a new password
//! (`new_password`, and `confirm_password`); the form sets it, signs the person out
//! everywhere else and signs them in here. An unknown, used or expired link gets one page
//! saying so, whatever the reason (404).

use rocket::http::Status;
use rocket::{get, post, uri, FromForm, Route, State};

use crate::auth::{Auth, AuthError, ClientInfo, FirstStep, Reset, ResetError, ResetRequest, MAX_LOGIN_BYTES};
use crate::routes::factors::carry_on;
use crate::routes::pages::rocket_uri_macro_index;
use crate::web::cookies::Jar;
use crate::web::csrf::{Checked, CsrfProtected, FormRefused};
use crate::web::flash::Kind;
use crate::web::mail_pages::ResetRequestPage;
use crate::web::pages::{message_page_reply, Layout, Reply};

const BAD_LINK: &str = "This link does not work: it was used already, it expired, or it was not copied \
                        whole. Ask for a new one.";
const DISABLED: &str = "This account is disabled. Ask your administrator.";

/// "Forgot password?": the form. There is none without `[email]`.
#[get("/reset")]
pub fn request_page(layout: Layout<'_>, auth: &State<Auth>) -> Reply {
    if !auth.mail_enabled() {
        return Reply::Error(Status::NotFound);
    }
    Reply::page(Status::Ok, layout.reset_request(ResetRequestPage { sent: false, login: "", error: None }))
}

#[derive(FromForm)]
pub struct ForgotForm<'r> {
    csrf_token: Option<&'r str>,
    login: Option<&'r str>,
}

impl CsrfProtected for ForgotForm<'_> {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token
    }
}

/// "Forgot password?": one answer whoever was asked about (the mail is queued, not sent
/// here), unless this address asked too often (429) or the field is empty or too long.
#[post("/reset", data = "<form>")]
pub async fn request(
    form: Result<Checked<ForgotForm<'_>>, FormRefused>,
    client: ClientInfo,
    layout: Layout<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    if !auth.mail_enabled() {
        return Ok(Reply::Error(Status::NotFound));
    }
    let form_again = |status, login, error| {
        Reply::page(status, layout.reset_request(ResetRequestPage { sent: false, login, error: Some(error) }))
    };
    let form = match form {
        Ok(Checked(form)) => form,
        Err(FormRefused::Forged) => {
            return Ok(form_again(Status::Forbidden, "", "This form had expired. Please try again."));
        }
        Err(refused) => return Ok(Reply::Error(refused.status())),
    };
    let login = form.login.unwrap_or("").trim();
    if login.is_empty() {
        return Ok(form_again(Status::UnprocessableEntity, "", "Enter your username or email."));
    }
    if login.len() > MAX_LOGIN_BYTES {
        return Ok(form_again(
            Status::UnprocessableEntity,
            "",
            "That is too long for a username or an email.",
        ));
    }
    match auth.request_reset(login, &client).await? {
        ResetRequest::Answered => Ok(Reply::page(
            Status::Ok,
            layout.reset_request(ResetRequestPage { sent: true, login: "", error: None }),
        )),
        ResetRequest::Throttled(retry) => {
            let minutes = (retry.0 + 59) / 60;
            let error = format!("Too many requests from your address. Try again in {minutes} minute(s).");
            Ok(form_again(Status::TooManyRequests, login, &error))
        }
    }
}

#[get("/reset/<token>")]
pub async fn reset_page(token: &str, layout: Layout<'_>, auth: &State<Auth>) -> Result<Reply, AuthError> {
    Ok(match auth.reset_link_user(token).await? {
        Some(user) if user.disabled => message_page_reply(Status::Forbidden, DISABLED),
        Some(user) => Reply::page(Status::Ok, layout.reset(&user.username, None)),
        None => message_page_reply(Status::NotFound, BAD_LINK),
    })
}

#[derive(FromForm)]
pub struct NewPassword<'r> {
    csrf_token: Option<&'r str>,
    new_password: Option<&'r str>,
    confirm_password: Option<&'r str>,
}

impl CsrfProtected for NewPassword<'_> {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token
    }
}

#[post("/reset/<token>", data = "<form>")]
pub async fn reset(
    token: &str,
    form: Result<Checked<NewPassword<'_>>, FormRefused>,
    client: ClientInfo,
    layout: Layout<'_>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    let form = match form {
        Ok(Checked(form)) => form,
        Err(FormRefused::Forged) => {
            // An old page: the form again, with a fresh token.
            let Some(user) = auth.reset_link_user(token).await? else {
                return Ok(message_page_reply(Status::NotFound, BAD_LINK));
            };
            let error = Some("This form had expired. Please try again.");
            return Ok(Reply::page(Status::Forbidden, layout.reset(&user.username, error)));
        }
        Err(refused) => return Ok(Reply::Error(refused.status())),
    };
    let wanted = Reset { new: form.new_password.unwrap_or(""), confirm: form.confirm_password };
    let (status, error) = match auth.reset_password(token, wanted, &client).await {
        Ok(FirstStep::SignedIn(signed_in)) => {
            jar.sign_in(&signed_in, auth.session_settings());
            jar.flash(Kind::Success, "Your password is set, and you are signed in.");
            return Ok(Reply::to(uri!(index)));
        }
        Ok(step) => {
            // A second factor still stands: its step next.
            return Ok(carry_on(&jar, step, auth.session_settings(), None, None, uri!(index).to_string()));
        }
        Err(ResetError::BadLink) => return Ok(message_page_reply(Status::NotFound, BAD_LINK)),
        Err(ResetError::Disabled) => return Ok(message_page_reply(Status::Forbidden, DISABLED)),
        Err(ResetError::Failed(e)) => return Err(e),
        Err(ResetError::Missing) => (Status::UnprocessableEntity, "Enter a new password.".to_owned()),
        Err(ResetError::TooLong) => (Status::PayloadTooLarge, "That password is too long.".to_owned()),
        Err(ResetError::Mismatch) => {
            (Status::UnprocessableEntity, "The password and its repetition differ.".to_owned())
        }
        Err(ResetError::Policy(why)) => (Status::UnprocessableEntity, why.to_string()),
    };
    let Some(user) = auth.reset_link_user(token).await? else {
        return Ok(message_page_reply(Status::NotFound, BAD_LINK));
    };
    Ok(Reply::page(status, layout.reset(&user.username, Some(&error))))
}

/// This module's routes, mounted at `/`.
pub fn routes() -> Vec<Route> {
    rocket::routes![request_page, request, reset_page, reset]
}
