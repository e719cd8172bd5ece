//! Several stateless portals on one PostgreSQL, behind nginx as a round-robin balancer with
//! no stickiness (the shipped `deploy/nginx/portal-balancer.conf`), behave as one portal:
//! a session made on one instance is honoured by all, a sign-out or a disabled user on one
//! is honoured by every other on its very next request (their session caches are told, not
//! left to expire), failed sign-ins count against one budget wherever they land, and a
//! killed instance costs a signed-in person nothing.
//!
//! Real processes throughout: three `portal` binaries (the release build `PORTAL_RELEASE_BIN`
//! names, or this build's) with one secret key on a fresh database, Debian's nginx in front
//! (each answer names the instance that served it in `X-Upstream`), and a raw HTTP/1.1
//! client. Requests "straight to an instance" bypass nginx with the headers nginx would add.
//!
//! Run with
//!     export PORTAL_TEST_POSTGRES=$(bash .ci/postgres.sh)
//!     cargo test --features cluster --test cluster
//! (needs nginx: `bash .ci/proxy-deps.sh`). Each test has its own database, ports and
//! temporary directories, so they run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod balancer;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::balancer::{
    balancer_http_body, directives, hidden, is_sent_to_login, upstream, upstream_ports, Browser, Cluster,
    Revocations, Via, BALANCER_CONF, INSTANCES, SNIPPETS,
};
use portal_testkit::process::free_port;
use portal_testkit::proxy::{deploy_dir, nginx_test, shipped, Answer};
use portal_testkit::{PASSWORD, PATIENCE};

/// What `/welcome` says to a signed-in `user`.
fn welcomes(answer: &Answer, user: &str) -> bool {
    answer.status == 200 && answer.body.contains(&format!("Welcome, {user}!"))
}

/// Every instance, straight: `user`'s `/welcome` answers 200 (and the instance now has the
/// session in its cache).
fn fill_caches(cluster: &Cluster, browser: &mut Browser, user: &str) {
    for i in 0..INSTANCES {
        let answer = browser.get(Via::Instance(i), "/welcome");
        assert!(
            welcomes(&answer, user),
            "instance {i} does not serve {user}: {answer:#?}\n{}",
            cluster.logs()
        );
    }
}

/// The very next request of `browser` on each of `instances`, straight: the login page.
fn sent_to_login_by(cluster: &Cluster, browser: &Browser, who: &str, instances: &[usize]) {
    for &i in instances {
        let answer = browser.clone().get(Via::Instance(i), "/welcome");
        assert!(
            is_sent_to_login(&answer),
            "{who}'s next request on instance {i} (port {}) was not sent to /login: {answer:#?}\n{}",
            cluster.ports[i],
            cluster.logs()
        );
    }
}

/// Signed in through the balancer, nine GETs of `/welcome` with that one cookie are all
/// served, by every instance in turn.
#[test]
fn sign_in_and_browse_alternates_instances() {
    let cluster = Cluster::start(&["alice"], &[]);
    let mut alice = cluster.browser();
    alice.sign_in(Via::Balancer, "alice");

    let mut served_by = Vec::new();
    for n in 1..=9 {
        let answer = alice.get(Via::Balancer, "/welcome");
        assert!(welcomes(&answer, "alice"), "GET /welcome #{n}: {answer:#?}\n{}", cluster.logs());
        let ports = upstream_ports(&answer);
        assert_eq!(ports.len(), 1, "one instance answers, none fails: {:?}", upstream(&answer));
        served_by.push(ports[0]);
    }
    println!("/welcome was served by {served_by:?}");
    let distinct: BTreeSet<u16> = served_by.iter().copied().collect();
    let all: BTreeSet<u16> = cluster.ports.iter().copied().collect();
    assert_eq!(distinct, all, "round robin should reach every instance in nine requests: {served_by:?}");
}

