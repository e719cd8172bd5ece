//! Representative values of every page, signed in and out, for the startup check that
//! renders each template once (`web::templates`) and for the tests. Apart from the pages so
//! that the page contexts (`web::pages`, `web::admin_pages`) hold only what requests need.

use std::collections::HashMap;

use rocket::http::Status;

use serde::Serialize;

use crate::auth::admin::UserOverview;
use crate::auth::audit::EventKind;
use crate::auth::factors::passkey::PasskeyInfo;
use crate::auth::oauth::Providers;
use crate::auth::{Account, TotpSetup};
use crate::store::{
    DirectoryRow, EventRecord, Factors, MailRow, OutboxCounts, SessionRecord, User, UserPage,
};
use crate::web::admin_pages::{
    events_page, user_page, users_page, EventsFilterView, LinkPage, NewUserView, ResetPage, ADMIN_EVENTS,
    ADMIN_LINK, ADMIN_NEW_USER, ADMIN_USER, ADMIN_USERS, RESET,
};
use crate::web::factor_pages::{
    RecoveryCodesPage, SecondFactorPage, TotpSetupPage, RECOVERY_CODES, SECOND_FACTOR, TOTP_SETUP,
};
use crate::web::flash::Flash;
use crate::web::mail_pages::{outbox_page, ResetRequestPage, ADMIN_OUTBOX, RESET_REQUEST};
use crate::web::oidc_pages::{ConsentView, LogoutConfirmView, OIDC_CONSENT, OIDC_LOGOUT};
use crate::web::pages::{
    account_page, erased, explain, login_page, session_rows, Empty, ErrorPage, LoginForm, LogoutPage, Me,
    PasskeyView, SecondFactorView, Site, UpstreamLogoutPage, WelcomePage, ACCOUNT, ERROR, INDEX, LOGIN,
    LOGOUT, UPSTREAM_LOGOUT, WELCOME,
};

