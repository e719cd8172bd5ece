//! The machinery: the real `portal` binary and a real nginx (the shipped snippets inside a
//! wrapper written to a temporary directory) on free loopback ports, a tiny raw HTTP/1.1
//! client, and bounded polling. Both processes are stopped on drop, even when a test panics.

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::{free_port, wait_for_health, Launch, Portal};
use crate::{repo_root, PATIENCE, POLL};

/// `deploy/nginx/` in this checkout: the files we ship, used as they are.
pub fn deploy_dir() -> PathBuf {
    repo_root().join("deploy").join("nginx")
}

/// The text of a shipped file in `deploy/nginx/`.
pub fn shipped(name: &str) -> String {
    let path = deploy_dir().join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The value of a `DIRECTIVE VALUE;` line in a shipped file, so the tests follow the file.
pub fn shipped_value(file: &str, directive: &str) -> String {
    let text = shipped(file);
    let value = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter_map(|line| line.strip_prefix(directive))
        .find(|rest| rest.starts_with(char::is_whitespace))
        .unwrap_or_else(|| panic!("{file} sets no {directive}"));
    value.trim().trim_end_matches(';').trim().to_owned()
}

/// The value of a `DIRECTIVE 10s;` line in a shipped file.
pub fn shipped_seconds(file: &str, directive: &str) -> Duration {
    let value = shipped_value(file, directive);
    let seconds = value.strip_suffix('s').and_then(|s| s.parse().ok());
    let seconds = seconds.unwrap_or_else(|| panic!("{directive} in {file} is not in whole seconds: {value}"));
    Duration::from_secs(seconds)
}

/// Polls `probe` until it yields something, for at most [`PATIENCE`]. No fixed sleeps.
pub fn until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "gave up after {PATIENCE:?} waiting for {what}");
        std::thread::sleep(POLL);
    }
}

/// Whether this process runs as root (the effective uid in `/proc/self/status`).
fn running_as_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status.lines().find_map(|line| line.strip_prefix("Uid:"));
    // "Uid:	real	effective	saved	filesystem"
    uid.and_then(|fields| fields.split_whitespace().nth(1)) == Some("0")
}

// ---------------------------------------------------------------------------------------
// A raw HTTP/1.1 client: every byte on the wire is the test's.

/// An answer: the status, the head (status line and headers) and the body, de-chunked.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    /// Every value of the header `name`.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect()
    }
}

/// A connection to `127.0.0.1:port`.
pub fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("a connection to loopback");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("a read timeout");
    stream.set_write_timeout(Some(Duration::from_secs(5))).expect("a write timeout");
    stream
}

/// A connection to `127.0.0.1:port` from another loopback address (`127.0.0.2`, say), so
/// the server sees a client address that is not its own. std cannot bind before
/// connecting; tokio's socket can.
pub fn connect_from(source: Ipv4Addr, port: u16) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
            let stream = socket.connect(SocketAddr::from(([127, 0, 0, 1], port))).await?;
            stream.into_std()
        })
        .unwrap_or_else(|e| panic!("a connection from {source} to 127.0.0.1:{port}: {e}"));
    stream.set_nonblocking(false).expect("a blocking socket");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("a read timeout");
    stream.set_write_timeout(Some(Duration::from_secs(5))).expect("a write timeout");
    stream
}

/// Sends `request` (which should say `Connection: close`) and reads the answer to the end,
/// for at most [`PATIENCE`]; fails the test if there is no complete answer.
pub fn exchange(mut stream: TcpStream, request: &str) -> Answer {
    stream.write_all(request.as_bytes()).expect("the request is sent");
    let (raw, closed) = read_to_close(&mut stream, PATIENCE);
    let _ = stream.shutdown(Shutdown::Both);
    assert!(closed, "no end to the answer after {PATIENCE:?}: {:?}", String::from_utf8_lossy(&raw));
    parse_answer(&raw).unwrap_or_else(|| panic!("not an HTTP answer: {:?}", String::from_utf8_lossy(&raw)))
}

