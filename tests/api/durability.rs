//! The SQLite store shared with other processes while the real server runs: the `users` CLI
//! and a backup with Debian's `sqlite3`, after health checks, then a crash and a restart.
//!
//! POSIX locks belong to a process: one stray `open`/`close` of the database file outside
//! SQLite drops every lock the server holds on it, and the next process to close the store
//! (the CLI, a backup) checkpoints and deletes the WAL the server is still writing to. The
//! server's writes then go to a deleted file and are lost at restart, and the store can end
//! up malformed. These tests watch the server's own locks in `/proc/locks` and check that
//! every acknowledged write, on either side, survives.
//!
//! The soak (about a minute) is ignored in plain `cargo test`; `.ci/run` runs it with
//! `cargo test --test api durability:: -- --include-ignored`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use portal_testkit::app::{http_client, skip_on_postgres};
use portal_testkit::process::{free_port, Launch, Portal};
use portal_testkit::visitor::Browser;
use portal_testkit::PASSWORD;

/// Longer than `session.cache_ttl`'s default (2 s): what a server may still answer from its
/// cache after another process changed the store.
const CACHE_TTL: Duration = Duration::from_millis(2_200);

/// The real server on a store in a directory of its own, which outlives crashes.
struct Server {
    launch: Launch,
    file: PathBuf,
    port: u16,
}

impl Server {
    fn new(home: &Path) -> Server {
        let launch = Launch::in_dir(home).test_config(home);
        Server { launch, file: home.join("portal.sqlite"), port: free_port() }
    }

    fn start(&self, home: TempDir) -> Portal {
        self.launch.serve(home, self.port)
    }

    /// `portal ARGS` against the same store; the test fails if it does.
    fn cli(&self, args: &[&str], stdin: &str) -> String {
        let out = self.launch.run(args, stdin);
        assert!(out.status.success(), "portal {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn add_user(&self, name: &str) {
        self.cli(&["users", "add", name], &format!("{PASSWORD}\n"));
    }

    /// Checks that the running server still holds its lock and writes no deleted file, kills
    /// it (SIGKILL), checks the store's integrity from this process, and starts it again.
    async fn crash_and_restart(&self, portal: Portal) -> Portal {
        assert!(holds_posix_lock(portal.pid(), &self.file), "the server still holds its lock on the store");
        let deleted = deleted_store_files(portal.pid());
        assert_eq!(deleted, Vec::<String>::new(), "the server writes to live files only");
        let home = portal.crash();
        assert_eq!(integrity(&self.file).await, "ok");
        self.start(home)
    }

    /// `GET /health` `times` times; each must be 200.
    async fn health(&self, times: usize) {
        let http = http_client();
        for _ in 0..times {
            let answer = http.get(format!("http://127.0.0.1:{}/health", self.port)).send().await;
            assert_eq!(answer.expect("an answer").status().as_u16(), 200);
        }
    }
}

/// Whether process `pid` holds a POSIX lock on `file` (what SQLite keeps on a WAL store for
/// as long as a connection is open).
fn holds_posix_lock(pid: u32, file: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(file).expect("the store file").ino().to_string();
    let locks = std::fs::read_to_string("/proc/locks").expect("/proc/locks");
    let pid = pid.to_string();
    locks.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&"POSIX")
            && fields.get(4) == Some(&pid.as_str())
            && fields.get(5).and_then(|id| id.rsplit(':').next()) == Some(inode.as_str())
    })
}

/// The WAL and shared-memory files the server has open that are no longer in the directory:
/// what is left of a split store.
fn deleted_store_files(pid: u32) -> Vec<String> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .map(|target| target.display().to_string())
        .filter(|target| target.contains("portal.sqlite") && target.ends_with("(deleted)"))
        .collect()
}

