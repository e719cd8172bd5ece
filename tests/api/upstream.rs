//! Sign-in through any OpenID provider, several at once: two fake providers on loopback,
//! each with its own button, flow, keys and back-channel logout.

use rocket::figment::Figment;
use rocket::http::{ContentType, Status};
use serde_json::{json, Value};

use portal_testkit::app::*;
use portal_testkit::fakes::{query, requests_to};
use portal_testkit::oidc::{FakeOidc, OTHER_KEY};
use portal_testkit::PASSWORD;

/// An app with the `alpha` and `beta` providers, `extra` applied last.
async fn two_providers(extra: impl FnOnce(Figment) -> Figment) -> (TestApp, FakeOidc, FakeOidc) {
    let alpha = FakeOidc::start("alpha").await;
    let beta = FakeOidc::start("beta").await;
    let app = TestApp::spawn_with(|f| extra(beta.figment(alpha.figment(f)))).await;
    (app, alpha, beta)
}

/// `/login/<slug>`: the provider's authorize URL.
async fn leave(app: &TestApp, slug: &str) -> String {
    let response = app.get(&format!("/login/{slug}")).await;
    assert_eq!(response.status(), Status::SeeOther, "{slug}");
    location(&response).unwrap().to_owned()
}

/// The provider's answer for the flow `authorize_url` started, at `/auth/<slug>`.
fn callback(slug: &str, authorize_url: &str, iss: Option<&str>) -> String {
    let state = &query(authorize_url)["state"];
    let mut uri = format!("/auth/{slug}?code={}&state={state}", FakeOidc::code_for(authorize_url));
    if let Some(iss) = iss {
        uri.push_str(&format!("&iss={}", rocket::http::RawStr::new(iss).percent_encode()));
    }
    uri
}

/// Signs in through `slug` and returns the response of the callback.
async fn sign_in_through<'c>(app: &'c TestApp, slug: &str) -> rocket::local::asynchronous::LocalResponse<'c> {
    let authorize = leave(app, slug).await;
    app.get(&callback(slug, &authorize, None)).await
}

async fn failure_text(app: &TestApp, response: rocket::local::asynchronous::LocalResponse<'_>) -> String {
    assert_is_redirect_to(&response, "/login");
    assert!(session_cookie(&response).is_none(), "no session on a failed sign-in");
    unescape_html(&body(app.get("/login").await).await)
}

async fn user_of(app: &TestApp, slug: &str, sub: &str) -> Option<portal::store::User> {
    app.store().user_by_identity(slug, sub).await.unwrap()
}

