//! The machinery: chromedriver and headless Chromium, the real `portal` binary pointed at
//! the fake providers, bounded polling, and screenshots under `target/browser-artifacts/`.

use std::fmt::Display;
use std::fs;
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::cookies::Cookie;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tempfile::TempDir;

use portal_testkit::fakes::{rocket_oauth, FakeGithub, FakeGoogle};
use portal_testkit::oidc::FakeOidc;
use portal_testkit::process::{free_port, Launch, Portal};
use portal_testkit::{PATIENCE, POLL};

/// The binaries, overridable for other systems; missing ones fail the suite loudly.
fn tool(var: &str, default: &str, package: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "the browser suite needs {} (Debian package `{package}`; or set {var} to its path). \
         Without a browser, run `cargo test` without `--features browser`.",
        path.display()
    );
    path
}

/// Whether the chromedriver on `port` answers `/status` with `"ready": true`.
fn driver_ready(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let (mut answer, mut chunk) = (Vec::new(), [0u8; 1024]);
    while let Ok(n @ 1..) = stream.read(&mut chunk) {
        answer.extend_from_slice(&chunk[..n]);
        if String::from_utf8_lossy(&answer).replace(' ', "").contains("\"ready\":true") {
            return true;
        }
    }
    false
}

/// Polls `probe` until it yields something, for at most [`PATIENCE`]. No fixed sleeps.
pub async fn until<T, F, Fut>(what: impl Display, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "gave up after {PATIENCE:?} waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Where screenshots go: `target/browser-artifacts/` (wherever the target directory is).
pub fn artifacts_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("browser-artifacts");
    fs::create_dir_all(&dir).expect("the artefacts directory");
    dir
}

// ---------------------------------------------------------------------------------------
// chromedriver and Chromium

/// A chromedriver on a free loopback port; killed on drop. Each [`Browser`] is a fresh
/// Chromium with its own profile, started through it.
pub struct Driver {
    child: Child,
    port: u16,
    chromium: PathBuf,
}

impl Driver {
    pub async fn start() -> Driver {
        let chromium = tool("PORTAL_CHROMIUM", "/usr/bin/chromium", "chromium");
        let chromedriver = tool("PORTAL_CHROMEDRIVER", "/usr/bin/chromedriver", "chromium-driver");
        // Port 0: chromedriver binds a free port itself and names it, so no other server
        // started meanwhile (the tests run in parallel) can take a port picked for it.
        let mut child = Command::new(chromedriver)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let stdout = child.stdout.take().expect("chromedriver's stdout");
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            let mut tx = Some(tx);
            // "ChromeDriver was started successfully on port 33425."; then keep draining, so
            // a chatty driver never blocks on a full pipe.
            for line in lines.by_ref().map_while(Result::ok) {
                let port = line.strip_prefix("ChromeDriver was started successfully on port ");
                if let Some(port) = port.and_then(|p| p.trim_end_matches('.').parse::<u16>().ok()) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(port);
                    }
                }
            }
        });
        let port = match tokio::time::timeout(PATIENCE, rx).await {
            Ok(Ok(port)) => port,
            _ => {
                let status = child.try_wait().ok().flatten();
                panic!("chromedriver did not say which port it listens on (exit status: {status:?})")
            }
        };
        let driver = Driver { child, port, chromium };
        until("chromedriver to be ready for sessions", || async move { driver_ready(port).then_some(()) })
            .await;
        driver
    }

    /// A new headless Chromium with an empty profile.
    pub async fn browser(&self) -> Browser {
        self.browser_with(&[]).await
    }

    /// A new headless Chromium with an empty profile and these extra command-line flags.
    pub async fn browser_with(&self, extra: &[&str]) -> Browser {
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1200,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let capabilities = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": { "pageLoad": 30_000, "script": 10_000 },
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": { "binary": self.chromium, "args": args },
        });
        let serde_json::Value::Object(capabilities) = capabilities else { unreachable!() };
        // A cold machine's first Chromium can take long enough to start that chromedriver
        // drops the request; one more try, then fail with what it said.
        let mut tries = 0;
        let client = loop {
            tries += 1;
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{}", self.port))
                .await
            {
                Ok(client) => break client,
                Err(e) if tries < 2 => {
                    eprintln!("Chromium did not start through chromedriver ({e}); trying again")
                }
                Err(e) => panic!("Chromium did not start through chromedriver, twice: {e}"),
            }
        };
        let session = client.session_id().await.ok().flatten().expect("a WebDriver session id");
        Browser { client, session, driver_port: self.port, _profile: profile }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the browser shows right now.
