//! Starting up: what refuses to start, what the debug profile adds, and `/health`.

use std::sync::Arc;

use portal::clock::ManualClock;
use portal::Overrides;
use rocket::http::Status;
use rocket::local::asynchronous::Client;

use crate::helpers::*;

fn overrides() -> Overrides {
    Overrides { clock: Some(Arc::new(ManualClock::new(START))) }
}

#[rocket::async_test]
async fn a_release_profile_without_secret_key_refuses_to_start() {
    let (_dir, db) = temp_db();
    let figment = portal::figment()
        .merge(("databases.portal.url", db.as_str()))
        .merge(("log_level", "off"))
        .select("release");
    let result = Client::tracked(portal::rocket_with(figment, overrides())).await;
    let Err(error) = result else { panic!("release without secret_key must not start") };
    assert!(error.to_string().contains("secret key"), "{error}");
    error.pretty_print();
}

#[rocket::async_test]
async fn a_release_profile_never_creates_a_default_user() {
    let (_dir, db) = temp_db();
    let figment = test_figment(&db, &secret_key()).select("release");
    let client = Client::tracked(portal::rocket_with(figment, overrides())).await.expect("starts");
    let store = client.rocket().state::<portal::store::Store>().unwrap();
    assert_eq!(store.count_users().await.unwrap(), 0);
}

#[rocket::async_test]
async fn a_bad_setting_stops_startup() {
    let (_dir, db) = temp_db();
    let bad = [
        test_figment(&db, &secret_key()).merge(("session.refresh_after", 99_999)),
        test_figment(&db, &secret_key()).merge(("session.idle_timeout", "thirty minutes")),
        test_figment("postgres://nobody@127.0.0.1:1/none", &secret_key()),
        test_figment("sqlite:///no/such/dir/portal.sqlite?mode=rwc", &secret_key()),
    ];
    for figment in bad {
        let result = Client::tracked(portal::rocket_with(figment, overrides())).await;
        let Err(error) = result else { panic!("must not start") };
        error.pretty_print();
    }
}

#[rocket::async_test]
async fn health_is_200_while_the_store_answers_and_503_after() {
    let app = TestApp::spawn().await;
    let ok = app.get("/health").await;
    assert_eq!(ok.status(), Status::Ok);
    assert_eq!(ok.into_string().await.unwrap(), r#"{"status":"ok"}"#);

    app.store().close().await;
    let down = app.get("/health").await;
    assert_eq!(down.status(), Status::ServiceUnavailable);
    assert_eq!(down.into_string().await.unwrap(), r#"{"status":"unavailable"}"#);
}
