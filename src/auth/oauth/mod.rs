//! Sign-in through providers: any OpenID Connect provider (`oidc`, with Google as a
//! preset) and GitHub (OAuth 2.0), all with PKCE S256 and `state`; the flow that the web
//! layer carries in a short-lived cookie from start to callback; and the identity a
//! provider vouches for. Providers are named by their slug, `[oauth.<slug>]`.

pub mod discovery;
pub mod github;
pub mod http;
pub mod oidc;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::clock::Clock;
use crate::config::{
    check_slug, AuthMethod, EmailVerified, OAuthSettings, ProviderKindSetting, ProviderSettings, Secret,
    UpstreamLogout,
};

use self::github::Github;
use self::http::{HttpError, ProviderHttp};
use self::oidc::{LogoutRequest, Oidc, OidcConfig, Policy};

/// The longest slug.
const MAX_SLUG: usize = 32;

/// A provider's slug, `[a-z0-9-]{1,32}`, as it appears in `/login/<slug>` and
/// `/auth/<slug>` and in its identities. Small and `Copy`, so a session's method can carry it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slug {
    len: u8,
    bytes: [u8; MAX_SLUG],
}

impl Slug {
    /// The slug, if `text` is one (see [`check_slug`]).
    pub fn new(text: &str) -> Option<Slug> {
        check_slug(text).ok()?;
        let mut bytes = [0; MAX_SLUG];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Some(Slug { len: u8::try_from(text.len()).ok()?, bytes })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked in `new`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::fmt::Display for Slug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Slug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl Serialize for Slug {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Slug, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Slug::new(&text).ok_or_else(|| serde::de::Error::custom("not a provider slug"))
    }
}

/// Who a provider says the person is. Keyed on `subject` (Google `sub`, GitHub numeric
/// `id`), never on email or login name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub provider: Slug,
    pub subject: String,
    /// A verified email address, or `None`.
    pub email: Option<String>,
    pub name: Option<String>,
    /// What a new account's username is made from (email local part, GitHub login).
    pub username_hint: String,
    /// The provider's session (`sid`), for its back-channel logout.
    pub sid: Option<String>,
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
    #[error("mix-up: {0}")]
    MixUp(String),
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

/// What a provider is behind its slug.
enum Upstream {
    Oidc(Arc<Oidc>),
    Github(Box<Github>),
}

/// One configured provider.
pub struct Provider {
    pub slug: Slug,
    /// "GitLab": the button says "Sign in with GitLab".
    pub name: String,
    pub kind: ProviderKindSetting,
    /// Its button's image (`icon`), read at start.
    pub icon: Option<Icon>,
    pub logout: UpstreamLogout,
    upstream: Upstream,
}

impl Provider {
    /// Mints state, PKCE verifier (and nonce) and the URL to send the browser to.
    pub async fn start(&self, now: i64) -> Result<Started, OAuthError> {
        match &self.upstream {
            Upstream::Oidc(oidc) => oidc.start(now).await,
            Upstream::Github(github) => Ok(github.start()),
        }
    }

    /// Checks the callback's `iss` (OpenID providers; GitHub sends none).
    pub fn check_callback_issuer(&self, iss: Option<&str>) -> Result<(), OAuthError> {
        match &self.upstream {
            Upstream::Oidc(oidc) => oidc.check_callback_issuer(iss),
            Upstream::Github(_) => Ok(()),
        }
    }

    /// Exchanges the code and returns who the provider says this is, and whether the
    /// policy admits them.
    pub async fn finish(
        &self,
        code: &str,
        flow: &Flow,
        now: i64,
    ) -> Result<(Identity, Admission), OAuthError> {
        match &self.upstream {
            Upstream::Oidc(oidc) => oidc.finish(code, flow, now).await,
            Upstream::Github(github) => github.finish(self.slug, code, flow).await,
        }
    }

    /// Checks a back-channel logout token; `None` for a provider that cannot send one.
    pub async fn logout_token(&self, jwt: &str, now: i64) -> Option<Result<LogoutRequest, OAuthError>> {
        match &self.upstream {
            Upstream::Oidc(oidc) => Some(oidc.logout_token(jwt, now).await),
            Upstream::Github(_) => None,
        }
    }

