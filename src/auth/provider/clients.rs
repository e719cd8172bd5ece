//! The applications that sign in with the portal: those in the configuration (read once,
//! read-only) and those added at run time (in the store), one [`Client`] type for both, and
//! how a client proves who it is at the token endpoint.

use std::collections::HashMap;
use std::sync::Mutex;

use subtle::ConstantTimeEq as _;

use serde_json::json;

use super::{random_token, token_hash};
use crate::auth::admin::{AdminError, Operator};
use crate::auth::audit::{Event, EventKind};
use crate::auth::forward::Allow;
use crate::auth::password::Hasher;
use crate::auth::{Auth, AuthError};
use crate::config::{AllowSettings, ConsentMode, OidcClientSettings, SigningAlg};
use crate::store::ClientRow;

/// Longest client id accepted.
pub const MAX_CLIENT_ID_CHARS: usize = 64;
/// Longest redirect URI accepted.
const MAX_URI_BYTES: usize = 2048;

/// How a client's secret is kept.
#[derive(Clone)]
pub enum SecretCheck {
    /// A public client: no secret, PKCE instead.
    None,
    /// SHA-256 of the secret, hex (a secret in the configuration, or one the portal
    /// generated), as [`token_hash`] makes it.
    Sha256(String),
    /// An Argon2id PHC string from the configuration (`client_secret_hash`).
    Argon2(String),
}

impl std::fmt::Debug for SecretCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecretCheck::None => "None",
            SecretCheck::Sha256(_) => "Sha256(…)",
            SecretCheck::Argon2(_) => "Argon2(…)",
        })
    }
}

/// An application, from the configuration or the store.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub secret: SecretCheck,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    pub consent: ConsentMode,
    pub allow: Allow,
    /// The rule as written (for the console and the API).
    pub allow_settings: AllowSettings,
    pub second_factor: bool,
    pub signing_alg: SigningAlg,
    /// From the configuration: not changed from the console, API or CLI.
    pub configured: bool,
    pub created_at: Option<i64>,
}

/// What makes a new client (console, API, CLI).
#[derive(Debug, Clone)]
pub struct NewClient {
    pub client_id: String,
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    pub consent: ConsentMode,
    pub allow: AllowSettings,
    pub second_factor: bool,
    pub signing_alg: SigningAlg,
}

/// A stored secret hash as the store keeps it: SHA-256, lowercase hex.
fn is_stored_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A client id: 1 to 64 of `A-Z a-z 0-9 . _ -` (it appears in URLs and in the console).
pub fn check_client_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.chars().count() <= MAX_CLIENT_ID_CHARS
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!("client_id {id:?} must be 1 to {MAX_CLIENT_ID_CHARS} of A-Z, a-z, 0-9, '.', '_' and '-'"))
    }
}

/// A redirect URI as registered: absolute, `https` (or `http` on a loopback host, or a
/// private-use scheme for a native app), no fragment, no user name. Compared byte for byte
/// afterwards.
pub fn check_redirect_uri(raw: &str) -> Result<(), String> {
    if raw.len() > MAX_URI_BYTES {
        return Err("a redirect URI is too long".into());
    }
    let url = url::Url::parse(raw).map_err(|e| format!("redirect URI {raw:?} is not a URL ({e})"))?;
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!("redirect URI {raw:?} must not have a fragment or a user name"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(format!("redirect URI {raw:?} must use https (http only on a loopback host)"))
            }
        }
        // A native app's private-use scheme (`com.example.app:/callback`).
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(format!("redirect URI {raw:?} must use https")),
    }
}

