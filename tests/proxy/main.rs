//! The nginx configuration we ship (`deploy/nginx/`): a real nginx in front of the real `portal` binary.
//!
//! Rocket 0.5 switches hyper's header read timeout off, so a client that sends its headers
//! or its body slowly holds a connection to the portal for 300 s and more; production puts
//! nginx in front, with client timeouts. These tests use the shipped snippets as they are
//! (included by absolute path from a minimal wrapper `nginx.conf` in a temporary directory)
//! and check that nginx cuts slow clients off while the portal keeps serving, refuses a
//! broken chunked body, and passes the Host and the client address the portal relies on.
//!
//! Run with `cargo test --features proxy --test proxy`; needs Debian's `nginx`
//! (`bash .ci/proxy-deps.sh`), or `NGINX=/path/to/nginx`. Each test has its own ports and
//! temporary directories, so they run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod forward;
mod oidc;

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use portal_testkit::process::{free_port, Portal};
use portal_testkit::proxy::{
    connect, connect_from, deploy_dir, exchange, get, is_timeout, nginx_test, parse_answer, proxy_http_body,
    read_to_close, shipped, shipped_seconds, shipped_value, start_portal, until, Answer, Nginx,
};

/// How much later than its timeout nginx may close a connection (two busy cores).
const MARGIN: Duration = Duration::from_secs(5);
/// How much earlier: nginx's timers are not that precise, but a close well before the
/// timeout would be something else (a 400 for a malformed request, say).
const EARLY: Duration = Duration::from_secs(1);

/// The portal with nginx in front, both stopped on drop (nginx first).
struct World {
    nginx: Nginx,
    portal: Portal,
}

impl World {
    fn start() -> World {
        portal_testkit::proxy::nginx_binary(); // no nginx: say so before starting anything
        let portal = start_portal();
        let nginx = Nginx::start(&portal);
        World { nginx, portal }
    }

    /// Both answer `GET /health` with 200: through nginx, and the portal directly.
    fn assert_serving(&self) {
        let through = get(self.nginx.port, &self.nginx.host(), "/health");
        assert_eq!(through.status, 200, "GET /health through nginx: {through:#?}\n{}", self.nginx.log());
        let direct = get(self.portal.port, "127.0.0.1", "/health");
        assert_eq!(direct.status, 200, "GET /health from the portal: {direct:#?}\n{}", self.portal.log());
    }

