//! The machinery: a fresh PostgreSQL database, three `portal` processes on it (one secret
//! key, one configuration, each on its own free loopback port), and a real nginx in front of
//! them running the shipped `deploy/nginx/portal-balancer.conf` with this test's addresses;
//! and a browser made of raw HTTP/1.1 requests that keeps its cookies. Every process is
//! stopped on drop, even when a test panics.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use portal_testkit::process::{free_port, Launch, Portal};
use portal_testkit::proxy::{
    connect, connect_from, deploy_dir, exchange, nginx_binary, shipped, Answer, Nginx,
};
use portal_testkit::{new_postgres_database, postgres_server, secret_key, PASSWORD, PATIENCE};

/// How many instances a cluster has.
pub const INSTANCES: usize = 3;

/// The shipped balancer configuration.
pub const BALANCER_CONF: &str = "portal-balancer.conf";

/// Where the shipped files expect the snippets (`include /etc/nginx/portal/…`).
pub const SNIPPETS: &str = "/etc/nginx/portal/";

/// `session.cache_ttl` in the cluster: far longer than any test, so an instance that still
/// served a session another instance ended could only be one that missed the announcement
/// (with the default 2 s, a slow run would pass by the entry simply expiring).
const CACHE_TTL: u32 = 60;

/// The header the test's nginx adds to every answer: the instance(s) that nginx tried, as
/// `$upstream_addr` (`127.0.0.1:P1, 127.0.0.1:P2` when the first failed).
pub const UPSTREAM_HEADER: &str = "X-Upstream";

/// The binary under test: the release build `PORTAL_RELEASE_BIN` names (CI), or this build's.
fn portal_binary() -> PathBuf {
    match portal_testkit::release_binary() {
        Some(bin) => {
            println!("cluster: the portal binary is {} (PORTAL_RELEASE_BIN)", bin.display());
            bin
        }
        None => {
            let bin = portal_testkit::this_builds_binary();
            println!(
                "cluster: the portal binary is this build's, {} (set PORTAL_RELEASE_BIN for another)",
                bin.display()
            );
            bin
        }
    }
}

