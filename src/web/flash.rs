//! One-shot messages shown on the next page.
//!
//! Rocket's own `Flash` cookie is `SameSite=Strict`, so a message set while redirecting out
//! of a chain that began on another site (an OAuth callback) would be dropped by browsers.
//! This one is a private `Lax` cookie set through [`Jar`].

use rocket::request::{FromRequest, Outcome, Request};
use rocket::time::Duration;
use serde::{Deserialize, Serialize};

use crate::web::cookies::{CookieName, Jar};

pub const FLASH_COOKIE: CookieName = CookieName::new("portal_flash", "__Host-portal_flash");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Success,
    Info,
    Error,
}

impl Kind {
    /// The name the page's markup uses (`flash-info`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Success => "success",
            Kind::Info => "info",
            Kind::Error => "error",
        }
    }
}

/// A message for the next page; as a request guard it is read once and removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    pub kind: Kind,
    pub message: String,
}

impl Jar<'_> {
    pub fn flash(&self, kind: Kind, message: impl Into<String>) {
        let flash = Flash { kind, message: message.into() };
        if let Ok(value) = serde_json::to_string(&flash) {
            self.set(FLASH_COOKIE, value, Some(Duration::minutes(5)));
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Flash {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let flash = request.local_cache(|| {
            let jar = Jar::of(request);
            let value = jar.get(FLASH_COOKIE)?;
            jar.remove(FLASH_COOKIE);
            serde_json::from_str::<Flash>(&value).ok()
        });
        match flash {
            Some(flash) => Outcome::Success(flash.clone()),
            None => Outcome::Forward(rocket::http::Status::NotFound),
        }
    }
}
