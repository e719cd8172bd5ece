//! Forward-auth through real proxies, with the shipped configuration: nginx
//! (`deploy/nginx/portal-auth-location.conf` and `portal-auth.conf`) and Caddy
//! (`deploy/caddy/portal.caddy`), each in front of the portal (`auth.portal.test`) and of a
//! tiny application that echoes the identity headers it receives (`app.portal.test`,
//! `admin.portal.test`). Hosts are Host headers on loopback: every byte is the test's.
//!
//! The walk, for each proxy: the application without a session → the login page, with `rd`
//! → sign in → back at the original URL, which now shows who is signed in (and not what the
//! client claimed); a host whose rule refuses the user → 403; logout through the portal →
//! the next request to the application goes to the login page again.

use std::collections::HashMap;

use crate::common::process::free_port;
use crate::harness::{
    caddy_binary, caddy_deploy_dir, connect, exchange, gate_http_body, gated_portal, nginx_binary, Answer,
    Caddy, Echo, Nginx,
};

/// A request through the proxy on `port`: `METHOD path` for `host`, with these cookies and
/// extra header lines (each ending in `\r\n`), and a form body when given.
fn send(
    port: u16,
    method: &str,
    host: &str,
    path: &str,
    cookies: &str,
    extra: &str,
    form: Option<&str>,
) -> Answer {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}");
    if !cookies.is_empty() {
        request.push_str(&format!("Cookie: {cookies}\r\n"));
    }
    match form {
        Some(body) => request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => request.push_str("\r\n"),
    }
    exchange(connect(port), &request)
}

/// `name=value` of every cookie an answer sets, by name (the attributes dropped).
fn set_cookies(answer: &Answer) -> HashMap<String, String> {
    answer
        .headers("Set-Cookie")
        .iter()
        .filter_map(|c| c.split(';').next()?.split_once('='))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

fn cookie_header(jar: &HashMap<String, String>) -> String {
    jar.iter().filter(|(_, v)| !v.is_empty()).map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).map(|i| i + marker.len()).unwrap_or_else(|| panic!("no {name} in {page}"));
    let end = page[start..].find('"').unwrap() + start;
    page[start..end].replace("&#x2f;", "/").replace("&amp;", "&")
}

fn encode(text: &str) -> String {
    rocket::http::RawStr::new(text).percent_encode().to_string()
}

