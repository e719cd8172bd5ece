//! The authorization endpoint's decisions: who the client is and where it may be sent
//! (checked before anything is redirected), what it asks for, whether the person must sign
//! in (again), reach level 2, or consent, and the single-use code that answers it.

use serde_json::json;
use url::form_urlencoded;

use super::tokens::{has_scope, SCOPES};
use super::{random_token, token_hash, Client, CODE_SECS};
use crate::auth::audit::EventKind;
use crate::auth::{Auth, AuthError, ClientInfo};
use crate::config::ConsentMode;
use crate::store::{GrantRow, SessionRecord, User};

/// Longest `state` and `nonce` accepted: the whole request must fit in a `next` link.
const MAX_STATE_BYTES: usize = 512;
const MAX_NONCE_BYTES: usize = 256;

/// An authorization request's parameters as sent (query or form). Unknown ones are ignored.
#[derive(Debug, Default, Clone, rocket::FromForm)]
pub struct AuthRequest {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub acr_values: Option<String>,
}

/// The person's answer on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

/// What the consent page shows and sends back.
#[derive(Debug, Clone)]
pub struct ConsentPage {
    pub client_name: String,
    pub client_id: String,
    /// Where Allow and Deny lead (registered): the page's forms may go there.
    pub redirect_uri: String,
    /// The scopes asked for (known ones, in the page's order).
    pub scopes: Vec<&'static str>,
    /// The request, to be sent again with the answer.
    pub request: AuthRequest,
}

/// What the authorization endpoint answers.
#[derive(Debug)]
pub enum Authorize {
    /// An error page, never a redirect: the client or its redirect URI is not one the
    /// portal may send anyone to. The words say why.
    Refused(&'static str),
    /// Back to the client (a code, or an error for it to handle).
    Redirect(String),
    /// Sign in (again) first, then this local URL.
    SignIn(String),
    /// A second factor first (stepping the session up), then this local URL.
    StepUp(String),
    /// Ask the person.
    Consent(Box<ConsentPage>),
}

/// A checked request.
struct Checked<'a> {
    client: Client,
    redirect_uri: &'a str,
    state: Option<&'a str>,
    scopes: String,
    prompt: Vec<&'a str>,
    max_age: Option<i64>,
    wants_level_two: bool,
}

impl AuthRequest {
    /// Every parameter by name, as sent (the consent form carries them all back).
    pub fn fields(&self) -> [(&'static str, Option<&str>); 12] {
        [
            ("client_id", self.client_id.as_deref()),
            ("redirect_uri", self.redirect_uri.as_deref()),
            ("response_type", self.response_type.as_deref()),
            ("response_mode", self.response_mode.as_deref()),
            ("scope", self.scope.as_deref()),
            ("state", self.state.as_deref()),
            ("nonce", self.nonce.as_deref()),
            ("code_challenge", self.code_challenge.as_deref()),
            ("code_challenge_method", self.code_challenge_method.as_deref()),
            ("acr_values", self.acr_values.as_deref()),
            ("max_age", self.max_age.as_deref()),
            ("prompt", self.prompt.as_deref()),
        ]
    }

    /// The request again, as a local URL, without what forced a new sign-in (`prompt=login`,
    /// `max_age`): the sign-in it sends the person to satisfies those.
    pub fn again(&self, keep_fresh_demands: bool) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (name, value) in self.fields() {
            match (name, value) {
                ("prompt", _) | (_, None) => {}
                ("max_age", _) if !keep_fresh_demands => {}
                (name, Some(value)) => {
                    out.append_pair(name, value);
                }
            }
        }
        let rest: Vec<&str> = self
            .prompt
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|v| !v.is_empty() && *v != "login")
            .collect();
        if !rest.is_empty() {
            out.append_pair("prompt", &rest.join(" "));
        }
        format!("{}?{}", PATH, out.finish())
    }
}

/// Where the authorization endpoint is mounted.
pub const PATH: &str = "/oidc/authorize";

/// `redirect_uri` with the answer's parameters (and `iss`, RFC 9207) added to its query.
fn back_to(redirect_uri: &str, pairs: &[(&str, &str)], state: Option<&str>, issuer: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    if let Some(state) = state {
        query.append_pair("state", state);
    }
    query.append_pair("iss", issuer);
    let joiner = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{joiner}{}", query.finish())
}

fn error_to(
    checked_uri: &str,
    state: Option<&str>,
    issuer: &str,
    error: &str,
    description: &str,
) -> Authorize {
    Authorize::Redirect(back_to(
        checked_uri,
        &[("error", error), ("error_description", description)],
        state,
        issuer,
    ))
}

