//! Forward-auth: `/authz/auth-request` and `/authz/forward-auth`, their statuses and identity
//! headers, the access rules, revocation, `rd` (the open-redirect corpus included), the
//! signed assertion and its JWK Set, and the session cookie's domain.

use rocket::figment::Figment;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::LocalResponse;
use serde_json::json;

use portal_testkit::app::*;
use portal_testkit::fakes::{query, FakeGithub};
use portal_testkit::PASSWORD;

const PORTAL: &str = "https://auth.example.com";

/// Forward-auth for `*.example.com` and `wiki.other.test`: `admin.example.com` for admins,
/// `/finance` on any example.com host for alice only.
fn gated(f: Figment) -> Figment {
    f.merge(("public_url", PORTAL)).merge((
        "forward_auth",
        json!({
            "allowed_domains": ["*.example.com", "wiki.other.test"],
            "rules": [
                { "host": "admin.example.com", "allow": "admins" },
                { "host": "*.example.com", "path": "/finance", "allow": ["Alice"] },
            ],
        }),
    ))
}

async fn app() -> TestApp {
    let app = TestApp::spawn_with(gated).await;
    let hash = app.auth().hasher().hash(PASSWORD.to_owned()).await.unwrap();
    let alice = portal::store::NewUser {
        username: "alice",
        email: Some("alice@example.com"),
        password_hash: Some(&hash),
        is_admin: false,
    };
    app.store().create_user(alice, START).await.unwrap();
    app.create_user("bob", PASSWORD).await;
    app
}

/// `GET /authz/auth-request` about `url`, as nginx asks.
async fn ask<'a>(app: &'a TestApp, url: &str) -> LocalResponse<'a> {
    app.client
        .get("/authz/auth-request")
        .header(Header::new("X-Original-URL", url.to_owned()))
        .dispatch()
        .await
}

fn header<'a>(response: &'a LocalResponse<'_>, name: &str) -> Option<&'a str> {
    response.headers().get_one(name)
}

