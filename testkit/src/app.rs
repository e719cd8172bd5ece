//! `TestApp`: the real app on Rocket's local client, with a fresh SQLite file, its own
//! secret key and a clock the test moves, and the requests tests make with it (the login
//! form, any form with this browser's CSRF token, the console's flash and audit log); and
//! the real binary's login form over HTTP.

use std::sync::Arc;

use portal::auth::Auth;
use portal::clock::ManualClock;
use portal::store::{NewUser, Store, User};
use portal::Overrides;
use rocket::figment::Figment;
use rocket::http::{ContentType, Cookie, Header, RawStr, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::Value;
use tempfile::TempDir;

use crate::{
    new_postgres_database, postgres_server, secret_key, secure_session_cookie_name, session_cookie_name,
    sqlite_url, PASSWORD,
};

pub const START: i64 = 1_800_000_000;

pub struct TestApp {
    pub client: Client,
    pub clock: ManualClock,
    _dir: TempDir,
}

/// The figment a test app starts from: the project's `Rocket.toml` and defaults, with a
/// temporary database and a fresh secret key.
pub fn test_figment(db_url: &str, secret_key: &str) -> Figment {
    portal::figment()
        .merge(("databases.portal.url", db_url))
        .merge(("secret_key", secret_key))
        .merge(("log_level", "off"))
}

pub fn temp_db() -> (TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match postgres_server() {
        Some(server) => new_postgres_database(&server),
        None => sqlite_url(dir.path()),
    };
    (dir, url)
}

/// Whether this run of the suite is on PostgreSQL (`PORTAL_TEST_POSTGRES` set): every
/// test that makes its store with [`temp_db`] then runs on a database of its own there.
pub fn on_postgres() -> bool {
    postgres_server().is_some()
}

/// For a test about SQLite's file (its permissions, its header, its pages): `true`, with a
/// line saying so, when this run is on PostgreSQL, where there is no such file.
pub fn skip_on_postgres(test: &str) -> bool {
    if on_postgres() {
        eprintln!("SKIPPED on PostgreSQL: {test} is about SQLite's file (the SQLite run has it)");
    }
    on_postgres()
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|figment| figment).await
    }

    pub async fn spawn_with(configure: impl FnOnce(Figment) -> Figment) -> TestApp {
        let (dir, db_url) = temp_db();
        TestApp::spawn_on(dir, db_url, configure).await
    }

    pub async fn spawn_on(
        dir: TempDir,
        db_url: String,
        configure: impl FnOnce(Figment) -> Figment,
    ) -> TestApp {
        TestApp::spawn_at(dir, db_url, START, configure).await
    }

    /// On this store, with the clock starting at `start` (the wall clock's time, for a test
    /// that runs the command line, which keeps the real time, against it).
    pub async fn spawn_at(
        dir: TempDir,
        db_url: String,
        start: i64,
        configure: impl FnOnce(Figment) -> Figment,
    ) -> TestApp {
        let secret_key = secret_key();
        let clock = ManualClock::new(start);
        let figment = configure(test_figment(&db_url, &secret_key));
        let rocket = portal::rocket_with(figment, Overrides { clock: Some(Arc::new(clock.clone())) });
        let client = Client::tracked(rocket).await.expect("the app starts");
        TestApp { client, clock, _dir: dir }
    }

    pub fn auth(&self) -> &Auth {
        self.client.rocket().state::<Auth>().expect("the auth service is managed")
    }

    pub fn store(&self) -> &Store {
        self.auth().store()
    }

    pub fn verify_calls(&self) -> u64 {
        self.auth().hasher().verify_calls()
    }

    pub async fn create_user(&self, name: &str, password: &str) -> User {
        let hasher = self.auth().hasher();
        let hash = hasher.hash(password.to_owned()).await.expect("hash");
        let new = NewUser { username: name, email: None, password_hash: Some(&hash), is_admin: false };
        self.store().create_user(new, START).await.expect("create user")
    }

    pub async fn get(&self, uri: &str) -> LocalResponse<'_> {
        self.client.get(uri.to_owned()).dispatch().await
    }

    /// The CSRF token the login page hands this client (and its cookie, kept by the client).
    pub async fn csrf_token(&self) -> String {
        let page = self.get("/login").await.into_string().await.expect("login page");
        extract_hidden(&page, "csrf_token").expect("the login page carries a CSRF token")
    }

    /// Submits the login form with a valid CSRF token plus `fields`.
    pub async fn post_login_form(&self, fields: &[(&str, &str)]) -> LocalResponse<'_> {
        let token = self.csrf_token().await;
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.client.post("/login").header(ContentType::Form).body(form_body(&all)).dispatch().await
    }

    pub async fn post_login(&self, username: &str, password: &str) -> LocalResponse<'_> {
        self.post_login_form(&[("username", username), ("password", password)]).await
    }

    /// Signs in through the form and returns the session cookie that was set.
    pub async fn sign_in(&self, username: &str, password: &str) -> Cookie<'static> {
        let response = self.post_login(username, password).await;
        assert_eq!(response.status(), Status::SeeOther, "sign-in should succeed");
        session_cookie(&response).expect("a session cookie is set")
    }

    pub async fn post_logout(&self) -> LocalResponse<'_> {
        let page = self.get("/").await.into_string().await.expect("home page");
        let token = extract_hidden(&page, "csrf_token").expect("a signed-in page has a logout form");
        self.client
            .post("/logout")
            .header(ContentType::Form)
            .body(form_body(&[("csrf_token", &token)]))
            .dispatch()
            .await
    }

    /// `GET uri` carrying exactly `cookie`, as a replaying attacker (or another browser) would.
    pub async fn get_with_cookie(&self, uri: &str, cookie: Cookie<'static>) -> LocalResponse<'_> {
        let untracked = self.client.get(uri.to_owned()).cookie(cookie);
        untracked.dispatch().await
    }

    /// Posts a form (the console's, the account page's) with this browser's CSRF token.
    pub async fn post_form(&self, uri: &str, fields: &[(&str, &str)]) -> LocalResponse<'_> {
        let token = self.csrf_token().await;
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.client.post(uri.to_owned()).header(ContentType::Form).body(form_body(&all)).dispatch().await
    }

    /// The flash message the next page shows (read from the users list).
    pub async fn flash(&self, page: &str) -> String {
        let html = body(self.get(page).await).await;
        let start = html.find("role=\"status\">").map(|i| i + "role=\"status\">".len()).unwrap_or(0);
        let end = html[start..].find("</p>").map_or(start, |i| start + i);
        unescape_html(&html[start..end])
    }

    /// The audit log, oldest first, as (kind, actor, subject).
    pub async fn events(&self) -> Vec<(String, String, Option<i64>)> {
        let mut all: Vec<_> = self
            .store()
            .recent_events(10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.kind, e.actor, e.subject_user_id))
            .collect();
        all.reverse();
        all
    }

    /// The audit log's newest event, as (kind, actor, subject).
    pub async fn last_event(&self) -> (String, String, Option<i64>) {
        self.events().await.pop().expect("an event")
    }

    /// A new administrator `name` with [`PASSWORD`].
    pub async fn create_admin(&self, name: &str) -> User {
        let user = self.create_user(name, PASSWORD).await;
        let by = portal::auth::admin::Operator::cli();
        self.auth().set_user_admin(&by, user.id, true).await.unwrap()
    }

    /// The app with `root` as its only administrator: the debug build's `admin` (seeded into an
    /// empty store) is deleted.
    pub async fn with_root(self) -> TestApp {
        self.create_admin("root").await;
        let seeded = self.store().user_by_username("admin").await.unwrap().unwrap();
        let by = portal::auth::admin::Operator::cli();
        self.auth().delete_user(&by, seeded.id).await.unwrap();
        self
    }

    /// An administrator, signed in on the test client.
    pub async fn spawn_admin() -> (TestApp, User) {
        let app = TestApp::spawn().await.with_root().await;
        let root = app.store().user_by_username("root").await.unwrap().unwrap();
        app.sign_in("root", PASSWORD).await;
        (app, root)
    }
}

