//! Sign-in through providers: Google (OpenID Connect) and GitHub (OAuth 2.0), both with
//! PKCE S256 and `state`; the flow that the web layer carries in a short-lived cookie from
//! start to callback; and the identity a provider vouches for.

pub mod github;
pub mod google;
pub mod http;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::auth::session::Method;
use crate::config::{OAuthSettings, Secret};

use self::github::Github;
use self::google::Google;
use self::http::{HttpError, ProviderHttp};

/// A provider the portal knows, as it appears in `/login/<provider>` and `/auth/<provider>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Google,
    Github,
}

impl ProviderKind {
    pub fn slug(self) -> &'static str {
        match self {
            ProviderKind::Google => "google",
            ProviderKind::Github => "github",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            ProviderKind::Google => "Google",
            ProviderKind::Github => "GitHub",
        }
    }

    pub fn method(self) -> Method {
        match self {
            ProviderKind::Google => Method::Google,
            ProviderKind::Github => Method::Github,
        }
    }

    pub fn from_slug(slug: &str) -> Option<ProviderKind> {
        match slug {
            "google" => Some(ProviderKind::Google),
            "github" => Some(ProviderKind::Github),
            _ => None,
        }
    }
}

/// Who a provider says the person is. Keyed on `subject` (Google `sub`, GitHub numeric
/// `id`), never on email or login name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub provider: ProviderKind,
    pub subject: String,
    /// A verified email address, or `None`.
    pub email: Option<String>,
    pub name: Option<String>,
    /// What a new account's username is made from (email local part, GitHub login).
    pub username_hint: String,
}

/// Why a sign-in through a provider failed. Logged with the provider; the person only
/// sees "Sign-in failed, please try again." The texts never carry codes or tokens.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("discovery failed: {0}")]
    Discovery(String),
    #[error("token exchange failed: {0}")]
    Token(String),
    #[error("invalid ID token: {0}")]
    IdToken(String),
    #[error("API call failed: {0}")]
    Api(String),
    #[error("the account has no verified email address")]
    NoVerifiedEmail,
    #[error("{0}")]
    Http(#[from] HttpError),
}

impl OAuthError {
    /// A failed code exchange, with the provider's error code at most: never the body.
    /// GitHub answers HTTP 200 with `{"error": "bad_verification_code", …}`, which fails to
    /// parse as a token response; its `error` is read out of the body for the log.
    pub fn from_token_exchange<T>(
        e: oauth2::RequestTokenError<HttpError, oauth2::StandardErrorResponse<T>>,
    ) -> Self
    where
        T: oauth2::ErrorResponseType + std::fmt::Display,
    {
        use oauth2::RequestTokenError;
        #[derive(Deserialize)]
        struct ErrorBody {
            error: String,
        }
        OAuthError::Token(match e {
            RequestTokenError::ServerResponse(r) => format!("refused: {}", r.error()),
            RequestTokenError::Request(e) => e.to_string(),
            RequestTokenError::Parse(_, body) => match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(b) => format!("refused: {}", tidy_provider_text(&b.error)),
                Err(_) => "the answer was not a token response".into(),
            },
            RequestTokenError::Other(why) => why,
        })
    }
}

/// What the policy (`allowed_domains`, `allowed_orgs`) said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    Refused(String),
}

/// The secrets of one flow, minted at the start and checked at the callback.
pub struct Started {
    pub authorize_url: String,
    pub state: String,
    pub verifier: String,
    pub nonce: Option<String>,
}

/// The configured providers (managed state). Each talks HTTP through the same client.
pub struct Providers {
    google: Option<Google>,
    github: Option<Github>,
}