#[rocket::async_test]
async fn each_status_and_the_identity_headers() {
    let app = app().await;

    // Nobody signed in: 401 for nginx; for Caddy and Traefik, a browser goes to the login
    // page with rd, anything else gets 401.
    let none = ask(&app, "https://app.example.com/x").await;
    assert_eq!(none.status(), Status::Unauthorized);
    assert!(header(&none, "Remote-User").is_none());
    // A 401 with the way to the login page, for nginx's `error_page 401 =302`.
    let login = header(&none, "Location").unwrap();
    assert_eq!(query(login)["rd"], "https://app.example.com/x");
    assert!(login.starts_with(&format!("{PORTAL}/login?rd=")), "{login}");
    let browser = app
        .client
        .get("/authz/forward-auth")
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new("X-Forwarded-Host", "app.example.com"))
        .header(Header::new("X-Forwarded-Uri", "/docs/a%20b?x=1&y=2"))
        .header(Header::new("Accept", "text/html,application/xhtml+xml"))
        .dispatch()
        .await;
    assert_eq!(browser.status(), Status::Found);
    let location = header(&browser, "Location").unwrap().to_owned();
    assert!(location.starts_with(&format!("{PORTAL}/login?rd=")), "{location}");
    assert_eq!(query(&location)["rd"], "https://app.example.com/docs/a%20b?x=1&y=2");
    let script = app
        .client
        .get("/authz/forward-auth")
        .header(Header::new("X-Forwarded-Host", "app.example.com"))
        .header(Header::new("Accept", "application/json"))
        .dispatch()
        .await;
    assert_eq!(script.status(), Status::Unauthorized);

    app.sign_in("alice", PASSWORD).await;
    let ok = ask(&app, "https://app.example.com/x").await;
    assert_eq!(ok.status(), Status::Ok);
    assert_eq!(header(&ok, "Remote-User"), Some("alice"));
    assert_eq!(header(&ok, "Remote-Email"), Some("alice@example.com"));
    assert_eq!(header(&ok, "Remote-Groups"), Some(""));
    assert_eq!(header(&ok, "X-Auth-Request-User"), Some("alice"));
    assert_eq!(header(&ok, "X-Auth-Request-Email"), Some("alice@example.com"));
    assert!(header(&ok, "X-Portal-Assertion").is_none(), "off by default");
    assert!(header(&ok, "Set-Cookie").is_none(), "a check sets no cookie");

    // The rules: admins only; alice's path; segment boundaries; outside allowed_domains.
    assert_eq!(ask(&app, "https://admin.example.com/").await.status(), Status::Forbidden);
    assert_eq!(ask(&app, "https://app.example.com/finance/q3").await.status(), Status::Ok);
    assert_eq!(ask(&app, "https://wiki.other.test/").await.status(), Status::Ok, "the default: allow");
    assert_eq!(ask(&app, "https://evil.test/").await.status(), Status::Forbidden, "not an allowed domain");
    assert_eq!(
        ask(&app, "https://example.com/").await.status(),
        Status::Forbidden,
        "*.example.com is subdomains"
    );
    let no_target = app.client.get("/authz/auth-request").dispatch().await;
    assert_eq!(no_target.status(), Status::Forbidden, "a proxy that says nothing gets nothing");
    let refused = app
        .client
        .get("/authz/forward-auth")
        .header(Header::new("X-Forwarded-Host", "admin.example.com"))
        .header(Header::new("Accept", "text/html"))
        .dispatch()
        .await;
    assert_eq!(refused.status(), Status::Forbidden);
    assert!(
        refused.into_string().await.unwrap().contains("That request was refused."),
        "Caddy shows the page"
    );

    app.sign_in("bob", PASSWORD).await;
    assert_eq!(ask(&app, "https://app.example.com/finance").await.status(), Status::Forbidden);
    assert_eq!(ask(&app, "https://app.example.com/financement").await.status(), Status::Ok);
    for sneaky in [
        "https://app.example.com/public/../finance",
        "https://app.example.com/%66inance/x",
        "https://app.example.com/public/%2e%2e/finance",
        "https://APP.Example.com./finance",
    ] {
        assert_eq!(ask(&app, sneaky).await.status(), Status::Forbidden, "{sneaky}");
    }

    app.create_admin("root").await;
    app.sign_in("root", PASSWORD).await;
    let admin = ask(&app, "https://admin.example.com/").await;
    assert_eq!(admin.status(), Status::Ok);
    assert_eq!(header(&admin, "Remote-Groups"), Some("admins"));
}

/// `GET /authz/forward-auth` about `https://{host}{uri}`, as Caddy or Traefik asks;
/// `browser` sends the `Accept` of a navigation.
async fn ask_forward<'a>(app: &'a TestApp, host: &str, uri: &str, browser: bool) -> LocalResponse<'a> {
    let mut request = app
        .client
        .get("/authz/forward-auth")
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new("X-Forwarded-Host", host.to_owned()))
        .header(Header::new("X-Forwarded-Uri", uri.to_owned()));
    if browser {
        request = request.header(Header::new("Accept", "text/html"));
    }
    request.dispatch().await
}

