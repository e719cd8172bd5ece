//! The second factor's pages: the second step of a sign-in, setting up an authenticator app,
//! the recovery codes (shown once). (The account page's section is the account page's.)

use serde::Serialize;

use crate::auth::factors::totp::QrPath;
use crate::auth::TotpSetup;
use crate::web::pages::Layout;
use crate::web::render::Page;

pub const SECOND_FACTOR: &str = "second_factor.html";
pub const TOTP_SETUP: &str = "totp_setup.html";
pub const RECOVERY_CODES: &str = "recovery_codes.html";

/// The second step: a code (or a passkey).
#[derive(Debug, Default, Serialize)]
pub struct SecondFactorPage<'a> {
    pub error: Option<&'a str>,
    /// Who is signing in.
    pub username: &'a str,
    /// The user has a passkey: offer "Use a passkey".
    pub passkey: bool,
    /// The user has an authenticator app (else only recovery codes or a passkey).
    pub totp: bool,
    /// A signed-in session stepping up for an application that asks for more.
    pub step_up: bool,
    /// Where to go afterwards, for a step-up (the half-done sign-in carries its own).
    pub rd: Option<&'a str>,
    pub next: Option<&'a str>,
}

/// Setting up an authenticator app.
#[derive(Debug, Serialize)]
pub struct TotpSetupPage<'a> {
    pub error: Option<&'a str>,
    /// Base32, for typing in.
    pub secret: &'a str,
    /// `otpauth://totp/…`
    pub uri: &'a str,
    pub qr: Option<&'a QrPath>,
    /// Where the confirming form posts.
    pub action: &'a str,
    /// The policy sent the person here before anything else opens.
    pub required: bool,
}

impl<'a> TotpSetupPage<'a> {
    pub fn new(
        setup: &'a TotpSetup,
        action: &'a str,
        error: Option<&'a str>,
        required: bool,
    ) -> TotpSetupPage<'a> {
        TotpSetupPage {
            error,
            secret: &setup.secret,
            uri: &setup.uri,
            qr: setup.qr.as_ref(),
            action,
            required,
        }
    }
}

/// Ten recovery codes, shown once.
#[derive(Debug, Serialize)]
pub struct RecoveryCodesPage<'a> {
    pub codes: &'a [String],
    /// Where "Continue" goes.
    pub continue_to: &'a str,
}

impl Layout<'_> {
    pub fn second_factor(&self, page: SecondFactorPage<'_>) -> Page {
        self.render(SECOND_FACTOR, page)
    }

    /// Never cached: it shows the secret.
    pub fn totp_setup(&self, page: TotpSetupPage<'_>) -> Page {
        self.render_private(TOTP_SETUP, page)
    }

    /// Never cached: it shows the codes.
    pub fn recovery_codes(&self, codes: &[String], continue_to: &str) -> Page {
        self.render_private(RECOVERY_CODES, RecoveryCodesPage { codes, continue_to })
    }
}
