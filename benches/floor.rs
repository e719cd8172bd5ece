//! The floor: the least a Rocket 0.5 app with the portal's guard shape can cost per request.
//! `bench/run.sh` serves it beside the portal and compares the two.
//!
//! A request guard reads a private cookie and forwards `401`; a `401` catcher redirects to
//! `/login`; `/welcome` is a tiny page; `/login` a small static one; `/signin` sets the
//! cookie. No database, no templates, no hashing: what is left is Rocket itself plus one
//! AES-GCM open per request.
//!
//! `cargo bench` runs every bench target, this one included, so it only serves when asked:
//!
//!     ROCKET_PORT=8002 ROCKET_SECRET_KEY=... floor --serve
//!
//! `floor --verify-ms [SECONDS]` prints the time of one portal password verification
//! (Argon2id) in reused working memory, as each verification runs while sign-ins are queued,
//! for the script's hash limit (the median of 11, or the mean over SECONDS of back-to-back
//! verifications); `floor --verify-ms-fresh` the median of 11 through `Hasher::verify` with
//! nobody queued, as a lone sign-in runs (its memory mapped afresh).
//!
//! `floor --second-step-fixture URL N` adds N users with an authenticator app to the portal's
//! store at URL (sealed under the key ROCKET_SECRET_KEY derives, as the portal seals them)
//! and prints `NAME SECRET` (base32) per line: the second-step row's users. Their passwords
//! are hashed with Argon2id at its smallest (8 KiB, one pass), so that the many first steps
//! the row needs cost nothing to set up: the row measures the second step, not the hash.

//!
//! `floor --oidc-fixture URL CLIENT REDIRECT N` adds, for the user `bench` and the client
//! CLIENT, N authorization codes (grants with `offline_access`, the code valid for an hour
//! rather than 60 s, so the row is not a race against the clock) and N refresh tokens, each of
//! its own grant, and prints `CODE<TAB>REFRESH_TOKEN` per line: the token endpoint's rows,
//! where every request must present a code or token no other request used.

// A bench helper that cannot set itself up should stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use portal::auth::password::{hash_blocking, verify_blocking, Hasher, WorkingMemory};

use rocket::form::Form;
use rocket::http::{Cookie, CookieJar, Status};
use rocket::outcome::IntoOutcome;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::content::RawHtml;
use rocket::response::Redirect;
use rocket::{catch, catchers, get, post, routes, Config, FromForm};

const COOKIE: &str = "floor_session";

const LOGIN_PAGE: &str = "<!doctype html><html><head><title>Sign in</title></head><body>\
<h1>Sign in</h1><form method=\"post\" action=\"/login\">\
<input name=\"username\"><input name=\"password\" type=\"password\"><button>Sign in</button>\
</form></body></html>";

/// Someone whose private cookie opened.
struct User(String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for User {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        request
            .cookies()
            .get_private(COOKIE)
            .map(|cookie| User(cookie.value().to_owned()))
            .or_forward(Status::Unauthorized)
    }
}

#[get("/welcome")]
fn welcome(user: User) -> RawHtml<String> {
    RawHtml(format!("<!doctype html><html><body><h1>Welcome, {}!</h1></body></html>", user.0))
}

#[get("/login")]
fn login_page() -> RawHtml<&'static str> {
    RawHtml(LOGIN_PAGE)
}

#[derive(FromForm)]
struct Credentials<'r> {
    username: &'r str,
    password: &'r str,
}

/// A plain comparison, like the Flask reference: what a form POST costs without a hash.
/// Either way the form comes back (200), as the portal's and Flask's do for a wrong password.
#[post("/login", data = "<form>")]
fn login(form: Form<Credentials<'_>>) -> RawHtml<&'static str> {
    let ok = form.username == "bench" && form.password == "no hash here";
    RawHtml(if ok { "<!doctype html><p>Signed in (not really).</p>" } else { LOGIN_PAGE })
}

#[get("/signin")]
fn signin(cookies: &CookieJar<'_>) -> Redirect {
    cookies.add_private(Cookie::new(COOKIE, "bench"));
    Redirect::to("/welcome")
}

#[get("/health")]
fn health() -> &'static str {
    "ok"
}

#[catch(401)]
fn unauthorized() -> Redirect {
    Redirect::to("/login")
}

/// The median of `n` wrong-password verifications through the portal's own hasher.
/// The median of `n` timed runs of `once`, in milliseconds.
fn median_ms(n: usize, mut once: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let start = Instant::now();
            once();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[n / 2]
}

/// One portal password verification, in working memory kept from the one before: what each
/// verification costs while sign-ins are queued. With `for_secs`, the mean over that many
/// seconds of back-to-back verifications (to set beside a load row of the same length, as
/// this machine's speed drifts); otherwise the median of 11.
fn verify_ms_reused(for_secs: Option<f64>) -> f64 {
    let phc = hash_blocking("correct horse battery staple").unwrap();
    let mut memory = WorkingMemory::default();
    assert!(verify_blocking("correct horse battery staple", &phc, &mut memory));
    let mut once = || assert!(!verify_blocking("wrong", &phc, &mut memory));
    let Some(secs) = for_secs else {
        return median_ms(11, once);
    };
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed().as_secs_f64() < secs || n == 0 {
        once();
        n += 1;
    }
    start.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
}