/// The whole walk through a proxy on `port`. `browser` holds the header lines a browser's
/// navigation sends (Caddy's check needs `Accept: text/html` to answer with a redirect).
fn walk(port: u16, logs: impl Fn() -> String) {
    let app = format!("app.portal.test:{port}");
    let auth = format!("auth.portal.test:{port}");
    let admin = format!("admin.portal.test:{port}");
    let browser = "Accept: text/html,application/xhtml+xml\r\n";
    let original = format!("http://{app}/docs/page?x=1&y=2");

    // 1. The application, signed out: to the login page, rd = the original URL.
    let first = send(port, "GET", &app, "/docs/page?x=1&y=2", "", browser, None);
    assert_eq!(first.status, 302, "{first:#?}\n{}", logs());
    let location = first.headers("Location")[0].to_owned();
    let expected = format!("http://{auth}/login?rd=");
    assert!(location.starts_with(&expected), "{location}");
    let rd_encoded = &location[expected.len()..];
    let rd = rocket::http::RawStr::new(rd_encoded).percent_decode_lossy().into_owned();
    assert_eq!(rd, original);

    // 2. The login page, through the proxy, keeps rd in its form.
    let login = send(port, "GET", &auth, &format!("/login?rd={rd_encoded}"), "", browser, None);
    assert_eq!(login.status, 200, "{login:#?}\n{}", logs());
    assert_eq!(hidden(&login.body, "rd"), original);
    let mut jar = set_cookies(&login);
    let token = hidden(&login.body, "csrf_token");

    // 3. Signing in sends the browser back to the application, with a cookie for the domain.
    let form = format!(
        "csrf_token={}&username=alice&password={}&rd={}",
        encode(&token),
        encode(crate::common::PASSWORD),
        encode(&original)
    );
    let signed_in = send(port, "POST", &auth, "/login", &cookie_header(&jar), browser, Some(&form));
    assert_eq!(signed_in.status, 303, "{signed_in:#?}\n{}", logs());
    assert_eq!(signed_in.headers("Location"), [original.as_str()]);
    let session =
        signed_in.headers("Set-Cookie").into_iter().find(|c| c.starts_with("portal_session=")).unwrap();
    assert!(session.contains("Domain=portal.test"), "{session}");
    jar.extend(set_cookies(&signed_in));

    // 4. The application now answers, told who it is; what the client claimed is overwritten.
    let forged = "Remote-User: root\r\nRemote-Groups: admins\r\nX-Auth-Request-User: root\r\n";
    let page = send(
        port,
        "GET",
        &app,
        "/docs/page?x=1&y=2",
        &cookie_header(&jar),
        &format!("{browser}{forged}"),
        None,
    );
    assert_eq!(page.status, 200, "{page:#?}\n{}", logs());
    assert!(page.body.contains("path: /docs/page?x=1&y=2"), "{}", page.body);
    assert!(page.body.contains("Remote-User: alice\n"), "{}", page.body);
    assert!(page.body.contains("Remote-Groups: \n"), "{}", page.body);
    assert!(page.body.contains("X-Auth-Request-User: alice\n"), "{}", page.body);

    // 5. A host whose rule refuses alice: 403, and the application never sees the request.
    let refused = send(port, "GET", &admin, "/", &cookie_header(&jar), browser, None);
    assert_eq!(refused.status, 403, "{refused:#?}\n{}", logs());
    assert!(!refused.body.contains("Remote-User"), "{}", refused.body);

    // 6. Logout through the portal; the next request to the application goes to log in.
    let logout_page = send(port, "GET", &auth, "/logout", &cookie_header(&jar), browser, None);
    assert_eq!(logout_page.status, 200, "{logout_page:#?}");
    let token = hidden(&logout_page.body, "csrf_token");
    jar.extend(set_cookies(&logout_page));
    let out = send(
        port,
        "POST",
        &auth,
        "/logout",
        &cookie_header(&jar),
        browser,
        Some(&format!("csrf_token={}", encode(&token))),
    );
    assert_eq!(out.status, 303, "{out:#?}");
    let after = send(port, "GET", &app, "/docs/page?x=1&y=2", &cookie_header(&jar), browser, None);
    assert_eq!(after.status, 302, "the old cookie no longer opens the application: {after:#?}\n{}", logs());
    assert!(after.headers("Location")[0].starts_with(&expected));
}

#[test]
fn nginx_gates_an_application_with_the_shipped_snippets() {
    nginx_binary();
    let echo = Echo::start();
    let port = free_port();
    let portal = gated_portal(port);
    let body = gate_http_body(port, portal.port, echo.port);
    let nginx = Nginx::with_config(port, &body, &format!("auth.portal.test:{port}"));
    walk(port, || format!("--- nginx:\n{}\n--- portal:\n{}", nginx.log(), portal.log()));
}

#[test]
fn caddy_gates_an_application_with_the_shipped_snippet() {
    caddy_binary();
    let echo = Echo::start();
    let port = free_port();
    let portal = gated_portal(port);
    let snippet = caddy_deploy_dir().join("portal.caddy");
    let caddyfile = format!(
        "{{\n\tadmin off\n\tauto_https off\n}}\n\
         import {snippet}\n\
         http://auth.portal.test:{port} {{\n\treverse_proxy 127.0.0.1:{portal} {{\n\t\theader_up X-Real-IP {{remote_host}}\n\t}}\n}}\n\
         http://app.portal.test:{port}, http://admin.portal.test:{port} {{\n\timport portal_gate\n\treverse_proxy 127.0.0.1:{echo}\n}}\n",
        snippet = snippet.display(),
        portal = portal.port,
        echo = echo.port,
    );
    let env = [("PORTAL_UPSTREAM", format!("127.0.0.1:{}", portal.port))];
    let caddy = Caddy::start(port, &caddyfile, &env, &format!("auth.portal.test:{port}"));
    walk(port, || format!("--- caddy:\n{}\n--- portal:\n{}", caddy.log(), portal.log()));
}
