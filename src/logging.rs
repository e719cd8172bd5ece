//! The process logger: Rocket's plain style, minus what must never reach a log.
//!
//! Rocket logs every request line with its query string and path, and both can carry live
//! secrets: a provider's callback brings the authorization code and state in its query, and
//! a one-time link (`/reset/<token>`) is its own secret. Installed before Rocket starts
//! (Rocket then keeps it), this logger blanks them in every line, whoever wrote it (Rocket,
//! the portal, a library through `log`): the segment after a [`SECRET_PATH_SEGMENTS`] one
//! and the value of every [`SECRET_PARAMETERS`] parameter ([`redact`]); Rocket's own lines
//! lose their whole query besides. `log_level` governs
//! Rocket's and the portal's chatter; the sign-in record ([`AUDIT_TARGET`]) is written
//! whatever it says.

use std::borrow::Cow;
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
        if self.level < LevelFilter::Info && is_routine_routing(record) {
            return;
        }
        let from = |prefix| record.module_path().is_some_and(|m| m.starts_with(prefix));
        let noisy = from("hyper") || from("rustls") || from("reqwest") || from("h2") || from("sqlx");
        if noisy && self.level < LevelFilter::Debug {
            return;
        }
        let mut message = record.args().to_string();
        if record.target().starts_with("rocket") {
            message = redact_queries(&message);
        }
        if let Cow::Owned(redacted) = redact(&message) {
            message = redacted;
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

/// The beginnings of the lines Rocket writes at `error` and `warn` for a request that went
/// the way the portal routes requests: a signed-out visitor's guard forwards, no route is
/// left, and a catcher answers with the login redirect (or a 404, or a 401 on `/api`). Three
/// such lines came with every signed-out redirect, at `log_level = critical` too (12% of that
/// request's instructions, and an operator's log full of "errors" that were none). They are
/// `info` here: written at `normal` and `debug`, not at `critical`.
const ROUTINE_ROUTING: [&str; 5] = [
    "No matching routes for ",
    "Responding with registered ",
    "Request guard `",
    "Parameter guard `",
    "Data guard `",
];

/// Whether `record` is one of Rocket's [`ROUTINE_ROUTING`] lines: an indented (`…::_`)
/// `error` or `warn` whose message begins so. Only the message's first bytes are formatted.
fn is_routine_routing(record: &Record<'_>) -> bool {
    if record.level() > Level::Warn || !record.target().ends_with("::_") {
        return false;
    }
    let mut head = Head { bytes: [0; 32], len: 0 };
    // `Head` stops the formatting with an error once full: what it holds is enough.
    let _ = std::fmt::write(&mut head, *record.args());
    let head = &head.bytes[..head.len];
    ROUTINE_ROUTING.iter().any(|start| head.starts_with(start.as_bytes()))
}

/// The first bytes of a formatted message, without allocating.
struct Head {
    bytes: [u8; 32],
    len: usize,
}

impl std::fmt::Write for Head {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.bytes.len() - self.len;
        let take = room.min(s.len());
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        if take < s.len() {
            Err(std::fmt::Error)
        } else {
            Ok(())
        }
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

/// Path segments whose *next* segment is a secret: one-time links (`/reset/<token>`, and the
/// planned `/verify/<token>` and `/invite/<token>`). Matched case-insensitively, with
/// percent-escapes decoded and `;` parameters ignored, since a link mangled that way still
/// carries a live token even when no route matches it.
pub const SECRET_PATH_SEGMENTS: &[&str] = &["reset", "verify", "invite"];

/// Parameters (in a query string, a form, or a `name=value` anywhere in a message) whose
/// values are secrets: OAuth and OpenID Connect codes, state and tokens (RFC 6749, 7636,
/// 8628, 7523, OIDC Core and RP-initiated logout), credentials, and the portal's own tokens.
/// Matched case-insensitively, with percent-escapes in the name decoded.
pub const SECRET_PARAMETERS: &[&str] = &[
    "code",
    "state",
    "token",
    "access_token",
    "id_token",
    "id_token_hint",
    "refresh_token",
    "logout_token",
    "device_code",
    "user_code",
    "code_verifier",
    "client_secret",
    "client_assertion",
    "assertion",
    "password",
    "current_password",
    "new_password",
    "confirm_password",
    "csrf_token",
    "secret",
    "api_key",
];

/// `line` with every secret the lists above name replaced by `…`: the segment after a
/// [`SECRET_PATH_SEGMENTS`] segment, and the value of a [`SECRET_PARAMETERS`] parameter.
/// `/` and `=` also count percent-encoded (`%2F`, `%3D`), so a link inside another URL's
/// query (`?next=%2Freset%2F…`) is found too. One pass over the bytes, and no allocation
/// when there is nothing to blank (the logger runs this on every line).
pub fn redact(line: &str) -> Cow<'_, str> {
    let bytes = line.as_bytes();
    let mut out = String::new();
    // Bytes of `line` before this are in `out` (or, while `out` is empty, need not be).
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let Some((sep, width)) = separator_at(bytes, i) else {
            i += 1;
            continue;
        };
        let secret = match sep {
            Sep::Slash => secret_segment_after(bytes, i + width),
            Sep::Equals if is_secret_name(bytes, i) => {
                let start = i + width;
                let end = parameter_end(bytes, start);
                Some((start, keep_trailing_colon(bytes, start, end)))
            }
            Sep::Equals => None,
        };
        match secret {
            Some((start, end)) if end > start => {
                out.push_str(&line[copied..start]);
                out.push('…');
                copied = end;
                i = end;
            }
            _ => i += width,
        }
    }
    if copied == 0 {
        return Cow::Borrowed(line);
    }
    out.push_str(&line[copied..]);
    Cow::Owned(out)
}