#[rocket::async_test]
async fn two_providers_each_sign_in_with_their_own_button_in_the_configured_order() {
    let (app, alpha, beta) = two_providers(|f| f.merge(("oauth.order", vec!["beta", "alpha"]))).await;
    let login = unescape_html(&body(app.get("/login?next=%2Fwelcome").await).await);
    let (a, b) = (login.find("Sign in with Alpha").unwrap(), login.find("Sign in with Beta").unwrap());
    assert!(b < a, "oauth.order puts Beta first");
    assert!(login.contains(r#"href="/login/alpha?next=%2Fwelcome""#), "{login}");

    let authorize = leave(&app, "alpha").await;
    assert!(authorize.starts_with(&format!("{}/authorize?", alpha.issuer())), "{authorize}");
    let q = query(&authorize);
    assert_eq!(q["client_id"], "alpha-client");
    assert_eq!(q["redirect_uri"], "http://127.0.0.1:8000/auth/alpha");
    assert_eq!(q["scope"], "openid email profile");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["state"].len() >= 22 && q["nonce"].len() >= 22);

    let response = app.get(&callback("alpha", &authorize, None)).await;
    assert_is_redirect_to(&response, "/welcome");
    let page = body(app.get("/welcome").await).await;
    assert!(page.contains("Welcome, alpha-user!"), "{page}");
    assert!(page.contains("Alpha"), "the session names its provider");
    let user = user_of(&app, "alpha", "sub-alpha").await.expect("keyed by (slug, sub)");
    assert_eq!(user.email.as_deref(), Some("alpha.user@example.com"));
    let sessions = app.store().sessions_of(user.id).await.unwrap();
    assert_eq!(sessions[0].method, "alpha");
    assert_eq!(sessions[0].upstream_sid.as_deref(), Some("sid-alpha-1"));
    // client_secret_basic by default: the secret is in the header, never in the body.
    let token = &requests_to(&alpha.server, "/token").await[0];
    assert!(token.headers.get("authorization").unwrap().to_str().unwrap().starts_with("Basic "));
    assert!(!String::from_utf8_lossy(&token.body).contains("client_secret"));
    assert!(requests_to(&beta.server, "/token").await.is_empty());

    app.post_logout().await;
    assert_is_redirect_to(&sign_in_through(&app, "beta").await, "/welcome");
    let other = user_of(&app, "beta", "sub-beta").await.expect("a second user, through beta");
    assert_ne!(other.id, user.id);
}

#[rocket::async_test]
async fn a_code_from_one_provider_sent_to_the_others_callback_is_refused() {
    let (app, alpha, beta) = two_providers(|f| f).await;
    let authorize = leave(&app, "alpha").await;
    // The mix-up: the browser comes back at beta's callback with alpha's code and state.
    let uri = callback("alpha", &authorize, None).replacen("/auth/alpha", "/auth/beta", 1);
    let page = failure_text(&app, app.get(&uri).await).await;
    assert!(page.contains("Sign-in failed, please try again."), "{page}");
    assert!(requests_to(&alpha.server, "/token").await.is_empty(), "no code went anywhere");
    assert!(requests_to(&beta.server, "/token").await.is_empty(), "no code went anywhere");
    assert!(user_of(&app, "beta", "sub-alpha").await.is_none());
}

#[rocket::async_test]
async fn the_callbacks_iss_must_be_the_providers_own() {
    let (alpha, beta) = (FakeOidc::start("alpha").await, FakeOidc::start("beta").await);
    // Set before the portal starts: discovery reads it then.
    alpha.with(|s| s.iss_parameter = true);
    let app = TestApp::spawn_with(|f| beta.figment(alpha.figment(f))).await;
    let authorize = leave(&app, "alpha").await;
    let page = failure_text(&app, app.get(&callback("alpha", &authorize, Some(&beta.issuer()))).await).await;
    assert!(page.contains("Sign-in failed"), "another issuer's iss");
    let authorize = leave(&app, "alpha").await;
    failure_text(&app, app.get(&callback("alpha", &authorize, None)).await).await;
    assert!(requests_to(&alpha.server, "/token").await.is_empty(), "the code never left");

    let authorize = leave(&app, "alpha").await;
    let response = app.get(&callback("alpha", &authorize, Some(&alpha.issuer()))).await;
    assert_is_redirect_to(&response, "/welcome");
}

#[rocket::async_test]
async fn a_rotated_key_is_read_when_a_token_names_it_and_an_unpublished_one_is_refused() {
    let (app, alpha, _beta) = two_providers(|f| f).await;
    assert_is_redirect_to(&sign_in_through(&app, "alpha").await, "/welcome");
    app.post_logout().await;

    // The provider rotates: a new key, published, signs from now on.
    alpha.with(|s| {
        s.published.push((OTHER_KEY, "key-2".into()));
        s.signing = (OTHER_KEY, "key-2".into());
    });
    let jwks_before = requests_to(&alpha.server, "/jwks").await.len();
    assert_is_redirect_to(&sign_in_through(&app, "alpha").await, "/welcome");
    assert_eq!(requests_to(&alpha.server, "/jwks").await.len(), jwks_before + 1, "re-read once");
    app.post_logout().await;

    // A token under a kid the provider does not publish fails (and the re-read is rate-limited).
    alpha.with(|s| s.signing = (OTHER_KEY, "key-3".into()));
    let page = failure_text(&app, sign_in_through(&app, "alpha").await).await;
    assert!(page.contains("Sign-in failed"), "{page}");
    // The published kid, the wrong key: a bad signature.
    alpha.with(|s| s.signing = (OTHER_KEY, "key-1".into()));
    failure_text(&app, sign_in_through(&app, "alpha").await).await;
}

#[rocket::async_test]
async fn a_provider_down_at_start_is_not_reachable_until_it_comes_up() {
    let alpha = FakeOidc::start("alpha").await;
    alpha.with(|s| s.up = false);
    let app = TestApp::spawn_with(|f| alpha.figment(f)).await;
    let response = app.get("/login/alpha").await;
    assert_is_redirect_to(&response, "/login");
    let page = unescape_html(&body(app.get("/login").await).await);
    assert!(page.contains("Alpha is not reachable right now."), "{page}");

    alpha.with(|s| s.up = true);
    assert!(leave(&app, "alpha").await.starts_with(&alpha.issuer()));
    assert_is_redirect_to(&sign_in_through(&app, "alpha").await, "/welcome");
}

#[rocket::async_test]
async fn an_unverified_email_is_refused_unless_the_provider_is_trusted() {
    let (app, alpha, _beta) = two_providers(|f| f).await;
    alpha.with(|s| s.id_claims.insert("email_verified".into(), json!(false)));
    let page = failure_text(&app, sign_in_through(&app, "alpha").await).await;
    assert!(page.contains("Your Alpha account has no verified email address."), "{page}");
    assert!(user_of(&app, "alpha", "sub-alpha").await.is_none());

    let (app, alpha, _beta) = two_providers(|f| f.merge(("oauth.alpha.email_verified", "trusted"))).await;
    alpha.with(|s| s.id_claims.remove("email_verified"));
    assert_is_redirect_to(&sign_in_through(&app, "alpha").await, "/welcome");
    let user = user_of(&app, "alpha", "sub-alpha").await.unwrap();
    assert_eq!(user.email.as_deref(), Some("alpha.user@example.com"));
}

#[rocket::async_test]
async fn claim_rules_and_allowed_domains_refuse_with_a_clear_page() {
    let rules = json!([{ "claim": "groups", "contains": "staff" }]);
    let (app, alpha, _beta) = two_providers(|f| f.merge(("oauth.alpha.claim_rules", rules.clone()))).await;
    alpha.with(|s| s.id_claims.insert("groups".into(), json!(["visitors"])));
    let response = sign_in_through(&app, "alpha").await;
    assert_eq!(response.status(), Status::Forbidden);
    assert!(body(response).await.contains("Your Alpha account is not allowed to sign in here."));
    assert!(user_of(&app, "alpha", "sub-alpha").await.is_none(), "no user for an outsider");
    alpha.with(|s| s.id_claims.insert("groups".into(), json!(["visitors", "staff"])));
    assert_is_redirect_to(&sign_in_through(&app, "alpha").await, "/welcome");

    let (app, _alpha, _beta) =
        two_providers(|f| f.merge(("oauth.alpha.allowed_domains", vec!["elsewhere.example"]))).await;
    assert_eq!(sign_in_through(&app, "alpha").await.status(), Status::Forbidden);
}

#[rocket::async_test]
async fn claims_the_id_token_lacks_are_read_from_userinfo() {
    let (app, alpha, _beta) = two_providers(|f| f).await;
    alpha.with(|s| {
        for claim in ["email", "email_verified", "name", "preferred_username"] {
            s.id_claims.remove(claim);
        }
        s.userinfo.insert("email".into(), json!("from.userinfo@example.com"));
        s.userinfo.insert("email_verified".into(), json!(true));
        s.userinfo.insert("preferred_username".into(), json!("info-user"));
    });
    assert_is_redirect_to(&sign_in_through(&app, "alpha").await, "/welcome");
    let user = user_of(&app, "alpha", "sub-alpha").await.unwrap();
    assert_eq!(user.email.as_deref(), Some("from.userinfo@example.com"));
    assert_eq!(user.username, "info-user");
    let info = &requests_to(&alpha.server, "/userinfo").await[0];
    assert_eq!(info.headers.get("authorization").unwrap(), "Bearer oidc-access-token");

    // Userinfo about someone else is not believed.
    let (app, alpha, _beta) = two_providers(|f| f).await;
    alpha.with(|s| {
        s.id_claims.remove("email");
        s.userinfo.insert("sub".into(), json!("someone-else"));
    });
    failure_text(&app, sign_in_through(&app, "alpha").await).await;
}

/// POSTs a logout token to `/auth/<slug>/backchannel-logout`.
async fn backchannel<'c>(
    app: &'c TestApp,
    slug: &str,
    token: &str,
) -> rocket::local::asynchronous::LocalResponse<'c> {
    app.client
        .post(format!("/auth/{slug}/backchannel-logout"))
        .header(ContentType::Form)
        .body(form_body(&[("logout_token", token)]))
        .dispatch()
        .await
}

