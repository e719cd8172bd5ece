//! Passkeys in process, with `webauthn-authenticator-rs`'s software passkey (what Kanidm's
//! tests use): adding one, signing in with it alone and as the second step, a replayed
//! answer, another origin, another session's ceremony, a removed passkey, and bad input.

use rocket::figment::Figment;
use rocket::http::{ContentType, Status};
use serde_json::{json, Value};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

use portal_testkit::app::*;
use portal_testkit::PASSWORD;

/// Passkeys need `public_url`; browsers (and the soft passkey) accept http on localhost.
const ORIGIN: &str = "http://localhost:8000";

fn with_passkeys(f: Figment) -> Figment {
    f.merge(("public_url", ORIGIN))
}

fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

/// `POST uri` with a JSON body (or none), as the portal's script sends it.
async fn post_json(app: &TestApp, uri: &str, body: Option<Value>) -> (Status, Value) {
    let mut request = app.client.post(uri.to_owned()).header(same_origin());
    if let Some(body) = body {
        request = request.header(ContentType::JSON).body(body.to_string());
    }
    let response = request.dispatch().await;
    let status = response.status();
    (status, response.into_json().await.unwrap_or(Value::Null))
}

/// Adds a passkey made by `soft` for whoever is signed in: the answer's status and body.
async fn add_passkey(app: &TestApp, soft: &mut SoftPasskey, name: &str) -> (Status, Value) {
    let (status, options) = post_json(app, "/account/passkeys/options", None).await;
    assert_eq!(status, Status::Ok, "{options}");
    let options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let credential = soft.do_registration(origin(), options).unwrap();
    post_json(app, "/account/passkeys", Some(json!({ "credential": credential, "name": name }))).await
}

/// A user with a passkey, signed out: the passkey.
async fn user_with_passkey(app: &TestApp, name: &str) -> SoftPasskey {
    app.create_user(name, PASSWORD).await;
    app.sign_in(name, PASSWORD).await;
    let mut soft = SoftPasskey::new(true);
    let (status, body) = add_passkey(app, &mut soft, "Work laptop").await;
    assert_eq!(status, Status::Created, "{body}");
    app.post_logout().await;
    soft
}

/// The soft passkey's answer to a discoverable sign-in: it keeps no user handle (it is not
/// a discoverable credential), so the test names its credential and writes the handle the
/// store keeps into the answer, as a discoverable authenticator would. Neither is signed:
/// the server must still check the signature, the challenge and the origin.
async fn discoverable_answer(app: &TestApp, soft: &mut SoftPasskey, user_id: i64, at: &Url) -> Value {
    let (status, options) = post_json(app, "/login/passkey/options", None).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(options["mediation"], "conditional", "the username field's autofill");
    let row = app.store().passkeys_of(user_id).await.unwrap().remove(0);
    let mut options = options;
    options["publicKey"]["allowCredentials"] = json!([{ "type": "public-key", "id": row.credential_id }]);
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let answer = soft.do_authentication(at.clone(), options).unwrap();
    let mut answer = serde_json::to_value(answer).unwrap();
    let handle = webauthn_rs::prelude::Uuid::parse_str(&row.user_handle).unwrap();
    use base64::Engine;
    answer["response"]["userHandle"] =
        json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(handle.as_bytes()));
    answer
}

/// `/api/me`, or `Null` when nobody is signed in (401).
async fn me(app: &TestApp) -> Value {
    let response = app.get("/api/me").await;
    if response.status() == Status::Unauthorized {
        return Value::Null;
    }
    response.into_json().await.unwrap()
}

#[rocket::async_test]
async fn a_passkey_is_added_named_listed_and_signs_in_on_its_own_at_level_two() {
    let app = TestApp::spawn_with(with_passkeys).await;
    let alice = app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    let mut soft = SoftPasskey::new(true);
    let (status, added) = add_passkey(&app, &mut soft, "  Work laptop ").await;
    assert_eq!(status, Status::Created);
    assert_eq!(added["recovery_codes"].as_array().unwrap().len(), 10, "the first second factor");
    let account = body(app.get("/account").await).await;
    assert!(account.contains("Work laptop") && account.contains("last used never"), "{account}");
    let row = app.store().passkeys_of(alice.id).await.unwrap().remove(0);
    assert_eq!(row.name, "Work laptop");
    assert!(!row.backup_eligible && !row.backup_state, "the soft passkey is device-bound");
    let events = format!("{:?}", app.events().await);
    assert!(events.contains("second_factor_added"), "{events}");
    app.post_logout().await;

    let answer = discoverable_answer(&app, &mut soft, alice.id, &origin()).await;
    let (status, body) =
        post_json(&app, "/login/passkey", Some(json!({ "credential": answer, "next": "/account" }))).await;
    assert_eq!((status, body["redirect"].clone()), (Status::Ok, json!("/account")), "{body}");
    let me = me(&app).await;
    assert_eq!((me["username"].clone(), me["aal"].clone()), (json!("alice"), json!(2)));
    assert_eq!(me["methods"], json!(["passkey"]));
    let used = app.store().passkeys_of(alice.id).await.unwrap().remove(0);
    assert!(used.last_used_at.is_some() && used.sign_count > row.sign_count, "the counter is kept");
}

