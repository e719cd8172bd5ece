//! `next`: after signing in, only ever a path on this site. Payloads: oauth2-proxy's
//! open-redirect corpus (tests/data/openredirects.txt, MIT) plus the issue's own list.

use rocket::http::{RawStr, Status};

use portal_testkit::app::*;
use portal_testkit::PASSWORD;

fn corpus() -> Vec<String> {
    include_str!("../data/openredirects.txt").lines().map(str::to_owned).collect()
}

/// What a browser would do with `Location: value` on this site: stay unless the value is
/// scheme-relative, has a scheme, or is not a path.
fn stays_on_site(location: &str) -> bool {
    location.starts_with('/')
        && !location.starts_with("//")
        && !location.starts_with("/\\")
        && !location.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// The corpus lines are written as in a query string; oauth2-proxy decodes them once.
fn decoded(line: &str) -> String {
    RawStr::new(line).percent_decode_lossy().into_owned()
}

#[rocket::async_test]
async fn no_payload_in_the_corpus_is_offered_back_as_a_next_target() {
    let app = TestApp::spawn().await;
    let lines = corpus();
    assert_eq!(lines.len(), 559, "the whole corpus, first (blank) line included");
    for line in &lines {
        let value = decoded(line);
        let uri = format!("/login?next={}", RawStr::new(&value).percent_encode());
        let response = app.get(&uri).await;
        assert_eq!(response.status(), Status::Ok, "{line:?}");
        let page = response.into_string().await.unwrap();
        if let Some(next) = extract_hidden(&page, "next") {
            assert!(stays_on_site(&next), "{line:?} was kept as {next:?}");
        }
    }
}

#[rocket::async_test]
async fn no_payload_in_the_corpus_sends_a_signed_in_user_off_the_site() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    // A full sign-in costs one Argon2 verify; every fifth line keeps the run short while
    // covering each family of payloads (the GET test above covers every line).
    for line in corpus().iter().step_by(5) {
        for value in [decoded(line), line.clone()] {
            let response =
                app.post_login_form(&[("username", "alice"), ("password", PASSWORD), ("next", &value)]).await;
            assert_eq!(response.status(), Status::SeeOther, "{line:?}");
            let to = location(&response).unwrap_or_default();
            assert!(stays_on_site(to), "{line:?} redirected to {to:?}");
        }
    }
}

#[rocket::async_test]
async fn the_issues_payloads_fall_back_to_home_and_a_local_path_is_kept() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let long = format!("/{}", "a".repeat(10 * 1024));
    let payloads = [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
        "https:evil.example",
        "javascript:alert(1)",
        "/%2F%2Fevil.example",
        "/\t/evil.example",
        "/\r\n/evil.example",
        "/\n/evil.example",
        long.as_str(),
    ];
    for next in payloads {
        let response =
            app.post_login_form(&[("username", "alice"), ("password", PASSWORD), ("next", next)]).await;
        assert_is_redirect_to(&response, "/");
    }
    let response = app
        .post_login_form(&[("username", "alice"), ("password", PASSWORD), ("next", "/welcome?tab=1")])
        .await;
    assert_is_redirect_to(&response, "/welcome?tab=1");
}

#[rocket::async_test]
async fn the_login_redirect_carries_the_query_string_of_the_protected_page() {
    let app = TestApp::spawn().await;
    let response = app.get("/welcome?x=1").await;
    assert_is_redirect_to(&response, "/login?next=%2Fwelcome%3Fx%3D1");
}