impl Client {
    /// A `[[oidc.clients]]` entry, checked; the error is one line fit to stop startup with.
    pub fn from_settings(n: usize, s: &OidcClientSettings) -> Result<Client, String> {
        let at = |e: String| format!("oidc.clients[{n}]: {e}");
        check_client_id(&s.client_id).map_err(at)?;
        if s.redirect_uris.is_empty() {
            return Err(at("redirect_uris must name at least one URI".into()));
        }
        for uri in s.redirect_uris.iter().chain(&s.post_logout_redirect_uris) {
            check_redirect_uri(uri).map_err(at)?;
        }
        let secret = match (s.public, &s.client_secret, &s.client_secret_hash) {
            (true, None, None) => SecretCheck::None,
            (true, _, _) => return Err(at("a public client has no client_secret".into())),
            (false, Some(secret), None) if secret.expose().len() >= 16 => {
                SecretCheck::Sha256(token_hash(secret.expose()))
            }
            (false, Some(_), None) => return Err(at("client_secret must be at least 16 characters".into())),
            (false, None, Some(phc)) if phc.starts_with("$argon2id$") => SecretCheck::Argon2(phc.clone()),
            (false, None, Some(_)) => {
                return Err(at("client_secret_hash must be an Argon2id PHC string".into()))
            }
            (false, Some(_), Some(_)) => {
                return Err(at("give client_secret or client_secret_hash, not both".into()))
            }
            (false, None, None) => {
                return Err(at(
                    "a confidential client needs client_secret or client_secret_hash (or public = true)"
                        .into(),
                ))
            }
        };
        Ok(Client {
            id: s.client_id.clone(),
            name: s.name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| s.client_id.clone()),
            secret,
            redirect_uris: s.redirect_uris.clone(),
            post_logout_redirect_uris: s.post_logout_redirect_uris.clone(),
            public: s.public,
            consent: s.consent,
            allow: Allow::from_settings(&s.allow).map_err(at)?,
            allow_settings: s.allow.clone(),
            second_factor: s.second_factor,
            signing_alg: s.id_token_signed_response_alg,
            configured: true,
            created_at: None,
        })
    }

    /// A stored client; `None` (logged) when a row cannot be read as one.
    pub fn from_row(row: ClientRow) -> Option<Client> {
        let allow_settings: AllowSettings = serde_json::from_str(&row.allow).ok()?;
        let allow = Allow::from_settings(&allow_settings).ok()?;
        let secret = match &row.secret_hash {
            None if row.public => SecretCheck::None,
            Some(hash) if !row.public && is_stored_hash(hash) => SecretCheck::Sha256(hash.clone()),
            _ => return None,
        };
        let lines = |text: &str| text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect();
        Some(Client {
            id: row.client_id,
            name: row.name,
            secret,
            redirect_uris: lines(&row.redirect_uris),
            post_logout_redirect_uris: lines(&row.post_logout_redirect_uris),
            public: row.public,
            consent: if row.consent == "implicit" { ConsentMode::Implicit } else { ConsentMode::Explicit },
            allow,
            allow_settings,
            second_factor: row.second_factor,
            signing_alg: SigningAlg::parse(&row.signing_alg)?,
            configured: false,
            created_at: Some(row.created_at),
        })
    }

    /// Whether `uri` is one of its redirect URIs, exactly.
    pub fn redirects_to(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }
}

impl NewClient {
    /// The row to store, and the secret to show once (`None` for a public client).
    pub fn into_row(self, now: i64) -> Result<(ClientRow, Option<String>), String> {
        check_client_id(&self.client_id)?;
        if self.redirect_uris.is_empty() {
            return Err("name at least one redirect URI".into());
        }
        for uri in self.redirect_uris.iter().chain(&self.post_logout_redirect_uris) {
            check_redirect_uri(uri)?;
        }
        for uri in self.redirect_uris.iter().chain(&self.post_logout_redirect_uris) {
            if uri.contains('\n') {
                return Err("a URI has a line break".into());
            }
        }
        Allow::from_settings(&self.allow)?;
        let name = self.name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| self.client_id.clone());
        if name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err("the name must be 1 to 100 characters, without control characters".into());
        }
        let secret = (!self.public).then(random_token);
        let row = ClientRow {
            client_id: self.client_id,
            name,
            secret_hash: secret.as_deref().map(token_hash),
            redirect_uris: self.redirect_uris.join("\n"),
            post_logout_redirect_uris: self.post_logout_redirect_uris.join("\n"),
            public: self.public,
            consent: match self.consent {
                ConsentMode::Explicit => "explicit".into(),
                ConsentMode::Implicit => "implicit".into(),
            },
            allow: serde_json::to_string(&self.allow).map_err(|e| e.to_string())?,
            second_factor: self.second_factor,
            signing_alg: self.signing_alg.name().into(),
            created_at: now,
        };
        Ok((row, secret))
    }
}

impl Auth {
    /// Every application (for the console, the API and `portal clients list`).
    pub async fn list_clients(&self, by: &Operator<'_>) -> Result<Vec<Client>, AdminError> {
        self.authorize(by).await?;
        Ok(self.clients().await?)
    }

    /// Adds an application; its secret (shown once), unless it is public.
    pub async fn add_client(
        &self,
        by: &Operator<'_>,
        new: NewClient,
    ) -> Result<(Client, Option<String>), AdminError> {
        self.authorize(by).await?;
        if self.client(&new.client_id).await?.is_some() {
            return Err(AdminError::ClientTaken);
        }
        let (row, secret) = new.into_row(self.now()).map_err(AdminError::InvalidClient)?;
        let id = row.client_id.clone();
        if !self.store.add_oidc_client(&row).await? {
            return Err(AdminError::ClientTaken);
        }
        let client = Client::from_row(row).ok_or_else(|| AdminError::InvalidClient("unreadable".into()))?;
        // Before the application can read the JWK Set: most keep the one read at discovery.
        self.signer.ensure_rsa(self.now()).await.map_err(|e| AuthError::Internal(e.to_string()))?;
        self.client_event(by, EventKind::ClientAdded, &id).await;
        log::info!("oidc: client {id} added by {}", by.actor.text());
        Ok((client, secret))
    }

