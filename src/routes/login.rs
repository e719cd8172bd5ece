//! `/login` and `/logout`.

use rocket::http::Status;
use rocket::{get, post, uri, FromForm, Route, State};

use crate::auth::next::safe_next;
use crate::auth::{Auth, AuthError, ClientInfo, PasswordSignIn, SignInError};
use crate::routes::factors::carry_on;
use crate::routes::pages::rocket_uri_macro_index;
use crate::web::cookies::Jar;
use crate::web::csrf::{Checked, CsrfProtected, FormRefused};
use crate::web::flash::Kind;
use crate::web::guard::LoggedIn;
use crate::web::headers::FormsTo;
use crate::web::pages::{Layout, LoginForm, Reply};

#[get("/login?<next>&<rd>")]
pub async fn login_page(
    next: Option<&str>,
    rd: Option<&str>,
    layout: Layout<'_>,
    auth: &State<Auth>,
) -> FormsTo<Reply> {
    let rd = rd.and_then(|rd| auth.forward_policy().redirect_target(rd));
    // Already signed in, sent here by a proxy: straight back to the application.
    if let (Some(rd), Some(_), None) = (&rd, layout.me(), next) {
        return FormsTo(Reply::to(rd.clone()), None);
    }
    let passkeys = auth.passkeys_off().is_none();
    let next = next.and_then(safe_next);
    let form = LoginForm { next, rd: rd.as_deref(), passkeys, ..LoginForm::default() };
    let page = Reply::page(Status::Ok, layout.login(auth.providers(), form));
    FormsTo(page, auth.form_destination(next, rd).await)
}

#[derive(FromForm)]
pub struct Credentials<'r> {
    username: Option<&'r str>,
    password: Option<&'r str>,
    next: Option<&'r str>,
    /// An application's URL to return to (forward-auth), followed only to allowed hosts.
    rd: Option<&'r str>,
    csrf_token: Option<&'r str>,
    /// "Keep me signed in" (a checkbox: absent means no).
    remember: bool,
}

impl CsrfProtected for Credentials<'_> {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token
    }
}

#[post("/login", data = "<form>")]
pub async fn login(
    form: Result<Checked<Credentials<'_>>, FormRefused>,
    layout: Layout<'_>,
    client: ClientInfo,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<FormsTo<Reply>, AuthError> {
    let form = match form {
        Ok(Checked(form)) => form,
        // An expired or forged token gets the form again, with a fresh token to retry with.
        Err(FormRefused::Forged) => {
            let error = Some("This form had expired. Please try again.");
            let passkeys = auth.passkeys_off().is_none();
            let page = layout.login(auth.providers(), LoginForm { error, passkeys, ..LoginForm::default() });
            return Ok(FormsTo(Reply::page(Status::Forbidden, page), None));
        }
        Err(refused) => return Ok(FormsTo(Reply::Error(refused.status()), None)),
    };
    let next = form.next.and_then(safe_next);
    let rd = form.rd.and_then(|rd| auth.forward_policy().redirect_target(rd));
    let username = form.username.unwrap_or("");
    let attempt = PasswordSignIn { username, password: form.password.unwrap_or(""), remember: form.remember };
    let (status, error, shown) = match auth.sign_in_with_password(attempt, &client).await {
        Ok(step) => {
            let after =
                next.map(str::to_owned).or_else(|| rd.clone()).unwrap_or_else(|| uri!(index).to_string());
            let reply = carry_on(&jar, step, auth.session_settings(), next.map(str::to_owned), rd, after);
            return Ok(FormsTo(reply, None));
        }
        Err(SignInError::TooLong) => (Status::PayloadTooLarge, "That username or password is too long.", ""),
        Err(SignInError::Unreadable) => {
            (Status::BadRequest, "The form contained characters that could not be read.", "")
        }
        Err(SignInError::Missing) => {
            (Status::UnprocessableEntity, "Enter your username and password.", username)
        }
        Err(SignInError::Invalid) => (Status::Ok, "Invalid username or password.", username),
        Err(SignInError::Disabled) => (Status::Forbidden, "This account is disabled.", username),
        Err(SignInError::Failed(e)) => return Err(e),
    };
    let passkeys = auth.passkeys_off().is_none();
    let again = LoginForm { error: Some(error), username: shown, next, rd: rd.as_deref(), passkeys };
    let page = Reply::page(status, layout.login(auth.providers(), again));
    Ok(FormsTo(page, auth.form_destination(next, rd).await))
}

/// The logout page; `rd` (an application's URL on an allowed host) is where the buttons
/// send the person afterwards.
#[get("/logout?<rd>")]
pub fn logout_page(
    rd: Option<&str>,
    me: Option<&LoggedIn>,
    layout: Layout<'_>,
    auth: &State<Auth>,
) -> FormsTo<Reply> {
    let rd = rd.and_then(|rd| auth.forward_policy().redirect_target(rd));
    match (me, rd) {
        (Some(_), rd) => {
            let page = Reply::page(Status::Ok, layout.logout(rd.as_deref()));
            FormsTo(page, rd)
        }
        (None, Some(rd)) => FormsTo(Reply::to(rd), None),
        (None, None) => FormsTo(Reply::to(uri!(index)), None),
    }
}

/// The logout forms: the token, and where to go afterwards.
#[derive(FromForm)]
pub struct Logout<'r> {
    csrf_token: Option<&'r str>,
    rd: Option<&'r str>,
}

impl CsrfProtected for Logout<'_> {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token
    }
}

/// Ends this session only: the person's other devices stay signed in.
#[post("/logout", data = "<form>")]
pub async fn logout(
    form: Checked<Logout<'_>>,
    me: Option<&LoggedIn>,
    jar: Jar<'_>,
    layout: Layout<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    if let Some(me) = me {
        auth.sign_out(me.user(), me.session()).await?;
        // Made through a provider with `logout = "provider"`: its session ends too. A page,
        // not a redirect, takes the browser there: a form's redirect to another origin
        // would need that origin in every page's CSP `form-action`.
        if let Some((name, url)) = auth.upstream_sign_out(me.user(), me.session()).await {
            jar.end_session();
            return Ok(Reply::page(Status::Ok, layout.upstream_logout(&name, &url)));
        }
    }
    Ok(signed_out(&jar, "You were signed out.", auth.destination(None, form.0.rd)))
}

/// Ends every session of the person, on every device.
#[post("/logout/everywhere", data = "<form>")]
pub async fn logout_everywhere(
    form: Checked<Logout<'_>>,
    me: Option<&LoggedIn>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    if let Some(me) = me {
        auth.sign_out_everywhere(me.user()).await?;
    }
    Ok(signed_out(&jar, "You were signed out on every device.", auth.destination(None, form.0.rd)))
}

/// The browser forgets its session; the home page says so, or the application `rd` names
/// is next.
fn signed_out(jar: &Jar<'_>, message: &str, rd: Option<String>) -> Reply {
    jar.end_session();
    match rd {
        Some(rd) => Reply::to(rd),
        None => {
            jar.flash(Kind::Success, message);
            Reply::to(uri!(index))
        }
    }
}

/// This module's routes, mounted at `/`.
pub fn routes() -> Vec<Route> {
    rocket::routes![login_page, login, logout_page, logout, logout_everywhere]
}
