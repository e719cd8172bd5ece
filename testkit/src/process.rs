//! The real `portal` binary, run as a person would: exactly the configuration a test gives
//! (nothing from the caller's environment but `PATH`), `portal users add`, serving on a free
//! loopback port until `GET /health` answers 200, and killed on drop, even when a test panics.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{repo_root, secret_key, sqlite_url, this_builds_binary, PASSWORD, POLL};

/// How long a server may take to answer `GET /health` (a debug build on two busy cores).
pub const STARTUP: Duration = Duration::from_secs(30);

/// The name of a served portal's log (its stdout and stderr) in its home directory.
const LOG: &str = "portal.log";

/// A loopback port nothing listens on at the moment.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("its address").port()
}

/// How to run the binary: which build, from which directory, with which environment.
#[derive(Debug, Clone)]
pub struct Launch {
    bin: PathBuf,
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Launch {
    /// This build's binary, run from the checkout, so the repository's `Rocket.toml` applies.
    pub fn in_checkout() -> Launch {
        Launch::in_dir(repo_root())
    }

    /// This build's binary, run from `dir` (whose `Rocket.toml`, if any, applies).
    pub fn in_dir(dir: &Path) -> Launch {
        Launch { bin: this_builds_binary(), dir: dir.to_owned(), env: Vec::new() }
    }

    /// Another build of the binary (the release one, say).
    pub fn binary(self, bin: PathBuf) -> Launch {
        Launch { bin, ..self }
    }

    pub fn env(mut self, key: &str, value: impl Into<String>) -> Launch {
        self.env.push((key.to_owned(), value.into()));
        self
    }

    pub fn database(self, url: &str) -> Launch {
        self.env("ROCKET_DATABASES", format!("{{portal={{url=\"{url}\"}}}}"))
    }

    /// The usual test configuration: loopback, a store in `home`, a fresh secret key.
    pub fn test_config(self, home: &Path) -> Launch {
        self.env("ROCKET_ADDRESS", "127.0.0.1")
            .database(&sqlite_url(home))
            .env("ROCKET_SECRET_KEY", secret_key())
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        command.current_dir(&self.dir).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
        command.envs(self.env.iter().map(|(key, value)| (key, value)));
        command
    }

    /// `portal ARGS` with `stdin` typed in: what it printed and how it ended, whatever that was.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the portal binary runs");
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("stdin is written");
        child.wait_with_output().expect("the portal binary finishes")
    }

    /// `portal users add NAME` with [`PASSWORD`] typed in; the test fails if it is refused.
    pub fn add_user(&self, name: &str) {
        let out = self.run(&["users", "add", name], &format!("{PASSWORD}\n"));
        assert!(out.status.success(), "users add {name}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Serves on `port`, logging to `portal.log` in `home` (which the portal keeps), and
    /// returns once `GET /health` answers 200.
    pub fn serve(&self, home: TempDir, port: u16) -> Portal {
        let log = fs::File::create(home.path().join(LOG)).expect("a log file");
        let child = self
            .command()
            .env("ROCKET_PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .expect("the portal binary starts");
        let mut portal = Portal { child, port, home };
        let log = portal.home.path().join(LOG);
        wait_for_health(&mut portal.child, port, "127.0.0.1", "the portal", || read_log(&log));
        portal
    }
}

/// A portal serving on `127.0.0.1:port`; killed on drop.
pub struct Portal {
    child: Child,
    pub port: u16,
    home: TempDir,
}

impl Portal {
    /// What it has logged so far.
    pub fn log(&self) -> String {
        read_log(&self.home.path().join(LOG))
    }

    /// Its process id (to read what it holds from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it with SIGKILL, as a crash or an OOM kill would, and hands back its home (the
    /// store and the log) for a restart.
    pub fn crash(mut self) -> TempDir {
        self.kill();
        let home = tempfile::tempdir().expect("a stand-in home");
        std::mem::replace(&mut self.home, home)
    }

    /// Stops it and returns all that it logged.
    pub fn stop(mut self) -> String {
        self.kill();
        self.log()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        self.kill();
    }
}

fn read_log(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// Waits until `GET /health` on `127.0.0.1:port`, asked for `host`, answers 200. The test
/// fails, showing `log()`, if `child` (which `what` names) exits first or [`STARTUP`] passes.
pub fn wait_for_health(child: &mut Child, port: u16, host: &str, what: &str, log: impl Fn() -> String) {
    let deadline = Instant::now() + STARTUP;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited during startup ({status}):\n{}", log());
        }
        if health_status(port, host) == Some(200) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: GET /health never answered 200:\n{}", log());
        std::thread::sleep(POLL);
    }
}

/// The status of `GET /health`, or `None` while nothing answers in full.
fn health_status(port: u16, host: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let answer = String::from_utf8_lossy(&answer);
    answer.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}
