//! The pages: what each template receives (the versioned template interface docs/templates.md
//! documents), the [`Layout`] guard that gathers what every page shows, and the replies
//! handlers pick from.
//!
//! Every template gets `site` (`name`, `initial`, `stylesheet`), `me` (`id`, `username`,
//! `email`, `is_admin`, or none), `csrf` (the token forms carry) and `flash` (`kind`,
//! `message`, or none); each page adds its own values below.

use rocket::http::{RawStr, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::Redirect;
use rocket::Responder;
use serde::Serialize;

use crate::auth::audit::EventKind;
use crate::auth::factors::passkey::PasskeyInfo;
use crate::auth::oauth::{Button, Providers};
use crate::auth::session::describe_methods;
use crate::auth::{Account, FRESH_SIGN_IN_SECS};
use crate::store::{EventRecord, Factors, SessionRecord, User};
use crate::web::csrf::CsrfToken;
use crate::web::flash::Flash;
use crate::web::guard::LoggedIn;
use crate::web::render::{Page, STAND_IN};
use crate::when::human;

/// The version of the template interface: the names and variables below. A change that
/// removes or renames one bumps it (docs/templates.md).
pub const TEMPLATE_INTERFACE: u32 = 1;

/// Template names (files are these names plus `.j2`).
pub const BASE: &str = "base.html";
pub const MACROS: &str = "macros.html";
pub const INDEX: &str = "index.html";
pub const WELCOME: &str = "welcome.html";
pub const LOGIN: &str = "login.html";
pub const LOGOUT: &str = "logout.html";
/// Signed out here; on to the provider's end-session page.
pub const UPSTREAM_LOGOUT: &str = "upstream_logout.html";
pub const ACCOUNT: &str = "account.html";
pub const ERROR: &str = "error.html";

/// The site as `[branding]` describes it (managed state).
#[derive(Debug, Clone, Serialize)]
pub struct Site {
    pub name: String,
    /// The first letter of the name, for the brand mark.
    pub initial: String,
    /// Where the operator's stylesheet is served, when there is one.
    pub stylesheet: Option<&'static str>,
    /// The portal sends mail (`[email]`): "Forgot password?" on the login page.
    pub mail: bool,
}

impl Site {
    pub fn new(name: &str, stylesheet: Option<&'static str>) -> Site {
        let initial = name.chars().next().map(String::from).unwrap_or_default();
        Site { name: name.to_owned(), initial, stylesheet, mail: false }
    }
}

/// The signed-in user as templates see them.
#[derive(Debug, Serialize)]
pub(crate) struct Me<'a> {
    id: i64,
    username: &'a str,
    email: Option<&'a str>,
    email_verified: bool,
    is_admin: bool,
}

impl<'a> From<&'a User> for Me<'a> {
    fn from(user: &'a User) -> Me<'a> {
        Me {
            id: user.id,
            username: &user.username,
            email: user.email.as_deref(),
            email_verified: user.email_verified,
            is_admin: user.is_admin,
        }
    }
}

/// Everything a template receives: the layout's values and the page's own.
#[derive(Serialize)]
struct Context<'a, P: Serialize> {
    site: &'a Site,
    me: Option<Me<'a>>,
    csrf: &'a str,
    flash: Option<&'a Flash>,
    #[serde(flatten)]
    page: P,
}

/// What the layout around every page shows: the site, who is signed in (the top bar, with
/// the logout form and its CSRF token) and a flash message. A request guard.
pub struct Layout<'r> {
    site: &'r Site,
    providers: &'r Providers,
    me: Option<&'r LoggedIn>,
    csrf: CsrfToken,
    flash: Option<Flash>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Layout<'r> {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let me = request.guard::<Option<&LoggedIn>>().await.succeeded().flatten();
        let flash = request.guard::<Option<Flash>>().await.succeeded().flatten();
        let providers =
            request.rocket().state::<crate::auth::Auth>().map_or(&*NO_PROVIDERS, |a| a.providers());
        Outcome::Success(Layout {
            site: site_of(request),
            providers,
            me,
            csrf: CsrfToken::of(request, me),
            flash,
        })
    }
}