    /// Waits until nginx's logs mention `text`; fails with both logs if it never does.
    fn wait_for_nginx_log(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.nginx.log().contains(text) {
            assert!(Instant::now() < deadline, "nginx never logged {text:?}\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the portal logged a request for `METHOD /path` (Rocket's line is
    /// `POST /login application/x-www-form-urlencoded:`).
    fn portal_saw(&self, request: &str) -> bool {
        self.portal.log().lines().any(|line| line.starts_with(request))
    }

    /// What both wrote, for a failure message.
    fn logs(&self) -> String {
        format!("--- nginx:\n{}\n--- portal:\n{}", self.nginx.log(), self.portal.log())
    }
}

/// A client that sends `GET /login`, the Host, then one byte of a header field a second and
/// never the blank line that ends the headers. nginx closes it at `client_header_timeout`
/// (the timer is not restarted by each byte), and all the while answers everyone else.
#[test]
fn a_slow_header_client_is_cut_off_by_nginx_while_the_portal_keeps_serving() {
    let timeout = shipped_seconds("portal-http.conf", "client_header_timeout");
    assert!(timeout <= Duration::from_secs(30), "client_header_timeout {timeout:?} is no defence");
    let world = World::start();

    let mut slow = connect(world.nginx.port);
    slow.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /login HTTP/1.1\r\nHost: localhost\r\nX-a: ").unwrap();
    let (mut answered, mut buf, mut trickled) = (Vec::new(), [0u8; 1024], 0);
    loop {
        assert!(
            started.elapsed() < timeout + MARGIN,
            "the slow client was still connected after {:?} ({trickled} bytes trickled)\n{}",
            started.elapsed(),
            world.logs()
        );
        // One more byte of a header that never ends (a failed write: nginx has closed).
        if slow.write_all(b"b").is_err() {
            break;
        }
        trickled += 1;
        // Meanwhile other clients get their pages through the same nginx, at once.
        let asked = Instant::now();
        for path in ["/health", "/login"] {
            let answer = get(world.nginx.port, &world.nginx.host(), path);
            assert_eq!(answer.status, 200, "GET {path} while a slow client is connected: {answer:#?}");
        }
        assert!(asked.elapsed() < Duration::from_secs(5), "two GETs took {:?}", asked.elapsed());
        // A second's wait for nginx to answer (408) or close the slow connection.
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answered.extend_from_slice(&buf[..n]);
                answered.extend(read_to_close(&mut slow, MARGIN).0);
                break;
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => break, // reset: reset_timedout_connection
        }
    }
    let closed_after = started.elapsed();
    println!(
        "nginx closed the slow-header connection after {closed_after:?} ({trickled} bytes trickled, \
         {} bytes of answer)",
        answered.len()
    );

    assert!(closed_after >= timeout - EARLY, "closed after {closed_after:?}, before the timeout {timeout:?}");
    if !answered.is_empty() {
        let answer = parse_answer(&answered);
        assert_eq!(answer.as_ref().map(|a| a.status), Some(408), "what nginx said: {answer:#?}");
    }
    world.wait_for_nginx_log("while reading client request headers");
    world.assert_serving();
}

/// A `POST /login` announcing 1000 bytes of body that sends a few and stops: nginx closes it
/// at `client_body_timeout`, and the portal never hears of the request.
#[test]
fn a_slow_body_client_is_cut_off_by_nginx() {
    let timeout = shipped_seconds("portal-http.conf", "client_body_timeout");
    assert!(timeout <= Duration::from_secs(30), "client_body_timeout {timeout:?} is no defence");
    let world = World::start();

    let mut slow = connect(world.nginx.port);
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 1000\r\n\r\nusername=alice&pass",
        world.nginx.host()
    );
    slow.write_all(head.as_bytes()).unwrap();
    let stalled = Instant::now();
    let (raw, closed) = read_to_close(&mut slow, timeout + MARGIN);
    let closed_after = stalled.elapsed();
    println!(
        "nginx closed the stalled-body connection after {closed_after:?} ({} bytes of answer)",
        raw.len()
    );

    assert!(closed, "the stalled body was still connected after {closed_after:?}\n{}", world.logs());
    assert!(closed_after >= timeout - EARLY, "closed after {closed_after:?}, before the timeout {timeout:?}");
    if !raw.is_empty() {
        let answer = parse_answer(&raw);
        assert_eq!(answer.as_ref().map(|a| a.status), Some(408), "what nginx said: {answer:#?}");
    }
    // nginx logs no error for it, only the 408 in the access log.
    world.wait_for_nginx_log("\"POST /login HTTP/1.1\" 408 ");
    assert!(!world.portal_saw("POST /login"), "the portal saw the request:\n{}", world.logs());
    world.assert_serving();
}

/// A chunked `POST /login` whose chunk size does not fit in 64 bits: nginx answers 400 at
/// once, the portal never hears of it, and both keep serving.
#[test]
fn an_overflowing_chunk_size_is_refused_by_nginx() {
    let world = World::start();

    let mut client = connect(world.nginx.port);
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\nusername=alice&password=x",
        world.nginx.host()
    );
    let sent = Instant::now();
    client.write_all(request.as_bytes()).unwrap();
    let (raw, closed) = read_to_close(&mut client, MARGIN);
    let took = sent.elapsed();
    println!(
        "nginx answered the overflowing chunk size after {took:?}: {:?}",
        parse_answer(&raw).map(|a| a.status)
    );

    assert!(closed, "the connection was still open after {took:?}\n{}", world.logs());
    let answer = parse_answer(&raw);
    assert!(
        raw.is_empty() || answer.as_ref().is_some_and(|a| a.status == 400),
        "nginx should refuse it with 400 (or just close): {answer:#?}"
    );
    world.wait_for_nginx_log("client sent invalid chunked body");
    assert!(!world.portal_saw("POST /login"), "the portal saw the request:\n{}", world.logs());
    world.assert_serving();
}

