//! The portal in a real browser: headless Chromium, driven through chromedriver, against the
//! real `portal` binary and fake Google and GitHub (and an SMTP sink) on loopback.
//!
//! Rocket's local client ignores `SameSite`, `Secure` and `Path` and never follows
//! redirects; a browser does all of that. The portal is opened as `http://localhost:PORT`
//! while the providers (and the attacker) live on `http://127.0.0.1:OTHER`, so leaving for a
//! provider and coming back is a genuinely cross-site trip.
//!
//! Run with `cargo test --features browser --test browser` (needs `/usr/bin/chromium` and
//! `/usr/bin/chromedriver`, and for single sign-on across subdomains Debian's nginx:
//! `bash .ci/proxy-deps.sh`). Screenshots land in `target/browser-artifacts/`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod elsewhere;
mod factors;
mod harness;
mod mail;
mod oidc;
// nginx and the gated portal, as the proxy suite starts them (the same shipped files).
use portal_testkit::proxy;

use crate::elsewhere::Elsewhere;
use crate::harness::{start_portal, Browser, Driver};
use portal_testkit::fakes::{FakeGithub, FakeGoogle, GITHUB_EMAIL, GITHUB_LOGIN, GOOGLE_EMAIL};
use portal_testkit::oidc::FakeOidc;
use portal_testkit::process::Portal;
use portal_testkit::{session_cookie_name, PASSWORD};

const NEED_LOGIN: &str = "You need to log in first.";

/// Everything one test function shares: chromedriver, the providers, the portal.
struct World {
    // Fields drop in this order: the portal first, chromedriver last.
    portal: Portal,
    _google: FakeGoogle,
    _github: FakeGithub,
    alpha: FakeOidc,
    driver: Driver,
}

impl World {
    async fn start(users: &[&str]) -> World {
        World::start_with_admins(users, &[]).await
    }

    async fn start_with_admins(users: &[&str], admins: &[&str]) -> World {
        World::start_as(users, admins, false).await
    }

    /// With `public_url` at the portal's own address: passkeys on.
    async fn start_at_its_url(users: &[&str]) -> World {
        World::start_as(users, &[], true).await
    }

    async fn start_as(users: &[&str], admins: &[&str], at_its_url: bool) -> World {
        let driver = Driver::start().await;
        let google = FakeGoogle::start().await;
        google.serve_consent().await;
        let github = FakeGithub::start().await;
        github.serve_consent().await;
        let alpha = FakeOidc::start("alpha").await;
        alpha.with(|s| s.iss_parameter = true);
        let portal = start_portal(&google, &github, &alpha, users, admins, at_its_url);
        World { portal, _google: google, _github: github, alpha, driver }
    }

    /// `http://localhost:PORT{path}`: the portal's own site.
    fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.portal.port)
    }
}

/// Signs in through the login form, as a person types it.
async fn sign_in_with_password(world: &World, browser: &Browser, username: &str) {
    browser.goto(&world.url("/login?next=%2Fwelcome")).await;
    browser.type_into("#username", username).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click_button("Log in").await;
    browser.wait_for_path("/welcome").await;
    browser.wait_for_text(&format!("Welcome, {username}!")).await;
}

