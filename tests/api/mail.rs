//! Mail (`[email]`): "Forgot password?" end to end through a real SMTP sink, the one answer
//! whoever is asked about, the link's single use and hour, the throttles, and the outbox
//! losing nothing while the mail server is down, busy or refusing.

use portal::store::{NewUser, User};
use rocket::figment::Figment;
use rocket::http::Status;

use portal_testkit::app::*;
use portal_testkit::smtp::{Mode, Received, Sink};
use portal_testkit::PASSWORD;

const PUBLIC: &str = "http://portal.test";

fn with_mail(sink: &Sink) -> impl FnOnce(Figment) -> Figment + '_ {
    move |f| {
        f.merge(("public_url", PUBLIC))
            .merge(("email.smtp_url", sink.url()))
            .merge(("email.from", "Portal <portal@example.com>"))
    }
}

async fn user_with_email(app: &TestApp, name: &str, email: &str) -> User {
    let hash = app.auth().hasher().hash(PASSWORD.to_owned()).await.unwrap();
    let new = NewUser { username: name, email: Some(email), password_hash: Some(&hash), is_admin: false };
    app.store().create_user(new, START).await.unwrap()
}

/// Posts the "forgot password" form; the status and the page.
async fn forgot(app: &TestApp, login: &str) -> (Status, String) {
    let token = app.csrf_token().await;
    let response = app
        .client
        .post("/reset")
        .header(rocket::http::ContentType::Form)
        .body(form_body(&[("csrf_token", &token), ("login", login)]))
        .dispatch()
        .await;
    (response.status(), body(response).await)
}

/// The page without its form token (which differs on every page).
fn without_token(page: &str) -> String {
    match extract_hidden(page, "csrf_token") {
        Some(token) => page.replace(&token, "TOKEN"),
        None => page.to_owned(),
    }
}

/// The path of the reset link in a message.
fn reset_path(mail: &Received) -> String {
    let link = mail.link(&format!("{PUBLIC}/reset/")).expect("a reset link in the text");
    link.trim_start_matches(PUBLIC).to_owned()
}

/// Waits until the outbox has nothing pending that is due, or fails.
async fn outbox_settled(app: &TestApp) -> portal::store::OutboxCounts {
    for _ in 0..400 {
        let counts = app.store().outbox_counts().await.unwrap();
        if counts.pending == 0 {
            return counts;
        }
        tokio::time::sleep(portal_testkit::POLL).await;
    }
    panic!("the outbox did not settle");
}

/// Waits until the outbox's newest message was attempted `n` times.
async fn attempted(app: &TestApp, n: i32) -> portal::store::MailRow {
    for _ in 0..400 {
        let rows = app.store().outbox_recent(None, 1).await.unwrap();
        if let Some(row) = rows.into_iter().next().filter(|row| row.attempts >= n && row.last_error.is_some())
        {
            return row;
        }
        tokio::time::sleep(portal_testkit::POLL).await;
    }
    panic!("the outbox's message was not attempted {n} time(s)");
}

