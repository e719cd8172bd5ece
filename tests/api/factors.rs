//! A second factor: setting up an authenticator app, the two-step sign-in and its half-done
//! state, the code window and replay, the throttle, recovery codes, the policy, forward-auth's
//! `second_factor` rule, the administrator's reset, bad input, and what survives a restart of
//! the real binary.

use rocket::figment::Figment;
use rocket::http::{ContentType, Header, Status};
use serde_json::json;
use tempfile::TempDir;

use portal::auth::factors::totp::{code_at, step_of, PERIOD};
use portal::clock::Clock;
use portal_testkit::app::*;
use portal_testkit::PASSWORD;

/// The base32 secret the setup page shows, as bytes.
fn secret_of(page: &str) -> Vec<u8> {
    let marker = "id=\"totp-secret\">";
    let start = page.find(marker).unwrap_or_else(|| panic!("no secret on {page}")) + marker.len();
    let end = start + page[start..].find("</code>").unwrap();
    totp_rs::Secret::Encoded(page[start..end].to_owned()).to_bytes().unwrap()
}

/// The code an app shows at `now`.
fn code(secret: &[u8], now: i64) -> String {
    code_at(secret, step_of(now)).unwrap()
}

/// The recovery codes a page lists, each in its `<li>` inside `id="recovery-codes"`.
fn recovery_codes(page: &str) -> Vec<String> {
    let start = page.find("id=\"recovery-codes\">").unwrap_or_else(|| panic!("no codes on {page}"));
    let end = start + page[start..].find("</ul>").unwrap();
    page[start..end]
        .split("<li>")
        .skip(1)
        .map(|li| li.trim_start_matches("<code>").split("</code>").next().unwrap().to_owned())
        .collect()
}

/// Sets up an app for whoever this client is signed in as: its secret and the recovery codes.
async fn enrol(app: &TestApp) -> (Vec<u8>, Vec<String>) {
    let start = app.post_form("/account/totp", &[]).await;
    assert_is_redirect_to(&start, "/account/totp");
    let page = body(app.get("/account/totp").await).await;
    let secret = secret_of(&page);
    let now = app.clock.now();
    let confirmed = app.post_form("/account/totp/confirm", &[("code", &code(&secret, now))]).await;
    assert_eq!(confirmed.status(), Status::Ok);
    let codes = recovery_codes(&body(confirmed).await);
    (secret, codes)
}

/// A user with an app, signed out again: the app's secret and the recovery codes.
async fn user_with_app(app: &TestApp, name: &str) -> (Vec<u8>, Vec<String>) {
    app.create_user(name, PASSWORD).await;
    app.sign_in(name, PASSWORD).await;
    let enrolled = enrol(app).await;
    // The code just used is spent: later steps in a test start a step later.
    app.clock.advance(PERIOD);
    assert_is_redirect_to(&app.post_logout().await, "/");
    enrolled
}

async fn me(app: &TestApp) -> (Status, serde_json::Value) {
    let response = app.get("/api/me").await;
    let status = response.status();
    (status, response.into_json().await.unwrap_or_default())
}

