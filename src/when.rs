//! Times as people write and read them: one form on every page ([`human`]), RFC 3339 in
//! JSON, logs and the command line, and a few forms a person types (`--since` on the command
//! line, the console's date fields). All UTC.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

/// `2026-12-01 22:43 UTC`: a time as every page shows it (the account page, the console).
pub fn human(unix: i64) -> String {
    let minutes = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&minutes).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// `2026-12-01T22:43:10Z`.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// A moment as typed: RFC 3339 (`2026-12-01T10:00:00Z`), a date and time without seconds
/// as a browser's `datetime-local` field sends it (`2026-12-01T10:00`, UTC), a date
/// (`2026-12-01`, midnight UTC), or a time ago (`30m`, `24h`, `7d`). Unix seconds.
pub fn parse_moment(text: &str, now: i64) -> Result<i64, String> {
    let text = text.trim();
    if let Some(ago) = parse_ago(text) {
        return Ok(now.saturating_sub(ago));
    }
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    if let Ok(t) = PrimitiveDateTime::parse(text, &minutes) {
        return Ok(t.assume_utc().unix_timestamp());
    }
    let day = format_description!("[year]-[month]-[day]");
    if let Ok(d) = Date::parse(text, &day) {
        return Ok(d.midnight().assume_utc().unix_timestamp());
    }
    Err(format!(
        "{:?} is not a time: use 2026-12-01, 2026-12-01T10:00, 2026-12-01T10:00:00Z, or 30m, 24h, 7d",
        text.chars().take(40).collect::<String>()
    ))
}

/// `30m`, `24h`, `7d`, `90s`: seconds.
fn parse_ago(text: &str) -> Option<i64> {
    let unit = match text.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let number: i64 = text[..text.len() - 1].parse().ok().filter(|n| *n >= 0)?;
    number.checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_parse_in_every_documented_form() {
        let now = 1_800_000_000; // 2027-01-15T08:00:00Z
        assert_eq!(rfc3339(now), "2027-01-15T08:00:00Z");
        assert_eq!(human(now), "2027-01-15 08:00 UTC");
        assert_eq!(human(now + 59), "2027-01-15 08:00 UTC");
        assert_eq!(human(-62_135_596_800), "0001-01-01 00:00 UTC");
        assert_eq!(human(i64::MAX), i64::MAX.to_string());
        assert_eq!(parse_moment("2027-01-15T08:00:00Z", 0), Ok(now));
        assert_eq!(parse_moment("2027-01-15T09:00:00+01:00", 0), Ok(now));
        assert_eq!(parse_moment("2027-01-15T08:00", 0), Ok(now));
        assert_eq!(parse_moment("2027-01-15", 0), Ok(now - 8 * 3600));
        assert_eq!(parse_moment("90s", now), Ok(now - 90));
        assert_eq!(parse_moment("30m", now), Ok(now - 1800));
        assert_eq!(parse_moment("24h", now), Ok(now - 86_400));
        assert_eq!(parse_moment(" 7d ", now), Ok(now - 7 * 86_400));
        for bad in
            ["", "yesterday", "-5d", "5w", "2027-13-01", "2027-01-15T25:00", "d", "99999999999999999999d"]
        {
            assert!(parse_moment(bad, now).is_err(), "{bad:?}");
        }
    }
}
