//! Sign-in with Google and GitHub against fake providers on loopback.

use rocket::figment::Figment;
use rocket::http::{ContentType, Status};
use serde_json::json;
use wiremock::ResponseTemplate;

use portal_testkit::app::*;
use portal_testkit::fakes::*;
use portal_testkit::{secret_key, session_cookie_name, PASSWORD};

struct Flow {
    authorize_url: String,
    state: String,
    nonce: Option<String>,
}

async fn start(app: &TestApp, uri: &str) -> Flow {
    let response = app.get(uri).await;
    assert_eq!(response.status(), Status::SeeOther, "{uri}");
    let authorize_url = location(&response).unwrap().to_owned();
    let params = query(&authorize_url);
    Flow { state: params["state"].clone(), nonce: params.get("nonce").cloned(), authorize_url }
}

async fn github_app() -> (TestApp, FakeGithub) {
    github_app_with(|f| f).await
}

async fn github_app_with(extra: impl FnOnce(Figment) -> Figment) -> (TestApp, FakeGithub) {
    let github = FakeGithub::start().await;
    let app = TestApp::spawn_with(|f| extra(github.figment(f))).await;
    (app, github)
}

async fn google_app_with(extra: impl FnOnce(Figment) -> Figment) -> (TestApp, FakeGoogle) {
    let google = FakeGoogle::start().await;
    let app = TestApp::spawn_with(|f| extra(google.figment(f))).await;
    (app, google)
}

/// Follows a callback that should fail back to the login page, and returns what it says.
async fn failed_callback(app: &TestApp, uri: &str) -> String {
    let response = app.get(uri).await;
    assert_is_redirect_to(&response, "/login");
    assert!(session_cookie(&response).is_none(), "no session on a failed sign-in");
    app.get("/login").await.into_string().await.unwrap()
}

/// POSTs a form carrying only the CSRF token (connect, disconnect).
async fn post_form<'c>(
    app: &'c TestApp,
    uri: &str,
    token: &str,
) -> rocket::local::asynchronous::LocalResponse<'c> {
    app.client
        .post(uri.to_owned())
        .header(ContentType::Form)
        .body(form_body(&[("csrf_token", token)]))
        .dispatch()
        .await
}

async fn user_count(app: &TestApp) -> i64 {
    app.store().count_users().await.unwrap()
}

#[rocket::async_test]
async fn github_sign_in_goes_from_the_button_to_the_welcome_page() {
    let (app, github) = github_app().await;
    let login = app.get("/login?next=%2Fwelcome").await.into_string().await.unwrap();
    // Read as a browser reads it: the escaper may write `/` as `&#x2f;`.
    assert!(unescape_html(&login).contains(r#"href="/login/github?next=%2Fwelcome""#), "{login}");
    assert!(login.contains("Sign in with GitHub"));
    assert!(!login.contains("Sign in with Google"), "an unconfigured provider has no button");

    let flow = start(&app, "/login/github").await;
    let params = query(&flow.authorize_url);
    assert!(flow.authorize_url.starts_with(&format!("{}/login/oauth/authorize?", github.server.uri())));
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], GITHUB_ID);
    assert_eq!(params["redirect_uri"], "http://127.0.0.1:8000/auth/github");
    assert_eq!(params["scope"], "read:user user:email");
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["code_challenge"].len(), 43, "a SHA-256 challenge");
    assert!(flow.state.len() >= 22, "state carries at least 128 bits");
    assert!(!params.contains_key("client_secret"));

    github.token_ok().await;
    let response = app.get(&format!("/auth/github?code=the-code&state={}", flow.state)).await;
    assert_is_redirect_to(&response, "/welcome");
    let cookie = session_cookie(&response).expect("a session");
    assert!(!cookie.value().contains(GITHUB_TOKEN));
    let page = app.get("/welcome").await.into_string().await.unwrap();
    assert!(page.contains("Welcome, octocat!"), "{page}");
    assert!(page.contains("GitHub"));
    assert!(!page.contains(GITHUB_TOKEN));

    let token_requests = github.requests_to("/login/oauth/access_token").await;
    assert_eq!(token_requests.len(), 1);
    let body = String::from_utf8_lossy(&token_requests[0].body).into_owned();
    for part in
        ["grant_type=authorization_code", "code=the-code", "code_verifier=", "client_id=github-client-id"]
    {
        assert!(body.contains(part), "token request lacks {part}: {body}");
    }
    let api = github.requests_to("/user").await;
    assert_eq!(api[0].headers.get("accept").unwrap(), "application/vnd.github+json");
    assert_eq!(api[0].headers.get("authorization").unwrap(), &format!("Bearer {GITHUB_TOKEN}"));
    assert!(api[0].headers.get("user-agent").is_some());
}

