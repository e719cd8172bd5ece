//! Forward-auth decisions: may this proxied request through, and where may a person be sent
//! back to after signing in (`rd`)? Pure functions over the configured policy; the routes
//! read the headers and the session, the auth service signs the assertion.
//!
//! Hosts are compared in one form: lowercase ASCII (IDN in its `xn--` form), without a
//! trailing dot or a port. A path is decided on as the backends behind a proxy may read it
//! (see [`canonical_path`] and [`Policy::decide`]): the lenient reading (slashes merged,
//! decoded once, dot segments resolved, `;` parameters dropped, case folded), and the path
//! as sent when that differs; both must be allowed. A path that stays ambiguous (an encoded
//! `/`, a `%` left after decoding, a trailing dot, ...) is refused on a host with path rules.

use std::borrow::Cow;

use crate::config::{AllowSettings, DefaultPolicy, ForwardAuthSettings};
use crate::host::normalize_host;
use crate::store::{account_key, User};

/// A host, or every subdomain of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// `*.example.com`: any host ending in `.example.com` (not `example.com` itself).
    Subdomains(String),
}

impl HostPattern {
    pub fn parse(raw: &str) -> Result<HostPattern, String> {
        let trimmed = raw.trim();
        let (wild, name) = match trimmed.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let host = normalize_host(name)
            .filter(|h| !h.contains('*'))
            .ok_or_else(|| format!("{raw:?} is not a host or a *.domain pattern"))?;
        Ok(if wild { HostPattern::Subdomains(format!(".{host}")) } else { HostPattern::Exact(host) })
    }

    /// Whether a normalized host matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(exact) => host == exact,
            HostPattern::Subdomains(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }
}

/// Who a rule lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allow {
    SignedIn,
    Admins,
    /// Usernames, by their key (case-insensitive, NFKC).
    Users(Vec<String>),
}

impl Allow {
    /// Reads `allow` as written; the error is the reason alone (the caller says where).
    pub fn from_settings(settings: &AllowSettings) -> Result<Allow, String> {
        match settings {
            AllowSettings::Named(name) if name == "signed-in" => Ok(Allow::SignedIn),
            AllowSettings::Named(name) if name == "admins" => Ok(Allow::Admins),
            AllowSettings::Named(other) => {
                Err(format!("allow {other:?} is not \"signed-in\", \"admins\" or a list of usernames"))
            }
            AllowSettings::Users(names) if names.is_empty() => {
                Err("allow = [] lets nobody in; name the users".into())
            }
            AllowSettings::Users(names) => Ok(Allow::Users(names.iter().map(|n| account_key(n)).collect())),
        }
    }

    /// Whether `user` is one it lets through.
    pub fn admits(&self, user: &User) -> bool {
        match self {
            Allow::SignedIn => true,
            Allow::Admins => user.is_admin,
            Allow::Users(keys) => keys.contains(&account_key(&user.username)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub host: HostPattern,
    /// A path prefix, matched on segment boundaries: `/admin` covers `/admin` and
    /// `/admin/x`, not `/administrator`. Plain (see [`canonical_path`]), without a trailing
    /// `/` unless it is `/`.
    pub path: String,
    /// `path` lowercased, for the lenient reading; `None` when the rule is case-sensitive.
    folded: Option<String>,
    pub allow: Allow,
    /// Only sessions at assurance level 2 pass; level 1 is sent to the second step.
    pub second_factor: bool,
}

impl Rule {
    /// Whether the rule covers every path of its host.
    fn is_whole_host(&self) -> bool {
        self.path == "/"
    }

    /// Whether it covers a lenient reading: case folded unless the rule is case-sensitive.
    fn covers_leniently(&self, path: &str) -> bool {
        match &self.folded {
            Some(folded) => path_covers(folded, path, true),
            None => path_covers(&self.path, path, false),
        }
    }

    /// Whether it covers a path as written, case and all.
    fn covers_exactly(&self, path: &str) -> bool {
        path_covers(&self.path, path, false)
    }
}

/// The checked policy, built once at start.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    allowed: Vec<HostPattern>,
    rules: Vec<Rule>,
    deny_by_default: bool,
    pub assertion: bool,
}

/// What a check answers for a signed-in user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// A rule, the default, or a host outside `allowed_domains` refuses it.
    Deny,
    /// The rule lets the user in, with a second factor this session has not shown.
    SecondFactor,
}

/// The request the proxy asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https://app.example.com/x?y` as normalized by the URL parser.
    pub url: String,
    /// Normalized (see [`normalize_host`]).
    pub host: String,
    /// The path as the proxy sent it, without the query: what the strictest backend reads.
    pub path: String,
    /// What the most lenient backend reads.
    pub lenient: Lenient,
}

