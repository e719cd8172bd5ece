//! The portal's own settings, read from Rocket's figment (`Rocket.toml` + `ROCKET_*`).

use std::collections::BTreeMap;

use rocket::figment::Figment;
use serde::Deserialize;

/// Everything the portal reads from configuration beyond Rocket's own keys.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Mark cookies `Secure` even without TLS in Rocket (a TLS proxy sits in front).
    #[serde(default)]
    pub secure_cookies: bool,
    /// Send `Strict-Transport-Security` (only behind TLS).
    #[serde(default)]
    pub hsts: bool,
    /// The portal's own origin (`https://auth.example.com`): the one origin forms may come
    /// from, and the base of absolute URLs. Unset: the request's `Host`.
    #[serde(default, deserialize_with = "public_url")]
    pub public_url: Option<PublicUrl>,
    #[serde(default)]
    pub session: SessionSettings,
    #[serde(default)]
    pub hashing: HashSettings,
    pub databases: Databases,
    #[serde(default)]
    pub oauth: OAuthSettings,
    #[serde(default)]
    pub throttle: ThrottleSettings,
    #[serde(default)]
    pub branding: BrandingSettings,
    #[serde(default)]
    pub audit: AuditSettings,
    #[serde(default)]
    pub forward_auth: ForwardAuthSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub second_factor: SecondFactorSettings,
    #[serde(default)]
    pub oidc: OidcSettings,
    /// `[email]`: absent, the portal sends no mail and no page mentions it.
    #[serde(default)]
    pub email: Option<EmailSettings>,
    /// A key derived from `secret_key` (the same on every instance that shares it): keys
    /// the throttle's shared counters. Random per process when `secret_key` is unset.
    #[serde(skip)]
    pub instance_key: InstanceKey,
    /// Another key derived from `secret_key`: the CSRF token of a signed-in session is an
    /// HMAC under it of the session's id. Random per process when `secret_key` is unset.
    #[serde(skip)]
    pub csrf_key: InstanceKey,
    /// A third key derived from `secret_key`: seals authenticator-app secrets in the store.
    /// `None` without `secret_key`: a random key would lose every secret at restart, so
    /// authenticator apps are off then.
    #[serde(skip)]
    pub factor_key: Option<InstanceKey>,
    /// A fourth: seals mail waiting in the outbox. Random per process when `secret_key` is
    /// unset (mail queued by an earlier process then cannot be sent, and is marked failed).
    #[serde(skip)]
    pub mail_key: InstanceKey,
}

/// 32 bytes derived from `secret_key` with HMAC-SHA256 under a fixed label; never the key
/// itself.
#[derive(Clone)]
pub struct InstanceKey(pub [u8; 32]);

impl Default for InstanceKey {
    fn default() -> Self {
        InstanceKey(rand::random())
    }
}

impl std::fmt::Debug for InstanceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InstanceKey(…)")
    }
}

impl InstanceKey {
    /// A key for one use, named by `label`: keys for different uses are unrelated.
    fn derive(secret: &[u8], label: &[u8]) -> InstanceKey {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let tag = ring::hmac::sign(&key, label);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        InstanceKey(out)
    }
}

/// `[second_factor]`: who must have a second factor before anything opens.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct SecondFactorSettings {
    pub required: Required,
}

/// `second_factor.required`: `"none"` (the default), `"admins"` or `"everyone"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Required {
    #[default]
    None,
    Admins,
    Everyone,
}

impl SecondFactorSettings {
    /// Requiring a second factor needs a way to set one up: authenticator apps need
    /// `secret_key` (their secrets are sealed under a key derived from it).
    pub fn check(&self, has_secret_key: bool) -> Result<(), String> {
        if self.required != Required::None && !has_secret_key {
            return Err(
                "second_factor.required needs secret_key: authenticator-app secrets are sealed under a key derived from it"
                    .into(),
            );
        }
        Ok(())
    }

    /// Whether `is_admin` (and everyone) must have a second factor.
    pub fn requires(&self, is_admin: bool) -> bool {
        match self.required {
            Required::None => false,
            Required::Admins => is_admin,
            Required::Everyone => true,
        }
    }
}

