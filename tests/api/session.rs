//! The session cookie: logout and revocation, expiry, and cookies that are not ours.

use rocket::http::{Cookie, Status};

use portal_testkit::app::*;
use portal_testkit::{session_cookie_name, PASSWORD};

const WELCOME_LOGIN: &str = "/login?next=%2Fwelcome";

#[rocket::async_test]
async fn logout_ends_the_session_and_a_replayed_cookie_no_longer_works() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let cookie = app.sign_in("alice", PASSWORD).await;
    assert_eq!(app.get_with_cookie("/welcome", cookie.clone()).await.status(), Status::Ok);

    let response = app.post_logout().await;
    assert_is_redirect_to(&response, "/");
    let removal = set_cookies(&response).into_iter().find(|c| c.name() == session_cookie_name());
    assert_eq!(removal.map(|c| c.value().to_owned()), Some(String::new()), "the cookie is cleared");

    let home = app.get("/").await.into_string().await.unwrap();
    assert!(home.contains("You were signed out."));
    assert_is_redirect_to(&app.get("/welcome").await, WELCOME_LOGIN);
    assert_is_redirect_to(&app.get_with_cookie("/welcome", cookie).await, WELCOME_LOGIN);
}

#[rocket::async_test]
async fn get_logout_shows_a_button_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;

    let page = app.get("/logout").await;
    assert_eq!(page.status(), Status::Ok);
    let body = page.into_string().await.unwrap();
    assert!(body.contains(r#"<button class="button button-primary" type="submit">Log out</button>"#));
    assert_eq!(app.get("/welcome").await.status(), Status::Ok, "still signed in");
}

#[rocket::async_test]
async fn logout_without_the_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    let response =
        app.client.post("/logout").header(rocket::http::ContentType::Form).body("").dispatch().await;
    assert_eq!(response.status(), Status::Forbidden);
    assert_eq!(app.get("/welcome").await.status(), Status::Ok, "still signed in");
}

#[rocket::async_test]
async fn tampered_truncated_and_foreign_cookies_are_treated_as_logged_out() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let good = app.sign_in("alice", PASSWORD).await;
    let value = good.value().to_owned();

    let mut flipped = value.clone().into_bytes();
    let mid = flipped.len() / 2;
    flipped[mid] = if flipped[mid] == b'A' { b'B' } else { b'A' };
    let other_app = TestApp::spawn().await;
    other_app.create_user("alice", PASSWORD).await;
    let foreign = other_app.sign_in("alice", PASSWORD).await;

    let bad_values = [
        String::from_utf8(flipped).unwrap(),
        value[..value.len() / 2].to_owned(),
        foreign.value().to_owned(),
        "not even base64 ✓".to_owned(),
        String::new(),
        r#"{"uid":1,"method":"password","sid":"x","iat":0,"seen":0,"epoch":0}"#.to_owned(),
    ];
    let fresh = TestApp::spawn().await;
    fresh.create_user("alice", PASSWORD).await;
    for bad in bad_values {
        let response =
            fresh.get_with_cookie("/welcome", Cookie::new(session_cookie_name(), bad.clone())).await;
        assert_is_redirect_to(&response, WELCOME_LOGIN);
    }
}

#[rocket::async_test]
async fn a_session_ends_after_the_idle_timeout() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;

    app.clock.advance(29 * 60);
    assert_eq!(app.get("/welcome").await.status(), Status::Ok, "29 idle minutes are fine");
    app.clock.advance(29 * 60);
    assert_eq!(app.get("/welcome").await.status(), Status::Ok, "the last request reset the idle clock");
    app.clock.advance(30 * 60);
    assert_is_redirect_to(&app.get("/welcome").await, WELCOME_LOGIN);
}

#[rocket::async_test]
async fn a_session_ends_at_the_absolute_lifetime_however_active() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;

    for _ in 0..((12 * 60) / 20 - 1) {
        app.clock.advance(20 * 60);
        assert_eq!(app.get("/welcome").await.status(), Status::Ok);
    }
    app.clock.advance(20 * 60);
    assert_is_redirect_to(&app.get("/welcome").await, WELCOME_LOGIN);
}

#[rocket::async_test]
async fn last_seen_is_rewritten_only_once_it_is_stale() {
    let app = TestApp::spawn_with(|f| f.merge(("session.cache_ttl", 0))).await;
    let user = app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    let last_seen = || async { app.store().sessions_of(user.id).await.unwrap()[0].last_seen_at };

    app.clock.advance(30);
    let fresh = app.get("/welcome").await;
    assert!(session_cookie(&fresh).is_none(), "the cookie is never re-encrypted");
    assert_eq!(last_seen().await, START, "a fresh session is not written");
    app.clock.advance(31);
    assert_eq!(app.get("/welcome").await.status(), Status::Ok);
    assert_eq!(last_seen().await, START + 61, "a stale last-seen is rewritten");
    app.clock.advance(1);
    app.get("/welcome").await;
    assert_eq!(last_seen().await, START + 61, "and then fresh again");
}

