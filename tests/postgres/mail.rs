//! Two portal instances on one PostgreSQL database, both sending the outbox: each message
//! goes out once, however their workers race for it.

use std::collections::BTreeMap;

use portal::store::NewUser;
use rocket::http::{ContentType, Status};

use portal_testkit::app::{extract_hidden, form_body, TestApp, START};
use portal_testkit::smtp::Sink;
use portal_testkit::{new_postgres_database, postgres_turn, PASSWORD};

/// Messages the test queues.
const MESSAGES: usize = 24;

async fn instance(url: &str, secret: &str, sink: &Sink) -> TestApp {
    let (secret, smtp) = (secret.to_owned(), sink.url());
    TestApp::spawn_at(tempfile::tempdir().unwrap(), url.to_owned(), START, move |f| {
        f.merge(("secret_key", secret))
            .merge(("public_url", "http://portal.test"))
            .merge(("email.smtp_url", smtp))
            .merge(("email.from", "portal@example.com"))
            .merge(("throttle.enabled", false))
    })
    .await
}

async fn forgot(app: &TestApp, login: &str) {
    let page = app.get("/reset").await.into_string().await.unwrap();
    let token = extract_hidden(&page, "csrf_token").unwrap();
    let answer = app
        .client
        .post("/reset")
        .header(ContentType::Form)
        .body(form_body(&[("csrf_token", &token), ("login", login)]))
        .dispatch()
        .await;
    assert_eq!(answer.status(), Status::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_send_each_message_once() {
    let Some(turn) = postgres_turn().await else { return };
    let url = new_postgres_database(&turn.server);
    let secret = portal_testkit::secret_key();
    let sink = Sink::stopped().await;
    let (a, b) = (instance(&url, &secret, &sink).await, instance(&url, &secret, &sink).await);
    let hash = a.auth().hasher().hash(PASSWORD.to_owned()).await.unwrap();
    for n in 0..MESSAGES {
        let (name, email) = (format!("user{n}"), format!("user{n}@example.com"));
        let new =
            NewUser { username: &name, email: Some(&email), password_hash: Some(&hash), is_admin: false };
        a.store().create_user(new, START).await.unwrap();
    }
    // Queued on both instances while the mail server is down: each worker tries its own.
    for n in 0..MESSAGES {
        forgot(if n % 2 == 0 { &a } else { &b }, &format!("user{n}")).await;
    }
    let deadline = std::time::Instant::now() + portal_testkit::PATIENCE;
    loop {
        let rows = a.store().outbox_recent(None, 100).await.unwrap();
        if rows.len() == MESSAGES && rows.iter().all(|r| r.attempts >= 1 && r.last_error.is_some()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "every message tried once: {rows:?}");
        tokio::time::sleep(portal_testkit::POLL).await;
    }

    // The server comes up, and every message comes due on both instances at once.
    sink.resume().await;
    a.clock.advance(60);
    b.clock.advance(60);
    let received = sink.wait_for(MESSAGES).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let received = if sink.received().len() > received.len() { sink.received() } else { received };
    let mut per_recipient: BTreeMap<String, usize> = BTreeMap::new();
    for mail in &received {
        *per_recipient.entry(mail.to.join(",")).or_default() += 1;
    }
    assert_eq!(per_recipient.len(), MESSAGES, "every recipient: {per_recipient:?}");
    assert!(per_recipient.values().all(|n| *n == 1), "each message once: {per_recipient:?}");
    let counts = a.store().outbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.sent, counts.failed), (0, MESSAGES as i64, 0));
}