/// `[throttle]`: failed sign-ins and provider sign-in starts, counted per window.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default)]
pub struct ThrottleSettings {
    pub enabled: bool,
    /// Failed sign-ins allowed per account and client IP in one window.
    pub account_ip_failures: u32,
    /// Failed sign-ins allowed per client IP in one window, whatever the accounts.
    pub ip_failures: u32,
    /// `/login/<provider>` starts allowed per client IP in one window.
    pub oauth_starts: u32,
    /// "Forgot password" requests allowed per client IP in one window.
    pub reset_requests: u32,
    /// The window, in seconds.
    pub window: i64,
    /// Most keys remembered at once.
    pub max_entries: usize,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            enabled: true,
            account_ip_failures: 5,
            ip_failures: 50,
            oauth_starts: 30,
            reset_requests: 10,
            window: 15 * 60,
            max_entries: 50_000,
        }
    }
}

/// `[forward_auth]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ForwardAuthSettings {
    /// Hosts the portal gates and may send people back to (`rd`): exact hosts and
    /// `*.example.com` patterns. Empty: forward-auth refuses every request (403) and no `rd`
    /// is followed.
    pub allowed_domains: Vec<String>,
    /// First match wins.
    pub rules: Vec<RuleSettings>,
    /// For a host no rule names: `allow` (every signed-in user) or `deny`.
    pub default: DefaultPolicy,
    /// Send `X-Portal-Assertion`, a signed JWT of who the user is, with every `200`.
    pub assertion: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultPolicy {
    #[default]
    Allow,
    Deny,
}

/// One `[[forward_auth.rules]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
pub struct RuleSettings {
    pub host: String,
    #[serde(default = "root_path")]
    pub path: String,
    #[serde(default)]
    pub allow: AllowSettings,
    /// Match `path` with case as written. Off by default: a backend that ignores case
    /// (IIS, a case-insensitive file system) serves `/Finance` as `/finance`.
    #[serde(default)]
    pub case_sensitive: bool,
    /// Only sessions made with a second factor (assurance level 2) pass; others are sent to
    /// the second step.
    #[serde(default)]
    pub second_factor: bool,
}

fn root_path() -> String {
    "/".into()
}

/// `"signed-in"`, `"admins"`, or a list of usernames.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum AllowSettings {
    Named(String),
    Users(Vec<String>),
}

impl Default for AllowSettings {
    fn default() -> Self {
        AllowSettings::Named("signed-in".into())
    }
}

/// `[oidc]`: the portal as an OpenID provider for other applications.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct OidcSettings {
    /// Seconds an access token is valid.
    pub access_token_secs: i64,
    /// Seconds an ID token is valid.
    pub id_token_secs: i64,
    /// Seconds a refresh token is valid; each use gives a new one for as long again.
    pub refresh_token_secs: i64,
    /// The applications (`[[oidc.clients]]`); more come from the console, API and CLI.
    pub clients: Vec<OidcClientSettings>,
}

impl Default for OidcSettings {
    fn default() -> Self {
        OidcSettings {
            access_token_secs: 600,
            id_token_secs: 3600,
            refresh_token_secs: 30 * 24 * 60 * 60,
            clients: Vec::new(),
        }
    }
}

/// One `[[oidc.clients]]` entry as written (checked in `auth::provider::clients`).
#[derive(Debug, Clone, Deserialize)]
pub struct OidcClientSettings {
    pub client_id: String,
    /// The secret itself; or `client_secret_hash`; neither with `public = true`.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// An Argon2id PHC string of the secret.
    #[serde(default)]
    pub client_secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Shown on the consent page; `client_id` when unset.
    #[serde(default)]
    pub name: Option<String>,
    /// No secret: PKCE (S256) is required instead.
    #[serde(default)]
    pub public: bool,
    /// `"explicit"` (a consent page) or `"implicit"` (trusted: no page).
    #[serde(default)]
    pub consent: ConsentMode,
    #[serde(default)]
    pub allow: AllowSettings,
    /// Only sessions made with a second factor (level 2) may sign in to it.
    #[serde(default)]
    pub second_factor: bool,
    /// `"RS256"` (the default) or `"EdDSA"`: how its ID and access tokens are signed.
    #[serde(default)]
    pub id_token_signed_response_alg: SigningAlg,
}

/// Whether an application asks the person before it learns who they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentMode {
    #[default]
    Explicit,
    Implicit,
}

/// The algorithms tokens are signed with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum SigningAlg {
    #[default]
    RS256,
    EdDSA,
}

impl SigningAlg {
    pub fn name(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }

