//! Failed-login and OAuth-start throttling: fixed windows per key (account+IP, IP), in
//! bounded memory.
//!
//! Keys are hashed with a per-process random key, so an entry costs a few dozen bytes
//! whatever was typed, and nobody can aim collisions. When the table is full, expired
//! windows go first, then the entries with the fewest failures: a spray of one-off keys
//! cannot push out the counters that matter.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default)]
pub struct ThrottleSettings {
    pub enabled: bool,
    /// Failed sign-ins allowed per account and client IP in one window.
    pub account_ip_failures: u32,
    /// Failed sign-ins allowed per client IP in one window, whatever the accounts.
    pub ip_failures: u32,
    /// `/login/<provider>` starts allowed per client IP in one window.
    pub oauth_starts: u32,
    /// The window, in seconds.
    pub window: i64,
    /// Most keys remembered at once.
    pub max_entries: usize,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            enabled: true,
            account_ip_failures: 5,
            ip_failures: 50,
            oauth_starts: 30,
            window: 15 * 60,
            max_entries: 50_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: i64,
    count: u32,
}

/// Which counter a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scope {
    AccountIp,
    Ip,
    OAuthStart,
}

pub struct Throttle {
    settings: ThrottleSettings,
    hasher: RandomState,
    windows: Mutex<HashMap<u64, Window>>,
}

