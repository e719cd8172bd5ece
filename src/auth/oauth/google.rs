//! Google through OpenID Connect: discovery from `issuer` (cached, retried after a failure),
//! PKCE S256, state, nonce, and an ID token validated against the provider's JWKS (RS256
//! only; `iss`, `aud`, `exp`, `nonce`).

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::Deserialize;
use tokio::sync::RwLock;

use super::http::ProviderHttp;
use super::{parse_url, username_hint, Admission, Flow, Identity, OAuthError, ProviderKind, Started};
use crate::config::{GoogleSettings, Secret};

/// The client `from_provider_metadata` gives: authorize URL set, token and userinfo URLs
/// "maybe" (the discovery document may lack them).
type GoogleClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Discovery documents (and the JWKS with them) are refreshed this often.
const METADATA_TTL_SECS: i64 = 3600;

pub struct Google {
    client_id: ClientId,
    client_secret: ClientSecret,
    redirect: RedirectUrl,
    issuer: IssuerUrl,
    allowed_domains: Vec<String>,
    http: Arc<ProviderHttp>,
    metadata: RwLock<Option<(i64, CoreProviderMetadata)>>,
}

impl Google {
    pub fn new(
        settings: &GoogleSettings,
        client_id: String,
        secret: Secret,
        redirect: String,
        http: Arc<ProviderHttp>,
    ) -> Result<Google, String> {
        parse_url("oauth.google.redirect_uri", &redirect)?;
        parse_url("oauth.google.issuer", &settings.issuer)?;
        Ok(Google {
            client_id: ClientId::new(client_id),
            client_secret: ClientSecret::new(secret.expose().to_owned()),
            redirect: RedirectUrl::new(redirect).map_err(|e| format!("oauth.google.redirect_uri: {e}"))?,
            issuer: IssuerUrl::new(settings.issuer.clone())
                .map_err(|e| format!("oauth.google.issuer: {e}"))?,
            allowed_domains: settings.allowed_domains.iter().map(|d| d.to_lowercase()).collect(),
            http,
            metadata: RwLock::new(None),
        })
    }

    /// The discovery document: cached for an hour; a failed refresh keeps the old one; a
    /// failed first fetch is retried on the next sign-in.
    async fn metadata(&self, now: i64) -> Result<CoreProviderMetadata, OAuthError> {
        let cached = self.metadata.read().await.clone();
        if let Some((fetched, metadata)) = &cached {
            if now - fetched < METADATA_TTL_SECS {
                return Ok(metadata.clone());
            }
        }
        match CoreProviderMetadata::discover_async(self.issuer.clone(), &*self.http).await {
            Ok(metadata) => {
                *self.metadata.write().await = Some((now, metadata.clone()));
                Ok(metadata)
            }
            Err(e) => match cached {
                Some((_, stale)) => {
                    log::warn!("google: discovery refresh failed ({e}); keeping the cached document");
                    Ok(stale)
                }
                None => Err(OAuthError::Discovery(e.to_string())),
            },
        }
    }

    /// The issuer's origin, and that of the discovered authorization endpoint once known
    /// (no discovery is triggered for this).
    pub async fn authorize_origins(&self) -> Vec<String> {
        let mut origins = vec![super::origin_of(self.issuer.url())];
        if let Some((_, metadata)) = &*self.metadata.read().await {
            origins.push(super::origin_of(metadata.authorization_endpoint().url()));
        }
        origins
    }

    fn client(&self, metadata: CoreProviderMetadata) -> GoogleClient {
        CoreClient::from_provider_metadata(metadata, self.client_id.clone(), Some(self.client_secret.clone()))
            .set_redirect_uri(self.redirect.clone())
    }

    pub async fn start(&self, now: i64) -> Result<Started, OAuthError> {
        let client = self.client(self.metadata(now).await?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        Ok(Started {
            authorize_url: url.to_string(),
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
            nonce: Some(nonce.secret().clone()),
        })
    }

    pub async fn finish(
        &self,
        code: &str,
        flow: &Flow,
        now: i64,
    ) -> Result<(Identity, Admission), OAuthError> {
        let client = self.client(self.metadata(now).await?);
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OAuthError::Discovery(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
            .request_async(&*self.http)
            .await
            .map_err(OAuthError::from_token_exchange)?;
        let id_token =
            token.id_token().ok_or_else(|| OAuthError::IdToken("no id_token in the answer".into()))?;
        let verifier =
            client.id_token_verifier().set_allowed_algs([CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
        let nonce = Nonce::new(flow.nonce.clone().unwrap_or_default());
        let claims = id_token.claims(&verifier, &nonce).map_err(|e| OAuthError::IdToken(e.to_string()))?;

        let email = claims.email().map(|e| e.as_str().to_owned());
        if email.is_none() || claims.email_verified() != Some(true) {
            return Err(OAuthError::NoVerifiedEmail);
        }
        let name = claims.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_owned());
        let hint = email.as_deref().and_then(|e| e.split('@').next()).unwrap_or("user");
        let identity = Identity {
            provider: ProviderKind::Google,
            subject: claims.subject().as_str().to_owned(),
            username_hint: username_hint(hint),
            email,
            name,
        };
        // The signature over this very token was just checked, so its payload can be read
        // for the one claim the core types do not carry.
        let hd = hosted_domain(&id_token.to_string());
        Ok((identity, self.admit(hd.as_deref())))
    }

    fn admit(&self, hd: Option<&str>) -> Admission {
        if self.allowed_domains.is_empty() {
            return Admission::Allowed;
        }
        match hd.map(str::to_lowercase) {
            Some(hd) if self.allowed_domains.contains(&hd) => Admission::Allowed,
            Some(hd) => Admission::Refused(format!("Google Workspace domain {hd} is not allowed")),
            None => Admission::Refused("not a Google Workspace account".into()),
        }
    }
}

/// The `hd` (hosted domain) claim of a verified ID token, if any.
fn hosted_domain(jwt: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Hd {
        hd: Option<String>,
    }
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Hd>(&bytes).ok()?.hd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosted_domain_is_read_from_the_payload() {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"sub":"1","hd":"example.com"}"#);
        assert_eq!(hosted_domain(&format!("h.{payload}.s")), Some("example.com".into()));
        let payload = URL_SAFE_NO_PAD.encode(r#"{"sub":"1"}"#);
        assert_eq!(hosted_domain(&format!("h.{payload}.s")), None);
        assert_eq!(hosted_domain("garbage"), None);
    }
}