    pub fn parse(name: &str) -> Option<SigningAlg> {
        match name {
            "RS256" => Some(SigningAlg::RS256),
            "EdDSA" => Some(SigningAlg::EdDSA),
            _ => None,
        }
    }
}

impl OidcSettings {
    /// The provider's issuer is `public_url`: applications compare it with the tokens'
    /// `iss`, so it cannot follow the request's `Host`.
    pub fn check(&self, public_url: Option<&PublicUrl>) -> Result<(), String> {
        if !self.clients.is_empty() && public_url.is_none() {
            return Err("oidc.clients needs public_url: it is the provider's issuer".into());
        }
        if self.access_token_secs <= 0 || self.id_token_secs <= 0 || self.refresh_token_secs <= 0 {
            return Err("oidc token lifetimes must be positive numbers of seconds".into());
        }
        Ok(())
    }
}

/// `[metrics]`: `GET /metrics` (Prometheus text), off until `token` is set.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct MetricsSettings {
    /// The bearer token a scraper sends (`Authorization: Bearer <token>`); unset: `/metrics`
    /// answers `404`.
    pub token: Option<String>,
}

impl std::fmt::Debug for MetricsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSettings").field("token", &self.token.as_ref().map(|_| "…")).finish()
    }
}

/// `[audit]`: how long the audit log keeps events.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default)]
pub struct AuditSettings {
    /// Days events are kept before the sweep deletes them.
    pub retention_days: i64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings { retention_days: 90 }
    }
}

/// `[branding]`: what the pages call the site, and an operator's stylesheet.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BrandingSettings {
    /// Shown in titles, the header and the footer.
    pub name: String,
    /// A CSS file read at start and served at `/static/brand.css`, linked after the
    /// portal's own stylesheet on every page.
    pub stylesheet: Option<std::path::PathBuf>,
}

impl Default for BrandingSettings {
    fn default() -> Self {
        BrandingSettings { name: "Portal".into(), stylesheet: None }
    }
}

/// Longest `branding.name` (it appears in every title).
const MAX_BRAND_NAME_CHARS: usize = 64;

/// `public_url`, parsed: an `http`/`https` origin with nothing after it but `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    /// `scheme://host[:port]`, lowercase, no trailing slash: what a browser sends as `Origin`.
    origin: String,
}