#[rocket::async_test]
async fn an_anonymous_request_for_a_host_outside_allowed_domains_is_refused_not_sent_to_sign_in() {
    let app = app().await;
    for outside in ["evil.test", "example.com", "wiki.other.test.evil.test"] {
        let nginx = ask(&app, &format!("https://{outside}/x")).await;
        assert_eq!(nginx.status(), Status::Forbidden, "auth-request for {outside}");
        assert!(header(&nginx, "Location").is_none(), "no way to the login page for {outside}");
        for browser in [true, false] {
            let forward = ask_forward(&app, outside, "/x", browser).await;
            assert_eq!(
                forward.status(),
                Status::Forbidden,
                "forward-auth for {outside} (browser: {browser})"
            );
            assert!(header(&forward, "Location").is_none());
        }
    }
    let nothing = app.client.get("/authz/auth-request").dispatch().await;
    assert_eq!(nothing.status(), Status::Forbidden, "no target at all");

    // Inside, the anonymous answers stay as they were.
    assert_eq!(ask(&app, "https://app.example.com/x").await.status(), Status::Unauthorized);
    assert_eq!(ask_forward(&app, "app.example.com", "/x", true).await.status(), Status::Found);
    assert_eq!(ask_forward(&app, "wiki.other.test", "/x", false).await.status(), Status::Unauthorized);

    // With no allowed_domains, every check is refused, anonymous ones included.
    let ungated = TestApp::spawn_with(|f| f.merge(("public_url", PORTAL))).await;
    assert_eq!(ask(&ungated, "https://app.example.com/x").await.status(), Status::Forbidden);
    assert_eq!(ask_forward(&ungated, "app.example.com", "/x", true).await.status(), Status::Forbidden);
}

#[rocket::async_test]
async fn forged_forwarded_headers_do_not_reach_another_hosts_rule() {
    let app = app().await;
    app.sign_in("bob", PASSWORD).await;
    // nginx's documented snippet sets X-Original-URL itself: whatever the client put in
    // X-Forwarded-Host, the rule for the URL nginx names decides.
    let response = app
        .client
        .get("/authz/auth-request")
        .header(Header::new("X-Original-URL", "https://admin.example.com/"))
        .header(Header::new("X-Forwarded-Host", "app.example.com"))
        .header(Header::new("X-Forwarded-Uri", "/"))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Forbidden);
    // Caddy and Traefik never set X-Original-URL and pass the client's headers on: for
    // them it is the client's claim, and ignored. The host Caddy names decides.
    let response = app
        .client
        .get("/authz/forward-auth")
        .header(Header::new("X-Original-URL", "https://app.example.com/"))
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new("X-Forwarded-Host", "admin.example.com"))
        .header(Header::new("X-Forwarded-Uri", "/"))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Forbidden);
    let response = app
        .client
        .get("/authz/forward-auth")
        .header(Header::new("X-Original-URL", "https://app.example.com/"))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Forbidden, "nothing Caddy would set: no decision to allow");
    // A list of hosts (a client's value before the proxy's): the first one counts, as the
    // proxy's own value comes first when it overwrites and only it is trusted.
    let response = app
        .client
        .get("/authz/forward-auth")
        .header(Header::new("X-Forwarded-Host", "admin.example.com, app.example.com"))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Forbidden);
    // Userinfo, a bare path, another scheme: not a request the portal can decide on.
    for url in
        ["https://app.example.com@admin.example.com/", "/finance", "ftp://app.example.com/", "https://"]
    {
        let answer = ask(&app, url).await;
        assert_ne!(answer.status(), Status::Ok, "{url}");
    }
    assert_eq!(ask(&app, "https://app.example.com@admin.example.com/").await.status(), Status::Forbidden);
}

