//! The username rule: what a username may be, the form it is shown in, and the key it is
//! compared by; and the characters an email address may not carry.
//!
//! Usernames and emails leave the portal in headers (`Remote-User`, `Remote-Email`, …) and
//! pages, so a new one may not carry what could pass for something else there: characters
//! that show nothing (Unicode's format characters, such as bidirectional controls, zero-width
//! joiners, the BOM and the soft hyphen: `bo\u{200b}ss` looks like `boss`), and the
//! separators of comma- or semicolon-separated header values and of quoted strings.
//! Usernames made before the rule was this strict are still found ([`Username::lookup`]).

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

pub const MAX_USERNAME_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("a username needs 1 to {MAX_USERNAME_CHARS} characters")]
    Length,
    #[error("a username cannot contain spaces or control characters")]
    Characters,
    #[error("a username cannot contain invisible or unassigned characters")]
    Invisible,
    #[error("a username cannot contain any of , ; \" < > \\")]
    Separator,
}

/// What separates or quotes values in a header (`Remote-Groups: a, b`, `name="…"`) or an
/// address list (`"Name" <a@b>`); none of them is in a new username.
const USERNAME_SEPARATORS: &[char] = &[',', ';', '"', '<', '>', '\\'];

/// What may not be in an email address the portal accepts: the same, and the parentheses
/// of an address's comments.
const EMAIL_SEPARATORS: &[char] = &[',', ';', '"', '<', '>', '(', ')', '\\'];

/// Whether `c` shows nothing, or may come to mean something else: the general category Other
/// (control Cc, format Cf, private use Co, unassigned Cn), and the default-ignorable code
/// points that are letters or marks (Hangul fillers, variation selectors, the combining
/// grapheme joiner), which render as nothing just the same.
pub fn is_invisible(c: char) -> bool {
    c.general_category_group() == GeneralCategoryGroup::Other
        || matches!(
            c,
            '\u{34F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FFA0}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}

/// Whether an email address has nothing that would break a header or hide in one: no
/// whitespace, control, invisible or unassigned characters, and none of
/// `, ; " < > ( ) \`. (Its shape, one `@` and a length, is checked by the caller.)
pub fn email_characters_ok(email: &str) -> bool {
    !email.chars().any(|c| c.is_whitespace() || is_invisible(c) || EMAIL_SEPARATORS.contains(&c))
}

/// A parsed username: the form it is stored and shown in (NFKC, trimmed), and the key it is
/// compared by (NFKC, lowercased, NFKC again since lowercasing can denormalise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username {
    display: String,
    key: String,
}

impl Username {
    /// A new username: [`Username::lookup`]'s rule, and no invisible characters or
    /// separators (see the module's note).
    pub fn parse(raw: &str) -> Result<Username, UsernameError> {
        let username = Username::lookup(raw)?;
        if username.display.chars().any(is_invisible) {
            return Err(UsernameError::Invisible);
        }
        if username.display.contains(USERNAME_SEPARATORS) {
            return Err(UsernameError::Separator);
        }
        Ok(username)
    }

    /// A username as the store may already hold it: 1 to 64 characters, no whitespace or
    /// control characters. What lookups use, so a name made under this older rule still
    /// signs in and can be managed.
    pub fn lookup(raw: &str) -> Result<Username, UsernameError> {
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
    Username::lookup(raw).map_or_else(|_| raw.to_owned(), |u| u.key)
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

    #[test]
    fn invisible_and_bidirectional_characters_are_refused_in_new_usernames() {
        for c in [
            '\u{200B}',  // zero-width space
            '\u{200C}',  // ZWNJ
            '\u{200D}',  // ZWJ
            '\u{200E}',  // left-to-right mark
            '\u{202E}',  // right-to-left override
            '\u{2066}',  // left-to-right isolate
            '\u{061C}',  // Arabic letter mark
            '\u{FEFF}',  // BOM
            '\u{AD}',    // soft hyphen
            '\u{2060}',  // word joiner
            '\u{E000}',  // private use
            '\u{E0001}', // language tag
            '\u{3164}',  // Hangul filler
            '\u{FE0F}',  // variation selector
            '\u{34F}',   // combining grapheme joiner
        ] {
            let name = format!("bo{c}ss");
            assert_eq!(Username::parse(&name), Err(UsernameError::Invisible), "U+{:04X}", c as u32);
            assert!(Username::lookup(&name).is_ok(), "an old name like it is still found");
        }
    }

    #[test]
    fn header_separators_are_refused_in_new_usernames() {
        for name in ["a,b", "a;b", "a\"b", "a<b", "a>b", "a\\b", "\u{FF0C}x"] {
            assert_eq!(Username::parse(name), Err(UsernameError::Separator), "{name}");
        }
        for name in ["alice", "o'brien", "jean-luc", "a.b_c", "user@example.com", "Zoë", "李小龙", "ali+ce"]
        {
            assert!(Username::parse(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn emails_with_header_separators_or_invisible_characters_are_refused() {
        for bad in [
            "a,b@c.com",
            "a;b@c",
            "\"a\"@c",
            "a<b@c",
            "a>@c",
            "a(b)@c",
            "a\\b@c",
            "a b@c",
            "a\u{200B}@c",
            "a@c\u{202E}",
            "a\t@c",
        ] {
            assert!(!email_characters_ok(bad), "{bad:?}");
        }
        for good in ["bob@example.com", "Zoë@exämple.org", "a+tag@b.c", "o'brien@x.ie"] {
            assert!(email_characters_ok(good), "{good}");
        }
    }
}
