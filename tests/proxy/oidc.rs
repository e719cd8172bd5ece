//! The portal as an OpenID provider for a certified relying party: Debian's Apache with
//! `mod_auth_openidc` in front of an echo application, all on loopback, the real binary
//! behind. The walk: anonymous → the portal's login page → sign in → the consent page →
//! Allow → back at the application, which sees the claims the module passes on → logout
//! through the module's logout URL → the portal's end-session endpoint → signed out of both.

use std::collections::HashMap;

use portal_testkit::process::free_port;
use portal_testkit::proxy::{connect, exchange, openid_portal, openidc_apache, Answer, Echo};
use portal_testkit::PASSWORD;

/// One browser: a cookie jar shared by every port of 127.0.0.1, as a browser's is.
#[derive(Default)]
struct Visitor {
    jar: HashMap<String, String>,
}

impl Visitor {
    fn send(&mut self, url: &str, form: Option<&[(&str, &str)]>) -> Answer {
        let rest = url.strip_prefix("http://127.0.0.1:").unwrap_or_else(|| panic!("a loopback URL: {url}"));
        let (port, path) =
            rest.split_once('/').map_or((rest, "/".to_owned()), |(p, path)| (p, format!("/{path}")));
        let port: u16 = port.parse().unwrap();
        let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let method = if form.is_some() { "POST" } else { "GET" };
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAccept: text/html\r\n");
        if !cookies.is_empty() {
            request.push_str(&format!("Cookie: {}\r\n", cookies.join("; ")));
        }
        match form {
            Some(fields) => {
                let body: String =
                    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
                request.push_str(&format!(
                    "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                ));
            }
            None => request.push_str("\r\n"),
        }
        let answer = exchange(connect(port), &request);
        for cookie in answer.headers("Set-Cookie") {
            if let Some((name, value)) = cookie.split(';').next().and_then(|c| c.split_once('=')) {
                if value.is_empty() || cookie.to_ascii_lowercase().contains("max-age=0") {
                    self.jar.remove(name.trim());
                } else {
                    self.jar.insert(name.trim().to_owned(), value.to_owned());
                }
            }
        }
        answer
    }

    /// Where a redirect goes, made absolute against `base` (`http://127.0.0.1:PORT`).
    fn follow(answer: &Answer, base: &str) -> String {
        assert!(matches!(answer.status, 302 | 303), "a redirect, not {}: {}", answer.status, answer.body);
        let to = answer.headers("Location")[0];
        if to.starts_with('/') {
            format!("{base}{to}")
        } else {
            to.to_owned()
        }
    }
}

fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The hidden fields of the form that posts to `/oidc/…`.
fn hidden_fields(page: &str) -> Vec<(String, String)> {
    let form =
        page.split("action=\"/oidc/").nth(1).expect("a form to /oidc/").split("</form>").next().unwrap();
    form.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|piece| {
            let (name, rest) = piece.split_once('"').unwrap();
            let value = rest.split_once("value=\"").unwrap().1.split_once('"').unwrap().0;
            (name.to_owned(), value.replace("&amp;", "&").replace("&quot;", "\"").replace("&#x2f;", "/"))
        })
        .collect()
}

#[test]
fn apache_mod_auth_openidc_signs_in_through_the_portal_sees_the_claims_and_signs_out() {
    let portal_port = free_port();
    let apache_port = free_port();
    let portal_base = format!("http://127.0.0.1:{portal_port}");
    let apache_base = format!("http://127.0.0.1:{apache_port}");
    let echo = Echo::named("app");
    let portal = openid_portal(portal_port, &apache_base);
    let apache = openidc_apache(apache_port, portal_port, echo.port);
    let mut browser = Visitor::default();

    // Anonymous: the module sends the browser to the portal, which asks for a sign-in.
    let to_portal = Visitor::follow(&browser.send(&format!("{apache_base}/protected/"), None), &apache_base);
    assert!(to_portal.starts_with(&format!("{portal_base}/oidc/authorize?")), "{to_portal}");
    let to_login = Visitor::follow(&browser.send(&to_portal, None), &portal_base);
    let next = param(&to_login, "next").expect("the request comes back after the sign-in");
    let login = browser.send(&format!("{portal_base}/login"), None);
    let token = login
        .body
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let signed_in = browser.send(
        &format!("{portal_base}/login"),
        Some(&[("csrf_token", &token), ("username", "alice"), ("password", PASSWORD), ("next", &next)]),
    );
    let back = Visitor::follow(&signed_in, &portal_base);

    // The consent page names the application; Allow sends the code to the module.
    let consent = browser.send(&back, None);
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("Allow The Echo?"), "{}", consent.body);
    let mut fields = hidden_fields(&consent.body);
    fields.push(("decision".into(), "allow".into()));
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let with_code =
        Visitor::follow(&browser.send(&format!("{portal_base}/oidc/consent"), Some(&fields)), &portal_base);
    assert!(with_code.starts_with(&format!("{apache_base}/protected/redirect_uri?code=")), "{with_code}");
    assert_eq!(param(&with_code, "iss").as_deref(), Some(portal_base.as_str()));
    let home_again = browser.send(&with_code, None);
    let original = Visitor::follow(&home_again, &apache_base);
    assert_eq!(original, format!("{apache_base}/protected/"), "{}", apache.log());

    // The application sees who it is, as the module read it from the ID token and userinfo.
    let app = browser.send(&original, None);
    assert_eq!(app.status, 200, "{}", apache.log());
    for line in [
        "served-by: app",
        "OIDC_CLAIM_preferred_username: alice",
        "OIDC_CLAIM_sub: 1",
        "OIDC_CLAIM_acr: aal1",
    ] {
        assert!(app.body.contains(line), "{line} in {}", app.body);
    }
    assert!(app.body.contains(&format!("OIDC_CLAIM_iss: {portal_base}")), "{}", app.body);

    // Logout through the module: the portal's end-session endpoint, with the ID token as
    // its hint, signs the portal out and returns to the registered address.
    let logout = format!("{apache_base}/protected/redirect_uri?logout={apache_base}/loggedout");
    let to_end = Visitor::follow(&browser.send(&logout, None), &apache_base);
    assert!(to_end.starts_with(&format!("{portal_base}/oidc/logout?")), "{to_end}");
    assert!(param(&to_end, "id_token_hint").is_some());
    let after = Visitor::follow(&browser.send(&to_end, None), &portal_base);
    assert_eq!(after, format!("{apache_base}/loggedout"));
    assert_eq!(browser.send(&after, None).status, 200);
    assert_eq!(browser.send(&format!("{portal_base}/welcome"), None).status, 303, "signed out of the portal");
    let again = browser.send(&format!("{apache_base}/protected/"), None);
    assert_eq!(again.status, 302, "signed out of the application: {}", again.body);
    drop(apache);
    drop(portal);
}