/// Scenarios 1 to 4: the flash on the way to the login page, a wrong and a right password,
/// the session cookie's attributes, and logging out. Also the error page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_and_out_with_a_password() {
    let world = World::start(&["alice"]).await;

    // 1. A protected page while signed out: the login page says why, once.
    {
        let browser = world.driver.browser().await;
        browser.goto(&world.url("/welcome")).await;
        let page = browser.wait_for_path("/login?next=%2Fwelcome").await;
        assert!(page.text.contains(NEED_LOGIN), "the flash is shown: {page:#?}");
        assert!(page.text.contains("Sign in with Google") && page.text.contains("Sign in with GitHub"));
        // What a password manager looks for.
        assert_eq!(browser.attr("#username", "autocomplete").await.as_deref(), Some("username"));
        assert_eq!(browser.attr("#password", "autocomplete").await.as_deref(), Some("current-password"));
        assert_eq!(browser.attr("#password", "type").await.as_deref(), Some("password"));
        browser.screenshot("login").await;

        browser.reload().await;
        let page = browser.wait_until("the reloaded login page", |p| p.text.contains("Log in")).await;
        assert!(!page.text.contains(NEED_LOGIN), "the flash is gone after a reload: {page:#?}");
    }

    // 2 and 3. A wrong password, then the right one.
    {
        let browser = world.driver.browser().await;
        browser.goto(&world.url("/login?next=%2Fwelcome")).await;
        browser.type_into("#username", "alice").await;
        browser.type_into("#password", "not the password at all").await;
        browser.click_button("Log in").await;
        let page = browser.wait_for_text("Invalid username or password.").await;
        assert_eq!(page.path, "/login");
        assert_eq!(browser.prop("#username", "value").await.as_deref(), Some("alice"), "the name is kept");
        assert_eq!(browser.prop("#password", "value").await.as_deref(), Some(""), "the password is not");
        assert!(browser.cookie(session_cookie_name()).await.is_none());

        browser.type_into("#password", PASSWORD).await;
        browser.click_button("Log in").await;
        let page = browser.wait_for_path("/welcome").await;
        assert!(page.text.contains("Welcome, alice!"), "{page:#?}");
        assert!(browser.topbar().await.contains("Signed in as alice"), "the top bar names the user");
        assert!(page.text.contains("Password"), "the method is shown: {page:#?}");
        browser.screenshot("welcome").await;

        let cookie = browser.cookie(session_cookie_name()).await.expect("a session cookie");
        assert_eq!(cookie.http_only(), Some(true), "{cookie:?}");
        assert!(cookie.same_site().is_some_and(|s| s.is_lax()), "SameSite=Lax: {cookie:?}");
        assert_eq!(cookie.path(), Some("/"), "{cookie:?}");
        let script_sees = browser.client.execute("return document.cookie", vec![]).await.unwrap();
        assert!(
            !script_sees.to_string().contains(session_cookie_name()),
            "script cannot read it: {script_sees}"
        );
    }

    // 4. Log out from the top bar; nothing signed-in comes back.
    {
        let browser = world.driver.browser().await;
        sign_in_with_password(&world, &browser, "alice").await;
        browser.click_button("Log out").await;
        let page = browser.wait_for_path("/").await;
        assert!(page.text.contains("You were signed out."), "{page:#?}");
        assert!(browser.topbar().await.contains("Log in"), "{page:#?}");
        assert!(browser.cookie(session_cookie_name()).await.is_none(), "the cookie is gone");

        // Back to where /welcome was: it is fetched again (no-store), not shown from cache.
        browser.back().await;
        let page = browser.wait_until("the back button to settle", |p| p.path != "/").await;
        assert!(!page.text.contains("Welcome, alice"), "the back button showed a signed-in page: {page:#?}");
        assert_eq!(page.path, "/login?next=%2Fwelcome", "{page:#?}");

        browser.goto(&world.url("/welcome")).await;
        let page = browser.wait_for_path("/login?next=%2Fwelcome").await;
        assert!(page.text.contains(NEED_LOGIN), "{page:#?}");
    }

    // An error page, in the site's layout.
    {
        let browser = world.driver.browser().await;
        browser.goto(&world.url("/no-such-page")).await;
        let page = browser.wait_for_text("There is no page at this address.").await;
        assert!(page.text.contains("ERROR 404") && page.text.contains("Not Found"), "{page:#?}");
        assert!(page.text.contains("Portal"), "the site's layout: {page:#?}");
        browser.screenshot("error-404").await;
    }
}

/// 9. Login CSRF: another site submits the login form with valid credentials (the
/// attacker's own, say). The browser must not end up signed in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_form_posted_from_another_site_signs_nobody_in() {
    let world = World::start(&["mallory"]).await;
    let attacker = Elsewhere::start().await;
    attacker.serve_login_csrf(&world.url("/login"), "mallory", PASSWORD).await;

    let browser = world.driver.browser().await;
    // The victim has been to the portal before (so holds its CSRF cookie).
    browser.goto(&world.url("/login")).await;
    browser.wait_for_text("Log in").await;

    browser.goto(&attacker.on_127("/prize")).await;
    let page = browser
        .wait_until("the portal's answer to the forged form", |p| {
            p.url.starts_with(&world.url("/login")) && p.text.contains("refused")
        })
        .await;
    assert!(page.text.contains("That request was refused."), "{page:#?}");
    assert!(browser.topbar().await.contains("Log in"), "not signed in: {page:#?}");
    assert!(browser.cookie(session_cookie_name()).await.is_none(), "no session cookie");

    browser.goto(&world.url("/welcome")).await;
    let page = browser.wait_for_path("/login?next=%2Fwelcome").await;
    assert!(page.text.contains(NEED_LOGIN), "{page:#?}");
}

