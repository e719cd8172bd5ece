//! The portal: a sign-in portal on Rocket 0.5.
//!
//! [`rocket()`] builds the app from `Rocket.toml` and `ROCKET_*`; [`rocket_with`] lets tests
//! bring their own configuration and clock. The app is a list of stages: the state (the
//! settings and the auth service over store, hasher, throttle and providers), the web
//! layer (branding, templates, headers, catchers), and the routes.

#[cfg(test)]
mod architecture;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod host;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod routes;
pub mod seal;
pub mod store;
pub mod templates;
pub mod web;
pub mod when;

use std::sync::Arc;

use rocket::fairing::AdHoc;
use rocket::figment::providers::{Env, Format, Serialized, Toml};
use rocket::figment::{Figment, Profile};
use rocket::{Build, Config, Rocket};

use crate::auth::oauth::Providers;
use crate::auth::password::{self, Hasher};
use crate::auth::throttle::Throttle;
use crate::auth::Auth;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::store::{NewUser, Store};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://portal.sqlite?mode=rwc";

/// Rocket's own figment (`Rocket.toml`, then `ROCKET_*`), with the portal's defaults
/// slotted in below both, the same in every profile and build: no trusted client-IP header,
/// no `Server` header, the 16 KiB form limit, sign-ins logged (Rocket's release default,
/// `critical`, would log none), and the SQLite file in the working directory. The portal's
/// own keys take their defaults from [`config::Settings`].
pub fn figment() -> Figment {
    Figment::from(Config::default())
        .merge(Serialized::default("ip_header", false))
        .merge(Serialized::default("ident", false))
        .merge(Serialized::default("log_level", "normal"))
        .merge(Serialized::default("limits.form", "16 KiB"))
        .merge(Serialized::default("databases.portal.url", DEFAULT_DATABASE_URL))
        .merge(Serialized::default("oauth.order", providers_in_file_order(&config_file())))
        .merge(Toml::file(config_file()).nested())
        .merge(provider_env())
        .merge(Env::prefixed("ROCKET_").ignore(&["PROFILE"]).global())
        .select(Profile::from_env_or("ROCKET_PROFILE", Config::DEFAULT_PROFILE))
}

fn config_file() -> String {
    Env::var_or("ROCKET_CONFIG", "Rocket.toml")
}

/// The slugs of the `[…oauth.<slug>]` tables in the configuration file, in the order they
/// first appear: the default order of the sign-in buttons (figment keeps keys sorted, so
/// the file says it). A missing or unreadable file gives none.
fn providers_in_file_order(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut order: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim).filter(|line| line.starts_with('[')) {
        let header = line.trim_start_matches('[').split(']').next().unwrap_or_default();
        let parts: Vec<&str> = header.split('.').map(str::trim).collect();
        let Some(at) = parts.iter().position(|p| *p == "oauth") else { continue };
        // `[oauth.x]` or `[<profile>.oauth.x]`, and their sub-tables.
        if at > 1 {
            continue;
        }
        if let Some(slug) = parts.get(at + 1).filter(|s| config::check_slug(s).is_ok()) {
            if !order.iter().any(|known| known == slug) {
                order.push((*slug).to_owned());
            }
        }
    }
    order
}

/// The conventional provider variables, below `ROCKET_OAUTH` in priority.
fn provider_env() -> Env {
    const NAMES: [(&str, &str); 4] = [
        ("GOOGLE_CLIENT_ID", "oauth.google.client_id"),
        ("GOOGLE_CLIENT_SECRET", "oauth.google.client_secret"),
        ("GITHUB_CLIENT_ID", "oauth.github.client_id"),
        ("GITHUB_CLIENT_SECRET", "oauth.github.client_secret"),
    ];
    Env::raw()
        .filter_map(|key| NAMES.iter().find(|(name, _)| key == *name).map(|(_, path)| (*path).into()))
        .global()
}

/// What tests swap in when they build the app.
#[derive(Default)]
pub struct Overrides {
    pub clock: Option<Arc<dyn Clock>>,
}

pub fn rocket() -> Rocket<Build> {
    rocket_with(figment(), Overrides::default())
}

pub fn rocket_with(figment: Figment, overrides: Overrides) -> Rocket<Build> {
    let clock = overrides.clock.unwrap_or_else(|| Arc::new(SystemClock));
    rocket::custom(figment).attach(state(clock)).attach(web::stage()).attach(routes::stage()).attach(sweep())
}

/// Deletes old sessions, and sends the outbox's mail, in the background while the server
/// runs.
fn sweep() -> AdHoc {
    AdHoc::on_liftoff("Session sweep and outbox", |rocket| {
        Box::pin(async move {
            if let Some(auth) = rocket.state::<Auth>() {
                tokio::spawn(auth.sweeper().run());
                if let Some(outbox) = auth.outbox() {
                    tokio::spawn(outbox.run());
                }
            }
        })
    })
}

