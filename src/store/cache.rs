//! The session guard's short-lived memory of the sessions it read (with their users), and
//! the OpenID provider's of the grants its access tokens name (with their users):
//! `session.cache_ttl` seconds, forgotten on every write through the store that touches the
//! session, the grant or the user, and (PostgreSQL) on every such write another instance
//! announces.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::store::{GrantRow, LiveSession, User};

/// The cache is cleared rather than grown past this many sessions.
const MAX_CACHED_SESSIONS: usize = 10_000;

type Entry = (i64, Option<(LiveSession, User)>);
/// A grant as read, with its user (`None`: no such grant, or no such user).
pub(crate) type GrantEntry = Option<(GrantRow, User)>;

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
    grants: Mutex<HashMap<String, (i64, GrantEntry)>>,
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
            grants: Mutex::default(),
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
        self.lock_grants().clear();
    }

    fn lock_grants(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, GrantEntry)>> {
        self.grants.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What a read of the grant `id` less than `ttl` seconds before `now` found.
    pub(crate) fn get_grant(&self, id: &str, now: i64) -> Option<GrantEntry> {
        let ttl = self.ttl();
        if ttl <= 0 {
            return None;
        }
        let grants = self.lock_grants();
        let (read_at, found) = grants.get(id)?;
        (0..ttl).contains(&(now - read_at)).then(|| found.clone())
    }

    /// Keeps what a read of a grant found, unless a write happened since it began.
    pub(crate) fn put_grant(&self, ticket: ReadTicket, id: &str, found: &GrantEntry, now: i64) {
        if self.ttl() <= 0 {
            return;
        }
        let mut grants = self.lock_grants();
        if self.writes.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        if grants.len() >= MAX_CACHED_SESSIONS {
            grants.clear();
        }
        grants.insert(id.to_owned(), (now, found.clone()));
    }

    /// Called after every write that revokes grants (one, a session's, a consent's, a
    /// client's): rare, so every grant is forgotten.
    pub(crate) fn forget_grants(&self) {
        let mut grants = self.lock_grants();
        self.writes.fetch_add(1, Ordering::AcqRel);
        grants.clear();
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
        drop(sessions);
        self.lock_grants()
            .retain(|_, (_, found)| found.as_ref().is_none_or(|(grant, _)| grant.user_id != user_id));
    }
}