#[rocket::async_test]
async fn disabling_a_user_ends_their_live_session() {
    let app = TestApp::spawn().await;
    let user = app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    app.store().set_disabled(user.id, true, START).await.unwrap();
    assert_is_redirect_to(&app.get("/welcome").await, WELCOME_LOGIN);
}

#[rocket::async_test]
async fn changing_the_password_ends_every_session() {
    let app = TestApp::spawn().await;
    let user = app.create_user("alice", PASSWORD).await;
    let cookie = app.sign_in("alice", PASSWORD).await;
    app.store()
        .set_password(user.id, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA", START, None)
        .await
        .unwrap();
    assert_is_redirect_to(&app.get_with_cookie("/welcome", cookie).await, WELCOME_LOGIN);
}

#[rocket::async_test]
async fn logging_out_on_one_device_leaves_the_other_signed_in() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let laptop = app.sign_in("alice", PASSWORD).await;
    let phone = app.sign_in("alice", PASSWORD).await;
    assert_eq!(app.get_with_cookie("/welcome", laptop.clone()).await.status(), Status::Ok);
    app.post_logout().await; // the tracked client is the phone
    assert_is_redirect_to(&app.get_with_cookie("/welcome", phone).await, WELCOME_LOGIN);
    assert_eq!(app.get_with_cookie("/welcome", laptop).await.status(), Status::Ok, "the laptop stays in");
}

#[rocket::async_test]
async fn secure_cookies_adds_the_secure_flag_and_the_host_prefix() {
    let app = TestApp::spawn_with(|f| f.merge(("secure_cookies", true))).await;
    app.create_user("alice", PASSWORD).await;
    let cookie = app.sign_in("alice", PASSWORD).await;
    assert_eq!(cookie.name(), format!("__Host-{}", session_cookie_name()));
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(cookie.domain(), None, "__Host- cookies carry no Domain");
    assert_eq!(app.get("/welcome").await.status(), Status::Ok, "the prefixed cookie is read back");

    // The flash and CSRF cookies too: a signed-out visit to a protected page sets both.
    let stranger = TestApp::spawn_with(|f| f.merge(("secure_cookies", true))).await;
    let bounced = stranger.get("/welcome").await;
    let flash = set_cookies(&bounced).into_iter().find(|c| c.name() == "__Host-portal_flash");
    assert!(flash.is_some_and(|c| c.secure() == Some(true) && c.path() == Some("/")));
    let login = stranger.get("/login").await;
    let names: Vec<String> = set_cookies(&login).iter().map(|c| c.name().to_owned()).collect();
    assert!(names.contains(&"__Host-portal_csrf".to_owned()), "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("__Host-")), "{names:?}");
}

#[rocket::async_test]
async fn plain_http_keeps_the_bare_cookie_names() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let cookie = app.sign_in("alice", PASSWORD).await;
    assert_eq!(cookie.name(), session_cookie_name());
    assert_eq!(cookie.secure(), None);
}

#[rocket::async_test]
async fn the_session_cookie_ends_with_the_browser_unless_kept() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let cookie = app.sign_in("alice", PASSWORD).await;
    assert_eq!(cookie.max_age(), None, "a browser-session cookie");
    assert_eq!(cookie.expires_datetime(), None, "no Expires either");

    let kept =
        app.post_login_form(&[("username", "alice"), ("password", PASSWORD), ("remember", "on")]).await;
    let cookie = session_cookie(&kept).expect("a session cookie");
    assert_eq!(
        cookie.max_age(),
        Some(rocket::time::Duration::seconds(43_200)),
        "up to the absolute lifetime"
    );
    assert_eq!(cookie.expires_datetime(), None, "Max-Age alone, no Expires date beside it");

    // Activity is recorded on the server; the kept cookie is not rewritten.
    app.clock.advance(600);
    let active = app.get_with_cookie("/welcome", cookie.clone()).await;
    assert_eq!(active.status(), Status::Ok);
    assert!(session_cookie(&active).is_none());
    // The server's limits hold for a kept session too.
    app.clock.advance(1800);
    assert_eq!(app.get_with_cookie("/welcome", cookie).await.status(), Status::SeeOther, "idle limit");
}

#[rocket::async_test]
async fn a_store_that_is_down_answers_503_not_a_trip_to_login() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    app.store().close().await;
    let response = app.get("/welcome").await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
}

#[rocket::async_test]
async fn the_session_cache_never_outlives_a_write_through_the_server() {
    let app = TestApp::spawn_with(|f| f.merge(("session.cache_ttl", 3600))).await;
    let user = app.create_user("alice", PASSWORD).await;
    let cookie = app.sign_in("alice", PASSWORD).await;
    assert_eq!(app.get_with_cookie("/welcome", cookie.clone()).await.status(), Status::Ok, "now cached");
    app.store().set_disabled(user.id, true, START).await.unwrap();
    assert_is_redirect_to(&app.get_with_cookie("/welcome", cookie).await, WELCOME_LOGIN);
}
