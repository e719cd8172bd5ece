//! The portal as an OpenID provider (OpenID Connect Core 1.0, the authorization code flow
//! only): the applications ([`clients`]), the authorization request and consent
//! ([`authorize`]), the token endpoint, userinfo, revocation and introspection ([`grants`]),
//! and RP-initiated logout. Grants are store records tied to the user and, unless they carry
//! `offline_access`, to the portal session they came from: every way a session or a user
//! ends also ends what the grant issued.

pub mod authorize;
pub mod clients;
pub mod grants;
pub mod tokens;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::auth::session::freshness;
use crate::auth::session::Freshness;
use crate::auth::{Auth, AuthError};
use crate::config::OidcSettings;
use crate::store::{GrantRow, User};

pub use self::authorize::{AuthRequest, Authorize, ConsentPage, Decision};
pub use self::clients::{Client, NewClient};
pub use self::grants::{
    ClientAuth, ConnectedApp, EndSession, EndSessionRequest, Introspection, TokenError, TokenRequest,
    TokenResponse,
};

/// How long a code lives.
pub const CODE_SECS: i64 = 60;

/// The provider's settings and the configured clients (managed inside the auth service).
pub struct Provider {
    settings: OidcSettings,
    configured: Vec<Client>,
    secrets: clients::SecretChecker,
    /// Access tokens whose signatures were checked.
    verified: tokens::VerifiedTokens,
}

impl Provider {
    /// Checks every `[[oidc.clients]]` entry; the error is one line fit to stop startup with.
    pub fn from_settings(settings: &OidcSettings) -> Result<Provider, String> {
        let configured = settings
            .clients
            .iter()
            .enumerate()
            .map(|(n, c)| Client::from_settings(n, c))
            .collect::<Result<Vec<_>, _>>()?;
        for (n, c) in configured.iter().enumerate() {
            if configured[..n].iter().any(|other| other.id == c.id) {
                return Err(format!("oidc.clients[{n}]: client_id {:?} is named twice", c.id));
            }
        }
        Ok(Provider {
            settings: settings.clone(),
            configured,
            secrets: clients::SecretChecker::default(),
            verified: tokens::VerifiedTokens::default(),
        })
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// Two clients for the page samples: one as if configured, one as if stored.
    pub fn sample_clients() -> Vec<Client> {
        use crate::config::{AllowSettings, OidcClientSettings, Secret, SigningAlg};
        let configured = OidcClientSettings {
            client_id: "grafana".into(),
            client_secret: Some(Secret::new("a sample secret, long enough")),
            client_secret_hash: None,
            redirect_uris: vec!["https://grafana.example.com/login/generic_oauth".into()],
            post_logout_redirect_uris: Vec::new(),
            name: Some("Grafana".into()),
            public: false,
            consent: crate::config::ConsentMode::Explicit,
            allow: AllowSettings::Named("admins".into()),
            second_factor: true,
            id_token_signed_response_alg: SigningAlg::RS256,
        };
        let mut stored = configured.clone();
        stored.client_id = "spa".into();
        stored.client_secret = None;
        stored.public = true;
        stored.allow = AllowSettings::Users(vec!["alice".into(), "bob".into()]);
        stored.id_token_signed_response_alg = SigningAlg::EdDSA;
        [configured, stored]
            .iter()
            .enumerate()
            .filter_map(|(n, s)| Client::from_settings(n, s).ok())
            .map(|mut c| {
                c.configured = c.id == "grafana";
                c
            })
            .collect()
    }
}

/// 256 random bits, base64url: codes, refresh tokens, grant ids.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// SHA-256 of a code or token, hex: how the store keeps them.
pub fn token_hash(token: &str) -> String {
    crate::auth::session::hash_secret(token)
}

impl Auth {
    /// The provider's issuer: `public_url`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// A client by id: the configuration's first, then the store's.
    pub async fn client(&self, id: &str) -> Result<Option<Client>, AuthError> {
        if let Some(found) = self.oidc.configured.iter().find(|c| c.id == id) {
            return Ok(Some(found.clone()));
        }
        if clients::check_client_id(id).is_err() {
            return Ok(None);
        }
        Ok(self.store.oidc_client(id).await?.and_then(|row| {
            let id = row.client_id.clone();
            let client = Client::from_row(row);
            if client.is_none() {
                log::error!("stored client {id:?} cannot be read; it is refused");
            }
            client
        }))
    }

    /// Every client: the configuration's, then the store's.
    pub async fn clients(&self) -> Result<Vec<Client>, AuthError> {
        let mut all = self.oidc.configured.clone();
        let stored = self.store.oidc_clients().await?;
        all.extend(
            stored
                .into_iter()
                .filter_map(Client::from_row)
                .filter(|c| !all_ids(&self.oidc.configured, &c.id)),
        );
        Ok(all)
    }

    /// The user behind a grant, while the grant may still be used: not revoked, the user
    /// enabled, and (without `offline_access`) the portal session it came from still live.
    pub(crate) async fn grant_user(&self, grant: &GrantRow, now: i64) -> Result<Option<User>, AuthError> {
        if grant.revoked_at.is_some() {
            return Ok(None);
        }
        if !grant.offline {
            return self.session_user(grant, now).await;
        }
        Ok(self.store.user_by_id(grant.user_id).await?.filter(|u| !u.disabled))
    }

    /// The same check for a grant read with its user (an access token's, through the cache).
    pub(crate) async fn live_grant_user(
        &self,
        grant: &GrantRow,
        user: User,
        now: i64,
    ) -> Result<Option<User>, AuthError> {
        if grant.revoked_at.is_some() || user.disabled {
            return Ok(None);
        }
        if !grant.offline {
            return self.session_user(grant, now).await;
        }
        Ok(Some(user))
    }

    /// The user of the live portal session a grant came from.
    async fn session_user(&self, grant: &GrantRow, now: i64) -> Result<Option<User>, AuthError> {
        let Some(session_id) = grant.session_id.as_deref() else { return Ok(None) };
        Ok(match self.store.live_session(session_id, now).await? {
            Some((live, user))
                if live.record.user_id == grant.user_id
                    && !user.disabled
                    && !matches!(freshness(&live.record, &self.session, now), Freshness::Expired) =>
            {
                Some(user)
            }
            _ => None,
        })
    }
}

fn all_ids(configured: &[Client], id: &str) -> bool {
    configured.iter().any(|c| c.id == id)
}
