//! `/account`: the signed-in user's ways to sign in; connecting and disconnecting providers.

use rocket::http::{Header, Status};
use rocket::{get, post, uri, Responder, State};
use rocket_dyn_templates::Template;

use crate::auth::oauth::ProviderKind;
use crate::auth::{Auth, AuthError};
use crate::routes::oauth::leave_for;
use crate::store::Unlinked;
use crate::web::cookies::Jar;
use crate::web::csrf::{Checked, CsrfOnly};
use crate::web::flash::Kind;
use crate::web::guard::LoggedIn;
use crate::web::headers::content_security_policy;
use crate::web::pages::{Layout, Reply};

/// The account page, with a CSP whose `form-action` lets "Connect …" reach the providers.
#[derive(Responder)]
pub struct AccountPage(Template, Header<'static>);

#[get("/account")]
pub async fn account(
    me: &LoggedIn,
    layout: Layout<'_>,
    auth: &State<Auth>,
) -> Result<AccountPage, AuthError> {
    let account = auth.account(me.user()).await?;
    let providers = auth.providers();
    let form_action =
        std::iter::once("'self'".to_owned()).chain(providers.authorize_origins().await).collect::<Vec<_>>();
    Ok(AccountPage(layout.account(providers, &account), content_security_policy(&form_action.join(" "))))
}

#[post("/account/connect/<provider>", data = "<_form>")]
pub async fn connect(
    provider: Result<ProviderKind, &str>,
    _form: Checked<CsrfOnly<'_>>,
    me: &LoggedIn,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    let Ok(provider) = provider else { return Ok(Reply::Error(Status::NotFound)) };
    leave_for(provider, auth.start_provider_link(provider, me.user()).await, &jar)
}

#[post("/account/unlink/<provider>", data = "<_form>")]
pub async fn unlink(
    provider: Result<ProviderKind, &str>,
    _form: Checked<CsrfOnly<'_>>,
    me: &LoggedIn,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    let Ok(provider) = provider else { return Ok(Reply::Error(Status::NotFound)) };
    let name = provider.display_name();
    match auth.unlink(me.user(), provider).await? {
        Unlinked::Done => jar.flash(Kind::Success, format!("Your {name} account is disconnected.")),
        Unlinked::NotLinked => jar.flash(Kind::Info, format!("No {name} account is connected.")),
        Unlinked::LastWayIn => jar
            .flash(Kind::Error, format!("{name} is your only way to sign in, so it cannot be disconnected.")),
    }
    Ok(Reply::to(uri!(account)))
}