#[derive(Clone, Copy)]
enum Sep {
    Slash,
    Equals,
}

/// A `/` or `=` at `i`, raw or percent-encoded, and its width in bytes.
fn separator_at(bytes: &[u8], i: usize) -> Option<(Sep, usize)> {
    match bytes[i] {
        b'/' => Some((Sep::Slash, 1)),
        b'=' => Some((Sep::Equals, 1)),
        b'%' => match bytes.get(i + 1..i + 3) {
            Some([b'2', b'f' | b'F']) => Some((Sep::Slash, 3)),
            Some([b'3', b'd' | b'D']) => Some((Sep::Equals, 3)),
            _ => None,
        },
        _ => None,
    }
}

/// Where a path segment ends: at a delimiter of URLs or of the prose around them, or at an
/// encoded `/`, `?` or `&`.
fn value_end(bytes: &[u8], from: usize) -> usize {
    run_end(bytes, from, true)
}

/// Where a parameter's value ends: as a segment, but `/` and `?` belong to it (a Google
/// authorization code reads `4/0Ab…`).
fn parameter_end(bytes: &[u8], from: usize) -> usize {
    run_end(bytes, from, false)
}

fn run_end(bytes: &[u8], from: usize, in_path: bool) -> usize {
    let mut i = from;
    while i < bytes.len() {
        let b = bytes[i];
        let escape = bytes.get(i + 1..i + 3);
        let stop = b <= b' '
            || b == 0x7f
            || matches!(b, b'&' | b'#' | b'"' | b'\'' | b'<' | b'>' | b',' | b';' | b'(' | b')')
            || (b == b'%' && matches!(escape, Some([b'2', b'6'])))
            || (in_path
                && (matches!(b, b'/' | b'?')
                    || (b == b'%'
                        && matches!(escape, Some([b'2', b'f' | b'F']) | Some([b'3', b'f' | b'F'])))));
        if stop {
            break;
        }
        i += 1;
    }
    i
}

/// Rocket ends a request line with `:` (`GET /auth/github?code=…:`); that is not the secret's.
fn keep_trailing_colon(bytes: &[u8], start: usize, end: usize) -> usize {
    let at_end = end == bytes.len() || bytes[end].is_ascii_whitespace();
    if at_end && end > start && bytes[end - 1] == b':' {
        end - 1
    } else {
        end
    }
}

/// After the `/` that ends at `from`: if the segment there is a [`SECRET_PATH_SEGMENTS`]
/// one and another segment follows, that segment's byte range (a route pattern such as
/// `<token>` is not a secret, and stays).
fn secret_segment_after(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    let name_end = value_end(bytes, from);
    // `reset;x` routes nowhere, but the token after it is live all the same.
    let name = &bytes[from..name_end];
    let name = name.split(|&b| b == b';').next().unwrap_or(name);
    let full_end = segment_with_params_end(bytes, name_end);
    if !SECRET_PATH_SEGMENTS.iter().any(|s| decoded_eq(name, s)) {
        return None;
    }
    // Empty segments (`/reset//TOKEN`) are skipped, as a router may skip them.
    let mut at = full_end;
    while let Some((Sep::Slash, width)) = (at < bytes.len()).then(|| separator_at(bytes, at)).flatten() {
        at += width;
    }
    if at == full_end || bytes.get(at) == Some(&b'<') {
        return None;
    }
    let end = value_end(bytes, at);
    Some((at, keep_trailing_colon(bytes, at, end)))
}

