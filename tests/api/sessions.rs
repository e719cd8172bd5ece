//! Sessions as records: seeing them, ending one, ending the others, changing the password,
//! the JSON API, the cache, and the sweep.

use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::local::asynchronous::LocalResponse;
use serde_json::Value;

use portal_testkit::app::*;
use portal_testkit::fakes::{query, FakeGithub};
use portal_testkit::PASSWORD;

const NEW_PASSWORD: &str = "a brand new passphrase";

/// The flash message the next page shows.
async fn flash(app: &TestApp) -> String {
    app.get("/account").await.into_string().await.unwrap()
}

/// `GET /api/sessions` as this device.
async fn api_sessions(app: &TestApp) -> Vec<Value> {
    let response = app.get("/api/sessions").await;
    assert_eq!(response.status(), Status::Ok);
    let body: Value = serde_json::from_str(&response.into_string().await.unwrap()).unwrap();
    body["sessions"].as_array().unwrap().clone()
}

#[rocket::async_test]
async fn two_sign_ins_are_two_sessions_and_this_device_is_marked() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let laptop = app.sign_in("alice", PASSWORD).await;
    let _phone = app.sign_in("alice", PASSWORD).await; // the tracked client is the phone

    let sessions = api_sessions(&app).await;
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    for s in &sessions {
        for key in ["id", "current", "method", "client", "ip", "created_at", "last_seen_at"] {
            assert!(s.get(key).is_some(), "{key} in {s}");
        }
        assert_eq!(s["method"], "password");
    }
    let page = app.get("/account").await.into_string().await.unwrap();
    assert_eq!(page.matches("session-row").count(), 2, "{page}");
    assert!(page.contains("This device") && page.contains("Sign out all other devices"));
    assert_eq!(app.get_with_cookie("/welcome", laptop).await.status(), Status::Ok);
}

#[rocket::async_test]
async fn signing_out_all_other_devices_keeps_this_one() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let laptop = app.sign_in("alice", PASSWORD).await;
    let tablet = app.sign_in("alice", PASSWORD).await;
    let phone = app.sign_in("alice", PASSWORD).await;

    let response = app.post_form("/account/sessions/end-others", &[]).await;
    assert_is_redirect_to(&response, "/account");
    assert!(flash(&app).await.contains("2 other devices are signed out."));
    assert_eq!(api_sessions(&app).await.len(), 1);
    // (A refused cookie is cleared in the test client's jar too: this device's is given explicitly.)
    for cookie in [laptop, tablet] {
        assert_eq!(app.get_with_cookie("/welcome", cookie).await.status(), Status::SeeOther);
    }
    assert_eq!(app.get_with_cookie("/welcome", phone).await.status(), Status::Ok);
}

#[rocket::async_test]
async fn ending_a_session_by_id_signs_that_device_out_on_its_next_request() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let laptop = app.sign_in("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    let other = api_sessions(&app).await.into_iter().find(|s| s["current"] == false).unwrap();
    let id = other["id"].as_str().unwrap().to_owned();

    let response = app.post_form(&format!("/account/sessions/{id}/end"), &[]).await;
    assert_is_redirect_to(&response, "/account");
    assert!(flash(&app).await.contains("That device is signed out."));
    let again = app.post_form(&format!("/account/sessions/{id}/end"), &[]).await;
    assert_eq!(again.status(), Status::NotFound, "an id already ended");
    assert_is_redirect_to(&app.get_with_cookie("/welcome", laptop).await, "/login?next=%2Fwelcome");
}