#[rocket::async_test]
async fn revocation_takes_effect_on_the_very_next_check() {
    let app = app().await;
    let url = "https://app.example.com/";

    let cookie = app.sign_in("alice", PASSWORD).await;
    assert_eq!(ask(&app, url).await.status(), Status::Ok);
    app.post_logout().await;
    let replay = app
        .client
        .get("/authz/auth-request")
        .header(Header::new("X-Original-URL", url))
        .cookie(cookie)
        .dispatch()
        .await;
    assert_eq!(replay.status(), Status::Unauthorized, "logout");

    let other_device = app.sign_in("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    let page = app.get("/logout").await.into_string().await.unwrap();
    let token = extract_hidden(&page, "csrf_token").unwrap();
    app.client
        .post("/logout/everywhere")
        .header(ContentType::Form)
        .body(form_body(&[("csrf_token", &token)]))
        .dispatch()
        .await;
    let replay = app
        .client
        .get("/authz/auth-request")
        .header(Header::new("X-Original-URL", url))
        .cookie(other_device)
        .dispatch()
        .await;
    assert_eq!(replay.status(), Status::Unauthorized, "sign out everywhere");

    let cookie = app.sign_in("bob", PASSWORD).await;
    assert_eq!(ask(&app, url).await.status(), Status::Ok);
    let bob = app.store().user_by_username("bob").await.unwrap().unwrap();
    app.auth().set_user_disabled(&portal::auth::admin::Operator::cli(), bob.id, true).await.unwrap();
    let replay = app
        .client
        .get("/authz/auth-request")
        .header(Header::new("X-Original-URL", url))
        .cookie(cookie)
        .dispatch()
        .await;
    assert_eq!(replay.status(), Status::Unauthorized, "disabled");
}

/// Signs in through the form with `rd` (and the token of the login page for `rd`); the
/// response's Location.
async fn sign_in_with_rd(app: &TestApp, rd: &str) -> String {
    let page = app.get(&format!("/login?rd={}", rocket::http::RawStr::new(rd).percent_encode())).await;
    let html = page.into_string().await.unwrap();
    let token = extract_hidden(&html, "csrf_token").unwrap();
    let fields = [("csrf_token", token.as_str()), ("username", "alice"), ("password", PASSWORD), ("rd", rd)];
    let response =
        app.client.post("/login").header(ContentType::Form).body(form_body(&fields)).dispatch().await;
    assert_eq!(response.status(), Status::SeeOther, "{rd:?}");
    let location = location(&response).unwrap().to_owned();
    app.post_logout().await;
    location
}

#[rocket::async_test]
async fn rd_returns_to_allowed_applications_only() {
    let app = app().await;
    let url = "https://app.example.com/docs?page=2";
    let page = app.get(&format!("/login?rd={}", rocket::http::RawStr::new(url).percent_encode())).await;
    // Chromium applies form-action to the redirect after the POST: the page allows rd's origin.
    let csp = header(&page, "Content-Security-Policy").unwrap().to_owned();
    assert!(csp.contains("form-action 'self' https://app.example.com;"), "{csp}");
    let html = page.into_string().await.unwrap();
    assert_eq!(extract_hidden(&html, "rd").as_deref(), Some(url), "the form carries rd");
    let plain = app.get("/login?rd=https%3A%2F%2Fevil.test%2F").await;
    assert!(header(&plain, "Content-Security-Policy").unwrap().contains("form-action 'self';"));
    assert_eq!(sign_in_with_rd(&app, url).await, url);
    assert_eq!(sign_in_with_rd(&app, "https://evil.test/").await, "/", "the portal's own page instead");

    // Already signed in: straight back.
    app.sign_in("alice", PASSWORD).await;
    let again = app.get(&format!("/login?rd={}", rocket::http::RawStr::new(url).percent_encode())).await;
    assert_is_redirect_to(&again, url);
    // Logout with rd: the page carries it, and the form goes there afterwards.
    let page = app.get("/logout?rd=https%3A%2F%2Fwiki.other.test%2F").await.into_string().await.unwrap();
    assert_eq!(extract_hidden(&page, "rd").as_deref(), Some("https://wiki.other.test/"));
    let token = extract_hidden(&page, "csrf_token").unwrap();
    let fields = [("csrf_token", token.as_str()), ("rd", "https://wiki.other.test/")];
    let out = app.client.post("/logout").header(ContentType::Form).body(form_body(&fields)).dispatch().await;
    assert_is_redirect_to(&out, "https://wiki.other.test/");
    assert_eq!(ask(&app, url).await.status(), Status::Unauthorized, "signed out");
    // Signed out now, so the signed-out token of this browser (the session's ended with it).
    let token = app.csrf_token().await;
    let fields = [("csrf_token", token.as_str()), ("rd", "https://evil.test/")];
    let out = app.client.post("/logout").header(ContentType::Form).body(form_body(&fields)).dispatch().await;
    assert_is_redirect_to(&out, "/");
}

#[rocket::async_test]
async fn the_open_redirect_corpus_never_leaves_the_allowed_domains_as_rd() {
    let app = TestApp::spawn_with(|f| {
        f.merge(("public_url", PORTAL))
            .merge(("forward_auth.allowed_domains", vec!["www.whitelisteddomain.tld"]))
    })
    .await;
    app.create_user("alice", PASSWORD).await;
    let corpus: Vec<String> = include_str!("../data/openredirects.txt").lines().map(str::to_owned).collect();
    assert!(corpus.len() > 500);
    let policy = app.auth().forward_policy();
    let mut followed = 0;
    for attack in &corpus {
        // Each as rd, as typed and once more decoded (as a proxy or browser might).
        for rd in [attack.clone(), rocket::http::RawStr::new(attack).percent_decode_lossy().into_owned()] {
            if let Some(to) = policy.redirect_target(&rd) {
                let parsed = url::Url::parse(&to).unwrap();
                assert_eq!(parsed.host_str(), Some("www.whitelisteddomain.tld"), "{rd:?} → {to}");
                assert!(parsed.username().is_empty() && parsed.password().is_none(), "{rd:?} → {to}");
                assert!(matches!(parsed.scheme(), "http" | "https"), "{rd:?} → {to}");
                followed += 1;
            }
        }
    }
    // And through the real form, for a sample of them (every tenth).
    for attack in corpus.iter().step_by(10) {
        let to = sign_in_with_rd(&app, attack).await;
        let stays = to == "/"
            || url::Url::parse(&to).is_ok_and(|u| u.host_str() == Some("www.whitelisteddomain.tld"));
        assert!(stays, "{attack:?} → {to}");
    }
    eprintln!("{followed} corpus entries were URLs on the allowed host itself");
}

#[rocket::async_test]
async fn rd_survives_the_oauth_round_trip() {
    let github = FakeGithub::start().await;
    let app = TestApp::spawn_with(|f| gated(github.figment(f))).await;
    let url = "https://app.example.com/after?x=1";
    let start =
        app.get(&format!("/login/github?rd={}", rocket::http::RawStr::new(url).percent_encode())).await;
    assert_eq!(start.status(), Status::SeeOther);
    let state = query(location(&start).unwrap())["state"].clone();
    github.token_ok().await;
    let back = app.get(&format!("/auth/github?code=c&state={state}")).await;
    assert_is_redirect_to(&back, url);
    let start = app.get("/login/github?rd=https%3A%2F%2Fevil.test%2F").await;
    let state = query(location(&start).unwrap())["state"].clone();
    let back = app.get(&format!("/auth/github?code=c&state={state}")).await;
    assert_is_redirect_to(&back, "/welcome");
    // The login page's provider buttons carry rd.
    app.post_logout().await;
    let page = app.get(&format!("/login?rd={}", rocket::http::RawStr::new(url).percent_encode())).await;
    let html = unescape_html(&page.into_string().await.unwrap());
    assert!(html.contains("href=\"/login/github?rd=https:%2F%2Fapp.example.com%2Fafter%3Fx%3D1\""), "{html}");
}

#[rocket::async_test]
async fn the_assertion_verifies_with_the_published_keys_and_only_as_issued() {
    use jsonwebtoken::{decode, decode_header, jwk::JwkSet, Algorithm, DecodingKey, Validation};
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (dir, db) = temp_db();
    // The clock an hour behind: the first assertion is already expired by the wall clock.
    let app =
        TestApp::spawn_at(dir, db, now - 3600, |f| gated(f).merge(("forward_auth.assertion", true))).await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    let first = ask(&app, "https://app.example.com/").await;
    assert_eq!(first.status(), Status::Ok);
    let stale = header(&first, "X-Portal-Assertion").expect("an assertion").to_owned();
    app.clock.advance(3600);
    app.sign_in("alice", PASSWORD).await;
    let fresh =
        header(&ask(&app, "https://app.example.com/").await, "X-Portal-Assertion").unwrap().to_owned();

    let jwks = app.get("/.well-known/jwks.json").await;
    assert_eq!(jwks.content_type(), Some(ContentType::JSON));
    let set: JwkSet = serde_json::from_str(&jwks.into_string().await.unwrap()).unwrap();
    assert_eq!(set.keys.len(), 1);
    let verify = |token: &str, audience: &str| {
        let kid = decode_header(token).unwrap().kid.unwrap();
        let jwk = set.find(&kid).expect("the key is published");
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[PORTAL]);
        validation.leeway = 0;
        decode::<serde_json::Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
    };
    let claims = verify(&fresh, "app.example.com").expect("verifies").claims;
    assert_eq!(claims["name"], "alice");
    assert_eq!(claims["groups"], json!([]));
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 60);
    assert!(verify(&stale, "app.example.com").is_err(), "expired");
    assert!(verify(&fresh, "other.example.com").is_err(), "another audience");
    let mut parts: Vec<String> = fresh.split('.').map(str::to_owned).collect();
    let payload = String::from_utf8(base64_url(&parts[1])).unwrap().replace("alice", "admin");
    parts[1] = base64_url_encode(payload.as_bytes());
    assert!(verify(&parts.join("."), "app.example.com").is_err(), "tampered");

    // Rotation: a new key signs; the old one stays published, so earlier tokens verify.
    let kid = app.auth().signer().rotate(app.auth().now()).await.unwrap().remove(0);
    app.clock.advance(61);
    let rotated =
        header(&ask(&app, "https://app.example.com/").await, "X-Portal-Assertion").unwrap().to_owned();
    assert_eq!(decode_header(&rotated).unwrap().kid.as_deref(), Some(kid.as_str()));
    let set2: JwkSet =
        serde_json::from_str(&app.get("/.well-known/jwks.json").await.into_string().await.unwrap()).unwrap();
    assert_eq!(set2.keys.len(), 2, "the retired key is still published");
    assert!(set2.find(&decode_header(&fresh).unwrap().kid.unwrap()).is_some());
}