impl PublicUrl {
    pub fn parse(raw: &str) -> Result<PublicUrl, String> {
        let why = |what: &str| format!("public_url {raw:?} {what}");
        let url = url::Url::parse(raw).map_err(|e| why(&format!("is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(why("must start with http:// or https://"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(why("must not carry a user name or password"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(why("must be an origin only, without a path (e.g. https://auth.example.com)"));
        }
        Ok(PublicUrl { origin: url.origin().ascii_serialization() })
    }

    /// `scheme://host[:port]`, as browsers send it in `Origin`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// An absolute URL for a path of the portal (`path` starts with `/`).
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }
}

fn public_url<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<PublicUrl>, D::Error> {
    match Option::<String>::deserialize(de)? {
        None => Ok(None),
        Some(raw) if raw.trim().is_empty() => Ok(None),
        Some(raw) => PublicUrl::parse(raw.trim()).map(Some).map_err(serde::de::Error::custom),
    }
}

/// The example key printed in Rocket's documentation: anyone can forge cookies with it.
const PUBLISHED_SECRET_KEYS: [&str; 1] = ["hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk="];

/// A random 256-bit key has about 30 distinct bytes; fewer than this means it was made by
/// hand (a phrase, a pattern) rather than by a random generator.
const MIN_DISTINCT_KEY_BYTES: usize = 16;

/// Refuses a `secret_key` that anyone could know or guess: a published example, one byte
/// repeated, or too few distinct bytes to have come from a random generator. Checked in
/// every profile; the error is one line fit to stop startup with. An absent or all-zero key
/// is left to Rocket (a debug build generates one; a release build refuses to start).
pub fn check_secret_key(figment: &Figment) -> Result<(), String> {
    use base64::Engine;
    // Rocket itself refuses a key it cannot read, with its own message.
    let Some(bytes) = secret_key_bytes(figment) else { return Ok(()) };
    if bytes.iter().all(|b| *b == 0) {
        return Ok(());
    }
    let published = PUBLISHED_SECRET_KEYS
        .iter()
        .filter_map(|key| base64::engine::general_purpose::STANDARD.decode(key).ok())
        .any(|key| key == bytes);
    let fix = "generate one with `openssl rand -base64 32`";
    if published {
        return Err(format!(
            "secret_key is the example key from Rocket's documentation: anyone could forge sessions with it; {fix}"
        ));
    }
    let mut seen = [false; 256];
    bytes.iter().for_each(|b| seen[usize::from(*b)] = true);
    let distinct = seen.iter().filter(|s| **s).count();
    if distinct == 1 {
        return Err(format!("secret_key repeats one byte: it is not a random key; {fix}"));
    }
    if distinct < MIN_DISTINCT_KEY_BYTES {
        return Err(format!(
            "secret_key has only {distinct} distinct bytes (a random key has about 30): it is not a random key; {fix}"
        ));
    }
    Ok(())
}

/// `secret_key`'s bytes as Rocket reads them, when it is set and readable.
pub fn secret_key_bytes(figment: &Figment) -> Option<Vec<u8>> {
    let value = figment.find_value("secret_key").ok()?;
    match &value {
        rocket::figment::value::Value::String(_, text) => decode_key(text),
        rocket::figment::value::Value::Array(_, items) => {
            items.iter().map(|item| item.to_u128().and_then(|n| u8::try_from(n).ok())).collect()
        }
        _ => None,
    }
}

/// The key's bytes, read as Rocket reads them: 44 or 88 characters of base64, or 64 of hex.
fn decode_key(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    match text.len() {
        44 | 88 => base64::engine::general_purpose::STANDARD.decode(text).ok(),
        64 => (0..64)
            .step_by(2)
            .map(|at| text.get(at..at + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
            .collect(),
        _ => None,
    }
}

/// A secret read from configuration; `Debug` never shows it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"…\"")
    }
}

/// `[oauth]`: the HTTP limits for provider calls, the buttons' order, and one table per
/// provider (`[oauth.<slug>]`). `google` and `github` without `client_id` are off.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct OAuthSettings {
    /// Seconds to wait for a connection to a provider.
    pub connect_timeout: u64,
    /// Seconds a whole provider request may take.
    pub timeout: u64,
    /// Largest provider response read, in bytes.
    pub max_response_bytes: usize,
    /// The buttons' order, by slug (names without a table are skipped). Default: the order
    /// of the `[oauth.*]` tables in the configuration file; providers not named come after,
    /// Google and GitHub first, then by slug.
    pub order: Vec<String>,
    /// Every other key: a provider, by its slug.
    #[serde(flatten)]
    pub providers: BTreeMap<String, ProviderSettings>,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        OAuthSettings {
            connect_timeout: 5,
            timeout: 10,
            max_response_bytes: 1024 * 1024,
            order: Vec::new(),
            providers: BTreeMap::new(),
        }
    }
}

/// What a provider speaks: OpenID Connect found by discovery, or one of the two presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKindSetting {
    Oidc,
    Google,
    Github,
}

impl ProviderKindSetting {
    /// The default for a slug: `google` and `github` are their presets, any other `oidc`.
    pub fn default_for(slug: &str) -> ProviderKindSetting {
        match slug {
            "google" => ProviderKindSetting::Google,
            "github" => ProviderKindSetting::Github,
            _ => ProviderKindSetting::Oidc,
        }
    }

    /// As pages name it (which logo and button style).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKindSetting::Google => "google",
            ProviderKindSetting::Github => "github",
            ProviderKindSetting::Oidc => "oidc",
        }
    }

    /// A preset's button text; an OpenID provider's is configured.
    pub fn preset_name(self) -> Option<&'static str> {
        match self {
            ProviderKindSetting::Google => Some("Google"),
            ProviderKindSetting::Github => Some("GitHub"),
            ProviderKindSetting::Oidc => None,
        }
    }
}

/// `email_verified`: whether the provider must say the address is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailVerified {
    /// `email_verified: true` is required for an address to be kept; without it the
    /// sign-in is refused.
    #[default]
    Required,
    /// The provider only hands out addresses it verified (and never sends the claim).
    Trusted,
}

/// A claim rule: the claim (a dotted path into the ID token and userinfo claims) must
/// equal `equals`, or (a list or a string) contain `contains`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRule {
    pub claim: String,
    pub contains: Option<String>,
    pub equals: Option<String>,
}

/// `auth_method`: how the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
}