/// Every instance has the session in its cache (for 60 s); a sign-out through the balancer
/// (served by whichever instance) is announced, and once every instance has heard it, the old
/// cookie sent straight to each instance is sent to log in on that instance's very next
/// request.
#[test]
fn sign_out_is_honoured_by_every_instance_on_its_next_request() {
    let cluster = Cluster::start(&["alice", "canary"], &[]);
    let mut alice = cluster.browser();
    alice.sign_in(Via::Balancer, "alice");
    fill_caches(&cluster, &mut alice, "alice");
    let canary = cluster.canary("canary");
    let kept = alice.session().expect("a session cookie");
    let revocations = Revocations::listen(&cluster);

    let page = alice.get(Via::Balancer, "/logout");
    assert_eq!(page.status, 200, "GET /logout: {page:#?}");
    let token = hidden(&page.body, "csrf_token");
    let out = alice.post_form(Via::Balancer, "/logout", &format!("csrf_token={}", balancer::encode(&token)));
    assert_eq!(out.status, 303, "POST /logout: {out:#?}\n{}", cluster.logs());
    assert!(alice.session().is_none(), "the browser was told to forget its session: {out:#?}");
    println!("signed out by instance {:?}", upstream(&out));
    // No waiting: the instance that signed alice out answered only once its own listener
    // had heard the announcement, which PostgreSQL hands to every listener at once. The very
    // next request, on any instance, finds the session gone.
    sent_to_login_by(&cluster, &alice.with_only_cookie(&kept), "the signed-out cookie", &[0, 1, 2]);
    // And it was announced, and every instance's cache is on (the canary, disabled behind
    // their backs, is still served until announced): the refusals above were the
    // announcement at work, not cache misses.
    revocations.wait_for("the ended session", |p| p.starts_with("s:"));
    cluster.all_heard(canary);
}

/// Five wrong passwords for one account from one address, landing on different instances,
/// use up the one budget they share: the sixth attempt, with the right password, is refused
/// with 429 wherever it lands. The budget is the account's from that address, the address
/// nginx passes on: the same account from another address still signs in.
#[test]
fn five_wrong_passwords_spread_over_instances_trip_the_throttle() {
    let cluster = Cluster::start(&["alice"], &[]);
    let mut attacker = cluster.browser().connecting_from(Ipv4Addr::new(127, 0, 0, 2));
    let token = attacker.login_token(Via::Balancer);

    let mut landed = Vec::new();
    for n in 1..=5 {
        let answer = attacker.attempt(Via::Balancer, &token, "alice", "not the password at all");
        assert_eq!(answer.status, 200, "wrong password #{n}: {answer:#?}\n{}", cluster.logs());
        assert!(
            answer.body.contains("Invalid username or password."),
            "wrong password #{n}: {}",
            answer.body
        );
        landed.push(upstream(&answer));
    }
    println!("the wrong passwords landed on {landed:?}");
    let distinct: BTreeSet<&String> = landed.iter().collect();
    assert!(distinct.len() >= 2, "the attempts should be spread over instances: {landed:?}");

    let sixth = attacker.attempt(Via::Balancer, &token, "alice", PASSWORD);
    println!("the sixth attempt, on {}: {}", upstream(&sixth), sixth.head.lines().next().unwrap_or(""));
    assert_eq!(sixth.status, 429, "the right password after five wrong ones: {sixth:#?}\n{}", cluster.logs());
    assert!(attacker.session().is_none(), "a throttled attempt must not sign in: {sixth:#?}");
    // On every instance, not just the one that counted last.
    for i in 0..INSTANCES {
        let again = attacker.attempt(Via::Instance(i), &token, "alice", PASSWORD);
        assert_eq!(again.status, 429, "the right password on instance {i}: {again:#?}");
    }

    let mut alice = cluster.browser().connecting_from(Ipv4Addr::new(127, 0, 0, 3));
    alice.sign_in(Via::Balancer, "alice");
}