/// `GET path` on `127.0.0.1:port` with this Host header.
pub fn get(port: u16, host: &str, path: &str) -> Answer {
    exchange(connect(port), &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"))
}

/// Reads until the peer closes (or resets) the connection, or `limit` passes: what came,
/// and whether the connection ended.
pub fn read_to_close(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + limit;
    let (mut raw, mut chunk) = (Vec::new(), [0u8; 8192]);
    while Instant::now() < deadline {
        match stream.read(&mut chunk) {
            Ok(0) => return (raw, true),
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(_) => return (raw, true),
        }
    }
    (raw, false)
}

pub fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

/// Splits an answer into status, head and (de-chunked) body; `None` if it is not one.
pub fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.strip_prefix("HTTP/1.1 ").or_else(|| head.strip_prefix("HTTP/1.0 "))?;
    let status = status.get(..3)?.parse().ok()?;
    let mut answer = Answer { status, head: head.to_owned(), body: body.to_owned() };
    if answer.headers("Transfer-Encoding").iter().any(|v| v.eq_ignore_ascii_case("chunked")) {
        answer.body = dechunk(body)?;
    }
    Some(answer)
}

fn dechunk(mut rest: &str) -> Option<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.push_str(after.get(..size)?);
        rest = after.get(size + 2..)?;
    }
}

// ---------------------------------------------------------------------------------------
// The portal

/// The real binary on `127.0.0.1:PORT`, run in an empty temporary directory with its own
/// store and secret key, trusting `X-Real-IP` as a proxy sets it. Killed on drop.
pub fn start_portal() -> Portal {
    let home = tempfile::tempdir().expect("a temporary directory");
    Launch::in_dir(home.path())
        .test_config(home.path())
        .env("ROCKET_IP_HEADER", "X-Real-IP")
        .env("ROCKET_LOG_LEVEL", "normal")
        .serve(home, free_port())
}

// ---------------------------------------------------------------------------------------
// nginx

/// The nginx binary: `$NGINX`, or Debian's `/usr/sbin/nginx`; missing, the suite fails
/// with one line saying how to get it.
pub fn nginx_binary() -> PathBuf {
    let path = std::env::var_os("NGINX").map_or_else(|| PathBuf::from("/usr/sbin/nginx"), PathBuf::from);
    assert!(
        path.is_file(),
        "the proxy suite needs nginx at {} (Debian package `nginx`: run `bash .ci/proxy-deps.sh`, or set NGINX to its path)",
        path.display()
    );
    path
}