#[rocket::async_test]
async fn google_sign_in_validates_the_id_token_and_signs_in() {
    let (app, google) = google_app_with(|f| f).await;
    let flow = start(&app, "/login/google?next=%2Fwelcome%3Ftab%3D1").await;
    let params = query(&flow.authorize_url);
    assert!(flow.authorize_url.starts_with(&format!("{}/o/oauth2/v2/auth?", google.issuer())));
    assert_eq!(params["client_id"], GOOGLE_ID);
    let scopes: Vec<&str> = params["scope"].split(' ').collect();
    for scope in ["openid", "email", "profile"] {
        assert!(scopes.contains(&scope), "{scopes:?}");
    }
    assert_eq!(params["code_challenge_method"], "S256");
    let nonce = flow.nonce.clone().expect("a nonce");

    google.token_returns_id_token(&google.id_token(Claims::new(&nonce))).await;
    let response = app.get(&format!("/auth/google?code=g-code&state={}&scope=email", flow.state)).await;
    assert_is_redirect_to(&response, "/welcome?tab=1");
    let page = app.get("/welcome").await.into_string().await.unwrap();
    assert!(page.contains("Welcome, grace.hopper!"), "{page}");

    let token_requests = requests_to(&google.server, "/token").await;
    let body = String::from_utf8_lossy(&token_requests[0].body).into_owned();
    assert!(body.contains("code_verifier=") && body.contains("code=g-code"), "{body}");
}

#[rocket::async_test]
async fn the_same_identity_signs_in_to_the_same_user_and_names_are_made_unique() {
    let (app, github) = github_app().await;
    app.create_user("octocat", PASSWORD).await;
    github.token_ok().await;
    for _ in 0..2 {
        let flow = start(&app, "/login/github").await;
        let response = app.get(&format!("/auth/github?code=c&state={}", flow.state)).await;
        assert_is_redirect_to(&response, "/welcome");
        let page = app.get("/welcome").await.into_string().await.unwrap();
        assert!(page.contains("Welcome, octocat2!"), "the password user keeps their name: {page}");
    }
    assert_eq!(user_count(&app).await, 3, "admin, octocat, octocat2");
}

#[rocket::async_test]
async fn a_matching_email_never_links_to_an_existing_account() {
    let (app, google) = google_app_with(|f| f).await;
    let hash = portal::auth::password::hash_blocking(PASSWORD).unwrap();
    let victim = portal::store::NewUser {
        username: "grace",
        email: Some("grace.hopper@example.com"),
        password_hash: Some(&hash),
        is_admin: false,
    };
    let victim = app.store().create_user(victim, START).await.unwrap();
    let flow = start(&app, "/login/google").await;
    google.token_returns_id_token(&google.id_token(Claims::new(flow.nonce.as_deref().unwrap()))).await;
    app.get(&format!("/auth/google?code=c&state={}", flow.state)).await;
    let page = app.get("/welcome").await.into_string().await.unwrap();
    assert!(page.contains("Welcome, grace.hopper!"), "a new account, not grace's: {page}");
    assert!(app.store().identities(victim.id).await.unwrap().is_empty());
}

#[rocket::async_test]
async fn a_github_enterprise_api_uri_is_used_for_the_api() {
    let github = FakeGithub::start_at("/api/v3").await;
    let app = TestApp::spawn_with(|f| github.figment(f)).await;
    github.token_ok().await;
    let flow = start(&app, "/login/github").await;
    assert_is_redirect_to(&app.get(&format!("/auth/github?code=c&state={}", flow.state)).await, "/welcome");
    assert_eq!(github.requests_to("/api/v3/user").await.len(), 1);
    assert_eq!(github.requests_to("/api/v3/user/emails").await.len(), 1);
}

#[rocket::async_test]
async fn access_denied_at_the_provider_says_sign_in_was_cancelled() {
    let (app, _github) = github_app().await;
    let flow = start(&app, "/login/github").await;
    let page = failed_callback(&app, &format!("/auth/github?error=access_denied&state={}", flow.state)).await;
    assert!(page.contains("Sign-in cancelled"), "{page}");
}

