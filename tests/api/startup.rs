//! Starting up: what refuses to start, what the debug profile adds, and `/health`.

use std::sync::Arc;

use portal::clock::ManualClock;
use portal::Overrides;
use rocket::http::Status;
use rocket::local::asynchronous::Client;

use portal_testkit::app::*;
use portal_testkit::{secret_key, PASSWORD};

fn overrides() -> Overrides {
    Overrides { clock: Some(Arc::new(ManualClock::new(START))) }
}

#[rocket::async_test]
async fn a_release_profile_without_secret_key_refuses_to_start() {
    let (_dir, db) = temp_db();
    let figment = portal::figment()
        .merge(("databases.portal.url", db.as_str()))
        .merge(("log_level", "off"))
        .select("release");
    let result = Client::tracked(portal::rocket_with(figment, overrides())).await;
    let Err(error) = result else { panic!("release without secret_key must not start") };
    assert!(error.to_string().contains("secret key"), "{error}");
    error.pretty_print();
}

#[rocket::async_test]
async fn a_release_profile_never_creates_a_default_user() {
    let (_dir, db) = temp_db();
    let figment = test_figment(&db, &secret_key()).select("release");
    let client = Client::tracked(portal::rocket_with(figment, overrides())).await.expect("starts");
    let store = client.rocket().state::<portal::auth::Auth>().unwrap().store();
    assert_eq!(store.count_users().await.unwrap(), 0);
}

#[rocket::async_test]
async fn a_bad_setting_stops_startup() {
    let (_dir, db) = temp_db();
    let bad = [
        test_figment(&db, &secret_key()).merge(("session.refresh_after", 99_999)),
        test_figment(&db, &secret_key()).merge(("session.idle_timeout", "thirty minutes")),
        test_figment(&db, &secret_key()).merge(("databases.portal.max_connections", 1)),
        test_figment("sqlite:///no/such/dir/portal.sqlite?mode=rwc", &secret_key()),
    ];
    for figment in bad {
        let result = Client::tracked(portal::rocket_with(figment, overrides())).await;
        let Err(error) = result else { panic!("must not start") };
        error.pretty_print();
    }
}

#[rocket::async_test]
async fn health_is_200_while_the_store_answers_and_503_after() {
    let app = TestApp::spawn().await;
    let ok = app.get("/health").await;
    assert_eq!(ok.status(), Status::Ok);
    assert_eq!(ok.into_string().await.unwrap(), r#"{"status":"ok"}"#);

    app.store().close().await;
    let down = app.get("/health").await;
    assert_eq!(down.status(), Status::ServiceUnavailable);
    assert_eq!(down.into_string().await.unwrap(), r#"{"status":"unavailable"}"#);
}

/// Whether the app refuses to start with `key` in `profile`.
async fn refuses_key(key: &str, profile: &str) -> bool {
    let (_dir, db) = temp_db();
    let figment = test_figment(&db, key).select(profile);
    match Client::tracked(portal::rocket_with(figment, overrides())).await {
        Ok(_) => false,
        Err(error) => {
            error.pretty_print();
            true
        }
    }
}

#[rocket::async_test]
async fn the_secret_key_from_rockets_documentation_refuses_to_start_in_every_profile() {
    for profile in ["debug", "release"] {
        assert!(refuses_key("hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=", profile).await, "{profile}");
    }
}

#[rocket::async_test]
async fn a_secret_key_of_one_repeated_byte_refuses_to_start_in_every_profile() {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode([0x5a_u8; 64]);
    for profile in ["debug", "release"] {
        assert!(refuses_key(&key, profile).await, "{profile}");
    }
}

#[rocket::async_test]
async fn a_secret_key_of_few_distinct_bytes_refuses_to_start_in_every_profile() {
    let key = "0123456789abcdef".repeat(4); // hex: 8 distinct bytes
    for profile in ["debug", "release"] {
        assert!(refuses_key(&key, profile).await, "{profile}");
    }
    assert!(!refuses_key(&secret_key(), "release").await, "a random key starts");
}

/// Overwrites the database file in place (same inode, as `dd` or a bad disk would) and
/// asks `/health`; with `checkpoint`, the WAL is first folded into the file, as it is in a
/// store that has been running a while.
async fn health_after_garbage(checkpoint: bool) -> Status {
    let (dir, db) = temp_db();
    let file = dir.path().join("portal.sqlite");
    let app = TestApp::spawn_on(dir, db, |f| f).await;
    app.create_user("alice", PASSWORD).await;
    assert_eq!(app.get("/health").await.status(), Status::Ok);
    if checkpoint {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display())).await.unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&pool).await.unwrap();
        pool.close().await;
    }

    let garbage: Vec<u8> = (0..64 * 1024).map(|n: u32| (n.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(&file, garbage).unwrap();

    let down = app.get("/health").await;
    let status = down.status();
    assert_eq!(down.into_string().await.unwrap(), r#"{"status":"unavailable"}"#);
    status
}

#[rocket::async_test]
async fn health_is_503_when_the_database_file_is_overwritten_with_garbage() {
    if skip_on_postgres("health_is_503_when_the_database_file_is_overwritten_with_garbage") {
        return;
    }
    assert_eq!(health_after_garbage(false).await, Status::ServiceUnavailable);
    assert_eq!(health_after_garbage(true).await, Status::ServiceUnavailable);
}

#[rocket::async_test]
async fn a_new_store_is_readable_by_its_owner_only() {
    if skip_on_postgres("a_new_store_is_readable_by_its_owner_only") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let (dir, db) = temp_db();
    let file = dir.path().join("portal.sqlite");
    let app = TestApp::spawn_on(dir, db, |f| f).await;
    app.create_user("alice", PASSWORD).await;
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", file.display());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{path} has mode {mode:o}");
    }
}