    /// Where the browser goes to end the provider's session too (`logout = "provider"`
    /// and a discovered `end_session_endpoint`): RP-Initiated Logout with `client_id`, and
    /// back to the portal's home page (the origin of `redirect_uri`).
    pub fn end_session_url(&self) -> Option<String> {
        let Upstream::Oidc(oidc) = &self.upstream else { return None };
        if self.logout != UpstreamLogout::Provider {
            return None;
        }
        let mut url = oidc.discovery.cached()?.end_session?;
        url.query_pairs_mut()
            .append_pair("client_id", oidc.client_id())
            .append_pair("post_logout_redirect_uri", &oidc.home());
        Some(url.to_string())
    }

    /// Origins of its authorization page, for a CSP `form-action`.
    fn authorize_origins(&self) -> Vec<String> {
        match &self.upstream {
            Upstream::Oidc(oidc) => oidc.authorize_origins(),
            Upstream::Github(github) => vec![github.authorize_origin()],
        }
    }
}

/// A provider's button image: an SVG, PNG or WebP file read at start, served from memory
/// at `/static/icons/<slug>.<ext>`.
pub struct Icon {
    /// `/static/icons/gitlab.svg`.
    pub href: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// The largest icon read.
const MAX_ICON_BYTES: u64 = 64 * 1024;

impl Icon {
    /// Reads `path`; an unreadable, too large or unknown kind of file is an error naming
    /// the key.
    fn read(slug: &str, path: &str) -> Result<Icon, String> {
        let key = format!("oauth.{slug}.icon");
        let extension = path.rsplit('.').next().unwrap_or_default().to_ascii_lowercase();
        let content_type = match extension.as_str() {
            "svg" => "image/svg+xml",
            "png" => "image/png",
            "webp" => "image/webp",
            _ => return Err(format!("{key} must be an .svg, .png or .webp file: {path:?}")),
        };
        let size = std::fs::metadata(path).map_err(|e| format!("{key}: cannot read {path:?}: {e}"))?.len();
        if size > MAX_ICON_BYTES {
            return Err(format!("{key}: {path:?} is larger than {MAX_ICON_BYTES} bytes"));
        }
        let bytes = std::fs::read(path).map_err(|e| format!("{key}: cannot read {path:?}: {e}"))?;
        Ok(Icon { href: format!("/static/icons/{slug}.{extension}"), content_type, bytes })
    }
}

/// A "Sign in with …" button as pages show it, made once from the configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Button {
    pub slug: String,
    pub name: String,
    /// `google`, `github` or `oidc`: which logo it shows when it has no icon.
    pub kind: &'static str,
    /// Its image's address, `/static/icons/<slug>.<ext>`.
    pub icon: Option<String>,
}

impl Button {
    fn of(provider: &Provider) -> Button {
        Button {
            slug: provider.slug.as_str().to_owned(),
            name: provider.name.clone(),
            kind: provider.kind.as_str(),
            icon: provider.icon.as_ref().map(|icon| icon.href.clone()),
        }
    }
}

/// The configured providers (managed state), in their buttons' order.
pub struct Providers {
    list: Vec<Provider>,
    buttons: Vec<Button>,
}

impl Providers {
    /// Builds every configured provider; a half-configured one is an error naming its key.
    /// Nothing is fetched here: see [`Providers::discover_in_background`].
    pub fn from_settings(settings: &OAuthSettings) -> Result<Providers, String> {
        let http = Arc::new(ProviderHttp::new(
            Duration::from_secs(settings.connect_timeout),
            Duration::from_secs(settings.timeout),
            settings.max_response_bytes,
        )?);
        let mut list = Vec::new();
        for slug in button_order(settings) {
            let Some(provider_settings) = settings.providers.get(&slug) else { continue };
            if let Some(provider) = build(&slug, provider_settings, &http)? {
                list.push(provider);
            }
        }
        let buttons = list.iter().map(Button::of).collect();
        Ok(Providers { list, buttons })
    }

