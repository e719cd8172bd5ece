//! The audit log: what each action records, what it never records, the account page's
//! recent sign-ins, and retention.

use rocket::http::{ContentType, Status};
use serde_json::Value;

use portal_testkit::app::*;
use portal_testkit::fakes::{query, FakeGithub, CLIENT_SECRET, GITHUB_TOKEN};
use portal_testkit::PASSWORD;

/// Every event, oldest first, as (kind, actor, subject, detail).
async fn events(app: &TestApp) -> Vec<(String, String, Option<i64>, Value)> {
    let mut all: Vec<_> = app
        .store()
        .recent_events(10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.actor, e.subject_user_id, serde_json::from_str(&e.detail).unwrap()))
        .collect();
    all.reverse();
    all
}

fn kinds(all: &[(String, String, Option<i64>, Value)]) -> Vec<&str> {
    all.iter().map(|(kind, ..)| kind.as_str()).collect()
}

#[rocket::async_test]
async fn password_sign_ins_are_recorded_with_their_outcome() {
    let app = TestApp::spawn_with(|f| f.merge(("throttle.account_ip_failures", 2))).await;
    let alice = app.create_user("alice", PASSWORD).await;
    app.post_login("alice", "wrong one").await;
    let long_name = format!("spray-{}", "x".repeat(200));
    app.post_login(&long_name, "guess").await;
    app.sign_in("alice", PASSWORD).await;
    app.post_login("alice", "wrong").await;
    app.post_login("alice", "wrong").await;
    for _ in 0..3 {
        assert_eq!(app.post_login("alice", "wrong").await.status(), Status::TooManyRequests);
    }

    // Three refusals, one event: a flood of refused guesses writes nothing more.
    let all = events(&app).await;
    assert_eq!(
        kinds(&all),
        [
            "sign_in_failed",
            "sign_in_failed",
            "sign_in_succeeded",
            "sign_in_failed",
            "sign_in_failed",
            "sign_in_throttled"
        ]
    );
    let (_, actor, subject, detail) = &all[0];
    assert_eq!((actor.as_str(), *subject), ("anonymous", Some(alice.id)), "a known name is the subject");
    assert_eq!(detail["reason"], "invalid-credentials");
    assert!(detail.get("username").is_none(), "nothing more about a known account");
    let (_, _, subject, detail) = &all[1];
    assert_eq!(*subject, None);
    assert_eq!(detail["reason"], "unknown-user");
    let typed = detail["username"].as_str().unwrap();
    assert!(
        typed.starts_with("spray-x") && typed.chars().count() == 64,
        "the name as typed, capped: {typed}"
    );
    let (_, actor, subject, detail) = &all[2];
    assert_eq!((actor.as_str(), *subject), (alice.id.to_string().as_str(), Some(alice.id)));
    assert_eq!(detail["method"], "password");
}

#[rocket::async_test]
async fn session_and_password_actions_are_recorded() {
    let app = TestApp::spawn().await;
    let alice = app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    let token = app.csrf_token().await;
    let post = |uri: &'static str, fields: Vec<(&'static str, String)>| {
        let mut all = vec![("csrf_token", token.clone())];
        all.extend(fields);
        let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
        app.client.post(uri).header(ContentType::Form).body(form_body(&pairs)).dispatch()
    };
    post("/account/sessions/end-others", vec![]).await;
    let new = "another long passphrase".to_owned();
    let fields = vec![
        ("current_password", PASSWORD.to_owned()),
        ("new_password", new.clone()),
        ("confirm_password", new),
    ];
    post("/account/password", fields).await;
    app.post_logout().await;

    let all = events(&app).await;
    assert_eq!(
        kinds(&all),
        [
            "sign_in_succeeded",
            "sign_in_succeeded",
            "session_ended",
            "password_changed",
            "sign_in_succeeded",
            "sign_out"
        ]
    );
    assert!(all
        .iter()
        .all(|(_, actor, subject, _)| actor == &alice.id.to_string() && *subject == Some(alice.id)));
    assert_eq!(all[2].3["sessions"], 1);
}

#[rocket::async_test]
async fn nothing_secret_reaches_the_audit_log() {
    let github = FakeGithub::start().await;
    github.token_ok().await;
    let app = TestApp::spawn_with(|f| github.figment(f)).await;
    app.create_user("alice", PASSWORD).await;
    let wrong = "hunter2-is-not-it";
    app.post_login("alice", wrong).await;
    let cookie = app.sign_in("alice", PASSWORD).await;
    let start = app.get("/login/github").await;
    let state = query(location(&start).unwrap())["state"].clone();
    let code = "SECRET-CODE-0123456789";
    app.get(&format!("/auth/github?code={code}&state={state}")).await;
    let csrf = app.csrf_token().await;

    let pool = app.store().recent_events(10_000).await.unwrap();
    let dump = serde_json::to_string(&pool).unwrap();
    assert!(dump.contains("sign_in_succeeded") && dump.contains("github"), "{dump}");
    for secret in [wrong, PASSWORD, code, &state, GITHUB_TOKEN, CLIENT_SECRET, cookie.value(), &csrf] {
        assert!(!dump.contains(secret), "the audit log contains {secret:?}: {dump}");
    }
}

#[rocket::async_test]
async fn the_account_page_shows_recent_sign_ins() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    app.post_login("alice", "not it").await;
    app.sign_in("alice", PASSWORD).await;
    let page = app.get("/account").await.into_string().await.unwrap();
    assert!(page.contains("Recent sign-ins") && page.contains("Was this you?"), "{page}");
    let recent = &page[page.find("Recent sign-ins").unwrap()..];
    let succeeded = recent.find("sign-in succeeded").unwrap();
    let failed = recent.find("sign-in failed").unwrap();
    assert!(succeeded < failed, "newest first");
}

#[rocket::async_test]
async fn events_older_than_the_retention_are_swept() {
    let app = TestApp::spawn_with(|f| f.merge(("audit.retention_days", 1))).await;
    app.create_user("alice", PASSWORD).await;
    app.post_login("alice", "not it").await;
    app.clock.advance(2 * 24 * 60 * 60);
    app.post_login("alice", "still not").await;
    app.auth().sweeper().sweep().await.unwrap();
    assert_eq!(events(&app).await.len(), 1, "only the recent event is kept");
}

#[rocket::async_test]
async fn the_command_line_records_what_it_did_as_cli() {
    use portal_testkit::process::Launch;
    let (dir, db) = temp_db();
    let app = TestApp::spawn_on(dir, db.clone(), |f| f).await;
    let cli = |args: &[&str], stdin: &str| Launch::in_checkout().database(&db).run(args, stdin);
    assert!(cli(&["users", "add", "erin"], &format!("{PASSWORD}\n")).status.success());
    assert!(cli(&["users", "passwd", "erin"], "yet another passphrase\n").status.success());
    assert!(cli(&["users", "disable", "erin"], "").status.success());

    let all = events(&app).await;
    assert_eq!(kinds(&all), ["user_created", "password_changed", "user_disabled"]);
    assert!(all.iter().all(|(_, actor, subject, _)| actor == "cli" && subject.is_some()), "{all:?}");
}
