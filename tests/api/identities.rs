//! Usernames and emails go out in headers and pages: one that could pass for another (an
//! invisible or bidirectional character) or break a header (a separator) is refused wherever
//! it comes in (the console, `/api/admin`, the command line), and a provider's address that
//! fails the check is not kept, without failing the sign-in.

use rocket::http::{ContentType, Header, Status};
use serde_json::Value;

use portal_testkit::app::*;
use portal_testkit::fakes::{FakeGithub, GITHUB_LOGIN};
use portal_testkit::process::Launch;
use portal_testkit::PASSWORD;

const BAD_USERNAMES: &[&str] = &[
    "bo\u{200b}ss", // zero-width space: looks like "boss"
    "bo\u{202e}ss", // right-to-left override
    "bo\u{200d}ss", // zero-width joiner
    "\u{feff}boss", // BOM
    "bo\u{ad}ss",   // soft hyphen
    "boss,admin",   // a list in Remote-User
    "boss;x",       // a parameter
    "bo\"ss",       // a quoted string's end
    "<boss>",       // an address's brackets
    "bo\\ss",       // an escape
];

const BAD_EMAILS: &[&str] = &[
    "a,b@example.com",
    "a;b@example.com",
    "\"a\"@example.com",
    "<a@example.com>",
    "a(b)@example.com",
    "a\u{200b}@example.com",
];

async fn api_create(app: &TestApp, username: &str, email: Option<&str>) -> (Status, Value) {
    let body = serde_json::json!({ "username": username, "email": email });
    let response = app
        .client
        .post("/api/admin/users")
        .header(ContentType::JSON)
        .header(Header::new("Sec-Fetch-Site", "same-origin"))
        .body(body.to_string())
        .dispatch()
        .await;
    let status = response.status();
    (status, serde_json::from_str(&response.into_string().await.unwrap()).unwrap())
}

async fn console_create(app: &TestApp, username: &str, email: &str) -> (Status, String) {
    let token = app.csrf_token().await;
    let fields = [("csrf_token", token.as_str()), ("username", username), ("email", email)];
    let response =
        app.client.post("/admin/users").header(ContentType::Form).body(form_body(&fields)).dispatch().await;
    (response.status(), unescape_html(&response.into_string().await.unwrap()))
}

#[rocket::async_test]
async fn invisible_characters_and_separators_are_refused_in_new_usernames_by_the_api_and_the_console() {
    let app = TestApp::spawn_admin().await.0;
    let users = app.store().count_users().await.unwrap();
    for name in BAD_USERNAMES {
        let (status, body) = api_create(&app, name, None).await;
        assert_eq!(status, Status::UnprocessableEntity, "{name:?}: {body}");
        assert!(body["error"].as_str().unwrap().starts_with("a username cannot contain"), "{body}");
        let (status, page) = console_create(&app, name, "").await;
        assert_eq!(status, Status::UnprocessableEntity, "{name:?}");
        assert!(page.contains("A username cannot contain"), "{page}");
    }
    assert_eq!(app.store().count_users().await.unwrap(), users, "nobody was created");
    assert_eq!(api_create(&app, "Zoë", None).await.0, Status::Created, "letters of any script are fine");
    assert_eq!(console_create(&app, "o'brien", "").await.0, Status::Created);
}

#[rocket::async_test]
async fn emails_that_would_break_a_header_are_refused_by_the_api_and_the_console() {
    let app = TestApp::spawn_admin().await.0;
    let users = app.store().count_users().await.unwrap();
    for (n, email) in BAD_EMAILS.iter().enumerate() {
        let name = format!("user{n}");
        let (status, body) = api_create(&app, &name, Some(email)).await;
        assert_eq!(status, Status::UnprocessableEntity, "{email:?}: {body}");
        let (status, page) = console_create(&app, &name, email).await;
        assert_eq!(status, Status::UnprocessableEntity, "{email:?}");
        assert!(page.contains("That is not an email address"), "{page}");
    }
    assert_eq!(app.store().count_users().await.unwrap(), users, "nobody was created");
    assert_eq!(api_create(&app, "zoe", Some("Zoë@exämple.org")).await.0, Status::Created);
}