/// `logout`: what signing out of the portal does at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamLogout {
    /// Nothing: the provider session stays.
    #[default]
    Portal,
    /// The browser goes on to the provider's `end_session_endpoint`.
    Provider,
}

/// `[oauth.<slug>]`: one provider. Defaults depend on `kind` (see `docs/configuration.md`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProviderSettings {
    /// Default: `google` and `github` for those slugs, `oidc` for any other.
    pub kind: Option<ProviderKindSetting>,
    /// The button's text after "Sign in with". Default: Google, GitHub; required for `oidc`.
    pub name: Option<String>,
    /// An SVG, PNG or WebP file (64 KiB at most) read at start, shown on the button and
    /// served at `/static/icons/<slug>.<ext>`.
    pub icon: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub redirect_uri: Option<String>,
    /// Discovery is at `{issuer}/.well-known/openid-configuration`. Default for `google`:
    /// `https://accounts.google.com`; required for `oidc`.
    pub issuer: Option<String>,
    /// Default `["openid", "email", "profile"]` (`openid` is always sent).
    pub scopes: Option<Vec<String>>,
    pub email_verified: EmailVerified,
    /// When not empty, only these email domains may sign in (for `google`: the Workspace
    /// domain, the `hd` claim).
    pub allowed_domains: Vec<String>,
    /// Every rule must hold.
    pub claim_rules: Vec<ClaimRule>,
    /// Default `client_secret_basic` (`client_secret_post` for `github`).
    pub auth_method: Option<AuthMethod>,
    pub logout: UpstreamLogout,
    /// GitHub: the authorize, token and API addresses (GitHub Enterprise moves them).
    pub auth_uri: Option<String>,
    pub token_uri: Option<String>,
    pub api_uri: Option<String>,
    /// GitHub: when not empty, only members of one of these organisations may sign in.
    pub allowed_orgs: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SessionSettings {
    /// Seconds without a request after which a session ends.
    pub idle_timeout: i64,
    /// Seconds after sign-in after which a session ends regardless of activity.
    pub absolute_timeout: i64,
    /// Last-seen is rewritten (the cookie re-encrypted) at most this often, in seconds.
    pub refresh_after: i64,
    /// Seconds the guard may reuse a session it read (0: read on every request). Changes
    /// made by the server apply at once; changes by the `users` CLI within this time.
    pub cache_ttl: i64,
    /// Seconds ended and expired sessions are kept (the account page's recent devices)
    /// before the sweep deletes them.
    pub retention: i64,
    /// Seconds between two sweeps.
    pub sweep_interval: u64,
    /// The session cookie's `Domain` (`example.com`): one sign-in then covers every
    /// subdomain (`wiki.example.com`, …). Unset: host-only, the portal's own host.
    #[serde(deserialize_with = "cookie_domain")]
    pub cookie_domain: Option<String>,
}

fn cookie_domain<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(de)? {
        None => Ok(None),
        Some(raw) if raw.trim().is_empty() => Ok(None),
        Some(raw) => {
            let bare = raw.trim().trim_start_matches('.');
            match crate::host::normalize_host(bare) {
                Some(host) if host.contains('.') && !host.chars().all(|c| c.is_ascii_digit() || c == '.') => {
                    Ok(Some(host))
                }
                _ => Err(serde::de::Error::custom(format!(
                    "session.cookie_domain {raw:?} must be a domain name with a dot, such as example.com"
                ))),
            }
        }
    }
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            idle_timeout: 30 * 60,
            absolute_timeout: 12 * 60 * 60,
            refresh_after: 60,
            cache_ttl: 2,
            retention: 7 * 24 * 60 * 60,
            sweep_interval: 10 * 60,
            cookie_domain: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct HashSettings {
    /// Concurrent Argon2 computations; 0 picks the CPU count minus one (at least one).
    pub concurrency: usize,
    /// Requests allowed to wait for a hashing slot; beyond it they get a 503 at once.
    /// Unset: 32 per slot, so nobody waits much more than one and a half seconds
    /// (32 × ~50 ms): a person would rather wait that long than see an error page.
    pub queue: Option<usize>,
}

