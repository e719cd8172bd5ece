//! The real binary's log, read back: every sign-in attempt is there, and no password,
//! code, state, token, client secret or cookie value is.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

use crate::cli::portal;
use crate::helpers::*;
use crate::providers::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `name=value` pairs of a response's Set-Cookie headers (empty values are removals).
fn cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .filter(|pair| !pair.ends_with('='))
        .collect()
}

#[rocket::async_test]
async fn the_server_log_shows_attempts_but_no_secrets() {
    let github = FakeGithub::start().await;
    github.token_ok().await;
    let (_dir, db) = temp_db();
    assert!(portal(&db, &["users", "add", "logtest"], &format!("{PASSWORD}\n")).status.success());

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let oauth = format!(
        "{{github={{client_id=\"{GITHUB_ID}\",client_secret=\"{CLIENT_SECRET}\",redirect_uri=\"{base}/auth/github\",\
         auth_uri=\"{gh}/login/oauth/authorize\",token_uri=\"{gh}/login/oauth/access_token\",api_uri=\"{gh}\"}}}}",
        gh = github.server.uri()
    );
    let log_path = _dir.path().join("portal.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_portal"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("ROCKET_PORT", port.to_string())
        .env("ROCKET_ADDRESS", "127.0.0.1")
        .env("ROCKET_DATABASES", format!("{{portal={{url=\"{db}\"}}}}"))
        .env("ROCKET_SECRET_KEY", secret_key())
        .env("ROCKET_OAUTH", oauth)
        .env("ROCKET_CLI_COLORS", "false")
        .stdout(Stdio::from(log_file.try_clone().unwrap()))
        .stderr(Stdio::from(log_file))
        .spawn()
        .unwrap();

    let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/health")).send().await.map(|r| r.status() != 200).unwrap_or(true) {
        assert!(Instant::now() < deadline, "the portal did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let login = http.get(format!("{base}/login")).send().await.unwrap();
    let jar = cookies(&login).join("; ");
    let token = extract_hidden(&login.text().await.unwrap(), "csrf_token").unwrap();
    let wrong = "hunter2-is-not-it";
    for password in [wrong, PASSWORD] {
        let body = form_body(&[("csrf_token", &token), ("username", "logtest"), ("password", password)]);
        http.post(format!("{base}/login"))
            .header(COOKIE, &jar)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
    }

    let start = http.get(format!("{base}/login/github")).send().await.unwrap();
    let flow_cookie = cookies(&start).join("; ");
    let state = query(start.headers()[LOCATION].to_str().unwrap())["state"].clone();
    let code = "SECRET-CODE-0123456789";
    let callback = http
        .get(format!("{base}/auth/github?code={code}&state={state}"))
        .header(COOKIE, &flow_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(callback.headers()[LOCATION], "/welcome");
    let session = cookies(&callback).into_iter().find(|c| c.starts_with("portal_session=")).unwrap();

    server.kill().unwrap();
    server.wait().unwrap();
    let mut log = String::new();
    std::fs::File::open(&log_path).unwrap().read_to_string(&mut log).unwrap();

    assert!(log.contains("username=\"logtest\"") && log.contains("outcome=invalid-credentials"), "{log}");
    assert!(log.contains("outcome=success"), "{log}");
    assert!(log.contains("GET /auth/github?…:"), "the request line is logged, without its query: {log}");
    let session_value = session.trim_start_matches("portal_session=");
    for secret in [wrong, PASSWORD, code, &state, GITHUB_TOKEN, CLIENT_SECRET, session_value, &token] {
        assert!(!log.contains(secret), "the log contains {secret:?}:\n{log}");
    }
}
