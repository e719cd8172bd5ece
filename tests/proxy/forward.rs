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
//!
//! Then what the audit found, for each proxy: the host the portal decides on is the host the
//! proxy routes on (absolute-form request lines, a `Host` that disagrees, with and without a
//! port), and no spelling of a protected path reads a protected file from a stock static
//! file server behind the proxy (nginx's own `root`, Caddy's `file_server`).

use std::collections::HashMap;

use portal_testkit::process::{free_port, Portal};
use portal_testkit::proxy::{
    caddy_binary, caddy_deploy_dir, connect, exchange, gate_http_body, gate_sites_http_body, gated_portal,
    nginx_binary, Answer, Caddy, Echo, Files, Nginx, FINANCE_SECRET,
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
        encode(portal_testkit::PASSWORD),
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

// ---------------------------------------------------------------------------------------
// Hosts and paths as the proxy reads them

/// The proxy in front.
enum Proxy {
    Nginx(Nginx),
    Caddy(Caddy),
}

/// A proxy on `port` with the shipped configuration in front of the portal
/// (`auth.portal.test`), an echo named `app` (`app.portal.test`), one named `admin`
/// (`admin.portal.test`, administrators only), and a stock static file server holding
/// `finance` (`files.portal.test`; `/finance` is for alice and bob on every host).
struct Site {
    port: u16,
    portal: Portal,
    proxy: Proxy,
    _files: Files,
}

impl Site {
    fn nginx() -> Site {
        nginx_binary();
        let (app, admin, files) = (Echo::named("app"), Echo::named("admin"), Files::new());
        let port = free_port();
        let portal = gated_portal(port);
        let body = gate_sites_http_body(port, portal.port, app.port, admin.port, free_port(), &files);
        let nginx = Nginx::with_config(port, &body, &format!("auth.portal.test:{port}"));
        Site { port, portal, proxy: Proxy::Nginx(nginx), _files: files }
    }

    fn caddy() -> Site {
        caddy_binary();
        let (app, admin, files) = (Echo::named("app"), Echo::named("admin"), Files::new());
        let port = free_port();
        let portal = gated_portal(port);
        let caddyfile = format!(
            "{{\n\tadmin off\n\tauto_https off\n}}\n\
             import {snippet}\n\
             http://auth.portal.test:{port} {{\n\treverse_proxy 127.0.0.1:{portal}\n}}\n\
             http://app.portal.test:{port} {{\n\timport portal_gate\n\treverse_proxy 127.0.0.1:{app}\n}}\n\
             http://admin.portal.test:{port} {{\n\timport portal_gate\n\treverse_proxy 127.0.0.1:{admin}\n}}\n\
             http://files.portal.test:{port} {{\n\timport portal_gate\n\troot * {files}\n\tfile_server\n}}\n",
            snippet = caddy_deploy_dir().join("portal.caddy").display(),
            portal = portal.port,
            app = app.port,
            admin = admin.port,
            files = files.dir.path().display(),
        );
        let env = [("PORTAL_UPSTREAM", format!("127.0.0.1:{}", portal.port))];
        let caddy = Caddy::start(port, &caddyfile, &env, &format!("auth.portal.test:{port}"));
        Site { port, portal, proxy: Proxy::Caddy(caddy), _files: files }
    }

    fn logs(&self) -> String {
        let (name, log) = match &self.proxy {
            Proxy::Nginx(nginx) => ("nginx", nginx.log()),
            Proxy::Caddy(caddy) => ("caddy", caddy.log()),
        };
        format!("--- {name}:\n{log}\n--- portal:\n{}", self.portal.log())
    }

    /// Signs `user` in through the proxy's login page; the `Cookie` header value to send.
    fn sign_in(&self, user: &str) -> String {
        let auth = format!("auth.portal.test:{}", self.port);
        let login = send(self.port, "GET", &auth, "/login", "", "", None);
        assert_eq!(login.status, 200, "{login:#?}\n{}", self.logs());
        let mut jar = set_cookies(&login);
        let form = format!(
            "csrf_token={}&username={user}&password={}",
            encode(&hidden(&login.body, "csrf_token")),
            encode(portal_testkit::PASSWORD)
        );
        let signed_in = send(self.port, "POST", &auth, "/login", &cookie_header(&jar), "", Some(&form));
        assert_eq!(signed_in.status, 303, "{user} signs in: {signed_in:#?}\n{}", self.logs());
        jar.extend(set_cookies(&signed_in));
        cookie_header(&jar)
    }

    /// `GET target` with this `Host` header (omitted when empty), as raw bytes: `target` may
    /// be absolute-form (`http://host/path`) or a path no client library would send.
    fn raw_get(&self, target: &str, host: &str, cookies: &str, extra: &str) -> Answer {
        let mut request = format!("GET {target} HTTP/1.1\r\nConnection: close\r\n{extra}");
        if !host.is_empty() {
            request.push_str(&format!("Host: {host}\r\n"));
        }
        if !cookies.is_empty() {
            request.push_str(&format!("Cookie: {cookies}\r\n"));
        }
        request.push_str("\r\n");
        exchange(connect(self.port), &request)
    }
}

/// Who an echo answer came from and for whom: (`served-by`, `Remote-User`).
fn served(answer: &Answer) -> (String, String) {
    let line = |name: &str| {
        answer
            .body
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    (line("served-by:"), line("Remote-User:"))
}

/// Request lines and `Host` headers that disagree, with and without ports: the application
/// that answers is always the one the portal decided on.
fn the_host_routed_on_is_the_host_decided_on(site: &Site) {
    let port = site.port;
    let (dave, root) = (site.sign_in("dave"), site.sign_in("root"));
    let (app, admin) = (format!("app.portal.test:{port}"), format!("admin.portal.test:{port}"));

    // (request target, Host header, who, the application that may answer, or None: refused)
    let cases: [(String, &str, &str, &str, Option<&str>); 10] = [
        (format!("http://{admin}/secret"), &app, &dave, "dave", None),
        ("http://admin.portal.test/secret".into(), &app, &dave, "dave", None),
        (format!("http://{admin}/secret"), "app.portal.test", &dave, "dave", None),
        ("http://admin.portal.test/secret".into(), "", &dave, "dave", None),
        ("/secret".into(), "admin.portal.test", &dave, "dave", None),
        ("/secret".into(), &admin, &dave, "dave", None),
        (format!("http://{app}/docs"), &admin, &dave, "dave", Some("app")),
        ("/docs".into(), "app.portal.test", &dave, "dave", Some("app")),
        (format!("http://{admin}/docs"), &app, &root, "root", Some("admin")),
        ("http://admin.portal.test/docs".into(), "app.portal.test", &root, "root", Some("admin")),
    ];
    for (target, host, cookies, who, expected) in cases {
        let answer = site.raw_get(&target, host, cookies, "");
        println!("{who}: GET {target} with Host {host:?} -> {} {:?}", answer.status, served(&answer).0);

        match expected {
            None => {
                // 403 from the portal; a 400 from a proxy that wants a Host header (Caddy).
                let refused = matches!(answer.status, 400 | 403);
                assert!(refused, "{who}, {target}, Host {host:?}: {answer:#?}\n{}", site.logs());
                assert!(!answer.body.contains("served-by"), "{who} reached an application: {}", answer.body);
            }
            Some(application) => {
                assert_eq!(
                    answer.status,
                    200,
                    "{who}, {target}, Host {host:?}: {answer:#?}\n{}",
                    site.logs()
                );
                assert_eq!(
                    served(&answer),
                    (application.to_owned(), who.to_owned()),
                    "{target}, Host {host:?}"
                );
            }
        }
    }

    // Signed out, the way back (`rd`) is to the host that was routed to, with its port.
    let browser = "Accept: text/html\r\n";
    let anonymous = site.raw_get(&format!("http://{app}/docs?x=1"), &admin, "", browser);
    assert_eq!(anonymous.status, 302, "{anonymous:#?}\n{}", site.logs());
    let location = anonymous.headers("Location")[0];
    let rd = location.split_once("?rd=").map(|(_, rd)| rocket::http::RawStr::new(rd).percent_decode_lossy());
    assert_eq!(rd.as_deref(), Some(format!("http://{app}/docs?x=1").as_str()), "{location}");
}

#[test]
fn nginx_decides_on_the_host_it_routes_on_whatever_the_host_header_says() {
    the_host_routed_on_is_the_host_decided_on(&Site::nginx());
}

#[test]
fn caddy_decides_on_the_host_it_routes_on_whatever_the_host_header_says() {
    the_host_routed_on_is_the_host_decided_on(&Site::caddy());
}

/// Spellings of `/finance` that lenient backends read as `/finance`: dave is refused, alice
/// gets what the file server makes of them.
const READ_AS_FINANCE: [&str; 12] = [
    "/finance",
    "//finance",
    "/./finance",
    "/%66inance",
    "/%2e/finance",
    "/x/../finance",
    "/finance;x",
    "/;x/finance",
    "/Finance",
    "/FINANCE",
    "/finance?x",
    "/finance/?x=/../public.css",
];

/// Spellings backends read differently: refused whoever asks (or refused by the proxy).
const AMBIGUOUS: [&str; 17] = [
    "/x/..%2ffinance",
    "/%2ffinance",
    "/%2Ffinance",
    "/finance.",
    "/finance%2e",
    "/finance%20",
    "/finance%00",
    "/finance%09",
    "/\\finance",
    "/%5cfinance",
    "/%2566inance",
    "/%u0066inance",
    "/finance%zz",
    "/finance%c0%af",
    "/finance.;x",
    "/finance::$DATA",
    "/FINANC~1",
];

/// A raw `#` in the request line, which no browser sends. nginx passes it on as it came
/// (the portal refuses it as ambiguous); Caddy's Go server keeps it in the path, escapes it
/// as `%23` for the portal, and its file server reads `/x#/../finance` as `/finance`, which
/// is also what the portal decides on: dave is refused either way, alice may read it.
const RAW_HASH: [&str; 2] = ["/x#/../finance", "/public.css#/../finance"];

/// Every spelling of `/finance` through the proxy to the static file server: dave never
/// reads the file, alice reads it by its plain name and by lenient spellings, and an
/// ambiguous spelling is refused (403 from the portal, or the proxy's own 400) for both.
fn no_spelling_of_finance_reads_the_file_for_dave(site: &Site) {
    let files = format!("files.portal.test:{}", site.port);
    let (dave, alice) = (site.sign_in("dave"), site.sign_in("alice"));
    let mut table = Vec::new();

    for path in READ_AS_FINANCE.iter().chain(&AMBIGUOUS).chain(&RAW_HASH) {
        let as_dave = site.raw_get(path, &files, &dave, "");
        let as_alice = site.raw_get(path, &files, &alice, "");
        let as_nobody = site.raw_get(path, &files, "", "");
        table.push(format!(
            "{path:28} dave {} alice {}{} signed out {}",
            as_dave.status,
            as_alice.status,
            if as_alice.body.contains(FINANCE_SECRET) { " (read the file)" } else { "" },
            as_nobody.status
        ));

        assert!(!as_dave.body.contains(FINANCE_SECRET), "dave read the file as {path}\n{}", site.logs());
        assert!(matches!(as_dave.status, 400 | 403), "dave, {path}: {as_dave:#?}\n{}", site.logs());
        if AMBIGUOUS.contains(path) {
            assert!(matches!(as_alice.status, 400 | 403), "alice, {path}: {as_alice:#?}\n{}", site.logs());
            assert!(
                matches!(as_nobody.status, 400 | 403),
                "signed out, {path}: {as_nobody:#?}\n{}",
                site.logs()
            );
        } else if READ_AS_FINANCE.contains(path) {
            assert_ne!(as_alice.status, 403, "alice, {path}: {as_alice:#?}\n{}", site.logs());
            // Sent to sign in: nginx turns the portal's 401 into a redirect; Caddy passes it on.
            assert!(
                matches!(as_nobody.status, 302 | 401),
                "signed out, {path}: {as_nobody:#?}\n{}",
                site.logs()
            );
        }
    }
    println!("{}", table.join("\n"));

    for path in ["/finance", "//finance", "/%66inance", "/x/../finance"] {
        let answer = site.raw_get(path, &files, &alice, "");
        assert_eq!(answer.status, 200, "alice, {path}: {answer:#?}\n{}", site.logs());
        assert!(answer.body.contains(FINANCE_SECRET), "alice, {path}: {}", answer.body);
    }
    let css = site.raw_get("/public.css", &files, &dave, "");
    assert_eq!((css.status, css.body.as_str()), (200, "body {}"), "dave, /public.css\n{}", site.logs());
}

#[test]
fn through_nginx_no_spelling_of_a_protected_path_reads_the_file_for_dave() {
    no_spelling_of_finance_reads_the_file_for_dave(&Site::nginx());
}

#[test]
fn through_caddy_no_spelling_of_a_protected_path_reads_the_file_for_dave() {
    no_spelling_of_finance_reads_the_file_for_dave(&Site::caddy());
}