/// Why the portal's cookies are `SameSite=Lax` and not Rocket's default `Strict`, shown on a
/// server of our own: a chain that starts on one site (`127.0.0.1`, like a provider's consent
/// page) and lands on another (`localhost`, like the portal's callback), which sets cookies
/// and redirects. The browser keeps both cookies but does not send the `Strict` one on the
/// redirect that follows, so a `Strict` session cookie set by the OAuth callback would be
/// missing on the page after it: the person would arrive signed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_cookie_set_at_the_end_of_a_cross_site_chain_is_not_sent_on_its_redirect() {
    let driver = Driver::start().await;
    let lab = Elsewhere::start().await;
    lab.serve_samesite_lab().await;
    let browser = driver.browser().await;

    browser.goto(&lab.on_127("/lab/start")).await;
    browser.click_link("Go to the other site").await;
    let page = browser.wait_for_text("Cookies received:").await;
    assert!(page.url.starts_with(&lab.on_localhost("/lab/show")), "{page:#?}");
    assert!(page.text.contains("lab_lax=1"), "the Lax cookie arrives: {page:#?}");
    assert!(!page.text.contains("lab_strict=1"), "the Strict cookie does not: {page:#?}");

    // It was stored all the same: opened directly, the page gets both.
    browser.goto(&lab.on_localhost("/lab/show")).await;
    let page = browser.wait_for_text("Cookies received:").await;
    assert!(page.text.contains("lab_strict=1") && page.text.contains("lab_lax=1"), "{page:#?}");
}

