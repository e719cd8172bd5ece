//! Hosts in the one form they are compared in, wherever they come from: configuration
//! (`session.cookie_domain`, `forward_auth`) and requests (forward-auth's `X-Forwarded-Host`,
//! `rd`). A leaf: it imports nothing of the portal, so `config` and `auth` can both read it.

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
