//! The second factor: the second step of a sign-in (`/login/second-factor`, and its setup
//! when the policy requires one), stepping a session up, and the account's authenticator
//! app and recovery codes (`/account/totp`, `/account/recovery-codes`).

use rocket::http::Status;
use rocket::{get, post, FromForm, Route, State};

use crate::auth::next::safe_next;
use crate::auth::{Auth, AuthError, ClientInfo, CodeError, FactorError, FirstStep, Pending};
use crate::config::SessionSettings;
use crate::web::cookies::Jar;
use crate::web::csrf::{Checked, CsrfOnly, CsrfProtected, FormRefused};
use crate::web::factor_pages::{SecondFactorPage, TotpSetupPage};
use crate::web::flash::Kind;
use crate::web::guard::LoggedIn;
use crate::web::headers::FormsTo;
use crate::web::pages::{Layout, Reply};

pub const SECOND_STEP: &str = "/login/second-factor";
pub const SETUP_STEP: &str = "/login/second-factor/setup";
const ACCOUNT: &str = "/account";
const TOTP_PAGE: &str = "/account/totp";

/// Carries a first step on: a session (cookie, greeting, then `after`), or the half-done
/// sign-in (its cookie, `next` and `rd` kept in it) and a 303 to its second step.
pub fn carry_on(
    jar: &Jar<'_>,
    step: FirstStep,
    settings: &SessionSettings,
    next: Option<String>,
    rd: Option<String>,
    after: String,
) -> Reply {
    match step {
        FirstStep::SignedIn(signed_in) => {
            jar.sign_in(&signed_in, settings);
            Reply::to(after)
        }
        FirstStep::SecondStep(mut pending) => {
            pending.next = next;
            pending.rd = rd;
            jar.begin_second_step(&pending);
            Reply::to(if pending.setup { SETUP_STEP } else { SECOND_STEP })
        }
    }
}

/// Where a finished sign-in goes: its `next`, else its `rd`, else the home page.
pub fn destination(pending: &Pending) -> String {
    pending.next.clone().or_else(|| pending.rd.clone()).unwrap_or_else(|| "/".to_owned())
}

/// A half-done sign-in that can no longer finish: back to the login page, saying why.
fn start_over(jar: &Jar<'_>, why: &str) -> Reply {
    jar.end_pending();
    jar.flash(Kind::Error, why);
    Reply::to("/login")
}

const TOO_LONG: &str = "That took too long: sign in again.";
const DISABLED: &str = "This account is disabled.";

/// What the person reads for a code that did not work; `None` for the errors that are not
/// the form's (a page of their own).
fn code_message(e: &CodeError) -> Option<(Status, &'static str)> {
    match e {
        CodeError::Missing => {
            Some((Status::UnprocessableEntity, "Enter the 6-digit code from your app, or a recovery code."))
        }
        CodeError::Malformed => {
            Some((Status::UnprocessableEntity, "A code is 6 digits, or a recovery code like 1a2b-3c4d-5e6f."))
        }
        CodeError::Wrong => Some((Status::Ok, "That code is not right.")),
        CodeError::Expired | CodeError::Disabled | CodeError::Failed(_) => None,
    }
}

/// The second step's page: for a half-done sign-in, or a signed-in session at level 1
/// stepping up (an application asked for a second factor).
#[get("/login/second-factor?<rd>&<next>")]
pub async fn second_step_page(
    rd: Option<&str>,
    next: Option<&str>,
    layout: Layout<'_>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<FormsTo<Reply>, AuthError> {
    let reply = second_step_reply(rd, next, &layout, &jar, auth).await?;
    Ok(FormsTo(reply, after_the_form(rd, next, &jar, auth).await))
}

/// Where the second step's form may end up after its redirects (see
/// [`Auth::form_destination`]): a step-up's `rd` or `next`, else the half-done
/// sign-in's.
async fn after_the_form(rd: Option<&str>, next: Option<&str>, jar: &Jar<'_>, auth: &Auth) -> Option<String> {
    let pending = jar.pending();
    let rd = rd.or(pending.as_ref().and_then(|p| p.rd.as_deref()));
    let rd = rd.and_then(|rd| auth.forward_policy().redirect_target(rd));
    let next = next.or(pending.as_ref().and_then(|p| p.next.as_deref())).and_then(safe_next);
    auth.form_destination(next, rd).await
}