/// Past a segment's `;` parameters (`reset;jsessionid=x`), to the `/` that ends it.
fn segment_with_params_end(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at) == Some(&b';') {
        at = value_end(bytes, at + 1);
    }
    at
}

/// Whether the parameter name before the `=` at `eq` is a [`SECRET_PARAMETERS`] one: the
/// name runs back to the last delimiter (`?`, `&`, `;`, space, quote…, or their escapes).
fn is_secret_name(bytes: &[u8], eq: usize) -> bool {
    let mut start = eq;
    while start > 0 {
        let b = bytes[start - 1];
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'%' | b'[' | b']') {
            start -= 1;
        } else {
            break;
        }
    }
    let name = &bytes[start..eq];
    if name.is_empty() || name.len() > 64 {
        return false;
    }
    // An escaped delimiter inside the run (`%26code`, `%3Fstate`) starts the name afresh.
    let mut from = 0;
    let mut i = 0;
    while i + 2 < name.len() {
        if name[i] == b'%'
            && matches!(&name[i + 1..i + 3], [b'2', b'6' | b'f' | b'F'] | [b'3', b'f' | b'F' | b'b' | b'B'])
        {
            from = i + 3;
            i += 3;
        } else {
            i += 1;
        }
    }
    let name = &name[from..];
    SECRET_PARAMETERS.iter().any(|s| decoded_eq(name, s))
}

