//! `/admin`: the console. Every page and form needs an enabled administrator (the `Admin`
//! guard: anyone else signed in gets 403, nobody signed in the login page), and every
//! action is a CSRF-checked POST that answers with a flash message on the page it returns
//! to (or, for a password link, the page that shows it once). The operations behind them
//! are [`crate::auth::admin`]'s, shared with the API and the command line.

use rocket::form::{self, FromForm};
use rocket::http::uri::Origin;
use rocket::http::Status;
use rocket::request::FromParam;
use rocket::{get, post, uri, Route, State};

use crate::auth::admin::{
    AdminError, EventsQuery, NewAccount, QueryError, QueryParams, QueryText, UsersQuery, MAX_SEARCH_BYTES,
};
use crate::auth::provider::NewClient;
use crate::auth::Auth;
use crate::store::EventCursor;
use crate::web::admin_pages::{EventsFilterView, NewUserView};
use crate::web::client::SiteOrigin;
use crate::web::client_pages::{ClientFormView, ClientRowView, ClientSecretView, ClientsView};
use crate::web::cookies::Jar;
use crate::web::csrf::{Checked, CsrfOnly, CsrfProtected};
use crate::web::error::admin_status;
use crate::web::flash::Kind;
use crate::web::guard::{Acting, Admin};
use crate::web::pages::{message_page_reply, Layout, Reply};

/// `/admin`'s query as sent: the search text and a cursor.
#[derive(FromForm, Default)]
pub struct UsersFields<'r> {
    q: Option<&'r str>,
    after: Option<&'r str>,
    before: Option<&'r str>,
}

#[get("/?<fields..>")]
pub async fn users(
    fields: Result<UsersFields<'_>, form::Errors<'_>>,
    admin: Acting<'_>,
    layout: Layout<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AdminError> {
    let Ok(fields) = fields else {
        return Ok(message_page_reply(Status::BadRequest, "That search could not be read."));
    };
    let text =
        QueryParams { q: fields.q, after: fields.after, before: fields.before, ..QueryParams::default() };
    let query = match UsersQuery::parse(text) {
        Ok(query) => query,
        Err(QueryError::TooLong) => {
            let message = format!("Search for at most {MAX_SEARCH_BYTES} characters.");
            return Ok(message_page_reply(Status::BadRequest, &message));
        }
        Err(e) => return Ok(message_page_reply(Status::BadRequest, &query_sentence(&e))),
    };
    let by = admin.by();
    let page = auth.find_users(&by, &query.search).await?;
    Ok(Reply::page(Status::Ok, layout.admin_users(&query.q, &page)))
}

#[get("/users/<id>")]
pub async fn user(
    id: i64,
    admin: Acting<'_>,
    layout: Layout<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AdminError> {
    let by = admin.by();
    let overview = match auth.user_overview(&by, id).await {
        Ok(overview) => overview,
        Err(AdminError::NoSuchUser) => {
            return Ok(message_page_reply(Status::NotFound, "There is no such user."))
        }
        Err(e) => return Err(e),
    };
    let names = auth.actor_names(&overview.events).await?;
    Ok(Reply::page(Status::Ok, layout.admin_user(&overview, &names, admin.me.user().id)))
}

#[get("/users/new")]
pub fn new_user(_admin: Admin<'_>, layout: Layout<'_>) -> Reply {
    Reply::page(Status::Ok, layout.admin_new_user(NewUserView::default()))
}

#[derive(FromForm)]
pub struct NewUserForm<'r> {
    csrf_token: Option<&'r str>,
    username: Option<&'r str>,
    email: Option<&'r str>,
    /// A checkbox: absent means no.
    admin: bool,
    /// A checkbox (with mail): mail the set-password link instead of showing it.
    invite: bool,
}

impl CsrfProtected for NewUserForm<'_> {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token
    }
}