async fn second_step_reply(
    rd: Option<&str>,
    next: Option<&str>,
    layout: &Layout<'_>,
    jar: &Jar<'_>,
    auth: &Auth,
) -> Result<Reply, AuthError> {
    let rd = rd.and_then(|rd| auth.forward_policy().redirect_target(rd));
    let next = next.and_then(safe_next);
    if let Some(me) = layout.me() {
        let after = next.map(str::to_owned).or_else(|| rd.clone()).unwrap_or_else(|| "/".to_owned());
        if me.session().aal >= 2 {
            return Ok(Reply::to(after));
        }
        let factors = auth.factors(me.user()).await?;
        if !factors.any() {
            jar.flash(
                Kind::Info,
                "That application asks for a second factor: set one up here, then go back to it.",
            );
            return Ok(Reply::to(ACCOUNT));
        }
        let page = SecondFactorPage {
            username: &me.user().username,
            passkey: factors.passkeys > 0,
            totp: factors.totp,
            step_up: true,
            rd: rd.as_deref(),
            next,
            ..SecondFactorPage::default()
        };
        return Ok(Reply::page(Status::Ok, layout.second_factor(page)));
    }
    let Some(pending) = jar.pending() else { return Ok(Reply::to("/login")) };
    if pending.setup {
        return Ok(Reply::to(SETUP_STEP));
    }
    pending_page(&pending, None, layout, jar, auth).await
}

#[derive(FromForm)]
pub struct CodeForm<'r> {
    code: Option<&'r str>,
    /// A step-up's way back (a half-done sign-in carries its own).
    rd: Option<&'r str>,
    next: Option<&'r str>,
    csrf_token: Option<&'r str>,
}

impl CsrfProtected for CodeForm<'_> {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token
    }
}

/// The form, or the reply to a refused one: an expired token goes back to `again` (a fresh
/// token there), anything else gets its 4xx.
fn read_form<'r>(
    form: Result<Checked<CodeForm<'r>>, FormRefused>,
    again: &str,
) -> Result<CodeForm<'r>, Box<Reply>> {
    match form {
        Ok(Checked(form)) => Ok(form),
        Err(FormRefused::Forged) => Err(Box::new(Reply::to(again.to_owned()))),
        Err(refused) => Err(Box::new(Reply::Error(refused.status()))),
    }
}

/// The second step's page for a half-done sign-in, saying `error` when there is one.
async fn pending_page(
    pending: &Pending,
    error: Option<(Status, &str)>,
    layout: &Layout<'_>,
    jar: &Jar<'_>,
    auth: &Auth,
) -> Result<Reply, AuthError> {
    let (user, factors) = match auth.pending_user(pending).await {
        Ok(found) => found,
        Err(CodeError::Failed(e)) => return Err(e),
        Err(CodeError::Disabled) => return Ok(start_over(jar, DISABLED)),
        Err(_) => return Ok(start_over(jar, TOO_LONG)),
    };
    let page = SecondFactorPage {
        error: error.map(|(_, message)| message),
        username: &user.username,
        passkey: factors.passkeys > 0,
        totp: factors.totp,
        ..SecondFactorPage::default()
    };
    let status = error.map_or(Status::Ok, |(status, _)| status);
    Ok(Reply::page(status, layout.second_factor(page)))
}