impl Auth {
    /// Decides an authorization request for whoever is signed in (`me`). `decision` is the
    /// consent page's answer, when the request comes from it.
    pub async fn oidc_authorize(
        &self,
        request: &AuthRequest,
        me: Option<(&User, &SessionRecord)>,
        decision: Option<Decision>,
        client_info: &ClientInfo,
    ) -> Result<Authorize, AuthError> {
        let checked = match self.check_request(request).await? {
            Ok(checked) => checked,
            Err(answer) => return Ok(answer),
        };
        let issuer = self.issuer.as_str();
        let fail = |error: &str, description: &str| {
            Ok(error_to(checked.redirect_uri, checked.state, issuer, error, description))
        };
        let silent = checked.prompt.contains(&"none");
        let now = self.now();
        let Some((user, session)) = me else {
            return if silent {
                fail("login_required", "nobody is signed in")
            } else {
                Ok(Authorize::SignIn(request.again(false)))
            };
        };
        let too_old = checked.max_age.is_some_and(|max| now - session.created_at > max);
        if checked.prompt.contains(&"login") || too_old {
            return if silent {
                fail("login_required", "a new sign-in is needed")
            } else {
                Ok(Authorize::SignIn(request.again(false)))
            };
        }
        let client = &checked.client;
        if !client.allow.admits(user) {
            log::info!("oidc: user_id={} may not use client {}", user.id, client.id);
            return fail("access_denied", "this account may not use this application");
        }
        if (client.second_factor || checked.wants_level_two) && session.aal < 2 {
            return if silent {
                fail("interaction_required", "a second factor is needed")
            } else {
                Ok(Authorize::StepUp(request.again(true)))
            };
        }
        let must_ask = client.consent == ConsentMode::Explicit
            && (checked.prompt.contains(&"consent")
                || !self.consented(user.id, &client.id, &checked.scopes).await?);
        match decision {
            Some(Decision::Deny) => {
                log::info!("oidc: user_id={} denied client {}", user.id, client.id);
                return fail("access_denied", "the person declined");
            }
            Some(Decision::Allow) if client.consent == ConsentMode::Explicit => {
                self.store.give_consent(user.id, &client.id, &checked.scopes, now).await?;
                let detail = json!({ "client": client.id, "scopes": checked.scopes });
                self.user_did(user.id, EventKind::ConsentGiven, Some(client_info), detail).await;
            }
            Some(Decision::Allow) => {}
            None if must_ask && silent => return fail("consent_required", "the person has not consented"),
            None if must_ask => {
                let scopes = SCOPES.into_iter().filter(|s| has_scope(&checked.scopes, s)).collect();
                return Ok(Authorize::Consent(Box::new(ConsentPage {
                    client_name: client.name.clone(),
                    client_id: client.id.clone(),
                    redirect_uri: checked.redirect_uri.to_owned(),
                    scopes,
                    request: request.clone(),
                })));
            }
            None => {}
        }
        let code = random_token();
        let grant = GrantRow {
            id: random_token(),
            client_id: client.id.clone(),
            user_id: user.id,
            session_id: Some(session.id.clone()),
            offline: has_scope(&checked.scopes, "offline_access"),
            scopes: checked.scopes.clone(),
            nonce: request.nonce.clone(),
            auth_time: session.created_at,
            methods: session.methods.clone(),
            aal: session.aal,
            code_hash: token_hash(&code),
            code_expires_at: now + CODE_SECS,
            code_used_at: None,
            redirect_uri: checked.redirect_uri.to_owned(),
            code_challenge: request.code_challenge.clone(),
            created_at: now,
            revoked_at: None,
        };
        self.store.create_grant(&grant).await?;
        log::info!("oidc: code issued to client {} for user_id={}", client.id, user.id);
        Ok(Authorize::Redirect(back_to(checked.redirect_uri, &[("code", &code)], checked.state, issuer)))
    }

    /// Where a form whose `next` is an authorization request may end up once it is answered:
    /// the registered redirect URI it names, if it names one (for the page's `form-action`,
    /// which Chromium applies to the redirects after a form too).
    pub async fn oidc_redirect_of(&self, next: &str) -> Option<String> {
        let query = next.strip_prefix(PATH)?.strip_prefix('?')?;
        let first = |name: &str| {
            form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
        };
        let (client_id, redirect_uri) = (first("client_id")?, first("redirect_uri")?);
        let client = self.client(&client_id).await.ok()??;
        client.redirects_to(&redirect_uri).then_some(redirect_uri)
    }

    /// Where a sign-in form may end up after its redirects: `rd` (an application behind the
    /// gate, already checked), or the application an authorization request in `next`
    /// returns to.
    pub async fn form_destination(&self, next: Option<&str>, rd: Option<String>) -> Option<String> {
        match (rd, next) {
            (Some(rd), _) => Some(rd),
            (None, Some(next)) => self.oidc_redirect_of(next).await,
            (None, None) => None,
        }
    }

    /// Whether the person already let this client see `scopes`.
    async fn consented(&self, user_id: i64, client_id: &str, scopes: &str) -> Result<bool, AuthError> {
        let Some(given) = self.store.consent(user_id, client_id).await? else { return Ok(false) };
        Ok(scopes.split(' ').all(|s| has_scope(&given, s)))
    }

