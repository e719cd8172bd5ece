//! The console's applications (OpenID clients): the list with the form that adds one, and the
//! page that shows a new secret once.

use serde::Serialize;

use crate::auth::provider::Client;
use crate::config::{AllowSettings, ConsentMode};
use crate::web::pages::Layout;
use crate::web::render::Page;

pub const ADMIN_CLIENTS: &str = "admin_clients.html";
pub const ADMIN_CLIENT_SECRET: &str = "admin_client_secret.html";

/// One application in the list.
#[derive(Debug, Serialize)]
pub struct ClientRowView {
    pub id: String,
    pub name: String,
    pub public: bool,
    pub configured: bool,
    pub redirect_uris: Vec<String>,
    pub explicit_consent: bool,
    /// "Everyone signed in", "Administrators", or the usernames.
    pub who: String,
    pub second_factor: bool,
    pub signing_alg: &'static str,
}

impl From<&Client> for ClientRowView {
    fn from(c: &Client) -> ClientRowView {
        ClientRowView {
            id: c.id.clone(),
            name: c.name.clone(),
            public: c.public,
            configured: c.configured,
            redirect_uris: c.redirect_uris.clone(),
            explicit_consent: c.consent == ConsentMode::Explicit,
            who: match &c.allow_settings {
                AllowSettings::Named(n) if n == "admins" => "Administrators".into(),
                AllowSettings::Named(_) => "Everyone signed in".into(),
                AllowSettings::Users(names) => names.join(", "),
            },
            second_factor: c.second_factor,
            signing_alg: c.signing_alg.name(),
        }
    }
}

/// The add form as typed (shown again with the error when it is refused).
#[derive(Debug, Default, Serialize)]
pub struct ClientFormView<'a> {
    pub client_id: &'a str,
    pub name: &'a str,
    pub redirect_uris: &'a str,
    pub post_logout_redirect_uris: &'a str,
    pub public: bool,
    pub implicit_consent: bool,
    pub allow: &'a str,
    pub second_factor: bool,
    pub eddsa: bool,
}

#[derive(Debug, Serialize)]
pub struct ClientsView<'a> {
    pub clients: Vec<ClientRowView>,
    pub form: ClientFormView<'a>,
    pub error: Option<&'a str>,
}

/// A secret, shown once.
#[derive(Debug, Serialize)]
pub struct ClientSecretView<'a> {
    pub client_id: &'a str,
    pub name: &'a str,
    pub secret: &'a str,
    /// A new application rather than a new secret.
    pub created: bool,
}

impl Layout<'_> {
    pub fn admin_clients(&self, page: ClientsView<'_>) -> Page {
        self.render(ADMIN_CLIENTS, page)
    }

    /// Never cached: it shows the secret.
    pub fn admin_client_secret(&self, page: ClientSecretView<'_>) -> Page {
        self.render_private(ADMIN_CLIENT_SECRET, page)
    }
}
