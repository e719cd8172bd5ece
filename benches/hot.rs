//! The portal's hot paths, measured in process with criterion: the `next` check, the log
//! redaction, the session's timestamp check, whole requests through the real app (guard, store read,
//! template), one Argon2id verification, and one passkey assertion's check.
//!
//! Run with `cargo bench --bench hot`; BENCHMARKS.md has the numbers. The app is built the
//! way the tests build it (`portal::rocket_with`) on a temporary SQLite file with a fixed
//! secret key and a clock that stands still, so a session stays fresh for the whole run.

// A bench that cannot set itself up should stop loudly, as a test would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use portal::auth::next::safe_next;
use portal::auth::password::{hash_blocking, verify_blocking, Hasher, WorkingMemory};
use portal::auth::session::freshness;
use portal::auth::Auth;
use portal::clock::{Clock, ManualClock, SystemClock};
use portal::config::SessionSettings;
use portal::store::{NewUser, SessionRecord};
use portal::Overrides;
use rocket::figment::Figment;
use rocket::http::{ContentType, Cookie, RawStr, Status};
use rocket::local::asynchronous::Client;
use tokio::runtime::Runtime;

/// Fixed, so runs are comparable (a zero key would be refused by a release build).
const SECRET_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
const USERNAME: &str = "bench";
const PASSWORD: &str = "correct horse battery staple";

fn bench_safe_next(c: &mut Criterion) {
    let long = format!("/{}", "a".repeat(1500));
    let inputs = [
        ("plain", "/welcome"),
        ("query", "/account?tab=ids&q=%2Fx"),
        ("refused", "/%2F%2Fevil.example"),
        ("long", long.as_str()),
    ];
    let mut group = c.benchmark_group("safe_next");
    for (name, input) in inputs {
        group.bench_with_input(BenchmarkId::from_parameter(name), input, |b, input| {
            b.iter(|| safe_next(black_box(input)))
        });
    }
    group.finish();
}

/// The logger runs this on every line: a request line with nothing to blank must cost a scan.
fn bench_redact(c: &mut Criterion) {
    let inputs = [
        ("nothing to blank", "GET /welcome text/html:"),
        ("a route line", "Matched: (callback) GET /auth/<provider>?<query..> [1]"),
        (
            "a reset link",
            "POST /reset/q2Yh8v0rX_Ao-3s1bW9n4kLpZcT7uE6fGdJmHiKyQxR application/x-www-form-urlencoded:",
        ),
        ("a callback", "GET /auth/github?code=4/0AbCdEf&state=q2Yh8v0rX_Ao-3s1bW9n4kLpZc:"),
    ];
    let mut group = c.benchmark_group("logging::redact");
    for (name, input) in inputs {
        group.bench_with_input(BenchmarkId::from_parameter(name), input, |b, input| {
            b.iter(|| portal::logging::redact(black_box(input)).len())
        });
    }
    group.finish();
}

fn bench_freshness(c: &mut Criterion) {
    let settings = SessionSettings::default();
    let session = SessionRecord {
        id: "s".into(),
        user_id: 1,
        method: "password".into(),
        methods: "pwd".into(),
        aal: 1,
        created_at: 1_000,
        last_seen_at: 1_000,
        ended_at: None,
        client: "Firefox on Linux".into(),
        ip: None,
        persist: false,
        upstream_sid: None,
    };
    c.bench_function("session/freshness", |b| {
        b.iter(|| freshness(black_box(&session), black_box(&settings), black_box(1_030)))
    });
}

/// The real app on a temporary database, with one user and that user's session cookie.
struct App {
    runtime: Runtime,
    client: Client,
    session: Cookie<'static>,
    user_id: i64,
    _dir: tempfile::TempDir,
}

impl App {
    /// `tweak` adjusts the configuration (the tests' `spawn_with`).
    fn start(tweak: impl FnOnce(Figment) -> Figment) -> App {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("bench.sqlite").display());
        let figment = portal::figment()
            .merge(("databases.portal.url", url))
            .merge(("secret_key", SECRET_KEY))
            .merge(("log_level", "off"));
        let figment = tweak(figment);
        let clock = ManualClock::new(SystemClock.now());
        // `..default()` keeps this compiling when `Overrides` grows (fake providers, ...).
        #[allow(clippy::needless_update)]
        let overrides = Overrides { clock: Some(Arc::new(clock)), ..Overrides::default() };
        let (client, session, user_id) = runtime.block_on(async {
            let client = Client::untracked(portal::rocket_with(figment, overrides)).await.unwrap();
            let store = client.rocket().state::<Auth>().unwrap().store();
            let hash = hash_blocking(PASSWORD).unwrap();
            let user =
                NewUser { username: USERNAME, email: None, password_hash: Some(&hash), is_admin: false };
            let user_id = store.create_user(user, 0).await.unwrap().id;
            let session = sign_in(&client).await;
            (client, session, user_id)
        });
        App { runtime, client, session, user_id, _dir: dir }
    }

    /// One whole request, body included; checks the status so a broken setup cannot pass
    /// for a fast one.
    fn get(&self, uri: &'static str, cookie: Option<&Cookie<'static>>, expect: Status) -> usize {
        self.runtime.block_on(async {
            let mut request = self.client.get(uri);
            if let Some(cookie) = cookie {
                request = request.cookie(cookie.clone());
            }
            let response = request.dispatch().await;
            assert_eq!(response.status(), expect, "GET {uri}");
            response.into_bytes().await.map_or(0, |b| b.len())
        })
    }
}