/// The lines of `text` without their comments, trimmed, empty ones left out.
pub fn directives(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The shipped balancer configuration as this test runs it: `include`s from this checkout's
/// `deploy/nginx/`, the `upstream`'s servers swapped in order for `instances` (their options
/// kept), the first `listen` for plain HTTP on `127.0.0.1:listen_port` (the others, and the
/// `ssl_*` directives, left out: the test speaks plain HTTP on loopback), and after
/// `proxy_pass` the header that names the instance that answered. Everything else as shipped.
pub fn balancer_http_body(listen_port: u16, instances: &[u16]) -> String {
    let text = shipped(BALANCER_CONF);
    let snippets = format!("{}/", deploy_dir().display());
    let (mut out, mut in_upstream, mut servers, mut listens, mut passes) = (Vec::new(), false, 0, 0, 0);
    for line in text.lines() {
        let code = line.split('#').next().unwrap_or("").trim();
        if code.starts_with("upstream ") {
            in_upstream = true;
        } else if in_upstream && code == "}" {
            in_upstream = false;
        }
        let line = if in_upstream && code.starts_with("server ") {
            let port = instances.get(servers).unwrap_or_else(|| {
                panic!("{BALANCER_CONF} lists more servers than the test's {} instances", instances.len())
            });
            servers += 1;
            // `server ADDRESS OPTIONS;`: the address swapped, the options kept.
            let options: Vec<&str> = code.trim_end_matches(';').split_whitespace().skip(2).collect();
            format!("    server 127.0.0.1:{port} {};", options.join(" ")).replace(" ;", ";")
        } else if code.starts_with("listen ") {
            listens += 1;
            if listens > 1 {
                continue;
            }
            format!("    listen 127.0.0.1:{listen_port};")
        } else if code.starts_with("ssl_") {
            continue;
        } else if code.starts_with("proxy_pass ") {
            passes += 1;
            format!("{line}\n        add_header {UPSTREAM_HEADER} $upstream_addr always;")
        } else {
            line.replace(SNIPPETS, &snippets)
        };
        out.push(line);
    }
    assert_eq!(servers, instances.len(), "{BALANCER_CONF} should list one server per test instance");
    assert!(listens >= 1, "{BALANCER_CONF} has no listen");
    assert_eq!(passes, 1, "{BALANCER_CONF} should have one proxy_pass");
    out.join("\n")
}

/// A fresh database, [`INSTANCES`] portals on it, nginx in front. Dropped: nginx first.
pub struct Cluster {
    pub nginx: Nginx,
    instances: Vec<Option<Portal>>,
    /// Each instance's port, by index (kept after an instance is killed).
    pub ports: Vec<u16>,
    /// The database's URL.
    pub database: String,
    launch: Launch,
    _dir: TempDir,
}

impl Cluster {
    /// The cluster, with these users (password [`PASSWORD`]) made by the CLI before any
    /// instance starts, and `admins` among them made administrators.
    pub fn start(users: &[&str], admins: &[&str]) -> Cluster {
        let Some(server) = postgres_server() else {
            panic!(
                "the cluster suite needs PostgreSQL and PORTAL_TEST_POSTGRES is not set: run \
                 `export PORTAL_TEST_POSTGRES=$(bash .ci/postgres.sh)` (it starts a throwaway server \
                 on 127.0.0.1:25432 and prints its URL), then this suite again"
            )
        };
        nginx_binary(); // no nginx: say so before starting anything
        let database = new_postgres_database(&server);
        let dir = tempfile::tempdir().expect("a temporary directory");
        // An empty directory, so no Rocket.toml applies: exactly this configuration.
        let launch = Launch::in_dir(dir.path())
            .binary(portal_binary())
            .env("ROCKET_PROFILE", "release")
            .env("ROCKET_LOG_LEVEL", "normal")
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .env("ROCKET_SECRET_KEY", secret_key())
            .env("ROCKET_IP_HEADER", "X-Real-IP")
            .env("ROCKET_SESSION", format!("{{cache_ttl={CACHE_TTL}}}"))
            .database(&database);
        // The first command migrates the database: the instances then start on a ready store.
        for user in users {
            launch.add_user(user);
        }
        for admin in admins {
            let out = launch.run(&["users", "admin", admin, "--on"], "");
            assert!(
                out.status.success(),
                "users admin {admin} --on: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // All at once, as a deployment would start them.
        let instances: Vec<Portal> = std::thread::scope(|scope| {
            let starting: Vec<_> = (0..INSTANCES)
                .map(|_| {
                    scope.spawn(|| {
                        let home = tempfile::tempdir().expect("a temporary directory");
                        launch.serve(home, free_port())
                    })
                })
                .collect();
            starting.into_iter().map(|s| s.join().expect("an instance starts")).collect()
        });
        let ports: Vec<u16> = instances.iter().map(|p| p.port).collect();
        let port = free_port();
        let nginx = Nginx::with_config(port, &balancer_http_body(port, &ports), &format!("127.0.0.1:{port}"));
        println!("cluster: nginx on {port}, instances on {ports:?}, database {database}");
        // Each instance caches sessions only while it hears the others' announcements: wait
        // until all of them listen, so no test sees a cache that is still off.
        portal_testkit::proxy::until("every instance to LISTEN on portal_revoked", || {
            let listening = sql(
                &database,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND query ILIKE 'LISTEN%portal_revoked%'",
                &[],
            );
            (listening.first().and_then(|n| n.parse::<usize>().ok()) == Some(INSTANCES)).then_some(())
        });
        Cluster {
            nginx,
            instances: instances.into_iter().map(Some).collect(),
            ports,
            database,
            launch,
            _dir: dir,
        }
    }

    /// `portal ARGS` against the cluster's database and configuration; fails on failure.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.launch.run(args, "");
        assert!(out.status.success(), "portal {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// SIGKILLs instance `index` (no graceful shutdown); what it had logged.
    pub fn kill(&mut self, index: usize) -> String {
        let portal =
            self.instances[index].take().unwrap_or_else(|| panic!("instance {index} is already dead"));
        portal.stop()
    }

    /// Everything every process logged, for a failure message.
    pub fn logs(&self) -> String {
        let mut all = format!("--- nginx:\n{}\n", self.nginx.log());
        for (i, portal) in self.instances.iter().enumerate() {
            if let Some(portal) = portal {
                all.push_str(&format!("--- instance {i} (port {}):\n{}\n", portal.port, portal.log()));
            }
        }
        all
    }

    /// `name` (a user of this cluster) signed in and served straight by every instance, so
    /// that every instance has their session in its cache. See [`Cluster::all_heard`].
    pub fn canary(&self, name: &str) -> Canary {
        let mut browser = self.browser();
        browser.sign_in(Via::Balancer, name);
        for i in 0..INSTANCES {
            let answer = browser.get(Via::Instance(i), "/welcome");
            assert_eq!(answer.status, 200, "canary {name} on instance {i}: {answer:#?}");
        }
        Canary { name: name.to_owned(), browser }
    }

    /// Returns once every live instance has applied every announcement made before the call
    /// (an announcement reaches the other instances asynchronously, a few milliseconds after
    /// the answer of the request that made it, more on a busy machine). The canary is disabled
    /// in the database behind the instances' backs, and each instance must still serve them
    /// from its cache (so the caches are on: without an announcement, no instance would notice
    /// anything for `cache_ttl`); then that is announced, and an instance that sends the
    /// canary to log in has applied it, and so every earlier announcement: PostgreSQL delivers
    /// them to each listener in order, and an instance applies them in order.
    pub fn all_heard(&self, canary: Canary) {
        let Canary { name, browser } = canary;
        let live: Vec<usize> = (0..INSTANCES).filter(|&i| self.instances[i].is_some()).collect();
        let id = sql(
            &self.database,
            "UPDATE users SET disabled = TRUE WHERE username = $1 RETURNING id",
            &[&name],
        );
        let id = id.first().unwrap_or_else(|| panic!("no canary {name} in the database"));
        for &i in &live {
            let answer = browser.clone().get(Via::Instance(i), "/welcome");
            assert_eq!(
                answer.status, 200,
                "instance {i} did not serve canary {name} from its cache (is its cache off?): {answer:#?}\n{}",
                self.logs()
            );
        }
        let notify = "SELECT 'sent' FROM (SELECT pg_notify('portal_revoked', $1)) AS announced";
        sql(&self.database, notify, &[&format!("u:{id}")]);
        for &i in &live {
            portal_testkit::proxy::until(
                &format!("instance {i} to hear that canary {name} is disabled"),
                || is_sent_to_login(&browser.clone().get(Via::Instance(i), "/welcome")).then_some(()),
            );
        }
    }

    /// A browser with no cookies yet, on loopback.
    pub fn browser(&self) -> Browser {
        Browser {
            balancer: self.nginx.port,
            instances: self.ports.clone(),
            host: self.nginx.host(),
            from: Ipv4Addr::LOCALHOST,
            jar: BTreeMap::new(),
        }
    }
}

/// A signed-in user whose session every instance has cached: see [`Cluster::all_heard`].
pub struct Canary {
    name: String,
    browser: Browser,
}

/// Runs one statement on `database` (bound to `args`, all text) and returns the first column
/// of every row it yields, as text.
pub fn sql(database: &str, statement: &str, args: &[&str]) -> Vec<String> {
    use sqlx::{Connection, Row};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let mut connection =
            sqlx::PgConnection::connect(database).await.expect("a connection to the database");
        let mut query = sqlx::query(statement);
        for arg in args {
            query = query.bind(*arg);
        }
        let rows = query.fetch_all(&mut connection).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
        let _ = connection.close().await;
        rows.iter()
            .map(|row| {
                row.try_get::<String, _>(0)
                    .or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string()))
                    .unwrap_or_else(|e| panic!("{statement}: {e}"))
            })
            .collect()
    })
}