#[rocket::async_test]
async fn back_channel_logout_ends_exactly_the_sessions_of_that_provider_session() {
    let (app, alpha, beta) = two_providers(|f| f).await;
    // Two devices through alpha (provider sessions 1 and 2), one through beta.
    assert_is_redirect_to(&sign_in_through(&app, "alpha").await, "/welcome");
    alpha.with(|s| s.id_claims.insert("sid".into(), json!("sid-alpha-2")));
    // Signing in again from this browser makes a second session; the first stays live.
    assert_is_redirect_to(&sign_in_through(&app, "alpha").await, "/welcome");
    let user = user_of(&app, "alpha", "sub-alpha").await.unwrap();
    assert_eq!(app.store().sessions_of(user.id).await.unwrap().len(), 2);
    assert_is_redirect_to(&sign_in_through(&app, "beta").await, "/welcome");

    let response =
        backchannel(&app, "alpha", &alpha.logout_token(json!({ "sid": "sid-alpha-1", "sub": null }), None))
            .await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
    let left: Vec<_> = app.store().sessions_of(user.id).await.unwrap();
    assert_eq!(left.len(), 1, "only the session of provider session 1 ended");
    assert_eq!(left[0].upstream_sid.as_deref(), Some("sid-alpha-2"));
    let beta_user = user_of(&app, "beta", "sub-beta").await.unwrap();
    assert_eq!(app.store().sessions_of(beta_user.id).await.unwrap().len(), 1, "beta's session stays");

    // By `sub`: every remaining alpha session of that person.
    let response = backchannel(&app, "alpha", &alpha.logout_token(json!({}), None)).await;
    assert_eq!(response.status(), Status::Ok);
    assert!(app.store().sessions_of(user.id).await.unwrap().is_empty());
    assert_eq!(app.store().sessions_of(beta_user.id).await.unwrap().len(), 1);
    let logouts: Vec<_> =
        app.events().await.into_iter().filter(|(kind, _, _)| kind == "upstream_logout").collect();
    assert_eq!(logouts.len(), 2, "{logouts:?}");
    assert!(logouts.iter().all(|(_, actor, subject)| actor == "system" && *subject == Some(user.id)));
    // A logout token from beta for alpha's subject ends nothing of alpha's (it is beta's).
    assert_eq!(
        backchannel(&app, "beta", &beta.logout_token(json!({ "sub": "sub-alpha" }), None)).await.status(),
        Status::Ok
    );
    assert_eq!(app.store().sessions_of(beta_user.id).await.unwrap().len(), 1);
}