/// `PRAGMA integrity_check` of the store, from this (another) process.
async fn integrity(file: &Path) -> String {
    let url = format!("sqlite://{}", file.display());
    let pool = sqlx::SqlitePool::connect(&url).await.expect("the store opens");
    let check: Vec<String> =
        sqlx::query_scalar("PRAGMA integrity_check").fetch_all(&pool).await.expect("a check");
    pool.close().await;
    check.join("\n")
}

/// What `another_process` does to the store while the server runs: the CLI, or a backup.
async fn share_the_store(another_process: impl Fn(&Server)) {
    let home = tempfile::tempdir().unwrap();
    let server = Server::new(home.path());
    for name in ["alice", "bob", "dave"] {
        server.add_user(name);
    }
    let portal = server.start(home);
    let (mut alice, mut bob, mut dave) =
        (Browser::new(server.port), Browser::new(server.port), Browser::new(server.port));
    assert!(alice.sign_in("alice", PASSWORD).await && bob.sign_in("bob", PASSWORD).await);
    assert!(dave.sign_in("dave", PASSWORD).await);

    server.health(5).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    another_process(&server);
    assert!(holds_posix_lock(portal.pid(), &server.file), "the server still holds its lock on the store");

    // The CLI writes and reads; the server sees it.
    server.cli(&["users", "disable", "bob"], "");
    server.add_user("carol");
    assert!(!Browser::new(server.port).sign_in("bob", PASSWORD).await, "bob's password is refused at once");
    let mut carol = Browser::new(server.port);
    assert!(carol.sign_in("carol", PASSWORD).await, "a user the CLI added signs in");
    tokio::time::sleep(CACHE_TTL).await;
    assert!(!bob.is_signed_in().await, "bob's live cookie is refused once the cache has passed");

    // The server writes, between more health checks and another turn of the other process.
    server.health(3).await;
    another_process(&server);
    alice.sign_out().await;
    dave.change_password(PASSWORD, "a brand new passphrase for dave").await;
    server.health(3).await;
    another_process(&server);
    let listing = server.cli(&["users", "list"], "");
    assert!(
        listing.contains("carol") && listing.lines().any(|l| l.contains("bob") && l.contains("disabled"))
    );
    // A crash, then a restart: every acknowledged write is there.
    let _portal = server.crash_and_restart(portal).await;
    assert!(!alice.is_signed_in().await, "alice's sign-out is not undone");
    assert!(dave.is_signed_in().await, "dave's renewed session survives");
    assert!(!Browser::new(server.port).sign_in("dave", PASSWORD).await, "dave's old password stays changed");
    assert!(Browser::new(server.port).sign_in("dave", "a brand new passphrase for dave").await);
    assert!(!bob.is_signed_in().await && !Browser::new(server.port).sign_in("bob", PASSWORD).await);
    assert!(carol.is_signed_in().await && Browser::new(server.port).sign_in("carol", PASSWORD).await);
}

#[rocket::async_test]
async fn the_cli_and_the_server_share_the_store_after_health_checks_and_a_crash() {
    if skip_on_postgres("the_cli_and_the_server_share_the_store_after_health_checks_and_a_crash") {
        return;
    }
    share_the_store(|server| {
        server.cli(&["users", "list"], "");
    })
    .await;
}

/// Debian's `sqlite3` (the backup advice of docs/operations.md), or `None` with a loud line saying how to
/// get it.
fn sqlite3(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join("sqlite3")).find(|p| p.is_file()));
    if found.is_none() {
        eprintln!(
            "SKIPPED: {test}: needs Debian's sqlite3 (`apt-get install sqlite3`; `.ci/run` installs it)"
        );
    }
    found
}

/// `sqlite3 STORE ".backup COPY"`, and the copy is a whole store.
fn backup(sqlite3: &Path, store: &Path) -> PathBuf {
    let copy = store.with_file_name(format!("backup-{:08x}.sqlite", rand::random::<u32>()));
    let out = Command::new(sqlite3)
        .arg(store)
        .arg(format!(".backup '{}'", copy.display()))
        .output()
        .expect("sqlite3 runs");
    assert!(out.status.success(), "sqlite3 .backup: {}", String::from_utf8_lossy(&out.stderr));
    let check =
        Command::new(sqlite3).arg(&copy).arg("PRAGMA integrity_check;").output().expect("sqlite3 runs");
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "ok", "the backup is whole");
    copy
}