#[rocket::async_test]
async fn another_users_session_id_is_404_and_nothing_ends() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    app.create_user("bob", PASSWORD).await;
    let bob = app.sign_in("bob", PASSWORD).await;
    let bobs = api_sessions(&app).await[0]["id"].as_str().unwrap().to_owned();
    app.sign_in("alice", PASSWORD).await;

    for id in [bobs.as_str(), "made-up", &"x".repeat(5000)] {
        let response = app.post_form(&format!("/account/sessions/{id}/end"), &[]).await;
        assert_eq!(response.status(), Status::NotFound, "{}", &id[..id.len().min(20)]);
        let api = app.client.delete(format!("/api/sessions/{id}")).header(same_origin());
        let api = api.dispatch().await;
        assert_eq!(api.status(), Status::NotFound);
        assert_eq!(api.content_type(), Some(ContentType::JSON));
    }
    assert_eq!(app.get_with_cookie("/welcome", bob).await.status(), Status::Ok, "bob is still in");
}

#[rocket::async_test]
async fn session_posts_need_the_csrf_token() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let laptop = app.sign_in("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    for uri in ["/account/sessions/end-others", "/logout/everywhere", "/account/password"] {
        let response = app.client.post(uri).header(ContentType::Form).body("").dispatch().await;
        assert_eq!(response.status(), Status::Forbidden, "{uri}");
    }
    assert_eq!(app.get_with_cookie("/welcome", laptop).await.status(), Status::Ok);
}

#[rocket::async_test]
async fn signing_out_everywhere_ends_every_session() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let laptop = app.sign_in("alice", PASSWORD).await;
    let phone = app.sign_in("alice", PASSWORD).await;
    let page = app.get("/logout").await.into_string().await.unwrap();
    assert!(page.contains("Sign out everywhere") && page.contains("this device"), "{page}");

    let response = app.post_form("/logout/everywhere", &[]).await;
    assert_is_redirect_to(&response, "/");
    for cookie in [laptop, phone] {
        assert_eq!(app.get_with_cookie("/welcome", cookie).await.status(), Status::SeeOther);
    }
}

async fn change_password<'c>(app: &'c TestApp, current: &str, new: &str) -> LocalResponse<'c> {
    app.post_form(
        "/account/password",
        &[("current_password", current), ("new_password", new), ("confirm_password", new)],
    )
    .await
}

#[rocket::async_test]
async fn a_password_changed_in_one_normal_form_signs_in_typed_in_the_other() {
    use crate::login::{NFC_PASSWORD, NFD_PASSWORD};
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    assert_is_redirect_to(&change_password(&app, PASSWORD, NFD_PASSWORD).await, "/account");
    assert!(flash(&app).await.contains("Your password is changed."));
    assert_is_redirect_to(&app.post_login("alice", NFC_PASSWORD).await, "/");
    // The current password typed in the other form is right, and the same one is no change.
    assert_is_redirect_to(&change_password(&app, NFD_PASSWORD, NFC_PASSWORD).await, "/account");
    let page = flash(&app).await;
    assert!(page.contains("Choose a password different from the current one."), "{page}");
}