/// A complete nginx.conf for a temporary directory: pid, logs and every temp path inside
/// it, and `http_body` (the part under test) in the `http {}` block.
pub fn wrapper_conf(dir: &Path, http_body: &str) -> PathBuf {
    let d = dir.display();
    // As root, nginx's workers would run as `nobody` and could not use the 0700 temporary
    // directory; as anyone else, `user` is ignored (with a warning), so it is left out.
    let user = if running_as_root() { "user root;\n" } else { "" };
    let conf = format!(
        "{user}daemon off;\nmaster_process on;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\n\
         events {{}}\n\
         http {{\n\
         access_log {d}/access.log;\n\
         client_body_temp_path {d}/client_body;\nproxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
         {http_body}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    fs::write(&path, conf).expect("the wrapper nginx.conf is written");
    path
}

/// `nginx -p DIR -c CONF -e DIR/error.log`, plus `extra` arguments.
fn nginx_command(dir: &Path, conf: &Path) -> Command {
    let mut command = Command::new(nginx_binary());
    command.arg("-p").arg(dir).arg("-c").arg(conf).arg("-e").arg(dir.join("error.log"));
    command.stdin(Stdio::null());
    command
}

/// `nginx -t` on a wrapper around `http_body`: its output, whatever the outcome.
pub fn nginx_test(http_body: &str) -> Output {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let conf = wrapper_conf(dir.path(), http_body);
    nginx_command(dir.path(), &conf).arg("-t").output().expect("nginx -t runs")
}

/// The `http {}` part that puts the shipped snippets in front of a portal: exactly the
/// layout of docs/forward-auth.md, with the addresses of this test.
pub fn proxy_http_body(listen_port: u16, portal_port: u16) -> String {
    let deploy = deploy_dir();
    let deploy = deploy.display();
    format!(
        "include {deploy}/portal-http.conf;\n\
         server {{\n\
         listen 127.0.0.1:{listen_port};\n\
         location / {{\n\
         include {deploy}/portal-proxy.conf;\n\
         proxy_pass http://127.0.0.1:{portal_port};\n\
         }}\n\
         }}"
    )
}

/// nginx with the shipped snippets on `127.0.0.1:PORT`, proxying to a portal. Stopped on drop.
pub struct Nginx {
    child: Child,
    pub port: u16,
    dir: TempDir,
    conf: PathBuf,
}

impl Nginx {
    pub fn start(portal: &Portal) -> Nginx {
        let port = free_port();
        Nginx::with_config(port, &proxy_http_body(port, portal.port), &format!("127.0.0.1:{port}"))
    }

    /// nginx on `port` with `http_body` in its `http {}` block; ready once `GET /health`
    /// with this Host answers 200.
    pub fn with_config(port: u16, http_body: &str, health_host: &str) -> Nginx {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let conf = wrapper_conf(dir.path(), http_body);
        let log = fs::File::create(dir.path().join("nginx.out")).expect("a log file");
        let child = nginx_command(dir.path(), &conf)
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .expect("nginx starts");
        let mut nginx = Nginx { child, port, dir, conf };
        let dir = nginx.dir.path().to_owned();
        wait_for_health(&mut nginx.child, port, health_host, "nginx", || nginx_log(&dir));
        nginx
    }

    /// What nginx wrote: its output, its error log (at `info`: it names the connections it
    /// closes, and why) and its access log (the status of every request it finished).
    pub fn log(&self) -> String {
        nginx_log(self.dir.path())
    }

    /// The Host a client uses: `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn nginx_log(dir: &Path) -> String {
    let read = |name: &str| fs::read_to_string(dir.join(name)).unwrap_or_default();
    format!("{}{}--- nginx access log:\n{}", read("nginx.out"), read("error.log"), read("access.log"))
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // A SIGKILL would take the master only and leave its worker holding the port:
        // `nginx -s stop` (SIGTERM through the pid file) stops both; SIGKILL is the fallback.
        let stopped = nginx_command(self.dir.path(), &self.conf)
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        while stopped && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(POLL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Caddy

/// The caddy binary: `$CADDY`, or Debian's `/usr/bin/caddy`; missing, the test fails with one
/// line saying how to get it.
pub fn caddy_binary() -> PathBuf {
    let path = std::env::var_os("CADDY").map_or_else(|| PathBuf::from("/usr/bin/caddy"), PathBuf::from);
    assert!(
        path.is_file(),
        "the proxy suite needs caddy at {} (Debian package `caddy`: run `bash .ci/proxy-deps.sh`, or set CADDY to its path)",
        path.display()
    );
    path
}

/// `deploy/caddy/` in this checkout.
pub fn caddy_deploy_dir() -> PathBuf {
    repo_root().join("deploy").join("caddy")
}

/// Caddy running `caddyfile` (its admin API off, its data in a temporary directory), with
/// these environment variables for the `{$VAR}` placeholders; ready once `GET /health` with
/// `health_host` answers 200 on `port`. Killed on drop.
pub struct Caddy {
    child: Child,
    dir: TempDir,
}

impl Caddy {
    pub fn start(port: u16, caddyfile: &str, env: &[(&str, String)], health_host: &str) -> Caddy {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("Caddyfile");
        fs::write(&file, caddyfile).expect("the Caddyfile is written");
        let log = fs::File::create(dir.path().join("caddy.out")).expect("a log file");
        let mut command = Command::new(caddy_binary());
        command
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&file)
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("caddy starts");
        let mut caddy = Caddy { child, dir };
        let dir = caddy.dir.path().to_owned();
        wait_for_health(&mut caddy.child, port, health_host, "caddy", || {
            fs::read_to_string(dir.join("caddy.out")).unwrap_or_default()
        });
        caddy
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("caddy.out")).unwrap_or_default()
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// An application behind the gate

/// A tiny HTTP application on a free port that answers every request with its name, the
/// path and the identity headers it received, one per line (`served-by: app`,
/// `Remote-User: alice`), then any `OIDC_CLAIM_…` header as it came. Runs until the test
/// process ends.
pub struct Echo {
    pub port: u16,
}

/// The headers the echo reports.
pub const IDENTITY_HEADERS: [&str; 6] = [
    "Remote-User",
    "Remote-Email",
    "Remote-Groups",
    "X-Auth-Request-User",
    "X-Auth-Request-Email",
    "X-Portal-Assertion",
];

impl Echo {
    pub fn start() -> Echo {
        Echo::named("app")
    }

    /// An echo that says it is `name`, so a test sees which application a proxy chose.
    pub fn named(name: &'static str) -> Echo {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("a port for the echo");
        let port = listener.local_addr().expect("its address").port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || echo(name, stream));
            }
        });
        Echo { port }
    }
}

