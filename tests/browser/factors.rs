//! The second factor in a real browser: a passkey added on `/account` with Chromium's
//! virtual authenticator and used to sign in; an authenticator app set up by reading the
//! secret from the page, then a sign-in with its code; a recovery code that works once; and
//! the new pages on a desktop and a phone.

use fantoccini::Locator;
use portal::auth::factors::totp::{code_at, step_of, PERIOD};
use portal_testkit::PASSWORD;

use crate::harness::Browser;
use crate::World;

fn now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    i64::try_from(since.as_secs()).expect("a sane clock")
}

/// What `/api/me` says to this browser.
async fn me(world: &World, browser: &Browser) -> serde_json::Value {
    browser.goto(&world.url("/api/me")).await;
    let text = browser.client.find(Locator::Css("body")).await.expect("a body").text().await.expect("text");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("/api/me is JSON: {text}"))
}

async fn log_out(browser: &Browser) {
    browser.click_button("Log out").await;
    browser.wait_for_text("You were signed out.").await;
}

async fn password_first(world: &World, browser: &Browser, username: &str) {
    browser.goto(&world.url("/login")).await;
    browser.type_into("#username", username).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click_button("Log in").await;
}

/// The texts of the list `#recovery-codes` shows.
async fn shown_codes(browser: &Browser) -> Vec<String> {
    let items = browser.client.find_all(Locator::Css("#recovery-codes li")).await.expect("the codes");
    let mut codes = Vec::new();
    for item in items {
        codes.push(item.text().await.expect("a code"));
    }
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_added_on_the_account_page_signs_in_with_the_button_at_level_two() {
    let world = World::start_at_its_url(&["alice"]).await;
    let browser = world.driver.browser().await;
    let authenticator = browser.add_virtual_authenticator();
    crate::sign_in_with_password(&world, &browser, "alice").await;
    browser.goto(&world.url("/account")).await;
    browser.wait_for_text("Passkeys").await;
    browser.type_into("#passkey-name", "This laptop").await;
    browser.click_button("Add a passkey").await;
    browser.wait_for_text("Your passkey is added").await;
    assert_eq!(shown_codes(&browser).await.len(), 10, "the first second factor's recovery codes");
    browser.screenshot("passkey-added-codes").await;
    browser.click_link("I saved them: continue").await;
    let account = browser.wait_for_text("This laptop").await;
    assert!(account.text.contains("last used never"), "{}", account.text);
    browser.screenshot("account-with-passkey").await;
    let held = browser.virtual_credentials(&authenticator);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        held[0]["isResidentCredential"], true,
        "a discoverable credential, for sign-in without a username"
    );
    log_out(&browser).await;

    // The login page offers the passkey. The username field's autofill asks at once (and
    // fails here: the authenticator cannot verify anyone yet); then the button signs in
    // without a username.
    browser.set_user_verified(&authenticator, false);
    browser.goto(&world.url("/login?next=%2Faccount")).await;
    browser.wait_for_text("Sign in with a passkey").await;
    browser.screenshot("login-with-passkey").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        browser.wait_until("the login page", |_| true).await.path.starts_with("/login"),
        "nobody verified"
    );
    browser.set_user_verified(&authenticator, true);
    browser.click_button("Sign in with a passkey").await;
    let page = browser.wait_for_path("/account").await;
    assert!(page.text.contains("Signed in as alice"), "{}", page.text);
    let me = me(&world, &browser).await;
    assert_eq!(me["aal"], 2);
    assert_eq!(me["methods"], serde_json::json!(["passkey"]));

    // The username field's autofill (conditional UI) signs in as soon as the page asks.
    browser.goto(&world.url("/account")).await;
    log_out(&browser).await;
    browser.goto(&world.url("/login?next=%2Faccount")).await;
    let page = browser.wait_for_path("/account").await;
    assert!(page.text.contains("Signed in as alice"), "{}", page.text);
    assert!(
        browser.console().iter().all(|line| !line.contains("Content Security Policy")),
        "{:?}",
        browser.console()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_set_up_from_the_page_gives_codes_and_a_recovery_code_works_once() {
    let world = World::start_at_its_url(&["bob"]).await;
    let browser = world.driver.browser().await;
    crate::sign_in_with_password(&world, &browser, "bob").await;
    browser.goto(&world.url("/account")).await;
    browser.click_button("Set up an authenticator app").await;
    let setup = browser.wait_for_path("/account/totp").await;
    assert!(setup.text.contains("Scan this code"), "{}", setup.text);
    browser.screenshot("totp-setup").await;
    let secret =
        browser.client.find(Locator::Css("#totp-secret")).await.expect("the secret").text().await.unwrap();
    let href = browser.attr("a.qr", "href").await.expect("the otpauth link");
    assert!(href.starts_with("otpauth://totp/") && href.contains(&format!("secret={secret}")), "{href}");
    let secret = totp_rs::Secret::Encoded(secret).to_bytes().expect("base32");
    browser.type_into("#code", &code_at(&secret, step_of(now())).unwrap()).await;
    browser.click_button("Turn on").await;
    browser.wait_for_text("Your recovery codes").await;
    let codes = shown_codes(&browser).await;
    assert_eq!(codes.len(), 10);
    browser.screenshot("recovery-codes").await;
    browser.click_link("I saved them: continue").await;
    browser.wait_for_text("On: a 6-digit code from your app.").await;
    log_out(&browser).await;

    // A password is the first step; the app's code the second.
    password_first(&world, &browser, "bob").await;
    let step = browser.wait_for_path("/login/second-factor").await;
    assert!(step.text.contains("Signing in as bob"), "{}", step.text);
    browser.screenshot("second-step").await;
    assert_eq!(me(&world, &browser).await["error"], "not signed in", "nobody yet");
    browser.goto(&world.url("/login/second-factor")).await;
    // The next step's code: the one used at setup may still be the current step's.
    browser.type_into("#code", &code_at(&secret, step_of(now() + PERIOD)).unwrap()).await;
    browser.click_button("Continue").await;
    browser.wait_for_text("You are now signed in.").await;
    assert_eq!(me(&world, &browser).await["methods"], serde_json::json!(["pwd", "otp"]));
    browser.goto(&world.url("/")).await;
    log_out(&browser).await;

    // A recovery code works once.
    password_first(&world, &browser, "bob").await;
    browser.wait_for_path("/login/second-factor").await;
    browser.type_into("#code", &codes[0]).await;
    browser.click_button("Continue").await;
    browser.wait_for_text("You are now signed in.").await;
    log_out(&browser).await;
    password_first(&world, &browser, "bob").await;
    browser.wait_for_path("/login/second-factor").await;
    browser.type_into("#code", &codes[0]).await;
    browser.click_button("Continue").await;
    browser.wait_for_text("That code is not right.").await;
    browser.screenshot("second-step-wrong-code").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_factor_pages_fit_a_phone_screen() {
    let world = World::start_at_its_url(&["carol"]).await;
    let phone = world.driver.browser().await;
    phone.client.set_window_size(390, 844).await.expect("a phone-sized window");
    crate::sign_in_with_password(&world, &phone, "carol").await;
    phone.goto(&world.url("/account")).await;
    phone.click_button("Set up an authenticator app").await;
    phone.wait_for_path("/account/totp").await;
    fits(&phone, "phone-totp-setup").await;
    let secret = phone.client.find(Locator::Css("#totp-secret")).await.unwrap().text().await.unwrap();
    let secret = totp_rs::Secret::Encoded(secret).to_bytes().expect("base32");
    phone.type_into("#code", &code_at(&secret, step_of(now())).unwrap()).await;
    phone.click_button("Turn on").await;
    phone.wait_for_text("Your recovery codes").await;
    fits(&phone, "phone-recovery-codes").await;
    phone.click_link("I saved them: continue").await;
    phone.wait_for_text("Two-step sign-in").await;
    fits(&phone, "phone-account").await;
    log_out(&phone).await;
    password_first(&world, &phone, "carol").await;
    phone.wait_for_path("/login/second-factor").await;
    fits(&phone, "phone-second-step").await;
    phone.goto(&world.url("/login")).await;
    fits(&phone, "phone-login").await;
}

/// Saves a screenshot, and checks that the page does not scroll sideways.
async fn fits(phone: &Browser, name: &str) {
    phone.screenshot(name).await;
    let widths = phone
        .client
        .execute("return [innerWidth, document.documentElement.scrollWidth];", vec![])
        .await
        .expect("the widths");
    let [viewport, page] = serde_json::from_value::<[f64; 2]>(widths).expect("two numbers");
    assert!(viewport <= 400.0, "{name}: a phone-sized viewport, not {viewport}");
    assert!(page <= viewport, "{name}: the page scrolls sideways ({page} > {viewport})");
}
