//! The `portal users …` subcommands, run as the real binary against a temporary store.

use std::process::Output;

use rocket::http::Status;

use portal_testkit::app::*;
use portal_testkit::process::Launch;
use portal_testkit::PASSWORD;

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
async fn a_password_typed_decomposed_on_the_cli_signs_in_typed_composed() {
    use crate::login::{NFC_PASSWORD, NFD_PASSWORD};
    let (dir, db) = temp_db();
    let out = portal(&db, &["users", "add", "emil"], &format!("{NFD_PASSWORD}\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let app = TestApp::spawn_on(dir, db, |f| f).await;
    assert_is_redirect_to(&app.post_login("emil", NFC_PASSWORD).await, "/");
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
    if on_postgres() {
        // The command line announced it (NOTIFY): the server's cache forgot it at once.
        // (Delivered to this process's listener within moments; it runs when the test waits.)
        let deadline = std::time::Instant::now() + portal_testkit::PATIENCE;
        while app.get("/welcome").await.status() != Status::SeeOther {
            assert!(std::time::Instant::now() < deadline, "the announcement never arrived");
            tokio::time::sleep(portal_testkit::POLL).await;
        }
    } else {
        // Another process wrote: the server sees it once its session cache entry is stale.
        assert_eq!(app.get("/welcome").await.status(), Status::Ok, "within session.cache_ttl");
        app.clock.advance(2);
    }
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

#[rocket::async_test]
async fn the_admin_commands_act_through_the_same_rules_and_record_as_cli() {
    let (dir, db) = temp_db();
    let cli = |args: &[&str]| portal(&db, args, "");
    assert!(portal(&db, &["users", "add", "hana", "--admin"], &format!("{PASSWORD}\n")).status.success());
    assert!(portal(&db, &["users", "add", "ivan"], &format!("{PASSWORD}\n")).status.success());
    // The command line keeps the wall clock's time: so does the server here.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let app = TestApp::spawn_at(dir, db.clone(), now, |f| f).await;
    let ivan_cookie = app.sign_in("ivan", PASSWORD).await;
    app.post_login("ivan", "a wrong password").await;

    // sessions: listed, then ended.
    let out = cli(&["users", "sessions", "ivan"]);
    let listed = text(&out.stdout);
    assert!(out.status.success() && listed.starts_with("1 live session(s) of ivan"), "{listed}");
    assert!(listed.contains("password") && listed.contains(&portal::when::rfc3339(now)[..10]), "{listed}");
    let out = cli(&["users", "sessions", "ivan", "--end-all"]);
    assert!(text(&out.stdout).contains("ended 1 session(s) of ivan"), "{}", text(&out.stderr));
    app.clock.advance(2);
    assert_is_redirect_to(&app.get_with_cookie("/welcome", ivan_cookie).await, "/login?next=%2Fwelcome");

    // reset: a line holding the link, absolute when public_url is known.
    let out = Launch::in_checkout()
        .database(&db)
        .env("ROCKET_PUBLIC_URL", "https://portal.example")
        .run(&["users", "reset", "ivan"], "");
    let printed = text(&out.stdout);
    let line = printed.lines().find(|l| l.contains("/reset/")).expect("a line with the link");
    assert!(line.starts_with("https://portal.example/reset/") && line.len() == 29 + 43, "{printed}");
    let relative = text(&cli(&["users", "reset", "ivan"]).stdout);
    let link =
        relative.lines().find(|l| l.starts_with("/reset/")).expect("a path without public_url").to_owned();
    assert_eq!(app.get(&line["https://portal.example".len()..]).await.status(), Status::NotFound, "replaced");
    assert_eq!(app.get(&link).await.status(), Status::Ok);

    // admin --on/--off, never the last one; delete needs --yes off a terminal; enable.
    assert!(!cli(&["users", "admin", "ivan"]).status.success(), "--on or --off is required");
    let out = cli(&["users", "admin", "hana", "--off"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("that would leave no enabled administrator"), "{}", text(&out.stderr));
    assert!(cli(&["users", "admin", "ivan", "--on"]).status.success());
    assert!(cli(&["users", "admin", "hana", "--off"]).status.success());
    assert!(cli(&["users", "disable", "hana"]).status.success());
    assert!(!cli(&["users", "disable", "ivan"]).status.success(), "ivan is the last enabled admin");
    assert!(cli(&["users", "enable", "hana"]).status.success());
    let out = cli(&["users", "delete", "hana"]);
    assert!(text(&out.stdout).contains("nothing deleted"), "{}", text(&out.stdout));
    assert!(app.store().user_by_username("hana").await.unwrap().is_some());
    let out = cli(&["users", "delete", "hana", "--yes"]);
    assert!(out.status.success() && text(&out.stdout).contains("deleted hana"), "{}", text(&out.stderr));
    assert!(app.store().user_by_username("hana").await.unwrap().is_none());

    // events: newest first, RFC 3339, the kind in words, the user, the address.
    let out = cli(&["events", "--user", "hana"]);
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    let first: Vec<&str> = lines[0].split_whitespace().collect();
    assert!(first[0].ends_with('Z') && first[0].contains('T'), "{lines:?}");
    assert_eq!(&first[1..4], ["user", "deleted", "hana"], "{lines:?}");
    assert!(lines.last().unwrap().contains("user created"), "{lines:?}");
    assert!(lines.iter().all(|l| l.ends_with("by cli")), "{lines:?}");
    let out = cli(&["events", "--user", "ivan", "--since", "2000-01-01"]);
    let all = text(&out.stdout);
    assert!(all.contains("sign-in failed") && all.contains("sign-in succeeded"), "{all}");
    let out = cli(&["events", "--since", "soon"]);
    assert!(!out.status.success() && text(&out.stderr).contains("is not a time"));
    let out = cli(&["events", "--limit", "2"]);
    assert_eq!(text(&out.stdout).lines().count(), 2);
}

/// `/health` reads through a pooled connection; that connection must not stay on the
/// snapshot it read (SQLite keeps a read transaction open while a statement is mid-rows),
/// or a session another process ended would go on working through it.
#[rocket::async_test]
async fn a_health_check_does_not_pin_a_stale_snapshot() {
    let (dir, db) = temp_db();
    assert!(portal(&db, &["users", "add", "hana"], &format!("{PASSWORD}\n")).status.success());
    let app = TestApp::spawn_on(dir, db.clone(), |f| f.merge(("session.cache_ttl", 0))).await;
    let cookie = app.sign_in("hana", PASSWORD).await;
    for _ in 0..16 {
        assert_eq!(app.get("/health").await.status(), Status::Ok);
    }
    let out = portal(&db, &["users", "sessions", "hana", "--end-all"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    for _ in 0..16 {
        let response = app.get_with_cookie("/welcome", cookie.clone()).await;
        assert_is_redirect_to(&response, "/login?next=%2Fwelcome");
    }
}