#[rocket::async_test]
async fn after_a_password_a_passkey_is_the_second_step() {
    let app = TestApp::spawn_with(with_passkeys).await;
    let mut soft = user_with_passkey(&app, "alice").await;
    assert_eq!(location(&app.post_login("alice", PASSWORD).await), Some("/login/second-factor"));
    let page = body(app.get("/login/second-factor").await).await;
    assert!(page.contains("data-passkey=\"second-factor\"") && page.contains("/static/passkeys.js"));
    let (status, options) = post_json(&app, "/login/second-factor/passkey/options", None).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(options["publicKey"]["allowCredentials"].as_array().unwrap().len(), 1, "alice's passkey");
    let answer = soft.do_authentication(origin(), serde_json::from_value(options).unwrap()).unwrap();
    let (status, body) =
        post_json(&app, "/login/second-factor/passkey", Some(json!({ "credential": answer }))).await;
    assert_eq!((status, body["redirect"].clone()), (Status::Ok, json!("/")), "{body}");
    let me = me(&app).await;
    assert_eq!((me["methods"].clone(), me["aal"].clone()), (json!(["pwd", "passkey"]), json!(2)));
}

#[rocket::async_test]
async fn a_replayed_answer_and_an_answer_for_another_origin_are_refused() {
    let app = TestApp::spawn_with(with_passkeys).await;
    let mut soft = user_with_passkey(&app, "alice").await;
    let alice = app.store().user_by_username("alice").await.unwrap().unwrap();
    let answer = discoverable_answer(&app, &mut soft, alice.id, &origin()).await;
    let (status, _) = post_json(&app, "/login/passkey", Some(json!({ "credential": answer.clone() }))).await;
    assert_eq!(status, Status::Ok);
    app.post_logout().await;
    // The same answer again: its ceremony is spent, and a new one has another challenge.
    let (status, body) =
        post_json(&app, "/login/passkey", Some(json!({ "credential": answer.clone() }))).await;
    assert_eq!(
        (status, body["error"].clone()),
        (Status::BadRequest, json!("That took too long, or was started elsewhere: try again."))
    );
    post_json(&app, "/login/passkey/options", None).await;
    let (status, body) = post_json(&app, "/login/passkey", Some(json!({ "credential": answer }))).await;
    assert_eq!(
        (status, body["error"].clone()),
        (Status::BadRequest, json!("That passkey was not accepted."))
    );
    assert_eq!(me(&app).await, Value::Null, "nobody signed in");

    // Signed for another origin (another port of the same host: the authenticator would
    // refuse another domain itself; the server checks the whole origin).
    let phish = Url::parse("http://localhost:9999").unwrap();
    let answer = discoverable_answer(&app, &mut soft, alice.id, &phish).await;
    let (status, body) = post_json(&app, "/login/passkey", Some(json!({ "credential": answer }))).await;
    assert_eq!(
        (status, body["error"].clone()),
        (Status::BadRequest, json!("That passkey was not accepted."))
    );
    let events = format!("{:?}", app.events().await);
    assert!(events.contains("second_factor_failed"), "a refused passkey is audited: {events}");
}