static NO_PROVIDERS: std::sync::LazyLock<Providers> = std::sync::LazyLock::new(|| Providers::sample(false));

static DEFAULT_SITE: std::sync::LazyLock<Site> = std::sync::LazyLock::new(|| Site::new("Portal", None));

fn site_of<'r>(request: &'r Request<'_>) -> &'r Site {
    request.rocket().state::<Site>().unwrap_or(&DEFAULT_SITE)
}

impl<'r> Layout<'r> {
    pub fn me(&self) -> Option<&'r LoggedIn> {
        self.me
    }

    /// The configured providers: how pages name them.
    pub fn providers(&self) -> &'r Providers {
        self.providers
    }

    pub(crate) fn render(&self, name: &'static str, page: impl Serialize) -> Page {
        if self.me.is_none() && self.flash.is_none() {
            // For nobody in particular: the same page for every visitor who sent the same
            // values, but for the form token, so it is cut once and spliced after that.
            let context = Context { site: self.site, me: None, csrf: &STAND_IN, flash: None, page };
            return Page::shell(name, context, self.csrf.value());
        }
        let me = self.me.map(|me| Me::from(me.user()));
        let context =
            Context { site: self.site, me, csrf: self.csrf.value(), flash: self.flash.as_ref(), page };
        Page::render(name, context)
    }

    /// Renders for this request only, never through the shells' cache: for pages that
    /// show a secret (an authenticator app's, recovery codes) to someone not yet signed in.
    pub(crate) fn render_private(&self, name: &'static str, page: impl Serialize) -> Page {
        let me = self.me.map(|me| Me::from(me.user()));
        let context =
            Context { site: self.site, me, csrf: self.csrf.value(), flash: self.flash.as_ref(), page };
        Page::render(name, context)
    }

    pub fn index(&self) -> Page {
        self.render(INDEX, Empty {})
    }

    pub fn welcome(&self, me: &LoggedIn) -> Page {
        let method = me.session().method.as_str();
        self.render(WELCOME, WelcomePage { method, method_name: &self.providers.method_name(method) })
    }

    pub fn logout(&self, rd: Option<&str>) -> Page {
        self.render(LOGOUT, LogoutPage { rd })
    }

    /// Signed out of the portal; the browser goes on to `url` to sign out of `name`.
    pub fn upstream_logout(&self, name: &str, url: &str) -> Page {
        // Rendered as for nobody: the person has just signed out.
        let page = UpstreamLogoutPage { name, url };
        Page::render(UPSTREAM_LOGOUT, Context { site: self.site, me: None, csrf: "", flash: None, page })
    }

    pub fn login(&self, providers: &Providers, form: LoginForm<'_>) -> Page {
        self.render(LOGIN, login_page(providers, form))
    }

    pub fn account(
        &self,
        providers: &Providers,
        account: &Account,
        sessions: &[SessionRecord],
        current: &SessionRecord,
        second_factor: SecondFactorView,
        now: i64,
    ) -> Page {
        let mut page = account_page(providers, account);
        page.second_factor = second_factor;
        page.sessions = session_rows(sessions, &current.id, providers);
        page.can_set_password = !account.has_password && now - current.created_at < FRESH_SIGN_IN_SECS;
        self.render(ACCOUNT, page)
    }
}

#[derive(Serialize)]
pub(super) struct Empty {}

#[derive(Serialize)]
pub(super) struct LogoutPage<'a> {
    /// Where the buttons send the person afterwards (an allowed application URL), or none.
    pub(super) rd: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct UpstreamLogoutPage<'a> {
    pub(super) name: &'a str,
    pub(super) url: &'a str,
}

