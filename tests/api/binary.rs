//! The real binary started from an empty directory with a two-key configuration: the
//! defaults docs/configuration.md documents come from the code, not from the repository's `Rocket.toml`.
//!
//! CI runs this against the release binary (`PORTAL_RELEASE_BIN=target/release/portal`);
//! otherwise it runs this build's binary with the release profile selected.

use std::path::Path;

use portal_testkit::app::{http_client, LoginForm};
use portal_testkit::process::{free_port, Launch};
use portal_testkit::{release_binary, secret_key, sqlite_url, PASSWORD};

/// The binary under test, run in `dir` with nothing from the environment but what is given:
/// the release build `PORTAL_RELEASE_BIN` names, or this build's with the release profile.
fn launch(dir: &Path) -> Launch {
    match release_binary() {
        Some(bin) => Launch::in_dir(dir).binary(bin),
        None => {
            eprintln!(
                "binary: PORTAL_RELEASE_BIN is not set, so this build's binary runs with the release \
                 profile; `cargo build --release` and set PORTAL_RELEASE_BIN=target/release/portal to \
                 test the release binary (CI does)"
            );
            Launch::in_dir(dir).env("ROCKET_PROFILE", "release")
        }
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
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let config =
        format!("[default]\nsecret_key = \"{}\"\ndatabases.portal.url = \"{db}\"\n{extra}", secret_key());
    std::fs::write(dir.path().join("Rocket.toml"), config).unwrap();

    let launch = launch(dir.path());
    launch.add_user("carol");
    let port = free_port();
    let server = launch.serve(dir, port);
    let base = format!("http://127.0.0.1:{port}");
    let http = http_client();

    let form = LoginForm::fetch(&http, &base).await;
    let login = |password| form.post(&[("username", "carol"), ("password", password)]);
    assert_eq!(login("not her password").await.status(), 200);
    assert_eq!(login(PASSWORD).await.status(), 303);
    let padding = "x".repeat(17 * 1024);
    let oversized = form.post(&[("username", "carol"), ("padding", &padding)]);
    assert_eq!(oversized.await.status(), 413, "a 17 KiB form is over the 16 KiB default");

    let log = server.log();
    assert!(log.contains("username=\"carol\"") && log.contains("outcome=invalid-credentials"), "{log}");
    assert!(log.contains("outcome=success"), "{log}");
    log
}