/// Creates a user and shows their one-time password link (once: it is not stored).
#[post("/users", data = "<form>")]
pub async fn create_user(
    form: Checked<NewUserForm<'_>>,
    admin: Acting<'_>,
    origin: SiteOrigin,
    layout: Layout<'_>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AdminError> {
    let Checked(form) = form;
    let username = form.username.unwrap_or("");
    let email = form.email.unwrap_or("");
    let by = admin.by();
    let account = NewAccount { username, email: Some(email), admin: form.admin, invite: form.invite };
    match auth.create_account(&by, account, None).await {
        Ok((user, Some(link))) => {
            let url = link.url(origin.0.as_deref());
            Ok(Reply::page(Status::Created, layout.admin_link(&user, &url, link.expires_at, true)))
        }
        Ok((user, None)) => {
            if form.invite {
                let to = user.email.as_deref().unwrap_or_default();
                jar.flash(Kind::Success, format!("An invitation to {to} is on its way (valid 7 days)."));
            }
            Ok(Reply::to(user_uri(user.id)))
        }
        Err(AdminError::Failed(e)) => Err(e.into()),
        Err(AdminError::NotAdmin) => Ok(Reply::Error(Status::Forbidden)),
        Err(e) => {
            let status = admin_status(&e);
            let again = NewUserView {
                username,
                email,
                admin: form.admin,
                invite: form.invite,
                error: Some(sentence(&e)),
            };
            Ok(Reply::page(status, layout.admin_new_user(again)))
        }
    }
}

/// Makes a new one-time password link for the user and shows it once.
#[post("/users/<id>/reset-link", data = "<_form>")]
pub async fn reset_link(
    id: i64,
    _form: Checked<CsrfOnly<'_>>,
    admin: Acting<'_>,
    origin: SiteOrigin,
    layout: Layout<'_>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AdminError> {
    let by = admin.by();
    match auth.create_reset_link(&by, id).await {
        Ok((user, link)) => {
            let url = link.url(origin.0.as_deref());
            Ok(Reply::page(Status::Created, layout.admin_link(&user, &url, link.expires_at, false)))
        }
        Err(e) => refused(e, id, &jar),
    }
}

/// The switches on a user's page: `disable`, `enable`, `make-admin`, `remove-admin`.
#[derive(Debug, Clone, Copy)]
pub enum Switch {
    Disable,
    Enable,
    MakeAdmin,
    RemoveAdmin,
}

impl<'a> FromParam<'a> for Switch {
    type Error = &'a str;

    fn from_param(param: &'a str) -> Result<Switch, &'a str> {
        match param {
            "disable" => Ok(Switch::Disable),
            "enable" => Ok(Switch::Enable),
            "make-admin" => Ok(Switch::MakeAdmin),
            "remove-admin" => Ok(Switch::RemoveAdmin),
            other => Err(other),
        }
    }
}

/// Disables (and signs out everywhere) or enables a user; makes them an administrator or
/// not. After the routes with a fixed last segment (`delete`, `reset-link`).
#[post("/users/<id>/<switch>", data = "<_form>", rank = 2)]
pub async fn switch(
    id: i64,
    switch: Switch,
    _form: Checked<CsrfOnly<'_>>,
    admin: Acting<'_>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AdminError> {
    let by = admin.by();
    let (result, done_words) = match switch {
        Switch::Disable => {
            (auth.set_user_disabled(&by, id, true).await, "is disabled and signed out everywhere")
        }
        Switch::Enable => (auth.set_user_disabled(&by, id, false).await, "is enabled and can sign in again"),
        Switch::MakeAdmin => (auth.set_user_admin(&by, id, true).await, "is now an administrator"),
        Switch::RemoveAdmin => (auth.set_user_admin(&by, id, false).await, "is no longer an administrator"),
    };
    match result {
        Ok(user) => done(&jar, id, format!("{} {done_words}.", user.username)),
        Err(e) => refused(e, id, &jar),
    }
}

/// A form whose action destroys something: the token, and a ticked "Yes, …" box.
#[derive(FromForm)]
pub struct Confirmed<'r> {
    csrf_token: Option<&'r str>,
    confirm: Option<&'r str>,
}

impl CsrfProtected for Confirmed<'_> {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token
    }
}

impl Confirmed<'_> {
    fn confirmed(&self) -> bool {
        self.confirm == Some("yes")
    }
}

#[post("/users/<id>/delete", data = "<form>")]
pub async fn delete(
    id: i64,
    form: Checked<Confirmed<'_>>,
    admin: Acting<'_>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AdminError> {
    if !form.0.confirmed() {
        return unconfirmed(&jar, id, "Nothing was deleted: tick the box to confirm.");
    }
    let by = admin.by();
    match auth.delete_user(&by, id).await {
        Ok(user) => {
            jar.flash(Kind::Success, format!("{} is deleted.", user.username));
            Ok(Reply::to("/admin"))
        }
        Err(e) => refused(e, id, &jar),
    }
}

