//! `/login` and `/logout`.

use rocket::http::Status;
use rocket::{get, post, uri, FromForm, State};

use crate::auth::next::safe_next;
use crate::auth::{Auth, AuthError, ClientInfo, PasswordSignIn, SignInError};
use crate::routes::pages::rocket_uri_macro_index;
use crate::web::cookies::Jar;
use crate::web::csrf::{Checked, CsrfOnly, CsrfProtected, FormRefused};
use crate::web::flash::Kind;
use crate::web::guard::LoggedIn;
use crate::web::pages::{Layout, LoginForm, Reply};

#[get("/login?<next>")]
pub fn login_page(next: Option<&str>, layout: Layout<'_>, auth: &State<Auth>) -> Reply {
    let form = LoginForm { next: next.and_then(safe_next), ..LoginForm::default() };
    Reply::page(Status::Ok, layout.login(auth.providers(), form))
}

#[derive(FromForm)]
pub struct Credentials<'r> {
    username: Option<&'r str>,
    password: Option<&'r str>,
    next: Option<&'r str>,
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
) -> Result<Reply, AuthError> {
    let form = match form {
        Ok(Checked(form)) => form,
        // An expired or forged token gets the form again, with a fresh token to retry with.
        Err(FormRefused::Forged) => {
            let error = Some("This form had expired. Please try again.");
            return Ok(Reply::page(
                Status::Forbidden,
                layout.login(auth.providers(), LoginForm { error, ..LoginForm::default() }),
            ));
        }
        Err(refused) => return Ok(Reply::Error(refused.status())),
    };
    let next = form.next.and_then(safe_next);
    let username = form.username.unwrap_or("");
    let attempt = PasswordSignIn { username, password: form.password.unwrap_or(""), remember: form.remember };
    let (status, error, shown) = match auth.sign_in_with_password(attempt, &client).await {
        Ok(signed_in) => {
            jar.sign_in(&signed_in, auth.session_settings());
            return Ok(Reply::to(next.map_or_else(|| uri!(index).to_string(), str::to_owned)));
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
    let again = LoginForm { error: Some(error), username: shown, next };
    Ok(Reply::page(status, layout.login(auth.providers(), again)))
}

#[get("/logout")]
pub fn logout_page(me: Option<&LoggedIn>, layout: Layout<'_>) -> Reply {
    match me {
        Some(_) => Reply::page(Status::Ok, layout.logout()),
        None => Reply::to(uri!(index)),
    }
}

/// Ends this session only: the person's other devices stay signed in.
#[post("/logout", data = "<_form>")]
pub async fn logout(
    _form: Checked<CsrfOnly<'_>>,
    me: Option<&LoggedIn>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    if let Some(me) = me {
        auth.sign_out(me.user(), me.session()).await?;
    }
    Ok(signed_out(&jar, "You were signed out."))
}

/// Ends every session of the person, on every device.
#[post("/logout/everywhere", data = "<_form>")]
pub async fn logout_everywhere(
    _form: Checked<CsrfOnly<'_>>,
    me: Option<&LoggedIn>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    if let Some(me) = me {
        auth.sign_out_everywhere(me.user()).await?;
    }
    Ok(signed_out(&jar, "You were signed out on every device."))
}

/// The browser forgets its session, and the home page says so.
fn signed_out(jar: &Jar<'_>, message: &str) -> Reply {
    jar.end_session();
    jar.flash(Kind::Success, message);
    Reply::to(uri!(index))
}
