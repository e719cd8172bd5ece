//! The cookies that carry sign-in state: the session (who is signed in) and the OAuth flow
//! (a sign-in on its way to a provider and back). Both are private cookies through [`Jar`].

use rocket::time::Duration;

use crate::auth::factors::passkey::CEREMONY_SECS;
use crate::auth::factors::PENDING_SECS;
use crate::auth::oauth::{Flow, FLOW_LIFETIME_SECS};
use crate::auth::session::SessionToken;
use crate::auth::{Pending, SignedIn};
use crate::config::SessionSettings;
use crate::web::cookies::{CookieName, Jar};
use crate::web::csrf::CsrfToken;
use crate::web::flash::Kind;

pub const SESSION_COOKIE: CookieName =
    CookieName::shareable("portal_session", "__Host-portal_session", "__Secure-portal_session");
pub const FLOW_COOKIE: CookieName = CookieName::new("portal_oauth", "__Host-portal_oauth");
/// The id of this browser's passkey ceremony under way (its state stays in the store).
pub const CEREMONY_COOKIE: CookieName = CookieName::new("portal_passkey", "__Host-portal_passkey");
/// A sign-in between its two steps: bound to this browser, for five minutes at most.
pub const PENDING_COOKIE: CookieName = CookieName::new("portal_pending", "__Host-portal_pending");

impl Jar<'_> {
    /// Carries a new sign-in: a new session cookie (replacing any the browser had), a
    /// fresh CSRF token, and a greeting on the next page.
    pub fn sign_in(&self, signed_in: &SignedIn, settings: &SessionSettings) {
        self.write_session(signed_in, settings);
        self.end_pending();
        CsrfToken::rotate(self);
        match signed_in.factors_reset_at {
            Some(at) => self.flash(
                Kind::Info,
                format!(
                    "You are now signed in. An administrator removed your second factors on {}: \
                     set up a new one on your account page.",
                    crate::when::human(at)
                ),
            ),
            None => self.flash(Kind::Success, "You are now signed in."),
        }
    }

    /// Keeps a half-done sign-in for its second step. Any session this browser had is
    /// dropped: until the second step, nobody is signed in here.
    pub fn begin_second_step(&self, pending: &Pending) {
        self.end_session();
        match serde_json::to_string(pending) {
            Ok(value) => self.set(PENDING_COOKIE, value, Some(Duration::seconds(PENDING_SECS))),
            Err(e) => log::error!("could not encode a half-done sign-in: {e}"),
        }
    }

    /// The half-done sign-in this browser carries, if it decrypts and parses.
    pub fn pending(&self) -> Option<Pending> {
        serde_json::from_str(&self.get(PENDING_COOKIE)?).ok()
    }

    pub fn end_pending(&self) {
        if self.has(PENDING_COOKIE) {
            self.remove(PENDING_COOKIE);
        }
    }

    /// Writes the session token: a browser-session cookie, or with "Keep me signed in" one
    /// that lasts the absolute lifetime (the server enforces both limits from the record
    /// regardless).
    pub fn write_session(&self, signed_in: &SignedIn, settings: &SessionSettings) {
        let max_age = signed_in.session.persist.then(|| Duration::seconds(settings.absolute_timeout));
        match serde_json::to_string(&signed_in.token) {
            Ok(value) => self.set(SESSION_COOKIE, value, max_age),
            Err(e) => log::error!("could not encode a session token: {e}"),
        }
    }

    /// The session token in the browser's cookie, if it decrypts and parses.
    pub fn session_token(&self) -> Option<SessionToken> {
        serde_json::from_str(&self.get(SESSION_COOKIE)?).ok()
    }

    pub fn end_session(&self) {
        self.remove(SESSION_COOKIE);
    }

    /// Whether the browser sent a session cookie at all (valid or not).
    pub fn has_session(&self) -> bool {
        self.has(SESSION_COOKIE)
    }

    /// Binds a passkey ceremony to this browser for as long as it may take.
    pub fn start_ceremony(&self, id: String) {
        self.set(CEREMONY_COOKIE, id, Some(Duration::seconds(CEREMONY_SECS)));
    }

    /// The ceremony this browser started: single use, removed whatever happens next.
    pub fn take_ceremony(&self) -> Option<String> {
        let id = self.get(CEREMONY_COOKIE);
        if id.is_some() {
            self.remove(CEREMONY_COOKIE);
        }
        id
    }

    /// Keeps a flow until its callback, for as long as the person has to come back.
    pub fn save_flow(&self, flow: &Flow) {
        if let Ok(value) = serde_json::to_string(flow) {
            self.set(FLOW_COOKIE, value, Some(Duration::seconds(FLOW_LIFETIME_SECS)));
        }
    }

    /// Takes the flow out of the browser: single use, removed whatever happens next.
    pub fn take_flow(&self) -> Option<String> {
        let stored = self.get(FLOW_COOKIE);
        self.remove(FLOW_COOKIE);
        stored
    }
}