#[post("/users/<id>/sessions/end-all", data = "<form>")]
pub async fn end_all_sessions(
    id: i64,
    form: Checked<Confirmed<'_>>,
    admin: Acting<'_>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AdminError> {
    if !form.0.confirmed() {
        return unconfirmed(&jar, id, "No one was signed out: tick the box to confirm.");
    }
    let by = admin.by();
    match auth.end_user_sessions(&by, id, None).await {
        Ok(ended) => done(&jar, id, signed_out(ended)),
        Err(e) => refused(e, id, &jar),
    }
}

/// Removes every second factor of the user (they lost their device).
#[post("/users/<id>/second-factor/reset", data = "<form>")]
pub async fn reset_second_factor(
    id: i64,
    form: Checked<Confirmed<'_>>,
    admin: Acting<'_>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AdminError> {
    if !form.0.confirmed() {
        return unconfirmed(&jar, id, "Nothing was removed: tick the box to confirm.");
    }
    let by = admin.by();
    match auth.reset_second_factor(&by, id).await {
        Ok(_) => done(
            &jar,
            id,
            "Their second factors are removed. They will be told when they next sign in.".into(),
        ),
        Err(e) => refused(e, id, &jar),
    }
}

#[post("/users/<id>/sessions/<session>/end", data = "<_form>")]
pub async fn end_session(
    id: i64,
    session: &str,
    _form: Checked<CsrfOnly<'_>>,
    admin: Acting<'_>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AdminError> {
    let by = admin.by();
    match auth.end_user_sessions(&by, id, Some(session)).await {
        Ok(0) => done(&jar, id, "That session had already ended.".into()),
        Ok(_) => done(&jar, id, "That session is signed out.".into()),
        Err(e) => refused(e, id, &jar),
    }
}

fn signed_out(ended: u64) -> String {
    match ended {
        0 => "No session was live.".into(),
        1 => "One session is signed out.".into(),
        n => format!("{n} sessions are signed out."),
    }
}

/// `/admin/events`' query as sent: the filters as typed, and the cursor.
#[derive(FromForm, Default)]
pub struct EventsFields<'r> {
    user: Option<&'r str>,
    kind: Option<&'r str>,
    since: Option<&'r str>,
    until: Option<&'r str>,
    /// `AT.ID` of the last event of the previous page.
    before: Option<&'r str>,
}

/// The outbox (`[email]`): what is waiting, sent and failed. Without mail there is none.
#[get("/outbox?<status>")]
pub async fn outbox(
    status: Option<&str>,
    admin: Acting<'_>,
    layout: Layout<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AdminError> {
    if !auth.mail_enabled() {
        return Ok(Reply::Error(Status::NotFound));
    }
    let (counts, rows) = auth.outbox_messages(&admin.by(), status).await?;
    let shown = status.filter(|s| ["pending", "sent", "failed"].contains(s)).unwrap_or("");
    Ok(Reply::page(Status::Ok, layout.admin_outbox(counts, shown, &rows)))
}

#[get("/events?<fields..>")]
pub async fn events(
    fields: Result<EventsFields<'_>, form::Errors<'_>>,
    admin: Acting<'_>,
    layout: Layout<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AdminError> {
    let Ok(fields) = fields else {
        return Ok(message_page_reply(Status::BadRequest, "That filter could not be read."));
    };
    let text = QueryParams {
        user: fields.user,
        kind: fields.kind,
        since: fields.since,
        until: fields.until,
        before: fields.before,
        ..QueryParams::default()
    };
    let mut view = EventsFilterView {
        user: fields.user.unwrap_or("").trim(),
        kind: fields.kind.unwrap_or(""),
        since: fields.since.unwrap_or("").trim(),
        until: fields.until.unwrap_or("").trim(),
        error: None,
    };
    let filter = match EventsQuery::parse(text, QueryText::Form { now: auth.now() }) {
        Ok(query) => auth.events_filter(&query).await.map_err(|e| {
            log::error!("could not look a user up for the events filter: {e}");
            "The store did not answer. Try again.".to_owned()
        }),
        Err(QueryError::TooLong) => {
            return Ok(message_page_reply(Status::BadRequest, "A filter is too long."));
        }
        Err(e) => Err(query_sentence(&e)),
    };
    let filter = match filter {
        Ok(filter) => filter,
        Err(message) => {
            view.error = Some(message);
            let names = Default::default();
            return Ok(Reply::page(Status::BadRequest, layout.admin_events(view, &[], &names, None)));
        }
    };
    let by = admin.by();
    let (events, next) = auth.find_events(&by, &filter).await?;
    let names = auth.actor_names(&events).await?;
    let older = next.map(|cursor| older_href(&fields, cursor));
    Ok(Reply::page(Status::Ok, layout.admin_events(view, &events, &names, older)))
}

/// A refused filter or search as the console says it.
fn query_sentence(error: &QueryError) -> String {
    match error {
        QueryError::TooLong => "A filter is too long.".into(),
        QueryError::BadKind => "Choose what to show from the list.".into(),
        QueryError::BadTime(how) => how.clone(),
        QueryError::BadCursor => "That page link is not valid.".into(),
        QueryError::BadLimit => "Show from 1 to 100 rows.".into(),
    }
}

fn older_href(fields: &EventsFields<'_>, before: EventCursor) -> String {
    use rocket::http::RawStr;
    let mut href = format!("/admin/events?before={before}");
    for (key, value) in
        [("user", fields.user), ("kind", fields.kind), ("since", fields.since), ("until", fields.until)]
    {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            href.push_str(&format!("&{key}={}", RawStr::new(value).percent_encode()));
        }
    }
    href
}

/// The user's console page. `uri!` needs the mount point, as a literal it checks: [`BASE`].
fn user_uri(id: i64) -> Origin<'static> {
    uri!("/admin", user(id))
}