#[rocket::async_test]
async fn setting_up_an_app_shows_a_qr_code_the_secret_and_the_uri_and_only_a_right_code_turns_it_on() {
    let app = TestApp::spawn().await;
    let alice = app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    let account = body(app.get("/account").await).await;
    assert!(account.contains("Set up an authenticator app"), "{account}");
    assert_is_redirect_to(&app.post_form("/account/totp", &[]).await, "/account/totp");
    let page = body(app.get("/account/totp").await).await;
    assert!(page.contains("<svg") && page.contains("<path d=\"M4 4h1v1h-1z"), "a QR code drawn inline");
    let secret = secret_of(&page);
    assert_eq!(secret.len(), 20, "160 bits");
    let unescaped = unescape_html(&page);
    let base32 = totp_rs::Secret::Raw(secret.clone()).to_encoded().to_string();
    assert!(
        unescaped.contains(&format!("href=\"otpauth://totp/Portal:alice?secret={base32}&issuer=Portal\"")),
        "{unescaped}"
    );
    // The page is shown again with the same secret until it is confirmed.
    assert_eq!(secret_of(&body(app.get("/account/totp").await).await), secret);

    let now = app.clock.now();
    let wrong = if code(&secret, now) == "000000" { "111111" } else { "000000" };
    let refused = app.post_form("/account/totp/confirm", &[("code", wrong)]).await;
    assert_eq!(refused.status(), Status::Ok);
    assert!(body(refused).await.contains("That code is not right."));
    assert!(!app.store().factors_of(alice.id).await.unwrap().totp, "a wrong code turns nothing on");

    let confirmed = app.post_form("/account/totp/confirm", &[("code", &code(&secret, now))]).await;
    assert_eq!(confirmed.status(), Status::Ok);
    assert_eq!(confirmed.headers().get_one("Cache-Control"), Some("no-store"));
    let codes = recovery_codes(&body(confirmed).await);
    assert_eq!(codes.len(), 10);
    let factors = app.store().factors_of(alice.id).await.unwrap();
    assert!(factors.totp && factors.recovery_left == 10, "{factors:?}");
    // Sealed, never in plain text; the codes are hashed.
    let row = app.store().totp_of(alice.id).await.unwrap().unwrap();
    assert!(row.sealed_secret.starts_with("v1.") && !row.sealed_secret.contains(&base32));
    let events = format!("{:?}", app.events().await);
    for c in &codes {
        assert!(!events.contains(c.as_str()));
    }
    assert!(events.contains("second_factor_added"), "{events}");
    let account = body(app.get("/account").await).await;
    assert!(account.contains("On: a 6-digit code from your app.") && account.contains("10 of 10 left"));
}

#[rocket::async_test]
async fn a_password_alone_leads_to_the_second_step_and_opens_nothing_until_it_is_done() {
    let app = TestApp::spawn_with(money_rule).await;
    let (secret, _) = user_with_app(&app, "alice").await;
    let first =
        app.post_login_form(&[("username", "alice"), ("password", PASSWORD), ("next", "/account")]).await;
    assert_eq!(first.status(), Status::SeeOther);
    assert_eq!(location(&first), Some("/login/second-factor"));
    assert!(session_cookie(&first).is_none_or(|c| c.value().is_empty()), "no session yet");
    drop(first);

    // Signed out everywhere until the second step.
    assert_eq!(app.get("/welcome").await.status(), Status::SeeOther);
    assert_eq!(me(&app).await.0, Status::Unauthorized);
    let gate = app
        .client
        .get("/authz/auth-request")
        .header(Header::new("X-Original-URL", "https://app.example.com/"))
        .dispatch()
        .await;
    assert_eq!(gate.status(), Status::Unauthorized);
    assert!(gate.headers().get_one("Location").unwrap().contains("/login?rd="), "to the login page");
    drop(gate);
    let page = body(app.get("/login/second-factor").await).await;
    assert!(
        page.contains("Signing in as <strong>alice</strong>") && page.contains("name=\"code\""),
        "{page}"
    );

    let done = app.post_form("/login/second-factor", &[("code", &code(&secret, app.clock.now()))]).await;
    assert_is_redirect_to(&done, "/account");
    let (status, me) = me(&app).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(me["aal"], 2);
    assert_eq!(me["second_factor"], true);
    assert_eq!(me["methods"], json!(["pwd", "otp"]));
    let sessions = body(app.get("/account").await).await;
    assert!(sessions.contains("Password + authenticator app"), "the session list shows the methods");
}

#[rocket::async_test]
async fn a_code_is_right_one_step_either_side_and_never_twice() {
    let app = TestApp::spawn().await;
    let (secret, _) = user_with_app(&app, "alice").await;
    let sign_in_with = |code: String| {
        let app = &app;
        async move {
            assert_eq!(app.post_login("alice", PASSWORD).await.status(), Status::SeeOther);
            let done = app.post_form("/login/second-factor", &[("code", &code)]).await;
            let ok = done.status() == Status::SeeOther;
            drop(done);
            if ok {
                app.post_logout().await;
            }
            ok
        }
    };
    let now = app.clock.now();
    // Two steps ahead and two behind are refused.
    assert!(!sign_in_with(code(&secret, now + 2 * PERIOD)).await);
    assert!(!sign_in_with(code(&secret, now - 2 * PERIOD)).await);
    // The next step's code works now (a fast clock) ...
    assert!(sign_in_with(code(&secret, now + PERIOD)).await);
    // ... and once it was used, neither it nor an older one works again.
    assert!(!sign_in_with(code(&secret, now + PERIOD)).await, "replayed");
    assert!(!sign_in_with(code(&secret, now)).await, "older than the last one used");
    app.clock.advance(3 * PERIOD);
    // A slow clock: the previous step's code, unused, works.
    assert!(sign_in_with(code(&secret, app.clock.now() - PERIOD)).await);
    let events = format!("{:?}", app.events().await);
    assert!(events.contains("second_factor_failed"), "{events}");
}