/// Representative contexts for every page (signed in and out, with and without email, each
/// flash kind, an error, providers on and off, linked identities), rendered once at start
/// so that a template error is known before the first request, and by the tests.
pub(crate) fn samples(site: &Site) -> Vec<(&'static str, minijinja::Value)> {
    use crate::web::flash::Kind;
    let alice = User {
        id: 7,
        username: "alice".into(),
        email: Some("alice@example.com".into()),
        email_verified: true,
        is_admin: true,
        disabled: false,
        created_at: 0,
        last_login_at: None,
    };
    let bob = User { id: 8, username: "bob".into(), email: None, is_admin: false, ..alice.clone() };
    let flashes: Vec<Option<Flash>> = [None, Some(Kind::Success), Some(Kind::Info), Some(Kind::Error)]
        .into_iter()
        .map(|kind| kind.map(|kind| Flash { kind, message: format!("a {} message", kind.as_str()) }))
        .collect();
    let linked = sample_account("alice@users.example", true);
    let unlinked = Account {
        identities: Vec::new(),
        has_password: false,
        factors: Factors::default(),
        recent_sign_ins: Vec::new(),
        applications: Vec::new(),
        notices: Vec::new(),
    };
    let both = Providers::sample(true);
    let none = Providers::sample(false);
    let mut out = Vec::new();
    let value = |name, me: Option<&User>, flash: &Option<Flash>, page: &dyn erased::Page| {
        (name, page.context(site, me.map(Me::from), flash.as_ref()))
    };
    for flash in &flashes {
        for me in [None, Some(&alice), Some(&bob)] {
            out.push(value(INDEX, me, flash, &Empty {}));
            let form = LoginForm {
                error: Some("Invalid username or password."),
                username: "al",
                next: Some("/welcome"),
                rd: None,
                passkeys: true,
            };
            for providers in [&both, &none] {
                out.push(value(LOGIN, me, flash, &login_page(providers, form)));
                out.push(value(LOGIN, me, flash, &login_page(providers, LoginForm::default())));
            }
        }
        for me in [&alice, &bob] {
            for (method, method_name) in
                [("password", "Password"), ("google", "Google"), ("gitlab", "GitLab")]
            {
                let page = WelcomePage { method, method_name };
                out.push(value(WELCOME, Some(me), flash, &page));
            }
            out.push(value(LOGOUT, Some(me), flash, &LogoutPage { rd: None }));
            let upstream =
                UpstreamLogoutPage { name: "GitLab", url: "https://gitlab.example/logout?a=1&b=2" };
            out.push(value(UPSTREAM_LOGOUT, None, flash, &upstream));
            out.push(value(LOGOUT, Some(me), flash, &LogoutPage { rd: Some("https://app.example.com/") }));
            for account in [&linked, &unlinked] {
                for providers in [&both, &none] {
                    let mut page = account_page(providers, account);
                    page.sessions = session_rows(&sample_sessions(me.id), "this", providers);
                    page.can_set_password = !account.has_password;
                    out.push(value(ACCOUNT, Some(me), flash, &page));
                }
            }
        }
    }
    for flash in [&flashes[0], &flashes[3]] {
        for (me, step_up) in [(None, false), (Some(&bob), true)] {
            for (passkey, totp) in [(true, true), (false, true), (true, false)] {
                let page = SecondFactorPage {
                    error: Some("That code is not right."),
                    username: "bob",
                    passkey,
                    totp,
                    step_up,
                    rd: Some("https://app.example.com/"),
                    next: None,
                };
                out.push(value(SECOND_FACTOR, me, flash, &page));
                out.push(value(SECOND_FACTOR, me, flash, &SecondFactorPage { username: "bob", ..page }));
            }
        }
        let setup = sample_totp_setup();
        for (me, action, required) in
            [(None, "/login/second-factor/setup", true), (Some(&bob), "/account/totp/confirm", false)]
        {
            for error in [None, Some("That code is not right.")] {
                out.push(value(TOTP_SETUP, me, flash, &TotpSetupPage::new(&setup, action, error, required)));
            }
        }
        let codes = crate::auth::factors::recovery::new_codes();
        for me in [None, Some(&bob)] {
            out.push(value(
                RECOVERY_CODES,
                me,
                flash,
                &RecoveryCodesPage { codes: &codes, continue_to: "/welcome" },
            ));
        }
    }
    // The provider's pages: consent with every scope, and the sign-out question with and
    // without the application's name.
    let consent = crate::auth::provider::ConsentPage {
        client_name: "Grafana".into(),
        client_id: "grafana".into(),
        redirect_uri: "https://grafana.example.com/login/generic_oauth".into(),
        scopes: crate::auth::provider::tokens::SCOPES.to_vec(),
        request: crate::auth::provider::AuthRequest {
            client_id: Some("grafana".into()),
            redirect_uri: Some("https://grafana.example.com/login/generic_oauth".into()),
            state: Some("\"><script>".into()),
            ..Default::default()
        },
    };
    out.push(value(OIDC_CONSENT, Some(&bob), &flashes[0], &ConsentView::new(&consent)));
    for client_name in [None, Some("Grafana")] {
        out.push(value(
            OIDC_LOGOUT,
            Some(&bob),
            &flashes[0],
            &LogoutConfirmView { client_name, hidden: Vec::new() },
        ));
    }
    // The console's applications: a configured and a stored one, the form refused, a secret.
    let clients = crate::auth::provider::Provider::sample_clients();
    let rows = || clients.iter().map(crate::web::client_pages::ClientRowView::from).collect();
    let form = crate::web::client_pages::ClientFormView {
        client_id: "wiki",
        allow: "alice, bob",
        ..Default::default()
    };
    for error in [None, Some("redirect URI \"x\" is not a URL")] {
        let page = crate::web::client_pages::ClientsView { clients: rows(), form: Default::default(), error };
        out.push(value(crate::web::client_pages::ADMIN_CLIENTS, Some(&alice), &flashes[0], &page));
    }
    let refused = crate::web::client_pages::ClientsView {
        clients: Vec::new(),
        form,
        error: Some("that client_id is taken"),
    };
    out.push(value(crate::web::client_pages::ADMIN_CLIENTS, Some(&alice), &flashes[3], &refused));
    for created in [true, false] {
        let page = crate::web::client_pages::ClientSecretView {
            client_id: "grafana",
            name: "Grafana",
            secret: "s3cr3t",
            created,
        };
        out.push(value(crate::web::client_pages::ADMIN_CLIENT_SECRET, Some(&alice), &flashes[0], &page));
    }
    // The account page's second-factor section, each state once (not in every combination
    // above: each sample is rendered at every start).
    let mut page = account_page(&both, &linked);
    page.sessions = session_rows(&sample_sessions(bob.id), "this", &both);
    for factors in sample_factors() {
        page.second_factor = factors;
        out.push(value(ACCOUNT, Some(&bob), &flashes[0], &page));
    }
    let error = ErrorPage { code: 404, title: "Not Found", message: explain(Status::NotFound) };
    out.push(value(ERROR, None, &None, &error));
    for (name, page) in console_samples() {
        for flash in [&flashes[0], &flashes[1]] {
            out.push(value(name, Some(&alice), flash, page.as_ref()));
        }
    }
    out
}