/// The test's own ear on the instances' channel (`LISTEN portal_revoked` on the cluster's
/// database): what they announce when they end sessions or disable users. Stops on drop.
pub struct Revocations {
    heard: mpsc::Receiver<String>,
    stop: Arc<AtomicBool>,
}

impl Revocations {
    /// Listening once this returns.
    pub fn listen(cluster: &Cluster) -> Revocations {
        let (tell, heard) = mpsc::channel();
        let (ready, listening) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let (url, stopped) = (cluster.database.clone(), stop.clone());
        std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async move {
                let mut listener =
                    sqlx::postgres::PgListener::connect(&url).await.expect("a listening connection");
                listener.listen("portal_revoked").await.expect("LISTEN portal_revoked");
                let _ = ready.send(());
                while !stopped.load(Ordering::SeqCst) {
                    match tokio::time::timeout(Duration::from_millis(100), listener.recv()).await {
                        Ok(Ok(note)) => {
                            if tell.send(note.payload().to_owned()).is_err() {
                                return;
                            }
                        }
                        Ok(Err(e)) => panic!("the test's listener failed: {e}"),
                        Err(_) => {} // nothing yet: look at `stop` again
                    }
                }
            });
        });
        listening.recv_timeout(PATIENCE).expect("the test listens on portal_revoked");
        Revocations { heard, stop }
    }

    /// Waits (at most [`PATIENCE`]) until an announcement satisfies `wanted`; returns it.
    pub fn wait_for(&self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut other = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.heard.recv_timeout(left) {
                Ok(payload) if wanted(&payload) => return payload,
                Ok(payload) => other.push(payload),
                Err(_) => panic!("no announcement of {what} in {PATIENCE:?} (heard only {other:?})"),
            }
        }
    }
}