#[rocket::async_test]
async fn wrong_codes_count_against_the_password_throttle() {
    let app = TestApp::spawn().await;
    let (secret, _) = user_with_app(&app, "alice").await;
    assert_eq!(app.post_login("alice", PASSWORD).await.status(), Status::SeeOther);
    let right = code(&secret, app.clock.now());
    let wrong = if right == "123456" { "654321" } else { "123456" };
    for _ in 0..5 {
        assert_eq!(app.post_form("/login/second-factor", &[("code", wrong)]).await.status(), Status::Ok);
    }
    let throttled = app.post_form("/login/second-factor", &[("code", &right)]).await;
    assert_eq!(throttled.status(), Status::TooManyRequests, "even the right code waits");
    // The same budget as passwords: the next password attempt waits too.
    drop(throttled);
    assert_eq!(app.post_login("alice", PASSWORD).await.status(), Status::TooManyRequests);
}

#[rocket::async_test]
async fn a_recovery_code_signs_in_once() {
    let app = TestApp::spawn().await;
    let (_, codes) = user_with_app(&app, "alice").await;
    assert_eq!(app.post_login("alice", PASSWORD).await.status(), Status::SeeOther);
    // Typed generously: upper case, spaces for dashes.
    let typed = codes[3].to_uppercase().replace('-', " ");
    assert_is_redirect_to(&app.post_form("/login/second-factor", &[("code", &typed)]).await, "/");
    let (_, me) = me(&app).await;
    assert_eq!(me["methods"], json!(["pwd", "recovery"]));
    assert_eq!(me["aal"], 2);
    app.post_logout().await;
    assert_eq!(app.post_login("alice", PASSWORD).await.status(), Status::SeeOther);
    let again = app.post_form("/login/second-factor", &[("code", &codes[3])]).await;
    assert_eq!(again.status(), Status::Ok);
    assert!(body(again).await.contains("That code is not right."), "used up");
    let events = format!("{:?}", app.events().await);
    assert!(events.contains("recovery_code_used") && !events.contains(&codes[3]), "{events}");
}

#[rocket::async_test]
async fn the_half_done_sign_in_lasts_five_minutes_and_keeps_rd() {
    let app = TestApp::spawn_with(|f| {
        f.merge(("public_url", "https://auth.example.com"))
            .merge(("forward_auth", json!({ "allowed_domains": ["app.example.com"] })))
    })
    .await;
    let (secret, _) = user_with_app(&app, "alice").await;
    let rd = "https://app.example.com/books?page=2";
    let first = app.post_login_form(&[("username", "alice"), ("password", PASSWORD), ("rd", rd)]).await;
    assert_eq!(location(&first), Some("/login/second-factor"));
    drop(first);
    app.clock.advance(5 * 60);
    let late = app.post_form("/login/second-factor", &[("code", &code(&secret, app.clock.now()))]).await;
    assert_is_redirect_to(&late, "/login");
    drop(late);
    assert!(app.flash("/login").await.contains("That took too long"));
    assert_eq!(me(&app).await.0, Status::Unauthorized);

    app.clock.advance(PERIOD);
    assert_eq!(
        app.post_login_form(&[("username", "alice"), ("password", PASSWORD), ("rd", rd)]).await.status(),
        Status::SeeOther
    );
    app.clock.advance(4 * 60);
    let done = app.post_form("/login/second-factor", &[("code", &code(&secret, app.clock.now()))]).await;
    assert_is_redirect_to(&done, rd);
}