fn base64_url(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
}

fn base64_url_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[rocket::async_test]
async fn the_session_cookie_covers_the_cookie_domain_and_the_rest_stay_host_only() {
    let app = TestApp::spawn_with(|f| {
        gated(f).merge(("session.cookie_domain", "Example.COM")).merge(("secure_cookies", true))
    })
    .await;
    app.create_user("alice", PASSWORD).await;
    let response = app.post_login("alice", PASSWORD).await;
    let cookies: Vec<String> = response.headers().get("Set-Cookie").map(str::to_owned).collect();
    let session = cookies.iter().find(|c| c.starts_with("__Secure-portal_session=")).expect("{cookies:?}");
    assert!(session.contains("Domain=example.com") && session.contains("Secure"), "{session}");
    let csrf = cookies.iter().find(|c| c.starts_with("__Host-portal_csrf=")).expect("{cookies:?}");
    assert!(!csrf.contains("Domain="), "{csrf}");
    // The shared cookie is the one the guard reads.
    assert_eq!(ask(&app, "https://app.example.com/").await.status(), Status::Ok);

    let plain = TestApp::spawn_with(|f| gated(f).merge(("session.cookie_domain", "example.com"))).await;
    plain.create_user("alice", PASSWORD).await;
    let response = plain.post_login("alice", PASSWORD).await;
    let set: Vec<String> = response.headers().get("Set-Cookie").map(str::to_owned).collect();
    assert!(
        set.iter().any(|c| c.starts_with("portal_session=") && c.contains("Domain=example.com")),
        "{set:?}"
    );
}