impl Drop for Revocations {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Where a request goes: through nginx, or straight to one instance (by index).
#[derive(Debug, Clone, Copy)]
pub enum Via {
    Balancer,
    Instance(usize),
}

/// A browser: its cookies, the Host it asks for (the balancer's), and its address.
#[derive(Debug, Clone)]
pub struct Browser {
    balancer: u16,
    instances: Vec<u16>,
    host: String,
    from: Ipv4Addr,
    jar: BTreeMap<String, String>,
}

impl Browser {
    /// The same browser connecting from another loopback address (`127.0.0.2`, say).
    pub fn connecting_from(self, from: Ipv4Addr) -> Browser {
        Browser { from, ..self }
    }

    /// `METHOD path` with this browser's cookies, `extra` header lines (each ending in
    /// `\r\n`) and a body of this content type; the cookies it sets are kept. A request
    /// straight to an instance carries what nginx would add (Host as the client sent it, the
    /// client's address in X-Real-IP and X-Forwarded-For, the scheme).
    pub fn send(
        &mut self,
        via: Via,
        method: &str,
        path: &str,
        extra: &str,
        body: Option<(&str, &str)>,
    ) -> Answer {
        let port = match via {
            Via::Balancer => self.balancer,
            Via::Instance(i) => self.instances[i],
        };
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{extra}", self.host);
        if let Via::Instance(_) = via {
            let from = self.from;
            request.push_str(&format!(
                "X-Real-IP: {from}\r\nX-Forwarded-For: {from}\r\nX-Forwarded-Proto: http\r\n"
            ));
        }
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
            request.push_str(&format!("Cookie: {}\r\n", cookies.join("; ")));
        }
        match body {
            Some((content_type, body)) => request.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )),
            None => request.push_str("\r\n"),
        }
        let stream =
            if self.from == Ipv4Addr::LOCALHOST { connect(port) } else { connect_from(self.from, port) };
        let answer = exchange(stream, &request);
        for cookie in answer.headers("Set-Cookie") {
            let Some((name, value)) = cookie.split(';').next().and_then(|c| c.split_once('=')) else {
                continue;
            };
            let removed = value.is_empty() || cookie.to_ascii_lowercase().contains("max-age=0");
            if removed {
                self.jar.remove(name.trim());
            } else {
                self.jar.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        answer
    }

    pub fn get(&mut self, via: Via, path: &str) -> Answer {
        self.send(via, "GET", path, "", None)
    }

    /// A form POST from this site's page: Origin is the Host asked for.
    pub fn post_form(&mut self, via: Via, path: &str, form: &str) -> Answer {
        let origin = format!("Origin: http://{}\r\n", self.host);
        self.send(via, "POST", path, &origin, Some(("application/x-www-form-urlencoded", form)))
    }

    /// A JSON request from this site's script: Origin is the Host asked for.
    pub fn send_json(&mut self, via: Via, method: &str, path: &str, json: &str) -> Answer {
        let origin = format!("Origin: http://{}\r\nAccept: application/json\r\n", self.host);
        self.send(via, method, path, &origin, Some(("application/json", json)))
    }

    /// The login page's CSRF token (fetched through `via`; its cookie kept).
    pub fn login_token(&mut self, via: Via) -> String {
        let page = self.get(via, "/login");
        assert_eq!(page.status, 200, "GET /login: {page:#?}");
        hidden(&page.body, "csrf_token")
    }

    /// One `POST /login` with this password and the token; the answer.
    pub fn attempt(&mut self, via: Via, token: &str, username: &str, password: &str) -> Answer {
        let form = format!(
            "csrf_token={}&username={}&password={}",
            encode(token),
            encode(username),
            encode(password)
        );
        self.post_form(via, "/login", &form)
    }

    /// Signs in through `via` with [`PASSWORD`]: the login page, then the form. Fails the
    /// test unless it ends in the redirect with a session cookie.
    pub fn sign_in(&mut self, via: Via, username: &str) {
        let token = self.login_token(via);
        let answer = self.attempt(via, &token, username, PASSWORD);
        assert_eq!(answer.status, 303, "{username} signs in: {answer:#?}");
        assert!(self.session().is_some(), "no session cookie after signing in: {answer:#?}");
    }

    /// `name=value` of the session cookie, if the browser holds one.
    pub fn session(&self) -> Option<String> {
        let name = portal_testkit::session_cookie_name();
        self.jar.get(name).map(|value| format!("{name}={value}"))
    }

    /// A browser holding only this `name=value` cookie (a stolen or kept copy).
    pub fn with_only_cookie(&self, cookie: &str) -> Browser {
        let (name, value) = cookie.split_once('=').expect("name=value");
        let jar = BTreeMap::from([(name.to_owned(), value.to_owned())]);
        Browser { jar, ..self.clone() }
    }
}