#[rocket::async_test]
async fn other_provider_errors_show_the_description_escaped() {
    let (app, _github) = github_app().await;
    let flow = start(&app, "/login/github").await;
    let uri = format!(
        "/auth/github?error=server_error&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E&state={}",
        flow.state
    );
    let page = failed_callback(&app, &uri).await;
    assert!(page.contains("Sign-in with GitHub failed"), "{page}");
    // Shown as text (escaped in the markup), never as markup.
    assert!(unescape_html(&page).contains("failed: <script>alert(1)</script>"), "{page}");
    assert!(page.contains("failed: &lt;script&gt;"), "{page}");
    assert!(!page.contains("<script>"));
}

#[rocket::async_test]
async fn a_crafted_error_link_without_our_flow_shows_none_of_its_text() {
    let (app, _github) = github_app().await;
    let page = failed_callback(
        &app,
        "/auth/github?error=server_error&error_description=Call%20555-0100%20for%20help",
    )
    .await;
    assert!(page.contains("Sign-in failed, please try again."));
    assert!(!page.contains("555-0100"));
}

#[rocket::async_test]
async fn missing_wrong_and_replayed_state_do_not_sign_in() {
    let (app, github) = github_app().await;
    github.token_ok().await;

    let flow = start(&app, "/login/github").await;
    let page = failed_callback(&app, "/auth/github?code=c").await;
    assert!(page.contains("Sign-in failed, please try again."));

    // The failed callback spent that flow: even the right state is refused now.
    failed_callback(&app, &format!("/auth/github?code=c&state={}", flow.state)).await;

    let flow = start(&app, "/login/github").await;
    let tampered = format!("{}x", flow.state);
    failed_callback(&app, &format!("/auth/github?code=c&state={tampered}")).await;

    let flow = start(&app, "/login/github").await;
    assert_is_redirect_to(&app.get(&format!("/auth/github?code=c&state={}", flow.state)).await, "/welcome");
    app.post_logout().await;
    failed_callback(&app, &format!("/auth/github?code=c&state={}", flow.state)).await;
    assert!(
        github.requests_to("/login/oauth/access_token").await.len() == 1,
        "only the good flow reached the token endpoint"
    );
}

#[rocket::async_test]
async fn a_state_minted_for_the_other_provider_is_refused() {
    let github = FakeGithub::start().await;
    let google = FakeGoogle::start().await;
    let app = TestApp::spawn_with(|f| google.figment(github.figment(f))).await;
    github.token_ok().await;
    let flow = start(&app, "/login/google").await;
    failed_callback(&app, &format!("/auth/github?code=c&state={}", flow.state)).await;
    assert!(github.requests_to("/login/oauth/access_token").await.is_empty());
}

#[rocket::async_test]
async fn a_flow_older_than_ten_minutes_is_refused() {
    let (app, github) = github_app().await;
    github.token_ok().await;
    let flow = start(&app, "/login/github").await;
    app.clock.advance(11 * 60);
    failed_callback(&app, &format!("/auth/github?code=c&state={}", flow.state)).await;
}

#[rocket::async_test]
async fn token_endpoint_failures_fail_closed_without_leaking() {
    let answers = [
        ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant", "error_description": "code reused"})),
        ResponseTemplate::new(500).set_body_string("internal error"),
        ResponseTemplate::new(200).set_body_raw("<html>oops</html>", "text/html"),
        ResponseTemplate::new(200).set_body_raw("{not json", "application/json"),
        ResponseTemplate::new(200).set_body_json(json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."})),
        ResponseTemplate::new(302).insert_header("Location", "http://127.0.0.1:9/elsewhere"),
        ResponseTemplate::new(200).set_body_json(json!({"access_token": "x".repeat(4096), "token_type": "bearer"})),
    ];
    for answer in answers {
        let (app, github) = github_app_with(|f| f.merge(("oauth.max_response_bytes", 2048))).await;
        github.token_answers(answer).await;
        let flow = start(&app, "/login/github").await;
        let page =
            failed_callback(&app, &format!("/auth/github?code=secret-code&state={}", flow.state)).await;
        assert!(page.contains("Sign-in failed, please try again."), "{page}");
        assert!(!page.contains("secret-code") && !page.contains(CLIENT_SECRET));
        assert_eq!(user_count(&app).await, 1, "only the debug admin");
    }
}

#[rocket::async_test]
async fn a_provider_that_does_not_answer_in_time_fails_the_sign_in() {
    let (app, github) = github_app_with(|f| f.merge(("oauth.timeout", 1))).await;
    github.token_answers(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(3))).await;
    let flow = start(&app, "/login/github").await;
    failed_callback(&app, &format!("/auth/github?code=c&state={}", flow.state)).await;
}