/// One portal password verification through `Hasher::verify` with nobody queued: a lone
/// sign-in, which maps its working memory afresh.
fn verify_ms_fresh(n: usize) -> f64 {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let hasher = Hasher::new(1, 64).unwrap();
    let phc = hash_blocking("correct horse battery staple").unwrap();
    median_ms(n, || {
        let matched = runtime.block_on(hasher.verify("wrong".to_owned(), Some(phc.clone()))).unwrap();
        assert!(!matched);
    })
}

/// The second-step row's password (bench/run.sh's).
const PASSWORD: &str = "bench: not a common password";

/// Users with an authenticator app, for the second-step row (see the module's comment).
fn second_step_fixture(url: &str, n: usize) {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use portal::auth::factors::totp;
    use portal::seal::Sealer;
    use portal::store::{NewUser, Store};
    let figment = portal::figment().merge(("databases.portal.url", url));
    let settings = portal::config::Settings::from_figment(&figment).expect("the portal's settings");
    let key = settings.factor_key.expect("ROCKET_SECRET_KEY is set");
    let sealer = Sealer::new(&key.0).expect("a sealing key");
    let tiny = argon2::Params::new(8, 1, 1, None).expect("Argon2 at its smallest");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, tiny);
    let salt = SaltString::encode_b64(b"second-step-row").expect("a salt");
    let hash = argon.hash_password(PASSWORD.as_bytes(), &salt).expect("a hash").to_string();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let store = Store::connect(url).await.expect("the store");
        let now = portal::clock::Clock::now(&portal::clock::SystemClock);
        let mut out = String::new();
        for i in 0..n {
            let name = format!("twostep{i}");
            let new = NewUser { username: &name, email: None, password_hash: Some(&hash), is_admin: false };
            let user = store.create_user(new, now).await.expect("a user");
            let secret = totp::new_secret();
            let sealed = sealer.seal(&user.id.to_be_bytes(), &secret).expect("sealed");
            assert!(store.put_pending_totp(user.id, &sealed, now).await.expect("stored"));
            assert!(store.confirm_totp(user.id, &sealed, 0, now, None).await.expect("confirmed"));
            out.push_str(&format!("{name} {}\n", totp::secret_text(&secret)));
        }
        print!("{out}");
    });
}

fn oidc_fixture(url: &str, client: &str, redirect: &str, n: usize) {
    use portal::auth::provider::{random_token, token_hash};
    use portal::store::{GrantRow, Store};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let store = Store::connect(url).await.expect("the store");
        let user = store.user_by_username("bench").await.expect("the store").expect("the user bench");
        let now = portal::clock::Clock::now(&portal::clock::SystemClock);
        let grant = |code: &str| GrantRow {
            id: random_token(),
            client_id: client.to_owned(),
            user_id: user.id,
            session_id: None,
            scopes: "openid profile offline_access".into(),
            nonce: None,
            auth_time: now,
            methods: "pwd".into(),
            aal: 1,
            code_hash: token_hash(code),
            code_expires_at: now + 3600,
            code_used_at: None,
            redirect_uri: redirect.to_owned(),
            code_challenge: None,
            offline: true,
            created_at: now,
            revoked_at: None,
        };
        let mut out = String::new();
        for _ in 0..n {
            let code = random_token();
            store.create_grant(&grant(&code)).await.expect("a grant");
            let refresh = random_token();
            let spent = grant(&random_token());
            store.create_grant(&spent).await.expect("a grant");
            let stored = token_hash(&refresh);
            store.take_code(&spent.id, Some((&stored, now + 86_400)), now).await.expect("a refresh token");
            out.push_str(&format!("{code}\t{refresh}\n"));
        }
        print!("{out}");
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--verify-ms") {
        let for_secs = args.get(at + 1).map(|s| s.parse().expect("--verify-ms SECONDS"));
        println!("{:.2}", verify_ms_reused(for_secs));
        return;
    }
    if args.iter().any(|a| a == "--verify-ms-fresh") {
        println!("{:.2}", verify_ms_fresh(11));
        return;
    }
    if let Some(at) = args.iter().position(|a| a == "--second-step-fixture") {
        let url = args.get(at + 1).expect("--second-step-fixture URL N");
        let n: usize = args.get(at + 2).and_then(|n| n.parse().ok()).expect("--second-step-fixture URL N");
        second_step_fixture(url, n);
        return;
    }
    if let Some(at) = args.iter().position(|a| a == "--oidc-fixture") {
        let arg = |k: usize| args.get(at + k).expect("--oidc-fixture URL CLIENT REDIRECT N");
        let n: usize = arg(4).parse().expect("--oidc-fixture URL CLIENT REDIRECT N");
        oidc_fixture(arg(1), arg(2), arg(3), n);
        return;
    }
    if !args.iter().any(|a| a == "--serve") {
        println!("floor: a server for bench/run.sh; start it with `--serve` (nothing to measure here)");
        return;
    }
    // Rocket's own configuration (ROCKET_PORT, ROCKET_SECRET_KEY, ...), quiet by default.
    let figment = Config::figment().merge(("log_level", "off"));
    let result = rocket::execute(
        rocket::custom(figment)
            .mount("/", routes![welcome, login_page, login, signin, health])
            .register("/", catchers![unauthorized])
            .launch(),
    );
    if let Err(e) = result {
        e.pretty_print();
        std::process::exit(1);
    }
}