    /// The request's client and redirect URI first (no redirect until both are known
    /// good), then the rest, whose faults go back to the client.
    async fn check_request<'a>(
        &self,
        r: &'a AuthRequest,
    ) -> Result<Result<Checked<'a>, Authorize>, AuthError> {
        let Some(client) = (match r.client_id.as_deref() {
            Some(id) => self.client(id).await?,
            None => None,
        }) else {
            return Ok(Err(Authorize::Refused(
                "The application that sent you here is not one this portal knows.",
            )));
        };
        let Some(redirect_uri) = r.redirect_uri.as_deref().filter(|uri| client.redirects_to(uri)) else {
            return Ok(Err(Authorize::Refused(
                "The application asked to send you back to an address it has not registered.",
            )));
        };
        let state = r.state.as_deref();
        let issuer = self.issuer.as_str();
        let fail = |error: &str, description: &str| {
            Ok(Err(error_to(redirect_uri, state, issuer, error, description)))
        };
        if state.is_some_and(|s| s.len() > MAX_STATE_BYTES) {
            return fail("invalid_request", "state is too long");
        }
        match r.response_type.as_deref() {
            Some("code") => {}
            None => return fail("invalid_request", "response_type is missing"),
            Some(_) => return fail("unsupported_response_type", "only response_type=code is supported"),
        }
        if r.response_mode.as_deref().is_some_and(|m| m != "query") {
            return fail("invalid_request", "only response_mode=query is supported");
        }
        let asked = r.scope.as_deref().unwrap_or("");
        if !has_scope(asked, "openid") {
            return fail("invalid_scope", "the openid scope is required");
        }
        let scopes = SCOPES.into_iter().filter(|s| has_scope(asked, s)).collect::<Vec<_>>().join(" ");
        match (r.code_challenge.as_deref(), r.code_challenge_method.as_deref()) {
            (None, None) if client.public => {
                return fail("invalid_request", "a public client must use PKCE (code_challenge, S256)")
            }
            (None, None) => {}
            (None, Some(_)) => {
                return fail("invalid_request", "code_challenge_method without code_challenge")
            }
            (Some(_), Some("S256")) => {}
            (Some(_), None | Some("plain")) => {
                return fail("invalid_request", "code_challenge_method must be S256 (plain is refused)")
            }
            (Some(_), Some(_)) => return fail("invalid_request", "code_challenge_method must be S256"),
        }
        if let Some(challenge) = r.code_challenge.as_deref() {
            let ok = challenge.len() == 43
                && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return fail("invalid_request", "code_challenge must be a base64url SHA-256 (43 characters)");
            }
        }
        if r.nonce.as_deref().is_some_and(|n| n.len() > MAX_NONCE_BYTES) {
            return fail("invalid_request", "nonce is too long");
        }
        let prompt: Vec<&str> =
            r.prompt.as_deref().unwrap_or("").split(' ').filter(|p| !p.is_empty()).collect();
        if prompt.iter().any(|p| !matches!(*p, "none" | "login" | "consent" | "select_account")) {
            return fail("invalid_request", "prompt has an unknown value");
        }
        if prompt.contains(&"none") && prompt.len() > 1 {
            return fail("invalid_request", "prompt=none cannot be combined with other values");
        }
        let max_age = match r.max_age.as_deref() {
            None => None,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if n >= 0 => Some(n),
                _ => return fail("invalid_request", "max_age must be a number of seconds"),
            },
        };
        let acr: Vec<&str> =
            r.acr_values.as_deref().unwrap_or("").split(' ').filter(|a| !a.is_empty()).collect();
        let wants_level_two = acr.contains(&"aal2") && !acr.contains(&"aal1");
        Ok(Ok(Checked { client, redirect_uri, state, scopes, prompt, max_age, wants_level_two }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_again_drops_prompt_login_and_keeps_the_rest() {
        let request = AuthRequest {
            client_id: Some("app".into()),
            redirect_uri: Some("https://app.example.com/cb?x=1".into()),
            response_type: Some("code".into()),
            scope: Some("openid email".into()),
            state: Some("s&t".into()),
            prompt: Some("login consent".into()),
            max_age: Some("0".into()),
            ..AuthRequest::default()
        };
        let again = request.again(false);
        assert!(again.starts_with(
            "/oidc/authorize?client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fx%3D1"
        ));
        assert!(again.contains("state=s%26t"));
        assert!(again.ends_with("&prompt=consent"), "{again}");
        assert!(!again.contains("max_age"));
        assert!(request.again(true).contains("max_age=0"));
    }

    #[test]
    fn answers_keep_the_redirect_uris_own_query() {
        assert_eq!(
            back_to("https://a.example/cb?x=1", &[("code", "c")], Some("st"), "https://p.example"),
            "https://a.example/cb?x=1&code=c&state=st&iss=https%3A%2F%2Fp.example"
        );
    }
}
