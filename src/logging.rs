//! The process logger: Rocket's plain style, minus what must never reach a log.
//!
//! Rocket logs every request line with its query string, and a provider's callback carries
//! the authorization code and state there. Installed before Rocket starts (Rocket then keeps
//! it), this logger blanks the query of every line Rocket writes.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};
use rocket::config::LogLevel;

struct PortalLogger;

impl Log for PortalLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let from = |prefix| record.module_path().is_some_and(|m| m.starts_with(prefix));
        let noisy = from("hyper") || from("rustls") || from("reqwest") || from("h2") || from("sqlx");
        if noisy && log::max_level() < LevelFilter::Debug {
            return;
        }
        let mut message = record.args().to_string();
        if record.target().starts_with("rocket") {
            message = redact_queries(&message);
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
    if log::set_boxed_logger(Box::new(PortalLogger)).is_ok() {
        log::set_max_level(match level {
            LogLevel::Off => LevelFilter::Off,
            LogLevel::Critical => LevelFilter::Warn,
            LogLevel::Normal => LevelFilter::Info,
            LogLevel::Debug => LevelFilter::Trace,
        });
    }
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

#[cfg(test)]
mod tests {
    use super::redact_queries;

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
