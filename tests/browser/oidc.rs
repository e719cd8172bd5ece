//! The OpenID provider in Chromium: Apache's mod_auth_openidc in front of an echo
//! application, the real binary as the provider. Anonymous → the portal's login page →
//! the consent page (a screenshot) → Allow → the application with the claims → logout
//! through the module → signed out of the portal too.

use portal_testkit::process::free_port;
use portal_testkit::proxy::{self, openid_portal, openidc_apache, Echo};
use portal_testkit::PASSWORD;

use crate::harness::Driver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_to_an_application_behind_mod_auth_openidc_with_consent_and_out_again() {
    proxy::apache_binary();
    let driver = Driver::start().await;
    let echo = Echo::named("app");
    let (portal_port, apache_port) = (free_port(), free_port());
    let apache_base = format!("http://127.0.0.1:{apache_port}");
    let portal = openid_portal(portal_port, &apache_base);
    let apache = openidc_apache(apache_port, portal_port, echo.port);
    let browser = driver.browser().await;

    browser.goto(&format!("{apache_base}/protected/")).await;
    let page = browser.wait_for_text("Log in").await;
    assert!(page.url.starts_with(&format!("http://127.0.0.1:{portal_port}/login?next=")), "{page:#?}");
    browser.type_into("#username", "alice").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click_button("Log in").await;
    let page = browser.wait_for_text("Allow The Echo?").await;
    assert!(page.text.contains("Your username"), "{page:#?}");
    browser.screenshot("oidc-consent").await;
    browser.click_button("Allow").await;
    let page = browser.wait_for_text("OIDC_CLAIM_preferred_username: alice").await;
    assert_eq!(page.url, format!("{apache_base}/protected/"), "{page:#?}\n{}", apache.log());
    assert!(page.text.contains("served-by: app"));
    browser.screenshot("oidc-app").await;

    // The account page lists the application.
    browser.goto(&format!("http://127.0.0.1:{portal_port}/account")).await;
    browser.wait_for_text("Connected applications").await;
    browser.wait_for_text("The Echo").await;

    browser.goto(&format!("{apache_base}/protected/redirect_uri?logout={apache_base}/loggedout")).await;
    let page = browser.wait_for_text("path: /loggedout").await;
    assert_eq!(page.url, format!("{apache_base}/loggedout"));
    browser.goto(&format!("http://127.0.0.1:{portal_port}/welcome")).await;
    browser.wait_for_text("Log in").await;

    // Again: the consent is remembered, so the login form's redirects end at the application
    // (the login page's CSP lets its form lead there).
    browser.goto(&format!("{apache_base}/protected/")).await;
    browser.wait_for_text("Log in").await;
    browser.type_into("#username", "alice").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click_button("Log in").await;
    let page = browser.wait_for_text("OIDC_CLAIM_preferred_username: alice").await;
    assert_eq!(page.url, format!("{apache_base}/protected/"), "{page:#?}");
    drop(apache);
    drop(portal);
}