/// As many stalled `POST /login`s from one address as `limit_conn` allows: the next request
/// from that address gets 429 at once, and once they are gone it is served again.
#[test]
fn one_address_gets_429_beyond_limit_conn_requests_at_once() {
    let limit = shipped_value("portal-proxy.conf", "limit_conn");
    let limit: usize = limit
        .strip_prefix("portal_per_ip ")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("limit_conn should be `portal_per_ip N`, is {limit:?}"));
    assert_eq!(shipped_value("portal-proxy.conf", "limit_conn_status"), "429");
    let world = World::start();

    let head = format!(
        "POST /login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 1000\r\n\r\nusername=alice&pass",
        world.nginx.host()
    );
    let stalled: Vec<_> = (0..limit)
        .map(|_| {
            let mut stream = connect(world.nginx.port);
            stream.write_all(head.as_bytes()).unwrap();
            stream
        })
        .collect();
    // nginx counts a request once it has read its headers: wait for all of them to count.
    let refused = until("the next request to be refused", || {
        let answer = get(world.nginx.port, &world.nginx.host(), "/health");
        (answer.status == 429).then_some(answer)
    });
    println!("request {} from one address: {}", limit + 1, refused.head.lines().next().unwrap_or(""));
    world.wait_for_nginx_log("limiting connections by zone \"portal_per_ip\"");

    drop(stalled);
    until("the address to be served again", || {
        (get(world.nginx.port, &world.nginx.host(), "/health").status == 200).then_some(())
    });
    assert!(!world.portal_saw("POST /login"), "the portal saw a stalled request:\n{}", world.logs());
}

