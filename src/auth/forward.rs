//! Forward-auth decisions: may this proxied request through, and where may a person be sent
//! back to after signing in (`rd`)? Pure functions over the configured policy; the routes
//! read the headers and the session, the auth service signs the assertion.
//!
//! Hosts are compared in one form: lowercase ASCII (IDN in its `xn--` form), without a
//! trailing dot or a port. Paths are compared after the URL parser has resolved dot
//! segments (`/public/../admin` is `/admin`) and after percent-decoding (`/%61dmin` is
//! `/admin`), so the form an application sees cannot slip past the rule written for it.

use rocket::http::RawStr;
use serde::Deserialize;

use crate::store::{account_key, User};

/// `[forward_auth]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ForwardAuthSettings {
    /// Hosts the portal gates and may send people back to (`rd`): exact hosts and
    /// `*.example.com` patterns. Empty: forward-auth refuses every request (403) and no `rd`
    /// is followed.
    pub allowed_domains: Vec<String>,
    /// First match wins.
    pub rules: Vec<RuleSettings>,
    /// For a host no rule names: `allow` (every signed-in user) or `deny`.
    pub default: DefaultPolicy,
    /// Send `X-Portal-Assertion`, a signed JWT of who the user is, with every `200`.
    pub assertion: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultPolicy {
    #[default]
    Allow,
    Deny,
}

/// One `[[forward_auth.rules]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
pub struct RuleSettings {
    pub host: String,
    #[serde(default = "root_path")]
    pub path: String,
    #[serde(default)]
    pub allow: AllowSettings,
}

fn root_path() -> String {
    "/".into()
}

/// `"signed-in"`, `"admins"`, or a list of usernames.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AllowSettings {
    Named(String),
    Users(Vec<String>),
}

impl Default for AllowSettings {
    fn default() -> Self {
        AllowSettings::Named("signed-in".into())
    }
}

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

/// A host as typed or sent, in the one form hosts are compared in: lowercase ASCII (IDN as
/// `xn--`), no trailing dot. `None` for anything that is not a domain name (an address, a
/// port, userinfo, spaces).
pub fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.strip_suffix('.').unwrap_or(raw);
    if raw.is_empty() || raw.contains([':', '/', '@', '\\', ' ', '%']) {
        return None;
    }
    // The common case, on every check: a plain ASCII name needs no IDNA mapping.
    let plain = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && !label.starts_with("xn--")
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if raw.len() <= 253 && raw.split('.').all(plain) && !raw.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return Some(raw.to_ascii_lowercase());
    }
    match url::Host::parse(raw).ok()? {
        url::Host::Domain(domain) => Some(domain.trim_end_matches('.').to_owned()),
        // Addresses are allowed as exact hosts (a test setup on 127.0.0.1).
        url::Host::Ipv4(ip) => Some(ip.to_string()),
        url::Host::Ipv6(_) => None,
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

#[derive(Debug, Clone)]
pub struct Rule {
    pub host: HostPattern,
    /// A path prefix, matched on segment boundaries: `/admin` covers `/admin` and
    /// `/admin/x`, not `/administrator`.
    pub path: String,
    pub allow: Allow,
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
}

/// The request the proxy asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https://app.example.com/x?y` as normalized by the URL parser.
    pub url: String,
    /// Normalized (see [`normalize_host`]).
    pub host: String,
    /// Dot segments resolved, percent-decoded.
    pub path: String,
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
        let path = RawStr::new(url.path()).percent_decode_lossy().into_owned();
        Some(Target { url: String::from(url), host, path })
    }
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
                let allow = match &rule.allow {
                    AllowSettings::Named(name) if name == "signed-in" => Allow::SignedIn,
                    AllowSettings::Named(name) if name == "admins" => Allow::Admins,
                    AllowSettings::Named(other) => {
                        return Err(at(format!(
                            "allow {other:?} is not \"signed-in\", \"admins\" or a list of usernames"
                        )))
                    }
                    AllowSettings::Users(names) if names.is_empty() => {
                        return Err(at("allow = [] lets nobody in; name the users".into()))
                    }
                    AllowSettings::Users(names) => {
                        Allow::Users(names.iter().map(|n| account_key(n)).collect())
                    }
                };
                Ok(Rule { host, path: rule.path.clone(), allow })
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
    pub fn decide(&self, target: &Target, user: &User) -> Verdict {
        if !self.is_allowed_host(&target.host) {
            return Verdict::Deny;
        }
        let rule =
            self.rules.iter().find(|r| r.host.matches(&target.host) && path_covers(&r.path, &target.path));
        let allowed = match rule.map(|r| &r.allow) {
            None => !self.deny_by_default,
            Some(Allow::SignedIn) => true,
            Some(Allow::Admins) => user.is_admin,
            Some(Allow::Users(keys)) => {
                let key = account_key(&user.username);
                keys.contains(&key)
            }
        };
        if allowed {
            Verdict::Allow
        } else {
            Verdict::Deny
        }
    }

    /// `rd` as the portal may follow it: an absolute `http`/`https` URL whose host is in
    /// `allowed_domains`, normalized; anything else `None` (the caller falls back to its
    /// own page, as for `next`).
    pub fn redirect_target(&self, rd: &str) -> Option<String> {
        let target = Target::parse(rd)?;
        self.is_allowed_host(&target.host).then_some(target.url)
    }
}

/// Whether a rule's path prefix covers a path, on segment boundaries.
fn path_covers(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, admin: bool) -> User {
        User {
            id: 1,
            username: name.into(),
            email: None,
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
        let ok = |url: &str, u: &User| p.decide(&target(url), u) == Verdict::Allow;
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
        assert_eq!(deny.decide(&target("https://a.example.com/"), &root), Verdict::Deny);
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
}
