//! The real binary started from an empty directory with a two-key configuration: the
//! defaults the README documents come from the code, not from the repository's `Rocket.toml`.
//!
//! CI runs this against the release binary (`PORTAL_RELEASE_BIN=target/release/portal`);
//! otherwise it runs this build's binary with the release profile selected.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::redirect::Policy;

use crate::helpers::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The binary under test, and whether it is a release build.
fn binary() -> (PathBuf, bool) {
    match std::env::var_os("PORTAL_RELEASE_BIN") {
        Some(path) => {
            let absolute = std::fs::canonicalize(&path);
            (absolute.unwrap_or_else(|e| panic!("PORTAL_RELEASE_BIN={path:?}: {e}")), true)
        }
        None => {
            eprintln!(
                "binary: PORTAL_RELEASE_BIN is not set, so this build's binary runs with the release \
                 profile; `cargo build --release` and set PORTAL_RELEASE_BIN=target/release/portal to \
                 test the release binary (CI does)"
            );
            (PathBuf::from(env!("CARGO_BIN_EXE_portal")), false)
        }
    }
}

/// The binary run in `dir`, with nothing from the environment but what is given.
fn command(bin: &Path, release: bool, dir: &Path) -> Command {
    let mut command = Command::new(bin);
    command.current_dir(dir).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    if !release {
        command.env("ROCKET_PROFILE", "release");
    }
    command
}

/// `name=value` pairs of a response's Set-Cookie headers (empty values are removals).
fn cookies(response: &reqwest::Response) -> String {
    let pairs: Vec<_> = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .filter(|pair| !pair.ends_with('='))
        .collect();
    pairs.join("; ")
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[rocket::async_test]
async fn the_binary_with_a_two_key_config_logs_sign_ins_and_keeps_the_16_kib_form_limit() {
    let log = sign_in_twice_and_post_17_kib("").await;
    assert!(!log.contains('\u{1b}'), "no colour codes when the output is a file: {log:?}");
}

#[rocket::async_test]
async fn sign_ins_are_logged_even_when_log_level_quiets_rocket() {
    let log = sign_in_twice_and_post_17_kib("log_level = \"critical\"\n").await;
    assert!(!log.contains("Routes:"), "Rocket's own chatter is quieted: {log}");
}

/// Runs the binary in an empty directory whose `Rocket.toml` holds `secret_key`, the
/// database URL and `extra`; signs in wrongly then rightly, posts a 17 KiB form (413), and
/// returns the log after checking that both attempts are in it.
async fn sign_in_twice_and_post_17_kib(extra: &str) -> String {
    let (bin, release) = binary();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("portal.sqlite").display());
    let config =
        format!("[default]\nsecret_key = \"{}\"\ndatabases.portal.url = \"{db}\"\n{extra}", secret_key());
    std::fs::write(dir.path().join("Rocket.toml"), config).unwrap();

    let mut add = command(&bin, release, dir.path())
        .args(["users", "add", "carol"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut add.stdin.take().unwrap(), format!("{PASSWORD}\n").as_bytes()).unwrap();
    assert!(add.wait().unwrap().success(), "users add");

    let port = free_port();
    let log_path = dir.path().join("portal.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let _server = Killed(
        command(&bin, release, dir.path())
            .env("ROCKET_PORT", port.to_string())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/health")).send().await.map(|r| r.status() != 200).unwrap_or(true) {
        assert!(Instant::now() < deadline, "the portal did not start: {}", read(&log_path));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let page = http.get(format!("{base}/login")).send().await.unwrap();
    let jar = cookies(&page);
    let token = extract_hidden(&page.text().await.unwrap(), "csrf_token").unwrap();
    let post = |body: String| {
        http.post(format!("{base}/login"))
            .header(COOKIE, &jar)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let login =
        |password: &str| form_body(&[("csrf_token", &token), ("username", "carol"), ("password", password)]);
    assert_eq!(post(login("not her password")).await.unwrap().status(), 200);
    assert_eq!(post(login(PASSWORD)).await.unwrap().status(), 303);
    let padding = "x".repeat(17 * 1024);
    let oversized = post(form_body(&[("csrf_token", &token), ("username", "carol"), ("padding", &padding)]));
    assert_eq!(oversized.await.unwrap().status(), 413, "a 17 KiB form is over the 16 KiB default");

    let log = read(&log_path);
    assert!(log.contains("username=\"carol\"") && log.contains("outcome=invalid-credentials"), "{log}");
    assert!(log.contains("outcome=success"), "{log}");
    log
}

fn read(path: &Path) -> String {
    let mut text = String::new();
    std::fs::File::open(path).unwrap().read_to_string(&mut text).unwrap();
    text
}
