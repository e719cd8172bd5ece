//! The one test kit, shared by every test binary (`api`, `browser`, `proxy`), each of which
//! includes it with `#[path = "../common/mod.rs"] mod common;`: the test password, the
//! session cookie's name, fake Google and GitHub, and the real binary on a free port.
// Each binary uses a different part of the kit; what one of them leaves unused would
// otherwise warn there as dead code.
#![allow(dead_code)]

pub mod fakes;
pub mod process;

use std::path::Path;
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