/// Who answered through nginx: its `X-Upstream` (`127.0.0.1:P`, or several when it retried).
pub fn upstream(answer: &Answer) -> String {
    answer.headers(UPSTREAM_HEADER).first().map_or_else(String::new, |v| (*v).to_owned())
}

/// The ports in an `X-Upstream` value, in the order nginx tried them.
pub fn upstream_ports(answer: &Answer) -> Vec<u16> {
    upstream(answer).split(',').filter_map(|addr| addr.trim().rsplit_once(':')?.1.parse().ok()).collect()
}

/// Whether an answer is the redirect to the login page that a signed-out person gets.
pub fn is_sent_to_login(answer: &Answer) -> bool {
    matches!(answer.status, 302 | 303)
        && answer.headers("Location").first().is_some_and(|l| l.starts_with("/login"))
}

/// The value of a hidden form field (`name="…" value="…"`) on a page.
pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).map(|i| i + marker.len()).unwrap_or_else(|| panic!("no {name} in {page}"));
    let end = page[start..].find('"').map(|i| i + start).unwrap_or_else(|| panic!("unterminated {name}"));
    page[start..end].replace("&#x2f;", "/").replace("&amp;", "&")
}

/// Percent-encoded for a form body.
pub fn encode(text: &str) -> String {
    rocket::http::RawStr::new(text).percent_encode().to_string()
}
