//! The session guard's short-lived memory of the sessions it read (with their users):
//! `session.cache_ttl` seconds, forgotten on every write through the store that touches the
//! session or its user, and (PostgreSQL) on every such write another instance announces.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::store::{LiveSession, User};

/// The cache is cleared rather than grown past this many sessions.
const MAX_CACHED_SESSIONS: usize = 10_000;

type Entry = (i64, Option<(LiveSession, User)>);

/// Sessions as the guard last read them, for `ttl` seconds. Ending a session, ending a
/// user's sessions, disabling a user or changing a password through the store forgets what
/// it touched, so they take effect at once. On PostgreSQL every instance hears the others'
/// writes (LISTEN/NOTIFY) and forgets the same; while it cannot hear them (`degraded`),
/// nothing is cached, as with `cache_ttl = 0`. On SQLite a write from another process (the
/// `users` CLI) takes effect within `ttl` seconds.
pub(crate) struct SessionCache {
    ttl: AtomicI64,
    degraded: AtomicBool,
    /// How many times caching resumed after a (re)connected listener: for tests and logs.
    resumed: AtomicU64,
    sessions: Mutex<HashMap<String, Entry>>,
    /// Bumped by every write: a read that overlapped one is not cached.
    writes: AtomicU64,
}

/// What [`SessionCache::begin_read`] hands back: the write count when the read began.
pub(crate) struct ReadTicket(u64);

impl SessionCache {
    pub(crate) fn new(ttl: i64) -> SessionCache {
        SessionCache {
            ttl: AtomicI64::new(ttl),
            degraded: AtomicBool::new(false),
            resumed: AtomicU64::new(0),
            sessions: Mutex::default(),
            writes: AtomicU64::new(0),
        }
    }

    pub(crate) fn set_ttl(&self, ttl: i64) {
        self.ttl.store(ttl, Ordering::Release);
    }

    fn ttl(&self) -> i64 {
        if self.degraded.load(Ordering::Acquire) {
            0
        } else {
            self.ttl.load(Ordering::Acquire)
        }
    }

    /// Stops (or resumes) caching; stopping forgets everything, since writes announced
    /// meanwhile may have been missed.
    pub(crate) fn set_degraded(&self, degraded: bool) {
        if degraded {
            self.degraded.store(true, Ordering::Release);
            self.forget_all();
        } else {
            self.forget_all();
            self.degraded.store(false, Ordering::Release);
            self.resumed.fetch_add(1, Ordering::AcqRel);
        }
    }

    pub(crate) fn times_resumed(&self) -> u64 {
        self.resumed.load(Ordering::Acquire)
    }

    pub(crate) fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    /// Forgets every entry (a notification may have been lost).
    pub(crate) fn forget_all(&self) {
        let mut sessions = self.lock();
        self.writes.fetch_add(1, Ordering::AcqRel);
        sessions.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What a read less than `ttl` seconds before `now` found (`Some(None)`: no such
    /// session), if there was one.
    pub(crate) fn get(&self, id: &str, now: i64) -> Option<Option<(LiveSession, User)>> {
        let ttl = self.ttl();
        if ttl <= 0 {
            return None;
        }
        let sessions = self.lock();
        let (read_at, found) = sessions.get(id)?;
        (0..ttl).contains(&(now - read_at)).then(|| found.clone())
    }

    pub(crate) fn begin_read(&self) -> ReadTicket {
        ReadTicket(self.writes.load(Ordering::Acquire))
    }

    /// Keeps what a read found, unless a write happened since it began.
    pub(crate) fn put(&self, ticket: ReadTicket, id: &str, found: Option<&(LiveSession, User)>, now: i64) {
        if self.ttl() <= 0 {
            return;
        }
        let mut sessions = self.lock();
        if self.writes.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        if sessions.len() >= MAX_CACHED_SESSIONS {
            sessions.clear();
        }
        sessions.insert(id.to_owned(), (now, found.cloned()));
    }

    /// Called after every write to a session.
    pub(crate) fn forget_session(&self, id: &str) {
        let mut sessions = self.lock();
        self.writes.fetch_add(1, Ordering::AcqRel);
        sessions.remove(id);
    }

    /// Called after every write to a user or to all of a user's sessions.
    pub(crate) fn forget_user(&self, user_id: i64) {
        let mut sessions = self.lock();
        self.writes.fetch_add(1, Ordering::AcqRel);
        sessions.retain(|_, (_, found)| found.as_ref().is_none_or(|(_, user)| user.id != user_id));
    }
}
