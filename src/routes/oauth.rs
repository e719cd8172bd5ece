//! `/login/<provider>` (leave for the provider) and `/auth/<provider>` (come back).

use std::net::IpAddr;

use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, State};

use crate::auth::guard::LoggedIn;
use crate::auth::next::safe_next;
use crate::auth::oauth::{
    tidy_provider_text, Admission, Flow, OAuthError, ProviderKind, Providers, FLOW_LIFETIME_SECS,
};
use crate::auth::{self, Arrival};
use crate::clock::Now;
use crate::config::Settings;
use crate::cookies::Jar;
use crate::error::Error;
use crate::flash::Kind;
use crate::routes::login::Reply;
use crate::routes::pages::{error_page, message_page};
use crate::store::Store;
use crate::throttle::{RetryAfter, Throttle};

const TRY_AGAIN: &str = "Sign-in failed, please try again.";

#[get("/login/<provider>?<next>")]
pub async fn start(
    provider: Result<ProviderKind, &str>,
    next: Option<&str>,
    jar: Jar<'_>,
    ip: Option<IpAddr>,
    providers: &State<Providers>,
    throttle: &State<Throttle>,
    now: &State<Now>,
) -> Result<Reply, Error> {
    let Ok(provider) = provider else {
        return Ok(Reply::Page(error_page(Status::NotFound)));
    };
    let now = now.get();
    if let Err(RetryAfter(seconds)) = throttle.oauth_start(ip, now) {
        log::warn!("{}: throttled sign-in starts from {ip:?}", provider.slug());
        return Err(Error::TooManyAttempts(seconds));
    }
    Ok(begin(provider, next.and_then(safe_next), None, &jar, providers, now).await)
}

/// Mints the flow, stores it in the flow cookie and sends the browser to the provider.
pub async fn begin(
    provider: ProviderKind,
    next: Option<&str>,
    link_user: Option<i64>,
    jar: &Jar<'_>,
    providers: &Providers,
    now: i64,
) -> Reply {
    if !providers.is_enabled(provider) {
        return Reply::Page(error_page(Status::NotFound));
    }
    match providers.start(provider, now).await {
        Ok(started) => {
            let flow = Flow {
                provider,
                state: started.state,
                verifier: started.verifier,
                nonce: started.nonce,
                next: next.map(str::to_owned),
                link_user,
                expires: now + FLOW_LIFETIME_SECS,
            };
            flow.save(jar);
            Reply::Redirect(Redirect::to(started.authorize_url))
        }
        Err(e) => {
            log::warn!("{}: could not start a sign-in: {e}", provider.slug());
            let name = provider.display_name();
            jar.flash(
                Kind::Error,
                format!("Sign-in with {name} is not available right now. Please try again later."),
            );
            Reply::Redirect(Redirect::to("/login"))
        }
    }
}

fn back_to_login(jar: &Jar<'_>, kind: Kind, message: impl Into<String>) -> Result<Reply, Error> {
    jar.flash(kind, message);
    Ok(Reply::Redirect(Redirect::to("/login")))
}

#[allow(clippy::too_many_arguments)]
#[get("/auth/<provider>?<code>&<state>&<error>&<error_description>")]
pub async fn callback(
    provider: Result<ProviderKind, &str>,
    code: Option<&str>,
    state: Option<&str>,
    error: Option<&str>,
    error_description: Option<&str>,
    jar: Jar<'_>,
    me: Option<&LoggedIn>,
    ip: Option<IpAddr>,
    providers: &State<Providers>,
    store: &State<Store>,
    settings: &State<Settings>,
    now: &State<Now>,
) -> Result<Reply, Error> {
    let Some(provider) = provider.ok().filter(|p| providers.is_enabled(*p)) else {
        return Ok(Reply::Page(error_page(Status::NotFound)));
    };
    let (slug, name, now) = (provider.slug(), provider.display_name(), now.get());
    // Taken first, so the flow is spent whatever happens next.
    let flow = Flow::take(&jar, provider, state, now);

    if let Some(error) = error {
        let error = tidy_provider_text(error);
        log::warn!("{slug}: the provider returned error={error:?}");
        // Without our flow this is a crafted link: show none of its text.
        if flow.is_err() {
            return back_to_login(&jar, Kind::Error, TRY_AGAIN);
        }
        if error == "access_denied" {
            return back_to_login(
                &jar,
                Kind::Info,
                format!("Sign-in cancelled: {name} did not share your account."),
            );
        }
        let detail = error_description.map_or(error, tidy_provider_text);
        return back_to_login(&jar, Kind::Error, format!("Sign-in with {name} failed: {detail}"));
    }
    let flow = match flow {
        Ok(flow) => flow,
        Err(e) => {
            log::warn!("{slug}: refused a callback: {}", e.reason());
            return back_to_login(&jar, Kind::Error, TRY_AGAIN);
        }
    };
    let Some(code) = code.filter(|c| !c.is_empty()) else {
        log::warn!("{slug}: refused a callback without a code");
        return back_to_login(&jar, Kind::Error, TRY_AGAIN);
    };

    let (identity, admission) = match providers.finish(provider, code, &flow, now).await {
        Ok(found) => found,
        Err(OAuthError::NoVerifiedEmail) => {
            log::warn!("{slug}: sign-in refused: no verified email");
            return back_to_login(
                &jar,
                Kind::Error,
                format!("Your {name} account has no verified email address. Verify one with {name}, then try again."),
            );
        }
        Err(e) => {
            log::warn!("{slug}: sign-in failed: {e}");
            return back_to_login(&jar, Kind::Error, TRY_AGAIN);
        }
    };
    if let Admission::Refused(why) = admission {
        log::warn!("{slug}: sign-in refused by policy: {why}");
        let message = format!("Your {name} account is not allowed to sign in here.");
        return Ok(Reply::Page(message_page(Status::Forbidden, &message)));
    }

    let link_to = match (flow.link_user, me) {
        (None, _) => None,
        (Some(id), Some(me)) if me.user().id == id => Some(me.user()),
        (Some(_), _) => {
            log::warn!("{slug}: refused a link flow that does not belong to the signed-in user");
            return back_to_login(&jar, Kind::Error, TRY_AGAIN);
        }
    };
    let ip_text = ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
    match auth::arrive(store, &identity, link_to, now).await? {
        Arrival::SignIn(user) => {
            log::info!(target: crate::logging::AUDIT_TARGET, "sign-in provider={slug} user_id={} ip={ip_text} outcome=success", user.id);
            auth::complete_sign_in(&jar, &settings.session, store, &user, provider.method(), false, now)
                .await;
            Ok(Reply::Redirect(Redirect::to(flow.next.unwrap_or_else(|| "/welcome".to_owned()))))
        }
        Arrival::Linked => {
            jar.flash(Kind::Success, format!("Your {name} account is connected."));
            Ok(Reply::Redirect(Redirect::to("/account")))
        }
        Arrival::LinkedElsewhere => {
            jar.flash(Kind::Error, format!("That {name} account is already connected to another user."));
            Ok(Reply::Redirect(Redirect::to("/account")))
        }
        Arrival::Disabled => {
            log::info!(target: crate::logging::AUDIT_TARGET, "sign-in provider={slug} ip={ip_text} outcome=disabled-account");
            back_to_login(&jar, Kind::Error, "This account is disabled.")
        }
    }
}
