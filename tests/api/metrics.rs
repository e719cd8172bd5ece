//! `GET /metrics`: off until `metrics.token` is set, then Prometheus text for the bearer of
//! the token only; what it counts moves when things happen.

use std::collections::HashMap;

use rocket::http::{Header, Status};

use portal_testkit::app::*;
use portal_testkit::PASSWORD;

const TOKEN: &str = "0123456789abcdef-scrape-token";

/// Every sample of an OpenMetrics text exposition, by series (`name{labels}`); panics on a
/// line that is not a comment, a sample, or the closing `# EOF`.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    let mut ended = false;
    for line in text.lines() {
        assert!(!ended, "a line after # EOF: {line}");
        if line == "# EOF" {
            ended = true;
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let kind = comment.split(' ').next().unwrap_or("");
            assert!(["HELP", "TYPE", "UNIT"].contains(&kind), "an unknown comment: {line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "a bad metric name: {line}"
        );
        if name_end < series.len() {
            let labels = series[name_end..].strip_prefix('{').and_then(|l| l.strip_suffix('}'));
            let labels = labels.unwrap_or_else(|| panic!("bad labels: {line}"));
            for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once("=\"").unwrap_or_else(|| panic!("a bad label: {line}"));
                assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "a bad label: {line}");
                assert!(!value.contains('\n'), "{line}");
            }
        }
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        samples.insert(series.to_owned(), value);
    }
    assert!(ended, "the exposition ends with # EOF");
    samples
}

async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let response = app
        .client
        .get("/metrics")
        .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    let kind = response.content_type().expect("a content type").to_string();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
    parse(&response.into_string().await.expect("a body"))
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

#[rocket::async_test]
async fn metrics_are_404_until_a_token_is_set() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/metrics").await.status(), Status::NotFound);
    let with_header = app.client.get("/metrics").header(Header::new("Authorization", "Bearer anything"));
    assert_eq!(with_header.dispatch().await.status(), Status::NotFound);
}

#[rocket::async_test]
async fn metrics_need_the_bearer_token() {
    let app = TestApp::spawn_with(|f| f.merge(("metrics.token", TOKEN))).await;
    let bare = app.get("/metrics").await;
    assert_eq!(bare.status(), Status::Unauthorized);
    assert!(bare.headers().get_one("WWW-Authenticate").is_some_and(|h| h.starts_with("Bearer")));
    for wrong in [
        "Bearer nope".to_owned(),
        format!("Bearer {TOKEN}x"),
        format!("Basic {TOKEN}"),
        TOKEN.to_owned(),
        format!("Bearer {}", &TOKEN[1..]),
    ] {
        let response =
            app.client.get("/metrics").header(Header::new("Authorization", wrong.clone())).dispatch().await;
        assert_eq!(response.status(), Status::Unauthorized, "{wrong}");
        let body = response.into_string().await.unwrap_or_default();
        assert!(!body.contains("portal_"), "no metrics without the token");
    }
    assert!(!scrape(&app).await.is_empty());
}

#[rocket::async_test]
async fn a_short_or_spaced_token_stops_startup() {
    for bad in ["short", "a token with spaces in it"] {
        let figment =
            test_figment("sqlite::memory:", &portal_testkit::secret_key()).merge(("metrics.token", bad));
        let rocket = portal::rocket_with(figment, portal::Overrides::default());
        let Err(error) = rocket::local::asynchronous::Client::tracked(rocket).await else {
            panic!("{bad}: must not start")
        };
        error.pretty_print();
    }
}

#[rocket::async_test]
async fn what_happens_is_counted_and_the_scrape_parses() {
    let app = TestApp::spawn_with(|f| f.merge(("metrics.token", TOKEN))).await;
    app.create_user("alice", PASSWORD).await;
    let before = scrape(&app).await;

    let cookie = app.sign_in("alice", PASSWORD).await;
    assert_eq!(app.post_login("alice", "wrong password here").await.status(), Status::Ok);
    assert_eq!(app.get_with_cookie("/welcome", cookie.clone()).await.status(), Status::Ok);
    // Signed in (the client keeps the cookie) and no application allowed: refused.
    assert_eq!(app.get("/authz/auth-request").await.status(), Status::Forbidden);
    let after = scrape(&app).await;

    let grew = |series: &str, by: f64| {
        let delta = value(&after, series) - value(&before, series);
        assert!(delta >= by, "{series}: +{delta}, expected at least +{by}");
    };
    grew(r#"portal_sign_ins_total{method="password",outcome="success"}"#, 1.0);
    grew(r#"portal_sign_ins_total{method="password",outcome="invalid"}"#, 1.0);
    grew(r#"portal_sessions_started_total{method="password"}"#, 1.0);
    grew(r#"portal_forward_auth_checks_total{result="forbidden"}"#, 1.0);
    grew(r#"portal_request_duration_seconds_count{method="GET",route="/welcome",status="2xx"}"#, 1.0);
    grew(r#"portal_request_duration_seconds_count{method="POST",route="/login",status="3xx"}"#, 1.0);
    // The histogram of GET /welcome 2xx: its 14 bounds and +Inf, the last counting them all.
    let buckets: Vec<(&String, &f64)> = after
        .iter()
        .filter(|(k, _)| {
            k.starts_with("portal_request_duration_seconds_bucket{")
                && k.contains(r#"method="GET",route="/welcome",status="2xx""#)
        })
        .collect();
    assert_eq!(buckets.len(), 15, "{buckets:?}");
    assert!(buckets.iter().any(|(k, v)| k.contains(r#"le="+Inf""#) && **v >= 1.0), "{buckets:?}");
    for gauge in ["portal_hash_queue_depth", "portal_store_connections", "portal_revocations_heard"] {
        assert!(after.contains_key(gauge), "{gauge} is exported");
    }
    assert_eq!(value(&after, "portal_revocations_heard"), 1.0);

    // Logging out ends a session; a store that does not answer is counted as such.
    let token = app.csrf_token().await;
    app.client
        .post("/logout")
        .header(rocket::http::ContentType::Form)
        .body(format!("csrf_token={token}"))
        .dispatch()
        .await;
    let ended = scrape(&app).await;
    assert!(value(&ended, "portal_sessions_ended_total") > value(&after, "portal_sessions_ended_total"));
    let key = r#"portal_store_errors_total{kind="unavailable"}"#;
    let errors_before = value(&ended, key);
    app.store().close().await;
    assert_eq!(app.post_login("alice", PASSWORD).await.status(), Status::ServiceUnavailable);
    let last = parse(
        &app.client
            .get("/metrics")
            .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
            .dispatch()
            .await
            .into_string()
            .await
            .unwrap_or_default(),
    );
    assert!(value(&last, key) > errors_before, "store errors are counted");
    let text = format!("{last:?}");
    assert!(!text.contains(TOKEN) && !text.contains(PASSWORD), "no secrets in the exposition");
}
