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
//! and `floor --verify-ms` prints the median time of one portal password verification
//! (Argon2id through `portal::auth::password::Hasher`), for the script's hash limit.

// A bench helper that cannot set itself up should stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

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
fn verify_ms(n: usize) -> f64 {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let hasher = portal::auth::password::Hasher::new(1, 64).unwrap();
    let phc = portal::auth::password::hash_blocking("correct horse battery staple").unwrap();
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let start = Instant::now();
            let matched = runtime.block_on(hasher.verify("wrong".to_owned(), Some(phc.clone()))).unwrap();
            assert!(!matched);
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[n / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--verify-ms") {
        println!("{:.2}", verify_ms(11));
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
