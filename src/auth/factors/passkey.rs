//! Passkeys (WebAuthn, through `webauthn-rs`): adding one, signing in with one on its own
//! (discoverable, with the login page's button or the username field's autofill), and using
//! one as the second step. `public_url` is the origin and names the relying party; without
//! it (or on an IP address, which WebAuthn refuses) passkeys are off.
//!
//! Every ceremony's state stays in the store, under a random id the browser carries in a
//! private cookie; the response that answers it takes it (deletes it) first, so a replayed
//! response, one for another browser's ceremony, or a late one finds nothing. The passkey
//! ceremonies of `webauthn-rs` require user verification (a PIN or a biometric), so a
//! passkey sign-in is two factors in one: assurance level 2.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use webauthn_rs::prelude::{
    Credential, DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use crate::auth::audit::EventKind;
use crate::auth::factors::{FirstStep, Pending};
use crate::auth::session::{Factor, Method, Proof};
use crate::auth::{Auth, AuthError, ClientInfo, SignedIn, FRESH_SIGN_IN_SECS};
use crate::config::PublicUrl;
use crate::mail::Notice;
use crate::store::{PasskeyRow, SessionRecord, User};

/// How long a ceremony may take.
pub const CEREMONY_SECS: i64 = 5 * 60;
/// Longest passkey name.
pub const MAX_NAME_CHARS: usize = 64;

const REGISTER: &str = "passkey-register";
const SIGN_IN: &str = "passkey-sign-in";
const STEP: &str = "passkey-step";

/// The relying party, when passkeys are on.
pub struct Passkeys {
    webauthn: Webauthn,
}

impl Passkeys {
    /// The relying party of `public_url`, or why passkeys are off.
    pub fn new(public_url: Option<&PublicUrl>, name: &str) -> Result<Passkeys, &'static str> {
        let public_url = public_url.ok_or("Passkeys are off: this server has no public_url.")?;
        let origin =
            Url::parse(public_url.origin()).map_err(|_| "Passkeys are off: public_url could not be read.")?;
        let rp_id =
            origin.domain().ok_or("Passkeys are off: public_url is an IP address, which passkeys refuse.")?;
        let webauthn = WebauthnBuilder::new(rp_id, &origin)
            .and_then(|b| b.rp_name(name).build())
            .map_err(|_| "Passkeys are off: public_url cannot name a relying party.")?;
        Ok(Passkeys { webauthn })
    }
}

/// Why a passkey ceremony did nothing. Each variant says what the person sees.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// "Passkeys are off here." (404)
    #[error("passkeys are off")]
    Off,
    /// "That took too long, or was started elsewhere: try again." (400)
    #[error("no such ceremony")]
    Expired,
    /// "That passkey was not accepted." (400): a malformed, replayed or wrong-origin answer,
    /// or a passkey this portal does not know (removed, say).
    #[error("refused: {0}")]
    Refused(String),
    /// "Name the passkey in 64 characters or fewer." (422)
    #[error("bad name")]
    BadName,
    /// "That passkey is already added." (409)
    #[error("already registered")]
    Taken,
    /// "This account is disabled." (403)
    #[error("disabled")]
    Disabled,
    /// "Sign in again, then do this within 10 minutes." (403)
    #[error("not a fresh sign-in")]
    NotFresh,
    #[error(transparent)]
    Failed(#[from] AuthError),
}

/// A passkey as the account page lists it.
#[derive(Debug, Clone)]
pub struct PasskeyInfo {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// Synced (backed up) by a passkey manager, by its last use.
    pub backed_up: bool,
}

/// Makes a ceremony id and the options for the browser.
fn new_id() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>())
}

fn refused(e: impl std::fmt::Display) -> PasskeyError {
    PasskeyError::Refused(e.to_string())
}

/// Reads a name as typed: trimmed, 1 to 64 characters, no control characters. Empty gets
/// `fallback` (the browser's name).
fn read_name(typed: &str, fallback: &str) -> Result<String, PasskeyError> {
    let name = typed.trim();
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(PasskeyError::BadName);
    }
    let name = if name.is_empty() { fallback } else { name };
    Ok(name.chars().take(MAX_NAME_CHARS).collect())
}