/// A response's body as text (empty when there is none).
pub async fn body(response: LocalResponse<'_>) -> String {
    response.into_string().await.unwrap_or_default()
}

/// A response's body as JSON; the test fails if it is not.
pub async fn json(response: LocalResponse<'_>) -> Value {
    serde_json::from_str(&body(response).await).expect("a JSON body")
}

/// `Sec-Fetch-Site: same-origin`, as a browser sends it with a request from the portal's own page.
pub fn same_origin() -> Header<'static> {
    Header::new("Sec-Fetch-Site", "same-origin")
}

/// The one-time link on a link page.
pub fn link_in(page: &str) -> String {
    let page = unescape_html(page);
    let at = page.find("/reset/").expect("the page shows a /reset/ link");
    let token: String = page[at + "/reset/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    format!("/reset/{token}")
}

/// Runs one statement with a bound text (`$1`) and id (`$2`) on the store at `db_url`, behind
/// the app's back: for a value the portal itself would refuse to write.
pub async fn write_on_store(db_url: &str, sql: &str, text: &str, id: i64) {
    if db_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(db_url).await.expect("the store opens");
        sqlx::query(sql).bind(text).bind(id).execute(&pool).await.expect("the statement runs");
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(db_url).await.expect("the store opens");
        sqlx::query(sql).bind(text).bind(id).execute(&pool).await.expect("the statement runs");
        pool.close().await;
    }
}

