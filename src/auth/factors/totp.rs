//! Authenticator apps (RFC 6238): SHA-1, 6 digits, 30-second steps, the setting every app
//! reads. A code is accepted for the current step and one either side; which step matched
//! is returned, so the store can refuse a step that was already used.

use totp_rs::{Algorithm, TOTP};

pub const DIGITS: usize = 6;
pub const PERIOD: i64 = 30;
/// 160 bits, as RFC 4226 recommends for the shared secret.
pub const SECRET_BYTES: usize = 20;

pub fn new_secret() -> [u8; SECRET_BYTES] {
    rand::random()
}

/// The crate's generator for this secret; `None` when the secret is too short.
fn generator(secret: &[u8], issuer: &str, account: &str) -> Option<TOTP> {
    // The `otpauth` label is `issuer:account`: a `:` in either would split it wrongly.
    let clean = |text: &str| text.replace(':', " ");
    let step = u64::try_from(PERIOD).ok()?;
    TOTP::new(Algorithm::SHA1, DIGITS, 1, step, secret.to_vec(), Some(clean(issuer)), clean(account)).ok()
}

/// The 30-second step `now` falls in.
pub fn step_of(now: i64) -> i64 {
    now.div_euclid(PERIOD)
}

/// The code for a step.
pub fn code_at(secret: &[u8], step: i64) -> Option<String> {
    let at = u64::try_from(step.checked_mul(PERIOD)?).ok()?;
    Some(generator(secret, "", "")?.generate(at))
}

/// The step `code` is right for at `now`: the current one, the one before or the one after.
/// Each comparison runs in constant time, and all three always run.
pub fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let current = step_of(now);
    let mut found = None;
    for step in [current - 1, current, current + 1] {
        let Some(expected) = code_at(secret, step) else { continue };
        let same: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes()).into();
        if same && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The secret as people type it: base32 without padding.
pub fn secret_text(secret: &[u8]) -> String {
    generator(secret, "", "").map(|g| g.get_secret_base32()).unwrap_or_default()
}

/// `otpauth://totp/Issuer:account?secret=…&issuer=Issuer`: what the QR code carries.
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> String {
    generator(secret, issuer, account).map(|g| g.get_url()).unwrap_or_default()
}

/// A QR code as one SVG path (`M x y h1 v1 h-1 z` per dark module), in a square of
/// `size` modules plus a four-module quiet zone each side: drawn on the server, so the
/// setup page needs no script and no image host.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QrPath {
    /// The side of the view box, quiet zone included.
    pub size: i32,
    pub path: String,
}

pub fn qr_path(text: &str) -> Option<QrPath> {
    use std::fmt::Write;
    let qr = qrcodegen::QrCode::encode_text(text, qrcodegen::QrCodeEcc::Medium).ok()?;
    let quiet = 4;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                let _ = write!(path, "M{} {}h1v1h-1z", x + quiet, y + quiet);
            }
        }
    }
    Some(QrPath { size: qr.size() + 2 * quiet, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 secret "12345678901234567890".
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn codes_match_rfc_6238s_test_vectors() {
        // The RFC's 8-digit values, last six digits.
        for (time, code) in
            [(59, "287082"), (1_111_111_109, "081804"), (1_234_567_890, "005924"), (2_000_000_000, "279037")]
        {
            assert_eq!(code_at(RFC_SECRET, step_of(time)).unwrap(), code, "at {time}");
        }
    }

    #[test]
    fn a_code_is_right_for_its_step_and_one_either_side_only() {
        let now = 1_800_000_015;
        let step = step_of(now);
        let code = code_at(RFC_SECRET, step).unwrap();
        assert_eq!(matching_step(RFC_SECRET, &code, now), Some(step));
        assert_eq!(matching_step(RFC_SECRET, &code, now + PERIOD), Some(step), "one step late");
        assert_eq!(matching_step(RFC_SECRET, &code, now - PERIOD), Some(step), "one step early");
        assert_eq!(matching_step(RFC_SECRET, &code, now + 2 * PERIOD), None, "two steps late");
        assert_eq!(matching_step(RFC_SECRET, &code, now - 2 * PERIOD), None, "two steps early");
        assert_eq!(matching_step(RFC_SECRET, "000000", now).is_some(), code == "000000");
    }

    #[test]
    fn the_uri_carries_the_secret_the_issuer_and_the_account() {
        let uri = otpauth_uri(RFC_SECRET, "Acme: Portal", "alice");
        assert_eq!(
            uri,
            format!(
                "otpauth://totp/Acme%20%20Portal:alice?secret={}&issuer=Acme%20%20Portal",
                secret_text(RFC_SECRET)
            )
        );
        assert_eq!(secret_text(RFC_SECRET), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn the_qr_code_is_a_square_path_with_a_quiet_zone() {
        let qr = qr_path("otpauth://totp/x?secret=ABC").unwrap();
        assert!(qr.size >= 21 + 8);
        assert!(qr.path.starts_with("M4 4h1v1h-1z"), "a finder pattern's corner is dark");
    }
}