/// The lenient reading of a target's path (see [`canonical_path`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lenient {
    /// The path as sent is already canonical (the common case: nothing allocated twice).
    Same,
    /// Canonical, and not what was sent.
    Other(String),
    /// Backends may read it in ways no rule can follow.
    Ambiguous(Ambiguity),
}

impl Target {
    /// The lenient reading, `None` when the path is ambiguous.
    pub fn lenient_path(&self) -> Option<&str> {
        match &self.lenient {
            Lenient::Same => Some(&self.path),
            Lenient::Other(path) => Some(path),
            Lenient::Ambiguous(_) => None,
        }
    }
}

impl Target {
    /// The original request from `X-Original-URL` (nginx), or from `X-Forwarded-Proto`,
    /// `X-Forwarded-Host` and `X-Forwarded-Uri` (Caddy, Traefik). `None` when neither is
    /// there or they do not make an `http`/`https` URL.
    pub fn from_headers(
        original_url: Option<&str>,
        proto: Option<&str>,
        host: Option<&str>,
        uri: Option<&str>,
    ) -> Option<Target> {
        let url = match original_url {
            Some(url) => url.to_owned(),
            None => {
                let proto = proto.unwrap_or("https").split(',').next()?.trim().to_ascii_lowercase();
                let host = host?.split(',').next()?.trim();
                let uri = uri.unwrap_or("/");
                if !uri.starts_with('/') || host.is_empty() {
                    return None;
                }
                format!("{proto}://{host}{uri}")
            }
        };
        Target::parse(&url)
    }

    /// An absolute `http`/`https` URL without userinfo, as the target of a check or of `rd`.
    pub fn parse(raw: &str) -> Option<Target> {
        if raw.len() > MAX_URL_BYTES || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return None;
        }
        let url = url::Url::parse(raw).ok()?;
        if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() || url.password().is_some()
        {
            return None;
        }
        // The URL parser has already lowercased the host and put an IDN in its `xn--` form;
        // what is left is the trailing dot (and refusing addresses `normalize_host` refuses).
        let host = match url.host()? {
            url::Host::Domain(domain) => domain.strip_suffix('.').unwrap_or(domain).to_owned(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(_) => return None,
        };
        if host.is_empty() {
            return None;
        }
        // The path as sent, not the URL parser's: it resolves dot segments before decoding
        // and turns `\` into `/`, which hides what a backend may read differently.
        let (path, lenient) = match raw_path(raw) {
            Some(sent) => match canonical_path(sent) {
                Ok(Cow::Borrowed(same)) => (same.to_owned(), Lenient::Same),
                Ok(Cow::Owned(other)) => (sent.to_owned(), Lenient::Other(other)),
                Err(ambiguity) => (sent.to_owned(), Lenient::Ambiguous(ambiguity)),
            },
            None => {
                (url.path().to_owned(), Lenient::Ambiguous(Ambiguity("no scheme://host before the path")))
            }
        };
        Some(Target { url: String::from(url), host, path, lenient })
    }
}

/// The path of `scheme://authority/path?query` as written, without the query; `""` when
/// the authority is followed by nothing or the query. A raw `#` stays in the path: no
/// client sends a fragment, so one here is crafted, and backends differ on it.
fn raw_path(raw: &str) -> Option<&str> {
    let (_, rest) = raw.split_once("://")?;
    let rest = &rest[rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len())..];
    Some(&rest[..rest.find('?').unwrap_or(rest.len())])
}

/// Why a path cannot be decided on: what about it backends read in different ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ambiguity(pub &'static str);