/// Through nginx, from `127.0.0.2`, claiming to be someone else in `X-Real-IP` and
/// `X-Forwarded-For`: a wrong password gets the form again (200, not the 403 the portal gives
/// when Origin and Host disagree, so the Host arrives with its port), and the portal logs the
/// attempt under the real client address that nginx set, not the claimed one.
#[test]
fn the_portal_sees_the_client_address_and_host_nginx_sets() {
    const CLIENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
    const CLAIMED: &str = "203.0.113.7";
    let world = World::start();
    let host = world.nginx.host();
    let spoof = format!("X-Real-IP: {CLAIMED}\r\nX-Forwarded-For: {CLAIMED}\r\n");

    let page = exchange(
        connect_from(CLIENT, world.nginx.port),
        &format!("GET /login HTTP/1.1\r\nHost: {host}\r\n{spoof}Connection: close\r\n\r\n"),
    );
    assert_eq!(page.status, 200, "{page:#?}");
    let (cookie, token) = csrf_of(&page);

    // The token is URL-safe base64: nothing to escape.
    let form = format!("username=nobody&password=wrong-password-123&csrf_token={token}");
    let answer = exchange(
        connect_from(CLIENT, world.nginx.port),
        &format!(
            "POST /login HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nCookie: {cookie}\r\n{spoof}\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!(answer.status, 200, "{answer:#?}\n{}", world.logs());
    assert!(answer.body.contains("Invalid username or password"), "{}", answer.body);
    // What the other tests look for to show a request never reached the portal.
    assert!(world.portal_saw("POST /login"), "Rocket's request line is not as expected:\n{}", world.logs());

    let line = until("the portal to log the attempt", || {
        world.portal.log().lines().find(|l| l.contains("username=\"nobody\"")).map(str::to_owned)
    });
    assert!(line.contains("ip=127.0.0.2 "), "the portal logged another address: {line}");
    assert!(
        !world.portal.log().contains(CLAIMED),
        "a client-supplied address got through:\n{}",
        world.logs()
    );
}

/// Every shipped file passes `nginx -t`: the two snippets as the tests use them, and the
/// production example with only its machine-specific parts swapped for test ones (its
/// `listen`s for free loopback ports, the certificate for a test one, `/etc/nginx/portal/`
/// for this checkout's `deploy/nginx/`).
#[test]
fn the_shipped_nginx_files_pass_nginx_t() {
    let directives = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    };
    assert!(
        !directives(&shipped("portal-proxy.conf")).iter().any(|l| l.starts_with("proxy_pass")),
        "portal-proxy.conf must leave proxy_pass to the including location"
    );

    let check = |what: &str, http_body: &str| {
        let out = nginx_test(http_body);
        let said = String::from_utf8_lossy(&out.stderr);
        println!("nginx -t, {what}:\n{said}");
        assert!(
            out.status.success(),
            "nginx -t failed for {what}:\n{said}\n--- the http block:\n{http_body}"
        );
    };
    check("the snippets", &proxy_http_body(free_port(), free_port()));

    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("proxy");
    let example = shipped("portal.example.conf");
    let mut swapped = Vec::new();
    let mut listens = 0;
    for line in example.lines() {
        let code = line.split('#').next().unwrap_or("");
        let line = match code.trim().strip_prefix("listen ") {
            Some(rest) => {
                listens += 1;
                // `listen [::]:443 ssl http2;` -> `listen 127.0.0.1:PORT ssl http2;`
                let options = rest.trim().split_once(char::is_whitespace).map_or(";", |(_, options)| options);
                let options = if options == ";" { ";".to_owned() } else { format!(" {options}") };
                format!("listen 127.0.0.1:{}{options}", free_port())
            }
            None => line.to_owned(),
        };
        swapped.push(line);
    }
    let mut swapped = swapped.join("\n");
    for (placeholder, test) in [
        ("/etc/nginx/portal/", format!("{}/", deploy_dir().display())),
        ("/etc/ssl/portal/fullchain.pem", tests.join("localhost-cert.pem").display().to_string()),
        ("/etc/ssl/portal/privkey.pem", tests.join("localhost-key.pem").display().to_string()),
    ] {
        let in_use = directives(&swapped).iter().any(|l| l.contains(placeholder));
        assert!(in_use, "portal.example.conf no longer uses {placeholder}: update this test");
        swapped = swapped.replace(placeholder, &test);
    }
    assert!(listens >= 2, "portal.example.conf should listen on 80 and 443: {listens} listen lines");
    check("portal.example.conf", &swapped);
}

/// A login form as nginx serves it to `host`: the CSRF cookie (`name=value`) and token.
fn login_form(world: &World, host: &str) -> (String, String) {
    let page = get(world.nginx.port, host, "/login");
    assert_eq!(page.status, 200, "{page:#?}\n{}", world.logs());
    csrf_of(&page)
}

/// A login page's CSRF cookie (`name=value`) and token.
fn csrf_of(page: &Answer) -> (String, String) {
    let cookie = page
        .headers("Set-Cookie")
        .into_iter()
        .find(|c| c.starts_with("portal_csrf="))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no portal_csrf cookie: {page:#?}"))
        .to_owned();
    let token = page
        .body
        .split_once(r#"name="csrf_token" value=""#)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(token, _)| token.to_owned())
        .unwrap_or_else(|| panic!("no csrf_token field: {}", page.body));
    (cookie, token)
}

/// An absolute-form request line names the host nginx routes on; a `Host` header naming
/// another host does not reach the portal. A sign-in posted with `Host` and `Origin` both
/// claiming that other host is refused (the portal compares Origin with the Host it is
/// sent); with a `Host` that agrees with the request line, port included, it goes through.
#[test]
fn the_portal_sees_the_host_nginx_routes_on_not_a_disagreeing_host_header() {
    let world = World::start();
    let port = world.nginx.port;
    let routed = format!("127.0.0.1:{port}");
    let post = |host: &str, origin: &str| {
        let (cookie, token) = login_form(&world, &routed);
        let form = format!("username=nobody&password=wrong-password-123&csrf_token={token}");
        exchange(
            connect(port),
            &format!(
                "POST http://{routed}/login HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nCookie: {cookie}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{form}",
                form.len()
            ),
        )
    };

    let agreeing = post(&routed, &format!("http://{routed}"));
    let elsewhere = post(&format!("elsewhere.test:{port}"), &format!("http://elsewhere.test:{port}"));

    assert_eq!(agreeing.status, 200, "{agreeing:#?}\n{}", world.logs());
    assert!(agreeing.body.contains("Invalid username or password"), "{}", agreeing.body);
    assert_eq!(
        elsewhere.status,
        403,
        "the portal took the Host header's word: {elsewhere:#?}\n{}",
        world.logs()
    );
}