#[rocket::async_test]
async fn bad_codes_get_a_form_error_or_a_4xx_never_a_5xx() {
    let app = TestApp::spawn().await;
    user_with_app(&app, "alice").await;
    assert_eq!(app.post_login("alice", PASSWORD).await.status(), Status::SeeOther);
    for (typed, status, says) in [
        ("12345", Status::UnprocessableEntity, "A code is 6 digits"),
        ("12a456", Status::UnprocessableEntity, "A code is 6 digits"),
        ("", Status::UnprocessableEntity, "Enter the 6-digit code"),
        ("<script>alert(1)</script>", Status::UnprocessableEntity, "A code is 6 digits"),
    ] {
        let response = app.post_form("/login/second-factor", &[("code", typed)]).await;
        assert_eq!(response.status(), status, "{typed:?}");
        let page = body(response).await;
        assert!(page.contains(says), "{typed:?}: {page}");
        assert!(!page.contains("<script>alert"), "escaped");
    }
    let huge = "1".repeat(1 << 20);
    let response = app.post_form("/login/second-factor", &[("code", &huge)]).await;
    assert!(response.status().code >= 400 && response.status().code < 500, "{}", response.status());
    let no_token = app
        .client
        .post("/login/second-factor")
        .header(ContentType::Form)
        .body("code=123456")
        .dispatch()
        .await;
    assert!(no_token.status().code < 500);
}

fn everyone_needs_one(f: Figment) -> Figment {
    f.merge(("second_factor", json!({ "required": "everyone" })))
}

#[rocket::async_test]
async fn when_the_policy_requires_one_the_first_sign_in_leads_to_setup_first() {
    let app = TestApp::spawn_with(everyone_needs_one).await;
    let bob = app.create_user("bob", PASSWORD).await;
    let first =
        app.post_login_form(&[("username", "bob"), ("password", PASSWORD), ("next", "/account")]).await;
    assert_eq!(location(&first), Some("/login/second-factor/setup"));
    drop(first);
    assert_eq!(app.get("/welcome").await.status(), Status::SeeOther, "nothing opens before setup");
    assert_eq!(me(&app).await.0, Status::Unauthorized);
    let page = body(app.get("/login/second-factor/setup").await).await;
    assert!(page.contains("This site asks for a second step"), "{page}");
    let secret = secret_of(&page);
    let done =
        app.post_form("/login/second-factor/setup", &[("code", &code(&secret, app.clock.now()))]).await;
    assert_eq!(done.status(), Status::Ok);
    let page = body(done).await;
    assert_eq!(recovery_codes(&page).len(), 10);
    assert!(page.contains("href=\"&#x2f;account\""), "continue goes to next: {page}");
    let (status, me) = me(&app).await;
    assert_eq!((status, me["aal"].clone()), (Status::Ok, json!(2)));
    assert!(app.store().factors_of(bob.id).await.unwrap().totp);
}

#[rocket::async_test]
async fn the_admins_policy_leaves_other_users_with_one_step() {
    let app = TestApp::spawn_with(|f| f.merge(("second_factor", json!({ "required": "admins" })))).await;
    app.create_user("bob", PASSWORD).await;
    app.create_admin("root").await;
    assert_eq!(location(&app.post_login("bob", PASSWORD).await), Some("/"));
    app.post_logout().await;
    assert_eq!(location(&app.post_login("root", PASSWORD).await), Some("/login/second-factor/setup"));
}

#[rocket::async_test]
async fn requiring_a_second_factor_without_secret_key_stops_startup() {
    // No secret_key (a debug build's random one): nothing to seal app secrets under.
    let figment = everyone_needs_one(portal::figment().merge(("databases.portal.url", "sqlite::memory:")));
    let error = portal::config::Settings::from_figment(&figment).unwrap_err();
    assert!(error.contains("second_factor.required needs secret_key"), "{error}");
}

/// `app.example.com/money` asks for a second factor.
fn money_rule(f: Figment) -> Figment {
    f.merge(("public_url", "https://auth.example.com")).merge((
        "forward_auth",
        json!({
            "allowed_domains": ["app.example.com"],
            "assertion": true,
            "rules": [
                { "host": "app.example.com", "path": "/money", "second_factor": true },
            ],
        }),
    ))
}