impl std::fmt::Display for Ambiguity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// The path the most lenient backends read: escapes decoded once, empty segments dropped
/// (merged slashes), `;` parameters dropped from each segment, `.` and `..` resolved after
/// decoding; a trailing `/` kept. `""` is `/`. Borrowed when `raw` is already canonical.
///
/// Refused as [`Ambiguity`], because backends read it in ways no prefix can follow: an
/// encoded `/` or `\` (`%2f`, `%5c`: one segment to nginx's proxy, two to its static
/// files), a literal `\` (a separator on Windows backends), a raw `#`, a `%` left after one
/// decoding (`%2566` is `%66` to one backend, `f` to one that decodes twice; `%u0066` is `f`
/// to IIS), an escape that is not one, a control character (`%00` ends a name in C), bytes
/// that are not UTF-8 once decoded (overlong forms of `/`), a segment ending in `.` or a
/// space (IIS drops them: `/finance.` is `/finance`), and Windows' other names for a file
/// (see [`is_windows_alias`]).
pub fn canonical_path(raw: &str) -> Result<Cow<'_, str>, Ambiguity> {
    if raw.is_empty() {
        return Ok(Cow::Borrowed("/"));
    }
    if is_canonical(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    if bytes[0] != b'/' {
        return Err(Ambiguity(if bytes[0] == b'\\' { "a backslash" } else { "not a path" }));
    }
    let mut decoded = Vec::with_capacity(raw.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'\\' => return Err(Ambiguity("a backslash")),
            b'#' => return Err(Ambiguity("a raw #")),
            b'%' => {
                let hex = |i: usize| bytes.get(i).and_then(|b| char::from(*b).to_digit(16));
                let (Some(high), Some(low)) = (hex(at + 1), hex(at + 2)) else {
                    return Err(Ambiguity("a % that is not an escape"));
                };
                // Both digits are below 16: the byte fits.
                let byte =
                    u8::try_from(high * 16 + low).map_err(|_| Ambiguity("a % that is not an escape"))?;
                match byte {
                    b'/' | b'\\' => return Err(Ambiguity("an encoded / or \\")),
                    b'%' => return Err(Ambiguity("a second level of escapes")),
                    _ => decoded.push(byte),
                }
                at += 3;
            }
            _ => {
                decoded.push(byte);
                at += 1;
            }
        }
    }
    let decoded = String::from_utf8(decoded).map_err(|_| Ambiguity("not UTF-8 once decoded"))?;
    if decoded.chars().any(char::is_control) {
        return Err(Ambiguity("a control character"));
    }
    let mut canonical = String::with_capacity(decoded.len());
    for segment in decoded.split('/').skip(1) {
        if is_windows_alias(segment) {
            return Err(Ambiguity("another name for a file on Windows (a ::$DATA stream, a short name)"));
        }
        // `;` parameters, as Tomcat, Spring and Jetty drop them (split yields at least one).
        let name = segment.split(';').next().unwrap_or_default();
        match name {
            "" | "." => {}
            ".." => {
                let parent = canonical.rfind('/').unwrap_or(0);
                canonical.truncate(parent);
            }
            _ if name.ends_with(['.', ' ']) => return Err(Ambiguity("a segment ending in a dot or a space")),
            _ => {
                canonical.push('/');
                canonical.push_str(name);
            }
        }
    }
    if canonical.is_empty() || decoded.ends_with('/') {
        canonical.push('/');
    }
    Ok(Cow::Owned(canonical))
}

/// Whether a path is its own canonical form, without allocating: the common case of
/// unreserved characters and plain segments, each but the last non-empty.
fn is_canonical(raw: &str) -> bool {
    // Unreserved characters and the sub-delimiters but `;`, and `:`, `@`, `/`.
    let plain = |b: u8| {
        b.is_ascii_alphanumeric()
            || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')')
            || matches!(b, b'*' | b'+' | b',' | b'=' | b':' | b'@')
    };
    if !raw.starts_with('/') || !raw.bytes().all(plain) {
        return false;
    }
    let mut segments = raw[1..].split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if (segment.is_empty() && !last) || segment.ends_with('.') || is_windows_alias(segment) {
            return false;
        }
    }
    true
}

/// Whether a segment names a file by another name on Windows (IIS): an NTFS stream
/// (`finance::$DATA` is the file `finance`, `finance:$i30:$INDEX_ALLOCATION` the directory)
/// or an 8.3 short name (`FINANC~1` may be `finance.xlsx`), which no prefix can follow.
fn is_windows_alias(segment: &str) -> bool {
    segment.contains(":$") || segment.as_bytes().windows(2).any(|w| w[0] == b'~' && w[1].is_ascii_digit())
}

/// Longer URLs are refused outright.
const MAX_URL_BYTES: usize = 4096;