#[derive(Serialize)]
pub(super) struct WelcomePage<'a> {
    /// `password`, `passkey` or a provider's slug.
    pub(super) method: &'a str,
    /// `Password`, `Passkey` or the provider's name.
    pub(super) method_name: &'a str,
}

/// What the login form shows besides the layout.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoginForm<'a> {
    pub error: Option<&'a str>,
    pub username: &'a str,
    /// A safe path to return to (already checked).
    pub next: Option<&'a str>,
    /// An application's URL to return to (already checked against `allowed_domains`).
    pub rd: Option<&'a str>,
    /// Passkeys are on: the "Sign in with a passkey" button, and autofill on the username.
    pub passkeys: bool,
}

#[derive(Serialize)]
pub(super) struct LoginPage<'a> {
    error: Option<&'a str>,
    username: &'a str,
    next: Option<&'a str>,
    rd: Option<&'a str>,
    /// "Sign in with …": each links to `/login/<slug>` and `query`.
    providers: &'a [Button],
    /// `?next=…` or `?rd=…`, for the buttons' links.
    query: Option<String>,
    passkeys: bool,
}

pub(super) fn login_page<'a>(providers: &'a Providers, form: LoginForm<'a>) -> LoginPage<'a> {
    let buttons = providers.buttons();
    // The buttons are made once, at start; only `next` is this request's.
    let query = match (form.next, form.rd) {
        _ if buttons.is_empty() => None,
        (Some(next), _) => Some(format!("?next={}", RawStr::new(next).percent_encode())),
        (None, Some(rd)) => Some(format!("?rd={}", RawStr::new(rd).percent_encode())),
        (None, None) => None,
    };
    LoginPage {
        error: form.error,
        username: form.username,
        next: form.next,
        rd: form.rd,
        providers: buttons,
        query,
        passkeys: form.passkeys,
    }
}

/// The account page's "Two-step sign-in" section.
#[derive(Debug, Default, Serialize)]
pub struct SecondFactorView {
    /// Authenticator apps can be set up here (the server has `secret_key`).
    pub totp_available: bool,
    pub totp: bool,
    pub recovery_left: i64,
    pub passkeys: i64,
    /// Whether a second step is asked at sign-in.
    pub enabled: bool,
    /// Signed in within ten minutes: removing a factor and new recovery codes are allowed.
    pub fresh: bool,
    /// Why passkeys are off, when they are.
    pub passkeys_off: Option<&'static str>,
    /// The person's passkeys, oldest first.
    pub passkey_list: Vec<PasskeyView>,
}

/// A passkey on the account page.
#[derive(Debug, Serialize)]
pub struct PasskeyView {
    id: String,
    name: String,
    created: String,
    /// "never" until first used.
    last_used: String,
    /// Synced by a passkey manager (its backup state).
    synced: bool,
}

impl From<&PasskeyInfo> for PasskeyView {
    fn from(p: &PasskeyInfo) -> PasskeyView {
        PasskeyView {
            id: p.id.clone(),
            name: p.name.clone(),
            created: human(p.created_at),
            last_used: p.last_used_at.map_or_else(|| "never".to_owned(), human),
            synced: p.backed_up,
        }
    }
}

impl SecondFactorView {
    pub fn new(factors: Factors, totp_available: bool, fresh: bool) -> SecondFactorView {
        SecondFactorView {
            totp_available,
            totp: factors.totp,
            recovery_left: factors.recovery_left,
            passkeys: factors.passkeys,
            enabled: factors.any(),
            fresh,
            passkeys_off: None,
            passkey_list: Vec::new(),
        }
    }
}

