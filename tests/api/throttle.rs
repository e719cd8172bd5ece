//! Throttling of failed sign-ins and OAuth starts, and the bound on queued hashes.

use std::net::SocketAddr;

use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::LocalResponse;

use portal_testkit::app::*;
use portal_testkit::PASSWORD;

async fn attempt<'c>(
    app: &'c TestApp,
    from: &str,
    username: &str,
    password: &str,
    real_ip: Option<&str>,
) -> LocalResponse<'c> {
    let token = app.csrf_token().await;
    let remote: SocketAddr = format!("{from}:40000").parse().unwrap();
    let mut request = app.client.post("/login").remote(remote).header(ContentType::Form).body(form_body(&[
        ("csrf_token", &token),
        ("username", username),
        ("password", password),
    ]));
    if let Some(ip) = real_ip {
        request = request.header(Header::new("X-Real-IP", ip.to_owned()));
    }
    request.dispatch().await
}

#[rocket::async_test]
async fn the_sixth_failure_gets_429_without_running_the_hash() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    for _ in 0..5 {
        assert_eq!(attempt(&app, "10.0.0.1", "alice", "wrong guess", None).await.status(), Status::Ok);
    }
    let before = app.verify_calls();
    let response = attempt(&app, "10.0.0.1", "ALICE", "wrong guess", None).await;
    assert_eq!(response.status(), Status::TooManyRequests);
    let retry: i64 = response.headers().get_one("Retry-After").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert!(response.into_string().await.unwrap().contains("Too many attempts"));
    let right = attempt(&app, "10.0.0.1", "alice", PASSWORD, None).await;
    assert_eq!(right.status(), Status::TooManyRequests, "even the right password waits");
    assert_eq!(app.verify_calls(), before, "no hash ran for throttled attempts");
}

#[rocket::async_test]
async fn the_throttle_window_expires() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    for _ in 0..5 {
        attempt(&app, "10.0.0.1", "alice", "wrong guess", None).await;
    }
    assert_eq!(attempt(&app, "10.0.0.1", "alice", PASSWORD, None).await.status(), Status::TooManyRequests);
    app.clock.advance(15 * 60);
    assert_eq!(attempt(&app, "10.0.0.1", "alice", PASSWORD, None).await.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn a_successful_sign_in_resets_the_account_counter() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    for _ in 0..4 {
        attempt(&app, "10.0.0.1", "alice", "wrong guess", None).await;
    }
    assert_eq!(attempt(&app, "10.0.0.1", "alice", PASSWORD, None).await.status(), Status::SeeOther);
    for _ in 0..5 {
        assert_eq!(attempt(&app, "10.0.0.1", "alice", "typo", None).await.status(), Status::Ok);
    }
    assert_eq!(attempt(&app, "10.0.0.1", "alice", "typo", None).await.status(), Status::TooManyRequests);
}