impl HashSettings {
    pub fn permits(&self) -> usize {
        match self.concurrency {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1)),
            n => n,
        }
    }

    pub fn queue_len(&self) -> usize {
        self.queue.unwrap_or(32 * self.permits())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Databases {
    pub portal: Database,
}

#[derive(Clone, Deserialize)]
pub struct Database {
    pub url: String,
    #[serde(flatten)]
    pub pool: PoolSettings,
}

/// How the pool connects (`databases.portal.*`, beside `url`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default)]
pub struct PoolSettings {
    /// Connections in the pool; unset: 8 on SQLite, 16 on PostgreSQL (one of which the
    /// revocation listener keeps).
    pub max_connections: Option<u32>,
    /// Seconds a request waits for a connection (or a new connection for its handshake)
    /// before it is answered `503`.
    pub connect_timeout: u64,
    /// Seconds an unused connection is kept open (PostgreSQL).
    pub idle_timeout: u64,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings { max_connections: None, connect_timeout: 5, idle_timeout: 300 }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A URL may carry a password (PostgreSQL): show only the scheme. The pool's keys sit
        // beside `url` (flattened), so they are shown there too.
        let scheme = self.url.split(':').next().unwrap_or("?");
        f.debug_struct("Database")
            .field("url", &format_args!("{scheme}:…"))
            .field("max_connections", &self.pool.max_connections)
            .field("connect_timeout", &self.pool.connect_timeout)
            .field("idle_timeout", &self.pool.idle_timeout)
            .finish()
    }
}

impl Settings {
    /// Reads and checks the settings; the error is one line fit to stop startup with.
    pub fn from_figment(figment: &Figment) -> Result<Settings, String> {
        let mut settings: Settings =
            figment.extract().map_err(|e| format!("invalid portal configuration: {e}"))?;
        if let Some(secret) = secret_key_bytes(figment).filter(|b| b.iter().any(|b| *b != 0)) {
            settings.instance_key = InstanceKey::derive(&secret, b"portal: throttle counter keys, v1");
            settings.csrf_key =
                InstanceKey::derive(&secret, b"portal: CSRF tokens of signed-in sessions, v1");
            settings.factor_key = Some(InstanceKey::derive(&secret, b"portal: second-factor secrets, v1"));
            settings.mail_key = InstanceKey::derive(&secret, b"portal: mail in the outbox, v1");
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Each section's own check, in the order of the file's sections, and the one rule
    /// across two (the session cookie's domain must cover `public_url`).
    fn validate(&self) -> Result<(), String> {
        self.session.check()?;
        self.audit.check()?;
        self.session.check_refresh()?;
        self.branding.check()?;
        self.forward_auth.check(self.public_url.as_ref())?;
        self.session.check_domain(self.public_url.as_ref())?;
        self.metrics.check()?;
        self.second_factor.check(self.factor_key.is_some())?;
        self.oidc.check(self.public_url.as_ref())?;
        self.databases.portal.check()?;
        self.throttle.check()?;
        if let Some(email) = &self.email {
            email.check(self.public_url.as_ref())?;
        }
        self.oauth.check()
    }
}

/// `[email]`: where mail goes out and whom it is from. The URL and the address are parsed by
/// the mail module at start (a bad one stops startup with one line).
#[derive(Clone, Deserialize)]
pub struct EmailSettings {
    /// `smtp://host:port` (plain), `smtp://host:port?tls=required` (STARTTLS) or
    /// `smtps://host:port` (TLS); `user:password@` for servers that ask.
    pub smtp_url: Secret,
    /// The sender: `Portal <portal@example.com>` or a bare address.
    pub from: String,
    /// Seconds an SMTP conversation may take before it counts as a failed attempt.
    #[serde(default = "EmailSettings::default_timeout")]
    pub timeout: u64,
}

impl EmailSettings {
    fn default_timeout() -> u64 {
        30
    }

    /// Links in mail are absolute: they need `public_url`.
    pub fn check(&self, public_url: Option<&PublicUrl>) -> Result<(), String> {
        if public_url.is_none() {
            return Err("[email] needs public_url: links in mail are absolute".into());
        }
        if self.timeout == 0 {
            return Err("email.timeout must be a positive number of seconds".into());
        }
        Ok(())
    }
}

impl std::fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry the SMTP server's password: show only its scheme.
        let scheme = self.smtp_url.expose().split(':').next().unwrap_or("?");
        f.debug_struct("EmailSettings")
            .field("smtp_url", &format_args!("{scheme}:…"))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SessionSettings {
    pub fn check(&self) -> Result<(), String> {
        let s = self;
        if s.idle_timeout <= 0
            || s.absolute_timeout <= 0
            || s.refresh_after < 0
            || s.cache_ttl < 0
            || s.retention < 0
            || s.sweep_interval == 0
        {
            return Err("session timeouts must be positive numbers of seconds".into());
        }
        Ok(())
    }

    fn check_refresh(&self) -> Result<(), String> {
        if self.refresh_after >= self.idle_timeout {
            return Err("session.refresh_after must be shorter than session.idle_timeout".into());
        }
        Ok(())
    }

    /// `cookie_domain` must cover `public_url`'s host, or the browser drops the cookie.
    pub fn check_domain(&self, public_url: Option<&PublicUrl>) -> Result<(), String> {
        if let (Some(domain), Some(public)) = (&self.cookie_domain, public_url) {
            let host = url::Url::parse(public.origin()).ok().and_then(|u| u.host_str().map(str::to_owned));
            let covered = host.is_some_and(|h| h == *domain || h.ends_with(&format!(".{domain}")));
            if !covered {
                return Err(format!("session.cookie_domain {domain:?} does not cover public_url's host"));
            }
        }
        Ok(())
    }
}

impl AuditSettings {
    pub fn check(&self) -> Result<(), String> {
        // The message `validate` always gave for this key, kept as it was.
        if self.retention_days < 0 {
            return Err("session timeouts must be positive numbers of seconds".into());
        }
        Ok(())
    }
}

impl BrandingSettings {
    pub fn check(&self) -> Result<(), String> {
        let name = self.name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_BRAND_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(format!(
                "branding.name must be 1 to {MAX_BRAND_NAME_CHARS} characters, without control characters"
            ));
        }
        Ok(())
    }
}

impl ForwardAuthSettings {
    /// Forward-auth sends people to the login page at `public_url`. The rules themselves
    /// are read once, into the policy the auth service builds (`Policy::from_settings`),
    /// where a bad one stops startup.
    pub fn check(&self, public_url: Option<&PublicUrl>) -> Result<(), String> {
        if !self.allowed_domains.is_empty() && public_url.is_none() {
            return Err(
                "forward_auth.allowed_domains needs public_url: the login page the proxies send people to"
                    .into(),
            );
        }
        Ok(())
    }
}

impl MetricsSettings {
    pub fn check(&self) -> Result<(), String> {
        if let Some(token) = &self.token {
            if token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(
                    "metrics.token must be at least 16 characters without spaces (generate one with `openssl rand -hex 32`)"
                        .into(),
                );
            }
        }
        Ok(())
    }
}