#[rocket::async_test]
async fn bad_forward_auth_settings_stop_startup_with_one_line() {
    for configure in [
        (|f: Figment| f.merge(("forward_auth.allowed_domains", vec!["*.example.com"])))
            as fn(Figment) -> Figment,
        |f| f.merge(("public_url", PORTAL)).merge(("forward_auth.allowed_domains", vec!["a b"])),
        |f| {
            f.merge(("public_url", PORTAL))
                .merge(("forward_auth", json!({ "rules": [{ "host": "x.*.com" }] })))
        },
        |f| {
            f.merge(("public_url", PORTAL)).merge((
                "forward_auth",
                json!({ "rules": [{ "host": "a.example.com", "path": "/public/%2e%2e/finance" }] }),
            ))
        },
        |f| {
            f.merge(("public_url", PORTAL)).merge((
                "forward_auth",
                json!({ "rules": [{ "host": "a.example.com", "path": "/finance", "case_sensitive": "yes" }] }),
            ))
        },
        |f| f.merge(("public_url", PORTAL)).merge(("session.cookie_domain", "elsewhere.test")),
        |f| f.merge(("session.cookie_domain", "localhost")),
    ] {
        let (_dir, db) = temp_db();
        let figment = configure(test_figment(&db, &portal_testkit::secret_key()));
        let started =
            rocket::local::asynchronous::Client::untracked(portal::rocket_with(figment, Default::default()))
                .await;
        match started {
            Ok(_) => panic!("startup should stop"),
            // Rocket's error panics on drop unless looked at.
            Err(e) => assert!(matches!(e.kind(), rocket::error::ErrorKind::FailedFairings(_)), "{e:?}"),
        }
    }
}

