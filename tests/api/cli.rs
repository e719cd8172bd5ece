//! The `portal users …` subcommands, run as the real binary against a temporary store.

use std::process::Output;

use rocket::http::Status;

use crate::common::process::Launch;
use crate::common::PASSWORD;
use crate::helpers::*;

fn portal(db_url: &str, args: &[&str], stdin: &str) -> Output {
    Launch::in_checkout().database(db_url).run(args, stdin)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[rocket::async_test]
async fn a_user_added_with_the_cli_can_sign_in() {
    let (dir, db) = temp_db();
    let out = portal(
        &db,
        &["users", "add", "carol", "--email", "carol@example.test", "--admin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("added user carol"));

    let listed = portal(&db, &["users", "list"], "");
    let listing = text(&listed.stdout);
    assert!(
        listing.contains("carol") && listing.contains("carol@example.test") && listing.contains("admin"),
        "{listing}"
    );
    assert!(!listing.contains(PASSWORD));

    let app = TestApp::spawn_on(dir, db, |f| f).await;
    let response = app.post_login("carol", PASSWORD).await;
    assert_is_redirect_to(&response, "/");
}

#[rocket::async_test]
async fn the_cli_keeps_the_password_exactly_as_typed() {
    let (dir, db) = temp_db();
    let padded = "  spaces at both ends  ";
    let out = portal(&db, &["users", "add", "dan"], &format!("{padded}\r\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let app = TestApp::spawn_on(dir, db, |f| f).await;
    assert_eq!(app.post_login("dan", padded.trim()).await.status(), Status::Ok, "trimmed is wrong");
    assert_is_redirect_to(&app.post_login("dan", padded).await, "/");
}

#[rocket::async_test]
async fn the_cli_applies_the_password_policy() {
    let (_dir, db) = temp_db();
    for weak in ["short", "password123", "erin-the-user"] {
        let out = portal(&db, &["users", "add", "erin-the-user"], &format!("{weak}\n"));
        assert!(!out.status.success(), "{weak} was accepted");
        assert!(!text(&out.stderr).contains(weak) || weak == "erin-the-user", "the password is not echoed");
    }
    let listed = text(&portal(&db, &["users", "list"], "").stdout);
    assert!(!listed.contains("erin"), "{listed}");
}

#[rocket::async_test]
async fn a_taken_name_is_refused_whatever_its_case() {
    let (_dir, db) = temp_db();
    assert!(portal(&db, &["users", "add", "frank"], &format!("{PASSWORD}\n")).status.success());
    let out = portal(&db, &["users", "add", "FRANK"], &format!("{PASSWORD}\n"));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("taken"), "{}", text(&out.stderr));
}

#[rocket::async_test]
async fn passwd_and_disable_end_live_sessions() {
    let (dir, db) = temp_db();
    assert!(portal(&db, &["users", "add", "gina"], &format!("{PASSWORD}\n")).status.success());
    let app = TestApp::spawn_on(dir, db.clone(), |f| f).await;
    let cookie = app.sign_in("gina", PASSWORD).await;

    let new_password = "a different long passphrase";
    let out = portal(&db, &["users", "passwd", "gina"], &format!("{new_password}\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_is_redirect_to(&app.get_with_cookie("/welcome", cookie).await, "/login?next=%2Fwelcome");
    assert_eq!(app.post_login("gina", PASSWORD).await.status(), Status::Ok, "the old password fails");
    let cookie = app.sign_in("gina", new_password).await;
    assert_eq!(app.get("/welcome").await.status(), Status::Ok);

    let out = portal(&db, &["users", "disable", "gina"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Another process wrote: the server sees it once its session cache entry is stale.
    assert_eq!(app.get("/welcome").await.status(), Status::Ok, "within session.cache_ttl");
    app.clock.advance(2);
    assert_is_redirect_to(&app.get_with_cookie("/welcome", cookie).await, "/login?next=%2Fwelcome");
    assert_eq!(app.post_login("gina", new_password).await.status(), Status::Forbidden);
}

#[rocket::async_test]
async fn unknown_users_get_a_clear_cli_error() {
    let (_dir, db) = temp_db();
    let out = portal(&db, &["users", "disable", "nobody"], "");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no user named \"nobody\""));
}
