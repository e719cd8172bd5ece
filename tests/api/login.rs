//! Form login: the page, right and wrong credentials, and what each costs.

use rocket::http::Status;

use portal_testkit::app::*;
use portal_testkit::PASSWORD;

#[rocket::async_test]
async fn anonymous_welcome_redirects_to_login_and_the_flash_shows_exactly_once() {
    let app = TestApp::spawn().await;

    let response = app.get("/welcome").await;
    assert_is_redirect_to(&response, "/login?next=%2Fwelcome");
    assert!(session_cookie(&response).is_none());

    let page = app.get("/login?next=%2Fwelcome").await.into_string().await.unwrap();
    assert!(page.contains("You need to log in first."), "{page}");
    assert_eq!(extract_hidden(&page, "next").as_deref(), Some("/welcome"), "{page}");

    let again = app.get("/login").await.into_string().await.unwrap();
    assert!(!again.contains("You need to log in first."), "the flash must show once");
}

#[rocket::async_test]
async fn the_login_form_has_labelled_fields_that_password_managers_understand() {
    let app = TestApp::spawn().await;
    let page = app.get("/login").await.into_string().await.unwrap();
    assert!(page.contains(r#"<label for="username">"#));
    assert!(page.contains(r#"<label for="password">"#));
    assert!(page.contains(r#"id="username" name="username" type="text""#));
    assert!(page.contains(r#"autocomplete="username""#));
    assert!(page.contains(r#"id="password" name="password" type="password" autocomplete="current-password""#));
}

#[rocket::async_test]
async fn right_password_sets_a_session_and_the_welcome_page_shows_the_user() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;

    let response = app.post_login("alice", PASSWORD).await;
    assert_is_redirect_to(&response, "/");
    let cookie = session_cookie(&response).expect("session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(rocket::http::SameSite::Lax));
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(cookie.secure(), None, "no Secure flag without TLS or secure_cookies");

    let welcome = app.get("/welcome").await;
    assert_eq!(welcome.status(), Status::Ok);
    let page = welcome.into_string().await.unwrap();
    assert!(page.contains("Welcome, alice!"), "{page}");
    assert!(page.contains("You are now signed in."), "the sign-in flash shows on the next page");
}

#[rocket::async_test]
async fn the_session_cookie_value_reveals_nothing() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let cookie = app.sign_in("alice", PASSWORD).await;
    // Quotes and braces never occur in the sealed (base64) value, so these cannot match by chance.
    for leak in ["alice", "\"uid\"", "\"epoch\"", "{"] {
        assert!(!cookie.value().contains(leak), "cookie shows {leak:?}");
    }
}

#[rocket::async_test]
async fn usernames_are_matched_case_insensitively() {
    let app = TestApp::spawn().await;
    app.create_user("Alice", PASSWORD).await;
    let response = app.post_login("ALICE", PASSWORD).await;
    assert_is_redirect_to(&response, "/");
}

#[rocket::async_test]
async fn wrong_password_shows_the_error_keeps_the_username_and_sets_no_session() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let before = app.verify_calls();

    let response = app.post_login("alice", "not the password").await;
    assert_eq!(response.status(), Status::Ok);
    assert!(session_cookie(&response).is_none());
    let page = response.into_string().await.unwrap();
    assert!(page.contains("Invalid username or password."));
    assert!(page.contains(r#"value="alice""#), "the username is kept");
    assert!(!page.contains("not the password"), "the password is never echoed");
    assert_eq!(app.verify_calls() - before, 1);

    assert_is_redirect_to(&app.get("/welcome").await, "/login?next=%2Fwelcome");
}

#[rocket::async_test]
async fn an_unknown_user_costs_exactly_one_verify_and_gets_the_same_page() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;

    let before = app.verify_calls();
    let wrong = app.post_login("alice", "not the password").await.into_string().await.unwrap();
    let after_wrong = app.verify_calls();
    let unknown = app.post_login("mallory", "not the password").await.into_string().await.unwrap();
    let after_unknown = app.verify_calls();

    assert_eq!(after_wrong - before, 1, "a wrong password runs one verify");
    assert_eq!(after_unknown - after_wrong, 1, "an unknown user runs one (dummy) verify");
    let strip = |page: &str, name: &str| {
        page.replace(name, "NAME")
            .lines()
            .filter(|l| !l.contains("csrf_token"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&wrong, "alice"), strip(&unknown, "mallory"), "both answers look the same");
}

#[rocket::async_test]
async fn an_impossibly_long_username_still_costs_one_verify() {
    let app = TestApp::spawn().await;
    let before = app.verify_calls();
    let response = app.post_login(&"x".repeat(200), "not the password").await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(app.verify_calls() - before, 1);
}

#[rocket::async_test]
async fn a_disabled_user_cannot_sign_in_even_with_the_right_password() {
    let app = TestApp::spawn().await;
    let user = app.create_user("dave", PASSWORD).await;
    app.store().set_disabled(user.id, true, START).await.unwrap();

    let response = app.post_login("dave", PASSWORD).await;
    assert_eq!(response.status(), Status::Forbidden);
    assert!(session_cookie(&response).is_none());
    assert!(response.into_string().await.unwrap().contains("This account is disabled."));
}

#[rocket::async_test]
async fn an_account_without_a_password_cannot_sign_in_with_the_form() {
    let app = TestApp::spawn().await;
    let new =
        portal::store::NewUser { username: "oauth-only", email: None, password_hash: None, is_admin: false };
    app.store().create_user(new, START).await.unwrap();
    let before = app.verify_calls();
    let response = app.post_login("oauth-only", "").await;
    assert_eq!(response.status(), Status::UnprocessableEntity, "an empty password is a missing field");
    let response = app.post_login("oauth-only", "anything at all").await;
    assert!(response.into_string().await.unwrap().contains("Invalid username or password."));
    assert_eq!(app.verify_calls() - before, 1);
}

#[rocket::async_test]
async fn every_login_issues_a_fresh_session_cookie() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    let first = app.sign_in("alice", PASSWORD).await;
    let second = app.sign_in("alice", PASSWORD).await;
    assert_ne!(first.value(), second.value());
}

#[rocket::async_test]
async fn signing_in_over_someone_elses_session_replaces_it() {
    let app = TestApp::spawn().await;
    app.create_user("mallory", PASSWORD).await;
    app.create_user("alice", PASSWORD).await;
    let planted = app.sign_in("mallory", PASSWORD).await;
    let fresh = app.sign_in("alice", PASSWORD).await;
    assert_ne!(planted.value(), fresh.value());
    let page = app.get("/welcome").await.into_string().await.unwrap();
    assert!(page.contains("Welcome, alice!"));
}

#[rocket::async_test]
async fn the_home_page_shows_who_is_signed_in_and_a_logout_button() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;

    let anonymous = app.get("/").await.into_string().await.unwrap();
    assert!(anonymous.contains(r#"href="/login""#));
    assert!(!anonymous.contains("action=\"/logout\""));

    app.sign_in("alice", PASSWORD).await;
    let home = app.get("/").await.into_string().await.unwrap();
    assert!(home.contains("Signed in as <strong>alice</strong>"), "{home}");
    assert!(home.contains(r#"<form method="post" action="/logout">"#));
}

#[rocket::async_test]
async fn the_debug_profile_seeds_the_tutorial_admin_account() {
    let app = TestApp::spawn().await;
    let response = app.post_login("admin", "admin").await;
    assert_is_redirect_to(&response, "/");
}

#[rocket::async_test]
async fn the_password_policy_refuses_short_and_common_passwords() {
    use portal::auth::password::{check_policy, PolicyError};
    assert_eq!(check_policy("seven77", "bob"), Err(PolicyError::TooShort));
    assert_eq!(check_policy("qwertyuiop", "bob"), Err(PolicyError::Common));
    assert_eq!(check_policy(" spaces are kept ", "bob"), Ok(()));
    assert_eq!(check_policy(&"long passphrase ".repeat(8), "bob"), Ok(()));
}

/// A passphrase with accents, composed (NFC) and decomposed (NFD, as some keyboards and
/// systems send it).
pub const NFC_PASSWORD: &str = "cr\u{e8}me br\u{fb}l\u{e9}e \u{e0} la caf\u{e9}";
pub const NFD_PASSWORD: &str = "cre\u{300}me bru\u{302}le\u{301}e a\u{300} la cafe\u{301}";

#[rocket::async_test]
async fn a_password_set_in_nfc_signs_in_typed_in_nfd_and_the_other_way_round() {
    let app = TestApp::spawn().await;
    app.create_user("nora", NFC_PASSWORD).await;
    app.create_user("dora", NFD_PASSWORD).await;
    assert_is_redirect_to(&app.post_login("nora", NFD_PASSWORD).await, "/");
    assert_is_redirect_to(&app.post_login("dora", NFC_PASSWORD).await, "/");
    assert_is_redirect_to(&app.post_login("dora", NFD_PASSWORD).await, "/");
    assert_eq!(app.post_login("nora", "creme brulee a la cafe").await.status(), Status::Ok, "accents count");
}

#[rocket::async_test]
async fn a_hash_made_from_a_decomposed_password_before_normalisation_still_signs_in_and_is_renewed() {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let app = TestApp::spawn().await;
    let user = app.create_user("olga", PASSWORD).await;
    // What the portal stored before it normalised: a hash of the bytes as typed.
    let salt = SaltString::generate(&mut OsRng);
    let old = argon2::Argon2::default().hash_password(NFD_PASSWORD.as_bytes(), &salt).unwrap().to_string();
    app.store().set_password(user.id, &old, START, None).await.unwrap();
    let stored = || async { app.store().credentials("olga").await.unwrap().unwrap().password_hash.unwrap() };
    assert_eq!(stored().await, old);
    assert_eq!(
        app.post_login("olga", NFC_PASSWORD).await.status(),
        Status::Ok,
        "not yet: the old hash is of NFD"
    );

    let laptop = app.sign_in("olga", NFD_PASSWORD).await;
    let renewed = stored().await;
    assert_ne!(renewed, old, "the hash was made again, from the NFC form");
    assert!(renewed.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{renewed}");
    assert_eq!(app.get_with_cookie("/welcome", laptop).await.status(), Status::Ok, "no session ended");
    assert_is_redirect_to(&app.post_login("olga", NFC_PASSWORD).await, "/");
    let before = app.verify_calls();
    assert_is_redirect_to(&app.post_login("olga", NFD_PASSWORD).await, "/");
    assert_eq!(app.verify_calls() - before, 1, "the NFC form matches at once now");
    assert_eq!(stored().await, renewed, "renewed once");
}