#[rocket::async_test]
async fn with_a_shared_cookie_only_the_portals_own_origin_may_post_its_forms() {
    let app = TestApp::spawn_with(|f| gated(f).merge(("session.cookie_domain", "example.com"))).await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    let page = app.get("/logout").await.into_string().await.unwrap();
    let token = extract_hidden(&page, "csrf_token").unwrap();
    // A sibling subdomain receives the session cookie, but its pages cannot post the
    // portal's forms: same-site is not same-origin.
    for origin in ["https://app.example.com", "https://evil.example.com", "http://auth.example.com"] {
        let response = app
            .client
            .post("/logout")
            .header(ContentType::Form)
            .header(Header::new("Origin", origin))
            .body(form_body(&[("csrf_token", &token)]))
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Forbidden, "{origin}");
    }
    assert_eq!(ask(&app, "https://app.example.com/").await.status(), Status::Ok, "still signed in");
    let response = app
        .client
        .post("/logout")
        .header(ContentType::Form)
        .header(Header::new("Origin", PORTAL))
        .body(form_body(&[("csrf_token", &token)]))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::SeeOther);
}

/// Spellings of `/finance` that the most lenient backends read as `/finance` (merged
/// slashes, one decoding, dot segments, `;` parameters, case): decided on as `/finance`.
const READ_AS_FINANCE: [&str; 15] = [
    "/finance",
    "//finance",
    "///finance/q3",
    "/./finance",
    "/%66inance",
    "/%2e/finance",
    "/x/../finance",
    "/x/%2e%2e/finance",
    "/finance;x",
    "/finance%3bx",
    "/;x/finance",
    "/Finance",
    "/FINANCE/q3",
    "/finance?x",
    "/finance/?x=/../public",
];

/// Spellings that backends read in ways no prefix can follow: refused on a host with path
/// rules, whoever asks.
const AMBIGUOUS: [&str; 23] = [
    "/x/..%2ffinance",
    "/%2ffinance",
    "/%2Ffinance",
    "/finance.",
    "/finance..",
    "/finance%2e",
    "/finance%20",
    "/finance%20/q3",
    "/finance%00",
    "/finance%09",
    "/\\finance",
    "/%5cfinance",
    "/%5Cfinance",
    "/%2566inance",
    "/%u0066inance",
    "/finance%zz",
    "/finance%c0%af",
    "/finance.;x",
    "/x#/../finance",
    "/public/a%2fb",
    "/public/a.",
    "/finance::$DATA",
    "/FINANC~1",
];