#[rocket::async_test]
async fn bad_logout_tokens_are_refused_and_end_nothing() {
    let (app, alpha, beta) = two_providers(|f| f).await;
    assert_is_redirect_to(&sign_in_through(&app, "alpha").await, "/welcome");
    let user = user_of(&app, "alpha", "sub-alpha").await.unwrap();
    let now = chrono_now();
    let bad = [
        ("badly signed", alpha.logout_token(json!({}), Some(OTHER_KEY))),
        ("another provider's", beta.logout_token(json!({ "sub": "sub-alpha" }), None)),
        ("no logout event", alpha.logout_token(json!({ "events": null }), None)),
        ("a nonce", alpha.logout_token(json!({ "nonce": "n" }), None)),
        ("neither sub nor sid", alpha.logout_token(json!({ "sub": null }), None)),
        ("expired", alpha.logout_token(json!({ "exp": now - 600, "iat": now - 900 }), None)),
        ("for another client", alpha.logout_token(json!({ "aud": "someone-else" }), None)),
        ("not a JWT", "not-a-jwt".to_owned()),
    ];
    for (what, token) in bad {
        let response = backchannel(&app, "alpha", &token).await;
        assert_eq!(response.status(), Status::BadRequest, "{what}");
        let answer: Value = serde_json::from_str(&body(response).await).unwrap();
        assert_eq!(answer["error"], "invalid_request", "{what}");
        assert_eq!(app.store().sessions_of(user.id).await.unwrap().len(), 1, "{what} ended a session");
    }
    let response =
        app.client.post("/auth/alpha/backchannel-logout").header(ContentType::Form).body("").dispatch().await;
    assert_eq!(response.status(), Status::BadRequest, "no token");
    assert_eq!(backchannel(&app, "nobody", "x").await.status(), Status::NotFound);
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[rocket::async_test]
async fn signing_out_with_logout_provider_goes_on_to_the_providers_end_session_page() {
    let (app, alpha, _beta) = two_providers(|f| f.merge(("oauth.alpha.logout", "provider"))).await;
    assert_is_redirect_to(&sign_in_through(&app, "alpha").await, "/welcome");
    let response = app.post_logout().await;
    assert_eq!(response.status(), Status::Ok);
    let page = unescape_html(&body(response).await);
    let expected = format!(
        "{}/logout?client_id=alpha-client&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2F",
        alpha.issuer()
    );
    assert!(page.contains(&format!("content=\"0; url={expected}\"")), "{page}");
    assert!(page.contains("Continue to Alpha"), "{page}");
    assert_is_redirect_to(&app.get("/welcome").await, "/login?next=%2Fwelcome");
    assert_eq!(app.last_event().await.0, "upstream_logout");

    // A session made with a password signs out as always.
    let app = {
        let (app, _a, _b) = two_providers(|f| f.merge(("oauth.alpha.logout", "provider"))).await;
        app
    };
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    assert_eq!(app.post_logout().await.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn an_oidc_provider_connects_to_and_disconnects_from_an_account() {
    let (app, _alpha, _beta) = two_providers(|f| f).await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    let account = unescape_html(&body(app.get("/account").await).await);
    assert!(account.contains("Connect Alpha") && account.contains("Connect Beta"), "{account}");
    let response = app.post_form("/account/connect/alpha", &[]).await;
    let authorize = location(&response).unwrap().to_owned();
    assert_is_redirect_to(&app.get(&callback("alpha", &authorize, None)).await, "/account");
    let alice = user_of(&app, "alpha", "sub-alpha").await.expect("linked");
    assert_eq!(alice.username, "alice");
    let account = unescape_html(&body(app.get("/account").await).await);
    assert!(account.contains("Connected as alpha.user@example.com"), "{account}");
    assert_is_redirect_to(&app.post_form("/account/unlink/alpha", &[]).await, "/account");
    assert!(user_of(&app, "alpha", "sub-alpha").await.is_none());
}

#[rocket::async_test]
async fn bad_slugs_and_missing_keys_stop_startup_with_one_line_naming_them() {
    use portal::auth::oauth::Providers;
    use portal::config::Settings;
    use rocket::local::asynchronous::Client;
    let alpha = FakeOidc::start("alpha").await;
    let (_dir, db) = temp_db();
    let base = || alpha.figment(test_figment(&db, &portal_testkit::secret_key()));
    let why = |figment: Figment| -> String {
        match Settings::from_figment(&figment) {
            Err(e) => e,
            Ok(settings) => Providers::from_settings(&settings.oauth).err().expect("must be refused"),
        }
    };
    let cases = [
        (
            base().merge(("oauth.Git_Lab.client_id", "x")),
            "[oauth.Git_Lab]: a provider's slug must be 1 to 32 of a-z, 0-9 and '-'",
        ),
        (
            base().merge(("oauth.second-factor.client_id", "x")),
            "\"second-factor\" is a name the portal uses itself",
        ),
        (base().merge(("oauth.gamma.name", "Gamma")), "oauth.gamma.client_id is missing"),
        (
            base().merge(("oauth.gamma.client_id", "x")).merge(("oauth.gamma.name", "Gamma")),
            "oauth.gamma.client_id is set but oauth.gamma.client_secret is not",
        ),
        (base().merge(("oauth.alpha.issuer", "")), "oauth.alpha.issuer is not a valid URL"),
        (base().merge(("oauth.alpha.name", "")), "oauth.alpha.name is missing"),
        (
            base().merge(("oauth.alpha.claim_rules", json!([{ "claim": "groups" }]))),
            "oauth.alpha.claim_rules: each rule needs",
        ),
        (
            base().merge(("oauth.alpha.icon", "/nonexistent/alpha.svg")),
            "oauth.alpha.icon: cannot read \"/nonexistent/alpha.svg\"",
        ),
        (
            base().merge(("oauth.alpha.icon", "Cargo.toml")),
            "oauth.alpha.icon must be an .svg, .png or .webp file",
        ),
        (base().merge(("oauth.alpha.kind", "saml")), "unknown variant"),
    ];
    for (figment, expected) in cases {
        let said = why(figment.clone());
        assert!(said.contains(expected), "{expected:?} not in {said:?}");
        assert!(!said.contains('\n'), "one line: {said}");
        let result = Client::tracked(portal::rocket_with(figment, portal::Overrides::default())).await;
        let Err(error) = result else { panic!("must not start: {expected}") };
        error.pretty_print();
    }
}

/// The real binary: a session made through a provider, and the provider session it rode on
/// (`sid`), survive a crash and a restart; the provider's back-channel logout then ends it.
#[rocket::async_test]
async fn a_providers_session_survives_a_restart_and_its_back_channel_logout_still_ends_it() {
    use portal_testkit::app::{cookie_pairs, http_client};
    use portal_testkit::process::{free_port, Launch};
    use reqwest::header::{COOKIE, LOCATION};

    let alpha = FakeOidc::start("alpha").await;
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let launch = Launch::in_checkout()
        .test_config(home.path())
        .env("ROCKET_OAUTH", alpha.add_to_rocket_oauth("{}", &base));
    let server = launch.serve(home, port);
    let http = http_client();

    let start = http.get(format!("{base}/login/alpha")).send().await.unwrap();
    let authorize = start.headers()[LOCATION].to_str().unwrap().to_owned();
    let flow = cookie_pairs(&start).join("; ");
    let state = &query(&authorize)["state"];
    let code = FakeOidc::code_for(&authorize);
    let back = http
        .get(format!("{base}/auth/alpha?code={code}&state={state}"))
        .header(COOKIE, &flow)
        .send()
        .await
        .unwrap();
    assert_eq!(back.headers()[LOCATION], "/welcome");
    let prefix = format!("{}=", portal_testkit::session_cookie_name());
    let session = cookie_pairs(&back).into_iter().find(|c| c.starts_with(&prefix)).expect("a session");
    let welcome = |http: reqwest::Client, session: String, base: String| async move {
        http.get(format!("{base}/welcome")).header(COOKIE, session).send().await.unwrap().status().as_u16()
    };
    assert_eq!(welcome(http.clone(), session.clone(), base.clone()).await, 200);

    let home = server.crash();
    let _server = launch.serve(home, port);
    assert_eq!(welcome(http.clone(), session.clone(), base.clone()).await, 200, "the session survived");

    let token = alpha.logout_token(json!({ "sid": "sid-alpha-1", "sub": null }), None);
    let answer = http
        .post(format!("{base}/auth/alpha/backchannel-logout"))
        .form(&[("logout_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(welcome(http, session, base).await, 303, "the stored sid ended it after the restart");
}

#[rocket::async_test]
async fn microsofts_multi_tenant_issuer_is_checked_against_the_tokens_own_tenant() {
    let tenant = "9188040d-6c67-4c5b-b112-36a304b66dad";
    let alpha = FakeOidc::start("alpha").await;
    alpha.with(|s| s.tenant = Some((tenant.into(), tenant.into())));
    let rule = json!([{ "claim": "tid", "equals": tenant }]);
    let app = TestApp::spawn_with(|f| alpha.figment(f).merge(("oauth.alpha.claim_rules", rule))).await;
    assert_is_redirect_to(&sign_in_through(&app, "alpha").await, "/welcome");
    app.post_logout().await;

    // A token whose `iss` names another tenant than its `tid`: refused.
    alpha.with(|s| s.tenant = Some((tenant.into(), "72f988bf-86f1-41af-91ab-2d7cd011db47".into())));
    let page = failure_text(&app, sign_in_through(&app, "alpha").await).await;
    assert!(page.contains("Sign-in failed"), "{page}");
    // The claim rule keeps other tenants out.
    let other = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    alpha.with(|s| s.tenant = Some((other.into(), other.into())));
    assert_eq!(sign_in_through(&app, "alpha").await.status(), Status::Forbidden);
}

#[rocket::async_test]
async fn a_providers_icon_is_read_at_start_shown_on_its_button_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let svg =
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><rect width="1" height="1"/></svg>"#;
    let file = dir.path().join("alpha.svg");
    std::fs::write(&file, svg).unwrap();
    let icon = file.to_str().unwrap().to_owned();
    let (app, _alpha, _beta) = two_providers(|f| f.merge(("oauth.alpha.icon", icon))).await;
    let login = unescape_html(&body(app.get("/login").await).await);
    assert!(login.contains(r#"<img class="logo" src="/static/icons/alpha.svg""#), "{login}");
    let served = app.get("/static/icons/alpha.svg").await;
    assert_eq!(served.status(), Status::Ok);
    assert_eq!(served.content_type(), Some(ContentType::SVG));
    assert_eq!(body(served).await, svg);
    assert_eq!(app.get("/static/icons/beta.svg").await.status(), Status::NotFound, "beta has none");
    assert_eq!(app.get("/static/icons/..%2Fsecret.svg").await.status(), Status::NotFound);
}