#[derive(Serialize)]
pub(super) struct AccountPage {
    has_password: bool,
    /// No password yet, and this session is a fresh provider sign-in: one may be set.
    pub(super) can_set_password: bool,
    providers: Vec<ProviderRow>,
    /// Where the person is signed in, most recently active first.
    pub(super) sessions: Vec<SessionRow>,
    /// The latest sign-in attempts, newest first.
    recent_sign_ins: Vec<SignInRow>,
    /// Two-step sign-in: the app, recovery codes, passkeys.
    pub(super) second_factor: SecondFactorView,
    /// Applications the person let sign them in.
    applications: Vec<ApplicationRow>,
    /// Security notices by mail (with `[email]`): each preference and whether it is on.
    notices: Vec<NoticeRow>,
}

/// A security notice's preference on the account page.
#[derive(Serialize)]
pub(super) struct NoticeRow {
    name: &'static str,
    words: &'static str,
    on: bool,
}

/// A connected application on the account page.
#[derive(Serialize)]
pub(super) struct ApplicationRow {
    client_id: String,
    name: String,
    /// What it sees, in words.
    sees: Vec<&'static str>,
    since: String,
}

/// A sign-in attempt on the account page.
#[derive(Serialize)]
struct SignInRow {
    when: String,
    /// "sign-in succeeded", "sign-in failed", "sign-in throttled".
    what: &'static str,
    /// `Password`, `Passkey`, a provider's name, or empty.
    method_name: String,
    ip: String,
    client: String,
    /// Whether it got in.
    succeeded: bool,
}

fn sign_in_rows(events: &[EventRecord], providers: &Providers) -> Vec<SignInRow> {
    events
        .iter()
        .filter_map(|e| {
            let kind = EventKind::from_slug(&e.kind)?;
            let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
            let method = detail.get("method").and_then(|m| m.as_str()).unwrap_or_default();
            Some(SignInRow {
                when: human(e.at),
                what: kind.words(),
                method_name: if method.is_empty() {
                    String::new()
                } else {
                    providers.method_name(method).into_owned()
                },
                ip: e.ip.clone().unwrap_or_else(|| "unknown address".to_owned()),
                client: e.client.clone().unwrap_or_else(|| "Unknown browser".to_owned()),
                succeeded: kind == EventKind::SignInSucceeded,
            })
        })
        .collect()
}

/// A session on the account page.
#[derive(Serialize)]
pub(super) struct SessionRow {
    id: String,
    /// This device.
    current: bool,
    /// "Firefox on Linux".
    client: String,
    ip: String,
    method_name: String,
    /// "Password + authenticator app".
    methods: String,
    /// 2 with a second factor.
    aal: i64,
    signed_in: String,
    last_active: String,
}

pub(super) fn session_rows(
    sessions: &[SessionRecord],
    current: &str,
    providers: &Providers,
) -> Vec<SessionRow> {
    sessions
        .iter()
        .map(|s| SessionRow {
            id: s.id.clone(),
            current: s.id == current,
            client: s.client.clone(),
            ip: s.ip.clone().unwrap_or_else(|| "unknown address".to_owned()),
            method_name: providers.method_name(&s.method).into_owned(),
            methods: describe_methods(&s.methods, |slug| providers.name_of(slug).into_owned()),
            aal: s.aal,
            signed_in: human(s.created_at),
            last_active: human(s.last_seen_at),
        })
        .collect()
}

/// A provider on the account page, linked or not.
#[derive(Serialize)]
struct ProviderRow {
    slug: String,
    name: String,
    /// `google`, `github` or `oidc` (its logo, without an icon).
    kind: &'static str,
    icon: Option<String>,
    /// The linked identity's email (or subject), when linked.
    linked_as: Option<String>,
    /// Still configured: it can be connected (or signed in with).
    configured: bool,
}