impl Providers {
    /// Builds the providers that have a `client_id`; a half-configured one is an error.
    pub fn from_settings(settings: &OAuthSettings) -> Result<Providers, String> {
        let http = Arc::new(ProviderHttp::new(
            Duration::from_secs(settings.connect_timeout),
            Duration::from_secs(settings.timeout),
            settings.max_response_bytes,
        )?);
        let google = match enabled(
            "google",
            &settings.google.client_id,
            &settings.google.client_secret,
            &settings.google.redirect_uri,
        )? {
            Some((id, secret, redirect)) => {
                Some(Google::new(&settings.google, id, secret, redirect, Arc::clone(&http))?)
            }
            None => None,
        };
        let github = match enabled(
            "github",
            &settings.github.client_id,
            &settings.github.client_secret,
            &settings.github.redirect_uri,
        )? {
            Some((id, secret, redirect)) => Some(Github::new(&settings.github, id, secret, redirect, http)?),
            None => None,
        };
        Ok(Providers { google, github })
    }

    /// Both providers configured (for example, never contacted: discovery happens on first
    /// use), or neither: what the start-up template check renders the pages with.
    pub fn sample(enabled: bool) -> Providers {
        let mut settings = OAuthSettings::default();
        if enabled {
            settings.google.client_id = Some("sample".into());
            settings.google.client_secret = Some(Secret::new("sample"));
            settings.google.redirect_uri = Some("http://localhost/auth/google".into());
            settings.github.client_id = Some("sample".into());
            settings.github.client_secret = Some(Secret::new("sample"));
            settings.github.redirect_uri = Some("http://localhost/auth/github".into());
        }
        Providers::from_settings(&settings).unwrap_or(Providers { google: None, github: None })
    }

    pub fn is_enabled(&self, kind: ProviderKind) -> bool {
        match kind {
            ProviderKind::Google => self.google.is_some(),
            ProviderKind::Github => self.github.is_some(),
        }
    }

    /// The enabled providers, in the order their buttons appear.
    pub fn enabled(&self) -> Vec<ProviderKind> {
        [ProviderKind::Google, ProviderKind::Github].into_iter().filter(|k| self.is_enabled(*k)).collect()
    }

    /// Mints state, PKCE verifier (and nonce) and the URL to send the browser to.
    pub async fn start(&self, kind: ProviderKind, now: i64) -> Result<Started, OAuthError> {
        match kind {
            ProviderKind::Google => self.google()?.start(now).await,
            ProviderKind::Github => Ok(self.github()?.start()),
        }
    }

    /// Exchanges the code and returns who the provider says this is, and whether the
    /// policy admits them.
    pub async fn finish(
        &self,
        kind: ProviderKind,
        code: &str,
        flow: &Flow,
        now: i64,
    ) -> Result<(Identity, Admission), OAuthError> {
        match kind {
            ProviderKind::Google => self.google()?.finish(code, flow, now).await,
            ProviderKind::Github => self.github()?.finish(code, flow).await,
        }
    }

    /// Origins of the providers' authorization pages, for the CSP `form-action` of pages
    /// whose forms redirect there.
    pub async fn authorize_origins(&self) -> Vec<String> {
        let mut origins = Vec::new();
        if let Some(google) = &self.google {
            origins.extend(google.authorize_origins().await);
        }
        if let Some(github) = &self.github {
            origins.push(github.authorize_origin());
        }
        origins.sort();
        origins.dedup();
        origins
    }

    fn google(&self) -> Result<&Google, OAuthError> {
        self.google.as_ref().ok_or_else(|| OAuthError::Discovery("Google is not configured".into()))
    }

    fn github(&self) -> Result<&Github, OAuthError> {
        self.github.as_ref().ok_or_else(|| OAuthError::Discovery("GitHub is not configured".into()))
    }
}

type Enabled = Option<(String, Secret, String)>;

/// A provider is on when it has a `client_id`; then it needs a secret and a redirect URI.
fn enabled(
    name: &str,
    id: &Option<String>,
    secret: &Option<Secret>,
    redirect: &Option<String>,
) -> Result<Enabled, String> {
    let Some(id) = id.as_deref().map(str::trim).filter(|id| !id.is_empty()) else {
        return Ok(None);
    };
    let secret = secret
        .clone()
        .filter(|s| !s.expose().is_empty())
        .ok_or_else(|| format!("oauth.{name}.client_id is set but oauth.{name}.client_secret is not"))?;
    let redirect = redirect
        .clone()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| format!("oauth.{name}.client_id is set but oauth.{name}.redirect_uri is not"))?;
    Ok(Some((id.to_owned(), secret, redirect)))
}