#[rocket::async_test]
async fn a_backup_with_sqlite3_while_the_server_runs_loses_nothing() {
    const TEST: &str = "a_backup_with_sqlite3_while_the_server_runs_loses_nothing";
    if skip_on_postgres(TEST) {
        return;
    }
    let Some(sqlite3) = sqlite3(TEST) else { return };
    share_the_store(|server| {
        backup(&sqlite3, &server.file);
    })
    .await;
}

/// A balancer's health checks every half second, browsers signing in and out, and the CLI
/// and `sqlite3 .backup` in a loop, for `SOAK`; then SIGKILL. The store is whole, the portal
/// starts on it, and every write either side acknowledged is there.
// Two worker threads: the CLI and the backups block theirs while the browsers and the
// balancer go on in the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a minute long: `cargo test --test api durability:: -- --include-ignored` (.ci/run does)"]
async fn a_soak_of_traffic_health_checks_the_cli_and_backups_ends_in_a_whole_store() {
    const TEST: &str = "a_soak_of_traffic_health_checks_the_cli_and_backups_ends_in_a_whole_store";
    const SOAK: Duration = Duration::from_secs(45);
    if skip_on_postgres(TEST) {
        return;
    }
    let Some(sqlite3) = sqlite3(TEST) else { return };
    let home = tempfile::tempdir().unwrap();
    let server = Server::new(home.path());
    server.add_user("alice");
    let portal = server.start(home);
    let until = Instant::now() + SOAK;

    // A balancer's health check.
    let port = server.port;
    let balancer = tokio::spawn(async move {
        let http = http_client();
        let mut failures = 0;
        while Instant::now() < until {
            match http.get(format!("http://127.0.0.1:{port}/health")).send().await {
                Ok(answer) if answer.status() == 200 => {}
                _ => failures += 1,
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        failures
    });

    // Browsers: each round, alice signs in, reads a page, and signs out. Every acknowledged
    // sign-out is a session that must stay ended.
    let traffic = tokio::spawn(async move {
        let mut ended = Vec::new();
        while Instant::now() < until {
            let mut alice = Browser::new(port);
            assert!(alice.sign_in("alice", PASSWORD).await, "alice signs in");
            assert!(alice.is_signed_in().await);
            alice.sign_out().await;
            ended.push(alice);
        }
        ended
    });

    // The other processes: users added and disabled by the CLI, and backups.
    let mut added = Vec::new();
    let mut disabled = Vec::new();
    let mut round = 0;
    while Instant::now() < until {
        round += 1;
        let name = format!("user{round}");
        server.add_user(&name);
        added.push(name.clone());
        if round % 2 == 0 {
            server.cli(&["users", "disable", &name], "");
            disabled.push(name);
        }
        server.cli(&["users", "list"], "");
        if round % 3 == 0 {
            backup(&sqlite3, &server.file);
        }
    }
    let ended = traffic.await.expect("the browsers' loop");
    assert_eq!(balancer.await.expect("the balancer's loop"), 0, "every health check answered 200");
    assert!(
        round >= 5 && ended.len() >= 5,
        "the soak did something: {round} CLI rounds, {} sign-ins",
        ended.len()
    );
    let _portal = server.crash_and_restart(portal).await;
    let listing = server.cli(&["users", "list"], "");
    for name in &added {
        let line = listing.lines().find(|l| l.split_whitespace().nth(1) == Some(name.as_str()));
        let line = line.unwrap_or_else(|| panic!("{name}, added by the CLI, survived: {listing}"));
        assert_eq!(line.contains("disabled"), disabled.contains(name), "{line}");
    }
    for mut alice in ended {
        assert!(!alice.is_signed_in().await, "an acknowledged sign-out stays");
    }
}