/// Signs in through the form, as a browser would: the login page's CSRF cookie and token,
/// then the POST. Returns the session cookie, still sealed.
async fn sign_in(client: &Client) -> Cookie<'static> {
    let page = client.get("/login").dispatch().await;
    let csrf_cookie = page.cookies().get("portal_csrf").unwrap().clone().into_owned();
    let html = page.into_string().await.unwrap();
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let token = &html[start..start + html[start..].find('"').unwrap()];
    let body = [("csrf_token", token), ("username", USERNAME), ("password", PASSWORD)]
        .iter()
        .map(|(k, v)| format!("{k}={}", RawStr::new(v).percent_encode()))
        .collect::<Vec<_>>()
        .join("&");
    let response = client
        .post("/login")
        .header(ContentType::Form)
        .cookie(Cookie::new("portal_csrf", csrf_cookie.value().to_owned()))
        .body(body)
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::SeeOther, "signing in");
    let session = response.cookies().get("portal_session").unwrap();
    Cookie::new("portal_session", session.value().to_owned())
}

fn bench_requests(c: &mut Criterion) {
    let app = App::start(|figment| figment);
    let stranger = Cookie::new("portal_session", "not-a-sealed-cookie");
    let mut group = c.benchmark_group("request");
    group.bench_function("GET /welcome signed in", |b| {
        b.iter(|| app.get("/welcome", Some(&app.session), Status::Ok))
    });
    group.bench_function("GET /welcome signed out", |b| {
        b.iter(|| app.get("/welcome", None, Status::SeeOther))
    });
    group.bench_function("GET /welcome forged cookie", |b| {
        b.iter(|| app.get("/welcome", Some(&stranger), Status::SeeOther))
    });
    group.bench_function("GET /login", |b| b.iter(|| app.get("/login", None, Status::Ok)));
    // No guard, no template: what Rocket itself costs per request, for comparison.
    group.bench_function("GET /static/portal.css", |b| {
        b.iter(|| app.get("/static/portal.css", None, Status::Ok))
    });
    // A template and no guard: the 404 page.
    group.bench_function("GET /no-such-page (404 template)", |b| {
        b.iter(|| app.get("/no-such-page", None, Status::NotFound))
    });
    // The guard keeps the user it read for `session.cache_ttl` seconds, and this clock
    // stands still, so the row above never reads the store. Here every request does.
    let uncached = App::start(|figment| figment.merge(("session.cache_ttl", 0)));
    group.bench_function("GET /welcome signed in, session.cache_ttl=0", |b| {
        b.iter(|| uncached.get("/welcome", Some(&uncached.session), Status::Ok))
    });
    // The one store read such a request makes, alone.
    let store = app.client.rocket().state::<Auth>().unwrap().store();
    group.bench_function("store.user_by_id", |b| {
        b.iter(|| app.runtime.block_on(store.user_by_id(black_box(app.user_id))).unwrap().unwrap())
    });
    group.finish();
}

fn bench_argon2(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let hasher = Hasher::new(1, 64).unwrap();
    let phc = hash_blocking(PASSWORD).unwrap();
    let mut group = c.benchmark_group("argon2id");
    group.sample_size(20).sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(4));
    // A lone sign-in: nobody queued, so its working memory is mapped afresh.
    group.bench_function("Hasher::verify (m=19456,t=2,p=1)", |b| {
        b.iter(|| {
            let wrong = runtime.block_on(hasher.verify("wrong password".to_owned(), Some(phc.clone())));
            assert!(!wrong.unwrap());
        })
    });
    // Each verification while sign-ins are queued: the memory is handed on.
    let mut memory = WorkingMemory::default();
    group.bench_function("verify_blocking, reused memory (m=19456,t=2,p=1)", |b| {
        b.iter(|| assert!(!verify_blocking("wrong password", &phc, &mut memory)))
    });
    group.finish();
}

/// A passkey's check as the second step: `webauthn-rs` verifying an assertion (P-256 ECDSA,
/// the challenge, the origin, the flags and the counter) from the software passkey the tests
/// use. The answer is the same each time: what is measured is the check, not the ceremony.
fn bench_passkey(c: &mut Criterion) {
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    use webauthn_rs::prelude::{Url, Uuid, WebauthnBuilder};
    let origin = Url::parse("https://auth.example.com").unwrap();
    let webauthn = WebauthnBuilder::new("auth.example.com", &origin).unwrap().build().unwrap();
    let mut soft = SoftPasskey::new(true);
    let (options, state) =
        webauthn.start_passkey_registration(Uuid::new_v4(), "bench", "bench", None).unwrap();
    let answer = soft.do_registration(origin.clone(), options).unwrap();
    let passkey = webauthn.finish_passkey_registration(&answer, &state).unwrap();
    let (options, state) = webauthn.start_passkey_authentication(std::slice::from_ref(&passkey)).unwrap();
    let answer = soft.do_authentication(origin, options).unwrap();
    let mut group = c.benchmark_group("passkey");
    group.bench_function("finish_passkey_authentication (ES256)", |b| {
        b.iter(|| webauthn.finish_passkey_authentication(black_box(&answer), black_box(&state)).unwrap())
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = hot;
    config = config();
    targets = bench_safe_next, bench_redact, bench_freshness, bench_requests, bench_argon2, bench_passkey
}
criterion_main!(hot);