/// `scheme://host[:port]` of a URL, as CSP source expressions want it.
pub(crate) fn origin_of(url: &oauth2::url::Url) -> String {
    url.origin().ascii_serialization()
}

/// Checks that a configured URL parses, naming the key when it does not.
pub(crate) fn parse_url(key: &str, value: &str) -> Result<oauth2::url::Url, String> {
    let url =
        oauth2::url::Url::parse(value).map_err(|e| format!("{key} is not a valid URL ({e}): {value:?}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{key} must be an http(s) URL: {value:?}"));
    }
    Ok(url)
}

/// How long a person has between leaving for the provider and coming back.
pub const FLOW_LIFETIME_SECS: i64 = 10 * 60;

/// What rides in the flow cookie between `/login/<provider>` and `/auth/<provider>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flow {
    pub provider: ProviderKind,
    pub state: String,
    pub verifier: String,
    pub nonce: Option<String>,
    /// Where to go afterwards: a path on this site, or an `rd` URL on an allowed host
    /// (checked before the flow starts; the cookie is sealed, so it cannot change on the way).
    pub next: Option<String>,
    /// Set when a signed-in user is connecting another provider to their account.
    pub link_user: Option<i64>,
    pub expires: i64,
}

/// Why a callback's flow was refused (logged, never shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowError {
    Missing,
    Expired,
    WrongProvider,
    WrongState,
}

impl FlowError {
    pub fn reason(self) -> &'static str {
        match self {
            FlowError::Missing => "no flow cookie (expired, replayed, or never started here)",
            FlowError::Expired => "the flow is older than 10 minutes",
            FlowError::WrongProvider => "the flow was started for the other provider",
            FlowError::WrongState => "state does not match the flow",
        }
    }
}

impl Flow {
    /// Checks the flow a callback brought back (the flow cookie's value, already taken out
    /// of the browser: single use) against the callback's provider and `state`.
    pub fn check(
        stored: Option<&str>,
        provider: ProviderKind,
        state: Option<&str>,
        now: i64,
    ) -> Result<Flow, FlowError> {
        let flow: Flow = stored.and_then(|v| serde_json::from_str(v).ok()).ok_or(FlowError::Missing)?;
        if now > flow.expires {
            return Err(FlowError::Expired);
        }
        if flow.provider != provider {
            return Err(FlowError::WrongProvider);
        }
        let matches = state.is_some_and(|s| bool::from(s.as_bytes().ct_eq(flow.state.as_bytes())));
        if !matches {
            return Err(FlowError::WrongState);
        }
        Ok(flow)
    }
}

/// Makes a username hint safe to try as a username: letters, digits, `.`, `-`, `_`.
pub fn username_hint(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(crate::store::MAX_USERNAME_CHARS - 4)
        .collect();
    if cleaned.is_empty() {
        "user".to_owned()
    } else {
        cleaned
    }
}

/// Provider error text is the provider's (or an attacker's) words: keep it short and plain.
pub fn tidy_provider_text(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_hints_keep_only_safe_characters() {
        assert_eq!(username_hint("ada.lovelace"), "ada.lovelace");
        assert_eq!(username_hint("a b<c>"), "abc");
        assert_eq!(username_hint("  "), "user");
        assert!(username_hint(&"x".repeat(200)).chars().count() <= 60);
    }

    #[test]
    fn provider_text_is_shortened_and_stripped_of_control_characters() {
        assert_eq!(tidy_provider_text("bad\r\nthing"), "badthing");
        assert_eq!(tidy_provider_text(&"y".repeat(500)).len(), 200);
    }
}