/// Paths the `/finance` rule does not cover, which everyone signed in may reach.
const ELSEWHERE: [&str; 6] =
    ["/", "/financial", "/public/a.css", "/caf%C3%A9", "/docs/a%20b?x=%2f", "/x/../public"];

/// The statuses both endpoints answer for `uri` on app.example.com, as the client now is.
async fn statuses(app: &TestApp, uri: &str) -> (Status, Status) {
    let nginx = ask(app, &format!("https://app.example.com{uri}")).await.status();
    let caddy = ask_forward(app, "app.example.com", uri, true).await.status();
    (nginx, caddy)
}

#[rocket::async_test]
async fn no_spelling_of_a_protected_path_lets_dave_through_either_endpoint() {
    let app = app().await;
    app.create_user("dave", PASSWORD).await;
    app.sign_in("dave", PASSWORD).await;

    for uri in READ_AS_FINANCE.iter().chain(&AMBIGUOUS) {
        let answers = statuses(&app, uri).await;

        assert_eq!(answers, (Status::Forbidden, Status::Forbidden), "dave, {uri}");
    }
    for uri in ELSEWHERE {
        assert_eq!(statuses(&app, uri).await, (Status::Ok, Status::Ok), "dave, {uri}");
    }
}

#[rocket::async_test]
async fn alice_reaches_every_plain_spelling_of_her_path_and_no_ambiguous_one() {
    let app = app().await;
    app.sign_in("alice", PASSWORD).await;

    for uri in READ_AS_FINANCE.iter().chain(&ELSEWHERE) {
        assert_eq!(statuses(&app, uri).await, (Status::Ok, Status::Ok), "alice, {uri}");
    }
    for uri in AMBIGUOUS {
        assert_eq!(statuses(&app, uri).await, (Status::Forbidden, Status::Forbidden), "alice, {uri}");
    }
}

#[rocket::async_test]
async fn signed_out_an_ambiguous_path_is_refused_rather_than_sent_to_sign_in() {
    let app = app().await;

    for uri in AMBIGUOUS {
        let answers = statuses(&app, uri).await;

        assert_eq!(answers, (Status::Forbidden, Status::Forbidden), "signed out, {uri}");
    }
    for uri in READ_AS_FINANCE.iter().chain(&ELSEWHERE) {
        assert_eq!(statuses(&app, uri).await, (Status::Unauthorized, Status::Found), "signed out, {uri}");
    }
    // Hosts without path rules take any path: nothing there depends on how it is read.
    let wiki = ask(&app, "https://wiki.other.test/a%2fb.").await;
    assert_eq!(wiki.status(), Status::Unauthorized);
    assert_eq!(query(header(&wiki, "Location").unwrap())["rd"], "https://wiki.other.test/a%2fb.");
    app.sign_in("bob", PASSWORD).await;
    assert_eq!(ask(&app, "https://wiki.other.test/a%2fb.").await.status(), Status::Ok);
}

#[rocket::async_test]
async fn the_port_in_the_original_url_is_kept_for_rd_and_no_part_of_the_rules() {
    let app = app().await;

    // nginx's snippet sends `$scheme://$host:$server_port`: a default port is dropped.
    let plain = ask(&app, "http://app.example.com:80/docs?x=1").await;
    assert_eq!(query(header(&plain, "Location").unwrap())["rd"], "http://app.example.com/docs?x=1");
    let other = ask(&app, "https://app.example.com:8443/docs").await;
    assert_eq!(query(header(&other, "Location").unwrap())["rd"], "https://app.example.com:8443/docs");

    app.sign_in("bob", PASSWORD).await;
    assert_eq!(ask(&app, "https://admin.example.com:8443/").await.status(), Status::Forbidden);
    assert_eq!(ask(&app, "http://admin.example.com:80/").await.status(), Status::Forbidden);
    assert_eq!(ask(&app, "https://app.example.com:8443/finance").await.status(), Status::Forbidden);
    assert_eq!(ask(&app, "https://app.example.com:8443/docs").await.status(), Status::Ok);
}