/// Seconds until the caller may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub i64);

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Throttle {
        Throttle { settings, hasher: RandomState::new(), windows: Mutex::new(HashMap::new()) }
    }

    fn key(&self, scope: Scope, account: &str, ip: Option<IpAddr>) -> u64 {
        self.hasher.hash_one((scope, account, ip))
    }

    fn limit(&self, scope: Scope) -> u32 {
        match scope {
            Scope::AccountIp => self.settings.account_ip_failures,
            Scope::Ip => self.settings.ip_failures,
            Scope::OAuthStart => self.settings.oauth_starts,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Window>> {
        // A panic while holding this lock cannot leave the counters inconsistent.
        self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// When a key has reached its limit in the current window, how long until it resets.
    fn blocked(&self, scope: Scope, key: u64, now: i64) -> Option<RetryAfter> {
        let windows = self.lock();
        let window = windows.get(&key)?;
        let ends = window.started + self.settings.window;
        (now < ends && window.count >= self.limit(scope)).then(|| RetryAfter((ends - now).max(1)))
    }

    fn count(&self, key: u64, now: i64) {
        let mut windows = self.lock();
        if !windows.contains_key(&key) && windows.len() >= self.settings.max_entries {
            self.make_room(&mut windows, now);
        }
        let window = windows.entry(key).or_insert(Window { started: now, count: 0 });
        if now >= window.started + self.settings.window {
            *window = Window { started: now, count: 0 };
        }
        window.count = window.count.saturating_add(1);
    }

    /// Drops expired windows; if that is not enough, the tenth of entries that tell least
    /// (fewest failures, then oldest). Done in one pass, so a spray costs O(1) amortised.
    fn make_room(&self, windows: &mut HashMap<u64, Window>, now: i64) {
        let span = self.settings.window;
        windows.retain(|_, w| now < w.started + span);
        if windows.len() < self.settings.max_entries {
            return;
        }
        let mut ranked: Vec<(u32, i64, u64)> =
            windows.iter().map(|(k, w)| (w.count, w.started, *k)).collect();
        let drop = (ranked.len() / 10).max(1);
        ranked.select_nth_unstable(drop - 1);
        for (_, _, key) in &ranked[..drop] {
            windows.remove(key);
        }
    }

    /// Whether a password sign-in for `account` from `ip` may run its hash now.
    pub fn check_login(&self, account: &str, ip: Option<IpAddr>, now: i64) -> Result<(), RetryAfter> {
        if !self.settings.enabled {
            return Ok(());
        }
        let pair = self.blocked(Scope::AccountIp, self.key(Scope::AccountIp, account, ip), now);
        let wide = self.blocked(Scope::Ip, self.key(Scope::Ip, "", ip), now);
        match pair.into_iter().chain(wide).max_by_key(|r| r.0) {
            Some(retry) => Err(retry),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, account: &str, ip: Option<IpAddr>, now: i64) {
        if self.settings.enabled {
            self.count(self.key(Scope::AccountIp, account, ip), now);
            self.count(self.key(Scope::Ip, "", ip), now);
        }
    }

    /// A successful sign-in clears that account's counter for that IP (not the IP's).
    pub fn record_success(&self, account: &str, ip: Option<IpAddr>) {
        let key = self.key(Scope::AccountIp, account, ip);
        self.lock().remove(&key);
    }

    /// Counts an OAuth start from `ip`, or says how long to wait.
    pub fn oauth_start(&self, ip: Option<IpAddr>, now: i64) -> Result<(), RetryAfter> {
        if !self.settings.enabled {
            return Ok(());
        }
        let key = self.key(Scope::OAuthStart, "", ip);
        if let Some(retry) = self.blocked(Scope::OAuthStart, key, now) {
            return Err(retry);
        }
        self.count(key, now);
        Ok(())
    }

    /// Keys remembered now (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    fn small() -> ThrottleSettings {
        ThrottleSettings {
            account_ip_failures: 3,
            ip_failures: 5,
            oauth_starts: 2,
            window: 100,
            ..Default::default()
        }
    }

    #[test]
    fn the_account_ip_limit_blocks_until_the_window_ends() {
        let t = Throttle::new(small());
        for _ in 0..3 {
            assert_eq!(t.check_login("alice", ip(1), 10), Ok(()));
            t.record_failure("alice", ip(1), 10);
        }
        assert_eq!(t.check_login("alice", ip(1), 50), Err(RetryAfter(60)));
        assert_eq!(t.check_login("alice", ip(2), 50), Ok(()), "another IP is not locked out");
        assert_eq!(t.check_login("alice", ip(1), 110), Ok(()), "the window has passed");
    }

    #[test]
    fn the_ip_limit_spans_accounts() {
        let t = Throttle::new(small());
        for n in 0..5 {
            t.record_failure(&format!("user{n}"), ip(1), 0);
        }
        assert!(t.check_login("someone-new", ip(1), 1).is_err());
        assert!(t.check_login("someone-new", ip(2), 1).is_ok());
    }

    #[test]
    fn success_resets_the_account_counter_only() {
        let t = Throttle::new(small());
        for _ in 0..3 {
            t.record_failure("alice", ip(1), 0);
        }
        t.record_success("alice", ip(1));
        assert_eq!(t.check_login("alice", ip(1), 1), Ok(()));
        t.record_failure("alice", ip(1), 1);
        t.record_failure("alice", ip(1), 1);
        assert!(t.check_login("bob", ip(1), 1).is_err(), "the IP's five failures still count");
    }

    #[test]
    fn oauth_starts_are_limited_per_ip() {
        let t = Throttle::new(small());
        assert!(t.oauth_start(ip(1), 0).is_ok());
        assert!(t.oauth_start(ip(1), 0).is_ok());
        assert!(t.oauth_start(ip(1), 0).is_err());
        assert!(t.oauth_start(ip(2), 0).is_ok());
    }

    #[test]
    fn memory_stays_bounded_after_100000_distinct_usernames_and_real_counters_survive() {
        let t = Throttle::new(ThrottleSettings { max_entries: 1000, ..small() });
        for _ in 0..3 {
            t.record_failure("victim-of-guessing", ip(9), 0);
        }
        for n in 0..100_000u32 {
            t.record_failure(&format!("spray-{n}"), Some(IpAddr::from(n.to_be_bytes())), 1);
        }
        assert!(t.len() <= 1000, "{} entries", t.len());
        assert!(t.check_login("victim-of-guessing", ip(9), 2).is_err(), "the real counter was kept");
    }

    #[test]
    fn disabled_throttling_never_blocks() {
        let t = Throttle::new(ThrottleSettings { enabled: false, ..small() });
        for _ in 0..10 {
            t.record_failure("alice", ip(1), 0);
        }
        assert!(t.check_login("alice", ip(1), 0).is_ok());
        assert!(t.is_empty());
    }
}
