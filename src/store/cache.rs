//! The session guard's short-lived memory of users it read: `session.cache_ttl` seconds,
//! forgotten on every write through the store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::store::User;

/// The cache is cleared rather than grown past this many users.
const MAX_CACHED_USERS: usize = 10_000;

/// Users as the session guard last read them, for `ttl` seconds. Every write through the
/// store forgets the user it touched, so logout, a password change or disabling take effect
/// at once; a write from another process (the `users` CLI) within `ttl` seconds.
pub(crate) struct SessionCache {
    ttl: i64,
    users: Mutex<HashMap<i64, (i64, User)>>,
    /// Bumped by every write: a read that overlapped one is not cached.
    writes: AtomicU64,
}

/// What [`SessionCache::begin_read`] hands back: the write count when the read began.
pub(crate) struct ReadTicket(u64);

impl SessionCache {
    pub(crate) fn new(ttl: i64) -> SessionCache {
        SessionCache { ttl, users: Mutex::default(), writes: AtomicU64::new(0) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (i64, User)>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.users.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The user read less than `ttl` seconds before `now`, if any.
    pub(crate) fn get(&self, id: i64, now: i64) -> Option<User> {
        if self.ttl <= 0 {
            return None;
        }
        let users = self.lock();
        let (read_at, user) = users.get(&id)?;
        (0..self.ttl).contains(&(now - read_at)).then(|| user.clone())
    }

    pub(crate) fn begin_read(&self) -> ReadTicket {
        ReadTicket(self.writes.load(Ordering::Acquire))
    }

    /// Keeps what a read found, unless a write happened since it began.
    pub(crate) fn put(&self, ticket: ReadTicket, id: i64, user: Option<&User>, now: i64) {
        if self.ttl <= 0 {
            return;
        }
        let mut users = self.lock();
        if self.writes.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        match user {
            Some(user) => {
                if users.len() >= MAX_CACHED_USERS {
                    users.clear();
                }
                users.insert(id, (now, user.clone()));
            }
            None => {
                users.remove(&id);
            }
        }
    }

    /// Called after every write to a user.
    pub(crate) fn forget(&self, id: i64) {
        let mut users = self.lock();
        self.writes.fetch_add(1, Ordering::AcqRel);
        users.remove(&id);
    }
}