#[rocket::async_test]
async fn github_api_failures_fail_closed() {
    for broken_route in ["/user", "/user/emails"] {
        // wiremock answers with the first matching mock, so the broken route goes first.
        let github = FakeGithub { server: wiremock::MockServer::start().await, api_prefix: "" };
        github.api(broken_route, ResponseTemplate::new(502)).await;
        github.serve_user(1, "octocat", &[("octo@example.com", true, true)]).await;
        github.token_ok().await;
        let app = TestApp::spawn_with(|f| github.figment(f)).await;
        let flow = start(&app, "/login/github").await;
        failed_callback(&app, &format!("/auth/github?code=c&state={}", flow.state)).await;
        assert_eq!(user_count(&app).await, 1, "{broken_route}");
    }
}

#[rocket::async_test]
async fn unverified_emails_are_refused() {
    let github = FakeGithub { server: wiremock::MockServer::start().await, api_prefix: "" };
    github
        .serve_user(
            7,
            "nomail",
            &[("unverified@example.com", true, false), ("other@example.com", false, true)],
        )
        .await;
    github.token_ok().await;
    let app = TestApp::spawn_with(|f| github.figment(f)).await;
    let flow = start(&app, "/login/github").await;
    let page = failed_callback(&app, &format!("/auth/github?code=c&state={}", flow.state)).await;
    assert!(page.contains("has no verified email address"), "{page}");
    assert_eq!(user_count(&app).await, 1);

    let (app, google) = google_app_with(|f| f).await;
    let flow = start(&app, "/login/google").await;
    let mut claims = Claims::new(flow.nonce.as_deref().unwrap());
    claims.email_verified = false;
    google.token_returns_id_token(&google.id_token(claims)).await;
    let page = failed_callback(&app, &format!("/auth/google?code=c&state={}", flow.state)).await;
    assert!(page.contains("has no verified email address"), "{page}");
    assert_eq!(user_count(&app).await, 1);
}

#[rocket::async_test]
async fn invalid_id_tokens_are_refused() {
    type Tamper = fn(&mut Claims);
    let cases: [(&str, Tamper); 5] = [
        ("bad signature", |c| c.attacker_key = true),
        ("wrong issuer", |c| c.issuer = Some("https://accounts.evil.example".into())),
        ("wrong audience", |c| c.audience = "someone-else".into()),
        ("expired", |c| c.expires_in = -600),
        ("wrong nonce", |c| c.nonce = "not-the-nonce".into()),
    ];
    for (what, tamper) in cases {
        let (app, google) = google_app_with(|f| f).await;
        let flow = start(&app, "/login/google").await;
        let mut claims = Claims::new(flow.nonce.as_deref().unwrap());
        tamper(&mut claims);
        google.token_returns_id_token(&google.id_token(claims)).await;
        let page = failed_callback(&app, &format!("/auth/google?code=c&state={}", flow.state)).await;
        assert!(page.contains("Sign-in failed, please try again."), "{what}");
        assert_eq!(user_count(&app).await, 1, "{what}");
    }

    let (app, google) = google_app_with(|f| f).await;
    let flow = start(&app, "/login/google").await;
    google.token_returns_id_token(&google.unsigned_id_token(flow.nonce.as_deref().unwrap())).await;
    failed_callback(&app, &format!("/auth/google?code=c&state={}", flow.state)).await;
    assert_eq!(user_count(&app).await, 1, "alg none");
}