impl Database {
    pub fn check(&self) -> Result<(), String> {
        let pool = &self.pool;
        if pool.connect_timeout == 0 || pool.idle_timeout == 0 || pool.max_connections.is_some_and(|n| n < 2)
        {
            return Err("databases.portal.connect_timeout and idle_timeout must be positive and max_connections at least 2".into());
        }
        if self.url.trim().is_empty() {
            return Err("databases.portal.url is empty".into());
        }
        Ok(())
    }
}

impl ThrottleSettings {
    pub fn check(&self) -> Result<(), String> {
        let t = self;
        if t.window <= 0 || t.max_entries == 0 || t.account_ip_failures == 0 || t.ip_failures == 0 {
            return Err("throttle.window, max_entries and the failure limits must be positive".into());
        }
        Ok(())
    }
}

impl OAuthSettings {
    pub fn check(&self) -> Result<(), String> {
        if self.timeout == 0 || self.connect_timeout == 0 || self.max_response_bytes == 0 {
            return Err(
                "oauth.timeout, oauth.connect_timeout and oauth.max_response_bytes must be positive".into()
            );
        }
        for slug in self.providers.keys() {
            check_slug(slug)?;
        }
        Ok(())
    }
}

/// Path segments the portal's own routes use after `/login/` and `/auth/`, and the
/// first-step names sessions record: no provider may take them.
const RESERVED_SLUGS: [&str; 4] = ["second-factor", "passkey", "password", "recovery"];