#[derive(Debug)]
pub struct Page {
    pub url: String,
    /// Path and query, e.g. `/login?next=%2Fwelcome`.
    pub path: String,
    /// The visible text of the page.
    pub text: String,
}

/// One Chromium session. Dropping it ends the session (and so the browser), even when a
/// test has panicked.
pub struct Browser {
    pub client: Client,
    session: String,
    driver_port: u16,
    _profile: TempDir,
}

impl Browser {
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("could not open {url}: {e}"));
    }

    pub async fn back(&self) {
        self.client.back().await.expect("the back button");
    }

    pub async fn reload(&self) {
        self.client.refresh().await.expect("reload");
    }

    /// The current page, or `None` while it is changing under us.
    pub async fn page(&self) -> Option<Page> {
        let url = self.client.current_url().await.ok()?;
        let body = self.client.find(Locator::Css("body")).await.ok()?;
        let text = body.text().await.ok()?;
        // The address and the text come from separate calls: if a navigation landed
        // between them, they describe different pages, and the caller looks again.
        if self.client.current_url().await.ok()? != url {
            return None;
        }
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        Some(Page { url: url.to_string(), path, text })
    }

    /// Waits until the page satisfies `ok`; on timeout saves a screenshot and fails with
    /// what the browser last showed.
    pub async fn wait_until(&self, what: &str, ok: impl Fn(&Page) -> bool) -> Page {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let page = self.page().await;
            if let Some(page) = page.filter(&ok) {
                return page;
            }
            if Instant::now() >= deadline {
                let last = self.page().await;
                let name: String =
                    what.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).take(60).collect();
                self.screenshot(&format!("timeout-{name}")).await;
                let console = self.console();
                panic!(
                    "gave up after {PATIENCE:?} waiting for {what}; the browser shows {last:#?}\n\
                     console: {console:#?}"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for an address (path and query) on any host.
    pub async fn wait_for_path(&self, path: &str) -> Page {
        self.wait_until(&format!("the address {path}"), |p| p.path == path).await
    }

    pub async fn wait_for_text(&self, text: &str) -> Page {
        self.wait_until(&format!("the text {text:?}"), |p| p.text.contains(text)).await
    }

    /// Clicks the button a person would, by its label.
    pub async fn click_button(&self, label: &str) {
        let xpath = format!("//button[normalize-space(.)='{label}']");
        self.click(Locator::XPath(&xpath), label).await;
    }

    /// Clicks the link whose text contains `label`.
    pub async fn click_link(&self, label: &str) {
        let xpath = format!("//a[contains(normalize-space(.), '{label}')]");
        self.click(Locator::XPath(&xpath), label).await;
    }

    async fn click(&self, locator: Locator<'_>, label: &str) {
        let client = &self.client;
        let element = until(format!("something labelled {label:?} to click"), || async move {
            client.find(locator).await.ok()
        })
        .await;
        element.click().await.unwrap_or_else(|e| panic!("could not click {label:?}: {e}"));
    }

    /// Types into the field with this CSS selector.
    pub async fn type_into(&self, css: &str, text: &str) {
        let client = &self.client;
        let field =
            until(format!("the field {css}"), || async move { client.find(Locator::Css(css)).await.ok() })
                .await;
        field.clear().await.expect("clear the field");
        field.send_keys(text).await.expect("type into the field");
    }

    /// The top bar's text ("Signed in as NAME  Account  Log out", or "Log in").
    pub async fn topbar(&self) -> String {
        let bar = self.client.find(Locator::Css("header")).await.expect("the top bar");
        bar.text().await.expect("its text")
    }

    /// A property of the element with this CSS selector (e.g. a field's current `value`).
    pub async fn prop(&self, css: &str, name: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(css)).await.expect("the element");
        element.prop(name).await.expect("the property")
    }

    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(css)).await.expect("the element");
        element.attr(name).await.expect("the attribute")
    }

    /// A cookie as the browser holds it for the current page's site.
    pub async fn cookie(&self, name: &str) -> Option<Cookie<'static>> {
        let cookies = self.client.get_all_cookies().await.expect("the cookies");
        cookies.into_iter().find(|c| c.name() == name)
    }

    /// What the page wrote to the console, and what Chromium reported there (e.g. a CSP
    /// violation): the first thing to read when a wait times out.
    pub fn console(&self) -> Vec<String> {
        let path = format!("/session/{}/se/log", self.session);
        let answer = driver_request(self.driver_port, "POST", &path, r#"{"type":"browser"}"#);
        let entries: serde_json::Value =
            answer.and_then(|a| serde_json::from_str(&a).ok()).unwrap_or_default();
        entries["value"]
            .as_array()
            .map(|list| list.iter().filter_map(|e| e["message"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// Gives the browser Chromium's virtual authenticator (WebDriver's
    /// `POST /session/{id}/webauthn/authenticator`): a platform authenticator that keeps
    /// discoverable credentials, verifies its user and consents at once, as a phone's
    /// fingerprint reader would. Its id.
    pub fn add_virtual_authenticator(&self) -> String {
        let path = format!("/session/{}/webauthn/authenticator", self.session);
        let body = r#"{"protocol":"ctap2","transport":"internal","hasResidentKey":true,
            "hasUserVerification":true,"isUserConsenting":true,"isUserVerified":true}"#;
        let answer = driver_request(self.driver_port, "POST", &path, body).expect("chromedriver answers");
        let answer: serde_json::Value = serde_json::from_str(&answer).expect("JSON from chromedriver");
        answer["value"].as_str().unwrap_or_else(|| panic!("no virtual authenticator: {answer}")).to_owned()
    }

    /// Whether the virtual authenticator `id` verifies its user (a PIN or a fingerprint)
    /// from now on; without it every passkey ceremony fails.
    pub fn set_user_verified(&self, id: &str, verified: bool) {
        let path = format!("/session/{}/webauthn/authenticator/{id}/uv", self.session);
        let body = format!(r#"{{"isUserVerified":{verified}}}"#);
        driver_request(self.driver_port, "POST", &path, &body).expect("chromedriver answers");
    }

    /// The credentials the virtual authenticator `id` holds.
    pub fn virtual_credentials(&self, id: &str) -> Vec<serde_json::Value> {
        let path = format!("/session/{}/webauthn/authenticator/{id}/credentials", self.session);
        let answer = driver_request(self.driver_port, "GET", &path, "").expect("chromedriver answers");
        let answer: serde_json::Value = serde_json::from_str(&answer).expect("JSON from chromedriver");
        answer["value"].as_array().cloned().unwrap_or_default()
    }

    /// Saves a PNG of the viewport as `target/browser-artifacts/NAME.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = artifacts_dir().join(format!("{name}.png"));
        fs::write(&path, png).expect("the screenshot is written");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Synchronous, so it also happens while a failed test unwinds: chromedriver closes
        // Chromium, which would otherwise outlive the test.
        driver_request(self.driver_port, "DELETE", &format!("/session/{}", self.session), "");
    }
}

/// A plain HTTP/1.1 request to chromedriver, outside fantoccini (for what it lacks, and for
/// use in `Drop`). Returns the body, or `None` if chromedriver did not answer.
fn driver_request(port: u16, method: &str, path: &str, body: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    // chromedriver keeps the connection open whatever we ask, so read by Content-Length.
    let mut reader = std::io::BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}

// ---------------------------------------------------------------------------------------
// The portal

/// The real binary, to be opened as `http://localhost:PORT`, with a temporary store, a fresh
/// secret key, Google and GitHub pointed at the fakes on `127.0.0.1` (another site), and
/// these users (created first through `portal users add`).
/// `admins` are made administrators (`portal users admin NAME --on`).
/// With `public_url` = `http://localhost:PORT` when `at_its_url`, which turns passkeys on
/// (they need an origin that names a domain).
pub fn start_portal(
    google: &FakeGoogle,
    github: &FakeGithub,
    alpha: &FakeOidc,
    users: &[&str],
    admins: &[&str],
    at_its_url: bool,
) -> Portal {
    let home = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let site = format!("http://localhost:{port}");
    let mut launch = Launch::in_checkout().test_config(home.path()).env("ROCKET_LOG_LEVEL", "critical").env(
        "ROCKET_OAUTH",
        alpha.add_to_rocket_oauth(&rocket_oauth(&site, Some(google), Some(github)), &site),
    );
    if at_its_url {
        launch = launch.env("ROCKET_PUBLIC_URL", site.clone());
    }
    for user in users {
        launch.add_user(user);
    }
    for admin in admins {
        let out = launch.run(&["users", "admin", admin, "--on"], "");
        assert!(out.status.success(), "users admin {admin}: {}", String::from_utf8_lossy(&out.stderr));
    }
    launch.serve(home, port)
}
