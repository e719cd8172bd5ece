//! `/account`: the signed-in user's linked identities; connecting and disconnecting them.

use rocket::form::Form;
use rocket::http::{Header, Status};
use rocket::response::Redirect;
use rocket::{get, post, Responder, State};

use crate::auth::guard::LoggedIn;
use crate::auth::oauth::{ProviderKind, Providers};
use crate::clock::Now;
use crate::cookies::Jar;
use crate::csrf::{CsrfForm, CsrfToken, SameOrigin};
use crate::error::Error;
use crate::flash::{Flash, Kind};
use crate::headers::content_security_policy;
use crate::routes::login::Reply;
use crate::routes::oauth::begin;
use crate::routes::pages::error_page;
use crate::store::Store;
use crate::views::{self, Html, Layout, ProviderRow};

/// The account page, with a CSP whose `form-action` lets "Connect …" reach the providers.
#[derive(Responder)]
pub struct AccountPage(Html, Header<'static>);

#[get("/account")]
pub async fn account(
    me: &LoggedIn,
    flash: Option<Flash>,
    csrf: CsrfToken,
    store: &State<Store>,
    providers: &State<Providers>,
) -> Result<AccountPage, Error> {
    let identities = store.identities(me.user().id).await?;
    let has_password = store.has_password(me.user().id).await?;
    let rows: Vec<ProviderRow> = [ProviderKind::Google, ProviderKind::Github]
        .into_iter()
        .filter_map(|kind| {
            let linked = identities.iter().find(|i| i.provider == kind.slug());
            if linked.is_none() && !providers.is_enabled(kind) {
                return None;
            }
            Some(ProviderRow {
                slug: kind.slug(),
                name: kind.display_name(),
                linked_as: linked.map(|i| i.email.clone().unwrap_or_else(|| i.subject.clone())),
            })
        })
        .collect();
    let form_action =
        std::iter::once("'self'".to_owned()).chain(providers.authorize_origins().await).collect::<Vec<_>>();
    let page = Html::of(&views::Account {
        layout: Layout { me: Some(me.user()), csrf: csrf.value(), flash: flash.as_ref() },
        me: me.user(),
        has_password,
        providers: rows,
    });
    Ok(AccountPage(page, content_security_policy(&form_action.join(" "))))
}

#[allow(clippy::too_many_arguments)]
#[post("/account/connect/<provider>", data = "<form>")]
pub async fn connect(
    _same_origin: SameOrigin,
    provider: Result<ProviderKind, &str>,
    me: &LoggedIn,
    csrf: CsrfToken,
    jar: Jar<'_>,
    providers: &State<Providers>,
    now: &State<Now>,
    form: Form<CsrfForm<'_>>,
) -> Reply {
    let Ok(provider) = provider else {
        return Reply::Page(error_page(Status::NotFound));
    };
    if !csrf.matches(form.csrf_token) {
        return Reply::Page(error_page(Status::Forbidden));
    }
    begin(provider, Some("/account"), Some(me.user().id), &jar, providers, now.get()).await
}

#[post("/account/unlink/<provider>", data = "<form>")]
pub async fn unlink(
    _same_origin: SameOrigin,
    provider: Result<ProviderKind, &str>,
    me: &LoggedIn,
    csrf: CsrfToken,
    jar: Jar<'_>,
    store: &State<Store>,
    form: Form<CsrfForm<'_>>,
) -> Result<Reply, Error> {
    let Ok(provider) = provider else {
        return Ok(Reply::Page(error_page(Status::NotFound)));
    };
    if !csrf.matches(form.csrf_token) {
        return Ok(Reply::Page(error_page(Status::Forbidden)));
    }
    let id = me.user().id;
    let identities = store.identities(id).await?;
    let others = identities.iter().filter(|i| i.provider != provider.slug()).count();
    let name = provider.display_name();
    if !identities.iter().any(|i| i.provider == provider.slug()) {
        jar.flash(Kind::Info, format!("No {name} account is connected."));
    } else if others == 0 && !store.has_password(id).await? {
        jar.flash(Kind::Error, format!("{name} is your only way to sign in, so it cannot be disconnected."));
    } else {
        store.unlink_identity(id, provider.slug()).await?;
        log::info!("user {id} disconnected {}", provider.slug());
        jar.flash(Kind::Success, format!("Your {name} account is disconnected."));
    }
    Ok(Reply::Redirect(Redirect::to("/account")))
}