    /// Google, GitHub and one OpenID provider with an icon, configured but never contacted
    /// (or none): what the start-up template check renders the pages with.
    pub fn sample(enabled: bool) -> Providers {
        let mut settings = OAuthSettings::default();
        if enabled {
            for (slug, kind) in
                [("google", None), ("github", None), ("sample", Some(ProviderKindSetting::Oidc))]
            {
                let provider = ProviderSettings {
                    kind,
                    name: kind.map(|_| "Sample".into()),
                    issuer: kind.map(|_| "https://sample.invalid".into()),
                    client_id: Some("sample".into()),
                    client_secret: Some(Secret::new("sample")),
                    redirect_uri: Some(format!("http://localhost/auth/{slug}")),
                    ..ProviderSettings::default()
                };
                settings.providers.insert(slug.into(), provider);
            }
        }
        let empty = || Providers { list: Vec::new(), buttons: Vec::new() };
        let mut providers = Providers::from_settings(&settings).unwrap_or_else(|_| empty());
        if let Some(sample) = providers.list.iter_mut().find(|p| p.slug.as_str() == "sample") {
            let href = "/static/icons/sample.svg".to_owned();
            sample.icon = Some(Icon { href, content_type: "image/svg+xml", bytes: Vec::new() });
        }
        providers.buttons = providers.list.iter().map(Button::of).collect();
        providers
    }

    /// The icon served at `/static/icons/<file>`, if a provider has it.
    pub fn icon(&self, file: &str) -> Option<&Icon> {
        let href = format!("/static/icons/{file}");
        self.list.iter().filter_map(|p| p.icon.as_ref()).find(|icon| icon.href == href)
    }

    /// Fetches every OpenID provider's discovery document now, and keeps retrying (1 s,
    /// doubling up to 5 minutes) those that are unreachable. Until one answers, its
    /// button says it is not reachable; a sign-in that finds it still undiscovered tries
    /// once itself.
    pub fn discover_in_background(&self, clock: Arc<dyn Clock>) {
        for provider in &self.list {
            let Upstream::Oidc(oidc) = &provider.upstream else { continue };
            let (oidc, clock, slug) = (Arc::clone(oidc), Arc::clone(&clock), provider.slug);
            tokio::spawn(async move {
                let mut wait = Duration::from_secs(1);
                while let Err(e) = oidc.discovery.get(clock.now()).await {
                    log::warn!(
                        "{slug}: the provider is not reachable ({e}); retrying in {}s",
                        wait.as_secs()
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(300));
                }
            });
        }
    }

    /// The provider behind `slug`, if one is configured.
    pub fn get(&self, slug: &str) -> Option<&Provider> {
        self.list.iter().find(|p| p.slug.as_str() == slug)
    }

    pub fn is_enabled(&self, slug: &str) -> bool {
        self.get(slug).is_some()
    }

    /// Every provider's button, in order.
    pub fn buttons(&self) -> &[Button] {
        &self.buttons
    }

    /// How pages name a provider by its slug: its configured name; Google and GitHub by
    /// theirs even when no longer configured; otherwise the slug.
    pub fn name_of<'a>(&'a self, slug: &'a str) -> Cow<'a, str> {
        if let Some(provider) = self.get(slug) {
            return Cow::Borrowed(&provider.name);
        }
        Cow::Borrowed(ProviderKindSetting::default_for(slug).preset_name().unwrap_or(slug))
    }

    /// How pages name a session's first step (`password`, `passkey` or a slug).
    pub fn method_name<'a>(&'a self, method: &'a str) -> Cow<'a, str> {
        match method {
            "password" => Cow::Borrowed("Password"),
            "passkey" => Cow::Borrowed("Passkey"),
            slug => self.name_of(slug),
        }
    }