#[rocket::async_test]
async fn guessing_from_elsewhere_cannot_lock_the_real_user_out() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    for _ in 0..6 {
        attempt(&app, "203.0.113.9", "alice", "attacker guess", None).await;
    }
    assert_eq!(
        attempt(&app, "203.0.113.9", "alice", "attacker guess", None).await.status(),
        Status::TooManyRequests
    );
    assert_eq!(attempt(&app, "10.0.0.1", "alice", PASSWORD, None).await.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn a_rotated_x_real_ip_does_not_escape_the_per_ip_limit_by_default() {
    let app = TestApp::spawn_with(|f| f.merge(("throttle.ip_failures", 4))).await;
    for n in 0..4 {
        let fake = format!("198.51.100.{n}");
        attempt(&app, "10.0.0.1", &format!("user{n}"), "guess", Some(&fake)).await;
    }
    let response = attempt(&app, "10.0.0.1", "user-next", "guess", Some("198.51.100.99")).await;
    assert_eq!(response.status(), Status::TooManyRequests);

    // The same spray escapes when the operator (wrongly, here) trusts the header: the test
    // above is only meaningful because the default ignores it.
    let trusting =
        TestApp::spawn_with(|f| f.merge(("throttle.ip_failures", 4)).merge(("ip_header", "X-Real-IP"))).await;
    for n in 0..4 {
        let fake = format!("198.51.100.{n}");
        attempt(&trusting, "10.0.0.1", &format!("user{n}"), "guess", Some(&fake)).await;
    }
    let response = attempt(&trusting, "10.0.0.1", "user-next", "guess", Some("198.51.100.99")).await;
    assert_eq!(response.status(), Status::Ok);
}

#[rocket::async_test]
async fn disabled_throttling_lets_every_attempt_hash() {
    let app = TestApp::spawn_with(|f| f.merge(("throttle.enabled", false))).await;
    let before = app.verify_calls();
    for _ in 0..7 {
        assert_eq!(attempt(&app, "10.0.0.1", "alice", "guess", None).await.status(), Status::Ok);
    }
    assert_eq!(app.verify_calls() - before, 7);
}

#[rocket::async_test]
async fn oauth_starts_are_throttled_per_ip() {
    let github = portal_testkit::fakes::FakeGithub::start().await;
    let app = TestApp::spawn_with(|f| github.figment(f).merge(("throttle.oauth_starts", 3))).await;
    let start =
        |ip: &'static str| app.client.get("/login/github").remote(format!("{ip}:1234").parse().unwrap());
    for _ in 0..3 {
        assert_eq!(start("10.0.0.1").dispatch().await.status(), Status::SeeOther);
    }
    let response = start("10.0.0.1").dispatch().await;
    assert_eq!(response.status(), Status::TooManyRequests);
    assert!(response.headers().get_one("Retry-After").is_some());
    assert_eq!(start("10.0.0.2").dispatch().await.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn a_full_hash_queue_answers_503_at_once() {
    let app = TestApp::spawn_with(|f| {
        f.merge(("hashing.concurrency", 1)).merge(("hashing.queue", 0)).merge(("throttle.enabled", false))
    })
    .await;
    let token = app.csrf_token().await;
    let body = form_body(&[("csrf_token", &token), ("username", "admin"), ("password", "wrong password")]);
    let post = || app.client.post("/login").header(ContentType::Form).body(body.clone()).dispatch();
    let (a, b, c) = tokio::join!(post(), post(), post());
    let statuses = [a.status(), b.status(), c.status()];
    assert!(statuses.contains(&Status::Ok), "{statuses:?}");
    let busy: Vec<_> =
        [&a, &b, &c].into_iter().filter(|r| r.status() == Status::ServiceUnavailable).collect();
    assert!(
        !busy.is_empty(),
        "with one slot and no queue, concurrent sign-ins are turned away: {statuses:?}"
    );
    assert_eq!(busy[0].headers().get_one("Retry-After"), Some("2"));
}

/// Sends every `(username, password)` at once from `from`, with one valid CSRF token, and
/// returns the statuses in order.
async fn burst(app: &TestApp, from: &str, attempts: &[(String, &str)]) -> Vec<Status> {
    let token = app.csrf_token().await;
    let remote: SocketAddr = format!("{from}:40000").parse().unwrap();
    let requests = attempts.iter().map(|(username, password)| {
        let body = form_body(&[("csrf_token", &token), ("username", username), ("password", password)]);
        app.client.post("/login").remote(remote).header(ContentType::Form).body(body).dispatch()
    });
    let responses = rocket::futures::future::join_all(requests).await;
    responses.iter().map(LocalResponse::status).collect()
}

fn count(statuses: &[Status], status: Status) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[rocket::async_test]
async fn a_burst_of_64_concurrent_guesses_for_one_account_runs_at_most_5_hashes() {
    // A queue long enough that nothing is shed with 503: only the throttle may refuse.
    let app = TestApp::spawn_with(|f| f.merge(("hashing.queue", 256))).await;
    app.create_user("alice", PASSWORD).await;
    let mut attempts: Vec<(String, &str)> = (0..64).map(|_| ("alice".to_owned(), "wrong guess")).collect();
    attempts[32].1 = PASSWORD;
    let before = app.verify_calls();

    let statuses = burst(&app, "10.0.0.1", &attempts).await;

    assert_eq!(app.verify_calls() - before, 5, "only the budget's five guesses were hashed");
    assert_eq!(count(&statuses, Status::Ok), 5, "{statuses:?}");
    assert_eq!(count(&statuses, Status::TooManyRequests), 59, "{statuses:?}");
    assert_eq!(statuses[32], Status::TooManyRequests, "the right password in the burst waits too");
    let elsewhere = attempt(&app, "10.0.0.2", "alice", PASSWORD, None).await;
    assert_eq!(elsewhere.status(), Status::SeeOther, "the real user from another IP still gets in");
}

#[rocket::async_test]
async fn a_burst_over_64_accounts_from_one_ip_runs_at_most_50_hashes() {
    let app = TestApp::spawn_with(|f| f.merge(("hashing.queue", 256))).await;
    app.create_user("alice", PASSWORD).await;
    let attempts: Vec<(String, &str)> = (0..64).map(|n| (format!("user{n}"), "wrong guess")).collect();
    let before = app.verify_calls();

    let statuses = burst(&app, "10.0.0.1", &attempts).await;

    assert_eq!(app.verify_calls() - before, 50, "only the IP's budget of fifty was hashed");
    assert_eq!(count(&statuses, Status::Ok), 50, "{statuses:?}");
    assert_eq!(count(&statuses, Status::TooManyRequests), 14, "{statuses:?}");
    let elsewhere = attempt(&app, "10.0.0.2", "alice", PASSWORD, None).await;
    assert_eq!(elsewhere.status(), Status::SeeOther);
}