#[rocket::async_test]
async fn a_ceremony_belongs_to_the_session_that_started_it() {
    let app = TestApp::spawn_with(with_passkeys).await;
    app.create_user("alice", PASSWORD).await;
    app.create_user("bob", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    let (_, options) = post_json(&app, "/account/passkeys/options", None).await;
    let mut soft = SoftPasskey::new(true);
    let credential = soft.do_registration(origin(), serde_json::from_value(options).unwrap()).unwrap();
    app.post_logout().await;
    app.sign_in("bob", PASSWORD).await;
    // Bob's browser carries alice's ceremony: refused, and nothing is added to anyone.
    let (status, _) =
        post_json(&app, "/account/passkeys", Some(json!({ "credential": credential, "name": "x" }))).await;
    assert_eq!(status, Status::BadRequest);
    let alice = app.store().user_by_username("alice").await.unwrap().unwrap();
    let bob = app.store().user_by_username("bob").await.unwrap().unwrap();
    assert!(app.store().passkeys_of(alice.id).await.unwrap().is_empty());
    assert!(app.store().passkeys_of(bob.id).await.unwrap().is_empty());
}

#[rocket::async_test]
async fn a_ceremony_expires_after_five_minutes() {
    let app = TestApp::spawn_with(with_passkeys).await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    let (_, options) = post_json(&app, "/account/passkeys/options", None).await;
    let credential =
        SoftPasskey::new(true).do_registration(origin(), serde_json::from_value(options).unwrap()).unwrap();
    app.clock.advance(5 * 60);
    let (status, _) =
        post_json(&app, "/account/passkeys", Some(json!({ "credential": credential, "name": "x" }))).await;
    assert_eq!(status, Status::BadRequest);
}

#[rocket::async_test]
async fn a_removed_passkey_no_longer_signs_in() {
    let app = TestApp::spawn_with(with_passkeys).await;
    let mut soft = user_with_passkey(&app, "alice").await;
    let alice = app.store().user_by_username("alice").await.unwrap().unwrap();
    let id = app.store().passkeys_of(alice.id).await.unwrap().remove(0).credential_id;
    // A fresh sign-in (with the passkey itself), then removal.
    let answer = discoverable_answer(&app, &mut soft, alice.id, &origin()).await;
    assert_eq!(post_json(&app, "/login/passkey", Some(json!({ "credential": answer }))).await.0, Status::Ok);
    let removed = app.post_form(&format!("/account/passkeys/{id}/remove"), &[]).await;
    assert_is_redirect_to(&removed, "/account");
    drop(removed);
    assert_eq!(
        app.store().factors_of(alice.id).await.unwrap(),
        portal::store::Factors::default(),
        "codes went too"
    );
    assert_eq!(
        app.post_form(&format!("/account/passkeys/{id}/remove"), &[]).await.status(),
        Status::NotFound
    );
    app.post_logout().await;
    // Its answer names a passkey the portal no longer knows.
    let (status, options) = post_json(&app, "/login/passkey/options", None).await;
    assert_eq!(status, Status::Ok);
    let mut options = options;
    options["publicKey"]["allowCredentials"] = json!([{ "type": "public-key", "id": id }]);
    let answer = soft.do_authentication(origin(), serde_json::from_value(options).unwrap()).unwrap();
    let mut answer = serde_json::to_value(answer).unwrap();
    answer["response"]["userHandle"] = json!("AAAAAAAAAAAAAAAAAAAAAA");
    let (status, _) = post_json(&app, "/login/passkey", Some(json!({ "credential": answer }))).await;
    assert_eq!(status, Status::BadRequest);
    // With a password alone, one step again.
    assert_eq!(location(&app.post_login("alice", PASSWORD).await), Some("/"));
}

#[rocket::async_test]
async fn bad_passkey_input_gets_a_4xx_never_a_5xx() {
    let app = TestApp::spawn_with(with_passkeys).await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    // No ceremony.
    let (status, body) =
        post_json(&app, "/account/passkeys", Some(json!({ "credential": {}, "name": "x" }))).await;
    assert_eq!(status, Status::BadRequest, "{body}");
    // A malformed answer, after options.
    post_json(&app, "/account/passkeys/options", None).await;
    let (status, body) =
        post_json(&app, "/account/passkeys", Some(json!({ "credential": { "id": 5 }, "name": "x" }))).await;
    assert_eq!(
        (status, body["error"].clone()),
        (Status::BadRequest, json!("That passkey was not accepted."))
    );
    // Not JSON at all.
    let response = app
        .client
        .post("/account/passkeys")
        .header(same_origin())
        .header(ContentType::JSON)
        .body("{")
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::BadRequest);
    drop(response);
    // A name of 10,000 characters.
    let mut soft = SoftPasskey::new(true);
    let (status, body) = add_passkey(&app, &mut soft, &"n".repeat(10_000)).await;
    assert_eq!(
        (status, body["error"].clone()),
        (Status::UnprocessableEntity, json!("Name the passkey in 64 characters or fewer."))
    );
    // Two MiB of JSON.
    let huge = json!({ "credential": "x".repeat(2 << 20), "name": "x" }).to_string();
    let response = app
        .client
        .post("/account/passkeys")
        .header(same_origin())
        .header(ContentType::JSON)
        .body(huge)
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::PayloadTooLarge);
    drop(response);
    // Cross-site.
    let cross = app.client.post("/account/passkeys/options").dispatch().await;
    assert_eq!(cross.status(), Status::Forbidden);
}

#[rocket::async_test]
async fn without_public_url_passkeys_are_off_and_the_account_page_says_why() {
    let app = TestApp::spawn().await;
    app.create_user("alice", PASSWORD).await;
    app.sign_in("alice", PASSWORD).await;
    let account = body(app.get("/account").await).await;
    assert!(account.contains("Passkeys are off: this server has no public_url."), "{account}");
    assert!(!account.contains("passkeys.js"));
    assert!(!body(app.get("/login").await).await.contains("Sign in with a passkey"));
    let (status, body) = post_json(&app, "/account/passkeys/options", None).await;
    assert_eq!((status, body["error"].clone()), (Status::NotFound, json!("Passkeys are off here.")));
}