/// The account page's second-factor section: off (apps available or not), an app with
/// codes, passkeys only, and a fresh session.
fn sample_factors() -> Vec<SecondFactorView> {
    let none = Factors::default();
    let app = Factors { totp: true, passkeys: 0, recovery_left: 7 };
    let keys = Factors { totp: false, passkeys: 2, recovery_left: 10 };
    let passkey = |id: &str, name: &str, last_used_at: Option<i64>, backed_up: bool| {
        PasskeyView::from(&PasskeyInfo {
            id: id.into(),
            name: name.into(),
            created_at: 1_800_000_000,
            last_used_at,
            backed_up,
        })
    };
    let mut with_keys = SecondFactorView::new(keys, true, true);
    with_keys.passkey_list = vec![
        passkey("AbC", "Work laptop", Some(1_800_000_600), true),
        passkey("dEf", "Security key", None, false),
    ];
    let mut off = SecondFactorView::new(none, false, false);
    off.passkeys_off = Some("Passkeys are off: this server has no public_url.");
    vec![
        SecondFactorView::new(none, true, false),
        off,
        SecondFactorView::new(app, true, false),
        SecondFactorView::new(app, true, true),
        with_keys,
    ]
}

/// An app waiting for its first code.
fn sample_totp_setup() -> TotpSetup {
    let secret = b"12345678901234567890";
    let uri = crate::auth::factors::totp::otpauth_uri(secret, "Portal", "bob");
    TotpSetup {
        secret: crate::auth::factors::totp::secret_text(secret),
        qr: crate::auth::factors::totp::qr_path(&uri),
        uri,
    }
}

/// Two sessions of the user: this device, and another.
fn sample_sessions(user_id: i64) -> Vec<SessionRecord> {
    let session = |id: &str, client: &str| SessionRecord {
        id: id.into(),
        user_id,
        method: "password".into(),
        methods: "pwd otp".into(),
        aal: 2,
        created_at: 1_800_000_000,
        last_seen_at: 1_800_000_600,
        ended_at: None,
        client: client.into(),
        ip: Some("192.0.2.7".into()),
        persist: false,
        upstream_sid: None,
    };
    vec![session("this", "Firefox on Linux"), session("other", "Safari on iOS")]
}