#[rocket::async_test]
async fn forgot_password_mails_a_link_that_sets_a_new_password_once() {
    let sink = Sink::start().await;
    let app = TestApp::spawn_with(with_mail(&sink)).await;
    let alice = user_with_email(&app, "alice", "alice@example.com").await;

    let login = body(app.get("/login").await).await;
    assert!(login.contains(r#"<a href="/reset">Forgot password?</a>"#), "{login}");
    let form = app.get("/reset").await;
    assert_eq!(form.status(), Status::Ok);
    assert!(body(form).await.contains(r#"name="login""#));

    let (status, page) = forgot(&app, "alice").await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains("If an account matches, we sent a link"), "{page}");
    let mail = sink.wait_for(1).await.remove(0);
    assert_eq!(mail.to, ["alice@example.com"]);
    assert_eq!(mail.to_header(), ["alice@example.com"]);
    assert_eq!(mail.from, "portal@example.com");
    assert_eq!(mail.subject(), "Reset your Portal password");
    assert!(mail.text().contains("Hello alice,"), "{}", mail.text());
    assert!(mail.text().contains("within 60 minutes"), "{}", mail.text());
    let path = reset_path(&mail);
    let html = unescape_html(&mail.html());
    assert!(html.contains(&format!(r#"href="{PUBLIC}{path}""#)), "{html}");
    assert!(mail.message_id().ends_with("@portal.test"), "{}", mail.message_id());

    // The link's page, then a new password through it: signed in, the old password gone.
    let page = app.get(&path).await;
    assert_eq!(page.status(), Status::Ok);
    assert!(body(page).await.contains("alice"));
    let new = "a brand new passphrase";
    let set = app.post_form(&path, &[("new_password", new), ("confirm_password", new)]).await;
    assert_is_redirect_to(&set, "/");
    assert!(session_cookie(&set).is_some(), "signed in");
    assert_eq!(app.get(&path).await.status(), Status::NotFound, "the link works once");
    let again = app
        .post_form(
            &path,
            &[("new_password", "another one, please"), ("confirm_password", "another one, please")],
        )
        .await;
    assert_eq!(again.status(), Status::NotFound);
    assert_eq!(app.post_login("alice", PASSWORD).await.status(), Status::Ok, "the old password fails");
    assert_is_redirect_to(&app.post_login("alice", new).await, "/");

    // The outbox: the link and the notice of the new password, both sent, their content
    // dropped; the audit log says so without the link.
    let counts = outbox_settled(&app).await;
    assert_eq!((counts.pending, counts.sent, counts.failed), (0, 2, 0));
    assert_eq!(sink.received()[1].subject(), "Your Portal password was changed");
    let events = app.events().await;
    assert!(
        events.contains(&("reset_link_created".into(), "anonymous".into(), Some(alice.id))),
        "{events:?}"
    );
    assert!(events.contains(&("mail_sent".into(), "system".into(), Some(alice.id))), "{events:?}");
    let token = path.trim_start_matches("/reset/");
    for event in app.store().recent_events(100).await.unwrap() {
        assert!(!event.detail.contains(token), "the token is in the audit log: {}", event.detail);
    }
}

#[rocket::async_test]
async fn the_answer_is_the_same_whoever_is_asked_about_and_only_a_real_account_gets_mail() {
    let sink = Sink::start().await;
    let app = TestApp::spawn_with(with_mail(&sink)).await;
    user_with_email(&app, "alice", "alice@example.com").await;
    let carol = user_with_email(&app, "carol", "carol@example.com").await;
    app.auth().set_user_disabled(&portal::auth::admin::Operator::cli(), carol.id, true).await.unwrap();
    app.create_user("dave", PASSWORD).await; // no email

    let mut answers = Vec::new();
    for login in ["nobody", "nobody@example.com", "carol", "carol@example.com", "dave", "alice@example.com"] {
        let (status, page) = forgot(&app, login).await;
        answers.push((login, status, without_token(&page)));
    }
    let (_, status, page) = &answers[0];
    for (login, other_status, other_page) in &answers {
        assert_eq!(other_status, status, "{login}");
        assert_eq!(other_page, page, "{login}: the same page");
    }
    let mail = sink.wait_for(1).await;
    let counts = outbox_settled(&app).await;
    assert_eq!((counts.sent, counts.failed), (1, 0), "one message, to alice");
    assert_eq!(sink.received().len(), 1);
    assert_eq!(mail[0].to, ["alice@example.com"], "found by her email");
}

#[rocket::async_test]
async fn a_mailed_link_expires_after_an_hour_and_a_newer_one_replaces_it() {
    let sink = Sink::start().await;
    let app = TestApp::spawn_with(with_mail(&sink)).await;
    user_with_email(&app, "alice", "alice@example.com").await;

    forgot(&app, "alice").await;
    let first = reset_path(&sink.wait_for(1).await[0]);
    forgot(&app, "alice").await;
    let second = reset_path(&sink.wait_for(2).await[1]);
    assert_ne!(first, second);
    assert_eq!(app.get(&first).await.status(), Status::NotFound, "the newer link replaces the older");
    assert_eq!(app.get(&second).await.status(), Status::Ok);
    app.clock.advance(60 * 60 + 1);
    assert_eq!(app.get(&second).await.status(), Status::NotFound, "an hour later");
}

#[rocket::async_test]
async fn requests_are_throttled_per_account_and_per_address() {
    let sink = Sink::start().await;
    let app = TestApp::spawn_with(with_mail(&sink)).await;
    user_with_email(&app, "alice", "alice@example.com").await;

    // Per account: three messages an hour, and the same answer after.
    for _ in 0..5 {
        let (status, page) = forgot(&app, "alice").await;
        assert_eq!(status, Status::Ok);
        assert!(page.contains("If an account matches"));
    }
    sink.wait_for(3).await;
    outbox_settled(&app).await;
    assert_eq!(sink.received().len(), 3, "three an hour");
    // Per address (ten a window): the rest get 429 and a sentence.
    for _ in 0..5 {
        assert_eq!(forgot(&app, "nobody").await.0, Status::Ok);
    }
    let (status, page) = forgot(&app, "alice").await;
    assert_eq!(status, Status::TooManyRequests);
    assert!(page.contains("Too many requests from your address. Try again in 15 minute(s)."), "{page}");
    app.clock.advance(60 * 60);
    assert_eq!(forgot(&app, "alice").await.0, Status::Ok, "a new hour, a new window");
    sink.wait_for(4).await;
}

#[rocket::async_test]
async fn bad_input_gets_a_form_error() {
    let sink = Sink::start().await;
    let app = TestApp::spawn_with(with_mail(&sink)).await;
    let (status, page) = forgot(&app, "   ").await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(page.contains("Enter your username or email."), "{page}");
    let (status, page) = forgot(&app, &"a".repeat(400)).await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(page.contains("That is too long"), "{page}");
    let forged = app
        .client
        .post("/reset")
        .header(rocket::http::ContentType::Form)
        .body(form_body(&[("csrf_token", "forged"), ("login", "alice")]))
        .dispatch()
        .await;
    assert_eq!(forged.status(), Status::Forbidden);
}

#[rocket::async_test]
async fn a_header_injection_in_a_login_or_an_email_goes_nowhere() {
    let sink = Sink::start().await;
    let (app, _) = {
        let app = TestApp::spawn_with(with_mail(&sink)).await.with_root().await;
        let root = app.store().user_by_username("root").await.unwrap().unwrap();
        app.sign_in("root", PASSWORD).await;
        (app, root)
    };
    let alice = user_with_email(&app, "alice", "alice@example.com").await;

    // The console refuses such an address with a form error.
    let created = app
        .post_form(
            "/admin/users",
            &[("username", "mallory"), ("email", "m@example.com\r\nBcc: evil@example.com")],
        )
        .await;
    assert_eq!(created.status(), Status::UnprocessableEntity);
    let page = body(created).await;
    assert!(page.contains("That is not an email address."), "{page}");

    // Typed into the form, it finds nobody.
    let (status, _) = forgot(&app, "alice\r\nBcc: evil@example.com").await;
    assert_eq!(status, Status::Ok);
    // Stored behind the portal's back, it is not an address mail goes to: nothing is queued.
    let url = app.client.rocket().figment().extract_inner::<String>("databases.portal.url").unwrap();
    let injected = "a@example.com\r\nBcc: evil@example.com";
    write_on_store(&url, "UPDATE users SET email = $1 WHERE id = $2", injected, alice.id).await;
    let (status, _) = forgot(&app, "alice").await;
    assert_eq!(status, Status::Ok);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.store().outbox_counts().await.unwrap(), Default::default(), "nothing queued");
    assert!(sink.received().is_empty());
}

#[rocket::async_test]
async fn a_mail_server_that_is_down_gets_the_message_once_it_is_up() {
    let sink = Sink::stopped().await;
    let app = TestApp::spawn_with(with_mail(&sink)).await;
    user_with_email(&app, "alice", "alice@example.com").await;

    let (status, _) = forgot(&app, "alice").await;
    assert_eq!(status, Status::Ok, "answered without the mail server");
    let row = attempted(&app, 1).await;
    assert_eq!(row.status, "pending");
    assert!(row.last_error.as_deref().unwrap_or("").contains("Connection error"), "{row:?}");
    // Still down at the second try (five seconds later).
    app.clock.advance(5);
    attempted(&app, 2).await;

    sink.resume().await;
    app.clock.advance(10);
    let mail = sink.wait_for(1).await;
    assert_eq!(mail[0].to, ["alice@example.com"]);
    let counts = outbox_settled(&app).await;
    assert_eq!((counts.sent, counts.failed), (1, 0));
    app.clock.advance(3600);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(sink.received().len(), 1, "once");
    let row = app.store().outbox_recent(None, 1).await.unwrap().remove(0);
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 3));
}

#[rocket::async_test]
async fn a_busy_server_is_tried_again_and_a_refusal_is_final() {
    let sink = Sink::start().await;
    sink.set_mode(Mode::Defer);
    let app = TestApp::spawn_with(with_mail(&sink)).await;
    user_with_email(&app, "alice", "alice@example.com").await;
    let bob = user_with_email(&app, "bob", "bob@example.com").await;

    forgot(&app, "alice").await;
    let row = attempted(&app, 1).await;
    assert!(row.last_error.as_deref().unwrap_or("").contains("451"), "{row:?}");
    sink.set_mode(Mode::Accept);
    app.clock.advance(5);
    sink.wait_for(1).await;
    outbox_settled(&app).await;

    sink.set_mode(Mode::Refuse);
    forgot(&app, "bob").await;
    let counts = outbox_settled(&app).await;
    assert_eq!((counts.sent, counts.failed), (1, 1));
    let failed = app.store().outbox_recent(Some("failed"), 10).await.unwrap().remove(0);
    assert_eq!(failed.attempts, 1, "not tried again");
    assert!(failed.last_error.as_deref().unwrap_or("").contains("550"), "{failed:?}");
    let connections = sink.connections();
    app.clock.advance(3600);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(sink.connections(), connections, "no retry of a refusal");
    assert_eq!(app.last_event().await, ("mail_failed".into(), "system".into(), Some(bob.id)));

    // The console shows it, with why.
    app.create_admin("root").await;
    app.sign_in("root", PASSWORD).await;
    let page = body(app.get("/admin/outbox?status=failed").await).await;
    assert!(page.contains("Failed (1)") && page.contains("bob@example.com"), "{page}");
    assert!(page.contains("550"), "{page}");
    let users = body(app.get("/admin").await).await;
    assert!(users.contains(r#"href="/admin/outbox""#));
}

#[rocket::async_test]
async fn a_day_of_a_mail_server_down_gives_up_and_says_so() {
    let sink = Sink::stopped().await;
    let app = TestApp::spawn_with(with_mail(&sink)).await;
    let alice = user_with_email(&app, "alice", "alice@example.com").await;
    forgot(&app, "alice").await;
    attempted(&app, 1).await;
    app.clock.advance(24 * 60 * 60);
    let counts = outbox_settled(&app).await;
    assert_eq!(counts.failed, 1);
    let row = app.store().outbox_recent(None, 1).await.unwrap().remove(0);
    assert!(row.last_error.as_deref().unwrap_or("").starts_with("gave up after a day of trying"), "{row:?}");
    assert_eq!(app.last_event().await, ("mail_failed".into(), "system".into(), Some(alice.id)));
}

#[rocket::async_test]
async fn without_email_nothing_mentions_mail() {
    let (app, _) = TestApp::spawn_admin().await;
    assert!(!body(app.get("/login").await).await.contains("Forgot"));
    assert_eq!(app.get("/reset").await.status(), Status::NotFound);
    assert_eq!(app.post_form("/reset", &[("login", "root")]).await.status(), Status::NotFound);
    assert_eq!(app.get("/admin/outbox").await.status(), Status::NotFound);
    assert!(!body(app.get("/admin").await).await.contains("outbox"));
}

#[rocket::async_test]
async fn bad_email_settings_stop_startup_with_one_line() {
    use portal::config::Settings;
    let (_dir, db) = temp_db();
    let base =
        || test_figment(&db, &portal_testkit::secret_key()).merge(("email.from", "Portal <p@example.com>"));
    let cases: [(Figment, &str); 4] = [
        (
            base().merge(("email.smtp_url", "smtp://127.0.0.1:2525")),
            "[email] needs public_url: links in mail are absolute",
        ),
        (
            base().merge(("public_url", PUBLIC)).merge(("email.smtp_url", "ftp://user:hunter2@mail.example")),
            "email.smtp_url is not an SMTP URL",
        ),
        (
            base()
                .merge(("public_url", PUBLIC))
                .merge(("email.smtp_url", "smtp://127.0.0.1:2525"))
                .merge(("email.from", "not an address")),
            "email.from \"not an address\" is not a mailbox",
        ),
        (base().merge(("public_url", PUBLIC)), "missing field `smtp_url`"),
    ];
    for (figment, expected) in cases {
        let error = match Settings::from_figment(&figment) {
            Err(e) => e,
            Ok(settings) => {
                let email = settings.email.as_ref().unwrap();
                let public = settings.public_url.as_ref().unwrap();
                match portal::mail::Mailer::new(email, public, "Portal", &settings.mail_key, None) {
                    Err(e) => e,
                    Ok(_) => panic!("{expected}: must be refused"),
                }
            }
        };
        assert!(error.contains(expected), "{error:?} should say {expected:?}");
        assert!(!error.contains('\n'), "one line: {error}");
        assert!(!error.contains("hunter2"), "no password in: {error}");
    }
}

/// The real binary: a message queued while the mail server is down survives `kill -9` and a
/// restart, and arrives once when the server is up.
#[rocket::async_test]
async fn a_message_queued_before_a_crash_arrives_once_after_the_restart() {
    use portal_testkit::app::{http_client, LoginForm};
    use portal_testkit::process::{free_port, Launch};

    let sink = Sink::stopped().await;
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let launch = Launch::in_checkout()
        .test_config(home.path())
        .env("ROCKET_PUBLIC_URL", base.clone())
        .env("ROCKET_EMAIL", format!("{{smtp_url=\"{}\",from=\"Portal <portal@example.com>\"}}", sink.url()));
    let added =
        launch.run(&["users", "add", "alice", "--email", "alice@example.com"], &format!("{PASSWORD}\n"));
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let server = launch.serve(home, port);

    let http = http_client();
    let form = LoginForm::fetch(&http, &base).await;
    let answer = form.post_to("/reset", &[("login", "alice")]).await;
    assert_eq!(answer.status().as_u16(), 200);
    assert!(answer.text().await.unwrap().contains("If an account matches"));
    // Queued, and tried once against the server that is down.
    let deadline = std::time::Instant::now() + portal_testkit::PATIENCE;
    while !server.log().contains("outbox: message 1 not sent") {
        assert!(std::time::Instant::now() < deadline, "no attempt logged: {}", server.log());
        tokio::time::sleep(portal_testkit::POLL).await;
    }

    let home = server.crash();
    sink.resume().await;
    let server = launch.serve(home, port);
    // Two messages: the confirmation `users add --email` queued, and the reset link.
    let mails = sink.wait_for(2).await;
    assert!(mails.iter().all(|m| m.to == ["alice@example.com"]));
    let reset = mails.iter().find(|m| m.subject() == "Reset your Portal password").expect("the reset mail");
    let link = reset.link(&format!("{base}/reset/")).expect("the link");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(sink.received().len(), 2, "each once");
    // The link it carries works on the restarted server.
    let page = http.get(&link).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        !server.log().contains(link.trim_start_matches(&format!("{base}/reset/"))),
        "no token in the log"
    );
}

/// The path of the first link under `{PUBLIC}{prefix}` in a message.
fn path_in(mail: &Received, prefix: &str) -> String {
    let link = mail.link(&format!("{PUBLIC}{prefix}")).expect("the link in the text");
    link.trim_start_matches(PUBLIC).to_owned()
}

/// What forward-auth tells an application about the signed-in person's email.
async fn remote_email(app: &TestApp) -> String {
    let answer = app
        .client
        .get("/authz/auth-request")
        .header(rocket::http::Header::new("X-Original-URL", "https://app.example.com/"))
        .dispatch()
        .await;
    assert_eq!(answer.status(), Status::Ok);
    answer.headers().get_one("Remote-Email").unwrap_or_default().to_owned()
}

async fn me(app: &TestApp) -> serde_json::Value {
    json(app.get("/api/me").await).await
}

#[rocket::async_test]
async fn a_new_address_on_the_account_page_counts_once_its_link_is_followed() {
    let sink = Sink::start().await;
    let app = TestApp::spawn_with(|f| {
        with_mail(&sink)(f).merge(("forward_auth.allowed_domains", ["*.example.com"]))
    })
    .await;
    let alice = user_with_email(&app, "alice", "alice@example.com").await;
    assert!(alice.email_verified, "set without a link: an administrator's word");
    app.sign_in("alice", PASSWORD).await;
    let account = body(app.get("/account").await).await;
    assert!(account.contains(r#"<h2 class="section-title" id="email">Email</h2>"#), "{account}");
    assert!(account.contains("<strong>alice@example.com</strong> · confirmed"));
    assert_eq!(remote_email(&app).await, "alice@example.com");

    let changed = app.post_form("/account/email", &[("email", " New@Example.org ")]).await;
    assert_is_redirect_to(&changed, "/account#email");
    assert_eq!(
        app.flash("/account").await,
        "We sent a link to New@Example.org. The address counts once you follow it (within a day)."
    );
    let me_now = me(&app).await;
    assert_eq!(
        (me_now["email"].as_str(), me_now["email_verified"].as_bool()),
        (Some("New@Example.org"), Some(false))
    );
    assert_eq!(remote_email(&app).await, "", "an unconfirmed address is not passed on");
    assert!(body(app.get("/account").await).await.contains("not confirmed yet"));

    let mail = sink.wait_for(1).await.remove(0);
    assert_eq!(mail.to, ["New@Example.org"]);
    assert_eq!(mail.subject(), "Confirm your email address for Portal");
    let path = path_in(&mail, "/verify/");
    let followed = app.get(&path).await;
    assert_is_redirect_to(&followed, "/account#email");
    assert_eq!(app.flash("/account").await, "Your email address New@Example.org is confirmed.");
    assert_eq!(me(&app).await["email_verified"], true);
    assert_eq!(remote_email(&app).await, "New@Example.org");
    assert_eq!(app.get(&path).await.status(), Status::NotFound, "once");
    let kinds: Vec<String> = app.events().await.into_iter().map(|e| e.0).collect();
    assert!(kinds.contains(&"email_changed".to_owned()) && kinds.contains(&"email_verified".to_owned()));

    // A bad address: a sentence, nothing changed.
    app.post_form("/account/email", &[("email", "not an address")]).await;
    assert_eq!(app.flash("/account").await, "That is not an email address.");
    assert_eq!(me(&app).await["email"], "New@Example.org");
    // Removed.
    app.post_form("/account/email", &[("email", "")]).await;
    assert_eq!(app.flash("/account").await, "Your email address is removed.");
    assert_eq!(me(&app).await["email"], serde_json::Value::Null);
}

#[rocket::async_test]
async fn a_link_for_an_address_since_changed_proves_nothing_and_links_expire() {
    let sink = Sink::start().await;
    let app = TestApp::spawn_with(with_mail(&sink)).await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    app.post_form("/account/email", &[("email", "first@example.com")]).await;
    app.post_form("/account/email", &[("email", "second@example.com")]).await;
    let mails = sink.wait_for(2).await;
    let first = mails.iter().find(|m| m.to == ["first@example.com"]).unwrap();
    let second = mails.iter().find(|m| m.to == ["second@example.com"]).unwrap();
    let page = app.get(&path_in(first, "/verify/")).await;
    assert_eq!(page.status(), Status::NotFound);
    assert!(body(page).await.contains("it is for an address the account no longer has"));
    assert_eq!(me(&app).await["email_verified"], false);
    app.clock.advance(24 * 60 * 60 + 1);
    assert_eq!(app.get(&path_in(second, "/verify/")).await.status(), Status::NotFound, "a day later");
    app.sign_in("alice", PASSWORD).await;
    assert_eq!(me(&app).await["email_verified"], false);
    assert_eq!(app.get("/verify/not-a-token").await.status(), Status::NotFound);
}

#[rocket::async_test]
async fn an_invitation_mails_a_week_long_link_that_sets_the_password_and_proves_the_address() {
    let sink = Sink::start().await;
    let app = TestApp::spawn_with(with_mail(&sink)).await.with_root().await;
    app.sign_in("root", PASSWORD).await;
    let form = body(app.get("/admin/users/new").await).await;
    assert!(form.contains(r#"name="invite""#), "{form}");

    let created = app
        .post_form("/admin/users", &[("username", "carol"), ("email", "carol@example.com"), ("invite", "on")])
        .await;
    let to = location(&created).unwrap().to_owned();
    assert!(to.starts_with("/admin/users/"), "{to}");
    assert_eq!(app.flash(&to).await, "An invitation to carol@example.com is on its way (valid 7 days).");
    let mail = sink.wait_for(1).await.remove(0);
    assert_eq!(mail.subject(), "Your Portal account");
    assert!(mail.text().contains("with the username carol"), "{}", mail.text());
    assert!(mail.text().contains("within 7 days"), "{}", mail.text());
    let carol = app.store().user_by_username("carol").await.unwrap().unwrap();
    assert!(!carol.email_verified);

    app.post_logout().await;
    app.clock.advance(6 * 24 * 60 * 60);
    let path = path_in(&mail, "/reset/");
    let new = "carol's own passphrase";
    let set = app.post_form(&path, &[("new_password", new), ("confirm_password", new)]).await;
    assert_is_redirect_to(&set, "/");
    assert!(
        app.store().user_by_username("carol").await.unwrap().unwrap().email_verified,
        "the mail proved it"
    );

    // The JSON API: no link in the answer, and it says so; without an address, 422.
    app.post_logout().await;
    app.sign_in("root", PASSWORD).await;
    let api = |body: serde_json::Value| {
        app.client
            .post("/api/admin/users")
            .header(same_origin())
            .header(rocket::http::ContentType::JSON)
            .body(body.to_string())
            .dispatch()
    };
    let made =
        api(serde_json::json!({ "username": "dan", "email": "dan@example.com", "invite": true })).await;
    assert_eq!(made.status(), Status::Created);
    let made = json(made).await;
    assert_eq!(made["invited"], true);
    assert!(made.get("reset_link").is_none(), "{made}");
    let refused = api(serde_json::json!({ "username": "erin", "invite": true })).await;
    assert_eq!(refused.status(), Status::UnprocessableEntity);
    let mails = sink.wait_for(2).await;
    assert_eq!(mails[1].to, ["dan@example.com"]);

    // Seven days on, an invitation's link no longer works.
    app.clock.advance(7 * 24 * 60 * 60 + 1);
    assert_eq!(app.get(&path_in(&mails[1], "/reset/")).await.status(), Status::NotFound);
}

#[rocket::async_test]
async fn with_mail_an_administrators_new_address_waits_for_its_link() {
    let sink = Sink::start().await;
    let app = TestApp::spawn_with(with_mail(&sink)).await.with_root().await;
    app.sign_in("root", PASSWORD).await;
    let created =
        app.post_form("/admin/users", &[("username", "frank"), ("email", "frank@example.com")]).await;
    assert_eq!(created.status(), Status::Created, "the link page, as without mail");
    let mail = sink.wait_for(1).await.remove(0);
    assert_eq!(
        (mail.to.as_slice(), mail.subject().as_str()),
        (&["frank@example.com".to_owned()][..], "Confirm your email address for Portal")
    );
    let frank = app.store().user_by_username("frank").await.unwrap().unwrap();
    assert!(!frank.email_verified);
    assert_is_redirect_to(&app.get(&path_in(&mail, "/verify/")).await, "/account#email");
    assert!(app.store().user_by_username("frank").await.unwrap().unwrap().email_verified);
}

#[rocket::async_test]
async fn the_command_line_invites_without_reading_a_password() {
    use portal_testkit::process::Launch;
    let home = tempfile::tempdir().unwrap();
    let launch = Launch::in_checkout()
        .test_config(home.path())
        .env("ROCKET_PUBLIC_URL", PUBLIC)
        .env("ROCKET_EMAIL", "{smtp_url=\"smtp://127.0.0.1:9\",from=\"portal@example.com\"}");
    let out = launch.run(&["users", "add", "gina", "--email", "gina@example.com", "--invite"], "");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said} {}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("an invitation to gina@example.com is in the outbox"), "{said}");
    let no_email = launch.run(&["users", "add", "hal", "--invite"], "");
    assert!(!no_email.status.success());
    assert!(String::from_utf8_lossy(&no_email.stderr).contains("an invitation needs an email address"));
    let store = portal::store::Store::connect(&portal_testkit::sqlite_url(home.path())).await.unwrap();
    let rows = store.outbox_recent(None, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].kind.as_str(), rows[0].recipient.as_str(), rows[0].status.as_str()),
        ("invite", "gina@example.com", "pending")
    );
}

/// Signs in through the login form as a browser described by `agent` would.
async fn sign_in_as_browser(app: &TestApp, name: &str, agent: &str) {
    let token = app.csrf_token().await;
    let answer = app
        .client
        .post("/login")
        .header(rocket::http::ContentType::Form)
        .header(rocket::http::Header::new("User-Agent", agent.to_owned()))
        .body(form_body(&[("csrf_token", &token), ("username", name), ("password", PASSWORD)]))
        .dispatch()
        .await;
    assert_is_redirect_to(&answer, "/");
}

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const SAFARI: &str =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// Waits until the outbox settles and returns the subjects of every message sent so far.
async fn subjects(app: &TestApp, sink: &Sink) -> Vec<String> {
    outbox_settled(app).await;
    sink.received().iter().map(Received::subject).collect()
}

#[rocket::async_test]
async fn security_notices_reach_the_confirmed_address_and_each_can_be_turned_off() {
    use portal::auth::factors::totp::{code_at, step_of};
    use portal::clock::Clock;
    let sink = Sink::start().await;
    let app = TestApp::spawn_with(with_mail(&sink)).await;
    user_with_email(&app, "alice", "alice@example.com").await;

    // The first sign-in ever: nothing to compare with. The same browser again: known. (The
    // test client's own requests, below, come from this browser: it sends no User-Agent.)
    app.sign_in("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    assert!(subjects(&app, &sink).await.is_empty());
    // Another browser: a notice, with the browser named.
    sign_in_as_browser(&app, "alice", SAFARI).await;
    let mail = sink.wait_for(1).await.remove(0);
    assert_eq!(mail.subject(), "New sign-in to your Portal account");
    assert!(mail.text().contains("Safari on iOS"), "{}", mail.text());
    assert_eq!(mail.to, ["alice@example.com"]);
    // Known now; and after 90 days without it, new again.
    sign_in_as_browser(&app, "alice", SAFARI).await;
    assert_eq!(subjects(&app, &sink).await.len(), 1);
    app.clock.advance(91 * 24 * 60 * 60);
    sign_in_as_browser(&app, "alice", SAFARI).await;
    assert_eq!(sink.wait_for(2).await[1].subject(), "New sign-in to your Portal account");
    app.sign_in("alice", PASSWORD).await;
    assert_eq!(sink.wait_for(3).await[2].subject(), "New sign-in to your Portal account", "90 days on");

    // An authenticator app added, then removed (within ten minutes of signing in).
    assert_is_redirect_to(&app.post_form("/account/totp", &[]).await, "/account/totp");
    let page = body(app.get("/account/totp").await).await;
    let marker = "id=\"totp-secret\">";
    let start = page.find(marker).unwrap() + marker.len();
    let secret =
        totp_rs::Secret::Encoded(page[start..start + page[start..].find("</code>").unwrap()].to_owned())
            .to_bytes()
            .unwrap();
    let code = code_at(&secret, step_of(app.clock.now())).unwrap();
    assert_eq!(app.post_form("/account/totp/confirm", &[("code", &code)]).await.status(), Status::Ok);
    let added = sink.wait_for(4).await.remove(3);
    assert_eq!(added.subject(), "A sign-in method was added to your Portal account");
    assert!(added.text().contains("An authenticator app was added"), "{}", added.text());
    assert_is_redirect_to(&app.post_form("/account/totp/remove", &[]).await, "/account");
    assert_eq!(sink.wait_for(5).await[4].subject(), "A sign-in method was removed from your Portal account");

    // The password changed.
    let new = "a different passphrase";
    let changed = app
        .post_form(
            "/account/password",
            &[("current_password", PASSWORD), ("new_password", new), ("confirm_password", new)],
        )
        .await;
    assert_is_redirect_to(&changed, "/account");
    assert_eq!(sink.wait_for(6).await[5].subject(), "Your Portal password was changed");

    // The preferences: the page shows them on; turning "password" off stops that notice only.
    let account = body(app.get("/account").await).await;
    assert!(
        account.contains(r#"id="notice-password" name="password" type="checkbox" value="on" checked"#),
        "{account}"
    );
    let saved =
        app.post_form("/account/notices", &[("new_device", "on"), ("factor", "on"), ("email", "on")]).await;
    assert_is_redirect_to(&saved, "/account#notices");
    let account = body(app.get("/account").await).await;
    assert!(
        account.contains(r#"id="notice-password" name="password" type="checkbox" value="on">"#),
        "{account}"
    );
    let again = app
        .post_form(
            "/account/password",
            &[("current_password", new), ("new_password", PASSWORD), ("confirm_password", PASSWORD)],
        )
        .await;
    assert_is_redirect_to(&again, "/account");
    assert_eq!(subjects(&app, &sink).await.len(), 6, "no notice: turned off");

    // The address changed: the old one hears of it (and the new one gets its link).
    app.post_form("/account/email", &[("email", "alice@example.org")]).await;
    let mails = sink.wait_for(8).await;
    let to_old = mails
        .iter()
        .find(|m| m.to == ["alice@example.com"] && m.subject().contains("email address"))
        .unwrap();
    assert_eq!(to_old.subject(), "The email address of your Portal account was changed");
    assert!(to_old.text().contains("was changed to alice@example.org"), "{}", to_old.text());
    assert!(mails.iter().any(|m| m.to == ["alice@example.org"] && m.subject().starts_with("Confirm")));
    // Unconfirmed, the new address gets no notices.
    sign_in_as_browser(&app, "alice", FIREFOX).await;
    assert_eq!(subjects(&app, &sink).await.len(), 8);
    let kinds: Vec<String> =
        app.store().outbox_recent(None, 20).await.unwrap().into_iter().map(|r| r.kind).collect();
    for kind in [
        "notice_new_device",
        "notice_factor_added",
        "notice_factor_removed",
        "notice_password",
        "notice_email",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

#[rocket::async_test]
async fn without_mail_no_device_is_noted() {
    let (app, _) = TestApp::spawn_admin().await;
    sign_in_as_browser(&app, "root", FIREFOX).await;
    let url = app.client.rocket().figment().extract_inner::<String>("databases.portal.url").unwrap();
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM known_devices").fetch_one(&pool).await.unwrap();
        assert_eq!(n, 0);
        pool.close().await;
    }
    assert!(!body(app.get("/account").await).await.contains("Security notices by mail"));
}