#[rocket::async_test]
async fn a_password_change_ends_the_other_sessions_and_renews_this_one() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let laptop = app.sign_in("alice", PASSWORD).await;
    let phone = app.sign_in("alice", PASSWORD).await;

    let response = change_password(&app, PASSWORD, NEW_PASSWORD).await;
    assert_is_redirect_to(&response, "/account");
    let renewed = session_cookie(&response).expect("this device gets a new session");
    assert_ne!(renewed.value(), phone.value());
    assert!(flash(&app).await.contains("Your password is changed."));

    for old in [laptop, phone] {
        assert_eq!(
            app.get_with_cookie("/welcome", old).await.status(),
            Status::SeeOther,
            "old cookies are dead"
        );
    }
    assert_eq!(app.get_with_cookie("/welcome", renewed).await.status(), Status::Ok);
    assert_eq!(app.post_login("alice", PASSWORD).await.status(), Status::Ok, "the old password fails");
    assert_eq!(app.post_login("alice", NEW_PASSWORD).await.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn a_wrong_current_password_is_refused_and_counted_like_a_sign_in() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    for _ in 0..5 {
        let response = change_password(&app, "not my password", NEW_PASSWORD).await;
        assert_is_redirect_to(&response, "/account");
        assert!(flash(&app).await.contains("Your current password is not right."));
    }
    let before = app.verify_calls();
    let throttled = change_password(&app, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(throttled.status(), Status::TooManyRequests, "five wrong guesses use up the budget");
    assert_eq!(app.verify_calls(), before, "no hash ran");
    assert_eq!(app.get("/welcome").await.status(), Status::Ok, "still signed in");
}

#[rocket::async_test]
async fn weak_mismatched_unchanged_or_missing_new_passwords_are_refused() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    let huge = "p".repeat(1024 * 1024);
    let cases: [(&[(&str, &str)], &str); 6] = [
        (
            &[
                ("current_password", PASSWORD),
                ("new_password", "password1"),
                ("confirm_password", "password1"),
            ],
            "most common",
        ),
        (
            &[("current_password", PASSWORD), ("new_password", "short"), ("confirm_password", "short")],
            "at least 8",
        ),
        (
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", "other thing"),
            ],
            "differ",
        ),
        (
            &[("current_password", PASSWORD), ("new_password", PASSWORD), ("confirm_password", PASSWORD)],
            "different from the current",
        ),
        (&[("current_password", PASSWORD)], "Enter your current password"),
        (&[("new_password", NEW_PASSWORD)], "Enter your current password"),
    ];
    for (fields, expected) in cases {
        let response = app.post_form("/account/password", fields).await;
        assert_is_redirect_to(&response, "/account");
        let page = flash(&app).await;
        assert!(page.contains(expected), "{expected}: {page}");
    }
    let response =
        app.post_form("/account/password", &[("current_password", PASSWORD), ("new_password", &huge)]).await;
    assert_eq!(response.status(), Status::PayloadTooLarge, "a 1 MiB field");
    assert_eq!(app.post_login("alice", PASSWORD).await.status(), Status::SeeOther, "unchanged");
}

/// Signs in through the fake GitHub as a new, password-less user.
async fn github_sign_in(app: &TestApp, github: &FakeGithub) {
    github.token_ok().await;
    let start = app.get("/login/github").await;
    let authorize = location(&start).unwrap().to_owned();
    let state = query(&authorize)["state"].clone();
    let callback = app.get(&format!("/auth/github?code=the-code&state={state}")).await;
    assert_is_redirect_to(&callback, "/welcome");
}

#[rocket::async_test]
async fn a_provider_user_can_set_a_password_within_ten_minutes_of_signing_in_only() {
    let github = FakeGithub::start().await;
    let app = TestApp::spawn_with(|f| github.figment(f)).await;
    github_sign_in(&app, &github).await;
    let page = app.get("/account").await.into_string().await.unwrap();
    assert!(page.contains("Set a password") && !page.contains("current_password"), "{page}");

    app.clock.advance(11 * 60);
    app.get("/welcome").await; // still signed in (active), but the sign-in is not fresh
    let late = app
        .post_form("/account/password", &[("new_password", NEW_PASSWORD), ("confirm_password", NEW_PASSWORD)])
        .await;
    assert_is_redirect_to(&late, "/account");
    assert!(flash(&app).await.contains("sign in again with your provider"));

    github_sign_in(&app, &github).await;
    let set = app
        .post_form("/account/password", &[("new_password", NEW_PASSWORD), ("confirm_password", NEW_PASSWORD)])
        .await;
    assert_is_redirect_to(&set, "/account");
    assert!(flash(&app).await.contains("Your password is changed."));
    assert_eq!(
        app.post_login("octocat", NEW_PASSWORD).await.status(),
        Status::SeeOther,
        "now both ways work"
    );
    github_sign_in(&app, &github).await;
}

