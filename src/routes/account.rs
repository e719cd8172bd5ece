//! `/account`: the signed-in user's ways to sign in and their sessions; signing other
//! devices out, changing the password, and (with `[email]`) the email address, which
//! `/verify/<token>` confirms. (Connecting and disconnecting a provider sit
//! beside the provider round trip, in `routes::oauth`.)

use rocket::http::{Header, Status};
use rocket::{get, post, uri, FromForm, Responder, Route, State};

use crate::auth::password::MIN_PASSWORD_CHARS;
use crate::auth::{
    Auth, AuthError, ClientInfo, EmailChange, EmailError, PasswordChange, PasswordChangeError,
    FRESH_SIGN_IN_SECS,
};
use crate::web::cookies::Jar;
use crate::web::csrf::{Checked, CsrfOnly, CsrfProtected};
use crate::web::flash::Kind;
use crate::web::guard::LoggedIn;
use crate::web::headers::content_security_policy;
use crate::web::pages::{message_page_reply, Layout, Reply};
use crate::web::pages::{PasskeyView, SecondFactorView};
use crate::web::render::Page;

/// The account page, with a CSP whose `form-action` lets "Connect …" reach the providers.
#[derive(Responder)]
pub struct AccountPage(Page, Header<'static>);

#[get("/account")]
pub async fn account(
    me: &LoggedIn,
    layout: Layout<'_>,
    auth: &State<Auth>,
) -> Result<AccountPage, AuthError> {
    let account = auth.account(me.user()).await?;
    let sessions = auth.sessions(me.user()).await?;
    let providers = auth.providers();
    let form_action =
        std::iter::once("'self'".to_owned()).chain(providers.authorize_origins()).collect::<Vec<_>>();
    let factors = account.factors;
    let fresh = auth.now() - me.session().created_at < FRESH_SIGN_IN_SECS;
    let mut second_factor = SecondFactorView::new(factors, auth.totp_available(), fresh);
    second_factor.passkeys_off = auth.passkeys_off();
    // The count came with the account: most people have no passkey to list.
    if factors.passkeys > 0 {
        second_factor.passkey_list = auth.passkeys(me.user()).await?.iter().map(PasskeyView::from).collect();
    }
    let page = layout.account(providers, &account, &sessions, me.session(), second_factor, auth.now());
    Ok(AccountPage(page, content_security_policy(&form_action.join(" "))))
}

/// Signs one of the person's other devices out. Someone else's session, a made-up id or
/// one already ended: 404, and nothing is ended.
#[post("/account/sessions/<id>/end", data = "<_form>")]
pub async fn end_session(
    id: &str,
    _form: Checked<CsrfOnly<'_>>,
    me: &LoggedIn,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    if id == me.session_id() {
        jar.flash(Kind::Info, "To sign this device out, use Log out.");
        return Ok(Reply::to(uri!(account)));
    }
    if !auth.end_session(me.user(), id).await? {
        return Ok(Reply::Error(Status::NotFound));
    }
    jar.flash(Kind::Success, "That device is signed out.");
    Ok(Reply::to(uri!(account)))
}

#[post("/account/sessions/end-others", data = "<_form>")]
pub async fn end_other_sessions(
    _form: Checked<CsrfOnly<'_>>,
    me: &LoggedIn,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    let ended = auth.end_other_sessions(me.user(), me.session()).await?;
    let message = match ended {
        0 => "No other device was signed in.".to_owned(),
        1 => "One other device is signed out.".to_owned(),
        n => format!("{n} other devices are signed out."),
    };
    jar.flash(Kind::Success, message);
    Ok(Reply::to(uri!(account)))
}

#[derive(FromForm)]
pub struct NewPassword<'r> {
    current_password: Option<&'r str>,
    new_password: Option<&'r str>,
    confirm_password: Option<&'r str>,
    csrf_token: Option<&'r str>,
}

impl CsrfProtected for NewPassword<'_> {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token
    }
}

