//! The real binary's log, read back: every sign-in attempt is there, and no password,
//! code, state, token, client secret, cookie value or password link is.

use reqwest::header::{COOKIE, LOCATION};

use portal_testkit::app::{cookie_pairs, http_client, LoginForm};
use portal_testkit::fakes::{query, rocket_oauth, FakeGithub, CLIENT_SECRET, GITHUB_TOKEN};
use portal_testkit::process::{free_port, Launch};
use portal_testkit::{session_cookie_name, PASSWORD};

#[rocket::async_test]
async fn the_server_log_shows_attempts_but_no_secrets() {
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
