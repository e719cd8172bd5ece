//! The web layer: the only part of the portal that knows Rocket's response side. Pages
//! (templates and what they receive), replies, cookies, flash, CSRF, security headers,
//! request guards, and the mapping of domain errors to pages. (The catchers, being handlers,
//! are in `routes`.)

pub mod admin_pages;
pub mod api;
pub mod client;
pub mod client_pages;
pub mod cookies;
pub mod csrf;
pub mod error;
pub mod factor_pages;
pub mod flash;
pub mod guard;
pub mod headers;
pub mod mail_pages;
pub mod oidc_pages;
pub mod pages;
pub mod params;
pub mod render;
pub mod samples;
pub mod session;
pub mod templates;

use rocket::fairing::AdHoc;

use crate::config::Settings;
use crate::web::pages::Site;

/// Where an operator's stylesheet (`branding.stylesheet`) is served.
pub const BRAND_STYLESHEET: &str = "/static/brand.css";

/// An operator's stylesheet, read at start (managed state; empty when there is none).
pub struct BrandStylesheet(pub Option<String>);

/// The site's branding, the templates, the security headers and the request timer.
pub fn stage() -> AdHoc {
    AdHoc::on_ignite("Web", |rocket| async {
        rocket
            .attach(AdHoc::try_on_ignite("Branding", |rocket| async {
                let Some(settings) = rocket.state::<Settings>() else {
                    return Ok(rocket);
                };
                let branding = &settings.branding;
                let stylesheet = match &branding.stylesheet {
                    Some(path) => match std::fs::read_to_string(path) {
                        Ok(css) => Some(css),
                        Err(e) => {
                            log::error!("branding.stylesheet {}: {e}", path.display());
                            return Err(rocket);
                        }
                    },
                    None => None,
                };
                let mut site = Site::new(&branding.name, stylesheet.is_some().then_some(BRAND_STYLESHEET));
                site.mail = settings.email.is_some();
                let csrf = csrf::SessionKey::new(settings);
                Ok(rocket.manage(site).manage(BrandStylesheet(stylesheet)).manage(csrf))
            }))
            .attach(templates::stage())
            .attach(headers::shield())
            .attach(headers::Defaults::default())
            .attach(crate::metrics::RequestTimer)
    })
}
