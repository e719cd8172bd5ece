//! Several stores on one PostgreSQL database, as several portal instances hold them.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use portal::auth::throttle::{RetryAfter, Throttle};
use portal::config::{InstanceKey, ThrottleSettings};
use portal::store::{Guarded, NewSession, NewUser, Store, SweepBefore};

use portal_testkit::{new_postgres_database, postgres_turn, PATIENCE};

async fn store(url: &str, cache_ttl: i64) -> Store {
    Store::connect(url).await.expect("the store opens").with_session_cache(cache_ttl)
}

async fn user(store: &Store, name: &str, admin: bool) -> i64 {
    let new = NewUser { username: name, email: None, password_hash: Some("x"), is_admin: admin };
    store.create_user(new, 1).await.expect("a user").id
}

async fn session(store: &Store, id: &str, user_id: i64) {
    let new = NewSession {
        id,
        secret_hash: "h",
        user_id,
        method: "password",
        methods: "pwd",
        aal: 1,
        client: "c",
        ip: None,
        persist: false,
        upstream_sid: None,
        now: 100,
    };
    store.create_session(new).await.expect("a session");
}

/// Polls `probe` until it is true, for at most [`PATIENCE`]; how long it took.
async fn within(what: &str, mut probe: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !probe().await {
        assert!(started.elapsed() < PATIENCE, "{what}: not within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

async fn is_ended(store: &Store, id: &str) -> bool {
    let found = store.live_session(id, 101).await.expect("the store answers");
    found.is_none_or(|(session, _)| session.record.ended_at.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_apply_each_migration_once() {
    let Some(turn) = postgres_turn().await else { return };
    let server = turn.server.clone();
    let url = new_postgres_database(&server);
    let starts = (0..6).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { Store::connect(&url).await.map(|_| ()) })
    });
    for started in futures_join(starts).await {
        started.expect("every instance starts");
    }
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let versions: Vec<(i64, i64)> =
        sqlx::query_as("SELECT version, COUNT(*) FROM _sqlx_migrations GROUP BY version ORDER BY version")
            .fetch_all(&pool)
            .await
            .expect("the migrations table");
    let report = store(&url, 0).await.check().await.expect("check");
    let latest = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .expect("the migrations")
        .count();
    let latest = i64::try_from(latest).expect("a count");
    assert_eq!(versions, (1..=latest).map(|v| (v, 1)).collect::<Vec<_>>(), "each migration once");
    assert_eq!((report.applied, report.latest), (Some(latest), latest));
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        out.push(handle.await.expect("the task finishes"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_session_leaves_every_instances_cache() {
    let Some(turn) = postgres_turn().await else { return };
    let server = turn.server.clone();
    let url = new_postgres_database(&server);
    // A long cache: only the announcement can make A forget.
    let (a, b) = (store(&url, 3600).await, store(&url, 3600).await);
    within("A listens", async || a.revocations_heard()).await;
    within("B listens", async || b.revocations_heard()).await;
    let alice = user(&a, "alice", false).await;
    for id in ["s1", "s2", "s3"] {
        session(&a, id, alice).await;
        assert!(!is_ended(&a, id).await, "live, and now cached on A");
    }
    // Ended on B: A's next reads say so, within moments.
    assert!(b.end_session(alice, "s1", 200).await.expect("end"));
    let took = within("A forgets s1", async || is_ended(&a, "s1").await).await;
    println!("    A saw the sign-out made on B after {took:?}");
    assert!(!is_ended(&a, "s2").await, "only that session");
    // A password change on B ends the rest everywhere.
    b.set_password(alice, "new", 300, None).await.expect("password");
    within("A forgets s2", async || is_ended(&a, "s2").await).await;
    within("A forgets s3", async || is_ended(&a, "s3").await).await;
    // Disabling on B: A sees the user disabled.
    session(&a, "s4", alice).await;
    assert!(!is_ended(&a, "s4").await);
    assert_eq!(b.set_disabled(alice, true, 400).await.expect("disable"), Guarded::Done);
    within("A forgets s4", async || is_ended(&a, "s4").await).await;
    // A write that is not announced (straight SQL) stays unseen while cached: the cache is
    // really on, so the test above shows the announcements at work.
    let bob = user(&a, "bob", false).await;
    session(&a, "t1", bob).await;
    assert!(!is_ended(&a, "t1").await);
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    sqlx::query("UPDATE sessions SET ended_at = 1 WHERE id = 't1'").execute(&pool).await.expect("update");
    assert!(!is_ended(&a, "t1").await, "cached on A (session.cache_ttl = 3600)");
    assert!(is_ended(&store(&url, 0).await, "t1").await, "the store has it ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_drops_the_cache_and_caching_resumes() {
    let Some(turn) = postgres_turn().await else { return };
    let server = turn.server.clone();
    let url = new_postgres_database(&server);
    let a = store(&url, 3600).await;
    within("A listens", async || a.revocations_heard()).await;
    let alice = user(&a, "alice", false).await;
    session(&a, "s1", alice).await;
    assert!(!is_ended(&a, "s1").await, "cached");
    let connects = a.listener_connects();

    // The listening connection dies, and meanwhile a write's announcement is lost.
    let admin = sqlx::PgPool::connect(&url).await.expect("connect");
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(&admin)
    .await
    .expect("terminate");
    assert_eq!(killed, [true], "one listening connection");
    sqlx::query("UPDATE sessions SET ended_at = 1 WHERE id = 's1'").execute(&admin).await.expect("update");

    // The listener notices, reconnects, and forgets everything it may have missed.
    within("the listener reconnects", async || a.listener_connects() > connects && a.revocations_heard())
        .await;
    assert!(is_ended(&a, "s1").await, "nothing cached survived the lost connection");

    // Caching is on again, and announcements arrive again.
    session(&a, "s2", alice).await;
    assert!(!is_ended(&a, "s2").await);
    sqlx::query("UPDATE sessions SET ended_at = 1 WHERE id = 's2'").execute(&admin).await.expect("update");
    assert!(!is_ended(&a, "s2").await, "cached again");
    let b = store(&url, 0).await;
    session(&b, "s3", alice).await;
    assert!(!is_ended(&a, "s3").await);
    assert!(b.end_session(alice, "s3", 200).await.expect("end"));
    within("A hears B again", async || is_ended(&a, "s3").await).await;
}

fn ip() -> Option<IpAddr> {
    Some(IpAddr::from([192, 0, 2, 7]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_throttle_budget_is_one_for_every_instance() {
    let Some(turn) = postgres_turn().await else { return };
    let server = turn.server.clone();
    let url = new_postgres_database(&server);
    let key = InstanceKey([7; 32]);
    let settings = ThrottleSettings::default();
    let (a, b) = (store(&url, 0).await, store(&url, 0).await);
    let on_a = Throttle::shared(settings, a.clone(), &key);
    let on_b = Throttle::shared(settings, b.clone(), &key);
    // Five failures spread over two instances use up one budget of five.
    for n in 0..5 {
        let throttle = if n % 2 == 0 { &on_a } else { &on_b };
        let attempt = throttle.reserve_login("alice", ip(), 1000).await.expect("the store").expect("within");
        drop(attempt);
    }
    for throttle in [&on_a, &on_b] {
        let refused = throttle.reserve_login("alice", ip(), 1001).await.expect("the store");
        assert!(matches!(refused, Err(RetryAfter(s)) if s > 0), "the sixth is refused on both");
    }
    assert!(on_a.first_refusal("alice", ip()).await, "the first refusal is reported");
    assert!(!on_b.first_refusal("alice", ip()).await, "once, whichever instance refused");
    assert!(
        on_b.reserve_login("alice", ip(), 1000 + settings.window).await.expect("store").is_ok(),
        "a new window"
    );

    // A burst on both instances at once: exactly five attempts pass.
    let passed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut burst = Vec::new();
    for n in 0..40 {
        let throttle = std::sync::Arc::new(Throttle::shared(
            settings,
            if n % 2 == 0 { a.clone() } else { b.clone() },
            &key,
        ));
        let passed = passed.clone();
        burst.push(tokio::spawn(async move {
            if let Ok(Ok(attempt)) = throttle.reserve_login("carol", ip(), 5000).await {
                drop(attempt);
                passed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }));
    }
    futures_join(burst.into_iter()).await;
    assert_eq!(passed.load(std::sync::atomic::Ordering::SeqCst), 5, "one budget of five across instances");

    // A success gives the account's budget back everywhere.
    let attempt = on_a.reserve_login("dave", ip(), 6000).await.expect("store").expect("within");
    drop(attempt);
    on_b.reserve_login("dave", ip(), 6000).await.expect("store").expect("within").refund().await;
    // (The IP's own budget is 50: carol's five and dave's one leave room.)
    for _ in 0..5 {
        let attempt = on_a.reserve_login("dave", ip(), 6001).await.expect("store").expect("budget back");
        drop(attempt);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_admin_survives_concurrent_changes_on_two_instances() {
    let Some(turn) = postgres_turn().await else { return };
    let server = turn.server.clone();
    let url = new_postgres_database(&server);
    let (a, b) = (store(&url, 0).await, store(&url, 0).await);
    for round in 0..15 {
        let first = user(&a, &format!("root{round}a"), true).await;
        let second = user(&a, &format!("root{round}b"), true).await;
        // Every other enabled admin from earlier rounds is gone by now (see below).
        let (x, y) = tokio::join!(a.set_disabled(first, true, 10), b.set_disabled(second, true, 10));
        let results = [x.expect("store"), y.expect("store")];
        assert!(
            results.contains(&Guarded::Done) && results.contains(&Guarded::LastAdmin),
            "round {round}: exactly one may go: {results:?}"
        );
        let pool = sqlx::PgPool::connect(&url).await.expect("connect");
        let enabled: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE is_admin AND NOT disabled")
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(enabled, 1, "round {round}");
        // Leave no enabled admin behind for the next round: demote the survivor directly.
        sqlx::query("UPDATE users SET is_admin = FALSE").execute(&pool).await.expect("reset");
        pool.close().await;
        // Removal and deletion race the same way.
        let c = user(&a, &format!("boss{round}c"), true).await;
        let d = user(&a, &format!("boss{round}d"), true).await;
        let (x, y) = tokio::join!(a.set_admin(c, false), b.delete_user(d));
        let results = [x.expect("store"), y.expect("store")];
        assert!(results.contains(&Guarded::Done) && results.contains(&Guarded::LastAdmin), "{results:?}");
        let pool = sqlx::PgPool::connect(&url).await.expect("connect");
        sqlx::query("UPDATE users SET is_admin = FALSE").execute(&pool).await.expect("reset");
        pool.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeps_on_two_instances_at_once_share_the_work() {
    let Some(turn) = postgres_turn().await else { return };
    let server = turn.server.clone();
    let url = new_postgres_database(&server);
    let (a, b) = (store(&url, 0).await, store(&url, 0).await);
    let alice = user(&a, "alice", false).await;
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    sqlx::query(
        "INSERT INTO sessions (id, secret_hash, user_id, method, created_at, last_seen_at, ended_at, client)
         SELECT 'old-' || i, 'h', $1, 'password', 10, 10, 10, 'c' FROM generate_series(1, 30000) i",
    )
    .bind(alice)
    .execute(&pool)
    .await
    .expect("old sessions");
    session(&a, "live", alice).await;
    let before = SweepBefore { ended: 50, last_seen: 50, created: 50 };
    let sweep = |store: Store| async move {
        let (mut total, mut batches) = (0u64, 0u32);
        loop {
            let gone = store.sweep_sessions(before, 500).await.expect("the sweep never fails");
            total += gone;
            batches += 1;
            if gone == 0 {
                return (total, batches);
            }
        }
    };
    let ((on_a, batches_a), (on_b, batches_b)) = tokio::join!(sweep(a.clone()), sweep(b.clone()));
    println!("    A deleted {on_a} in {batches_a} batches, B {on_b} in {batches_b}");
    assert_eq!(on_a + on_b, 30_000, "every old session once");
    assert!(on_a > 0 && on_b > 0, "both instances did part of the work");
    assert_eq!(a.count_sessions().await.expect("count"), 1, "the live one stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_copy_moves_a_sqlite_store_without_loss() {
    let Some(turn) = postgres_turn().await else { return };
    let server = turn.server.clone();
    use portal_testkit::app::{session_cookie, TestApp, START};
    use rocket::http::Status;
    let dir = tempfile::tempdir().expect("dir");
    let sqlite = portal_testkit::sqlite_url(dir.path());
    let secret = portal_testkit::secret_key();
    // A real store, written by the portal: users, a session, failed sign-ins, a reset link,
    // a signing key.
    let old = TestApp::spawn_at(tempfile::tempdir().expect("dir"), sqlite.clone(), START, |f| {
        f.merge(("secret_key", secret.clone()))
    })
    .await;
    let alice = old.create_user("alice", portal_testkit::PASSWORD).await;
    old.create_user("bob", portal_testkit::PASSWORD).await;
    assert_eq!(old.post_login("bob", "wrong password!").await.status(), Status::Ok);
    let cookie = old.sign_in("alice", portal_testkit::PASSWORD).await;
    assert_eq!(old.get_with_cookie("/welcome", cookie.clone()).await.status(), Status::Ok);
    old.store()
        .create_reset_link(portal::store::NewResetLink {
            token_hash: "0123abcd",
            user_id: alice.id,
            now: START,
            expires_at: START + 3600,
            created_by: "cli",
            sent_to: Some("alice@example.com"),
        })
        .await
        .expect("a reset link");
    old.store()
        .change_email(
            alice.id,
            Some("alice@example.org"),
            false,
            Some(("4567cdef", START + 3600)),
            &[],
            START,
        )
        .await
        .expect("an email link");
    old.store().set_notices_off(alice.id, "factor").await.expect("a notice preference");
    let session = portal::store::NewSession {
        id: "s-device",
        secret_hash: "h",
        user_id: alice.id,
        method: "password",
        methods: "pwd",
        aal: 1,
        client: "Firefox on Linux",
        ip: None,
        persist: false,
        upstream_sid: None,
        now: START,
    };
    let seen = portal::store::DeviceSeen { key: "d-1", known_since: START - 10 };
    old.store().create_session_noting_device(session, seen, None).await.expect("a known device");
    old.store()
        .link_identity(alice.id, "github", "4242", Some("alice@example.com"), START)
        .await
        .expect("an identity");
    old.store()
        .queue_mail(portal::store::NewMail {
            message_id: "m-1",
            kind: "reset",
            user_id: Some(alice.id),
            recipient: "alice@example.com",
            sealed: "v1.sealed",
            now: START,
        })
        .await
        .expect("a message in the outbox");
    let source = Store::connect(&sqlite).await.expect("the SQLite store");
    let target_url = new_postgres_database(&server);
    let target = Store::connect(&target_url).await.expect("the PostgreSQL store");
    let report = source.copy_into(&target).await.expect("the copy");
    assert_eq!(report.rows.len(), portal::store::COPIED_TABLES.len());

    // Every row of every table, the same on both sides.
    let dump_sqlite = dump_all(&sqlite, false).await;
    let dump_pg = dump_all(&target_url, true).await;
    assert_eq!(dump_sqlite, dump_pg, "every row, every column");
    assert!(dump_sqlite.iter().all(|(_, rows)| !rows.is_empty()), "every table had rows: {dump_sqlite:?}");

    // A second copy into it is refused, and nothing changes.
    let again = source.copy_into(&target).await;
    assert!(matches!(again, Err(portal::store::CopyError::TargetNotEmpty("users"))), "{again:?}");

    // The portal on PostgreSQL with the same secret_key: alice is still signed in, bob signs
    // in with his password, and new ids continue after the copied ones.
    let new = TestApp::spawn_at(tempfile::tempdir().expect("dir"), target_url.clone(), START, |f| {
        f.merge(("secret_key", secret.clone()))
    })
    .await;
    assert_eq!(new.get_with_cookie("/welcome", cookie).await.status(), Status::Ok, "still signed in");
    let bob = new.post_login("bob", portal_testkit::PASSWORD).await;
    assert_eq!(bob.status(), Status::SeeOther);
    assert!(session_cookie(&bob).is_some());
    let carol = new.create_user("carol", portal_testkit::PASSWORD).await;
    assert!(carol.id > alice.id + 1, "ids go on after the copied ones");
}

/// Every table's rows as text, in a fixed order (the same query on both backends).
async fn dump_all(url: &str, postgres: bool) -> Vec<(&'static str, Vec<String>)> {
    let queries = [
        ("users", "SELECT id, username, username_key, email, email_key, password_hash, is_admin, disabled, created_at, last_login_at, email_verified, notices_off FROM users ORDER BY id"),
        ("known_devices", "SELECT user_id, device, first_seen, last_seen FROM known_devices ORDER BY user_id, device"),
        ("identities", "SELECT provider, subject, user_id, email, created_at FROM identities ORDER BY provider, subject"),
        ("sessions", "SELECT id, secret_hash, user_id, method, created_at, last_seen_at, ended_at, client, ip, persist FROM sessions ORDER BY id"),
        ("reset_links", "SELECT token_hash, user_id, created_at, expires_at, used_at, created_by, sent_to FROM reset_links ORDER BY token_hash"),
        ("email_links", "SELECT token_hash, user_id, email, created_at, expires_at, used_at FROM email_links ORDER BY token_hash"),
        ("events", "SELECT id, at, kind, actor, subject_user_id, subject_name, ip, client, detail FROM events ORDER BY id"),
        ("signing_keys", "SELECT kid, algorithm, private_pkcs8, public_key, created_at, retired_at FROM signing_keys ORDER BY kid"),
        ("outbox", "SELECT id, message_id, kind, user_id, recipient, sealed, status, CAST(attempts AS BIGINT) AS attempts, next_attempt_at, last_error, created_at, sent_at FROM outbox ORDER BY id"),
    ];
    let mut out = Vec::new();
    for (table, sql) in queries {
        let rows: Vec<String> = if postgres {
            let pool = sqlx::PgPool::connect(url).await.expect("connect");
            sqlx::query(sql).fetch_all(&pool).await.expect("dump").iter().map(line_of).collect()
        } else {
            let pool = sqlx::SqlitePool::connect(url).await.expect("connect");
            sqlx::query(sql).fetch_all(&pool).await.expect("dump").iter().map(line_of).collect()
        };
        out.push((table, rows));
    }
    out
}

const BOOLEANS: [&str; 4] = ["is_admin", "disabled", "persist", "email_verified"];

/// A row as one line of text, each column the same way on both backends: booleans as
/// booleans (SQLite stores them as integers), then an integer if it reads as one, else text.
fn line_of<R: sqlx::Row>(row: &R) -> String
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<bool>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    use sqlx::Column;
    let text = |i: usize, name: &str| {
        if BOOLEANS.contains(&name) {
            return format!("{:?}", row.get::<Option<bool>, _>(i));
        }
        match row.try_get::<Option<i64>, _>(i) {
            Ok(n) => format!("{n:?}"),
            Err(_) => format!("{:?}", row.get::<Option<String>, _>(i)),
        }
    };
    row.columns().iter().enumerate().map(|(i, column)| text(i, column.name())).collect::<Vec<_>>().join("|")
}