/// 5 to 8: signing in with Google and GitHub through their (fake) pages, cancelling there,
/// and `next` surviving the trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_with_google_and_github() {
    let world = World::start(&[]).await;

    // 5. Google.
    {
        let browser = world.driver.browser().await;
        browser.goto(&world.url("/login")).await;
        browser.click_link("Sign in with Google").await;
        let page = browser.wait_for_text("Google (fake)").await;
        assert!(page.url.starts_with("http://127.0.0.1:"), "another site: {page:#?}");
        browser.click_button("Allow").await;
        let page = browser.wait_for_path("/welcome").await;
        assert!(page.url.starts_with(&world.url("/welcome")), "{page:#?}");
        assert!(page.text.contains("Welcome, grace.hopper!"), "signed in on arrival: {page:#?}");
        assert!(page.text.contains(GOOGLE_EMAIL) && page.text.contains("Google"), "{page:#?}");
        let cookie = browser.cookie(session_cookie_name()).await.expect("a session cookie");
        assert!(cookie.same_site().is_some_and(|s| s.is_lax()), "{cookie:?}");
    }

    // 6. GitHub.
    {
        let browser = world.driver.browser().await;
        browser.goto(&world.url("/login")).await;
        browser.click_link("Sign in with GitHub").await;
        browser.wait_for_text("GitHub (fake)").await;
        browser.click_button("Allow").await;
        let page = browser.wait_for_path("/welcome").await;
        assert!(page.text.contains(&format!("Welcome, {GITHUB_LOGIN}!")), "{page:#?}");
        assert!(page.text.contains(GITHUB_EMAIL) && page.text.contains("GitHub"), "{page:#?}");
    }

    // 6b. A third provider, any OpenID one (it sends RFC 9207's `iss` back), then signing
    // out of the portal and of it: the provider's back-channel logout ends the session.
    {
        let browser = world.driver.browser().await;
        browser.goto(&world.url("/login")).await;
        browser.click_link("Sign in with Alpha").await;
        browser.wait_for_text("Alpha (fake)").await;
        browser.click_link("Allow").await;
        let page = browser.wait_for_path("/welcome").await;
        assert!(page.text.contains("Welcome, alpha-user!"), "{page:#?}");
        assert!(page.text.contains("Alpha"), "signed in with Alpha: {page:#?}");
        browser.screenshot("upstream-oidc-welcome").await;
        let token = world.alpha.logout_token(serde_json::json!({ "sid": "sid-alpha-1" }), None);
        let answer = reqwest::Client::new()
            .post(world.url("/auth/alpha/backchannel-logout"))
            .form(&[("logout_token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        browser.goto(&world.url("/welcome")).await;
        let page = browser.wait_for_path("/login?next=%2Fwelcome").await;
        assert!(page.text.contains(NEED_LOGIN), "the provider's logout ended the session: {page:#?}");
    }

    // 7. Deny at the provider: the message set by the callback survives the cross-site chain.
    {
        let browser = world.driver.browser().await;
        for name in ["Google", "GitHub"] {
            browser.goto(&world.url("/login")).await;
            browser.click_link(&format!("Sign in with {name}")).await;
            browser.wait_for_text(&format!("{name} (fake)")).await;
            browser.click_button("Deny").await;
            let said = format!("Sign-in cancelled: {name} did not share your account.");
            let page = browser
                .wait_until(&format!("the login page saying {said:?}"), |p| {
                    p.path == "/login" && p.text.contains(&said)
                })
                .await;
            assert!(browser.topbar().await.contains("Log in"), "{page:#?}");
            assert!(browser.cookie(session_cookie_name()).await.is_none());
        }
    }

    // 8. `next`: a protected page, then GitHub from the login page, lands on that page.
    {
        let browser = world.driver.browser().await;
        browser.goto(&world.url("/account")).await;
        let page = browser.wait_for_path("/login?next=%2Faccount").await;
        assert!(page.text.contains(NEED_LOGIN), "{page:#?}");
        browser.click_link("Sign in with GitHub").await;
        browser.wait_for_text("GitHub (fake)").await;
        browser.click_button("Allow").await;
        let page = browser.wait_for_path("/account").await;
        assert!(page.text.contains("Your account"), "{page:#?}");
        assert!(browser.topbar().await.contains(&format!("Signed in as {GITHUB_LOGIN}")), "{page:#?}");
    }
}

/// 10. The account page: a password user connects Google, then GitHub.
///
/// Chromium applies the CSP's `form-action` to the redirects that follow a form POST, so with
/// `form-action 'self'` the redirect from `POST /account/connect/<provider>` to the
/// provider is blocked and the button does nothing (the console says so); this test fails
/// until the providers' authorize origins are allowed there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_google_and_github_on_the_account_page() {
    let world = World::start(&["dora"]).await;
    let browser = world.driver.browser().await;
    sign_in_with_password(&world, &browser, "dora").await;

    browser.goto(&world.url("/account")).await;
    let page = browser.wait_for_text("Your account").await;
    assert!(!page.text.contains("Connected as"), "{page:#?}");

    browser.click_button("Connect Google").await;
    browser.wait_for_text("Google (fake)").await;
    browser.click_button("Allow").await;
    let page = browser.wait_for_text(&format!("Connected as {GOOGLE_EMAIL}")).await;
    assert_eq!(page.path, "/account");
    assert!(page.text.contains("Your Google account is connected."), "{page:#?}");
    assert!(browser.topbar().await.contains("Signed in as dora"), "still dora: {page:#?}");

    browser.click_button("Connect GitHub").await;
    browser.wait_for_text("GitHub (fake)").await;
    browser.click_button("Allow").await;
    let page = browser.wait_for_text(&format!("Connected as {GITHUB_EMAIL}")).await;
    assert!(page.text.contains(&format!("Connected as {GOOGLE_EMAIL}")), "both are listed: {page:#?}");
    assert!(page.text.contains("Your GitHub account is connected."), "{page:#?}");
    assert!(browser.topbar().await.contains("Signed in as dora"), "{page:#?}");
    browser.screenshot("account").await;
}

/// Sessions as records: one person in two browsers sees two devices on the account page,
/// signs the other out from the first, and the second lands on the login page on its next
/// navigation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_another_device_out_from_the_account_page() {
    let world = World::start(&["dora"]).await;
    let laptop = world.driver.browser().await;
    let phone = world.driver.browser().await;
    sign_in_with_password(&world, &laptop, "dora").await;
    sign_in_with_password(&world, &phone, "dora").await;

    laptop.goto(&world.url("/account")).await;
    let page = laptop.wait_for_text("Where you are signed in").await;
    assert!(page.text.contains("This device"), "{page:#?}");
    let signed_in = laptop.client.find_all(fantoccini::Locator::Css(".session-row")).await.unwrap();
    assert_eq!(signed_in.len(), 2, "two devices: {page:#?}");
    laptop.screenshot("account-sessions").await;

    laptop.click_button("Sign out").await;
    let page = laptop.wait_for_text("That device is signed out.").await;
    assert_eq!(page.path, "/account");
    assert!(page.text.contains("Where you are signed in"));

    phone.goto(&world.url("/welcome")).await;
    let page = phone.wait_for_path("/login?next=%2Fwelcome").await;
    assert!(page.text.contains(NEED_LOGIN), "{page:#?}");
    laptop.goto(&world.url("/welcome")).await;
    laptop.wait_for_text("Welcome, dora!").await;
}

