//! The OpenID provider's pages: consent ("Allow X to see …"), and the sign-out confirmation
//! of RP-initiated logout. (The account page's "Connected applications" is the account
//! page's.)

use serde::Serialize;

use crate::auth::provider::tokens::scope_words;
use crate::auth::provider::{AuthRequest, ConsentPage};
use crate::web::pages::Layout;
use crate::web::render::Page;

pub const OIDC_CONSENT: &str = "oidc_consent.html";
pub const OIDC_LOGOUT: &str = "oidc_logout.html";

/// One hidden field of the request carried through the consent form.
#[derive(Debug, Serialize)]
pub struct Hidden<'a> {
    pub name: &'static str,
    pub value: &'a str,
}

#[derive(Debug, Serialize)]
pub struct ConsentView<'a> {
    pub client_name: &'a str,
    pub client_id: &'a str,
    pub scopes: Vec<&'static str>,
    pub hidden: Vec<Hidden<'a>>,
}

/// The request's fields, as the consent form sends them back.
pub fn hidden_fields(request: &AuthRequest) -> Vec<Hidden<'_>> {
    request
        .fields()
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| Hidden { name, value }))
        .collect()
}

impl<'a> ConsentView<'a> {
    pub fn new(page: &'a ConsentPage) -> ConsentView<'a> {
        ConsentView {
            client_name: &page.client_name,
            client_id: &page.client_id,
            scopes: page.scopes.iter().map(|s| scope_words(s)).filter(|w| !w.is_empty()).collect(),
            hidden: hidden_fields(&page.request),
        }
    }
}

/// "Sign out of the portal?" for a logout request without a hint naming this session.
#[derive(Debug, Default, Serialize)]
pub struct LogoutConfirmView<'a> {
    pub client_name: Option<&'a str>,
    pub hidden: Vec<Hidden<'a>>,
}

impl Layout<'_> {
    /// Never cached: it carries the request's state.
    pub fn oidc_consent(&self, page: ConsentView<'_>) -> Page {
        self.render_private(OIDC_CONSENT, page)
    }

    pub fn oidc_logout(&self, page: LogoutConfirmView<'_>) -> Page {
        self.render_private(OIDC_LOGOUT, page)
    }
}