#[rocket::async_test]
async fn a_cookie_whose_record_is_gone_is_signed_out() {
    let app = TestApp::spawn_with(|f| f.merge(("session.retention", 0))).await;
    app.create_user("alice", PASSWORD).await;
    let cookie = app.sign_in("alice", PASSWORD).await;
    app.post_form("/logout", &[]).await;
    app.clock.advance(1);
    let (deleted, _) = app.auth().sweeper().sweep().await.unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(app.store().count_sessions().await.unwrap(), 0);
    assert_is_redirect_to(&app.get_with_cookie("/welcome", cookie).await, "/login?next=%2Fwelcome");
}

#[rocket::async_test]
async fn the_cache_never_lets_an_ended_session_through() {
    let app = TestApp::spawn_with(|f| f.merge(("session.cache_ttl", 3600))).await;
    app.create_user("alice", PASSWORD).await;
    let laptop = app.sign_in("alice", PASSWORD).await;
    assert_eq!(app.get_with_cookie("/welcome", laptop.clone()).await.status(), Status::Ok, "now cached");
    app.sign_in("alice", PASSWORD).await;
    app.post_form("/account/sessions/end-others", &[]).await;
    assert_eq!(app.get_with_cookie("/welcome", laptop).await.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn the_store_keeps_a_hash_of_the_secret_not_the_secret() {
    let (dir, db) = temp_db();
    let file = dir.path().join("portal.sqlite");
    let app = TestApp::spawn_on(dir, db.clone(), |f| f).await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    let token: Value = {
        let jar = app.client.cookies();
        let cookie = jar.get_private(portal_testkit::session_cookie_name()).unwrap();
        serde_json::from_str(cookie.value()).unwrap()
    };
    let secret = token["secret"].as_str().unwrap();
    assert!(secret.len() >= 43, "256 bits");
    let stored: Vec<(String, String)> = if on_postgres() {
        let pool = sqlx::PgPool::connect(&db).await.unwrap();
        sqlx::query_as("SELECT id, secret_hash FROM sessions").fetch_all(&pool).await.unwrap()
    } else {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display())).await.unwrap();
        sqlx::query_as("SELECT id, secret_hash FROM sessions").fetch_all(&pool).await.unwrap()
    };
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, token["id"].as_str().unwrap());
    assert_ne!(stored[0].1, secret);
    // Replaying the id with a guessed secret is refused.
    let forged = serde_json::json!({ "id": stored[0].0, "secret": stored[0].1 }).to_string();
    let forged =
        app.client.get("/welcome").private_cookie(Cookie::new(portal_testkit::session_cookie_name(), forged));
    assert_eq!(forged.dispatch().await.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn a_million_expired_sessions_are_swept_in_bounded_batches_while_requests_go_on() {
    let (dir, db) = temp_db();
    let file = dir.path().join("portal.sqlite");
    let app = TestApp::spawn_on(dir, db.clone(), |f| f.merge(("session.retention", 60))).await;
    let user = app.create_user("alice", PASSWORD).await;
    let live = app.sign_in("alice", PASSWORD).await;
    // One statement writes a million sessions that ended long ago.
    if on_postgres() {
        let pool = sqlx::PgPool::connect(&db).await.unwrap();
        sqlx::query(
            "INSERT INTO sessions (id, secret_hash, user_id, method, created_at, last_seen_at, ended_at, client)
             SELECT 'old-' || i, 'h', $1, 'password', $2, $2, $2, 'Old browser' FROM generate_series(1, 1000000) i",
        )
        .bind(user.id)
        .bind(START - 100_000)
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display())).await.unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
             INSERT INTO sessions (id, secret_hash, user_id, method, created_at, last_seen_at, ended_at, client)
             SELECT 'old-' || i, 'h', $1, 'password', $2, $2, $2, 'Old browser' FROM n",
        )
        .bind(user.id)
        .bind(START - 100_000)
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    assert_eq!(app.store().count_sessions().await.unwrap(), 1_000_001);

    // The sweep and signed-in requests take turns on one task; each request also counts the
    // rows left, so the test sees requests answered while the sweep was part-way through.
    let sweeper = app.auth().sweeper();
    let done = std::cell::Cell::new(false);
    let sweep = async {
        let swept = sweeper.sweep().await;
        done.set(true);
        swept
    };
    let requests = async {
        let (mut answered, mut midway) = (0, 0);
        while !done.get() && answered < 10_000 {
            assert_eq!(app.get_with_cookie("/welcome", live.clone()).await.status(), Status::Ok);
            answered += 1;
            let left = app.store().count_sessions().await.unwrap();
            if !done.get() && (2..1_000_001).contains(&left) {
                midway += 1;
            }
        }
        midway
    };
    let (swept, midway) = tokio::join!(sweep, requests);
    let (deleted, batches) = swept.unwrap();
    assert_eq!(deleted, 1_000_000);
    assert!(batches > 1_000, "batches of at most 1000 rows: {batches}");
    assert!(midway > 0, "requests were answered while the sweep was part-way through");
    assert_eq!(app.store().count_sessions().await.unwrap(), 1, "the live session stays");
    assert_eq!(app.get_with_cookie("/welcome", live).await.status(), Status::Ok);
}