#[rocket::async_test]
async fn the_cli_refuses_the_same_usernames_and_emails() {
    let (dir, db) = temp_db();
    let launch = Launch::in_checkout().database(&db);
    for name in ["bo\u{200b}ss", "boss,admin"] {
        let out = launch.run(&["users", "add", name], &format!("{PASSWORD}\n"));
        assert!(!out.status.success(), "{name:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("a username cannot contain"), "{out:?}");
    }
    let out = launch.run(&["users", "add", "boss", "--email", "a,b@example.com"], &format!("{PASSWORD}\n"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an email address"), "{out:?}");
    let app = TestApp::spawn_on(dir, db, |f| f).await;
    assert!(app.store().user_by_username("boss").await.unwrap().is_none());
}

#[rocket::async_test]
async fn a_provider_email_that_fails_the_check_is_not_kept_and_the_sign_in_goes_on() {
    // A fresh fake whose only user has such an address (primary and verified).
    let github = FakeGithub { server: wiremock::MockServer::start().await, api_prefix: "" };
    github.serve_user(4242, GITHUB_LOGIN, &[("x,y@example.com", true, true)]).await;
    github.token_ok().await;
    let app = TestApp::spawn_with(|f| github.figment(f)).await;
    let start = app.get("/login/github").await;
    let state = portal_testkit::fakes::query(location(&start).unwrap())["state"].clone();
    let response = app.get(&format!("/auth/github?code=c&state={state}")).await;
    assert_is_redirect_to(&response, "/welcome");
    let user = app.store().user_by_username(GITHUB_LOGIN).await.unwrap().expect("a user was made");
    assert_eq!(user.email, None, "the address is not kept");
    let identities = app.store().identities(user.id).await.unwrap();
    assert_eq!(identities.len(), 1);
    assert!(format!("{identities:?}").find("x,y@").is_none(), "{identities:?}");
}

#[rocket::async_test]
async fn usernames_made_under_the_older_rule_still_sign_in() {
    let (dir, db) = temp_db();
    let app = TestApp::spawn_on(dir, db.clone(), |f| f).await;
    let user = app.create_user("legacy", PASSWORD).await;
    // Renamed in SQL to what the older rule let through, as an old store may hold it.
    let rename = "UPDATE users SET username = 'Leg,acy', username_key = 'leg,acy' WHERE id = $1";
    execute_on_store(&db, rename, user.id).await;
    assert_is_redirect_to(&app.post_login("leg,acy", PASSWORD).await, "/");
}

#[rocket::async_test]
async fn non_ascii_identities_go_out_in_the_forward_auth_headers_as_utf8_bytes() {
    let app = TestApp::spawn_with(|f| {
        f.merge(("public_url", "https://auth.example.com"))
            .merge(("forward_auth", serde_json::json!({ "allowed_domains": ["app.example.com"] })))
    })
    .await;
    let hash = app.auth().hasher().hash(PASSWORD.to_owned()).await.unwrap();
    let zoe = portal::store::NewUser {
        username: "Zoë",
        email: Some("zoë@exämple.org"),
        password_hash: Some(&hash),
        is_admin: false,
    };
    app.store().create_user(zoe, START).await.unwrap();
    app.sign_in("zoë", PASSWORD).await;
    let response = app
        .client
        .get("/authz/auth-request")
        .header(Header::new("X-Original-URL", "https://app.example.com/"))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.headers().get_one("Remote-User").map(str::as_bytes), Some("Zoë".as_bytes()));
    assert_eq!(response.headers().get_one("Remote-Email"), Some("zoë@exämple.org"));
}
