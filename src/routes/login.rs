//! `/login` and `/logout`.

use std::net::IpAddr;

use rocket::form::{Errors, Form};
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post, FromForm, Responder, State};

use crate::auth::guard::LoggedIn;
use crate::auth::next::safe_next;
use crate::auth::oauth::Providers;
use crate::auth::password::{Hasher, MAX_PASSWORD_BYTES};
use crate::auth::session::{Method, Session};
use crate::auth::{self, Verdict};
use crate::clock::Now;
use crate::config::Settings;
use crate::cookies::Jar;
use crate::csrf::{CsrfForm, CsrfToken, SameOrigin};
use crate::error::Error;
use crate::flash::{Flash, Kind};
use crate::routes::pages::error_page;
use crate::store::{normalize_username, Store};
use crate::throttle::{RetryAfter, Throttle};
use crate::views::{self, Html, Layout, ProviderButton};

/// Longest username field accepted before answering 413 (usernames are 64 characters at
/// most; this leaves room for multi-byte ones).
const MAX_USERNAME_BYTES: usize = 256;

// A Redirect is ~270 bytes against a page's 40; a Reply lives for one return per request,
// so boxing would only add an allocation to every redirect.
#[allow(clippy::large_enum_variant)]
#[derive(Responder)]
pub enum Reply {
    Redirect(Redirect),
    Page((Status, Html)),
}

/// What the login form shows besides the layout.
#[derive(Default)]
struct LoginView<'a> {
    error: Option<&'a str>,
    username: &'a str,
    next: Option<&'a str>,
}

fn login_form(
    status: Status,
    csrf: &CsrfToken,
    providers: &Providers,
    flash: Option<Flash>,
    me: Option<&LoggedIn>,
    view: LoginView<'_>,
) -> Reply {
    let providers = providers
        .enabled()
        .into_iter()
        .map(|p| ProviderButton { slug: p.slug(), name: p.display_name() })
        .collect();
    let page = views::Login {
        layout: Layout { me: me.map(LoggedIn::user), csrf: csrf.value(), flash: flash.as_ref() },
        error: view.error,
        username: view.username,
        next: view.next,
        providers,
    };
    Reply::Page((status, Html::of(&page)))
}

#[get("/login?<next>")]
pub fn login_page(
    me: Option<&LoggedIn>,
    flash: Option<Flash>,
    csrf: CsrfToken,
    providers: &State<Providers>,
    next: Option<&str>,
) -> Reply {
    let next = next.and_then(safe_next);
    login_form(Status::Ok, &csrf, providers, flash, me, LoginView { next, ..LoginView::default() })
}

#[derive(FromForm)]
pub struct LoginForm<'r> {
    username: Option<&'r str>,
    password: Option<&'r str>,
    next: Option<&'r str>,
    csrf_token: Option<&'r str>,
    /// "Keep me signed in" (a checkbox: absent means no).
    remember: bool,
}

#[allow(clippy::too_many_arguments)]
#[post("/login", data = "<form>")]
pub async fn login(
    _same_origin: SameOrigin,
    jar: Jar<'_>,
    csrf: CsrfToken,
    ip: Option<IpAddr>,
    store: &State<Store>,
    hasher: &State<Hasher>,
    settings: &State<Settings>,
    providers: &State<Providers>,
    throttle: &State<Throttle>,
    now: &State<Now>,
    form: Result<Form<LoginForm<'_>>, Errors<'_>>,
) -> Result<Reply, Error> {
    let form = match form {
        Ok(form) => form.into_inner(),
        Err(errors) => {
            log::info!("an unreadable sign-in form was refused ({})", errors.status());
            return Ok(Reply::Page(error_page(errors.status())));
        }
    };
    let next = form.next.and_then(safe_next);
    let (username, password) = (form.username.unwrap_or(""), form.password.unwrap_or(""));
    let again = |status, error, username| {
        login_form(status, &csrf, providers, None, None, LoginView { error: Some(error), username, next })
    };

    if username.len() > MAX_USERNAME_BYTES || password.len() > MAX_PASSWORD_BYTES {
        return Ok(again(Status::PayloadTooLarge, "That username or password is too long.", ""));
    }
    // Rocket decodes bad percent-escapes to U+FFFD; no real credential contains one.
    if username.contains('\u{FFFD}') || password.contains('\u{FFFD}') {
        return Ok(again(Status::BadRequest, "The form contained characters that could not be read.", ""));
    }
    if !csrf.matches(form.csrf_token) {
        log::warn!("a sign-in form without a valid CSRF token was refused");
        return Ok(again(Status::Forbidden, "This form had expired. Please try again.", username));
    }
    if username.trim().is_empty() || password.is_empty() {
        return Ok(again(Status::UnprocessableEntity, "Enter your username and password.", username));
    }

    // Shed before the store read and the queue: under a flood this is most requests.
    if hasher.is_saturated() {
        return Err(Error::Busy);
    }
    let now = now.get();
    let account = normalize_username(username).map_or_else(|_| username.to_owned(), |(_, key)| key);
    let attempt = match throttle.reserve_login(&account, ip, now) {
        Ok(attempt) => attempt,
        Err(RetryAfter(seconds)) => {
            auth::log_throttled(now, username, ip);
            return Err(Error::TooManyAttempts(seconds));
        }
    };
    let verdict = match auth::authenticate(store, hasher, username, password).await {
        Ok(verdict) => verdict,
        Err(e) => {
            // No answer was learned: the attempt was not a guess.
            attempt.refund();
            return Err(e);
        }
    };
    auth::log_attempt(now, username, ip, &verdict);
    match verdict {
        // A wrong guess keeps its place in the budget.
        Verdict::Invalid => drop(attempt),
        Verdict::Valid(_) | Verdict::Disabled => attempt.refund(),
    }
    match verdict {
        Verdict::Valid(user) => {
            auth::complete_sign_in(
                &jar,
                &settings.session,
                store,
                &user,
                Method::Password,
                form.remember,
                now,
            )
            .await;
            Ok(Reply::Redirect(Redirect::to(next.unwrap_or("/").to_owned())))
        }
        Verdict::Invalid => Ok(again(Status::Ok, "Invalid username or password.", username)),
        Verdict::Disabled => Ok(again(Status::Forbidden, "This account is disabled.", username)),
    }
}

#[get("/logout")]
pub fn logout_page(me: Option<&LoggedIn>, csrf: CsrfToken) -> Reply {
    match me {
        Some(me) => {
            let layout = Layout { me: Some(me.user()), csrf: csrf.value(), flash: None };
            Reply::Page((Status::Ok, Html::of(&views::Logout { layout, me: me.user() })))
        }
        None => Reply::Redirect(Redirect::to("/")),
    }
}

#[post("/logout", data = "<form>")]
pub async fn logout(
    _same_origin: SameOrigin,
    jar: Jar<'_>,
    csrf: CsrfToken,
    me: Option<&LoggedIn>,
    store: &State<Store>,
    form: Form<CsrfForm<'_>>,
) -> Result<Reply, Error> {
    if !csrf.matches(form.csrf_token) {
        log::warn!("a logout without a valid CSRF token was refused");
        return Ok(Reply::Page(error_page(Status::Forbidden)));
    }
    if let Some(me) = me {
        // Ends this session and every other copy of it: replayed cookies stop working.
        store.bump_epoch(me.user().id).await?;
        log::info!("sign-out user_id={} session={}", me.user().id, me.session_id());
    }
    Session::end(&jar);
    jar.flash(Kind::Success, "You were signed out.");
    Ok(Reply::Redirect(Redirect::to("/")))
}