#[rocket::async_test]
async fn allowed_orgs_refuse_outsiders_with_a_clear_page() {
    let (app, github) = github_app_with(|f| f.merge(("oauth.github.allowed_orgs", vec!["Acme"]))).await;
    github.token_ok().await;
    github.api("/user/orgs", ResponseTemplate::new(200).set_body_json(json!([{"login": "other-org"}]))).await;
    let flow = start(&app, "/login/github").await;
    assert!(query(&flow.authorize_url)["scope"].contains("read:org"));
    let response = app.get(&format!("/auth/github?code=c&state={}", flow.state)).await;
    assert_eq!(response.status(), Status::Forbidden);
    assert!(session_cookie(&response).is_none());
    assert!(response.into_string().await.unwrap().contains("not allowed to sign in here"));
    assert_eq!(user_count(&app).await, 1, "no user row for an outsider");

    let (app, github) = github_app_with(|f| f.merge(("oauth.github.allowed_orgs", vec!["Acme"]))).await;
    github.token_ok().await;
    github.api("/user/orgs", ResponseTemplate::new(200).set_body_json(json!([{"login": "acme"}]))).await;
    let flow = start(&app, "/login/github").await;
    assert_is_redirect_to(&app.get(&format!("/auth/github?code=c&state={}", flow.state)).await, "/welcome");
}

#[rocket::async_test]
async fn allowed_domains_need_a_matching_workspace_domain() {
    for (hd, allowed) in [(None, false), (Some("gmail.example"), false), (Some("Example.com"), true)] {
        let (app, google) =
            google_app_with(|f| f.merge(("oauth.google.allowed_domains", vec!["example.com"]))).await;
        let flow = start(&app, "/login/google").await;
        let mut claims = Claims::new(flow.nonce.as_deref().unwrap());
        claims.hd = hd.map(str::to_owned);
        google.token_returns_id_token(&google.id_token(claims)).await;
        let response = app.get(&format!("/auth/google?code=c&state={}", flow.state)).await;
        if allowed {
            assert_is_redirect_to(&response, "/welcome");
        } else {
            assert_eq!(response.status(), Status::Forbidden, "{hd:?}");
            assert_eq!(user_count(&app).await, 1);
        }
    }
}

#[rocket::async_test]
async fn a_signed_in_user_connects_github_from_the_account_page() {
    let (app, github) = github_app().await;
    github.token_ok().await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;

    let account = app.get("/account").await;
    let csp = account.headers().get_one("Content-Security-Policy").unwrap().to_owned();
    let form_action = format!("form-action 'self' {};", github.server.uri());
    assert!(csp.contains(&form_action), "Connect must be allowed to reach the provider: {csp}");
    let page = account.into_string().await.unwrap();
    assert!(page.contains("Connect GitHub"), "{page}");
    let token = extract_hidden(&page, "csrf_token").unwrap();
    let response = post_form(&app, "/account/connect/github", &token).await;
    assert_eq!(response.status(), Status::SeeOther);
    let state = query(location(&response).unwrap())["state"].clone();
    assert_is_redirect_to(&app.get(&format!("/auth/github?code=c&state={state}")).await, "/account");
    let page = app.get("/account").await.into_string().await.unwrap();
    assert!(page.contains("Your GitHub account is connected."));
    assert!(page.contains("Connected as octo@example.com"), "{page}");

    app.post_logout().await;
    let flow = start(&app, "/login/github").await;
    app.get(&format!("/auth/github?code=c&state={}", flow.state)).await;
    let welcome = app.get("/welcome").await.into_string().await.unwrap();
    assert!(welcome.contains("Welcome, alice!"), "GitHub now signs in as alice: {welcome}");
}

#[rocket::async_test]
async fn an_identity_of_another_user_cannot_be_connected() {
    let (app, github) = github_app().await;
    github.token_ok().await;
    let flow = start(&app, "/login/github").await;
    app.get(&format!("/auth/github?code=c&state={}", flow.state)).await; // creates octocat
    app.post_logout().await;

    app.create_user("bob", PASSWORD).await;
    app.sign_in("bob", PASSWORD).await;
    let token =
        extract_hidden(&app.get("/account").await.into_string().await.unwrap(), "csrf_token").unwrap();
    let response = post_form(&app, "/account/connect/github", &token).await;
    let state = query(location(&response).unwrap())["state"].clone();
    app.get(&format!("/auth/github?code=c&state={state}")).await;
    let page = app.get("/account").await.into_string().await.unwrap();
    assert!(page.contains("already connected to another user"), "{page}");
}

#[rocket::async_test]
async fn unlinking_the_only_way_to_sign_in_is_refused() {
    let (app, github) = github_app().await;
    github.token_ok().await;
    let flow = start(&app, "/login/github").await;
    app.get(&format!("/auth/github?code=c&state={}", flow.state)).await;

    let unlink = |token: String| {
        app.client
            .post("/account/unlink/github")
            .header(ContentType::Form)
            .body(form_body(&[("csrf_token", &token)]))
    };
    let token =
        extract_hidden(&app.get("/account").await.into_string().await.unwrap(), "csrf_token").unwrap();
    assert_is_redirect_to(&unlink(token).dispatch().await, "/account");
    let page = app.get("/account").await.into_string().await.unwrap();
    assert!(page.contains("is your only way to sign in"), "{page}");
    assert!(page.contains("Connected as octo@example.com"));

    let no_token =
        app.client.post("/account/unlink/github").header(ContentType::Form).body("").dispatch().await;
    assert_eq!(no_token.status(), Status::Forbidden);
}

