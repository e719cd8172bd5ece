//! Failed-login and OAuth-start throttling: fixed windows per key (account+IP, IP), in
//! bounded memory, or, on PostgreSQL, in the store, so every instance draws on one budget.
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

use crate::config::{InstanceKey, ThrottleSettings};
use crate::store::Store;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: i64,
    count: u32,
    /// Whether a refusal in this window was already reported (logged to the audit log).
    reported: bool,
}

/// Which counter a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scope {
    AccountIp,
    Ip,
    OAuthStart,
    ResetRequest,
}

pub struct Throttle {
    settings: ThrottleSettings,
    hasher: RandomState,
    windows: Mutex<HashMap<u64, Window>>,
    /// Set when the counters live in the store (several instances).
    shared: Option<Shared>,
}

/// Counters in the store, under buckets named by an HMAC keyed with a key derived from
/// `secret_key`, so every instance names the same bucket the same way and the store never
/// holds what was typed.
struct Shared {
    store: Store,
    key: ring::hmac::Key,
}

/// The buckets an attempt was counted in.
enum Counted {
    Memory(u64, u64),
    Shared(String, String),
}

/// Seconds until the caller may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub i64);

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Throttle {
        Throttle { settings, hasher: RandomState::new(), windows: Mutex::new(HashMap::new()), shared: None }
    }

    /// Counters kept in `store`, shared by every instance that uses it with the same
    /// `secret_key`.
    pub fn shared(settings: ThrottleSettings, store: Store, key: &InstanceKey) -> Throttle {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key.0);
        Throttle { shared: Some(Shared { store, key }), ..Throttle::new(settings) }
    }

    /// `throttle.window`, in seconds.
    pub fn window(&self) -> i64 {
        self.settings.window
    }

    /// Whether the counters are in the store.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    fn bucket(shared: &Shared, scope: Scope, account: &str, ip: Option<IpAddr>) -> String {
        let ip = ip.map(|ip| ip.to_string()).unwrap_or_default();
        let mut message = Vec::with_capacity(account.len() + ip.len() + 16);
        message.extend_from_slice(format!("{scope:?}").as_bytes());
        for part in [account, &ip] {
            message.push(0);
            message.extend_from_slice(part.as_bytes());
        }
        let tag = ring::hmac::sign(&shared.key, &message);
        tag.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn key(&self, scope: Scope, account: &str, ip: Option<IpAddr>) -> u64 {
        self.hasher.hash_one((scope, account, ip))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Window>> {
        // A panic while holding this lock cannot leave the counters inconsistent.
        self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// When the window under `key` has reached `limit`, how long until it resets.
    fn blocked(&self, windows: &HashMap<u64, Window>, key: u64, limit: u32, now: i64) -> Option<RetryAfter> {
        let window = windows.get(&key)?;
        let ends = window.started + self.settings.window;
        (now < ends && window.count >= limit).then(|| RetryAfter((ends - now).max(1)))
    }

    fn count(&self, windows: &mut HashMap<u64, Window>, key: u64, now: i64) {
        if !windows.contains_key(&key) && windows.len() >= self.settings.max_entries {
            self.make_room(windows, now);
        }
        let window = windows.entry(key).or_insert(Window { started: now, count: 0, reported: false });
        if now >= window.started + self.settings.window {
            *window = Window { started: now, count: 0, reported: false };
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

    /// Takes one password attempt for `account` from `ip` out of both budgets (account+IP
    /// and IP) before its hash runs, or says how long to wait. Check and count are one step
    /// under the lock, so a burst of concurrent guesses can never run more hashes than the
    /// limits allow: the attempt counts as a failure unless [`Attempt::refund`] gives it back.
    ///
    /// With shared counters the same happens in one store transaction; a store that does
    /// not answer is an error (no hash runs).
    pub async fn reserve_login(
        &self,
        account: &str,
        ip: Option<IpAddr>,
        now: i64,
    ) -> Result<Result<Attempt<'_>, RetryAfter>, sqlx::Error> {
        if !self.settings.enabled {
            return Ok(Ok(Attempt { throttle: self, keys: None }));
        }
        let Some(shared) = &self.shared else { return Ok(self.reserve_in_memory(account, ip, now)) };
        let pair = Throttle::bucket(shared, Scope::AccountIp, account, ip);
        let wide = Throttle::bucket(shared, Scope::Ip, "", ip);
        let limits = [
            (pair.as_str(), i64::from(self.settings.account_ip_failures)),
            (wide.as_str(), i64::from(self.settings.ip_failures)),
        ];
        Ok(match shared.store.throttle_take(&limits, self.settings.window, now).await? {
            Ok(()) => Ok(Attempt { throttle: self, keys: Some(Counted::Shared(pair, wide)) }),
            Err(wait) => Err(RetryAfter(wait)),
        })
    }

    fn reserve_in_memory(
        &self,
        account: &str,
        ip: Option<IpAddr>,
        now: i64,
    ) -> Result<Attempt<'_>, RetryAfter> {
        let pair = self.key(Scope::AccountIp, account, ip);
        let wide = self.key(Scope::Ip, "", ip);
        let mut windows = self.lock();
        let refused = self.blocked(&windows, pair, self.settings.account_ip_failures, now);
        let refused_wide = self.blocked(&windows, wide, self.settings.ip_failures, now);
        if let Some(retry) = refused.into_iter().chain(refused_wide).max_by_key(|r| r.0) {
            return Err(retry);
        }
        self.count(&mut windows, pair, now);
        self.count(&mut windows, wide, now);
        Ok(Attempt { throttle: self, keys: Some(Counted::Memory(pair, wide)) })
    }

    /// After a refusal: whether it is the first one for this account and address (or this
    /// address) in the current window. The audit log records that one, not every refused
    /// attempt, so a flood of refused guesses costs the store nothing.
    pub async fn first_refusal(&self, account: &str, ip: Option<IpAddr>) -> bool {
        if let Some(shared) = &self.shared {
            let pair = Throttle::bucket(shared, Scope::AccountIp, account, ip);
            let wide = Throttle::bucket(shared, Scope::Ip, "", ip);
            return match shared.store.throttle_first_refusal(&[&pair, &wide]).await {
                Ok(first) => first,
                Err(e) => {
                    log::warn!("throttle: could not mark a refusal as reported: {e}");
                    false
                }
            };
        }
        let mut windows = self.lock();
        let mut first = false;
        for key in [self.key(Scope::AccountIp, account, ip), self.key(Scope::Ip, "", ip)] {
            if let Some(window) = windows.get_mut(&key) {
                first |= !window.reported;
                window.reported = true;
            }
        }
        first
    }

    /// Counts an OAuth start from `ip`, or says how long to wait.
    pub async fn oauth_start(
        &self,
        ip: Option<IpAddr>,
        now: i64,
    ) -> Result<Result<(), RetryAfter>, sqlx::Error> {
        self.per_ip(Scope::OAuthStart, self.settings.oauth_starts, ip, now).await
    }

    /// Counts a "forgot password" request from `ip`, or says how long to wait.
    pub async fn reset_request(
        &self,
        ip: Option<IpAddr>,
        now: i64,
    ) -> Result<Result<(), RetryAfter>, sqlx::Error> {
        self.per_ip(Scope::ResetRequest, self.settings.reset_requests, ip, now).await
    }

    /// Counts one `scope` event from `ip` against `limit` a window.
    async fn per_ip(
        &self,
        scope: Scope,
        limit: u32,
        ip: Option<IpAddr>,
        now: i64,
    ) -> Result<Result<(), RetryAfter>, sqlx::Error> {
        if !self.settings.enabled {
            return Ok(Ok(()));
        }
        if let Some(shared) = &self.shared {
            let bucket = Throttle::bucket(shared, scope, "", ip);
            let limit = [(bucket.as_str(), i64::from(limit))];
            return Ok(shared
                .store
                .throttle_take(&limit, self.settings.window, now)
                .await?
                .map_err(RetryAfter));
        }
        let key = self.key(scope, "", ip);
        let mut windows = self.lock();
        if let Some(retry) = self.blocked(&windows, key, limit, now) {
            return Ok(Err(retry));
        }
        self.count(&mut windows, key, now);
        Ok(Ok(()))
    }

    /// Keys remembered now (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A password attempt already counted as a failure in both budgets. Dropping it keeps it
/// counted (a client that hangs up mid-hash has still had its guess); [`Attempt::refund`]
/// gives it back when the attempt turned out not to be a guess.
#[must_use = "an attempt is refunded only by calling refund()"]
pub struct Attempt<'t> {
    throttle: &'t Throttle,
    /// (account+IP, IP); `None` when throttling is off.
    keys: Option<Counted>,
}

impl Attempt<'_> {
    /// The password was right, or no hash could run (busy, store down): a success clears
    /// the account+IP counter and the IP's counter loses this attempt again.
    pub async fn refund(self) {
        let (pair, wide) = match self.keys {
            None => return,
            Some(Counted::Memory(pair, wide)) => (pair, wide),
            Some(Counted::Shared(pair, wide)) => {
                let Some(shared) = &self.throttle.shared else { return };
                if let Err(e) = shared.store.throttle_refund(&pair, &wide).await {
                    log::warn!("throttle: could not give an attempt back (it stays counted): {e}");
                }
                return;
            }
        };
        let mut windows = self.throttle.lock();
        windows.remove(&pair);
        if let Some(window) = windows.get_mut(&wide) {
            window.count = window.count.saturating_sub(1);
        }
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

    /// The in-memory counters, synchronously.
    impl Throttle {
        fn reserve(&self, account: &str, ip: Option<IpAddr>, now: i64) -> Result<Attempt<'_>, RetryAfter> {
            ready(self.reserve_login(account, ip, now)).unwrap_or_else(|e| panic!("memory counters: {e}"))
        }
    }

    impl Attempt<'_> {
        fn give_back(self) {
            ready(self.refund());
        }
    }

    /// Memory counters never wait: polls the future once.
    fn ready<F: std::future::Future>(future: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut future = std::pin::pin!(future);
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => panic!("an in-memory throttle call waited"),
        }
    }

    fn oauth(t: &Throttle, ip: Option<IpAddr>) -> Result<(), RetryAfter> {
        ready(t.oauth_start(ip, 0)).unwrap_or_else(|e| panic!("memory counters: {e}"))
    }

    /// A guess that turned out wrong: the reservation stays counted.
    fn fail(t: &Throttle, account: &str, ip: Option<IpAddr>, now: i64) {
        drop(t.reserve(account, ip, now).expect("within the limit"));
    }

    fn allowed(t: &Throttle, account: &str, ip: Option<IpAddr>, now: i64) -> Result<(), RetryAfter> {
        t.reserve(account, ip, now).map(Attempt::give_back)
    }

    #[test]
    fn the_account_ip_limit_blocks_until_the_window_ends() {
        let t = Throttle::new(small());
        for _ in 0..3 {
            fail(&t, "alice", ip(1), 10);
        }
        assert_eq!(allowed(&t, "alice", ip(1), 50), Err(RetryAfter(60)));
        assert_eq!(allowed(&t, "alice", ip(2), 50), Ok(()), "another IP is not locked out");
        assert_eq!(allowed(&t, "alice", ip(1), 110), Ok(()), "the window has passed");
    }

    #[test]
    fn attempts_in_flight_count_before_their_hash_has_run() {
        let t = Throttle::new(small());
        let in_flight: Vec<_> = (0..3).map(|_| t.reserve("alice", ip(1), 0).unwrap()).collect();
        assert!(t.reserve("alice", ip(1), 0).is_err(), "a fourth concurrent guess is refused");
        drop(in_flight);
        assert!(t.reserve("alice", ip(1), 0).is_err(), "dropped attempts stay counted");
    }

    #[test]
    fn a_refunded_attempt_gives_its_place_back() {
        let t = Throttle::new(small());
        fail(&t, "alice", ip(1), 0);
        fail(&t, "alice", ip(1), 0);
        t.reserve("alice", ip(1), 0).unwrap().give_back();
        for n in 0..2 {
            fail(&t, &format!("user{n}"), ip(1), 0);
        }
        assert_eq!(allowed(&t, "alice", ip(1), 0), Ok(()), "success cleared alice's counter");
        drop(t.reserve("bob", ip(1), 0).expect("the IP has 4 failures, not 5"));
        assert!(t.reserve("carol", ip(1), 0).is_err(), "now the IP's limit is reached");
    }

    #[test]
    fn the_ip_limit_spans_accounts() {
        let t = Throttle::new(small());
        for n in 0..5 {
            fail(&t, &format!("user{n}"), ip(1), 0);
        }
        assert!(allowed(&t, "someone-new", ip(1), 1).is_err());
        assert!(allowed(&t, "someone-new", ip(2), 1).is_ok());
    }

    #[test]
    fn success_resets_the_account_counter_only() {
        let t = Throttle::new(small());
        for _ in 0..2 {
            fail(&t, "alice", ip(1), 0);
        }
        t.reserve("alice", ip(1), 0).unwrap().give_back();
        assert_eq!(allowed(&t, "alice", ip(1), 1), Ok(()));
        fail(&t, "alice", ip(1), 1);
        fail(&t, "alice", ip(1), 1);
        fail(&t, "alice", ip(1), 1);
        assert!(allowed(&t, "bob", ip(1), 1).is_err(), "the IP's five failures still count");
    }

    #[test]
    fn only_the_first_refusal_of_a_window_is_reported() {
        let t = Throttle::new(small());
        for _ in 0..3 {
            fail(&t, "alice", ip(1), 0);
        }
        assert!(t.reserve("alice", ip(1), 1).is_err());
        assert!(ready(t.first_refusal("alice", ip(1))));
        assert!(!ready(t.first_refusal("alice", ip(1))), "the next refusals are not");
        assert!(t.reserve("alice", ip(1), 200).is_ok(), "a new window");
        for _ in 0..2 {
            fail(&t, "alice", ip(1), 200);
        }
        assert!(ready(t.first_refusal("alice", ip(1))), "reported again in the new window");
    }

    #[test]
    fn oauth_starts_are_limited_per_ip() {
        let t = Throttle::new(small());
        assert!(oauth(&t, ip(1)).is_ok());
        assert!(oauth(&t, ip(1)).is_ok());
        assert!(oauth(&t, ip(1)).is_err());
        assert!(oauth(&t, ip(2)).is_ok());
    }

    #[test]
    fn memory_stays_bounded_after_100000_distinct_usernames_and_real_counters_survive() {
        let t = Throttle::new(ThrottleSettings { max_entries: 1000, ..small() });
        for _ in 0..3 {
            fail(&t, "victim-of-guessing", ip(9), 0);
        }
        for n in 0..100_000u32 {
            fail(&t, &format!("spray-{n}"), Some(IpAddr::from(n.to_be_bytes())), 1);
        }
        assert!(t.len() <= 1000, "{} entries", t.len());
        assert!(allowed(&t, "victim-of-guessing", ip(9), 2).is_err(), "the real counter was kept");
    }

    #[test]
    fn disabled_throttling_never_blocks() {
        let t = Throttle::new(ThrottleSettings { enabled: false, ..small() });
        for _ in 0..10 {
            fail(&t, "alice", ip(1), 0);
        }
        assert!(allowed(&t, "alice", ip(1), 0).is_ok());
        assert!(t.is_empty());
    }
}