pub(super) fn account_page(providers: &Providers, account: &Account) -> AccountPage {
    let linked_as = |slug: &str| {
        let linked = account.identities.iter().find(|i| i.provider == slug);
        linked.map(|i| i.email.clone().unwrap_or_else(|| i.subject.clone()))
    };
    let mut rows: Vec<ProviderRow> = providers
        .buttons()
        .iter()
        .map(|button| ProviderRow {
            slug: button.slug.clone(),
            name: button.name.clone(),
            kind: button.kind,
            icon: button.icon.clone(),
            linked_as: linked_as(&button.slug),
            configured: true,
        })
        .collect();
    // Identities of providers no longer configured: they can still be disconnected.
    for identity in &account.identities {
        if !providers.is_enabled(&identity.provider) {
            rows.push(ProviderRow {
                slug: identity.provider.clone(),
                name: providers.name_of(&identity.provider).into_owned(),
                kind: crate::config::ProviderKindSetting::default_for(&identity.provider).as_str(),
                icon: None,
                linked_as: linked_as(&identity.provider),
                configured: false,
            });
        }
    }
    AccountPage {
        has_password: account.has_password,
        can_set_password: false,
        providers: rows,
        sessions: Vec::new(),
        recent_sign_ins: sign_in_rows(&account.recent_sign_ins, providers),
        second_factor: SecondFactorView::default(),
        applications: account
            .applications
            .iter()
            .map(|app| ApplicationRow {
                client_id: app.client_id.clone(),
                name: app.name.clone(),
                sees: app
                    .scopes
                    .split(' ')
                    .map(crate::auth::provider::tokens::scope_words)
                    .filter(|w| !w.is_empty())
                    .collect(),
                since: crate::when::human(app.granted_at),
            })
            .collect(),
        notices: account.notices.iter().map(|&(name, words, on)| NoticeRow { name, words, on }).collect(),
    }
}

#[derive(Serialize)]
pub(super) struct ErrorPage<'a> {
    pub(super) code: u16,
    pub(super) title: &'a str,
    pub(super) message: &'a str,
}

/// What a person is told for each error status: no internals, ever.
pub(super) fn explain(status: Status) -> &'static str {
    match status.code {
        400 => "The request could not be understood.",
        403 => {
            "That request was refused. If you were submitting a form, go back, reload the page and try again."
        }
        404 => "There is no page at this address.",
        405 => "That action is not available here.",
        409 => "That cannot be done as things stand.",
        413 => "That was more than the portal accepts.",
        415 => "The portal only accepts form submissions here.",
        422 => "Some of what was sent could not be read.",
        429 => "Too many attempts. Wait a moment, then try again.",
        503 => "The portal is busy. Please try again in a moment.",
        500..=599 => "Something went wrong on our side. Please try again.",
        _ => "That did not work.",
    }
}

/// The error page for `status`, in the site layout (for nobody in particular).
pub fn error_page(request: &Request<'_>, status: Status) -> (Status, Page) {
    message_page(request, status, explain(status))
}

/// The error page with a message of the caller's.
pub fn message_page(request: &Request<'_>, status: Status, message: &str) -> (Status, Page) {
    let title = status.reason().unwrap_or("Error");
    let page = ErrorPage { code: status.code, title, message };
    let context = Context { site: site_of(request), me: None, csrf: "", flash: None, page };
    (status, Page::render(ERROR, context))
}

/// What a handler answers: a redirect, a page with its status, or an error status whose
/// page the catcher renders.
// A Redirect is ~270 bytes against a Page's ~40; a Reply lives for one return per
// request, so boxing would only add an allocation to every redirect.
#[allow(clippy::large_enum_variant)]
#[derive(Responder)]
pub enum Reply {
    Redirect(Redirect),
    Page((Status, Page)),
    Message(MessagePage),
    Error(Status),
}

/// An error page with a message of the handler's, rendered when it is sent (when the
/// site's branding is at hand).
pub struct MessagePage {
    status: Status,
    message: String,
}

impl<'r> rocket::response::Responder<'r, 'static> for MessagePage {
    fn respond_to(self, request: &'r Request<'_>) -> rocket::response::Result<'static> {
        message_page(request, self.status, &self.message).respond_to(request)
    }
}

/// A [`Reply`] that is an error page saying `message`.
pub fn message_page_reply(status: Status, message: &str) -> Reply {
    Reply::Message(MessagePage { status, message: message.to_owned() })
}