/// Whether `raw`, percent-decoded, equals `word` (ASCII, case-insensitively).
fn decoded_eq(raw: &[u8], word: &str) -> bool {
    let word = word.as_bytes();
    let (mut i, mut j) = (0, 0);
    while i < raw.len() {
        let c = match (raw[i], raw.get(i + 1..i + 3)) {
            (b'%', Some(&[h, l])) => match (hex(h), hex(l)) {
                (Some(h), Some(l)) => {
                    i += 3;
                    h << 4 | l
                }
                _ => return false,
            },
            (c, _) => {
                i += 1;
                c
            }
        };
        if word.get(j).is_none_or(|w| !w.eq_ignore_ascii_case(&c)) {
            return false;
        }
        j += 1;
    }
    j == word.len()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use log::{Level, Record};

    use super::{
        is_routine_routing, redact, redact_queries, strip_colours, SECRET_PARAMETERS, SECRET_PATH_SEGMENTS,
    };

    #[test]
    fn rockets_routing_lines_are_routine_and_other_errors_are_not() {
        let long = "GET /a/very/long/path/that/goes/on/past/the/head/the/logger/formats?x=1";
        let routine = [
            (Level::Error, "rocket::server::_", format!("No matching routes for {long}.")),
            (
                Level::Warn,
                "rocket::server::_",
                "Responding with registered (unauthorized) 401 catcher.".into(),
            ),
            (Level::Warn, "portal::routes::pages::_", "Request guard `&LoggedIn` is forwarding.".into()),
            (
                Level::Warn,
                "portal::routes::api::_",
                "Parameter guard `id: i64` is forwarding: Err(..).".into(),
            ),
            (Level::Warn, "portal::routes::login::_", "Data guard `Form<Login>` is forwarding.".into()),
        ];
        let kept = [
            // A real error, indented like Rocket's.
            (Level::Error, "rocket::server::_", "Handler login panicked.".to_owned()),
            (Level::Warn, "rocket::server::_", "No 404 catcher registered. Using Rocket default.".into()),
            // The same words, but not Rocket's indented routing line.
            (Level::Error, "portal::store", "No matching routes for GET /: said a test".into()),
            // Info already: left to the level filter.
            (Level::Info, "rocket::server::_", "No matching routes for GET /.".into()),
        ];
        for (level, target, message) in &routine {
            let args = format_args!("{message}");
            let record = Record::builder().level(*level).target(target).args(args).build();
            assert!(is_routine_routing(&record), "{level} {target} {message}");
        }
        for (level, target, message) in &kept {
            let args = format_args!("{message}");
            let record = Record::builder().level(*level).target(target).args(args).build();
            assert!(!is_routine_routing(&record), "{level} {target} {message}");
        }
    }

    const TOKEN: &str = "q2Yh8v0rX_Ao-3s1bW9n4kLpZcT7uE6fGdJmHiKyQxR";

    #[test]
    fn one_time_link_tokens_are_blanked_in_every_kind_of_line() {
        for segment in SECRET_PATH_SEGMENTS {
            let cases = [
                (
                    format!("POST /{segment}/{TOKEN} application/x-www-form-urlencoded:"),
                    format!("POST /{segment}/… application/x-www-form-urlencoded:"),
                ),
                (format!("GET /{segment}/{TOKEN}:"), format!("GET /{segment}/…:")),
                (
                    format!("a form without a valid CSRF token was refused: /{segment}/{TOKEN}"),
                    format!("a form without a valid CSRF token was refused: /{segment}/…"),
                ),
                (
                    format!("refused a cross-site POST /{segment}/{TOKEN}: Origin is not public_url"),
                    format!("refused a cross-site POST /{segment}/…: Origin is not public_url"),
                ),
                (
                    format!("No matching routes for GET /{segment}/{TOKEN}/extra?x=1."),
                    format!("No matching routes for GET /{segment}/…/extra?x=1."),
                ),
                (
                    format!("link: https://auth.example.com/{segment}/{TOKEN}, 24 hours"),
                    format!("link: https://auth.example.com/{segment}/…, 24 hours"),
                ),
            ];
            for (line, blanked) in cases {
                assert_eq!(redact(&line), blanked);
            }
        }
    }

    #[test]
    fn mangled_link_paths_are_blanked_too() {
        for path in [
            format!("/RESET/{TOKEN}"),
            format!("/%72eset/{TOKEN}"),
            format!("/reset//{TOKEN}"),
            format!("/reset;x=1/{TOKEN}"),
            format!("/login?next=%2Freset%2F{TOKEN}"),
            format!("/login?next=%2freset%2f{TOKEN}&x=1"),
        ] {
            let line = format!("GET {path}:");
            let blanked = redact(&line);
            assert!(!blanked.contains(TOKEN), "{line} -> {blanked}");
            assert!(blanked.contains('…'), "{line} -> {blanked}");
        }
    }

    #[test]
    fn secret_parameters_are_blanked_and_others_kept() {
        for name in SECRET_PARAMETERS {
            let line = format!("GET /auth/google?x=1&{name}={TOKEN}&next=/welcome:");
            assert_eq!(redact(&line), format!("GET /auth/google?x=1&{name}=…&next=/welcome:"), "{name}");
            let upper = format!("GET /cb?{}={TOKEN}", name.to_uppercase());
            assert!(!redact(&upper).contains(TOKEN), "{upper}");
        }
        assert_eq!(redact("GET /auth/github?code=abc&state=xyz:"), "GET /auth/github?code=…&state=…:");
        assert_eq!(
            redact("callback code=4/0AbC-d_e state=s1 outcome=ok"),
            "callback code=… state=… outcome=ok"
        );
        assert_eq!(
            redact("GET /login?next=%2Fcb%3Fcode%3Dabc%26state%3Dxyz:"),
            "GET /login?next=%2Fcb%3Fcode%3D…%26state%3D…:"
        );
        assert_eq!(redact("GET /cb?co%64e=abc"), "GET /cb?co%64e=…");
        assert_eq!(
            redact("sign-in at=2027 username=\"alice\" ip=127.0.0.1 outcome=success"),
            Cow::Borrowed("sign-in at=2027 username=\"alice\" ip=127.0.0.1 outcome=success")
        );
        assert_eq!(
            redact("encode=1 postcode=2 barcode=3 statement=4"),
            "encode=1 postcode=2 barcode=3 statement=4"
        );
    }

    #[test]
    fn route_patterns_and_plain_lines_are_left_alone_without_copying() {
        for line in [
            "Matched: (reset_page) GET /reset/<token>",
            "Matched: (callback) GET /auth/<provider>?<query..>",
            "GET /welcome:",
            "the /reset/ page",
            "Rocket has launched from http://127.0.0.1:8000",
            "100% done = fine",
            "a trailing %",
            "a trailing %2",
            "",
        ] {
            assert!(matches!(redact(line), Cow::Borrowed(_)), "{line}");
        }
    }

    #[test]
    fn multibyte_text_around_secrets_survives() {
        assert_eq!(redact("é /reset/ü-tok ñ code=ø"), "é /reset/… ñ code=…");
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
