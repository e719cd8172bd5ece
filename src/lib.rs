//! The portal: a sign-in portal on Rocket 0.5.
//!
//! [`rocket()`] builds the app from `Rocket.toml` and `ROCKET_*`; [`rocket_with`] lets tests
//! bring their own configuration, clock (and, later, providers).

pub mod auth;
pub mod catchers;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cookies;
pub mod csrf;
pub mod error;
pub mod flash;
pub mod headers;
pub mod logging;
pub mod routes;
pub mod store;
pub mod throttle;
pub mod views;

use std::sync::Arc;

use rocket::fairing::AdHoc;
use rocket::figment::providers::{Env, Format, Serialized, Toml};
use rocket::figment::{Figment, Profile};
use rocket::{Build, Config, Rocket};

use crate::auth::oauth::Providers;
use crate::auth::password::{self, Hasher};
use crate::clock::{Clock, Now, SystemClock};
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
        .merge(Toml::file(Env::var_or("ROCKET_CONFIG", "Rocket.toml")).nested())
        .merge(provider_env())
        .merge(Env::prefixed("ROCKET_").ignore(&["PROFILE"]).global())
        .select(Profile::from_env_or("ROCKET_PROFILE", Config::DEFAULT_PROFILE))
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
    let clock = Now(overrides.clock.unwrap_or_else(|| Arc::new(SystemClock)));
    rocket::custom(figment)
        .manage(clock)
        .attach(AdHoc::try_on_ignite("Portal state", init))
        .attach(headers::shield())
        .attach(headers::Defaults::default())
        .mount("/", routes::routes())
        .register("/", catchers::catchers())
}

/// Reads the settings, opens and migrates the store, and prepares the hasher. Any failure
/// stops startup with one clear line.
async fn init(rocket: Rocket<Build>) -> Result<Rocket<Build>, Rocket<Build>> {
    if let Err(e) = config::check_secret_key(rocket.figment()) {
        log::error!("{e}");
        return Err(rocket);
    }
    let settings = match Settings::from_figment(rocket.figment()) {
        Ok(settings) => settings,
        Err(e) => {
            log::error!("{e}");
            return Err(rocket);
        }
    };
    let store = match Store::connect(&settings.databases.portal.url).await {
        Ok(store) => store.with_session_cache(settings.session.cache_ttl),
        Err(e) => {
            log::error!("could not open the database (databases.portal.url): {e}");
            return Err(rocket);
        }
    };
    let hasher = match Hasher::new(settings.hashing.permits(), settings.hashing.queue_len()) {
        Ok(hasher) => hasher,
        Err(e) => {
            log::error!("{e}");
            return Err(rocket);
        }
    };
    let providers = match Providers::from_settings(&settings.oauth) {
        Ok(providers) => providers,
        Err(e) => {
            log::error!("{e}");
            return Err(rocket);
        }
    };
    let debug = cfg!(debug_assertions) && rocket.figment().profile() == Config::DEBUG_PROFILE;
    if debug {
        let now = rocket.state::<Now>().map_or(0, Now::get);
        if let Err(e) = seed_debug_admin(&store, now).await {
            log::error!("could not create the debug admin user: {e}");
            return Err(rocket);
        }
    }
    let throttle = throttle::Throttle::new(settings.throttle);
    Ok(rocket.manage(settings).manage(store).manage(hasher).manage(providers).manage(throttle))
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