/// Changes (or sets) the password; every other session ends and this one is renewed.
#[post("/account/password", data = "<form>")]
pub async fn change_password(
    form: Checked<NewPassword<'_>>,
    me: &LoggedIn,
    client: ClientInfo,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    let Checked(form) = form;
    let change = PasswordChange {
        current: form.current_password.unwrap_or(""),
        new: form.new_password.unwrap_or(""),
        confirm: form.confirm_password,
    };
    let message = match auth.change_password(change, me.user(), me.session(), &client).await {
        Ok(signed_in) => {
            jar.write_session(&signed_in, auth.session_settings());
            jar.flash(Kind::Success, "Your password is changed. Your other devices are signed out.");
            return Ok(Reply::to(uri!(account)));
        }
        Err(PasswordChangeError::Failed(e)) => return Err(e),
        Err(PasswordChangeError::Missing) => "Enter your current password and a new one.".to_owned(),
        Err(PasswordChangeError::TooLong) => "That password is too long.".to_owned(),
        Err(PasswordChangeError::WrongCurrent) => "Your current password is not right.".to_owned(),
        Err(PasswordChangeError::Mismatch) => "The new password and its confirmation differ.".to_owned(),
        Err(PasswordChangeError::Unchanged) => "Choose a password different from the current one.".to_owned(),
        Err(PasswordChangeError::Policy(why)) => why.to_string(),
        Err(PasswordChangeError::NotFresh) => format!(
            "To set a password, sign in again with your provider, then set one within 10 minutes \
             ({MIN_PASSWORD_CHARS} characters or more)."
        ),
    };
    // Post/redirect/get: the account page says what went wrong.
    jar.flash(Kind::Error, message);
    Ok(Reply::to(uri!(account)))
}

#[derive(FromForm)]
pub struct NewEmail<'r> {
    csrf_token: Option<&'r str>,
    email: Option<&'r str>,
}

impl CsrfProtected for NewEmail<'_> {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token
    }
}

/// Sets, changes or (empty) removes the email (with `[email]`): a new address gets a link.
#[post("/account/email", data = "<form>")]
pub async fn change_email(
    form: Checked<NewEmail<'_>>,
    me: &LoggedIn,
    client: ClientInfo,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    let Checked(form) = form;
    let (kind, message) = match auth.change_email(me.user(), form.email.unwrap_or(""), &client).await {
        Ok(EmailChange::LinkSent(to)) => (
            Kind::Success,
            format!("We sent a link to {to}. The address counts once you follow it (within a day)."),
        ),
        Ok(EmailChange::Removed) => (Kind::Success, "Your email address is removed.".to_owned()),
        Ok(EmailChange::Unchanged) => (Kind::Info, "That is your address already.".to_owned()),
        Err(EmailError::Invalid) => (Kind::Error, "That is not an email address.".to_owned()),
        Err(EmailError::MailOff) => return Ok(Reply::Error(Status::NotFound)),
        Err(EmailError::Failed(e)) => return Err(e),
    };
    jar.flash(kind, message);
    Ok(Reply::to(format!("{}#email", uri!(account))))
}

#[derive(FromForm)]
pub struct NoticeChoices<'r> {
    csrf_token: Option<&'r str>,
    /// Checkboxes: absent means off.
    new_device: bool,
    password: bool,
    factor: bool,
    email: bool,
}

impl CsrfProtected for NoticeChoices<'_> {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token
    }
}

/// Which security notices come by mail (with `[email]`).
#[post("/account/notices", data = "<form>")]
pub async fn notices(
    form: Checked<NoticeChoices<'_>>,
    me: &LoggedIn,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    if !auth.mail_enabled() {
        return Ok(Reply::Error(Status::NotFound));
    }
    let Checked(form) = form;
    let on: Vec<&str> = [
        ("new_device", form.new_device),
        ("password", form.password),
        ("factor", form.factor),
        ("email", form.email),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    auth.set_notice_preferences(me.user(), &on).await?;
    jar.flash(Kind::Success, "Your notice choices are saved.");
    Ok(Reply::to(format!("{}#notices", uri!(account))))
}

const BAD_VERIFY_LINK: &str = "This link does not work: it was used already, it expired (links last a day), \
                               it is for an address the account no longer has, or it was not copied whole.";

/// A link mailed to a new address: following it confirms the address.
#[get("/verify/<token>")]
pub async fn verify(
    token: &str,
    me: Option<&LoggedIn>,
    client: ClientInfo,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    let Some(email) = auth.verify_email(token, &client).await? else {
        return Ok(message_page_reply(Status::NotFound, BAD_VERIFY_LINK));
    };
    jar.flash(Kind::Success, format!("Your email address {email} is confirmed."));
    Ok(Reply::to(if me.is_some() { "/account#email" } else { "/login" }))
}

/// This module's routes, mounted at `/`.
pub fn routes() -> Vec<Route> {
    rocket::routes![account, end_session, end_other_sessions, change_password, change_email, verify, notices]
}