impl Auth {
    /// `None` when passkeys are on, else why they are off (for the account page).
    pub fn passkeys_off(&self) -> Option<&'static str> {
        self.passkeys.as_ref().err().copied()
    }

    fn relying_party(&self) -> Result<&Webauthn, PasskeyError> {
        self.passkeys.as_ref().map(|p| &p.webauthn).map_err(|_| PasskeyError::Off)
    }

    /// Stores a ceremony's state for `CEREMONY_SECS`; its id, for the browser's cookie.
    async fn keep_ceremony(
        &self,
        user_id: Option<i64>,
        kind: &str,
        state: &impl serde::Serialize,
    ) -> Result<String, PasskeyError> {
        let id = new_id();
        let state = serde_json::to_string(state).map_err(|e| AuthError::Internal(e.to_string()))?;
        self.store
            .put_ceremony(&id, user_id, kind, &state, self.now() + CEREMONY_SECS)
            .await
            .map_err(AuthError::from)?;
        Ok(id)
    }

    /// Takes a ceremony of `kind` (gone whatever happens next) while it lasts.
    async fn take_ceremony<T: serde::de::DeserializeOwned>(
        &self,
        id: &str,
        kind: &str,
    ) -> Result<(Option<i64>, T), PasskeyError> {
        let ceremony = self
            .store
            .take_ceremony(id, kind)
            .await
            .map_err(AuthError::from)?
            .ok_or(PasskeyError::Expired)?;
        if ceremony.expires_at <= self.now() {
            return Err(PasskeyError::Expired);
        }
        let state = serde_json::from_str(&ceremony.state).map_err(|_| PasskeyError::Expired)?;
        Ok((ceremony.user_id, state))
    }

    /// The user's passkeys, for the account page.
    pub async fn passkeys(&self, user: &User) -> Result<Vec<PasskeyInfo>, AuthError> {
        Ok(self
            .store
            .passkeys_of(user.id)
            .await?
            .into_iter()
            .map(|row| PasskeyInfo {
                id: row.credential_id,
                name: row.name,
                created_at: row.created_at,
                last_used_at: row.last_used_at,
                backed_up: row.backup_state,
            })
            .collect())
    }

    /// Starts adding a passkey: the ceremony's id and the options for
    /// `navigator.credentials.create()`. The user's passkeys are excluded (one per
    /// authenticator), and the authenticator is asked for a discoverable credential, so it
    /// can sign in without a username.
    pub async fn begin_passkey_registration(&self, user: &User) -> Result<(String, Value), PasskeyError> {
        let webauthn = self.relying_party()?;
        let existing = self.store.passkeys_of(user.id).await.map_err(AuthError::from)?;
        let handle = match existing.first().map(|row| Uuid::parse_str(&row.user_handle)) {
            Some(Ok(handle)) => handle,
            _ => Uuid::new_v4(),
        };
        let exclude: Vec<Vec<u8>> =
            existing.iter().filter_map(|row| URL_SAFE_NO_PAD.decode(&row.credential_id).ok()).collect();
        let (options, state) = webauthn
            .start_passkey_registration(handle, &user.username, &user.username, Some(exclude))
            .map_err(|e| AuthError::Internal(format!("webauthn: {e}")))?;
        let mut options = serde_json::to_value(options).map_err(|e| AuthError::Internal(e.to_string()))?;
        // webauthn-rs asks for a non-discoverable credential; a passkey that signs in
        // without a username needs one that is.
        if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection") {
            selection["residentKey"] = json!("preferred");
        }
        let id = self.keep_ceremony(Some(user.id), REGISTER, &(state, handle)).await?;
        Ok((id, options))
    }

    /// Finishes adding a passkey with the browser's answer, under `name`. The first second
    /// factor of a user comes with ten recovery codes, returned to be shown once.
    pub async fn finish_passkey_registration(
        &self,
        user: &User,
        ceremony: &str,
        name: &str,
        answer: &Value,
        client: &ClientInfo,
    ) -> Result<Option<Vec<String>>, PasskeyError> {
        let webauthn = self.relying_party()?;
        let name = read_name(name, &client.device)?;
        let (owner, (state, handle)): (_, (PasskeyRegistration, Uuid)) =
            self.take_ceremony(ceremony, REGISTER).await?;
        if owner != Some(user.id) {
            return Err(PasskeyError::Expired);
        }
        let answer: RegisterPublicKeyCredential = serde_json::from_value(answer.clone()).map_err(refused)?;
        let passkey = webauthn.finish_passkey_registration(&answer, &state).map_err(refused)?;
        let before = self.store.factors_of(user.id).await.map_err(AuthError::from)?;
        let now = self.now();
        let row = row_of(&passkey, user.id, &handle.to_string(), name.clone(), now)?;
        let what = format!("A passkey ({name})");
        let notice = self.notice_for(user, Notice::FactorAdded, Some(client), &what).await;
        let mail = notice.as_ref().map(|n| n.for_store(Some(user.id), now));
        if !self.store.add_passkey(&row, mail.as_ref()).await.map_err(AuthError::from)? {
            return Err(PasskeyError::Taken);
        }
        self.mail_queued();
        log::info!("user {} added a passkey", user.id);
        let detail = json!({ "factor": "passkey", "name": name, "backup_eligible": row.backup_eligible });
        self.user_did(user.id, EventKind::SecondFactorAdded, Some(client), detail).await;
        if before.any() {
            return Ok(None);
        }
        Ok(Some(self.replace_recovery_codes(user, client, false).await?))
    }

    /// Starts a passkey sign-in without a username: options for `navigator.credentials.get()`
    /// (with `mediation: "conditional"` for the username field's autofill).
    pub async fn begin_passkey_sign_in(&self) -> Result<(String, Value), PasskeyError> {
        let webauthn = self.relying_party()?;
        let (options, state) = webauthn
            .start_discoverable_authentication()
            .map_err(|e| AuthError::Internal(format!("webauthn: {e}")))?;
        let options = serde_json::to_value(options).map_err(|e| AuthError::Internal(e.to_string()))?;
        let id = self.keep_ceremony(None, SIGN_IN, &state).await?;
        Ok((id, options))
    }

    /// Finishes a passkey sign-in: a session at level 2 (the passkey verified its user).
    pub async fn finish_passkey_sign_in(
        &self,
        ceremony: &str,
        answer: &Value,
        remember: bool,
        client: &ClientInfo,
    ) -> Result<SignedIn, PasskeyError> {
        let webauthn = self.relying_party()?;
        let (_, state): (_, DiscoverableAuthentication) = self.take_ceremony(ceremony, SIGN_IN).await?;
        let answer: PublicKeyCredential = serde_json::from_value(answer.clone()).map_err(refused)?;
        let (handle, credential_id) =
            webauthn.identify_discoverable_authentication(&answer).map_err(refused)?;
        let id = URL_SAFE_NO_PAD.encode(credential_id);
        let row = self.store.passkey(&id).await.map_err(AuthError::from)?;
        let Some(mut row) = row.filter(|row| row.user_handle == handle.to_string()) else {
            log::info!("passkey sign-in ip={} outcome=unknown-passkey", client.ip_text());
            return Err(PasskeyError::Refused("an unknown passkey".into()));
        };
        let mut passkey: Passkey = serde_json::from_str(&row.credential).map_err(refused)?;
        let verdict = webauthn.finish_discoverable_authentication_v2(&answer, state, &passkey);
        let user = self
            .store
            .user_by_id(row.user_id)
            .await
            .map_err(AuthError::from)?
            .ok_or(PasskeyError::Disabled)?;
        let result = match verdict {
            Ok(result) => result,
            Err(e) => {
                self.passkey_failed(&user, client, &e.to_string()).await;
                return Err(refused(e));
            }
        };
        if user.disabled {
            let detail = json!({ "method": "passkey", "reason": "disabled-account" });
            self.attempt_failed(EventKind::SignInFailed, Some(user.id), client, detail).await;
            return Err(PasskeyError::Disabled);
        }
        self.record_passkey_use(&mut row, &mut passkey, &result).await?;
        log::info!("passkey sign-in user_id={} ip={} outcome=success", user.id, client.ip_text());
        let now = self.now();
        match self.after_first_step(user, Proof::first(Method::Passkey), remember, client, now).await? {
            FirstStep::SignedIn(signed_in) => Ok(signed_in),
            // A verified passkey is both steps; `after_first_step` never asks for another.
            FirstStep::SecondStep(_) => Err(PasskeyError::Refused("a second step after a passkey".into())),
        }
    }

    /// Starts a passkey as the second step of `user` (a half-done sign-in, or a step-up):
    /// options naming their passkeys.
    pub async fn begin_passkey_step(&self, user: &User) -> Result<(String, Value), PasskeyError> {
        let webauthn = self.relying_party()?;
        let passkeys: Vec<Passkey> = self
            .store
            .passkeys_of(user.id)
            .await
            .map_err(AuthError::from)?
            .iter()
            .filter_map(|row| serde_json::from_str(&row.credential).ok())
            .collect();
        if passkeys.is_empty() {
            return Err(PasskeyError::Refused("no passkey".into()));
        }
        let (options, state) = webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|e| AuthError::Internal(format!("webauthn: {e}")))?;
        let options = serde_json::to_value(options).map_err(|e| AuthError::Internal(e.to_string()))?;
        let id = self.keep_ceremony(Some(user.id), STEP, &state).await?;
        Ok((id, options))
    }

    /// Checks a passkey answer as `user`'s second step.
    async fn passkey_step(
        &self,
        user: &User,
        ceremony: &str,
        answer: &Value,
        client: &ClientInfo,
    ) -> Result<Factor, PasskeyError> {
        let webauthn = self.relying_party()?;
        let (owner, state): (_, PasskeyAuthentication) = self.take_ceremony(ceremony, STEP).await?;
        if owner != Some(user.id) {
            return Err(PasskeyError::Expired);
        }
        let answer: PublicKeyCredential = serde_json::from_value(answer.clone()).map_err(refused)?;
        let id = URL_SAFE_NO_PAD.encode(answer.get_credential_id());
        let row = self.store.passkey(&id).await.map_err(AuthError::from)?;
        let Some(mut row) = row.filter(|row| row.user_id == user.id) else {
            self.passkey_failed(user, client, "an unknown passkey").await;
            return Err(PasskeyError::Refused("an unknown passkey".into()));
        };
        let mut passkey: Passkey = serde_json::from_str(&row.credential).map_err(refused)?;
        let result = match webauthn.finish_passkey_authentication(&answer, &state) {
            Ok(result) => result,
            Err(e) => {
                self.passkey_failed(user, client, &e.to_string()).await;
                return Err(refused(e));
            }
        };
        self.record_passkey_use(&mut row, &mut passkey, &result).await?;
        Ok(Factor::Passkey)
    }

    /// Finishes a half-done sign-in with a passkey: a session at level 2.
    pub async fn finish_second_step_with_passkey(
        &self,
        pending: &Pending,
        ceremony: &str,
        answer: &Value,
        client: &ClientInfo,
    ) -> Result<SignedIn, PasskeyError> {
        let (user, _) = self.pending_user(pending).await.map_err(|e| match e {
            crate::auth::CodeError::Failed(e) => PasskeyError::Failed(e),
            crate::auth::CodeError::Disabled => PasskeyError::Disabled,
            _ => PasskeyError::Expired,
        })?;
        let factor = self.passkey_step(&user, ceremony, answer, client).await?;
        let proof = Proof::first(pending.method).with_upstream_sid(pending.upstream_sid.clone()).and(factor);
        Ok(self.start_session(user, proof, pending.remember, client, self.now()).await?)
    }

    /// Steps a level-1 session up with a passkey (a new session, the old one ended).
    pub async fn step_up_with_passkey(
        &self,
        user: &User,
        session: &SessionRecord,
        ceremony: &str,
        answer: &Value,
        client: &ClientInfo,
    ) -> Result<SignedIn, PasskeyError> {
        let factor = self.passkey_step(user, ceremony, answer, client).await?;
        Ok(self.raise(user, session, factor, client).await?)
    }

    /// Keeps what an assertion changed (the counter, the backup flags) and when it was used.
    async fn record_passkey_use(
        &self,
        row: &mut PasskeyRow,
        passkey: &mut Passkey,
        result: &webauthn_rs::prelude::AuthenticationResult,
    ) -> Result<(), PasskeyError> {
        passkey.update_credential(result);
        row.credential = serde_json::to_string(passkey).map_err(|e| AuthError::Internal(e.to_string()))?;
        row.backup_eligible = result.backup_eligible();
        row.backup_state = result.backup_state();
        row.sign_count = i64::from(result.counter());
        self.store.passkey_used(row, self.now()).await.map_err(AuthError::from)?;
        Ok(())
    }

    async fn passkey_failed(&self, user: &User, client: &ClientInfo, why: &str) {
        log::info!("passkey user_id={} ip={} outcome=refused reason={why:?}", user.id, client.ip_text());
        let detail = json!({ "code": "passkey" });
        self.attempt_failed(EventKind::SecondFactorFailed, Some(user.id), client, detail).await;
    }

    /// Removes one of the user's passkeys (within [`FRESH_SIGN_IN_SECS`] of signing in).
    /// With no second factor left, the recovery codes go too.
    pub async fn remove_passkey(
        &self,
        user: &User,
        session: &SessionRecord,
        id: &str,
        client: &ClientInfo,
    ) -> Result<bool, PasskeyError> {
        if self.now() - session.created_at >= FRESH_SIGN_IN_SECS {
            return Err(PasskeyError::NotFresh);
        }
        let notice = self.notice_for(user, Notice::FactorRemoved, Some(client), "A passkey").await;
        let mail = notice.as_ref().map(|n| n.for_store(Some(user.id), self.now()));
        if !self.store.delete_passkey(user.id, id, mail.as_ref()).await.map_err(AuthError::from)? {
            return Ok(false);
        }
        self.mail_queued();
        if !self.store.factors_of(user.id).await.map_err(AuthError::from)?.any() {
            self.store
                .replace_recovery_codes(user.id, &[], self.now(), None)
                .await
                .map_err(AuthError::from)?;
        }
        log::info!("user {} removed a passkey", user.id);
        self.user_did(user.id, EventKind::SecondFactorRemoved, Some(client), json!({ "factor": "passkey" }))
            .await;
        Ok(true)
    }
}

