//! Several instances on one PostgreSQL: each announces the sessions and users it changed
//! (`NOTIFY portal_revoked`), and each listens, so a session ended on one instance is not
//! served from another instance's cache. While the listening connection is down, the cache
//! is off (every request reads the store) until it is back. Also the store's readiness: on
//! PostgreSQL the portal may start before its database does.

use std::sync::{Mutex, Weak};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::broadcast;

use super::cache::SessionCache;
use super::{Pool, Store};

/// The channel every instance listens on.
pub(crate) const CHANNEL: &str = "portal_revoked";

/// What an announcement names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Revoked<'a> {
    Session(&'a str),
    User(i64),
    /// OpenID grants were revoked (every instance forgets every grant it read).
    Grants,
}

impl Revoked<'_> {
    /// `s:<session id>` or `u:<user id>`, then `:<nonce>` when the sender waits for its own
    /// echo.
    fn payload(&self, nonce: u64) -> String {
        match self {
            Revoked::Session(id) => format!("s:{id}:{nonce:x}"),
            Revoked::User(id) => format!("u:{id}:{nonce:x}"),
            Revoked::Grants => format!("g:-:{nonce:x}"),
        }
    }
}

/// Applies one notification's payload to the cache (an unreadable payload forgets all);
/// returns its nonce, if it has one.
fn apply(cache: &SessionCache, payload: &str) -> Option<u64> {
    let mut parts = payload.splitn(3, ':');
    let (kind, id, nonce) = (parts.next(), parts.next(), parts.next());
    match (kind, id) {
        (Some("s"), Some(id)) => cache.forget_session(id),
        (Some("u"), Some(id)) => match id.parse() {
            Ok(id) => cache.forget_user(id),
            Err(_) => cache.forget_all(),
        },
        (Some("g"), _) => cache.forget_grants(),
        _ => cache.forget_all(),
    }
    nonce.and_then(|n| u64::from_str_radix(n, 16).ok())
}

/// How long the instance that made a change waits for its own listener to hear the
/// announcement before it answers (normally a millisecond or two).
const ECHO_WAIT: Duration = Duration::from_millis(500);

impl Store {
    /// Forgets what a write touched here and, on PostgreSQL, tells the other instances to.
    /// Called after the write committed. If the announcement fails (the database went away
    /// just then) the others keep the entry for at most `session.cache_ttl` seconds, and
    /// their listeners, having lost the connection too, turn their caches off anyway.
    pub(crate) async fn revoked(&self, what: Revoked<'_>) {
        match &what {
            Revoked::Session(id) => self.sessions.forget_session(id),
            Revoked::User(id) => self.sessions.forget_user(*id),
            Revoked::Grants => self.sessions.forget_grants(),
        }
        if let Pool::Postgres(pool) = &self.pool {
            // PostgreSQL delivers a notification to every listener at once; when this
            // instance's own listener has it, the others have it on their sockets too. So
            // the change is answered only then, and the browser's next request, wherever it
            // lands, finds the entry gone (tests/postgres and tests/cluster measure it).
            let nonce: u64 = rand::random();
            let mut echoes = self.heard.subscribe();
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(what.payload(nonce))
                .execute(pool)
                .await;
            match sent {
                Err(e) => log::warn!("could not tell the other instances about an ended session: {e}"),
                Ok(_) if self.sessions.is_degraded() => {}
                Ok(_) => {
                    let heard = tokio::time::timeout(ECHO_WAIT, async {
                        loop {
                            match echoes.recv().await {
                                Ok(echo) if echo == nonce => return,
                                Ok(_) => {}
                                // Lagging or closed: stop waiting, the listener is busy or gone.
                                Err(_) => return,
                            }
                        }
                    })
                    .await;
                    if heard.is_err() {
                        log::warn!("this instance did not hear its own revocation within {ECHO_WAIT:?}");
                    }
                }
            }
        }
    }
}

/// Listens on [`CHANNEL`] for as long as the cache exists, reconnecting when the
/// connection drops; the cache is off while not listening.
pub(crate) fn spawn_listener(pool: PgPool, cache: Weak<SessionCache>, heard: broadcast::Sender<u64>) {
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
                        Some(cache) => {
                            if let Some(nonce) = apply(&cache, note.payload()) {
                                // Nobody waiting is fine.
                                let _ = heard.send(nonce);
                            }
                        }
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
    fn payloads_name_a_session_or_a_user_and_carry_a_nonce() {
        assert_eq!(Revoked::Session("abc").payload(255), "s:abc:ff");
        assert_eq!(Revoked::User(7).payload(1), "u:7:1");
        assert_eq!(Revoked::Grants.payload(2), "g:-:2");
        let cache = SessionCache::new(60);
        assert_eq!(apply(&cache, "s:abc:ff"), Some(255));
        assert_eq!(apply(&cache, "u:7"), None, "a payload without a nonce still applies");
        assert_eq!(apply(&cache, "u:x:1"), Some(1));
        assert_eq!(apply(&cache, "g:-:3"), Some(3));
    }
}
