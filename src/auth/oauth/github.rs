//! GitHub through OAuth 2.0 with PKCE S256 and state; identity from `/user` and
//! `/user/emails` (the primary verified address), organisations from `/user/orgs`.

use std::sync::Arc;

use oauth2::basic::BasicClient;
use oauth2::http::{header, HeaderValue, Method, Request, StatusCode};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::http::ProviderHttp;
use super::{parse_url, username_hint, Admission, Flow, Identity, OAuthError, Slug, Started};
use crate::config::{AuthMethod, ProviderSettings, Secret};

type ConfiguredClient = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

pub struct Github {
    client: ConfiguredClient,
    api: String,
    allowed_orgs: Vec<String>,
    http: Arc<ProviderHttp>,
}

#[derive(Deserialize)]
struct GithubUser {
    id: u64,
    login: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct GithubEmail {
    email: String,
    primary: bool,
    verified: bool,
}

#[derive(Deserialize)]
struct GithubOrg {
    login: String,
}

impl Github {
    pub fn new(
        slug: Slug,
        settings: &ProviderSettings,
        client_id: String,
        secret: Secret,
        redirect: String,
        http: Arc<ProviderHttp>,
    ) -> Result<Github, String> {
        let key = |name: &str| format!("oauth.{slug}.{name}");
        let or = |value: &Option<String>, default: &str| value.clone().unwrap_or_else(|| default.to_owned());
        let api = or(&settings.api_uri, "https://api.github.com");
        let auth =
            parse_url(&key("auth_uri"), &or(&settings.auth_uri, "https://github.com/login/oauth/authorize"))?;
        let token = parse_url(
            &key("token_uri"),
            &or(&settings.token_uri, "https://github.com/login/oauth/access_token"),
        )?;
        let redirect = parse_url(&key("redirect_uri"), &redirect)?;
        parse_url(&key("api_uri"), &api)?;
        let client = BasicClient::new(ClientId::new(client_id))
            .set_client_secret(ClientSecret::new(secret.expose().to_owned()))
            .set_auth_uri(AuthUrl::from_url(auth))
            .set_token_uri(TokenUrl::from_url(token))
            .set_redirect_uri(RedirectUrl::from_url(redirect))
            // GitHub documents client_id and client_secret as form parameters.
            .set_auth_type(match settings.auth_method {
                Some(AuthMethod::ClientSecretBasic) => AuthType::BasicAuth,
                _ => AuthType::RequestBody,
            });
        Ok(Github {
            client,
            api: api.trim_end_matches('/').to_owned(),
            allowed_orgs: settings.allowed_orgs.iter().map(|o| o.to_lowercase()).collect(),
            http,
        })
    }

    pub fn authorize_origin(&self) -> String {
        super::origin_of(self.client.auth_uri().url())
    }

    pub fn start(&self) -> Started {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .client
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("read:user".into()))
            .add_scope(Scope::new("user:email".into()))
            .set_pkce_challenge(challenge);
        if !self.allowed_orgs.is_empty() {
            request = request.add_scope(Scope::new("read:org".into()));
        }
        let (url, state) = request.url();
        Started {
            authorize_url: url.to_string(),
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
            nonce: None,
        }
    }

    pub async fn finish(
        &self,
        slug: Slug,
        code: &str,
        flow: &Flow,
    ) -> Result<(Identity, Admission), OAuthError> {
        let token = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
            .request_async(&*self.http)
            .await
            .map_err(OAuthError::from_token_exchange)?;
        let access = token.access_token().secret();

        let user: GithubUser = self.get(access, "/user").await?;
        let emails: Vec<GithubEmail> = self.get(access, "/user/emails").await?;
        let email = emails.into_iter().find(|e| e.primary && e.verified).map(|e| e.email);
        let Some(email) = email else {
            return Err(OAuthError::NoVerifiedEmail);
        };
        let admission = if self.allowed_orgs.is_empty() {
            Admission::Allowed
        } else {
            let orgs: Vec<GithubOrg> = self.get(access, "/user/orgs").await?;
            if orgs.iter().any(|o| self.allowed_orgs.contains(&o.login.to_lowercase())) {
                Admission::Allowed
            } else {
                Admission::Refused(format!("{} is not a member of an allowed organisation", user.login))
            }
        };
        let identity = Identity {
            provider: slug,
            subject: user.id.to_string(),
            username_hint: username_hint(&user.login),
            email: Some(email),
            name: user.name,
            sid: None,
        };
        Ok((identity, admission))
    }

    /// `GET {api_uri}{path}` with the token; anything but a 200 with the expected JSON is an
    /// error naming the path and status (never the token).
    async fn get<T: DeserializeOwned>(&self, token: &str, path: &str) -> Result<T, OAuthError> {
        let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| OAuthError::Api("the access token is not a valid header value".into()))?;
        let request = Request::builder()
            .method(Method::GET)
            .uri(format!("{}{path}", self.api))
            .header(header::AUTHORIZATION, bearer)
            .header(header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .body(Vec::new())
            .map_err(|e| OAuthError::Api(format!("{path}: {e}")))?;
        let response = self.http.send(request).await?;
        if response.status() != StatusCode::OK {
            return Err(OAuthError::Api(format!("{path} answered {}", response.status())));
        }
        serde_json::from_slice(response.body())
            .map_err(|_| OAuthError::Api(format!("{path} answered with unexpected JSON")))
    }
}
