//! The one test kit, a dev-only crate every test binary (`api`, `postgres`, `browser`,
//! `proxy`, `cluster`) depends on: the test password, the session cookie's name, `TestApp`
//! (the app on Rocket's local client), fake Google and GitHub, the real binary on a free port,
//! nginx and Caddy in front of it, and a raw HTTP/1.1 client.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

pub mod app;
pub mod fakes;
pub mod oidc;
pub mod process;
pub mod proxy;
pub mod smtp;
pub mod visitor;

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
// The one place the tests name where the session cookie is defined: a move in `src/` is a
// one-line change here.
use portal::web::session::SESSION_COOKIE;

/// The password every test user gets (long enough for the password policy).
pub const PASSWORD: &str = "correct horse battery staple";

/// How long any one wait may take before the test fails (generous: two cores, shared).
pub const PATIENCE: Duration = Duration::from_secs(20);
/// How often a wait looks again.
pub const POLL: Duration = Duration::from_millis(50);

/// The session cookie's name over plain http.
pub fn session_cookie_name() -> &'static str {
    SESSION_COOKIE.get(false)
}

/// The session cookie's name behind TLS (`__Host-` prefixed).
pub fn secure_session_cookie_name() -> &'static str {
    SESSION_COOKIE.get(true)
}

/// A fresh random 512-bit `secret_key`, base64.
pub fn secret_key() -> String {
    let mut key = [0u8; 64];
    rand::Rng::fill(&mut rand::thread_rng(), &mut key[..]);
    STANDARD.encode(key)
}

/// The URL of a store file in `dir`, created on first use.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("portal.sqlite").display())
}

/// The PostgreSQL server the suites may use: `PORTAL_TEST_POSTGRES`, a URL of a database
/// on it that the tests may connect to (`bash .ci/postgres.sh` starts one and prints it).
/// Unset, the suites run on SQLite and the PostgreSQL-only tests say they were skipped.
pub fn postgres_server() -> Option<String> {
    std::env::var("PORTAL_TEST_POSTGRES").ok().filter(|url| !url.trim().is_empty())
}

/// How to run the PostgreSQL suites, for the line a skipped one prints.
pub const POSTGRES_HOWTO: &str =
    "set PORTAL_TEST_POSTGRES=$(bash .ci/postgres.sh) to run it (`.ci/run` does)";

/// One test of the PostgreSQL store suite (`--features postgres --test postgres`) may run:
/// the server and a turn of its own. The suite's tests take turns: some cut or restart what
/// every connection goes through, and the timings of the races they stage assume two cores.
pub struct PostgresTurn {
    /// `PORTAL_TEST_POSTGRES`.
    pub server: String,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// The server for one test of the PostgreSQL store suite, once the tests before it are done;
/// `None` without `PORTAL_TEST_POSTGRES`, having said once, loudly, that the suite is skipped.
pub async fn postgres_turn() -> Option<PostgresTurn> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    static SKIPPED: Once = Once::new();
    let Some(server) = postgres_server() else {
        // Past libtest's capture (it takes `print!`, not writes to the stream), so the line
        // shows in a passing run.
        SKIPPED.call_once(|| {
            use std::io::Write;
            let line = format!("SKIPPED: the PostgreSQL store suite (tests/postgres): {POSTGRES_HOWTO}\n");
            let _ = std::io::stderr().write_all(line.as_bytes());
        });
        return None;
    };
    Some(PostgresTurn { server, _turn: TURN.lock().await })
}

/// The repository's root: the portal's own `Cargo.toml`, `deploy/`, `tests/`.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the kit sits inside the repository")
}

/// This build's `portal` binary: beside the `deps/` directory the running test binary is in
/// (cargo builds a package's binaries before its integration tests).
pub fn this_builds_binary() -> PathBuf {
    let test = std::env::current_exe().expect("the test binary's path");
    let dir = test.parent().and_then(Path::parent).expect("a test binary sits in target/PROFILE/deps/");
    let bin = dir.join(format!("portal{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "no portal binary at {} (run the tests through cargo)", bin.display());
    bin
}

/// The release build `PORTAL_RELEASE_BIN` names (CI sets it to `target/release/portal`),
/// made absolute; `None` when it is unset (the binary and cluster tests then run this
/// build's binary).
pub fn release_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PORTAL_RELEASE_BIN")?;
    Some(std::fs::canonicalize(&path).unwrap_or_else(|e| panic!("PORTAL_RELEASE_BIN={path:?}: {e}")))
}

/// A new, empty database on `server` (named at random); its URL.
pub fn new_postgres_database(server: &str) -> String {
    use sqlx::{Connection, Executor};
    let name = format!("portal_test_{:016x}", rand::random::<u64>());
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server, String::new()),
    };
    let root = base.rsplit_once('/').map_or(base, |(root, _)| root);
    let url = format!("{root}/{name}{query}");
    let server = server.to_owned();
    let create = format!("CREATE DATABASE {name}");
    // Its own thread and runtime: callers are sync, inside an async test or not.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async {
            let mut admin = sqlx::PgConnection::connect(&server)
                .await
                .unwrap_or_else(|e| panic!("PORTAL_TEST_POSTGRES ({server}) does not answer: {e}"));
            admin.execute(create.as_str()).await.expect("CREATE DATABASE");
            admin.close().await.expect("close");
        })
    })
    .join()
    .expect("the database is made");
    url
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    /// Every suite reaches shared code through this crate; a `#[path]` attribute under
    /// `tests/` would include one suite's files in another again.
    #[test]
    fn no_test_file_includes_another_by_path() {
        fn walk(dir: &Path, found: &mut Vec<String>) {
            for entry in fs::read_dir(dir).expect("a readable directory") {
                let path = entry.expect("an entry").path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = fs::read_to_string(&path).expect("a readable file");
                    if text.contains("#[path") {
                        found.push(path.display().to_string());
                    }
                }
            }
        }
        let mut found = Vec::new();
        walk(&super::repo_root().join("tests"), &mut found);
        assert!(found.is_empty(), "#[path] under tests/: {found:?}");
    }
}
