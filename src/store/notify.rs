//! Several instances on one PostgreSQL: each announces the sessions and users it changed
//! (`NOTIFY portal_revoked`), and each listens, so a session ended on one instance is not
//! served from another instance's cache. While the listening connection is down, the cache
//! is off (every request reads the store) until it is back. Also the store's readiness: on
//! PostgreSQL the portal may start before its database does.

use std::sync::{Mutex, Weak};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};

use super::cache::SessionCache;
use super::{Pool, Store};

/// The channel every instance listens on.
pub(crate) const CHANNEL: &str = "portal_revoked";

/// What an announcement names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Revoked<'a> {
    Session(&'a str),
    User(i64),
}

impl Revoked<'_> {
    fn payload(&self) -> String {
        match self {
            Revoked::Session(id) => format!("s:{id}"),
            Revoked::User(id) => format!("u:{id}"),
        }
    }
}

/// Applies one notification's payload to the cache; an unreadable payload forgets all.
fn apply(cache: &SessionCache, payload: &str) {
    match payload.split_once(':') {
        Some(("s", id)) => cache.forget_session(id),
        Some(("u", id)) => match id.parse() {
            Ok(id) => cache.forget_user(id),
            Err(_) => cache.forget_all(),
        },
        _ => cache.forget_all(),
    }
}

impl Store {
    /// Forgets what a write touched here and, on PostgreSQL, tells the other instances to.
    /// Called after the write committed. If the announcement fails (the database went away
    /// just then) the others keep the entry for at most `session.cache_ttl` seconds, and
    /// their listeners, having lost the connection too, turn their caches off anyway.
    pub(crate) async fn revoked(&self, what: Revoked<'_>) {
        match &what {
            Revoked::Session(id) => self.sessions.forget_session(id),
            Revoked::User(id) => self.sessions.forget_user(*id),
        }
        if let Pool::Postgres(pool) = &self.pool {
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(what.payload())
                .execute(pool)
                .await;
            if let Err(e) = sent {
                log::warn!("could not tell the other instances about an ended session: {e}");
            }
        }
    }

    /// Forgets a session here only (a write that does not revoke: activity).
    pub(crate) fn forget_here(&self, id: &str) {
        self.sessions.forget_session(id);
    }
}

/// Listens on [`CHANNEL`] for as long as the cache exists, reconnecting when the
/// connection drops; the cache is off while not listening.
pub(crate) fn spawn_listener(pool: PgPool, cache: Weak<SessionCache>) {
    tokio::spawn(async move {
        let mut logged_down = false;
        loop {
            let Some(strong) = cache.upgrade() else { return };
            strong.set_degraded(true);
            drop(strong);
            let mut listener = match connect(&pool).await {
                Ok(listener) => listener,
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    if !logged_down {
                        log::warn!(
                            "not hearing other instances' revocations ({e}): session cache off until back"
                        );
                        logged_down = true;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let Some(strong) = cache.upgrade() else { return };
            strong.set_degraded(false);
            drop(strong);
            if std::mem::take(&mut logged_down) {
                log::info!("hearing other instances' revocations again: session cache on");
            }
            loop {
                match listener.try_recv().await {
                    Ok(Some(note)) => match cache.upgrade() {
                        Some(cache) => apply(&cache, note.payload()),
                        None => return,
                    },
                    // The connection dropped and was made again: what was sent meanwhile
                    // is lost, so forget everything.
                    Ok(None) => match cache.upgrade() {
                        Some(cache) => cache.set_degraded(false),
                        None => return,
                    },
                    Err(sqlx::Error::PoolClosed) => return,
                    Err(e) => {
                        log::warn!("lost the revocation listener ({e}): session cache off until back");
                        logged_down = true;
                        break;
                    }
                }
            }
        }
    });
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Whether the store's first-start work is done (PostgreSQL may come up after the portal).
pub(crate) struct Readiness {
    /// `None`: ready; `Some(why)`: not yet, and why.
    waiting: Mutex<Option<String>>,
}

impl Readiness {
    pub(crate) fn ready() -> Readiness {
        Readiness { waiting: Mutex::new(None) }
    }

    pub(crate) fn waiting() -> Readiness {
        Readiness { waiting: Mutex::new(Some("the store has not been reached yet".into())) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.lock().is_none()
    }

    pub(crate) fn set_ready(&self) {
        *self.lock() = None;
    }

    pub(crate) fn set_waiting(&self, why: String) {
        *self.lock() = Some(why);
    }

    /// `Err` (an unavailable store) while not ready.
    pub(crate) fn check(&self) -> Result<(), sqlx::Error> {
        match &*self.lock() {
            None => Ok(()),
            Some(why) => Err(sqlx::Error::Io(std::io::Error::other(format!("store not up yet: {why}")))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_a_session_or_a_user() {
        assert_eq!(Revoked::Session("abc").payload(), "s:abc");
        assert_eq!(Revoked::User(7).payload(), "u:7");
    }
}