impl Policy {
    /// Checks the settings; an error is one line, fit to stop startup with.
    pub fn from_settings(settings: &ForwardAuthSettings) -> Result<Policy, String> {
        let allowed = settings
            .allowed_domains
            .iter()
            .map(|raw| HostPattern::parse(raw).map_err(|e| format!("forward_auth.allowed_domains: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let rules = settings
            .rules
            .iter()
            .enumerate()
            .map(|(n, rule)| {
                let at = |e: String| format!("forward_auth.rules[{n}]: {e}");
                let host = HostPattern::parse(&rule.host).map_err(at)?;
                if !rule.path.starts_with('/') {
                    return Err(at(format!("path {:?} must start with /", rule.path)));
                }
                // A rule is written in the form paths are compared in: a prefix with an
                // escape, a `;`, `//` or a dot segment could never cover a canonical path.
                let path = match rule.path.strip_suffix('/') {
                    Some(trimmed) if !trimmed.is_empty() => trimmed,
                    _ => rule.path.as_str(),
                };
                if path.contains(['?', '#']) || !canonical_path(path).is_ok_and(|c| c == path) {
                    return Err(at(format!(
                        "path {:?} must be a plain path (no //, . or .. segments, %-escapes, ;, \\, ?, # or trailing dots)",
                        rule.path
                    )));
                }
                let allow = Allow::from_settings(&rule.allow).map_err(at)?;
                let folded = (!rule.case_sensitive).then(|| path.chars().flat_map(char::to_lowercase).collect());
                Ok(Rule { host, path: path.to_owned(), folded, allow, second_factor: rule.second_factor })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy {
            allowed,
            rules,
            deny_by_default: settings.default == DefaultPolicy::Deny,
            assertion: settings.assertion,
        })
    }

    /// Whether forward-auth is configured at all.
    pub fn is_enabled(&self) -> bool {
        !self.allowed.is_empty()
    }

    /// Whether a normalized host is one the portal gates.
    pub fn is_allowed_host(&self, host: &str) -> bool {
        self.allowed.iter().any(|p| p.matches(host))
    }

    /// May `user` reach `target`? Outside `allowed_domains`: no. Then the first rule whose
    /// host and path match decides; with none, `default`.
    ///
    /// A path is decided on twice when its readings differ: as the most lenient backend reads
    /// it (canonical, case folded unless the rule is case-sensitive) and as the strictest
    /// does (as sent, case kept); both must allow. The lenient reading stops `//finance` from
    /// passing a rule for `/finance`; the strict one stops `/secret;x/../public` (`/public`
    /// to Tomcat, `/secret;x/..` resolved by none) from passing as `/public` where only
    /// `/public` is open. An ambiguous path on a host with path rules is refused.
    ///
    /// A rule with `second_factor = true` lets a session below level 2 through neither
    /// reading: [`Verdict::SecondFactor`], when the user is otherwise allowed.
    pub fn decide(&self, target: &Target, user: &User, aal: i64) -> Verdict {
        if !self.is_allowed_host(&target.host) {
            return Verdict::Deny;
        }
        let host = target.host.as_str();
        let rules = || self.rules.iter().filter(move |r| r.host.matches(host));
        let allows = |rule: Option<&Rule>| rule.map_or(!self.deny_by_default, |r| r.allow.admits(user));
        let short = |rule: Option<&Rule>| rule.is_some_and(|r| r.second_factor) && aal < 2;
        let verdict = |rule: Option<&Rule>| match (allows(rule), short(rule)) {
            (false, _) => Verdict::Deny,
            (true, true) => Verdict::SecondFactor,
            (true, false) => Verdict::Allow,
        };
        // The common case: no rule names the host, or its first rule takes every path.
        match rules().next() {
            None => return verdict(None),
            Some(first) if first.is_whole_host() => return verdict(Some(first)),
            Some(_) => {}
        }
        let Some(lenient) = target.lenient_path() else {
            return Verdict::Deny;
        };
        let rule = rules().find(|r| r.covers_leniently(lenient));
        let first = verdict(rule);
        if first == Verdict::Deny {
            return Verdict::Deny;
        }
        let same = matches!(target.lenient, Lenient::Same) && rule.is_none_or(|r| r.covers_exactly(lenient));
        if same {
            return first;
        }
        match (first, verdict(rules().find(|r| r.covers_exactly(&target.path)))) {
            (_, Verdict::Deny) => Verdict::Deny,
            (Verdict::SecondFactor, _) | (_, Verdict::SecondFactor) => Verdict::SecondFactor,
            _ => Verdict::Allow,
        }
    }

    /// Whether a check is refused before anyone's session is looked at: its path is
    /// ambiguous (see [`canonical_path`]) on an allowed host whose first rule is a path
    /// rule, so that a path rule could cover it. Signing in would change nothing. Hosts
    /// without path rules keep every path: nothing there depends on how it is read.
    pub fn refuses_unseen(&self, target: &Target) -> Option<Ambiguity> {
        let Lenient::Ambiguous(ambiguity) = target.lenient else {
            return None;
        };
        let first = self.rules.iter().find(|r| r.host.matches(&target.host))?;
        (self.is_allowed_host(&target.host) && !first.is_whole_host()).then_some(ambiguity)
    }

    /// `rd` as the portal may follow it: an absolute `http`/`https` URL whose host is in
    /// `allowed_domains`, normalized; anything else `None` (the caller falls back to its
    /// own page, as for `next`).
    pub fn redirect_target(&self, rd: &str) -> Option<String> {
        let target = Target::parse(rd)?;
        self.is_allowed_host(&target.host).then_some(target.url)
    }
}

/// Whether a rule's path prefix (plain, no trailing `/`; lowercase when `fold`) covers a
/// path, on segment boundaries, comparing the path's leading segments lowercased when `fold`.
fn path_covers(prefix: &str, path: &str, fold: bool) -> bool {
    if prefix == "/" {
        return true;
    }
    // The path's first as many segments as the prefix has.
    let segments = prefix.bytes().filter(|&b| b == b'/').count();
    let end = path.match_indices('/').nth(segments).map_or(path.len(), |(at, _)| at);
    let head = &path[..end];
    match fold {
        false => head == prefix,
        true if head.is_ascii() => head.eq_ignore_ascii_case(prefix),
        true => head.chars().flat_map(char::to_lowercase).eq(prefix.chars()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, admin: bool) -> User {
        User {
            id: 1,
            username: name.into(),
            email: None,
            email_verified: true,
            is_admin: admin,
            disabled: false,
            created_at: 0,
            last_login_at: None,
        }
    }

    fn policy(toml: &str) -> Result<Policy, String> {
        use rocket::figment::providers::{Format, Toml};
        let settings: ForwardAuthSettings =
            rocket::figment::Figment::from(Toml::string(toml)).extract().map_err(|e| e.to_string())?;
        Policy::from_settings(&settings)
    }

    fn target(url: &str) -> Target {
        Target::parse(url).unwrap_or_else(|| panic!("{url} parses"))
    }

    #[test]
    fn hosts_compare_in_one_form() {
        assert_eq!(normalize_host("App.Example.COM."), Some("app.example.com".into()));
        assert_eq!(normalize_host("bücher.example"), Some("xn--bcher-kva.example".into()));
        assert_eq!(
            normalize_host("XN--BCHER-KVA.example"),
            Some("xn--bcher-kva.example".into()),
            "IDNA path"
        );
        assert_eq!(normalize_host("127.0.0.1"), Some("127.0.0.1".into()));
        assert_eq!(
            Target::parse("https://Bücher.Example./a").map(|t| t.host),
            Some("xn--bcher-kva.example".into())
        );
        for bad in ["", "a b", "a:80", "user@a", "a/b", "[::1]", "a%2eb"] {
            assert_eq!(normalize_host(bad), None, "{bad:?}");
        }
        let wild = HostPattern::parse("*.Example.com").unwrap();
        assert!(wild.matches("a.example.com") && wild.matches("a.b.example.com"));
        assert!(
            !wild.matches("example.com")
                && !wild.matches("badexample.com")
                && !wild.matches("a.example.com.evil")
        );
        assert!(HostPattern::parse("*").is_err() && HostPattern::parse("a.*.com").is_err());
    }

    #[test]
    fn the_first_matching_rule_decides_and_the_default_covers_the_rest() {
        let p = policy(
            r#"
            allowed_domains = ["*.example.com", "wiki.other.org"]
            [[rules]]
            host = "admin.example.com"
            allow = "admins"
            [[rules]]
            host = "*.example.com"
            path = "/finance"
            allow = ["Alice", "bob"]
            "#,
        )
        .unwrap();
        let (alice, carol, root) = (user("alice", false), user("carol", false), user("root", true));
        let ok = |url: &str, u: &User| p.decide(&target(url), u, 1) == Verdict::Allow;
        assert!(ok("https://admin.example.com/", &root) && !ok("https://admin.example.com/x", &alice));
        assert!(
            ok("https://app.example.com/finance/q3", &alice)
                && !ok("https://app.example.com/finance", &carol)
        );
        assert!(ok("https://app.example.com/financement", &carol), "segment boundaries");
        assert!(!ok("https://app.example.com/public/../finance/x", &carol), "dot segments resolved");
        assert!(!ok("https://app.example.com/%66inance", &carol), "percent-decoded");
        assert!(!ok("https://app.example.com/public/%2e%2e/finance", &carol), "encoded dots too");
        assert!(ok("https://wiki.other.org/x", &carol), "default allow");
        assert!(!ok("https://evil.org/", &root), "outside allowed_domains");
        assert!(!ok("https://other.org/", &root));

        let deny = policy("allowed_domains = [\"*.example.com\"]\ndefault = \"deny\"").unwrap();
        assert_eq!(deny.decide(&target("https://a.example.com/"), &root, 1), Verdict::Deny);
    }

    #[test]
    fn bad_rules_stop_startup_with_one_line() {
        for bad in [
            "allowed_domains = [\"*\"]",
            "allowed_domains = [\"a b\"]",
            "[[rules]]\nhost = \"a.*\"",
            "[[rules]]\nhost = \"a.com\"\npath = \"admin\"",
            "[[rules]]\nhost = \"a.com\"\nallow = \"everyone\"",
            "[[rules]]\nhost = \"a.com\"\nallow = []",
            "[[rules]]\nhost = \"a.com\"\npath = \"/a/../b\"",
            "[[rules]]\nhost = \"a.com\"\npath = \"/%66inance\"",
            "[[rules]]\nhost = \"a.com\"\npath = \"/finance;x\"",
            "[[rules]]\nhost = \"a.com\"\npath = \"//finance\"",
            "[[rules]]\nhost = \"a.com\"\npath = \"/finance.\"",
            "[[rules]]\nhost = \"a.com\"\npath = \"/finance?x\"",
            "[[rules]]\nhost = \"a.com\"\npath = \"/a\\\\b\"",
        ] {
            let err = policy(bad).unwrap_err();
            assert!(err.starts_with("forward_auth.") && !err.contains('\n'), "{bad}: {err}");
        }
    }

    #[test]
    fn the_original_request_comes_from_x_original_url_first() {
        let t = Target::from_headers(
            Some("https://App.example.com/a?b=c"),
            Some("http"),
            Some("evil.com"),
            Some("/x"),
        )
        .unwrap();
        assert_eq!((t.host.as_str(), t.path.as_str()), ("app.example.com", "/a"));
        let t =
            Target::from_headers(None, Some("https"), Some("app.example.com:8443"), Some("/b/c?d")).unwrap();
        assert_eq!(
            (t.host.as_str(), t.url.as_str()),
            ("app.example.com", "https://app.example.com:8443/b/c?d")
        );
        assert!(Target::from_headers(None, None, None, Some("/x")).is_none());
        assert!(Target::from_headers(None, Some("https"), Some("a.com"), Some("x")).is_none());
        assert!(Target::from_headers(Some("javascript:alert(1)"), None, None, None).is_none());
        assert!(Target::from_headers(Some("https://u:p@a.com/"), None, None, None).is_none());
    }

    #[test]
    fn rd_is_followed_only_to_allowed_hosts() {
        let p = policy("allowed_domains = [\"app.example.com\", \"*.corp.example\"]").unwrap();
        assert_eq!(
            p.redirect_target("https://app.example.com/x?y=1"),
            Some("https://app.example.com/x?y=1".into())
        );
        assert_eq!(p.redirect_target("https://APP.example.com./"), Some("https://app.example.com./".into()));
        assert!(p.redirect_target("https://wiki.corp.example/").is_some());
        for bad in [
            "/welcome",
            "//app.example.com/",
            "https://evil.example/",
            "https://app.example.com.evil.example/",
            "https://app.example.com@evil.example/",
            "https://evil.example\\@app.example.com/",
            "javascript://app.example.com/%0aalert(1)",
            "ftp://app.example.com/",
            "https://corp.example/",
            "https://app.example.com\t/",
        ] {
            assert_eq!(p.redirect_target(bad), None, "{bad:?}");
        }
        assert_eq!(Policy::default().redirect_target("https://app.example.com/"), None, "none allowed");
    }

    /// Every spelling of `/finance` from the audit, and more: each is either read as
    /// `/finance` or refused as ambiguous.
    const FINANCE_READ_AS_FINANCE: [&str; 14] = [
        "/finance",
        "//finance",
        "///finance/",
        "/./finance",
        "/%2e/finance",
        "/%66inance",
        "/finance;x",
        "/finance%3bx",
        "/;x/finance",
        "/x/../finance",
        "/x/%2e%2e/finance",
        "/../finance",
        "/Finance",
        "/FINANCE/q3",
    ];
    const FINANCE_AMBIGUOUS: [&str; 29] = [
        "/x/..%2ffinance",
        "/%2ffinance",
        "/%2Ffinance",
        "/finance.",
        "/finance..",
        "/finance%2e",
        "/finance.;x",
        "/finance%20",
        "/finance%20/q3",
        "/finance%00",
        "/finance%09",
        "/finance%7f",
        "/finance%c2%85",
        "/\\finance",
        "\\finance",
        "/%5cfinance",
        "/%5Cfinance",
        "/%2566inance",
        "/%u0066inance",
        "/finance%",
        "/finance%zz",
        "/finance%c0%af",
        "/finance%ff",
        "/finance#/../x",
        "/x#/../finance",
        "/finance::$DATA",
        "/finance:$i30:$INDEX_ALLOCATION/q3",
        "/FINANC~1",
        "/finance%3a%24DATA",
    ];

    #[test]
    fn canonical_paths_are_read_the_lenient_way_and_borrowed_when_unchanged() {
        for plain in [
            "/",
            "/financial",
            "/public/a.css",
            "/docs/page",
            "/a/b/",
            "/Finance",
            "/~me/x-y_z",
            "/wiki/Special:Export",
            "/price$",
        ] {
            assert_eq!(canonical_path(plain), Ok(Cow::Borrowed(plain)), "{plain}");
        }
        assert_eq!(canonical_path(""), Ok(Cow::Borrowed("/")));
        for (raw, canonical) in [
            ("//finance", "/finance"),
            ("///finance/", "/finance/"),
            ("/./finance", "/finance"),
            ("/%2e/finance", "/finance"),
            ("/%66inance", "/finance"),
            ("/finance;x", "/finance"),
            ("/finance;x/q3;y", "/finance/q3"),
            ("/finance%3bx", "/finance"),
            ("/;x/finance", "/finance"),
            ("/x/../finance", "/finance"),
            ("/x/%2e%2e/finance", "/finance"),
            ("/../finance", "/finance"),
            ("/finance/..", "/"),
            ("/caf%C3%A9", "/café"),
            ("/café", "/café"),
            ("/docs/a%20b", "/docs/a b"),
            ("/a%2Bb", "/a+b"),
        ] {
            assert_eq!(canonical_path(raw).as_deref(), Ok(canonical), "{raw}");
        }
    }

    #[test]
    fn paths_backends_read_differently_are_ambiguous() {
        for raw in FINANCE_AMBIGUOUS {
            assert!(canonical_path(raw).is_err(), "{raw} is not ambiguous: {:?}", canonical_path(raw));
        }
        assert_eq!(canonical_path("/%2ffinance"), Err(Ambiguity("an encoded / or \\")));
        assert_eq!(canonical_path("/%2566inance"), Err(Ambiguity("a second level of escapes")));
        assert_eq!(canonical_path("/finance%00"), Err(Ambiguity("a control character")));
        assert_eq!(canonical_path("/finance."), Err(Ambiguity("a segment ending in a dot or a space")));
    }

    #[test]
    fn the_query_is_not_part_of_the_path_and_a_raw_hash_is() {
        let t = target("https://app.example.com/finance?x=/../public");
        assert_eq!((t.path.as_str(), &t.lenient), ("/finance", &Lenient::Same));
        assert_eq!(target("https://app.example.com?x").path, "/");
        assert_eq!(target("https://app.example.com").path, "/");
        assert_eq!(target("https://app.example.com/x#/../finance").lenient_path(), None);
        let t = target("https://app.example.com//finance;x?y");
        assert_eq!((t.path.as_str(), t.lenient_path()), ("//finance;x", Some("/finance")));
    }

    fn finance_policy() -> Policy {
        policy(
            r#"
            allowed_domains = ["*.example.com", "wiki.other.org"]
            [[rules]]
            host = "admin.example.com"
            allow = "admins"
            [[rules]]
            host = "*.example.com"
            path = "/finance/"
            allow = ["alice", "bob"]
            "#,
        )
        .unwrap()
    }

    #[test]
    fn no_spelling_of_a_protected_path_passes_its_rule() {
        let p = finance_policy();
        let (alice, dave) = (user("alice", false), user("dave", false));
        let decide =
            |path: &str, u: &User| p.decide(&target(&format!("https://app.example.com{path}")), u, 1);
        for path in
            FINANCE_READ_AS_FINANCE.iter().chain(&FINANCE_AMBIGUOUS).chain(&["/finance?x", "/finance/"])
        {
            assert_eq!(decide(path, &dave), Verdict::Deny, "dave, {path}");
        }
        for path in FINANCE_READ_AS_FINANCE.iter().chain(&["/finance?x"]) {
            assert_eq!(decide(path, &alice), Verdict::Allow, "alice, {path}");
        }
        for path in FINANCE_AMBIGUOUS {
            assert_eq!(decide(path, &alice), Verdict::Deny, "alice, ambiguous {path}");
        }
        for path in ["/", "/financial", "/public/a.css", "/caf%C3%A9", "/docs/a%20b", "/x/../public"] {
            assert_eq!(decide(path, &dave), Verdict::Allow, "dave, {path}");
        }
    }

    #[test]
    fn only_hosts_whose_first_rule_is_a_path_rule_refuse_ambiguous_paths_unseen() {
        let p = finance_policy();
        let unseen = |url: &str| p.refuses_unseen(&target(url));
        assert_eq!(unseen("https://app.example.com/%2ffinance"), Some(Ambiguity("an encoded / or \\")));
        assert_eq!(unseen("https://app.example.com/public/a%2fb"), Some(Ambiguity("an encoded / or \\")));
        assert_eq!(unseen("https://app.example.com//finance"), None, "canonical: decided on");
        assert_eq!(unseen("https://admin.example.com/%2ffinance"), None, "the whole host is one rule's");
        assert_eq!(unseen("https://wiki.other.org/a%2fb"), None, "no rule: the default takes any path");
        assert_eq!(unseen("https://evil.org/%2f"), None, "not a gated host");
        let root = user("root", true);
        assert_eq!(p.decide(&target("https://admin.example.com/a%2fb."), &root, 1), Verdict::Allow);
        assert_eq!(
            p.decide(&target("https://wiki.other.org/a%2fb"), &user("carol", false), 1),
            Verdict::Allow
        );
    }

    #[test]
    fn a_case_sensitive_rule_matches_case_as_written() {
        let p = policy(
            r#"
            allowed_domains = ["app.example.com"]
            [[rules]]
            host = "app.example.com"
            path = "/Finance"
            case_sensitive = true
            allow = ["alice"]
            [[rules]]
            host = "app.example.com"
            path = "/Café"
            allow = ["alice"]
            "#,
        )
        .unwrap();
        let dave = user("dave", false);
        let decide = |path: &str| p.decide(&target(&format!("https://app.example.com{path}")), &dave, 1);
        assert_eq!(decide("/Finance/q3"), Verdict::Deny);
        assert_eq!(decide("//Finance;x"), Verdict::Deny);
        assert_eq!(decide("/finance"), Verdict::Allow, "case-sensitive");
        assert_eq!(decide("/CAFÉ/menu"), Verdict::Deny, "folded beyond ASCII");
        assert_eq!(decide("/caf%C3%A9"), Verdict::Deny);
    }

    #[test]
    fn where_only_some_paths_are_open_the_path_as_sent_must_be_open_too() {
        let p = policy(
            r#"
            allowed_domains = ["app.example.com"]
            default = "deny"
            [[rules]]
            host = "app.example.com"
            path = "/public"
            allow = "signed-in"
            "#,
        )
        .unwrap();
        let dave = user("dave", false);
        let decide = |path: &str| p.decide(&target(&format!("https://app.example.com{path}")), &dave, 1);
        assert_eq!(decide("/public/a.css"), Verdict::Allow);
        assert_eq!(decide("/public;v=2/a.css"), Verdict::Deny, "public;v=2 is another directory to nginx");
        assert_eq!(
            decide("/secret;x/../public"),
            Verdict::Deny,
            "/public to Tomcat, under /secret;x to nginx"
        );
        assert_eq!(decide("/PUBLIC/a.css"), Verdict::Deny, "another directory on a case-sensitive backend");
        assert_eq!(decide("/secret"), Verdict::Deny);
    }

    #[test]
    fn a_second_factor_rule_sends_level_one_to_the_second_step_and_lets_level_two_through() {
        let p = policy(
            r#"
            allowed_domains = ["app.example.com", "wiki.example.com"]
            [[rules]]
            host = "app.example.com"
            path = "/money"
            allow = "signed-in"
            second_factor = true
            [[rules]]
            host = "app.example.com"
            path = "/"
            allow = "signed-in"
            [[rules]]
            host = "wiki.example.com"
            allow = "admins"
            second_factor = true
            "#,
        )
        .unwrap();
        let dave = user("dave", false);
        let root = user("root", true);
        let at = |url: &str, u: &User, aal: i64| p.decide(&target(url), u, aal);
        assert_eq!(at("https://app.example.com/money/q3", &dave, 1), Verdict::SecondFactor);
        assert_eq!(at("https://app.example.com/money/q3", &dave, 2), Verdict::Allow);
        assert_eq!(at("https://app.example.com/MONEY//q3", &dave, 1), Verdict::SecondFactor, "any spelling");
        assert_eq!(at("https://app.example.com/news", &dave, 1), Verdict::Allow);
        assert_eq!(at("https://wiki.example.com/", &dave, 1), Verdict::Deny, "refused whatever the level");
        assert_eq!(at("https://wiki.example.com/", &dave, 2), Verdict::Deny);
        assert_eq!(at("https://wiki.example.com/", &root, 1), Verdict::SecondFactor);
        assert_eq!(at("https://wiki.example.com/", &root, 2), Verdict::Allow);
    }
}