/// The second step: a code from the app, or a recovery code.
#[post("/login/second-factor", data = "<form>")]
pub async fn second_step(
    form: Result<Checked<CodeForm<'_>>, FormRefused>,
    layout: Layout<'_>,
    client: ClientInfo,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<FormsTo<Reply>, AuthError> {
    let form = match read_form(form, SECOND_STEP) {
        Ok(form) => form,
        Err(reply) => return Ok(FormsTo(*reply, None)),
    };
    let target = after_the_form(form.rd, form.next, &jar, auth).await;
    let reply = second_step_answer(form, &layout, &client, &jar, auth).await?;
    Ok(FormsTo(reply, target))
}

async fn second_step_answer(
    form: CodeForm<'_>,
    layout: &Layout<'_>,
    client: &ClientInfo,
    jar: &Jar<'_>,
    auth: &Auth,
) -> Result<Reply, AuthError> {
    let typed = form.code.unwrap_or("");
    if let Some(me) = layout.me() {
        let rd = form.rd.and_then(|rd| auth.forward_policy().redirect_target(rd));
        let next = form.next.and_then(safe_next);
        let result = auth.step_up(me.user(), me.session(), typed, client).await;
        let error = match result {
            Ok(signed_in) => {
                jar.write_session(&signed_in, auth.session_settings());
                jar.flash(Kind::Success, "Second step done.");
                let after = next.map(str::to_owned).or_else(|| rd.clone()).unwrap_or_else(|| "/".to_owned());
                return Ok(Reply::to(after));
            }
            Err(CodeError::Failed(e)) => return Err(e),
            Err(e) => e,
        };
        let (status, message) = code_message(&error).unwrap_or((Status::Forbidden, DISABLED));
        let factors = auth.factors(me.user()).await?;
        let page = SecondFactorPage {
            error: Some(message),
            username: &me.user().username,
            passkey: factors.passkeys > 0,
            totp: factors.totp,
            step_up: true,
            rd: rd.as_deref(),
            next,
        };
        return Ok(Reply::page(status, layout.second_factor(page)));
    }
    let Some(pending) = jar.pending() else { return Ok(start_over(jar, TOO_LONG)) };
    let error = match auth.finish_second_step(&pending, typed, client).await {
        Ok(signed_in) => {
            jar.sign_in(&signed_in, auth.session_settings());
            return Ok(Reply::to(destination(&pending)));
        }
        Err(CodeError::Failed(e)) => return Err(e),
        Err(CodeError::Disabled) => return Ok(start_over(jar, DISABLED)),
        Err(CodeError::Expired) => return Ok(start_over(jar, TOO_LONG)),
        Err(e) => e,
    };
    let Some(said) = code_message(&error) else { return Ok(start_over(jar, TOO_LONG)) };
    pending_page(&pending, Some(said), layout, jar, auth).await
}

/// Setting up an authenticator app before anything opens (`second_factor.required`).
#[get("/login/second-factor/setup")]
pub async fn setup_page(layout: Layout<'_>, jar: Jar<'_>, auth: &State<Auth>) -> Result<Reply, AuthError> {
    let Some(pending) = jar.pending().filter(|p| p.setup) else { return Ok(Reply::to("/login")) };
    setup_form(&pending, None, Status::Ok, &layout, &jar, auth).await
}

async fn setup_form(
    pending: &Pending,
    error: Option<&str>,
    status: Status,
    layout: &Layout<'_>,
    jar: &Jar<'_>,
    auth: &Auth,
) -> Result<Reply, AuthError> {
    let user = match auth.pending_user(pending).await {
        Ok((user, _)) => user,
        Err(CodeError::Failed(e)) => return Err(e),
        Err(CodeError::Disabled) => return Ok(start_over(jar, DISABLED)),
        Err(_) => return Ok(start_over(jar, TOO_LONG)),
    };
    let setup = match auth.totp_setup(&user).await {
        Ok(setup) => setup,
        Err(FactorError::Failed(e)) => return Err(e),
        // Set up meanwhile (another tab): the ordinary second step then.
        Err(FactorError::AlreadySet) => return Ok(Reply::to(SECOND_STEP)),
        Err(_) => return Ok(Reply::Error(Status::ServiceUnavailable)),
    };
    let page = TotpSetupPage::new(&setup, SETUP_STEP, error, true);
    Ok(Reply::page(status, layout.totp_setup(page)))
}

#[post("/login/second-factor/setup", data = "<form>")]
pub async fn setup(
    form: Result<Checked<CodeForm<'_>>, FormRefused>,
    layout: Layout<'_>,
    client: ClientInfo,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    let form = match read_form(form, SETUP_STEP) {
        Ok(form) => form,
        Err(reply) => return Ok(*reply),
    };
    let Some(pending) = jar.pending().filter(|p| p.setup) else { return Ok(start_over(&jar, TOO_LONG)) };
    let error = match auth.finish_setup(&pending, form.code.unwrap_or(""), &client).await {
        Ok((signed_in, codes)) => {
            jar.sign_in(&signed_in, auth.session_settings());
            let after = destination(&pending);
            return Ok(Reply::page(Status::Ok, layout.recovery_codes(&codes, &after)));
        }
        Err(CodeError::Failed(e)) => return Err(e),
        Err(CodeError::Disabled) => return Ok(start_over(&jar, DISABLED)),
        Err(CodeError::Expired) => return Ok(start_over(&jar, TOO_LONG)),
        Err(e) => e,
    };
    let (status, message) = code_message(&error).unwrap_or((Status::Ok, "That code is not right."));
    setup_form(&pending, Some(message), status, &layout, &jar, auth).await
}

/// Starts setting up an authenticator app: a secret waiting for its first code.
#[post("/account/totp", data = "<_form>")]
pub async fn start_totp(
    _form: Checked<CsrfOnly<'_>>,
    me: &LoggedIn,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    match auth.totp_setup(me.user()).await {
        Ok(_) => Ok(Reply::to(TOTP_PAGE)),
        Err(e) => Ok(factor_refused(&jar, e)?),
    }
}

fn factor_refused(jar: &Jar<'_>, e: FactorError) -> Result<Reply, AuthError> {
    let message = match e {
        FactorError::Failed(e) => return Err(e),
        FactorError::Unavailable => "Authenticator apps are off here: this server has no secret_key.",
        FactorError::AlreadySet => {
            "You already have an authenticator app. Remove it first to set up another."
        }
        FactorError::NotFresh => "For this, sign in again, then do it within 10 minutes.",
    };
    jar.flash(Kind::Error, message);
    Ok(Reply::to(ACCOUNT))
}

/// The app waiting for its first code: the QR code, the secret and the form.
#[get("/account/totp")]
pub async fn totp_page(
    me: &LoggedIn,
    layout: Layout<'_>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    match auth.totp_setup(me.user()).await {
        Ok(setup) => Ok(Reply::page(
            Status::Ok,
            layout.totp_setup(TotpSetupPage::new(&setup, "/account/totp/confirm", None, false)),
        )),
        Err(e) => factor_refused(&jar, e),
    }
}