/// Users signed in and cached on every instance (for 60 s); an administrator on instance 0
/// disables bob through the JSON API and carol through the console, and dave is disabled with
/// the CLI (a process of its own): once each change is announced and every instance has heard
/// it, the next request of each of them, on every instance, is sent to log in.
#[test]
fn a_user_disabled_on_one_instance_is_signed_out_on_another() {
    let cluster = Cluster::start(&["chief", "bob", "carol", "dave", "canary1"], &["chief"]);
    let revocations = Revocations::listen(&cluster);
    let mut people: Vec<(&str, Browser)> =
        ["bob", "carol", "dave"].into_iter().map(|u| (u, cluster.browser())).collect();
    for (user, browser) in &mut people {
        browser.sign_in(Via::Balancer, user);
        fill_caches(&cluster, browser, user);
    }
    let mut canaries = ["canary1"].map(|name| cluster.canary(name)).into_iter();
    let one = Via::Instance(0);
    let mut chief = cluster.browser();
    chief.sign_in(one, "chief");
    let id_of = |chief: &mut Browser, user: &str| -> i64 {
        let answer = chief.send(
            one,
            "GET",
            &format!("/api/admin/users?q={user}"),
            "Accept: application/json\r\n",
            None,
        );
        assert_eq!(answer.status, 200, "GET /api/admin/users: {answer:#?}");
        let list: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON");
        let users = list["users"].as_array().expect("a users array");
        let found = users.iter().find(|u| u["username"] == user);
        found.and_then(|u| u["id"].as_i64()).unwrap_or_else(|| panic!("no {user} in {}", answer.body))
    };

    // bob: PATCH /api/admin/users/<id> on instance 0.
    let bob = id_of(&mut chief, "bob");
    let changed = chief.send_json(one, "PATCH", &format!("/api/admin/users/{bob}"), r#"{"disabled":true}"#);
    assert_eq!(changed.status, 200, "PATCH bob: {changed:#?}\n{}", cluster.logs());
    assert!(changed.body.contains(r#""disabled":true"#), "{}", changed.body);
    // No waiting: instance 0 answered once its own listener had heard the announcement.
    sent_to_login_by(&cluster, &people[0].1, "bob", &[1, 2, 0]);
    revocations.wait_for("bob disabled", |p| p.starts_with(&format!("u:{bob}:")));

    // carol: the console's form on instance 0.
    let carol = id_of(&mut chief, "carol");
    let page = chief.get(one, &format!("/admin/users/{carol}"));
    assert_eq!(page.status, 200, "carol's console page: {page:#?}");
    assert!(page.body.contains(&format!("action=\"/admin/users/{carol}/disable\"")), "{}", page.body);
    let token = hidden(&page.body, "csrf_token");
    let form = format!("csrf_token={}", balancer::encode(&token));
    let done = chief.post_form(one, &format!("/admin/users/{carol}/disable"), &form);
    assert_eq!(done.status, 303, "disable carol: {done:#?}\n{}", cluster.logs());
    sent_to_login_by(&cluster, &people[1].1, "carol", &[1, 2, 0]);
    revocations.wait_for("carol disabled", |p| p.starts_with(&format!("u:{carol}:")));
    let page = chief.get(one, &format!("/admin/users/{carol}"));
    assert!(page.body.contains("carol is disabled and signed out everywhere."), "{}", page.body);

    // dave: `portal users disable dave`, neither instance's doing.
    let dave = id_of(&mut chief, "dave");
    cluster.cli(&["users", "disable", "dave"]);
    // Another process, not a request: its announcement reaches the instances a few
    // milliseconds later, so wait until every instance has heard it (the canary).
    revocations.wait_for("dave disabled", |p| p.starts_with(&format!("u:{dave}:")));
    cluster.all_heard(canaries.next().unwrap());
    sent_to_login_by(&cluster, &people[2].1, "dave", &[1, 2, 0]);

    // And nobody else was signed out: chief is still served everywhere.
    fill_caches(&cluster, &mut chief, "chief");
}

/// Two clients request `/welcome` with one cookie through the balancer, 200 times between
/// them; after the first 50 answers one instance is SIGKILLed while requests are in flight
/// (the requests from number 60 on wait for the kill, so at least 140 come after it however
/// the threads are scheduled). Every answer is the page: a
/// request nginx sends to the dead instance goes on to another one (and `X-Upstream` shows
/// that this happened), and nobody signs in again.
#[test]
fn killing_an_instance_mid_traffic_keeps_signed_in_users_served() {
    const REQUESTS: usize = 200;
    const KILL_AFTER: usize = 50;
    /// Requests from this number on start only once the instance is dead.
    const HOLD_FROM: usize = KILL_AFTER + 10;
    const VICTIM: usize = 1;
    let mut cluster = Cluster::start(&["alice"], &[]);
    let mut alice = cluster.browser();
    alice.sign_in(Via::Balancer, "alice");
    let dead = cluster.ports[VICTIM];

    let next = AtomicUsize::new(0);
    let answered = AtomicUsize::new(0);
    let killed = AtomicBool::new(false);
    // (request number, started, status, X-Upstream, welcomed)
    let results = Mutex::new(Vec::new());
    let killed_at = std::thread::scope(|scope| {
        for _ in 0..2 {
            let mut browser = alice.clone();
            let (next, answered, killed, results) = (&next, &answered, &killed, &results);
            scope.spawn(move || loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= REQUESTS {
                    return;
                }
                let held = Instant::now(); // bounded, should the main thread have failed
                while n >= HOLD_FROM && !killed.load(Ordering::SeqCst) && held.elapsed() < PATIENCE {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let started = Instant::now();
                let answer = browser.get(Via::Balancer, "/welcome");
                let welcomed = welcomes(&answer, "alice");
                results.lock().unwrap().push((n, started, answer.status, upstream(&answer), welcomed));
                answered.fetch_add(1, Ordering::SeqCst);
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while answered.load(Ordering::SeqCst) < KILL_AFTER {
            assert!(Instant::now() < deadline, "no {KILL_AFTER} answers in 30 s");
            std::thread::sleep(Duration::from_millis(2));
        }
        cluster.kill(VICTIM);
        let at = Instant::now();
        killed.store(true, Ordering::SeqCst);
        at
    });

    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);
    let failed: Vec<_> = results.iter().filter(|r| r.2 != 200 || !r.4).collect();
    let retried: Vec<_> = results.iter().filter(|r| r.3.contains(&format!("127.0.0.1:{dead},"))).collect();
    let after: Vec<_> = results.iter().filter(|r| r.1 > killed_at).collect();
    let served_after: BTreeSet<&str> = after.iter().map(|r| r.3.rsplit(", ").next().unwrap_or("")).collect();
    println!(
        "{} requests, instance {VICTIM} (port {dead}) killed after {KILL_AFTER} answers; {} started after; \
         retried past the dead instance: {:?}; served after by {served_after:?}",
        results.len(),
        after.len(),
        retried.iter().map(|r| (r.0, &r.3)).collect::<Vec<_>>()
    );
    assert_eq!(results.len(), REQUESTS);
    assert!(failed.is_empty(), "answers that were not alice's page: {failed:?}\n{}", cluster.logs());
    assert!(after.len() >= REQUESTS - HOLD_FROM, "only {} requests after the kill", after.len());
    // The failover path was taken: nginx tried the dead instance and went on.
    assert!(!retried.is_empty(), "nginx never tried the dead instance after the kill\n{}", cluster.logs());
    assert!(!served_after.contains(format!("127.0.0.1:{dead}").as_str()), "the dead instance answered");
    assert_eq!(served_after.len(), INSTANCES - 1, "both survivors serve: {served_after:?}");
    let before: BTreeSet<&str> = results.iter().filter(|r| r.1 < killed_at).map(|r| r.3.as_str()).collect();
    assert!(before.len() >= INSTANCES, "before the kill every instance served: {before:?}");
}

/// The shipped file as an operator installs it (instances, certificates and `listen`s
/// swapped for test ones, nothing else) passes `nginx -t`, and it balances without
/// stickiness and never re-sends a POST. No PostgreSQL needed.
#[test]
fn the_shipped_balancer_config_passes_nginx_t_and_is_not_sticky() {
    let text = shipped(BALANCER_CONF);
    let lines = directives(&text);
    for sticky in ["ip_hash", "hash ", "sticky", "least_conn", "random"] {
        assert!(
            !lines.iter().any(|l| l.starts_with(sticky)),
            "{BALANCER_CONF} uses {sticky}: it should be round robin"
        );
    }
    let next_upstream: Vec<&String> =
        lines.iter().filter(|l| l.starts_with("proxy_next_upstream ")).collect();
    assert_eq!(
        next_upstream.len(),
        1,
        "{BALANCER_CONF} should set proxy_next_upstream once: {next_upstream:?}"
    );
    assert!(next_upstream[0].contains("error"), "{}", next_upstream[0]);
    assert!(!next_upstream[0].contains("non_idempotent"), "POSTs must not be retried: {}", next_upstream[0]);
    assert!(
        lines.iter().any(|l| l == "proxy_pass http://portal;"),
        "{BALANCER_CONF} should proxy_pass to the upstream"
    );

    // As the test runs it.
    let out = nginx_test(&balancer_http_body(free_port(), &[free_port(), free_port(), free_port()]));
    assert!(out.status.success(), "nginx -t (as run):\n{}", String::from_utf8_lossy(&out.stderr));

    // As shipped, TLS included: only machine-specific parts swapped.
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("proxy");
    let mut swapped: Vec<String> = Vec::new();
    for line in text.lines() {
        let code = line.split('#').next().unwrap_or("").trim();
        swapped.push(match code.strip_prefix("listen ") {
            // `listen [::]:443 ssl http2;` -> `listen 127.0.0.1:PORT ssl http2;`
            Some(rest) => match rest.trim().split_once(char::is_whitespace) {
                Some((_, options)) => format!("listen 127.0.0.1:{} {options}", free_port()),
                None => format!("listen 127.0.0.1:{};", free_port()),
            },
            None => line.to_owned(),
        });
    }
    let mut swapped = swapped.join("\n");
    for (placeholder, test) in [
        (SNIPPETS.to_owned(), format!("{}/", deploy_dir().display())),
        ("/etc/ssl/portal/fullchain.pem".to_owned(), tests.join("localhost-cert.pem").display().to_string()),
        ("/etc/ssl/portal/privkey.pem".to_owned(), tests.join("localhost-key.pem").display().to_string()),
    ] {
        assert!(
            swapped.contains(&placeholder),
            "{BALANCER_CONF} no longer uses {placeholder}: update this test"
        );
        swapped = swapped.replace(&placeholder, &test);
    }
    let out = nginx_test(&swapped);
    let said = String::from_utf8_lossy(&out.stderr);
    println!("nginx -t, {BALANCER_CONF}:\n{said}");
    assert!(
        out.status.success(),
        "nginx -t failed for {BALANCER_CONF}:\n{said}\n--- the http block:\n{swapped}"
    );
}
