//! "Forgot password?" in a real browser: from the login page to the mail (read from the
//! test kit's SMTP sink, its HTML part opened in Chromium and screenshotted) to a new
//! password.

use portal_testkit::process::{free_port, Launch};
use portal_testkit::smtp::Sink;
use portal_testkit::PASSWORD;

use crate::harness::{artifacts_dir, Driver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_password_from_the_login_page_to_a_new_password() {
    let driver = Driver::start().await;
    let sink = Sink::start().await;
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let site = format!("http://localhost:{port}");
    let launch = Launch::in_checkout()
        .test_config(home.path())
        .env("ROCKET_LOG_LEVEL", "critical")
        .env("ROCKET_PUBLIC_URL", site.clone())
        .env("ROCKET_EMAIL", format!("{{smtp_url=\"{}\",from=\"Portal <portal@example.com>\"}}", sink.url()));
    let added =
        launch.run(&["users", "add", "alice", "--email", "alice@example.com"], &format!("{PASSWORD}\n"));
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let _portal = launch.serve(home, port);

    let browser = driver.browser().await;
    browser.goto(&format!("{site}/login")).await;
    browser.wait_for_text("Forgot password?").await;
    browser.screenshot("login-forgot-password").await;
    browser.click_link("Forgot password?").await;
    browser.wait_for_path("/reset").await;
    browser.wait_for_text("Enter your username or your email address.").await;
    browser.type_into("#login", "alice@example.com").await;
    browser.click_button("Send the link").await;
    let page = browser.wait_for_text("If an account matches, we sent a link").await;
    assert_eq!(page.path, "/reset");
    browser.screenshot("forgot-password-sent").await;

    // The message, as a mail client shows its HTML part.
    let mail = crate::harness::until("the reset mail", || {
        let received = sink.received();
        async move { received.into_iter().find(|m| m.subject() == "Reset your Portal password") }
    })
    .await;
    assert_eq!(mail.to, ["alice@example.com"]);
    let file = artifacts_dir().join("reset-mail.html");
    std::fs::write(&file, mail.html()).unwrap();
    browser.goto(&format!("file://{}", file.display())).await;
    browser.wait_for_text("Someone asked to reset the password of your Portal account.").await;
    browser.screenshot("reset-mail").await;

    // Its button leads to the portal's page for a new password.
    browser.click_link("Choose a new password").await;
    let page = browser.wait_for_text("Choose a password").await;
    assert!(page.path.starts_with("/reset/"), "{page:#?}");
    browser.type_into("#new_password", "a whole new passphrase").await;
    browser.type_into("#confirm_password", "a whole new passphrase").await;
    browser.click_button("Set password and sign in").await;
    let page = browser.wait_for_text("Your password is set, and you are signed in.").await;
    assert_eq!(page.path, "/");
    assert!(browser.topbar().await.contains("Signed in as alice"));
    browser.screenshot("reset-by-mail-signed-in").await;

    // The account page's email section: the address was confirmed by following the link.
    browser.goto(&format!("{site}/account#email")).await;
    browser.wait_for_text("alice@example.com · confirmed").await;
    browser.screenshot("account-email").await;
}