/// The admin console: an administrator finds a user who is signed in in another browser and
/// disables them; that user's next page is the login page, with the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_disables_a_user_who_is_signed_in_elsewhere() {
    let world = World::start_with_admins(&["root", "bob", "carol"], &["root"]).await;
    let bob = world.driver.browser().await;
    sign_in_with_password(&world, &bob, "bob").await;

    let admin = world.driver.browser().await;
    sign_in_with_password(&world, &admin, "root").await;
    assert!(admin.topbar().await.contains("Admin"), "the top bar links the console");
    admin.click_link("Admin").await;
    let page = admin.wait_for_path("/admin").await;
    assert!(page.text.contains("carol") && page.text.contains("Live sessions"), "{page:#?}");
    admin.screenshot("admin-users").await;
    admin.type_into("#q", "BO").await;
    admin.click_button("Search").await;
    let page = admin.wait_for_path("/admin?q=BO").await;
    assert!(page.text.contains("bob") && !page.text.contains("carol"), "{page:#?}");
    admin.click_link("bob").await;
    let page = admin.wait_for_text("Where bob is signed in").await;
    assert!(page.text.contains("sign-in succeeded"), "bob's recent events: {page:#?}");
    admin.click_button("Disable and sign out").await;
    let page = admin.wait_for_text("bob is disabled and signed out everywhere.").await;
    assert!(page.text.contains("Not signed in anywhere.") && page.text.contains("Disabled"), "{page:#?}");
    admin.screenshot("admin-user").await;

    bob.goto(&world.url("/welcome")).await;
    let page = bob.wait_for_path("/login?next=%2Fwelcome").await;
    assert!(page.text.contains(NEED_LOGIN), "{page:#?}");
    bob.type_into("#username", "bob").await;
    bob.type_into("#password", PASSWORD).await;
    bob.click_button("Log in").await;
    bob.wait_for_text("This account is disabled.").await;

    admin.goto(&world.url("/admin/events")).await;
    let page = admin.wait_for_text("Audit log").await;
    assert!(page.text.contains("user disabled") && page.text.contains("root"), "{page:#?}");
    admin.screenshot("admin-events").await;
}

/// On a phone (390 CSS pixels wide) the console's wide tables fold into a card per row:
/// neither the page nor a table's box scrolls sideways, so nothing is cut off at the right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_tables_fit_a_phone_screen() {
    let world = World::start_with_admins(&["root", "bob", "carol"], &["root"]).await;
    let phone = world.driver.browser().await;
    phone.client.set_window_size(390, 844).await.expect("a phone-sized window");
    sign_in_with_password(&world, &phone, "root").await;
    for (path, name) in [("/admin", "phone-admin-users"), ("/admin/events", "phone-admin-events")] {
        phone.goto(&world.url(path)).await;
        phone.wait_for_path(path).await;
        phone.screenshot(name).await;
        let widths = phone
            .client
            .execute(
                "const wrap = document.querySelector('.table-wrap');
                 return [innerWidth, document.documentElement.scrollWidth,
                         wrap.clientWidth, wrap.scrollWidth,
                         wrap.getBoundingClientRect().right];",
                vec![],
            )
            .await
            .expect("the widths");
        let [viewport, page, wrap, table, right] =
            serde_json::from_value::<[f64; 5]>(widths).expect("five numbers");
        assert!(viewport <= 400.0, "{name}: a phone-sized viewport, not {viewport}");
        assert!(page <= viewport, "{name}: the page scrolls sideways ({page} > {viewport})");
        assert!(right <= viewport, "{name}: the table's box ends past the screen ({right})");
        assert!(table <= wrap, "{name}: the table is wider than its box ({table} in {wrap})");
    }
    phone.goto(&world.url("/admin")).await;
    phone.click_link("bob").await;
    phone.wait_for_text("Where bob is signed in").await;
    phone.screenshot("phone-admin-user").await;
}

