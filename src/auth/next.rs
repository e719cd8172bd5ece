//! The `next` parameter: where to go after signing in. Only a path on this site is
//! accepted; anything else falls back to the caller's default.

use rocket::http::uri::Origin;
use rocket::http::RawStr;

/// Longer values are refused outright rather than parsed.
const MAX_NEXT_BYTES: usize = 2048;

/// Returns `raw` when it is a same-site path: `/` followed by neither `/` nor `\`, no
/// whitespace or control characters, and still so after one more percent-decoding (so
/// `/%2F%2Fevil.example` is refused). The result also parses as an origin-form URI, so a
/// redirect to it can always be built.
pub fn safe_next(raw: &str) -> Option<&str> {
    if raw.len() > MAX_NEXT_BYTES || !is_local_path(raw) {
        return None;
    }
    let decoded = RawStr::new(raw).percent_decode().ok()?;
    if !is_local_path(&decoded) {
        return None;
    }
    Origin::parse(raw).ok()?;
    Some(raw)
}

fn is_local_path(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn local_paths_are_kept() {
        for ok in ["/", "/welcome", "/account?tab=ids", "/a/b-c", "/search?q=%2Fx"] {
            assert_eq!(safe_next(ok), Some(ok), "{ok}");
        }
    }

    #[test]
    fn everything_that_could_leave_the_site_is_refused() {
        let long = format!("/{}", "a".repeat(10 * 1024));
        let refused = [
            "",
            "welcome",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example",
            "https:evil.example",
            "javascript:alert(1)",
            "/%2F%2Fevil.example",
            "/%2f%2fevil.example",
            "/%5Cevil.example",
            "/\t/evil.example",
            "/%09/evil.example",
            "/\r\n/evil.example",
            "/%0d%0a/evil.example",
            " /welcome",
            "/welcome x",
            "/%E0%A4%A",
            "/%ff",
            // Even encoded, whitespace is refused: it is checked again after decoding.
            "/a/b%20c",
            long.as_str(),
        ];
        for bad in refused {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }
}
