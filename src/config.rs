//! The portal's own settings, read from Rocket's figment (`Rocket.toml` + `ROCKET_*`).

use rocket::figment::Figment;
use serde::Deserialize;

/// Everything the portal reads from configuration beyond Rocket's own keys.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Mark cookies `Secure` even without TLS in Rocket (a TLS proxy sits in front).
    #[serde(default)]
    pub secure_cookies: bool,
    #[serde(default)]
    pub session: SessionSettings,
    #[serde(default)]
    pub hashing: HashSettings,
    pub databases: Databases,
    #[serde(default)]
    pub oauth: OAuthSettings,
    #[serde(default)]
    pub throttle: crate::throttle::ThrottleSettings,
}

/// A secret read from configuration; `Debug` never shows it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"…\"")
    }
}

/// `[oauth]`: the HTTP limits for provider calls, and one table per provider. A provider
/// without `client_id` is off.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct OAuthSettings {
    /// Seconds to wait for a connection to a provider.
    pub connect_timeout: u64,
    /// Seconds a whole provider request may take.
    pub timeout: u64,
    /// Largest provider response read, in bytes.
    pub max_response_bytes: usize,
    pub google: GoogleSettings,
    pub github: GithubSettings,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        OAuthSettings {
            connect_timeout: 5,
            timeout: 10,
            max_response_bytes: 1024 * 1024,
            google: GoogleSettings::default(),
            github: GithubSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct GoogleSettings {
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub redirect_uri: Option<String>,
    pub issuer: String,
    /// When not empty, only Workspace accounts whose `hd` claim is listed may sign in.
    pub allowed_domains: Vec<String>,
}

impl Default for GoogleSettings {
    fn default() -> Self {
        GoogleSettings {
            client_id: None,
            client_secret: None,
            redirect_uri: None,
            issuer: "https://accounts.google.com".into(),
            allowed_domains: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct GithubSettings {
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub redirect_uri: Option<String>,
    pub auth_uri: String,
    pub token_uri: String,
    pub api_uri: String,
    /// When not empty, only members of one of these organisations may sign in.
    pub allowed_orgs: Vec<String>,
}

impl Default for GithubSettings {
    fn default() -> Self {
        GithubSettings {
            client_id: None,
            client_secret: None,
            redirect_uri: None,
            auth_uri: "https://github.com/login/oauth/authorize".into(),
            token_uri: "https://github.com/login/oauth/access_token".into(),
            api_uri: "https://api.github.com".into(),
            allowed_orgs: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default)]
pub struct SessionSettings {
    /// Seconds without a request after which a session ends.
    pub idle_timeout: i64,
    /// Seconds after sign-in after which a session ends regardless of activity.
    pub absolute_timeout: i64,
    /// Last-seen is rewritten (the cookie re-encrypted) at most this often, in seconds.
    pub refresh_after: i64,
    /// Seconds the guard may reuse a user it read (0: read on every request). Changes made
    /// by the server apply at once; changes by the `users` CLI within this time.
    pub cache_ttl: i64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            idle_timeout: 30 * 60,
            absolute_timeout: 12 * 60 * 60,
            refresh_after: 60,
            cache_ttl: 2,
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

#[derive(Clone, Deserialize)]
pub struct Databases {
    pub portal: Database,
}

#[derive(Clone, Deserialize)]
pub struct Database {
    pub url: String,
}

impl std::fmt::Debug for Databases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A URL may carry a password (PostgreSQL): show only the scheme.
        let scheme = self.portal.url.split(':').next().unwrap_or("?");
        f.debug_struct("Databases").field("portal", &format_args!("{scheme}:…")).finish()
    }
}

impl Settings {
    /// Reads and checks the settings; the error is one line fit to stop startup with.
    pub fn from_figment(figment: &Figment) -> Result<Settings, String> {
        let settings: Settings =
            figment.extract().map_err(|e| format!("invalid portal configuration: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), String> {
        let s = &self.session;
        if s.idle_timeout <= 0 || s.absolute_timeout <= 0 || s.refresh_after < 0 || s.cache_ttl < 0 {
            return Err("session timeouts must be positive numbers of seconds".into());
        }
        if s.refresh_after >= s.idle_timeout {
            return Err("session.refresh_after must be shorter than session.idle_timeout".into());
        }
        if self.databases.portal.url.trim().is_empty() {
            return Err("databases.portal.url is empty".into());
        }
        let t = &self.throttle;
        if t.window <= 0 || t.max_entries == 0 || t.account_ip_failures == 0 || t.ip_failures == 0 {
            return Err("throttle.window, max_entries and the failure limits must be positive".into());
        }
        if self.oauth.timeout == 0 || self.oauth.connect_timeout == 0 || self.oauth.max_response_bytes == 0 {
            return Err(
                "oauth.timeout, oauth.connect_timeout and oauth.max_response_bytes must be positive".into()
            );
        }
        Ok(())
    }
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

    #[test]
    fn debug_output_hides_the_database_url() {
        let figment = Figment::new()
            .merge(Serialized::default("databases.portal.url", "postgres://u:hunter2@db/portal"));
        let settings = Settings::from_figment(&figment).unwrap();
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
