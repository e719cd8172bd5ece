//! The process logger: Rocket's plain style, minus what must never reach a log.
//!
//! Rocket logs every request line with its query string, and a provider's callback carries
//! the authorization code and state there. Installed before Rocket starts (Rocket then keeps
//! it), this logger blanks the query of every line Rocket writes. `log_level` governs
//! Rocket's and the portal's chatter; the sign-in record ([`AUDIT_TARGET`]) is written
//! whatever it says.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};
use rocket::config::LogLevel;

/// The target of the one-line-per-sign-in record: logged at `info` and above whatever
/// `log_level` says, so an operator quieting Rocket never loses it.
pub const AUDIT_TARGET: &str = "portal::audit";

struct PortalLogger {
    /// What `log_level` lets through; the audit target passes at `info` regardless.
    level: LevelFilter,
    /// Whether stdout is a terminal. Rocket paints its messages unless told not to; a log
    /// file or a journal gets them without colour codes whatever it was told.
    terminal: bool,
}

impl Log for PortalLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
            || (metadata.target() == AUDIT_TARGET && metadata.level() <= Level::Info)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let from = |prefix| record.module_path().is_some_and(|m| m.starts_with(prefix));
        let noisy = from("hyper") || from("rustls") || from("reqwest") || from("h2") || from("sqlx");
        if noisy && self.level < LevelFilter::Debug {
            return;
        }
        let mut message = record.args().to_string();
        if record.target().starts_with("rocket") {
            message = redact_reset_tokens(&redact_queries(&message));
        }
        if !self.terminal && message.contains('\u{1b}') {
            message = strip_colours(&message);
        }
        let indent = if record.target().ends_with('_') { "   >> " } else { "" };
        let line = match record.level() {
            Level::Error => format!("Error: {indent}{message}"),
            Level::Warn => format!("Warning: {indent}{message}"),
            _ => format!("{indent}{message}"),
        };
        // Logging must never take the server down: a closed stdout is ignored.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }

    fn flush(&self) {
        let _ = std::io::stdout().flush();
    }
}

/// Installs the logger at Rocket's `log_level`. Call once, before Rocket ignites.
pub fn init(level: LogLevel) {
    let level = match level {
        LogLevel::Off => LevelFilter::Off,
        LogLevel::Critical => LevelFilter::Warn,
        LogLevel::Normal => LevelFilter::Info,
        LogLevel::Debug => LevelFilter::Trace,
    };
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    if log::set_boxed_logger(Box::new(PortalLogger { level, terminal })).is_ok() {
        // The audit target needs `info` to reach the logger, which filters the rest.
        log::set_max_level(level.max(LevelFilter::Info));
    }
}

/// Removes ANSI escape sequences (`ESC [ … final-byte`), as a terminal would consume them.
pub fn strip_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.next() == Some('[') {
            // Parameters and intermediates, up to and including the final byte (@ to ~).
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

/// Replaces every query string (from `?` to the next space) with `?…`, keeping a
/// trailing `:` that Rocket puts after the request line.
pub fn redact_queries(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find('?') {
        out.push_str(&rest[..=at]);
        let after = &rest[at + 1..];
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let query = &after[..end];
        if query.is_empty() {
            rest = after;
            continue;
        }
        out.push('…');
        if query.ends_with(':') {
            out.push(':');
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Replaces the token of every one-time password link path (`/reset/<token>`) with `…`:
/// the path is the secret. Route patterns (`/reset/<token>`) are kept.
pub fn redact_reset_tokens(line: &str) -> String {
    const MARK: &str = "/reset/";
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at + MARK.len()]);
        let after = &rest[at + MARK.len()..];
        let end = after.find(|c: char| c.is_whitespace() || c == '?' || c == ':').unwrap_or(after.len());
        if end == 0 || after.starts_with('<') {
            rest = after;
            continue;
        }
        out.push('…');
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{redact_queries, redact_reset_tokens, strip_colours};

    #[test]
    fn reset_link_tokens_are_blanked() {
        let token = "q2Yh8v0rX_Ao-3s1bW9n4kLpZcT7uE6fGdJmHiKyQxR";
        assert_eq!(
            redact_reset_tokens(&format!("POST /reset/{token} application/x-www-form-urlencoded:")),
            "POST /reset/… application/x-www-form-urlencoded:"
        );
        assert_eq!(redact_reset_tokens(&format!("GET /reset/{token}:")), "GET /reset/…:");
        assert_eq!(
            redact_reset_tokens("Matched: (reset_page) GET /reset/<token>"),
            "Matched: (reset_page) GET /reset/<token>"
        );
        assert_eq!(redact_reset_tokens("GET /welcome:"), "GET /welcome:");
    }

    #[test]
    fn colour_codes_are_stripped_and_text_kept() {
        assert_eq!(strip_colours("\u{1b}[1;49;39mRocket\u{1b}[0m has launched"), "Rocket has launched");
        assert_eq!(strip_colours("plain: 100% [ok]"), "plain: 100% [ok]");
        assert_eq!(strip_colours("🚀 \u{1b}[32mok"), "🚀 ok");
    }

    #[test]
    fn query_strings_are_blanked_and_paths_kept() {
        assert_eq!(redact_queries("GET /auth/github?code=abc&state=xyz:"), "GET /auth/github?…:");
        assert_eq!(
            redact_queries("Matched: (callback) GET /auth/<provider>?<code>&<state> x"),
            "Matched: (callback) GET /auth/<provider>?… x"
        );
        assert_eq!(redact_queries("GET /welcome:"), "GET /welcome:");
        assert_eq!(redact_queries("what? no"), "what? no");
        assert_eq!(redact_queries("a?b c?d"), "a?… c?…");
    }
}