/// The stored form of a new passkey.
fn row_of(
    passkey: &Passkey,
    user_id: i64,
    handle: &str,
    name: String,
    now: i64,
) -> Result<PasskeyRow, PasskeyError> {
    let credential: Credential = passkey.clone().into();
    Ok(PasskeyRow {
        credential_id: URL_SAFE_NO_PAD.encode(passkey.cred_id()),
        user_id,
        user_handle: handle.to_owned(),
        name,
        credential: serde_json::to_string(passkey).map_err(|e| AuthError::Internal(e.to_string()))?,
        backup_eligible: credential.backup_eligible,
        backup_state: credential.backup_state,
        sign_count: i64::from(credential.counter),
        created_at: now,
        last_used_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_default_to_the_browser() {
        assert_eq!(read_name("  Work laptop ", "Chrome on Linux").unwrap(), "Work laptop");
        assert_eq!(read_name("", "Chrome on Linux").unwrap(), "Chrome on Linux");
        assert!(matches!(read_name(&"x".repeat(10_000), "c"), Err(PasskeyError::BadName)));
        assert!(matches!(read_name("a\u{0}b", "c"), Err(PasskeyError::BadName)));
        assert_eq!(read_name(&"é".repeat(64), "c").unwrap().chars().count(), 64);
    }

    #[test]
    fn passkeys_need_a_public_url_that_names_a_domain() {
        assert!(Passkeys::new(None, "Portal").is_err());
        let ip = PublicUrl::parse("http://127.0.0.1:8000").unwrap();
        assert!(Passkeys::new(Some(&ip), "Portal").err().unwrap().contains("IP address"));
        let local = PublicUrl::parse("http://localhost:8000").unwrap();
        assert!(Passkeys::new(Some(&local), "Portal").is_ok());
        let public = PublicUrl::parse("https://auth.example.com").unwrap();
        assert!(Passkeys::new(Some(&public), "Portal").is_ok());
    }
}
