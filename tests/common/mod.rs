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