impl Reply {
    pub fn to(uri: impl TryInto<rocket::http::uri::Reference<'static>>) -> Reply {
        Reply::Redirect(Redirect::to(uri))
    }

    pub fn page(status: Status, page: Page) -> Reply {
        Reply::Page((status, page))
    }
}

/// Turning any page's values into a template context without knowing its type.
pub(crate) mod erased {
    use super::{Context, Flash, Me, Site};

    pub(crate) trait Page {
        fn context(&self, site: &Site, me: Option<Me<'_>>, flash: Option<&Flash>) -> minijinja::Value;
    }

    impl<P: serde::Serialize> Page for P {
        fn context(&self, site: &Site, me: Option<Me<'_>>, flash: Option<&Flash>) -> minijinja::Value {
            let csrf = "sample-csrf-token";
            minijinja::Value::from_serialize(Context { site, me, csrf, flash, page: self })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::samples::{sample_account, samples};
    use crate::web::templates::{embedded, environment};

    fn render(name: &str, context: &minijinja::Value) -> String {
        let env = environment(&embedded()).unwrap();
        env.get_template(name).unwrap().render(context).unwrap()
    }

    #[test]
    fn every_sample_of_every_page_renders_with_its_key_text() {
        let site = Site::new("Acme Sign-in", None);
        let samples = samples(&site);
        for name in [INDEX, WELCOME, LOGIN, LOGOUT, ACCOUNT, ERROR] {
            assert!(samples.iter().any(|(n, _)| *n == name), "no sample of {name}");
        }
        for (name, context) in &samples {
            let html = render(name, context);
            assert!(html.contains("<title>") && html.contains("· Acme Sign-in</title>"), "{name}: {html}");
            assert!(html.contains("<footer>Acme Sign-in</footer>"), "{name}");
            let key = match *name {
                INDEX => "Hello, World!",
                WELCOME => "This page is only for signed-in people.",
                LOGIN => "<h1>Log in</h1>",
                LOGOUT => "<h1>Log out</h1>",
                ACCOUNT => "Where you are signed in",
                ERROR => "There is no page at this address.",
                "admin_users.html" => "<h1>Users</h1>",
                "admin_user.html" => "<h2 class=\"section-title\">Recent events</h2>",
                "admin_new_user.html" => "<h1>New user</h1>",
                "admin_link.html" => "One-time link",
                "admin_events.html" => "<h1>Audit log</h1>",
                "reset.html" => "name=\"new_password\"",
                "second_factor.html" => "<h1>Second step</h1>",
                "totp_setup.html" => "href=\"otpauth:",
                "recovery_codes.html" => "<ul class=\"recovery-codes\" id=\"recovery-codes\">",
                "oidc_consent.html" => "<h1>Allow Grafana?</h1>",
                "oidc_logout.html" => "<h1>Sign out?</h1>",
                "upstream_logout.html" => "http-equiv=\"refresh\"",
                "admin_clients.html" => "<h1>Applications</h1>",
                "admin_client_secret.html" => "id=\"secret\"",
                "reset_request.html" => "<h1>Forgot your password?</h1>",
                "admin_outbox.html" => "<h1>Outbox</h1>",
                other => panic!("unexpected sample {other}"),
            };
            assert!(html.contains(key), "{name} lacks {key:?}: {html}");
            let me = context.get_attr("me").unwrap();
            if !me.is_none() {
                let username = me.get_attr("username").unwrap().to_string();
                assert!(html.contains(&format!("Signed in as <strong>{username}</strong>")), "{name}");
            }
            if let Ok(flash) = context.get_attr("flash") {
                if !flash.is_none() {
                    let kind = flash.get_attr("kind").unwrap().to_string();
                    assert!(html.contains(&format!("flash flash-{kind}")), "{name}: {kind}");
                }
            }
        }
    }

    #[test]
    fn the_login_page_shows_its_error_its_buttons_and_next() {
        let site = Site::new("Portal", None);
        let form = LoginForm {
            error: Some("Invalid username or password."),
            username: "al",
            next: Some("/a b"),
            rd: None,
            passkeys: false,
        };
        let both = erased::Page::context(&login_page(&Providers::sample(true), form), &site, None, None);
        let html = render(LOGIN, &both);
        assert!(html.contains("<strong>Error:</strong> Invalid username or password."));
        assert!(html.contains(r#"href="/login/google?next=%2Fa%20b""#), "{html}");
        assert!(html.contains("Sign in with GitHub"));
        assert!(html.contains(r#"name="next" value="&#x2f;a b""#), "{html}");
        let none = erased::Page::context(
            &login_page(&Providers::sample(false), LoginForm::default()),
            &site,
            None,
            None,
        );
        let html = render(LOGIN, &none);
        assert!(!html.contains("Sign in with") && !html.contains("Error:"), "{html}");
    }

    #[test]
    fn the_account_page_shows_linked_identities_and_the_password_state() {
        let site = Site::new("Portal", None);
        let account = sample_account("octo@example.com", false);
        let user = User {
            id: 1,
            username: "o".into(),
            email: None,
            email_verified: true,
            is_admin: false,
            disabled: false,
            created_at: 0,
            last_login_at: None,
        };
        let page = account_page(&Providers::sample(true), &account);
        let html = render(ACCOUNT, &erased::Page::context(&page, &site, Some(Me::from(&user)), None));
        assert!(html.contains("Connected as octo@example.com"), "{html}");
        assert!(html.contains("Disconnect GitHub") && html.contains("Connect Google"), "{html}");
        assert!(html.contains("Not set"), "{html}");
    }

    #[test]
    fn values_are_escaped_on_every_page_that_shows_them() {
        let site = Site::new("<b>Brand</b>", None);
        let user = User {
            id: 1,
            username: "<script>alert(1)</script>".into(),
            email: Some("\"quoted\"@example.com".into()),
            email_verified: true,
            is_admin: false,
            disabled: false,
            created_at: 0,
            last_login_at: None,
        };
        let flash = Flash { kind: crate::web::flash::Kind::Error, message: "<img src=x>".into() };
        let form =
            LoginForm { username: "<script>x</script>", next: Some("/\"><script>"), ..LoginForm::default() };
        let pages: Vec<(&str, minijinja::Value)> = vec![
            (INDEX, erased::Page::context(&Empty {}, &site, Some(Me::from(&user)), Some(&flash))),
            (
                LOGIN,
                erased::Page::context(
                    &login_page(&Providers::sample(true), form),
                    &site,
                    Some(Me::from(&user)),
                    None,
                ),
            ),
            (LOGOUT, erased::Page::context(&LogoutPage { rd: None }, &site, Some(Me::from(&user)), None)),
            (
                WELCOME,
                erased::Page::context(
                    &WelcomePage { method: "password", method_name: "Password" },
                    &site,
                    Some(Me::from(&user)),
                    None,
                ),
            ),
            (
                ACCOUNT,
                erased::Page::context(
                    &account_page(
                        &Providers::sample(true),
                        &Account {
                            identities: Vec::new(),
                            has_password: true,
                            factors: Factors::default(),
                            recent_sign_ins: Vec::new(),
                            applications: Vec::new(),
                            notices: Vec::new(),
                        },
                    ),
                    &site,
                    Some(Me::from(&user)),
                    None,
                ),
            ),
        ];
        for (name, context) in pages {
            let html = render(name, &context);
            assert!(!html.contains("<script>"), "{name} shows a raw <script>: {html}");
            assert!(!html.contains("<img src=x>") && !html.contains("<b>Brand</b>"), "{name}");
            assert!(html.contains("&lt;script&gt;"), "{name} shows the escaped name: {html}");
        }
    }
}