/// An administrator creates a user and hands over the one-time link; opened in another
/// browser, it lets that person choose a password, and they are signed in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_a_user_who_follows_the_link_and_is_signed_in() {
    let world = World::start_with_admins(&["root"], &["root"]).await;
    let admin = world.driver.browser().await;
    sign_in_with_password(&world, &admin, "root").await;
    admin.goto(&world.url("/admin")).await;
    admin.click_link("New user").await;
    admin.wait_for_path("/admin/users/new").await;
    admin.type_into("#username", "erin").await;
    admin.type_into("#email", "erin@example.com").await;
    admin.click_button("Create user").await;
    admin.wait_for_text("erin is created").await;
    let link = admin.prop("#link", "value").await.expect("the link field");
    let expected = world.url("/reset/");
    assert!(link.starts_with(&expected) && link.len() == expected.len() + 43, "{link}");
    admin.screenshot("admin-link").await;

    let erin = world.driver.browser().await;
    erin.goto(&link).await;
    let page = erin.wait_for_text("Choose a password").await;
    assert!(page.text.contains("For erin."), "{page:#?}");
    assert_eq!(erin.attr("#new_password", "autocomplete").await.as_deref(), Some("new-password"));
    erin.screenshot("reset").await;
    erin.type_into("#new_password", "erin's own passphrase").await;
    erin.type_into("#confirm_password", "erin's own passphrase").await;
    erin.click_button("Set password and sign in").await;
    let page = erin.wait_for_text("Your password is set, and you are signed in.").await;
    assert_eq!(page.path, "/");
    assert!(erin.topbar().await.contains("Signed in as erin"));
    erin.goto(&world.url("/welcome")).await;
    erin.wait_for_text("Welcome, erin!").await;

    // The link worked once.
    let other = world.driver.browser().await;
    other.goto(&link).await;
    other.wait_for_text("This link does not work").await;
}

/// Single sign-on across subdomains: nginx with the shipped forward-auth snippets gates
/// `app.portal.test` and `other.portal.test` (Chromium resolves `*.portal.test` to
/// loopback); one sign-in at `auth.portal.test` opens both (the session cookie's domain is
/// `portal.test`), and one logout closes both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sign_in_opens_every_gated_application_and_one_logout_closes_them() {
    proxy::nginx_binary();
    let driver = Driver::start().await;
    let echo = proxy::Echo::start();
    let port = portal_testkit::process::free_port();
    let portal = proxy::gated_portal(port);
    let nginx = proxy::Nginx::with_config(
        port,
        &proxy::gate_http_body(port, portal.port, echo.port),
        &format!("auth.portal.test:{port}"),
    );
    let browser = driver.browser_with(&["--host-resolver-rules=MAP *.portal.test 127.0.0.1"]).await;
    let app = format!("http://app.portal.test:{port}/notes?id=7");
    let other = format!("http://other.portal.test:{port}/");

    browser.goto(&app).await;
    let page = browser.wait_for_text("Log in").await;
    assert!(page.url.starts_with(&format!("http://auth.portal.test:{port}/login?rd=")), "{page:#?}");
    browser.type_into("#username", "alice").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click_button("Log in").await;
    let page = browser.wait_for_text("Remote-User: alice").await;
    assert_eq!(page.url, app, "back at the application: {page:#?}\n{}", nginx.log());
    browser.screenshot("sso-app").await;
    let cookie = browser.cookie("portal_session").await.expect("the session cookie");
    assert_eq!(cookie.domain(), Some("portal.test"), "for every subdomain: {cookie:?}");

    browser.goto(&other).await;
    let page = browser.wait_for_text("Remote-User: alice").await;
    assert_eq!(page.url, other, "no second sign-in: {page:#?}");

    browser.goto(&format!("http://auth.portal.test:{port}/logout")).await;
    browser.wait_for_text("Log out").await;
    browser.click_button("Log out").await;
    browser.wait_for_text("You were signed out.").await;
    for gated in [&app, &other] {
        browser.goto(gated).await;
        let page = browser.wait_for_text("Log in").await;
        assert!(page.url.starts_with(&format!("http://auth.portal.test:{port}/login?rd=")), "{page:#?}");
    }
    drop(portal);
}