#[rocket::async_test]
async fn a_second_factor_rule_sends_a_one_step_session_to_the_second_step_and_then_lets_it_through() {
    let app = TestApp::spawn_with(money_rule).await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    let ask = |url: &'static str| {
        app.client.get("/authz/auth-request").header(Header::new("X-Original-URL", url)).dispatch()
    };
    let open = ask("https://app.example.com/news").await;
    assert_eq!(open.status(), Status::Ok);
    assert_eq!(open.headers().get_one("Remote-Auth-Level"), Some("1"));
    drop(open);
    let short = ask("https://app.example.com/money/q3").await;
    assert_eq!(short.status(), Status::Unauthorized);
    let to = short.headers().get_one("Location").unwrap().to_owned();
    assert!(to.starts_with("https://auth.example.com/login/second-factor?rd="), "{to}");
    assert_eq!(portal_testkit::fakes::query(&to)["rd"], "https://app.example.com/money/q3");
    drop(short);
    let browser = app
        .client
        .get("/authz/forward-auth")
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new("X-Forwarded-Host", "app.example.com"))
        .header(Header::new("X-Forwarded-Uri", "/money/q3"))
        .header(Header::new("Accept", "text/html"))
        .dispatch()
        .await;
    assert_eq!(browser.status(), Status::Found);
    assert_eq!(browser.headers().get_one("Location"), Some(to.as_str()));
    drop(browser);

    // No second factor yet: the step sends the person to set one up.
    let step = app.get("/login/second-factor?rd=https://app.example.com/money/q3").await;
    assert_is_redirect_to(&step, "/account");
    drop(step);
    let (secret, _) = enrol(&app).await;
    app.clock.advance(PERIOD);
    // Setting one up does not raise this session: the step does.
    assert_eq!(ask("https://app.example.com/money/q3").await.status(), Status::Unauthorized);
    let page = body(app.get("/login/second-factor?rd=https://app.example.com/money/q3").await).await;
    assert!(page.contains("This application asks for a second step"), "{page}");
    let before = me(&app).await.1["id"].clone();
    let done = app
        .post_form(
            "/login/second-factor",
            &[("code", &code(&secret, app.clock.now())), ("rd", "https://app.example.com/money/q3")],
        )
        .await;
    assert_is_redirect_to(&done, "https://app.example.com/money/q3");
    drop(done);
    let through = ask("https://app.example.com/money/q3").await;
    assert_eq!(through.status(), Status::Ok);
    assert_eq!(through.headers().get_one("Remote-Auth-Level"), Some("2"));
    let jwt = through.headers().get_one("X-Portal-Assertion").unwrap();
    let claims = jwt.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap())
            .unwrap();
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    assert_eq!(claims["acr"], "aal2");
    assert_eq!(me(&app).await.1["id"], before, "the same person, in a new session");
    let sessions: serde_json::Value = app.get("/api/sessions").await.into_json().await.unwrap();
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1, "the one-step session ended: {sessions}");
}