/// Back to the user's page, saying what happened.
fn done(jar: &Jar<'_>, id: i64, message: String) -> Result<Reply, AdminError> {
    jar.flash(Kind::Success, message);
    Ok(Reply::to(user_uri(id)))
}

fn unconfirmed(jar: &Jar<'_>, id: i64, message: &str) -> Result<Reply, AdminError> {
    jar.flash(Kind::Error, message);
    Ok(Reply::to(user_uri(id)))
}

/// An operation that did not happen: back to the user's page saying why (their page, or the
/// list when they do not exist); a lost role or a store failure is an error page.
fn refused(error: AdminError, id: i64, jar: &Jar<'_>) -> Result<Reply, AdminError> {
    match error {
        AdminError::NotAdmin | AdminError::Failed(_) => Err(error),
        AdminError::NoSuchUser => {
            jar.flash(Kind::Error, "There is no such user (any more).");
            Ok(Reply::to("/admin"))
        }
        other => {
            jar.flash(Kind::Error, sentence(&other));
            Ok(Reply::to(user_uri(id)))
        }
    }
}

/// An operation's refusal as a sentence for the page.
fn sentence(error: &AdminError) -> String {
    match error {
        AdminError::LastAdmin => "That would leave no enabled administrator, so nothing changed.".into(),
        AdminError::OwnAccount => {
            "You cannot do that to your own account here (use your account page to sign out devices).".into()
        }
        other => {
            let text = other.to_string();
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
                None => text,
            }
        }
    }
}

#[get("/clients")]
pub async fn clients(admin: Acting<'_>, layout: Layout<'_>, auth: &State<Auth>) -> Result<Reply, AdminError> {
    let by = admin.by();
    let clients = auth.list_clients(&by).await?;
    let page = ClientsView {
        clients: clients.iter().map(ClientRowView::from).collect(),
        form: ClientFormView::default(),
        error: None,
    };
    Ok(Reply::page(Status::Ok, layout.admin_clients(page)))
}

#[derive(FromForm)]
pub struct NewClientForm<'r> {
    csrf_token: Option<&'r str>,
    client_id: Option<&'r str>,
    name: Option<&'r str>,
    redirect_uris: Option<&'r str>,
    post_logout_redirect_uris: Option<&'r str>,
    allow: Option<&'r str>,
    /// Checkboxes: absent means no.
    public: bool,
    implicit_consent: bool,
    second_factor: bool,
    eddsa: bool,
}

impl CsrfProtected for NewClientForm<'_> {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token
    }
}