fn echo(name: &str, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("?").to_owned();
    let mut body = format!("served-by: {name}\npath: {path}\n");
    for name in IDENTITY_HEADERS {
        let values: Vec<&str> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect();
        body.push_str(&format!("{name}: {}\n", values.join(" | ")));
    }
    // What an OpenID relying party in front (Apache's mod_auth_openidc) passes on.
    for line in head.lines().skip(1).filter(|l| l.to_ascii_uppercase().starts_with("OIDC_CLAIM_")) {
        body.push_str(line.trim());
        body.push('\n');
    }
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes());
}

// ---------------------------------------------------------------------------------------
// Forward-auth

/// The portal, configured for forward-auth on `*.portal.test` with its login page at
/// `http://auth.portal.test:PROXY_PORT`, sharing its session cookie with `portal.test`;
/// `alice` and `dave` are users, `root` an administrator; `admin.portal.test` is for
/// administrators, `/finance` on every host for alice and bob.
pub fn gated_portal(proxy_port: u16) -> Portal {
    let home = tempfile::tempdir().expect("a temporary directory");
    let launch = Launch::in_dir(home.path())
        .test_config(home.path())
        .env("ROCKET_IP_HEADER", "X-Real-IP")
        .env("ROCKET_LOG_LEVEL", "normal")
        .env("ROCKET_PUBLIC_URL", format!("http://auth.portal.test:{proxy_port}"))
        .env(
            "ROCKET_FORWARD_AUTH",
            r#"{allowed_domains=["*.portal.test"], rules=[{host="admin.portal.test", allow="admins"},
                {host="*.portal.test", path="/finance", allow=["alice", "bob"]}]}"#,
        )
        .env("ROCKET_SESSION", r#"{cookie_domain="portal.test"}"#);
    launch.add_user("alice");
    launch.add_user("dave");
    launch.add_user("root");
    let out = launch.run(&["users", "admin", "root", "--on"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    launch.serve(home, free_port())
}

/// The `http {}` part for forward-auth: the portal at `auth.portal.test`, and the echo
/// application at `app.`, `other.` and `admin.portal.test`, gated by the shipped snippets
/// (`portal-auth-location.conf`, `portal-auth.conf`): the layout of docs/forward-auth.md.
pub fn gate_http_body(port: u16, portal_port: u16, echo_port: u16) -> String {
    let deploy = deploy_dir();
    let deploy = deploy.display();
    format!(
        "include {deploy}/portal-http.conf;\n\
         upstream portal {{ server 127.0.0.1:{portal_port}; }}\n\
         server {{\n listen 127.0.0.1:{port};\n server_name auth.portal.test;\n\
           location / {{\n include {deploy}/portal-proxy.conf;\n proxy_pass http://portal;\n }}\n}}\n\
         server {{\n listen 127.0.0.1:{port};\n server_name app.portal.test other.portal.test admin.portal.test;\n\
           include {deploy}/portal-auth-location.conf;\n\
           location / {{\n include {deploy}/portal-auth.conf;\n proxy_pass http://127.0.0.1:{echo_port};\n }}\n}}"
    )
}

/// What the protected file holds: a test that finds it in an answer has read it.
pub const FINANCE_SECRET: &str = "Q3 figures, for alice and bob only";

/// A directory for a stock static file server: `finance` (the protected file, holding
/// [`FINANCE_SECRET`]) and `public.css`. Removed on drop.
pub struct Files {
    pub dir: TempDir,
}

impl Files {
    #[allow(clippy::new_without_default)] // it writes a new directory: not a default value
    pub fn new() -> Files {
        let dir = tempfile::tempdir().expect("a temporary directory");
        fs::write(dir.path().join("finance"), FINANCE_SECRET).expect("the finance file is written");
        fs::write(dir.path().join("public.css"), "body {}").expect("public.css is written");
        Files { dir }
    }
}

/// [`gate_http_body`]'s layout with an application per host: `app.portal.test` and
/// `other.portal.test` proxy to `app_port`, `admin.portal.test` to `admin_port`,
/// `files.portal.test` to nginx's own static file server (`root`) on `static_port` in
/// front of `files`; each gated by the shipped snippets.
pub fn gate_sites_http_body(
    port: u16,
    portal_port: u16,
    app_port: u16,
    admin_port: u16,
    static_port: u16,
    files: &Files,
) -> String {
    let deploy = deploy_dir();
    let deploy = deploy.display();
    let gated = |names: &str, upstream: u16| {
        format!(
            "server {{\n listen 127.0.0.1:{port};\n server_name {names};\n\
               include {deploy}/portal-auth-location.conf;\n\
               location / {{\n include {deploy}/portal-auth.conf;\n proxy_pass http://127.0.0.1:{upstream};\n }}\n}}\n"
        )
    };
    format!(
        "include {deploy}/portal-http.conf;\n\
         upstream portal {{ server 127.0.0.1:{portal_port}; }}\n\
         server {{\n listen 127.0.0.1:{port};\n server_name auth.portal.test;\n\
           location / {{\n include {deploy}/portal-proxy.conf;\n proxy_pass http://portal;\n }}\n}}\n\
         {}{}{}\
         server {{\n listen 127.0.0.1:{static_port};\n root {};\n}}",
        gated("app.portal.test other.portal.test", app_port),
        gated("admin.portal.test", admin_port),
        gated("files.portal.test", static_port),
        files.dir.path().display(),
    )
}

// ---------------------------------------------------------------------------------------
// Apache with mod_auth_openidc (a certified OpenID relying party)

/// Debian's Apache: `$APACHE`, or `/usr/sbin/apache2`; missing, the test fails with one line
/// saying how to get it.
pub fn apache_binary() -> PathBuf {
    let path = std::env::var_os("APACHE").map_or_else(|| PathBuf::from("/usr/sbin/apache2"), PathBuf::from);
    assert!(
        path.is_file() && Path::new(APACHE_MODULES).join("mod_auth_openidc.so").is_file(),
        "Apache with mod_auth_openidc is not installed: run `bash .ci/proxy-deps.sh` (Debian's apache2 and libapache2-mod-auth-openidc)"
    );
    path
}

/// Where Debian keeps Apache's modules.
pub const APACHE_MODULES: &str = "/usr/lib/apache2/modules";

/// Apache on `port`, with `body` after a minimal server configuration (event MPM, authn/authz,
/// proxy, mod_auth_openidc loaded; its error log at `info` for the module); ready once
/// `GET /health` answers 200, so `body` must route `/health` somewhere that answers.
pub struct Apache {
    child: Child,
    pub port: u16,
    dir: TempDir,
    conf: PathBuf,
}

impl Apache {
    pub fn start(port: u16, body: &str) -> Apache {
        let bin = apache_binary();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let d = dir.path().display();
        let modules = [
            ("mpm_event_module", "mod_mpm_event.so"),
            ("authn_core_module", "mod_authn_core.so"),
            ("authz_core_module", "mod_authz_core.so"),
            ("authz_user_module", "mod_authz_user.so"),
            ("proxy_module", "mod_proxy.so"),
            ("proxy_http_module", "mod_proxy_http.so"),
            ("auth_openidc_module", "mod_auth_openidc.so"),
        ];
        let loads: String = modules
            .iter()
            .map(|(name, file)| format!("LoadModule {name} {APACHE_MODULES}/{file}\n"))
            .collect();
        // Run as root (CI), Apache's workers must be another user; elsewhere it stays as is.
        let user = if is_root() { "User www-data\nGroup www-data\n" } else { "" };
        let conf_text = format!(
            "ServerRoot {d}\nListen 127.0.0.1:{port}\nServerName 127.0.0.1\nPidFile {d}/httpd.pid\n\
             ErrorLog {d}/error.log\nLogLevel warn auth_openidc:info\n{user}{loads}\n{body}\n"
        );
        let conf = dir.path().join("httpd.conf");
        fs::write(&conf, conf_text).expect("the Apache configuration is written");
        let log = fs::File::create(dir.path().join("apache.out")).expect("a log file");
        let child = Command::new(&bin)
            .arg("-f")
            .arg(&conf)
            .arg("-DFOREGROUND")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .expect("Apache starts");
        let mut apache = Apache { child, port, dir, conf };
        let dir = apache.dir.path().to_owned();
        wait_for_health(&mut apache.child, port, &format!("127.0.0.1:{port}"), "Apache", || apache_log(&dir));
        apache
    }

    /// Its output and error log.
    pub fn log(&self) -> String {
        apache_log(self.dir.path())
    }
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn apache_log(dir: &Path) -> String {
    let read = |name: &str| fs::read_to_string(dir.join(name)).unwrap_or_default();
    format!("{}{}", read("apache.out"), read("error.log"))
}

impl Drop for Apache {
    fn drop(&mut self) {
        // Like nginx, a SIGKILL would leave its workers: `-k stop` through the pid file first.
        let stopped = Command::new(apache_binary())
            .arg("-f")
            .arg(&self.conf)
            .args(["-k", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        while stopped && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(POLL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The client secret the OpenID walks give Apache's module.
pub const OPENIDC_SECRET: &str = "the module's client secret";

/// The real binary on `portal_port` as an OpenID provider (`public_url` its own address) with
/// one client, `apache` ("The Echo"), whose redirect URI is the module's on `apache_base`
/// and whose address after sign-out is `{apache_base}/loggedout`; alice is a user.
pub fn openid_portal(portal_port: u16, apache_base: &str) -> Portal {
    let home = tempfile::tempdir().expect("a temporary directory");
    let client = format!(
        "{{clients=[{{client_id=\"apache\",client_secret=\"{OPENIDC_SECRET}\",name=\"The Echo\",\
         redirect_uris=[\"{apache_base}/protected/redirect_uri\"],post_logout_redirect_uris=[\"{apache_base}/loggedout\"]}}]}}"
    );
    let launch = Launch::in_dir(home.path())
        .test_config(home.path())
        .env("ROCKET_PUBLIC_URL", format!("http://127.0.0.1:{portal_port}"))
        .env("ROCKET_OIDC", client);
    launch.add_user("alice");
    launch.serve(home, portal_port)
}

/// Apache on `apache_port` with mod_auth_openidc as the portal's client `apache`: `/protected/`
/// is the echo behind the module, `/loggedout` and `/health` the echo without it.
pub fn openidc_apache(apache_port: u16, portal_port: u16, echo_port: u16) -> Apache {
    let portal = format!("http://127.0.0.1:{portal_port}");
    let apache = format!("http://127.0.0.1:{apache_port}");
    Apache::start(
        apache_port,
        &format!(
            "OIDCProviderMetadataURL {portal}/.well-known/openid-configuration\n\
             OIDCClientID apache\nOIDCClientSecret \"{OPENIDC_SECRET}\"\n\
             OIDCRedirectURI {apache}/protected/redirect_uri\n\
             OIDCCryptoPassphrase \"a passphrase for the module's own cookies\"\n\
             OIDCScope \"openid profile email groups\"\n\
             OIDCProviderTokenEndpointAuth client_secret_basic\n\
             <Location /protected>\n  AuthType openid-connect\n  Require valid-user\n  ProxyPass http://127.0.0.1:{echo_port}/\n</Location>\n\
             <Location /loggedout>\n  ProxyPass http://127.0.0.1:{echo_port}/loggedout\n</Location>\n\
             <Location /health>\n  ProxyPass http://127.0.0.1:{echo_port}/health\n</Location>\n"
        ),
    )
}