#[rocket::async_test]
async fn an_admin_reset_removes_every_factor_is_audited_and_the_person_is_told() {
    let app = TestApp::spawn().await;
    let (_, codes) = user_with_app(&app, "alice").await;
    let alice = app.store().user_by_username("alice").await.unwrap().unwrap();
    let root = app.create_admin("root").await;
    app.sign_in("root", PASSWORD).await;
    let page = body(app.get(&format!("/admin/users/{}", alice.id)).await).await;
    assert!(page.contains("authenticator app, 10 recovery codes left"), "{page}");
    let unconfirmed = app.post_form(&format!("/admin/users/{}/second-factor/reset", alice.id), &[]).await;
    assert_is_redirect_to(&unconfirmed, &format!("/admin/users/{}", alice.id));
    drop(unconfirmed);
    assert!(app.store().factors_of(alice.id).await.unwrap().totp, "nothing without the box ticked");
    let reset =
        app.post_form(&format!("/admin/users/{}/second-factor/reset", alice.id), &[("confirm", "yes")]).await;
    assert_eq!(reset.status(), Status::SeeOther);
    drop(reset);
    let factors = app.store().factors_of(alice.id).await.unwrap();
    assert_eq!(factors, portal::store::Factors::default());
    let (kind, actor, subject) = app.last_event().await;
    assert_eq!((kind.as_str(), actor, subject), ("second_factor_reset", root.id.to_string(), Some(alice.id)));
    // Not one's own: that is the account page's.
    let own =
        app.post_form(&format!("/admin/users/{}/second-factor/reset", root.id), &[("confirm", "yes")]).await;
    drop(own);
    let (kind, _, subject) = app.last_event().await;
    assert_eq!(
        (kind.as_str(), subject),
        ("second_factor_reset", Some(alice.id)),
        "nothing more reset or audited"
    );
    app.post_logout().await;

    // A password alone signs alice in now, and she is told why.
    let signed_in = app.post_login("alice", PASSWORD).await;
    assert_eq!(location(&signed_in), Some("/"));
    drop(signed_in);
    let told = app.flash("/").await;
    assert!(told.contains("An administrator removed your second factors"), "{told}");
    app.post_logout().await;
    app.post_login("alice", PASSWORD).await;
    assert!(!app.flash("/").await.contains("administrator"), "told once");
    // Her recovery codes went with the reset: none is left to type.
    assert_eq!(app.store().factors_of(alice.id).await.unwrap().recovery_left, 0);
    assert_eq!(codes.len(), 10);
}

#[rocket::async_test]
async fn the_api_resets_a_users_second_factor() {
    let app = TestApp::spawn().await;
    user_with_app(&app, "alice").await;
    let alice = app.store().user_by_username("alice").await.unwrap().unwrap();
    app.create_admin("root").await;
    app.sign_in("root", PASSWORD).await;
    let uri = format!("/api/admin/users/{}/second-factor", alice.id);
    let cross = app.client.delete(uri.clone()).dispatch().await;
    assert_eq!(cross.status(), Status::Forbidden, "same-origin only");
    drop(cross);
    let response = app.client.delete(uri.clone()).header(same_origin()).dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    let removed: serde_json::Value = response.into_json().await.unwrap();
    assert_eq!(removed, json!({ "totp": true, "passkeys": 0, "recovery_codes": 10 }));
    let again: serde_json::Value =
        app.client.delete(uri).header(same_origin()).dispatch().await.into_json().await.unwrap();
    assert_eq!(again, json!({ "totp": false, "passkeys": 0, "recovery_codes": 0 }));
    let missing =
        app.client.delete("/api/admin/users/9999/second-factor").header(same_origin()).dispatch().await;
    assert_eq!(missing.status(), Status::NotFound);
}

#[rocket::async_test]
async fn new_recovery_codes_need_a_fresh_sign_in_and_replace_the_old_ones() {
    let app = TestApp::spawn().await;
    let (secret, old) = user_with_app(&app, "alice").await;
    app.post_login("alice", PASSWORD).await;
    app.post_form("/login/second-factor", &[("code", &code(&secret, app.clock.now()))]).await;
    app.clock.advance(11 * 60);
    let stale = app.post_form("/account/recovery-codes", &[]).await;
    assert_is_redirect_to(&stale, "/account");
    drop(stale);
    assert!(app.flash("/account").await.contains("sign in again"));
    app.post_logout().await;
    app.post_login("alice", PASSWORD).await;
    assert_is_redirect_to(&app.post_form("/login/second-factor", &[("code", &old[0])]).await, "/");
    let fresh = app.post_form("/account/recovery-codes", &[]).await;
    assert_eq!(fresh.status(), Status::Ok);
    let new = recovery_codes(&body(fresh).await);
    assert_eq!(new.len(), 10);
    app.post_logout().await;
    app.post_login("alice", PASSWORD).await;
    assert_eq!(
        app.post_form("/login/second-factor", &[("code", &old[1])]).await.status(),
        Status::Ok,
        "old ones are gone"
    );
    assert_is_redirect_to(&app.post_form("/login/second-factor", &[("code", &new[1])]).await, "/");
}

