//! Recovery codes: ten per user, 60 random bits each, shown once as `xxxx-xxxx-xxxx` and
//! stored as SHA-256 of the user's id and the code. Typed codes are read generously: any
//! case, spaces and dashes anywhere, and the letters people confuse with digits.

pub const COUNT: usize = 10;
/// Characters per code (5 bits each).
const LENGTH: usize = 12;
/// Crockford's base32, lowercase: no i, l, o or u.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Ten fresh codes, formatted for people.
pub fn new_codes() -> Vec<String> {
    (0..COUNT)
        .map(|_| {
            let raw: String =
                (0..LENGTH).map(|_| char::from(ALPHABET[usize::from(rand::random::<u8>() & 31)])).collect();
            format!("{}-{}-{}", &raw[..4], &raw[4..8], &raw[8..])
        })
        .collect()
}

/// A typed code in its one stored form, or `None` when it cannot be a recovery code.
pub fn normalize(typed: &str) -> Option<String> {
    let mut out = String::with_capacity(LENGTH);
    for c in typed.chars() {
        let c = match c.to_ascii_lowercase() {
            ' ' | '-' => continue,
            'i' | 'l' => '1',
            'o' => '0',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
            _ => return None,
        };
        out.push(c);
        if out.len() > LENGTH {
            return None;
        }
    }
    (out.len() == LENGTH).then_some(out)
}

/// What the store keeps of a (normalized) code.
pub fn hash(user_id: i64, normalized: &str) -> String {
    crate::auth::session::hash_secret(&format!("{user_id}:{normalized}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_codes_are_ten_distinct_codes_that_read_back_as_themselves() {
        let codes = new_codes();
        assert_eq!(codes.len(), 10);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 14);
            assert_eq!(normalize(code).unwrap(), code.replace('-', ""));
        }
    }

    #[test]
    fn typed_codes_are_read_generously_and_nothing_else_is_a_code() {
        assert_eq!(normalize("ABCD EFGH JKMN").unwrap(), "abcdefghjkmn");
        assert_eq!(normalize("oOiI-lL00-1111").unwrap(), "00111100".to_owned() + "1111");
        assert_eq!(normalize("abcd-efgh-jkm"), None, "too short");
        assert_eq!(normalize("abcd-efgh-jkmnp"), None, "too long");
        assert_eq!(normalize("abcd-efgh-jkmu"), None, "u is not in the alphabet");
        assert_eq!(normalize("abcd-éfgh-jkmn"), None);
        assert_ne!(hash(1, "abcdefghjkmn"), hash(2, "abcdefghjkmn"), "per user");
        assert_eq!(hash(1, "abcdefghjkmn").len(), 64);
    }
}