/// Runs one statement with one bound id on the store at `db_url`, behind the app's back: for
/// rows the portal itself would no longer write (a name from before a rule).
pub async fn execute_on_store(db_url: &str, sql: &str, id: i64) {
    if db_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(db_url).await.expect("the store opens");
        sqlx::query(sql).bind(id).execute(&pool).await.expect("the statement runs");
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(db_url).await.expect("the store opens");
        sqlx::query(sql).bind(id).execute(&pool).await.expect("the statement runs");
        pool.close().await;
    }
}

pub fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", RawStr::new(k).percent_encode(), RawStr::new(v).percent_encode()))
        .collect::<Vec<_>>()
        .join("&")
}

/// The value of `<input type="hidden" name="NAME" value="…">` in a page.
pub fn extract_hidden(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(unescape_html(&page[start..end]))
}

/// An attribute value as a browser reads it: character references decoded (numeric ones,
/// and the named ones an escaper uses).
pub fn unescape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity.strip_prefix('#').and_then(|n| {
                match n.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => n.parse().ok(),
                }
                .and_then(char::from_u32)
            }),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

pub fn set_cookies<'a>(response: &'a LocalResponse<'_>) -> Vec<Cookie<'a>> {
    response.headers().get("Set-Cookie").filter_map(|h| Cookie::parse_encoded(h).ok()).collect()
}

/// The session cookie a response set, under either of its names (`__Host-` behind TLS).
pub fn session_cookie(response: &LocalResponse<'_>) -> Option<Cookie<'static>> {
    let names = [session_cookie_name(), secure_session_cookie_name()];
    set_cookies(response)
        .into_iter()
        .find(|c| names.contains(&c.name()) && !c.value().is_empty())
        .map(|c| c.into_owned())
}

pub fn location<'a>(response: &'a LocalResponse<'_>) -> Option<&'a str> {
    response.headers().get_one("Location")
}

pub fn assert_is_redirect_to(response: &LocalResponse<'_>, to: &str) {
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(location(response), Some(to));
}

/// An HTTP client for the real binary that, like the local client, never follows redirects.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("an HTTP client")
}

/// `name=value` pairs of a real server's Set-Cookie headers (empty values are removals).
pub fn cookie_pairs(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .filter(|pair| !pair.ends_with('='))
        .collect()
}

/// The real binary's login form as a browser fetched it: its CSRF cookie and token go back
/// with every post.
pub struct LoginForm<'c> {
    http: &'c reqwest::Client,
    base: String,
    jar: String,
    pub token: String,
}

impl<'c> LoginForm<'c> {
    /// `GET {base}/login`.
    pub async fn fetch(http: &'c reqwest::Client, base: &str) -> LoginForm<'c> {
        let page = http.get(format!("{base}/login")).send().await.expect("the login page");
        let jar = cookie_pairs(&page).join("; ");
        let token =
            extract_hidden(&page.text().await.expect("its body"), "csrf_token").expect("a CSRF token");
        LoginForm { http, base: base.to_owned(), jar, token }
    }

    /// `POST {base}/login` with the CSRF token, then `fields`.
    pub fn post(&self, fields: &[(&str, &str)]) -> impl std::future::Future<Output = reqwest::Response> {
        self.post_to("/login", fields)
    }

    /// `POST {base}{path}` (another signed-out form: `/reset`) with the CSRF token, then `fields`.
    pub fn post_to(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> impl std::future::Future<Output = reqwest::Response> {
        let mut all = vec![("csrf_token", self.token.as_str())];
        all.extend_from_slice(fields);
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, &self.jar)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_body(&all));
        async move { request.send().await.expect("an answer") }
    }
}