/// The lines of a textarea, trimmed, without empty ones.
fn lines(text: Option<&str>) -> Vec<String> {
    text.unwrap_or("").lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// Adds an application and shows its secret once (a public one: back to the list).
#[post("/clients", data = "<form>")]
pub async fn create_client(
    form: Checked<NewClientForm<'_>>,
    admin: Acting<'_>,
    layout: Layout<'_>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AdminError> {
    use crate::config::{AllowSettings, ConsentMode, SigningAlg};
    let Checked(form) = form;
    let allow_text = form.allow.unwrap_or("signed-in").trim();
    let allow = match allow_text {
        "" | "signed-in" => AllowSettings::Named("signed-in".into()),
        "admins" => AllowSettings::Named("admins".into()),
        names => AllowSettings::Users(
            names.split(',').map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect(),
        ),
    };
    let new = NewClient {
        client_id: form.client_id.unwrap_or("").trim().to_owned(),
        name: form.name.map(|n| n.trim().to_owned()),
        redirect_uris: lines(form.redirect_uris),
        post_logout_redirect_uris: lines(form.post_logout_redirect_uris),
        public: form.public,
        consent: if form.implicit_consent { ConsentMode::Implicit } else { ConsentMode::Explicit },
        allow,
        second_factor: form.second_factor,
        signing_alg: if form.eddsa { SigningAlg::EdDSA } else { SigningAlg::RS256 },
    };
    let by = admin.by();
    match auth.add_client(&by, new).await {
        Ok((client, Some(secret))) => {
            let page = ClientSecretView {
                client_id: &client.id,
                name: &client.name,
                secret: &secret,
                created: true,
            };
            Ok(Reply::page(Status::Created, layout.admin_client_secret(page)))
        }
        Ok((client, None)) => {
            jar.flash(Kind::Success, format!("{} is added.", client.name));
            Ok(Reply::to(uri!("/admin", clients)))
        }
        Err(AdminError::Failed(e)) => Err(e.into()),
        Err(AdminError::NotAdmin) => Ok(Reply::Error(Status::Forbidden)),
        Err(e) => {
            let status = admin_status(&e);
            let error = sentence(&e);
            let clients = auth.list_clients(&by).await?;
            let again = ClientFormView {
                client_id: form.client_id.unwrap_or(""),
                name: form.name.unwrap_or(""),
                redirect_uris: form.redirect_uris.unwrap_or(""),
                post_logout_redirect_uris: form.post_logout_redirect_uris.unwrap_or(""),
                public: form.public,
                implicit_consent: form.implicit_consent,
                allow: allow_text,
                second_factor: form.second_factor,
                eddsa: form.eddsa,
            };
            let page = ClientsView {
                clients: clients.iter().map(ClientRowView::from).collect(),
                form: again,
                error: Some(&error),
            };
            Ok(Reply::page(status, layout.admin_clients(page)))
        }
    }
}

/// A new secret for an application added here, shown once.
#[post("/clients/<id>/secret", data = "<_form>")]
pub async fn rotate_client_secret(
    id: &str,
    _form: Checked<CsrfOnly<'_>>,
    admin: Acting<'_>,
    layout: Layout<'_>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AdminError> {
    let by = admin.by();
    match auth.rotate_client_secret(&by, id).await {
        Ok(secret) => {
            let name = auth.client(id).await?.map_or_else(|| id.to_owned(), |c| c.name);
            let page = ClientSecretView { client_id: id, name: &name, secret: &secret, created: false };
            Ok(Reply::page(Status::Ok, layout.admin_client_secret(page)))
        }
        Err(e) => client_refused(e, &jar),
    }
}

#[post("/clients/<id>/remove", data = "<_form>")]
pub async fn remove_client(
    id: &str,
    _form: Checked<CsrfOnly<'_>>,
    admin: Acting<'_>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<Reply, AdminError> {
    let by = admin.by();
    match auth.remove_client(&by, id).await {
        Ok(()) => {
            jar.flash(Kind::Success, "The application is removed; its tokens no longer work.");
            Ok(Reply::to(uri!("/admin", clients)))
        }
        Err(e) => client_refused(e, &jar),
    }
}

/// A refused change to an application: the list again, saying why (404 and 403 as such).
fn client_refused(e: AdminError, jar: &Jar<'_>) -> Result<Reply, AdminError> {
    match e {
        AdminError::Failed(_) | AdminError::NotAdmin | AdminError::NoSuchClient => Err(e),
        other => {
            jar.flash(Kind::Error, sentence(&other));
            Ok(Reply::to(uri!("/admin", clients)))
        }
    }
}

/// Where [`routes`] are mounted.
pub const BASE: &str = "/admin";

/// This module's routes, mounted at [`BASE`] (`/admin`).
pub fn routes() -> Vec<Route> {
    rocket::routes![
        users,
        user,
        new_user,
        create_user,
        reset_link,
        reset_second_factor,
        switch,
        delete,
        end_all_sessions,
        end_session,
        outbox,
        events,
        clients,
        create_client,
        rotate_client_secret,
        remove_client
    ]
}
