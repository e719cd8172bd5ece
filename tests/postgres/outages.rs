//! PostgreSQL not there at start, and PostgreSQL going away under load: `503` pages (never
//! `500`) while it is away, service back by itself once it returns, nothing lost.

use std::time::{Duration, Instant};

use rocket::http::Status;

use crate::forwarder::{port_of, Forwarder};
use portal_testkit::app::{TestApp, START};
use portal_testkit::{new_postgres_database, postgres_turn, PASSWORD, PATIENCE};

async fn health(app: &TestApp) -> (Status, String) {
    let response = app.get("/health").await;
    (response.status(), response.into_string().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_at_start_serves_503_then_connects() {
    let Some(turn) = postgres_turn().await else { return };
    let server = turn.server.clone();
    let direct = new_postgres_database(&server);
    let forwarder = Forwarder::new(port_of(&direct));
    let url = forwarder.url(&direct);
    // The database does not answer: the portal starts anyway.
    let app = TestApp::spawn_at(tempfile::tempdir().expect("dir"), url, START, |f| {
        f.merge(("databases.portal.connect_timeout", 1))
    })
    .await;
    assert_eq!(health(&app).await, (Status::ServiceUnavailable, r#"{"status":"unavailable"}"#.to_owned()));
    let token = app.csrf_token().await;
    let login = app
        .client
        .post("/login")
        .header(rocket::http::ContentType::Form)
        .body(format!("csrf_token={token}&username=alice&password=whatever-it-is"))
        .dispatch()
        .await;
    assert_eq!(login.status(), Status::ServiceUnavailable, "a page saying to try again");
    assert_eq!(login.headers().get_one("Retry-After"), Some("2"));
    assert!(login.into_string().await.unwrap_or_default().contains("The portal is busy"));

    // It comes up: the portal connects, brings the schema up and serves.
    forwarder.up().await;
    let started = Instant::now();
    while health(&app).await.0 != Status::Ok {
        assert!(started.elapsed() < PATIENCE, "the portal never connected");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("    serving {:?} after the database came up", started.elapsed());
    app.create_user("alice", PASSWORD).await;
    let cookie = app.sign_in("alice", PASSWORD).await;
    assert_eq!(app.get_with_cookie("/welcome", cookie).await.status(), Status::Ok);
    let keys = app.get("/.well-known/jwks.json").await.into_string().await.unwrap_or_default();
    assert!(keys.contains("\"kid\""), "the first-start work ran: {keys}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_is_503_never_500_and_loses_nothing() {
    let Some(turn) = postgres_turn().await else { return };
    let server = turn.server.clone();
    let direct = new_postgres_database(&server);
    let forwarder = Forwarder::new(port_of(&direct));
    forwarder.up().await;
    let url = forwarder.url(&direct);
    let app = TestApp::spawn_at(tempfile::tempdir().expect("dir"), url, START, |f| {
        f.merge(("databases.portal.connect_timeout", 1)).merge(("session.cache_ttl", 0))
    })
    .await;
    app.create_user("alice", PASSWORD).await;
    app.create_user("bob", PASSWORD).await;
    let alice = app.sign_in("alice", PASSWORD).await;
    let users_before = app.store().count_users().await.expect("count");

    // Three clients keep asking; the database is cut off for two seconds, then its
    // backends are all terminated (as a restart does) while it is back.
    let seen = std::sync::Mutex::new(Vec::<(Status, &str)>::new());
    let stop = std::sync::atomic::AtomicBool::new(false);
    let client = |path: &'static str| {
        let (app, alice, seen, stop) = (&app, alice.clone(), &seen, &stop);
        async move {
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let status = match path {
                    "/welcome" => app.get_with_cookie("/welcome", alice.clone()).await.status(),
                    "/login" => app.post_login("bob", "not bob's password").await.status(),
                    _ => app.get(path).await.status(),
                };
                seen.lock().unwrap_or_else(|p| p.into_inner()).push((status, path));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let conductor = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        forwarder.down();
        tokio::time::sleep(Duration::from_secs(2)).await;
        forwarder.up().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let admin = sqlx::PgPool::connect(&direct).await.expect("connect");
        let terminated: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&admin)
        .await
        .expect("terminate");
        assert!(!terminated.is_empty(), "the portal had connections to terminate");
        admin.close().await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        stop.store(true, std::sync::atomic::Ordering::Release);
    };
    tokio::join!(client("/welcome"), client("/health"), client("/login"), conductor);

    let seen = seen.into_inner().unwrap_or_else(|p| p.into_inner());
    let unavailable = seen.iter().filter(|(s, _)| *s == Status::ServiceUnavailable).count();
    println!("    {} requests, {unavailable} answered 503 while the database was away", seen.len());
    // This client is signed in as alice (the tracked jar): a login page served while her
    // session could not be read carries the signed-out form token, and posted once the store
    // is back it is refused as an expired form (403, "Please try again"), as in a browser.
    for (status, path) in &seen {
        assert!(
            matches!(status.code, 200 | 503) || (*path == "/login" && matches!(status.code, 429 | 403)),
            "{path}: {status} (only 200, and 503 during the outage; wrong passwords may be throttled)"
        );
    }
    assert!(unavailable > 0, "the outage was seen");

    // Back by itself, with nothing lost: the same session, the same users.
    let started = Instant::now();
    while app.get_with_cookie("/welcome", alice.clone()).await.status() != Status::Ok {
        assert!(started.elapsed() < PATIENCE, "service never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(health(&app).await.0, Status::Ok);
    assert_eq!(app.store().count_users().await.expect("count"), users_before);
    assert_eq!(app.sign_in("alice", PASSWORD).await.name(), portal_testkit::session_cookie_name());
}
