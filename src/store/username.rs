//! The username rule: what a username may be, the form it is shown in, and the key it is
//! compared by.

use unicode_normalization::UnicodeNormalization;

pub const MAX_USERNAME_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("a username needs 1 to {MAX_USERNAME_CHARS} characters")]
    Length,
    #[error("a username cannot contain spaces or control characters")]
    Characters,
}

/// A parsed username: the form it is stored and shown in (NFKC, trimmed), and the key it is
/// compared by (NFKC, lowercased, NFKC again since lowercasing can denormalise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    display: String,
    key: String,
}

impl Username {
    pub fn parse(raw: &str) -> Result<Username, UsernameError> {
        let display: String = raw.trim().nfkc().collect();
        let chars = display.chars().count();
        if chars == 0 || chars > MAX_USERNAME_CHARS {
            return Err(UsernameError::Length);
        }
        if display.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UsernameError::Characters);
        }
        let key = display.to_lowercase().nfkc().collect();
        Ok(Username { display, key })
    }

    /// As typed, normalised: what pages show.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// What uniqueness, lookups and the throttle use.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// The throttle's key for whatever was typed: the username's key, or the raw text when it
/// cannot be a username (it still counts against the IP).
pub fn account_key(raw: &str) -> String {
    Username::parse(raw).map_or_else(|_| raw.to_owned(), |u| u.key)
}

/// The form an email is searched by: trimmed and lowercased (the whole address: the
/// console finds `Bob@Example.com` by `bob@ex`).
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// What a search box's text is compared with: a username key's form (NFKC, lowercased),
/// without the username rule (a prefix may be anything).
pub fn search_key(raw: &str) -> String {
    let folded: String = raw.trim().nfkc().collect::<String>().to_lowercase();
    folded.nfkc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_compare_case_insensitively_after_nfkc() {
        let a = Username::parse("Admin").unwrap();
        let b = Username::parse("ＡＤＭＩＮ").unwrap(); // fullwidth letters
        assert_eq!(a.key(), b.key());
        assert_eq!(a.key(), "admin");
    }

    #[test]
    fn usernames_keep_their_case_for_display() {
        assert_eq!(Username::parse("  Alice ").unwrap().display(), "Alice");
    }

    #[test]
    fn odd_usernames_are_refused() {
        assert_eq!(Username::parse(""), Err(UsernameError::Length));
        assert_eq!(Username::parse("   "), Err(UsernameError::Length));
        assert_eq!(Username::parse(&"a".repeat(65)), Err(UsernameError::Length));
        assert_eq!(Username::parse("a b"), Err(UsernameError::Characters));
        assert_eq!(Username::parse("a\u{0}b"), Err(UsernameError::Characters));
    }
}