#[rocket::async_test]
async fn a_user_with_a_password_can_disconnect_a_provider() {
    let (app, github) = github_app().await;
    github.token_ok().await;
    let user = app.create_user("alice", PASSWORD).await;
    app.store().link_identity(user.id, "github", "4242", None, START).await.unwrap();
    app.sign_in("alice", PASSWORD).await;
    let token =
        extract_hidden(&app.get("/account").await.into_string().await.unwrap(), "csrf_token").unwrap();
    let response = post_form(&app, "/account/unlink/github", &token).await;
    assert_is_redirect_to(&response, "/account");
    assert!(app.store().identities(user.id).await.unwrap().is_empty());
}

#[rocket::async_test]
async fn an_unconfigured_provider_has_no_routes() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/login/github").await.status(), Status::NotFound);
    assert_eq!(app.get("/auth/github?code=c&state=s").await.status(), Status::NotFound);
    assert_eq!(app.get("/login/gitlab").await.status(), Status::NotFound);
    let page = app.get("/login").await.into_string().await.unwrap();
    assert!(!page.contains("Sign in with"));
}

#[rocket::async_test]
async fn google_discovery_is_retried_after_a_failure() {
    let google = FakeGoogle { server: wiremock::MockServer::start().await };
    let app = TestApp::spawn_with(|f| google.figment(f)).await;
    // Nothing is served yet: the portal started anyway, and the button says it is unavailable.
    let response = app.get("/login/google").await;
    assert_is_redirect_to(&response, "/login");
    let page = app.get("/login").await.into_string().await.unwrap();
    assert!(page.contains("Google is not reachable right now."), "{page}");

    google.serve_discovery().await;
    let flow = start(&app, "/login/google").await;
    assert!(flow.nonce.is_some());
}

#[rocket::async_test]
async fn half_configured_providers_stop_startup() {
    use rocket::local::asynchronous::Client;
    let (_dir, db) = temp_db();
    let bad = [
        test_figment(&db, &secret_key()).merge(("oauth.github.client_id", "id")),
        test_figment(&db, &secret_key())
            .merge(("oauth.github.client_id", "id"))
            .merge(("oauth.github.client_secret", "s"))
            .merge(("oauth.github.redirect_uri", "not a url")),
        test_figment(&db, &secret_key())
            .merge(("oauth.google.client_id", "id"))
            .merge(("oauth.google.client_secret", "s"))
            .merge(("oauth.google.redirect_uri", "http://127.0.0.1:8000/auth/google"))
            .merge(("oauth.google.issuer", "ftp://accounts.example")),
    ];
    for figment in bad {
        let result = Client::tracked(portal::rocket_with(figment, portal::Overrides::default())).await;
        let Err(error) = result else { panic!("must not start") };
        error.pretty_print();
    }
}

#[rocket::async_test]
async fn form_login_still_works_with_providers_configured() {
    let (app, _github) = github_app().await;
    app.create_user("alice", PASSWORD).await;
    assert_is_redirect_to(&app.post_login("alice", PASSWORD).await, "/");
}

#[rocket::async_test]
async fn behind_tls_the_flow_cookie_takes_the_host_prefix_and_the_round_trip_works() {
    let (app, github) = github_app_with(|f| f.merge(("secure_cookies", true))).await;
    github.token_ok().await;
    let response = app.get("/login/github").await;
    let flow = set_cookies(&response).into_iter().find(|c| c.name() == "__Host-portal_oauth");
    assert!(flow.is_some_and(|c| c.secure() == Some(true) && c.path() == Some("/") && c.domain().is_none()));
    let state = query(location(&response).unwrap())["state"].clone();

    let callback = app.get(&format!("/auth/github?code=good-code&state={state}")).await;
    assert_is_redirect_to(&callback, "/welcome");
    assert_eq!(session_cookie(&callback).unwrap().name(), format!("__Host-{}", session_cookie_name()));
}