    /// A new secret for a stored confidential application (the old one stops working).
    pub async fn rotate_client_secret(&self, by: &Operator<'_>, id: &str) -> Result<String, AdminError> {
        self.authorize(by).await?;
        let client = self.client(id).await?.ok_or(AdminError::NoSuchClient)?;
        if client.configured {
            return Err(AdminError::ConfiguredClient);
        }
        if client.public {
            return Err(AdminError::PublicClient);
        }
        let secret = random_token();
        if !self.store.set_oidc_client_secret(id, &token_hash(&secret)).await? {
            return Err(AdminError::NoSuchClient);
        }
        self.client_event(by, EventKind::ClientSecretRotated, id).await;
        log::info!("oidc: client {id}'s secret rotated by {}", by.actor.text());
        Ok(secret)
    }

    /// Removes a stored application, with every consent and token it holds.
    pub async fn remove_client(&self, by: &Operator<'_>, id: &str) -> Result<(), AdminError> {
        self.authorize(by).await?;
        let client = self.client(id).await?.ok_or(AdminError::NoSuchClient)?;
        if client.configured {
            return Err(AdminError::ConfiguredClient);
        }
        if !self.store.remove_oidc_client(id).await? {
            return Err(AdminError::NoSuchClient);
        }
        self.client_event(by, EventKind::ClientRemoved, id).await;
        log::info!("oidc: client {id} removed by {}", by.actor.text());
        Ok(())
    }

    async fn client_event(&self, by: &Operator<'_>, kind: EventKind, client_id: &str) {
        let event = Event {
            kind,
            actor: by.actor,
            subject: None,
            subject_name: None,
            client: by.client,
            detail: json!({ "client": client_id }),
        };
        self.record(event).await;
    }
}

/// Checks presented secrets; remembers, per client, the SHA-256 of a secret an Argon2id
/// hash accepted, so that only its first use pays for Argon2.
#[derive(Default)]
pub struct SecretChecker {
    accepted: Mutex<HashMap<String, (String, String)>>,
}

impl SecretChecker {
    /// Whether `presented` is `client`'s secret.
    pub async fn check(&self, client: &Client, presented: &str, hasher: &Hasher) -> bool {
        let presented_digest = token_hash(presented);
        match &client.secret {
            SecretCheck::None => false,
            SecretCheck::Sha256(expected) => {
                bool::from(expected.as_bytes().ct_eq(presented_digest.as_bytes()))
            }
            SecretCheck::Argon2(phc) => {
                let remembered = {
                    let accepted = self.accepted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    accepted.get(&client.id).filter(|(hash, _)| hash == phc).map(|(_, d)| d.clone())
                };
                if let Some(known) = remembered {
                    if bool::from(known.as_bytes().ct_eq(presented_digest.as_bytes())) {
                        return true;
                    }
                }
                let ok = match hasher.verify(presented.to_owned(), Some(phc.clone())).await {
                    Ok(ok) => ok,
                    Err(e) => {
                        log::warn!("client {}: its secret could not be checked now: {e}", client.id);
                        false
                    }
                };
                if ok {
                    self.accepted
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(client.id.clone(), (phc.clone(), presented_digest));
                }
                ok
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_or_loopback_http_without_fragments() {
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1:8080/cb",
            "http://localhost/cb",
            "http://[::1]:9/cb",
            "com.example.app:/oauth",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.example.com/cb",
            "https://app.example.com/cb#x",
            "https://user@app.example.com/cb",
            "/relative",
            "javascript:alert(1)",
            "data:text/html,x",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn client_ids_are_plain() {
        assert!(check_client_id("grafana").is_ok());
        assert!(check_client_id("my-app_2.prod").is_ok());
        for bad in ["", "a b", "é", "x/y", &"a".repeat(65)] {
            assert!(check_client_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_stored_secret_hash_is_read_only_in_the_form_it_is_written() {
        let secret = random_token();
        assert!(is_stored_hash(&token_hash(&secret)));
        assert!(!is_stored_hash("zz"));
        assert!(!is_stored_hash(&token_hash(&secret).to_uppercase()));
    }
}
