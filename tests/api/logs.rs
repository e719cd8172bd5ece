//! The real binary's log, read back: every sign-in attempt is there, and no password,
//! code, state, token, client secret, cookie value or password link is.

use reqwest::header::{COOKIE, LOCATION};

use portal_testkit::app::{cookie_pairs, http_client, LoginForm};
use portal_testkit::fakes::{query, rocket_oauth, FakeGithub, CLIENT_SECRET, GITHUB_TOKEN};
use portal_testkit::process::{free_port, Launch, Portal};
use portal_testkit::{session_cookie_name, PASSWORD};

/// The real binary with GitHub configured against a fake one on loopback, `logtest` added,
/// its log uncoloured; the fake (kept alive), how it was launched, the server and its base URL.
async fn serve_with_github() -> (FakeGithub, Launch, Portal, String) {
    let github = FakeGithub::start().await;
    github.token_ok().await;
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let launch = Launch::in_checkout()
        .test_config(home.path())
        .env("ROCKET_OAUTH", rocket_oauth(&base, None, Some(&github)))
        .env("ROCKET_CLI_COLORS", "false");
    launch.add_user("logtest");
    let server = launch.serve(home, port);
    (github, launch, server, base)
}

#[rocket::async_test]
async fn the_server_log_shows_attempts_but_no_secrets() {
    let (_github, launch, server, base) = serve_with_github().await;

    let http = http_client();
    let form = LoginForm::fetch(&http, &base).await;
    let wrong = "hunter2-is-not-it";
    for password in [wrong, PASSWORD] {
        form.post(&[("username", "logtest"), ("password", password)]).await;
    }

    let start = http.get(format!("{base}/login/github")).send().await.unwrap();
    let flow_cookie = cookie_pairs(&start).join("; ");
    let state = query(start.headers()[LOCATION].to_str().unwrap())["state"].clone();
    let code = "SECRET-CODE-0123456789";
    let callback = http
        .get(format!("{base}/auth/github?code={code}&state={state}"))
        .header(COOKIE, &flow_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(callback.headers()[LOCATION], "/welcome");
    let session_prefix = format!("{}=", session_cookie_name());
    let session = cookie_pairs(&callback).into_iter().find(|c| c.starts_with(&session_prefix)).unwrap();

    // A one-time password link, made on the command line and followed: its token is the
    // path, and the request lines must not show it.
    let made = launch.run(&["users", "reset", "logtest"], "");
    let printed = String::from_utf8_lossy(&made.stdout).into_owned();
    let link = printed.lines().find(|l| l.starts_with("/reset/")).expect("the link").to_owned();
    let token = link.trim_start_matches("/reset/").to_owned();
    let page = http.get(format!("{base}{link}")).send().await.unwrap();
    let jar = cookie_pairs(&page).join("; ");
    let csrf = portal_testkit::app::extract_hidden(&page.text().await.unwrap(), "csrf_token").unwrap();
    let chosen = "a passphrase chosen through the link";
    let fields = [("csrf_token", csrf.as_str()), ("new_password", chosen), ("confirm_password", chosen)];
    let reset = http
        .post(format!("{base}{link}"))
        .header(COOKIE, &jar)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(portal_testkit::app::form_body(&fields))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 303, "the link set the password");

    let log = server.stop();

    assert!(log.contains("username=\"logtest\"") && log.contains("outcome=invalid-credentials"), "{log}");
    assert!(log.contains("outcome=success"), "{log}");
    assert!(log.contains("GET /auth/github?…:"), "the request line is logged, without its query: {log}");
    assert!(log.contains("POST /reset/…"), "the link's request line is logged, without its token: {log}");
    let session_value = session.trim_start_matches(&session_prefix);
    let secrets = [
        wrong,
        PASSWORD,
        code,
        &state,
        GITHUB_TOKEN,
        CLIENT_SECRET,
        session_value,
        &form.token,
        &token,
        chosen,
    ];
    for secret in secrets {
        assert!(!log.contains(secret), "the log contains {secret:?}:\n{log}");
    }
}

/// A secret-looking value, unique per use, that the log must never show.
fn secret(label: &str) -> String {
    format!("{label}-{:016x}", rand::random::<u64>())
}