/// Reads the settings, opens and migrates the store, prepares the hasher and the providers,
/// and manages the auth service over them. Any failure stops startup with one clear line.
fn state(clock: Arc<dyn Clock>) -> AdHoc {
    AdHoc::try_on_ignite("Portal state", |rocket| async move {
        match init(&rocket, clock).await {
            Ok((settings, auth)) => Ok(rocket.manage(settings).manage(auth)),
            Err(e) => {
                log::error!("{e}");
                Err(rocket)
            }
        }
    })
}

async fn init(rocket: &Rocket<Build>, clock: Arc<dyn Clock>) -> Result<(Settings, Auth), String> {
    config::check_secret_key(rocket.figment())?;
    let settings = Settings::from_figment(rocket.figment())?;
    let store = open_store(&settings)?;
    let template_dir = templates::override_dir(rocket.figment())?;
    let auth = build_auth(store.clone(), &settings, clock.clone(), template_dir.as_deref())?;
    auth.providers().discover_in_background(clock.clone());
    let configured_clients = !settings.oidc.clients.is_empty();
    // PostgreSQL may come up after the portal: then it serves 503 until it does.
    store
        .keep_bringing_up(move |store| {
            let clock = clock.clone();
            async move { first_start(&store, clock.now(), configured_clients).await }
        })
        .await
        .map_err(|e| format!("could not open the database (databases.portal.url): {e}"))?;
    if cfg!(debug_assertions) && rocket.figment().profile() == Config::DEBUG_PROFILE && store.is_up() {
        seed_debug_admin(auth.store(), auth.now())
            .await
            .map_err(|e| format!("could not create the debug admin user: {e}"))?;
    }
    Ok((settings, auth))
}

fn open_store(settings: &Settings) -> Result<Store, String> {
    let db = &settings.databases.portal;
    Ok(Store::open(&db.url, db.pool)
        .map_err(|e| format!("could not open the database (databases.portal.url): {e}"))?
        .with_session_cache(settings.session.cache_ttl))
}

/// The auth service over `store`: on PostgreSQL the throttle's counters are in the store
/// too, so every instance shares one budget. With `[email]`, its mailer, whose templates
/// `template_dir` may override.
fn build_auth(
    store: Store,
    settings: &Settings,
    clock: Arc<dyn Clock>,
    template_dir: Option<&std::path::Path>,
) -> Result<Auth, String> {
    let hasher =
        Hasher::new(settings.hashing.permits(), settings.hashing.queue_len()).map_err(|e| e.to_string())?;
    let providers = Providers::from_settings(&settings.oauth)?;
    let throttle = match store.backend() {
        store::Backend::Sqlite => Throttle::new(settings.throttle),
        store::Backend::Postgres => {
            Throttle::shared(settings.throttle, store.clone(), &settings.instance_key)
        }
    };
    let mailer = match (&settings.email, &settings.public_url) {
        (Some(email), Some(public_url)) => Some(mail::Mailer::new(
            email,
            public_url,
            &settings.branding.name,
            &settings.mail_key,
            template_dir,
        )?),
        _ => None,
    };
    Ok(Auth::new(store, hasher, throttle, providers, clock, settings)?.with_mail(mailer))
}

/// What a store needs once its schema is current: the forward-auth signing key, and the
/// OpenID provider's RSA key when it has applications (configured, or in the store).
async fn first_start(store: &Store, now: i64, configured_clients: bool) -> Result<(), String> {
    let signer = auth::assertion::Signer::new(store.clone());
    signer.ensure_key(now).await.map_err(|e| format!("could not make the forward-auth signing key: {e}"))?;
    let stored_clients = !store.oidc_clients().await.map_err(|e| e.to_string())?.is_empty();
    if configured_clients || stored_clients {
        signer
            .ensure_rsa(now)
            .await
            .map_err(|e| format!("could not make the OpenID provider's RSA key: {e}"))?;
    }
    Ok(())
}

/// The auth service over the configured store, hasher, throttle and providers, for the
/// command line: waits for the store and fails at once when it does not answer.
pub async fn auth_service(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Auth, String> {
    let store = open_store(settings)?;
    store.bring_up().await.map_err(|e| format!("could not open the database (databases.portal.url): {e}"))?;
    let template_dir = templates::override_dir(&figment())?;
    let auth = build_auth(store.clone(), settings, clock, template_dir.as_deref())?;
    first_start(&store, auth.now(), !settings.oidc.clients.is_empty()).await?;
    Ok(auth)
}

/// `cargo run` on an empty store: the tutorial's admin/admin, in debug builds only.
async fn seed_debug_admin(store: &Store, now: i64) -> Result<(), String> {
    if store.count_users().await.map_err(|e| e.to_string())? > 0 {
        return Ok(());
    }
    let hash = password::hash_blocking("admin").map_err(|e| e.to_string())?;
    let admin = NewUser { username: "admin", email: None, password_hash: Some(&hash), is_admin: true };
    store.create_user(admin, now).await.map_err(|e| e.to_string())?;
    log::warn!("DEBUG BUILD: the store was empty, so user `admin` with password `admin` was created.");
    log::warn!("DEBUG BUILD: this never happens in a release build; create users with `portal users add`.");
    Ok(())
}