/// A provider's slug names its routes and its identities: `[a-z0-9-]{1,32}`.
pub fn check_slug(slug: &str) -> Result<(), String> {
    let shaped = (1..=32).contains(&slug.len())
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !shaped {
        return Err(format!(
            "[oauth.{slug}]: a provider's slug must be 1 to 32 of a-z, 0-9 and '-' (it names /login/<slug>)"
        ));
    }
    if RESERVED_SLUGS.contains(&slug) {
        return Err(format!("[oauth.{slug}]: {slug:?} is a name the portal uses itself; pick another slug"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocket::figment::providers::Serialized;

    fn figment() -> Figment {
        Figment::new().merge(Serialized::default("databases.portal.url", "sqlite::memory:"))
    }

    #[test]
    fn defaults_apply_when_only_the_database_is_set() {
        let settings = Settings::from_figment(&figment()).unwrap();
        assert_eq!(settings.session.idle_timeout, 1800);
        assert_eq!(settings.session.absolute_timeout, 43200);
        assert!(!settings.secure_cookies);
        assert!(settings.hashing.permits() >= 1);
    }

    #[test]
    fn a_refresh_interval_longer_than_the_idle_timeout_is_refused() {
        let figment = figment().merge(Serialized::default("session.refresh_after", 5000));
        let err = Settings::from_figment(&figment).unwrap_err();
        assert!(err.contains("refresh_after"), "{err}");
    }

    #[test]
    fn debug_output_hides_client_secrets() {
        let figment = figment().merge(Serialized::default("oauth.github.client_secret", "s3cr3t-value"));
        let settings = Settings::from_figment(&figment).unwrap();
        let shown = format!("{settings:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(shown.contains("client_secret: Some(\"…\")"), "{shown}");
    }

    fn key_check(key: &str) -> Result<(), String> {
        check_secret_key(&figment().merge(Serialized::default("secret_key", key)))
    }

    #[test]
    fn the_key_from_rockets_documentation_is_refused() {
        let err = key_check("hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=").unwrap_err();
        assert!(err.contains("example key from Rocket's documentation"), "{err}");
    }

    #[test]
    fn a_key_of_one_repeated_byte_is_refused_in_base64_and_hex() {
        use base64::Engine;
        let base64 = base64::engine::general_purpose::STANDARD.encode([b'A'; 32]);
        assert!(key_check(&base64).unwrap_err().contains("repeats one byte"));
        assert!(key_check(&"ab".repeat(32)).unwrap_err().contains("repeats one byte"));
        let long = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
        assert!(key_check(&long).unwrap_err().contains("repeats one byte"));
    }

    #[test]
    fn a_key_of_fewer_than_16_distinct_bytes_is_refused() {
        use base64::Engine;
        let phrase: Vec<u8> = b"password".iter().copied().cycle().take(32).collect();
        let err = key_check(&base64::engine::general_purpose::STANDARD.encode(phrase)).unwrap_err();
        assert!(err.contains("only 7 distinct bytes"), "{err}");
        let fifteen: Vec<u8> = (1..=15u8).cycle().take(32).collect();
        assert!(key_check(&base64::engine::general_purpose::STANDARD.encode(fifteen)).is_err());
        let sixteen: Vec<u8> = (1..=16u8).cycle().take(32).collect();
        assert_eq!(key_check(&base64::engine::general_purpose::STANDARD.encode(sixteen)), Ok(()));
    }

    #[test]
    fn a_random_key_an_absent_key_and_rockets_zero_placeholder_pass() {
        use base64::Engine;
        let random: [u8; 32] = rand::random();
        assert_eq!(key_check(&base64::engine::general_purpose::STANDARD.encode(random)), Ok(()));
        assert_eq!(check_secret_key(&figment()), Ok(()));
        assert_eq!(check_secret_key(&Figment::from(rocket::Config::default())), Ok(()));
    }

    #[test]
    fn public_url_must_be_an_http_origin() {
        let url = PublicUrl::parse("https://Auth.Example.com/").unwrap();
        assert_eq!(url.origin(), "https://auth.example.com");
        assert_eq!(url.join("/reset/x"), "https://auth.example.com/reset/x");
        assert_eq!(PublicUrl::parse("http://127.0.0.1:8000").unwrap().origin(), "http://127.0.0.1:8000");
        for bad in ["auth.example.com", "ftp://x", "https://u:p@x", "https://x/portal", "https://x/?a"] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad}");
        }
        let figment = figment().merge(Serialized::default("public_url", "https://x/path"));
        assert!(Settings::from_figment(&figment).unwrap_err().contains("public_url"));
    }

    #[test]
    fn debug_output_hides_the_database_url() {
        let figment = Figment::new()
            .merge(Serialized::default("databases.portal.url", "postgres://u:hunter2@db/portal"));
        let settings = Settings::from_figment(&figment).unwrap();
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