#[post("/account/totp/confirm", data = "<form>")]
pub async fn confirm_totp(
    form: Result<Checked<CodeForm<'_>>, FormRefused>,
    me: &LoggedIn,
    layout: Layout<'_>,
    client: ClientInfo,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    let form = match read_form(form, TOTP_PAGE) {
        Ok(form) => form,
        Err(reply) => return Ok(*reply),
    };
    let error = match auth.confirm_totp(me.user(), form.code.unwrap_or(""), &client).await {
        Ok(Some(codes)) => return Ok(Reply::page(Status::Ok, layout.recovery_codes(&codes, ACCOUNT))),
        Ok(None) => {
            jar.flash(Kind::Success, "Your authenticator app is set up.");
            return Ok(Reply::to(ACCOUNT));
        }
        Err(CodeError::Failed(e)) => return Err(e),
        Err(CodeError::Expired | CodeError::Disabled) => {
            jar.flash(Kind::Error, "That setup is no longer waiting: start again.");
            return Ok(Reply::to(ACCOUNT));
        }
        Err(e) => e,
    };
    let (status, message) = code_message(&error).unwrap_or((Status::Ok, "That code is not right."));
    match auth.totp_setup(me.user()).await {
        Ok(setup) => {
            let page = TotpSetupPage::new(&setup, "/account/totp/confirm", Some(message), false);
            Ok(Reply::page(status, layout.totp_setup(page)))
        }
        Err(e) => factor_refused(&jar, e),
    }
}

#[post("/account/totp/remove", data = "<_form>")]
pub async fn remove_totp(
    _form: Checked<CsrfOnly<'_>>,
    me: &LoggedIn,
    client: ClientInfo,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    match auth.remove_totp(me.user(), me.session(), &client).await {
        Ok(true) => jar.flash(Kind::Success, "Your authenticator app is removed."),
        Ok(false) => jar.flash(Kind::Info, "There was no authenticator app to remove."),
        Err(e) => return factor_refused(&jar, e),
    }
    Ok(Reply::to(ACCOUNT))
}

/// Ten new recovery codes, replacing the old ones: shown once, on this response.
#[post("/account/recovery-codes", data = "<_form>")]
pub async fn new_recovery_codes(
    _form: Checked<CsrfOnly<'_>>,
    me: &LoggedIn,
    layout: Layout<'_>,
    client: ClientInfo,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    match auth.new_recovery_codes(me.user(), me.session(), &client).await {
        Ok(codes) => Ok(Reply::page(Status::Ok, layout.recovery_codes(&codes, ACCOUNT))),
        Err(FactorError::Unavailable) => {
            jar.flash(Kind::Error, "Recovery codes come with a second factor: set one up first.");
            Ok(Reply::to(ACCOUNT))
        }
        Err(e) => factor_refused(&jar, e),
    }
}

/// This module's routes, mounted at `/`.
pub fn routes() -> Vec<Route> {
    rocket::routes![
        second_step_page,
        second_step,
        setup_page,
        setup,
        start_totp,
        totp_page,
        confirm_totp,
        remove_totp,
        new_recovery_codes
    ]
}