    /// Origins of the providers' authorization pages, for the CSP `form-action` of pages
    /// whose forms redirect there.
    pub fn authorize_origins(&self) -> Vec<String> {
        let mut origins: Vec<String> = self.list.iter().flat_map(Provider::authorize_origins).collect();
        origins.sort();
        origins.dedup();
        origins
    }
}

/// The buttons' order: `oauth.order`, then Google and GitHub, then the rest by slug.
fn button_order(settings: &OAuthSettings) -> Vec<String> {
    let mut order = settings.order.clone();
    let mut rest: Vec<&String> = settings.providers.keys().filter(|slug| !order.contains(slug)).collect();
    rest.sort_by_key(|slug| (slug.as_str() != "google", slug.as_str() != "github", slug.as_str()));
    order.extend(rest.into_iter().cloned());
    order
}

/// One provider from its table: `None` for Google or GitHub without a `client_id` (off).
fn build(
    slug: &str,
    settings: &ProviderSettings,
    http: &Arc<ProviderHttp>,
) -> Result<Option<Provider>, String> {
    let slug_value = Slug::new(slug).ok_or_else(|| format!("[oauth.{slug}]: not a valid slug"))?;
    let kind = settings.kind.unwrap_or_else(|| ProviderKindSetting::default_for(slug));
    let key = |name: &str| format!("oauth.{slug}.{name}");
    let client_id = settings.client_id.as_deref().map(str::trim).filter(|id| !id.is_empty());
    let Some(client_id) = client_id else {
        if kind == ProviderKindSetting::Oidc {
            return Err(format!("{} is missing ([oauth.{slug}] is an OpenID provider)", key("client_id")));
        }
        return Ok(None);
    };
    let secret = settings
        .client_secret
        .clone()
        .filter(|s| !s.expose().is_empty())
        .ok_or_else(|| format!("{} is set but {} is not", key("client_id"), key("client_secret")))?;
    let redirect = settings
        .redirect_uri
        .clone()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| format!("{} is set but {} is not", key("client_id"), key("redirect_uri")))?;
    let name = match (&settings.name, kind.preset_name()) {
        (Some(name), _) if !name.trim().is_empty() => name.trim().to_owned(),
        (_, Some(preset)) => preset.to_owned(),
        (_, None) => return Err(format!("{} is missing (the button's text)", key("name"))),
    };
    let icon = settings.icon.as_deref().map(|path| Icon::read(slug, path)).transpose()?;
    let upstream = match kind {
        ProviderKindSetting::Github => Upstream::Github(Box::new(Github::new(
            slug_value,
            settings,
            client_id.to_owned(),
            secret,
            redirect,
            Arc::clone(http),
        )?)),
        ProviderKindSetting::Google | ProviderKindSetting::Oidc => {
            let google = kind == ProviderKindSetting::Google;
            let issuer = match (&settings.issuer, google) {
                (Some(issuer), _) => issuer.clone(),
                (None, true) => "https://accounts.google.com".to_owned(),
                (None, false) => return Err(format!("{} is missing", key("issuer"))),
            };
            let default_scopes = || ["openid", "email", "profile"].map(str::to_owned).to_vec();
            let config = OidcConfig {
                slug: slug_value,
                issuer: &issuer,
                client_id: client_id.to_owned(),
                secret,
                redirect,
                scopes: settings.scopes.clone().unwrap_or_else(default_scopes),
                auth_method: settings.auth_method.unwrap_or(AuthMethod::ClientSecretBasic),
                policy: Policy {
                    email_verified: if google { EmailVerified::Required } else { settings.email_verified },
                    allowed_domains: settings
                        .allowed_domains
                        .iter()
                        .map(|d| d.trim().to_lowercase())
                        .collect(),
                    hosted_domain: google,
                    claim_rules: settings.claim_rules.clone(),
                },
            };
            Upstream::Oidc(Arc::new(Oidc::new(config, Arc::clone(http))?))
        }
    };
    Ok(Some(Provider { slug: slug_value, name, kind, icon, logout: settings.logout, upstream }))
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
    pub provider: Slug,
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
            FlowError::WrongProvider => "the flow was started for another provider (a mix-up, or two tabs)",
            FlowError::WrongState => "state does not match the flow",
        }
    }
}

impl Flow {
    /// Checks the flow a callback brought back (the flow cookie's value, already taken out
    /// of the browser: single use) against the callback's provider and `state`.
    pub fn check(
        stored: Option<&str>,
        provider: Slug,
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
