//! Cross-site requests, security headers, and bad input: clear 4xx answers, never a 5xx.

use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::LocalResponse;

use portal_testkit::app::*;
use portal_testkit::PASSWORD;

fn assert_security_headers(response: &LocalResponse<'_>) {
    let h = response.headers();
    let csp = h.get_one("Content-Security-Policy").expect("CSP");
    for directive in [
        "default-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
    ] {
        assert!(csp.contains(directive), "CSP lacks {directive}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h.get_one("X-Frame-Options"), Some("DENY"));
    assert_eq!(h.get_one("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(h.get_one("Referrer-Policy"), Some("same-origin"));
    // FLoC's opt-out is not sent: no browser has FLoC, and Chromium reports the header.
    assert!(h.get_one("Permissions-Policy").is_none(), "no Permissions-Policy: interest-cohort");
    for name in [
        "X-Frame-Options",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "Content-Security-Policy",
        "Cache-Control",
    ] {
        assert_eq!(h.get(name).count(), 1, "exactly one {name}");
    }
    assert!(h.get_one("Server").is_none(), "no Server header");
}

#[rocket::async_test]
async fn security_headers_are_on_a_200_a_303_and_a_404() {
    let app = TestApp::spawn().await;
    let ok = app.get("/login").await;
    assert_eq!(ok.status(), Status::Ok);
    assert_security_headers(&ok);
    assert_eq!(ok.headers().get_one("Cache-Control"), Some("no-store"));

    let redirect = app.get("/welcome").await;
    assert_eq!(redirect.status(), Status::SeeOther);
    assert_security_headers(&redirect);
    assert_eq!(redirect.headers().get_one("Cache-Control"), Some("no-store"));

    let missing = app.get("/no/such/page").await;
    assert_eq!(missing.status(), Status::NotFound);
    assert_security_headers(&missing);
    assert_eq!(missing.headers().get("Content-Security-Policy").count(), 1);
}

#[rocket::async_test]
async fn signed_in_pages_are_never_cached() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    for page in ["/", "/welcome", "/logout"] {
        let response = app.get(page).await;
        assert_eq!(response.status(), Status::Ok, "{page}");
        assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"), "{page}");
    }
}

#[rocket::async_test]
async fn the_stylesheet_is_served_and_cacheable() {
    let app = TestApp::spawn().await;
    let css = app.get("/static/portal.css").await;
    assert_eq!(css.status(), Status::Ok);
    assert_eq!(css.content_type(), Some(ContentType::CSS));
    assert_eq!(css.headers().get_one("Cache-Control"), Some("public, max-age=3600"));
    assert!(css.into_string().await.unwrap().contains(".card"));
}

#[rocket::async_test]
async fn error_pages_use_the_site_layout_and_show_no_internals() {
    let app = TestApp::spawn().await;
    let page = app.get("/no/such/page").await.into_string().await.unwrap();
    assert!(page.contains(r#"<link rel="stylesheet" href="/static/portal.css">"#));
    assert!(page.contains("There is no page at this address."));
    assert!(!page.to_lowercase().contains("rocket"));
}

#[rocket::async_test]
async fn a_cross_site_login_is_refused_by_sec_fetch_site() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let token = app.csrf_token().await;
    for site in ["cross-site", "same-site"] {
        let response = app
            .client
            .post("/login")
            .header(ContentType::Form)
            .header(Header::new("Sec-Fetch-Site", site))
            .body(form_body(&[("csrf_token", &token), ("username", "alice"), ("password", PASSWORD)]))
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Forbidden, "{site}");
        assert!(session_cookie(&response).is_none());
    }
}

#[rocket::async_test]
async fn a_login_from_a_foreign_origin_is_refused_and_a_same_origin_one_accepted() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let token = app.csrf_token().await;
    let body = form_body(&[("csrf_token", &token), ("username", "alice"), ("password", PASSWORD)]);
    let post = |origin: &'static str| {
        app.client
            .post("/login")
            .header(ContentType::Form)
            .header(Header::new("Host", "portal.test"))
            .header(Header::new("Origin", origin))
            .body(body.clone())
    };
    for origin in ["https://evil.example", "null", "http://portal.test.evil.example"] {
        let response = post(origin).dispatch().await;
        assert_eq!(response.status(), Status::Forbidden, "{origin}");
        assert!(session_cookie(&response).is_none());
    }
    let response = post("http://portal.test").dispatch().await;
    assert_eq!(response.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn a_login_without_the_csrf_token_is_refused_and_the_form_offered_again() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let before = app.verify_calls();
    for token in [None, Some("forged-token")] {
        let mut fields = vec![("username", "alice"), ("password", PASSWORD)];
        if let Some(token) = token {
            fields.push(("csrf_token", token));
        }
        let response =
            app.client.post("/login").header(ContentType::Form).body(form_body(&fields)).dispatch().await;
        assert_eq!(response.status(), Status::Forbidden);
        assert!(session_cookie(&response).is_none());
        let page = response.into_string().await.unwrap();
        assert!(page.contains("This form had expired. Please try again."));
        assert!(extract_hidden(&page, "csrf_token").is_some(), "a fresh token to retry with");
    }
    assert_eq!(app.verify_calls(), before, "no hash is spent on a forged form");
}

#[rocket::async_test]
async fn missing_fields_re_render_the_form_with_a_message() {
    let app = TestApp::spawn().await;
    for fields in
        [vec![], vec![("username", "alice")], vec![("password", PASSWORD)], vec![("username", "  ")]]
    {
        let response = app.post_login_form(&fields).await;
        assert_eq!(response.status(), Status::UnprocessableEntity);
        let page = response.into_string().await.unwrap();
        assert!(page.contains("Enter your username and password."), "{fields:?}");
    }
}

#[rocket::async_test]
async fn oversized_fields_and_bodies_answer_413() {
    let app = TestApp::spawn().await;
    let huge_name = "u".repeat(300);
    let response = app.post_login(&huge_name, PASSWORD).await;
    assert_eq!(response.status(), Status::PayloadTooLarge);
    assert!(response.into_string().await.unwrap().contains("too long"));

    let huge_password = "p".repeat(2000);
    assert_eq!(app.post_login("alice", &huge_password).await.status(), Status::PayloadTooLarge);

    let body = format!("username=alice&password={}", "p".repeat(64 * 1024));
    let response = app.client.post("/login").header(ContentType::Form).body(body).dispatch().await;
    assert_eq!(response.status(), Status::PayloadTooLarge);
}

#[rocket::async_test]
async fn invalid_utf8_answers_400() {
    let app = TestApp::spawn().await;
    let token = app.csrf_token().await;
    let mut raw = format!("csrf_token={token}&username=alice&password=").into_bytes();
    raw.extend_from_slice(&[0xff, 0xfe, 0xfd]);
    let response = app.client.post("/login").header(ContentType::Form).body(raw).dispatch().await;
    assert_eq!(response.status(), Status::BadRequest);

    let escaped = format!("csrf_token={token}&username=alice&password=%FF%FE");
    let response = app.client.post("/login").header(ContentType::Form).body(escaped).dispatch().await;
    assert_eq!(response.status(), Status::BadRequest);
}

#[rocket::async_test]
async fn json_or_unknown_content_types_answer_415() {
    let app = TestApp::spawn().await;
    for content_type in [ContentType::JSON, ContentType::Plain, ContentType::XML] {
        let response = app
            .client
            .post("/login")
            .header(content_type.clone())
            .body(r#"{"username":"admin","password":"admin"}"#)
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::UnsupportedMediaType, "{content_type}");
        assert!(session_cookie(&response).is_none());
    }
    let no_type = app.client.post("/login").body("username=admin&password=admin").dispatch().await;
    assert_eq!(no_type.status(), Status::UnsupportedMediaType);
}

#[rocket::async_test]
async fn the_server_keeps_serving_after_bad_input() {
    let app = TestApp::spawn().await;
    let _ = app.client.post("/login").header(ContentType::Form).body(vec![0xffu8; 100]).dispatch().await;
    let _ = app.client.post("/login").header(ContentType::JSON).body("{").dispatch().await;
    let _ = app.get("/login?next=%ff%fe").await;
    assert_eq!(app.get("/health").await.status(), Status::Ok);
}

#[rocket::async_test]
async fn when_the_store_fails_the_login_page_says_so_without_internals() {
    let app = TestApp::spawn().await;
    let token = app.csrf_token().await;
    app.store().close().await;
    let response = app
        .client
        .post("/login")
        .header(ContentType::Form)
        .body(form_body(&[("csrf_token", &token), ("username", "alice"), ("password", PASSWORD)]))
        .dispatch()
        .await;
    // A store that does not answer is "busy, try again" (503 with Retry-After), not a fault.
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert_eq!(response.headers().get_one("Retry-After"), Some("2"));
    let page = response.into_string().await.unwrap();
    assert!(page.contains("The portal is busy. Please try again in a moment."), "{page}");
    for internal in ["sqlx", "pool", "sqlite", "closed"] {
        assert!(!page.to_lowercase().contains(internal), "page mentions {internal}");
    }
}

#[rocket::async_test]
async fn hsts_is_sent_only_when_configured() {
    let plain = TestApp::spawn().await;
    assert!(plain.get("/login").await.headers().get_one("Strict-Transport-Security").is_none());

    let tls = TestApp::spawn_with(|f| f.merge(("hsts", true))).await;
    for uri in ["/login", "/welcome", "/no/such/page"] {
        let response = tls.get(uri).await;
        let hsts = response.headers().get_one("Strict-Transport-Security");
        assert_eq!(hsts, Some("max-age=63072000; includeSubDomains"), "{uri}");
    }
}

/// A login POST with a valid token and this `Origin`: the status it gets.
async fn login_from_origin(app: &TestApp, origin: &str) -> Status {
    let token = app.csrf_token().await;
    let body = form_body(&[("csrf_token", &token), ("username", "nobody"), ("password", "wrong password")]);
    let request =
        app.client.post("/login").header(ContentType::Form).header(Header::new("Host", "localhost"));
    request.header(Header::new("Origin", origin.to_owned())).body(body).dispatch().await.status()
}

#[rocket::async_test]
async fn the_origin_check_compares_the_scheme_too() {
    let http = TestApp::spawn().await;
    assert_eq!(login_from_origin(&http, "http://localhost").await, Status::Ok);
    assert_eq!(login_from_origin(&http, "https://localhost").await, Status::Forbidden);

    let behind_tls = TestApp::spawn_with(|f| f.merge(("secure_cookies", true))).await;
    assert_eq!(login_from_origin(&behind_tls, "https://localhost").await, Status::Ok);
    assert_eq!(login_from_origin(&behind_tls, "http://localhost").await, Status::Forbidden);
}

#[rocket::async_test]
async fn with_public_url_forms_must_come_from_that_origin() {
    let app = TestApp::spawn_with(|f| f.merge(("public_url", "https://Auth.Example.com/"))).await;
    assert_eq!(login_from_origin(&app, "https://auth.example.com").await, Status::Ok);
    assert_eq!(login_from_origin(&app, "http://auth.example.com").await, Status::Forbidden);
    assert_eq!(
        login_from_origin(&app, "http://localhost").await,
        Status::Forbidden,
        "Host no longer decides"
    );
    assert_eq!(login_from_origin(&app, "https://auth.example.com:8443").await, Status::Forbidden);
}

/// The CSRF token and `portal_csrf` cookie (its sealed value, as the browser holds it) of
/// `page` as the app's browser fetched it.
async fn token_and_cookie(app: &TestApp, page: &str) -> (String, Option<String>) {
    let response = app.get(page).await;
    let cookie =
        set_cookies(&response).into_iter().find(|c| c.name() == "portal_csrf").map(|c| c.value().to_owned());
    let token = extract_hidden(&response.into_string().await.unwrap(), "csrf_token").expect("a CSRF token");
    (token, cookie)
}

/// `POST /logout/everywhere` from the victim's browser, with no `Origin` and no
/// `Sec-Fetch-Site` (an old browser, or a client that sends neither), carrying `token` and,
/// when given, `cookie` as its `portal_csrf` cookie.
async fn end_everywhere(app: &TestApp, token: &str, cookie: Option<&str>) -> Status {
    let mut request = app
        .client
        .post("/logout/everywhere")
        .header(ContentType::Form)
        .body(form_body(&[("csrf_token", token)]));
    if let Some(cookie) = cookie {
        request = request.cookie(rocket::http::Cookie::new("portal_csrf", cookie.to_owned()));
    }
    request.dispatch().await.status()
}

#[rocket::async_test]
async fn a_token_and_cookie_minted_in_another_browser_do_not_pass_a_signed_in_form() {
    // Two browsers on the same portal: the same store and secret key, a cookie jar each.
    let (dir, db) = temp_db();
    let key = portal_testkit::secret_key();
    let victim = TestApp::spawn_on(dir, db.clone(), |f| f.merge(("secret_key", key.clone()))).await;
    let attacker =
        TestApp::spawn_on(tempfile::tempdir().unwrap(), db, |f| f.merge(("secret_key", key.clone()))).await;
    victim.create_user("alice", PASSWORD).await;
    attacker.create_user("mallory", PASSWORD).await;
    victim.sign_in("alice", PASSWORD).await;

    // The attacker's pair signed out, then signed in as themselves.
    let signed_out = token_and_cookie(&attacker, "/login").await;
    assert!(signed_out.1.is_some(), "a signed-out page sets the cookie");
    attacker.sign_in("mallory", PASSWORD).await;
    let signed_in = token_and_cookie(&attacker, "/account").await;
    for (token, cookie) in [&signed_out, &signed_in] {
        let cookie = cookie.as_deref().or(signed_out.1.as_deref());
        assert_eq!(end_everywhere(&victim, token, cookie).await, Status::Forbidden);
        assert_eq!(victim.get("/welcome").await.status(), Status::Ok, "the victim is still signed in");
    }

    let (own, _) = token_and_cookie(&victim, "/account").await;
    assert_eq!(end_everywhere(&victim, &own, None).await, Status::SeeOther, "the victim's own token works");
    assert_eq!(victim.get("/welcome").await.status(), Status::SeeOther, "and signed them out");
}

#[rocket::async_test]
async fn the_token_from_before_sign_in_no_longer_works_once_signed_in() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let (before, cookie) = token_and_cookie(&app, "/login").await;
    let response = app
        .client
        .post("/login")
        .header(ContentType::Form)
        .body(form_body(&[("csrf_token", &before), ("username", "alice"), ("password", PASSWORD)]))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::SeeOther, "it signs in");
    // Even with its cookie sent back (a copy kept, or planted again), it is refused.
    assert_eq!(end_everywhere(&app, &before, cookie.as_deref()).await, Status::Forbidden);
    assert_eq!(app.get("/welcome").await.status(), Status::Ok);
    let (after, _) = token_and_cookie(&app, "/account").await;
    assert_ne!(after, before);
    assert_eq!(end_everywhere(&app, &after, None).await, Status::SeeOther);
}