#[rocket::async_test]
async fn removing_the_app_needs_a_fresh_sign_in_and_takes_the_codes_with_it() {
    let app = TestApp::spawn().await;
    let (secret, _) = user_with_app(&app, "alice").await;
    let alice = app.store().user_by_username("alice").await.unwrap().unwrap();
    app.post_login("alice", PASSWORD).await;
    app.post_form("/login/second-factor", &[("code", &code(&secret, app.clock.now()))]).await;
    app.clock.advance(11 * 60);
    drop(app.post_form("/account/totp/remove", &[]).await);
    assert!(app.store().factors_of(alice.id).await.unwrap().totp, "not after ten minutes");
    app.post_logout().await;
    app.clock.advance(PERIOD);
    app.post_login("alice", PASSWORD).await;
    app.post_form("/login/second-factor", &[("code", &code(&secret, app.clock.now()))]).await;
    assert_is_redirect_to(&app.post_form("/account/totp/remove", &[]).await, "/account");
    assert_eq!(app.store().factors_of(alice.id).await.unwrap(), portal::store::Factors::default());
    let events = format!("{:?}", app.events().await);
    assert!(events.contains("second_factor_removed"));
    app.post_logout().await;
    assert_eq!(location(&app.post_login("alice", PASSWORD).await), Some("/"), "one step again");
}

/// The real binary: an app set up and a recovery code used survive a crash and a restart
/// (the replayed code and the used recovery code stay refused); a half-done sign-in is this
/// browser's alone; and the CLI's reset, against the same store, is seen by the server.
#[rocket::async_test]
async fn the_real_binary_keeps_the_app_and_the_used_codes_across_a_restart_and_sees_the_clis_reset() {
    use portal_testkit::process::{free_port, Launch};
    use portal_testkit::visitor::Browser;
    let home = TempDir::new().unwrap();
    let launch = Launch::in_dir(home.path()).test_config(home.path());
    launch.add_user("alice");
    let port = free_port();
    let portal = launch.serve(home, port);
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;

    let mut alice = Browser::new(port);
    assert!(alice.sign_in("alice", PASSWORD).await);
    assert_eq!(alice.submit("/account", "/account/totp", &[]).await, 303);
    let secret = secret_of(&alice.get("/account/totp").await.text().await.unwrap());
    let confirmed =
        alice.submit_for("/account/totp", "/account/totp/confirm", &[("code", &code(&secret, now()))]).await;
    let codes = recovery_codes(&confirmed.text().await.unwrap());
    assert_eq!(codes.len(), 10);

    // A half-done sign-in belongs to the browser that started it.
    let mut second = Browser::new(port);
    let first = second.submit_for("/login", "/login", &[("username", "alice"), ("password", PASSWORD)]).await;
    assert_eq!(first.headers()["location"], "/login/second-factor");
    let mut stranger = Browser::new(port);
    let taken = stranger.submit_for("/login", "/login/second-factor", &[("code", &codes[0])]).await;
    assert_eq!(taken.headers()["location"], "/login", "another browser gets nowhere");
    let used =
        second.submit_for("/login/second-factor", "/login/second-factor", &[("code", &codes[0])]).await;
    assert_eq!(used.status().as_u16(), 303, "{}", used.text().await.unwrap());
    assert!(second.is_signed_in().await);

    let home = portal.crash();
    let portal = launch.serve(home, port);
    let mut after = Browser::new(port);
    assert!(after.sign_in("alice", PASSWORD).await, "the first step");
    assert!(!after.is_signed_in().await, "the app survived: a second step is asked");
    let reused =
        after.submit_for("/login/second-factor", "/login/second-factor", &[("code", &codes[0])]).await;
    assert_eq!(reused.status().as_u16(), 200, "a used recovery code stays used");
    let next = code(&secret, now() + 30);
    let with_app = after.submit_for("/login/second-factor", "/login/second-factor", &[("code", &next)]).await;
    assert_eq!(with_app.status().as_u16(), 303, "the sealed secret opens after the restart");
    assert!(after.is_signed_in().await);

    let out = launch.run(&["users", "reset-second-factor", "alice"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("removed an authenticator app, 9 recovery code(s) of alice"), "{said}");
    let mut later = Browser::new(port);
    assert!(later.sign_in("alice", PASSWORD).await);
    assert!(later.is_signed_in().await, "a password alone after the reset");
    drop(portal);
}