/// An account with a GitHub identity linked as `email`.
pub(crate) fn sample_account(email: &str, has_password: bool) -> Account {
    let github = crate::store::LinkedIdentity {
        provider: "github".into(),
        subject: "42".into(),
        email: Some(email.into()),
        created_at: 0,
    };
    let event = |kind: EventKind, detail: &str| EventRecord {
        subject_name: Some("alice".into()),
        id: 1,
        at: 1_800_000_000,
        kind: kind.slug().into(),
        actor: "anonymous".into(),
        subject_user_id: Some(7),
        ip: Some("192.0.2.7".into()),
        client: Some("Firefox on Linux".into()),
        detail: detail.into(),
    };
    let recent_sign_ins = vec![
        event(EventKind::SignInSucceeded, r#"{"method":"github"}"#),
        event(EventKind::SignInFailed, r#"{"method":"password","reason":"invalid-credentials"}"#),
        event(EventKind::SignInThrottled, "{}"),
    ];
    let applications = vec![crate::auth::provider::ConnectedApp {
        client_id: "grafana".into(),
        name: "Grafana".into(),
        scopes: "openid profile email offline_access".into(),
        granted_at: 1_700_000_000,
    }];
    Account {
        identities: vec![github],
        has_password,
        factors: Factors::default(),
        recent_sign_ins,
        applications,
        notices: crate::mail::NOTICE_PREFERENCES
            .iter()
            .map(|(name, words)| (*name, *words, name != &"factor"))
            .collect(),
    }
}

/// Samples of every console page (empty and full, first and middle pages, errors), for the
/// startup check and the tests.
fn console_samples() -> Vec<(&'static str, Box<dyn erased::Page>)> {
    use crate::store::LinkedIdentity;
    let user = |id: i64, name: &str, admin: bool, disabled: bool| User {
        id,
        username: name.into(),
        email: (id % 2 == 0).then(|| format!("{name}@example.com")),
        email_verified: id % 4 == 0,
        is_admin: admin,
        disabled,
        created_at: 1_800_000_000,
        last_login_at: (id % 3 != 0).then_some(1_800_000_600),
    };
    let rows = vec![
        DirectoryRow {
            user: user(1, "alice", true, false),
            username_key: "alice".into(),
            providers: vec!["github".into()],
            live_sessions: 2,
        },
        DirectoryRow {
            user: user(2, "bob", false, true),
            username_key: "bob".into(),
            providers: Vec::new(),
            live_sessions: 0,
        },
        DirectoryRow {
            user: user(3, "carol", false, false),
            username_key: "carol".into(),
            providers: vec!["github".into(), "google".into()],
            live_sessions: 1,
        },
    ];
    let full = UserPage { users: rows, next: Some("carol".into()), previous: Some("alice".into()) };
    let empty = UserPage { users: Vec::new(), next: None, previous: None };
    let event = |id: i64, kind: EventKind, actor: &str, detail: &str| EventRecord {
        id,
        at: 1_800_000_000 + id,
        kind: kind.slug().into(),
        actor: actor.into(),
        subject_user_id: Some(2),
        subject_name: Some("bob".into()),
        ip: Some("192.0.2.7".into()),
        client: Some("Firefox on Linux".into()),
        detail: detail.into(),
    };
    let events = vec![
        event(
            1,
            EventKind::SignInFailed,
            "anonymous",
            r#"{"method":"password","reason":"invalid-credentials"}"#,
        ),
        event(2, EventKind::UserDisabled, "1", r#"{"sessions_ended":true}"#),
        event(3, EventKind::UserDeleted, "cli", r#"{"username":"bob"}"#),
        event(4, EventKind::ResetLinkCreated, "9", "{}"),
    ];
    let names: HashMap<i64, String> = [(1, "alice".to_owned())].into_iter().collect();
    let session = SessionRecord {
        id: "s1".into(),
        user_id: 2,
        method: "github".into(),
        methods: "github".into(),
        aal: 1,
        created_at: 1_800_000_000,
        last_seen_at: 1_800_000_100,
        ended_at: None,
        client: "Safari on iOS".into(),
        ip: None,
        persist: true,
        upstream_sid: Some("sid".into()),
    };
    let identity = LinkedIdentity {
        provider: "github".into(),
        subject: "42".into(),
        email: Some("bob@users.example".into()),
        created_at: 1_800_000_000,
    };
    let overview = |disabled: bool, admin: bool, full: bool| UserOverview {
        user: user(2, "bob", admin, disabled),
        has_password: full,
        identities: if full { vec![identity.clone()] } else { Vec::new() },
        sessions: if full { vec![session.clone()] } else { Vec::new() },
        events: if full { events.clone() } else { Vec::new() },
        factors: if full {
            Factors { totp: true, passkeys: 1, recovery_left: 9 }
        } else {
            Factors::default()
        },
    };
    let known = Providers::sample(true);
    let filter = |error: Option<&str>| EventsFilterView {
        user: "bob",
        kind: "sign_in_failed",
        since: "2027-01-01",
        until: "",
        error: error.map(str::to_owned),
    };
    let mut out: Vec<(&'static str, Box<dyn erased::Page>)> = vec![
        (ADMIN_USERS, Box::new(users_page("", &full, &known))),
        (ADMIN_USERS, Box::new(users_page("nobody", &empty, &known))),
        (ADMIN_NEW_USER, Box::new(NewUserView::default())),
        (
            ADMIN_NEW_USER,
            Box::new(NewUserView {
                username: "bob",
                email: "bob@",
                admin: true,
                invite: true,
                error: Some("that is not an email address".into()),
            }),
        ),
        (
            ADMIN_EVENTS,
            Box::new(events_page(filter(None), &events, &names, Some("/admin/events?before=1.1".into()))),
        ),
        (ADMIN_EVENTS, Box::new(events_page(filter(Some("not a time")), &[], &names, None))),
        (RESET, Box::new(ResetPage { username: "bob", error: None })),
        (RESET_REQUEST, Box::new(ResetRequestPage { sent: false, login: "", error: None })),
        (
            RESET_REQUEST,
            Box::new(ResetRequestPage {
                sent: false,
                login: "bob",
                error: Some("Enter your username or email."),
            }),
        ),
        (RESET_REQUEST, Box::new(ResetRequestPage { sent: true, login: "bob", error: None })),
        (
            ADMIN_OUTBOX,
            Box::new(outbox_page(OutboxCounts { pending: 1, sent: 1, failed: 1 }, "", &MAIL_ROWS)),
        ),
        (ADMIN_OUTBOX, Box::new(outbox_page(OutboxCounts::default(), "failed", &[]))),
        (RESET, Box::new(ResetPage { username: "bob", error: Some("Use at least 8 characters.") })),
    ];
    for created in [true, false] {
        let page = LinkPage {
            username: "bob",
            user_id: 2,
            link: "https://portal.example/reset/t",
            expires: crate::when::human(1_800_086_400),
            created,
        };
        out.push((ADMIN_LINK, Box::new(OwnedLink(page))));
    }
    for (disabled, admin, full, me) in
        [(false, false, true, 1), (true, true, false, 2), (false, true, true, 2)]
    {
        out.push((ADMIN_USER, Box::new(user_page(&overview(disabled, admin, full), &names, me, &known))));
    }
    out
}

/// One message in each state, for the outbox's sample.
static MAIL_ROWS: std::sync::LazyLock<Vec<MailRow>> = std::sync::LazyLock::new(|| {
    let row = |id, status: &str, error: Option<&str>| MailRow {
        id,
        kind: "reset".into(),
        user_id: if id == 3 { None } else { Some(8) },
        recipient: "bob@example.com".into(),
        status: status.into(),
        attempts: 2,
        next_attempt_at: 1_800_000_100,
        last_error: error.map(str::to_owned),
        created_at: 1_800_000_000,
        sent_at: (status == "sent").then_some(1_800_000_050),
    };
    vec![
        row(1, "pending", Some("Connection error: connection refused")),
        row(2, "sent", None),
        row(3, "failed", Some("permanent error (550): mailbox unavailable")),
    ]
});

/// A link page with 'static borrows, boxed for the samples.
#[derive(Serialize)]
#[serde(transparent)]
struct OwnedLink(LinkPage<'static>);