#[rocket::async_test]
async fn refused_and_accepted_requests_on_secret_paths_and_queries_leave_no_secret_in_the_log() {
    let (_github, launch, server, base) = serve_with_github().await;
    let http = http_client();
    let form_type = (reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    let mut secrets: Vec<String> = Vec::new();

    // A live one-time link, refused by the CSRF check, then by the origin check, then used.
    let made = launch.run(&["users", "reset", "logtest"], "");
    let printed = String::from_utf8_lossy(&made.stdout).into_owned();
    let link = printed.lines().find(|l| l.starts_with("/reset/")).expect("the link").to_owned();
    let token = link.trim_start_matches("/reset/").to_owned();
    let page = http.get(format!("{base}{link}")).send().await.unwrap();
    let jar = cookie_pairs(&page).join("; ");
    let csrf = portal_testkit::app::extract_hidden(&page.text().await.unwrap(), "csrf_token").unwrap();
    let chosen = "another passphrase chosen through the link";
    let fields = [("new_password", chosen), ("confirm_password", chosen)];
    let forged = http
        .post(format!("{base}{link}"))
        .header(COOKIE, &jar)
        .header(form_type.0.clone(), form_type.1)
        .body(portal_testkit::app::form_body(&fields))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "no CSRF token");
    let with_token = [("csrf_token", csrf.as_str()), fields[0], fields[1]];
    let cross_site = http
        .post(format!("{base}{link}"))
        .header(COOKIE, &jar)
        .header("Origin", "https://evil.example")
        .header(form_type.0.clone(), form_type.1)
        .body(portal_testkit::app::form_body(&with_token))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403, "a cross-site POST");
    for mangled in [format!("/RESET/{token}"), format!("/login?next=%2Freset%2F{token}")] {
        http.get(format!("{base}{mangled}")).send().await.unwrap();
    }
    let used = http
        .post(format!("{base}{link}"))
        .header(COOKIE, &jar)
        .header(form_type.0.clone(), form_type.1)
        .body(portal_testkit::app::form_body(&with_token))
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), 303, "the refusals did not use the link up");
    secrets.extend([token, csrf.clone(), chosen.to_owned()]);

    // The planned link paths: no route yet, so every request is refused (404) or, for a
    // POST without a token or from elsewhere, 403/404; the log still sees each path.
    for path in ["verify", "invite"] {
        let value = secret(path);
        let url = format!("{base}/{path}/{value}");
        http.get(&url).send().await.unwrap();
        http.post(&url).header(form_type.0.clone(), form_type.1).body("x=1").send().await.unwrap();
        let foreign = http.post(&url).header("Origin", "https://evil.example");
        foreign.header(form_type.0.clone(), form_type.1).body("x=1").send().await.unwrap();
        secrets.push(value);
    }

    // The provider's callback: accepted (right state, flow cookie), then refused (a state
    // this browser never started), then for a provider that is not configured.
    let start = http.get(format!("{base}/login/github")).send().await.unwrap();
    let flow_cookie = cookie_pairs(&start).join("; ");
    let state = query(start.headers()[LOCATION].to_str().unwrap())["state"].clone();
    let code = secret("code");
    let accepted = http
        .get(format!("{base}/auth/github?code={code}&state={state}"))
        .header(COOKIE, &flow_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.headers()[LOCATION], "/welcome");
    let (wrong_code, wrong_state) = (secret("code"), secret("state"));
    let refused = http.get(format!("{base}/auth/github?code={wrong_code}&state={wrong_state}")).send().await;
    assert_ne!(refused.unwrap().headers()[LOCATION], "/welcome");
    let (google_code, google_state) = (secret("code"), secret("state"));
    http.get(format!("{base}/auth/google?state={google_state}&code={google_code}")).send().await.unwrap();
    secrets.extend([code, state, wrong_code, wrong_state, google_code, google_state]);

    // Every other parameter on the list, on a page that exists and on one that does not.
    for name in ["token", "access_token", "id_token", "refresh_token", "client_secret", "password"] {
        let value = secret(name);
        http.get(format!("{base}/login?{name}={value}")).send().await.unwrap();
        http.get(format!("{base}/nowhere?a=1&{name}={value}")).send().await.unwrap();
        secrets.push(value);
    }

    let log = server.stop();
    assert!(log.contains("POST /reset/…"), "the link's request lines are logged, blanked: {log}");
    assert!(log.contains("refused: /reset/…"), "the CSRF refusal is logged, blanked: {log}");
    assert!(log.contains("refused a cross-site POST /reset/…"), "so is the origin refusal: {log}");
    assert!(log.contains("/verify/…") && log.contains("/invite/…"), "{log}");
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "the log contains {secret:?}:\n{log}");
    }
}

/// At `log_level = critical` the log is for what needs an operator: a signed-out visitor's
/// redirect, an unknown page and an `/api` 401 are the portal's routine, and Rocket's
/// "No matching routes" / "Responding with … catcher" / "Request guard … is forwarding"
/// lines for them are left out. The sign-in record is still written.
#[rocket::async_test]
async fn critical_leaves_out_routine_routing_but_keeps_the_sign_in_record() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let launch = Launch::in_checkout()
        .test_config(home.path())
        .env("ROCKET_LOG_LEVEL", "critical")
        .env("ROCKET_CLI_COLORS", "false");
    launch.add_user("quiet");
    let server = launch.serve(home, port);

    let http = http_client();
    let out = http.get(format!("{base}/welcome")).send().await.unwrap();
    assert_eq!(out.status(), 303, "signed out: the redirect to the login page");
    assert_eq!(http.get(format!("{base}/nowhere")).send().await.unwrap().status(), 404);
    assert_eq!(http.get(format!("{base}/api/me")).send().await.unwrap().status(), 401);
    let form = LoginForm::fetch(&http, &base).await;
    form.post(&[("username", "quiet"), ("password", "not the password")]).await;

    let log = server.stop();
    for routine in ["No matching routes", "catcher", "is forwarding"] {
        assert!(!log.contains(routine), "{routine:?} at critical:\n{log}");
    }
    assert!(log.contains("username=\"quiet\"") && log.contains("outcome=invalid-credentials"), "{log}");
}
