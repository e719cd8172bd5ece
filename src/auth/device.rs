//! "Firefox on Linux": a short description of a browser that a person recognises, made from
//! its User-Agent by a small honest heuristic (the well-known tokens, in the order that
//! disambiguates them). Anything else is "Unknown browser"; the raw header is never kept.

/// Browsers, most specific token first (Edge and Opera also say "Chrome"; Chrome also says
/// "Safari").
const BROWSERS: [(&str, &str); 9] = [
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
];

/// Systems, most specific first (Android also says "Linux"; iOS also says "Mac OS X").
const SYSTEMS: [(&str, &str); 7] = [
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
];

/// Longest User-Agent looked at: real ones are a few hundred bytes.
const MAX_AGENT_BYTES: usize = 1024;

/// A short description of the client, e.g. "Firefox on Linux".
pub fn describe(user_agent: Option<&str>) -> String {
    let agent = user_agent.unwrap_or("");
    let cut =
        (0..=agent.len().min(MAX_AGENT_BYTES)).rev().find(|at| agent.is_char_boundary(*at)).unwrap_or(0);
    let agent = &agent[..cut];
    let browser = BROWSERS.iter().find(|(token, _)| agent.contains(token)).map(|(_, name)| *name);
    let system = SYSTEMS.iter().find(|(token, _)| agent.contains(token)).map(|(_, name)| *name);
    match (browser, system) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser.to_owned(),
        (None, Some(system)) => format!("A browser on {system}"),
        (None, None) => "Unknown browser".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn common_browsers_are_named_with_their_system() {
        let cases = [
            ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Linux"),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
                "Safari on macOS",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            ("curl/8.5.0", "curl"),
        ];
        for (agent, expected) in cases {
            assert_eq!(describe(Some(agent)), expected, "{agent}");
        }
    }

    #[test]
    fn anything_else_is_unknown_and_never_echoed() {
        assert_eq!(describe(None), "Unknown browser");
        assert_eq!(describe(Some("<script>alert(1)</script>")), "Unknown browser");
        assert_eq!(describe(Some(&"x".repeat(100_000))), "Unknown browser");
    }
}
