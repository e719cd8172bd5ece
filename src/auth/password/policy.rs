//! The password policy (NIST SP 800-63B style): a minimum length, long passphrases, no
//! composition rules, no passwords from breach lists.

use std::collections::HashSet;
use std::sync::LazyLock;

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Long passphrases are welcome; this only keeps a single hash from being abused.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("Use at least {MIN_PASSWORD_CHARS} characters.")]
    TooShort,
    #[error("That password is too long ({MAX_PASSWORD_BYTES} bytes at most).")]
    TooLong,
    #[error("That password is one of the most common ones; choose another.")]
    Common,
    #[error("The password cannot be the username.")]
    SameAsUsername,
}

/// The most common passwords of eight characters or more, from the list Django ships
/// (BSD-3-Clause; compiled by Royce Williams). Shorter ones already fail the length rule.
static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("../../../data/common-passwords.txt").lines().collect());

/// NIST SP 800-63B style: a minimum length, long passphrases allowed, no composition
/// rules, and no passwords from breach lists. Never trims or case-folds what is stored.
/// Judges the NFC form, the one that is hashed: a decomposed `é` is one character, not two.
pub fn check_policy(password: &str, username: &str) -> Result<(), PolicyError> {
    let password = &*super::normalized(password);
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PolicyError::TooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PolicyError::TooLong);
    }
    let lowered = password.to_lowercase();
    if COMMON.contains(lowered.as_str()) {
        return Err(PolicyError::Common);
    }
    if lowered == username.trim().to_lowercase() {
        return Err(PolicyError::SameAsUsername);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_wants_length_not_composition() {
        assert_eq!(check_policy("short", "u"), Err(PolicyError::TooShort));
        assert_eq!(check_policy("all lowercase words", "u"), Ok(()));
        assert_eq!(check_policy(&"x".repeat(64), "u"), Ok(()));
        assert_eq!(check_policy(&"x".repeat(MAX_PASSWORD_BYTES + 1), "u"), Err(PolicyError::TooLong));
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        assert_eq!(check_policy("password", "u"), Err(PolicyError::Common));
        assert_eq!(check_policy("Password1", "u"), Err(PolicyError::Common));
        assert_eq!(check_policy("12345678", "u"), Err(PolicyError::Common));
        assert_eq!(check_policy("iloveyou", "u"), Err(PolicyError::Common));
    }

    #[test]
    fn the_password_cannot_be_the_username() {
        assert_eq!(check_policy("Margaret-Hamilton", "margaret-hamilton"), Err(PolicyError::SameAsUsername));
    }

    #[test]
    fn eight_characters_count_code_points_not_bytes() {
        // Seven characters, but more than eight bytes.
        assert_eq!(check_policy("ééééééé", "u"), Err(PolicyError::TooShort));
        // Seven characters in NFC, fourteen code points as typed (decomposed).
        assert_eq!(check_policy(&"e\u{301}".repeat(7), "u"), Err(PolicyError::TooShort));
    }
}