#[rocket::async_test]
async fn api_me_describes_the_signed_in_person_and_anonymous_callers_get_401_json() {
    let app = TestApp::spawn().await;
    let anonymous = app.get("/api/me").await;
    assert_eq!(anonymous.status(), Status::Unauthorized, "not a redirect");
    assert_eq!(anonymous.content_type(), Some(ContentType::JSON));
    let body: Value = serde_json::from_str(&anonymous.into_string().await.unwrap()).unwrap();
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(app.get("/api/sessions").await.status(), Status::Unauthorized);

    let user = app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    let me: Value = serde_json::from_str(&app.get("/api/me").await.into_string().await.unwrap()).unwrap();
    assert_eq!(me["id"], user.id);
    assert_eq!(me["username"], "alice");
    assert_eq!(me["email"], Value::Null);
    assert_eq!(me["admin"], false);
    assert_eq!(me["method"], "password");
    assert_eq!(me["providers"], serde_json::json!([]));

    let missing = app.get("/api/no-such-thing").await;
    assert_eq!(missing.status(), Status::NotFound);
    assert_eq!(missing.content_type(), Some(ContentType::JSON));
}

#[rocket::async_test]
async fn api_delete_ends_an_own_session_and_needs_a_same_origin_browser() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let laptop = app.sign_in("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    let other = api_sessions(&app).await.into_iter().find(|s| s["current"] == false).unwrap();
    let uri = format!("/api/sessions/{}", other["id"].as_str().unwrap());

    let bare = app.client.delete(uri.clone()).dispatch().await;
    assert_eq!(bare.status(), Status::Forbidden, "neither Origin nor Sec-Fetch-Site");
    assert_eq!(bare.content_type(), Some(ContentType::JSON));
    let cross =
        app.client.delete(uri.clone()).header(Header::new("Sec-Fetch-Site", "cross-site")).dispatch().await;
    assert_eq!(cross.status(), Status::Forbidden);
    let foreign =
        app.client.delete(uri.clone()).header(Header::new("Origin", "http://evil.example")).dispatch().await;
    assert_eq!(foreign.status(), Status::Forbidden);
    assert_eq!(api_sessions(&app).await.len(), 2, "nothing ended yet");

    let request = app.client.delete(uri).header(Header::new("Host", "localhost"));
    let done = request.header(Header::new("Origin", "http://localhost")).dispatch().await;
    assert_eq!(done.status(), Status::NoContent);
    assert_eq!(api_sessions(&app).await.len(), 1);
    assert_eq!(app.get_with_cookie("/welcome", laptop).await.status(), Status::SeeOther);
}
