//! Any OpenID Connect provider (Google is one, as a preset): the authorization code flow with
//! PKCE S256, `state` and `nonce`; the mix-up checks (RFC 9207 `iss`); the ID token checked
//! against the provider's keys (`iss`, `aud`, `azp`, `exp`, `nonce`); claims the ID token
//! lacks read from userinfo; the policy (verified email, domains, claim rules); and the
//! back-channel logout token.

use std::sync::Arc;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, StandardRevocableToken, StandardTokenResponse,
    TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use super::discovery::{Discovered, Discovery};
use super::http::ProviderHttp;
use super::{parse_url, username_hint, Admission, Flow, Identity, OAuthError, Slug, Started};
use crate::config::{AuthMethod, ClaimRule, EmailVerified, Secret};

/// The token response's `id_token`, beside OAuth's fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenField {
    #[serde(default)]
    id_token: Option<String>,
}
impl oauth2::ExtraTokenFields for IdTokenField {}

type OidcTokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;
type TokenClient = oauth2::Client<
    BasicErrorResponse,
    OidcTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The back-channel logout event's name (OpenID Connect Back-Channel Logout 1.0).
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// A logout token without `exp` is accepted this long after its `iat`.
const LOGOUT_TOKEN_SECS: i64 = 5 * 60;

/// Who to admit, beyond a valid ID token.
pub struct Policy {
    pub email_verified: EmailVerified,
    /// Lower-case; an email domain, or for Google the Workspace domain (`hd`).
    pub allowed_domains: Vec<String>,
    /// Google's `allowed_domains` mean the `hd` claim.
    pub hosted_domain: bool,
    pub claim_rules: Vec<ClaimRule>,
}

/// Settings for one OpenID provider, checked.
pub struct OidcConfig<'a> {
    pub slug: Slug,
    pub issuer: &'a str,
    pub client_id: String,
    pub secret: Secret,
    pub redirect: String,
    pub scopes: Vec<String>,
    pub auth_method: AuthMethod,
    pub policy: Policy,
}

pub struct Oidc {
    slug: Slug,
    client_id: String,
    client_secret: ClientSecret,
    redirect: RedirectUrl,
    scopes: Vec<String>,
    auth_type: AuthType,
    policy: Policy,
    http: Arc<ProviderHttp>,
    pub discovery: Discovery,
}

/// What a back-channel logout token asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    pub sub: Option<String>,
    pub sid: Option<String>,
}

impl Oidc {
    pub fn new(config: OidcConfig<'_>, http: Arc<ProviderHttp>) -> Result<Oidc, String> {
        let slug = config.slug;
        parse_url(&format!("oauth.{slug}.redirect_uri"), &config.redirect)?;
        parse_url(&format!("oauth.{slug}.issuer"), config.issuer)?;
        for rule in &config.policy.claim_rules {
            if rule.claim.is_empty() || rule.contains.is_some() == rule.equals.is_some() {
                return Err(format!(
                    "oauth.{slug}.claim_rules: each rule needs a claim and one of contains or equals"
                ));
            }
        }
        let mut scopes = config.scopes;
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".to_owned());
        }
        Ok(Oidc {
            slug,
            client_id: config.client_id,
            client_secret: ClientSecret::new(config.secret.expose().to_owned()),
            redirect: RedirectUrl::new(config.redirect)
                .map_err(|e| format!("oauth.{slug}.redirect_uri: {e}"))?,
            scopes,
            auth_type: match config.auth_method {
                AuthMethod::ClientSecretBasic => AuthType::BasicAuth,
                AuthMethod::ClientSecretPost => AuthType::RequestBody,
            },
            policy: config.policy,
            discovery: Discovery::new(slug.as_str(), config.issuer, Arc::clone(&http)),
            http,
        })
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The portal's home page, as the redirect URI's origin names it.
    pub fn home(&self) -> String {
        format!("{}/", super::origin_of(self.redirect.url()))
    }

    /// The issuer's origin (known before discovery, and usually the authorization
    /// endpoint's), and the authorization endpoint's once discovered.
    pub fn authorize_origins(&self) -> Vec<String> {
        let mut origins: Vec<String> = self.discovery.issuer_origin().into_iter().collect();
        origins.extend(self.discovery.cached().map(|d| super::origin_of(&d.authorize)));
        origins
    }

    pub async fn start(&self, now: i64) -> Result<Started, OAuthError> {
        let discovered = self.discovery.get(now).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = CsrfToken::new_random();
        let nonce = CsrfToken::new_random();
        let mut url = discovered.authorize.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", self.redirect.as_str())
            .append_pair("scope", &self.scopes.join(" "))
            .append_pair("state", state.secret())
            .append_pair("nonce", nonce.secret())
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256");
        Ok(Started {
            authorize_url: url.to_string(),
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
            nonce: Some(nonce.secret().clone()),
        })
    }

    /// Checks the callback's `iss` (RFC 9207): when present it must be this provider's; when
    /// the provider says it always sends one, it must be there.
    pub fn check_callback_issuer(&self, iss: Option<&str>) -> Result<(), OAuthError> {
        let Some(discovered) = self.discovery.cached() else {
            return Err(OAuthError::Discovery("the provider has not been discovered".into()));
        };
        match iss {
            Some(iss) if !discovered.issuer.names(iss) => {
                Err(OAuthError::MixUp("the callback's iss is another issuer's".into()))
            }
            None if discovered.metadata.authorization_response_iss_parameter_supported => {
                Err(OAuthError::MixUp("the provider sends iss, and the callback has none".into()))
            }
            _ => Ok(()),
        }
    }

    pub async fn finish(
        &self,
        code: &str,
        flow: &Flow,
        now: i64,
    ) -> Result<(Identity, Admission), OAuthError> {
        let discovered = self.discovery.get(now).await?;
        let token = self
            .token_client(&discovered)
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
            .request_async(&*self.http)
            .await
            .map_err(OAuthError::from_token_exchange)?;
        let id_token = token
            .extra_fields()
            .id_token
            .as_deref()
            .ok_or_else(|| OAuthError::IdToken("no id_token in the answer".into()))?;
        let mut claims = self.id_token_claims(id_token, flow.nonce.as_deref(), now).await?;
        let sub = text(&claims, "sub").ok_or_else(|| OAuthError::IdToken("no sub claim".into()))?;
        if self.needs_userinfo(&claims) {
            self.add_userinfo(&discovered, token.access_token().secret(), &sub, &mut claims).await?;
        }
        let identity = self.identity(&claims, sub)?;
        Ok((identity, self.admit(&claims)))
    }

    fn token_client(&self, discovered: &Discovered) -> TokenClient {
        oauth2::Client::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(self.client_secret.clone())
            .set_token_uri(TokenUrl::from_url(discovered.token.clone()))
            .set_redirect_uri(self.redirect.clone())
            .set_auth_type(self.auth_type.clone())
    }

    /// The ID token's claims once its signature, `iss`, `aud`, `azp`, `exp` and `nonce`
    /// check out.
    async fn id_token_claims(
        &self,
        jwt: &str,
        nonce: Option<&str>,
        now: i64,
    ) -> Result<Map<String, Value>, OAuthError> {
        let claims: Map<String, Value> = self.discovery.verify(jwt, &self.client_id, now).await?;
        self.check_issuer(&claims)?;
        // Several audiences: the token must say it was issued to this client.
        let several = claims.get("aud").and_then(Value::as_array).is_some_and(|aud| aud.len() > 1);
        match text(&claims, "azp") {
            Some(azp) if azp != self.client_id => {
                return Err(OAuthError::IdToken("issued to another party (azp)".into()))
            }
            None if several => return Err(OAuthError::IdToken("several audiences and no azp".into())),
            _ => {}
        }
        let expected = nonce.unwrap_or_default();
        let matches = text(&claims, "nonce")
            .is_some_and(|n| !expected.is_empty() && bool::from(n.as_bytes().ct_eq(expected.as_bytes())));
        if !matches {
            return Err(OAuthError::IdToken("the nonce does not match the flow".into()));
        }
        Ok(claims)
    }

    fn check_issuer(&self, claims: &Map<String, Value>) -> Result<(), OAuthError> {
        let Some(discovered) = self.discovery.cached() else {
            return Err(OAuthError::Discovery("the provider has not been discovered".into()));
        };
        let iss = text(claims, "iss").unwrap_or_default();
        if !discovered.issuer.accepts(&iss, text(claims, "tid").as_deref()) {
            return Err(OAuthError::IdToken("issued by another issuer (iss)".into()));
        }
        Ok(())
    }

    /// Whether a claim the portal uses is missing from the ID token.
    fn needs_userinfo(&self, claims: &Map<String, Value>) -> bool {
        let mut wanted = vec!["email", "name", "preferred_username"];
        if self.policy.email_verified == EmailVerified::Required {
            wanted.push("email_verified");
        }
        wanted.iter().any(|c| !claims.contains_key(*c))
            || self.policy.claim_rules.iter().any(|rule| lookup(claims, &rule.claim).is_none())
    }

    /// Adds the claims the ID token lacks from userinfo (OpenID Connect Core §5.3: only when
    /// its `sub` is the ID token's). A provider without userinfo, or whose userinfo fails,
    /// leaves them missing: the policy then decides.
    async fn add_userinfo(
        &self,
        discovered: &Discovered,
        access_token: &str,
        sub: &str,
        claims: &mut Map<String, Value>,
    ) -> Result<(), OAuthError> {
        let Some(userinfo) = &discovered.userinfo else { return Ok(()) };
        let body = match self.http.get(userinfo.as_str(), Some(access_token)).await {
            Ok(body) => body,
            Err(e) => {
                log::warn!("{}: userinfo failed ({e}); going on with the ID token's claims", self.slug);
                return Ok(());
            }
        };
        let Ok(info) = serde_json::from_slice::<Map<String, Value>>(&body) else {
            log::warn!("{}: userinfo is not a JSON object (a signed one is not supported)", self.slug);
            return Ok(());
        };
        if text(&info, "sub").as_deref() != Some(sub) {
            return Err(OAuthError::Api("userinfo is about another subject".into()));
        }
        for (name, value) in info {
            claims.entry(name).or_insert(value);
        }
        Ok(())
    }

    fn identity(&self, claims: &Map<String, Value>, sub: String) -> Result<Identity, OAuthError> {
        let email = text(claims, "email");
        let verified = match claims.get("email_verified") {
            Some(Value::Bool(b)) => *b,
            // Some providers send it as a string.
            Some(Value::String(s)) => s == "true",
            _ => false,
        };
        let email = match (email, self.policy.email_verified) {
            (Some(email), EmailVerified::Trusted) => Some(email),
            (Some(email), EmailVerified::Required) if verified => Some(email),
            _ if self.policy.email_verified == EmailVerified::Required => {
                return Err(OAuthError::NoVerifiedEmail)
            }
            _ => None,
        };
        let hint = text(claims, "preferred_username")
            .or_else(|| email.as_deref().and_then(|e| e.split('@').next()).map(str::to_owned))
            .unwrap_or_else(|| "user".to_owned());
        Ok(Identity {
            provider: self.slug,
            subject: sub,
            username_hint: username_hint(hint.split('@').next().unwrap_or("user")),
            email,
            name: text(claims, "name"),
            sid: text(claims, "sid"),
        })
    }

    /// The policy: allowed domains, then every claim rule.
    fn admit(&self, claims: &Map<String, Value>) -> Admission {
        if !self.policy.allowed_domains.is_empty() {
            let domain = if self.policy.hosted_domain {
                text(claims, "hd")
            } else {
                text(claims, "email").and_then(|e| e.rsplit_once('@').map(|(_, d)| d.to_owned()))
            };
            match domain.map(|d| d.to_lowercase()) {
                Some(domain) if self.policy.allowed_domains.contains(&domain) => {}
                Some(domain) if self.policy.hosted_domain => {
                    return Admission::Refused(format!("Google Workspace domain {domain} is not allowed"))
                }
                Some(domain) => return Admission::Refused(format!("email domain {domain} is not allowed")),
                None if self.policy.hosted_domain => {
                    return Admission::Refused("not a Google Workspace account".into())
                }
                None => return Admission::Refused("no email address to check the domain of".into()),
            }
        }
        for rule in &self.policy.claim_rules {
            if !rule_holds(rule, lookup(claims, &rule.claim)) {
                return Admission::Refused(format!("the claim rule on {} does not hold", rule.claim));
            }
        }
        Admission::Allowed
    }

    /// Checks a back-channel logout token (Back-Channel Logout 1.0 §2.6): signed by the
    /// provider, for this client, from its issuer, recent, with the logout event, a `sub` or
    /// a `sid`, and no `nonce` (so an ID token cannot pass for one).
    pub async fn logout_token(&self, jwt: &str, now: i64) -> Result<LogoutRequest, OAuthError> {
        let bad = |why: &str| OAuthError::IdToken(why.to_owned());
        let claims: Map<String, Value> = self.discovery.verify(jwt, &self.client_id, now).await?;
        self.check_issuer(&claims)?;
        let iat = claims.get("iat").and_then(Value::as_i64).ok_or_else(|| bad("no iat claim"))?;
        if !claims.contains_key("exp") && (now - iat > LOGOUT_TOKEN_SECS || iat - now > LOGOUT_TOKEN_SECS) {
            return Err(bad("too old (iat), and no exp"));
        }
        let event = claims.get("events").and_then(Value::as_object).and_then(|e| e.get(BACKCHANNEL_EVENT));
        if !event.is_some_and(Value::is_object) {
            return Err(bad("not a logout token (no back-channel logout event)"));
        }
        if claims.contains_key("nonce") {
            return Err(bad("a logout token must not carry a nonce"));
        }
        let request = LogoutRequest { sub: text(&claims, "sub"), sid: text(&claims, "sid") };
        if request.sub.is_none() && request.sid.is_none() {
            return Err(bad("neither sub nor sid"));
        }
        Ok(request)
    }
}

/// A claim as a string (numbers too: some providers' subjects are numbers).
fn text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A claim by dotted path: `groups`, `realm_access.roles`.
fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

fn rule_holds(rule: &ClaimRule, value: Option<&Value>) -> bool {
    let Some(value) = value else { return false };
    let as_text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
        _ => None,
    };
    if let Some(wanted) = &rule.contains {
        return match value {
            Value::Array(items) => items.iter().filter_map(as_text).any(|item| &item == wanted),
            other => as_text(other).is_some_and(|s| &s == wanted),
        };
    }
    if let Some(wanted) = &rule.equals {
        return as_text(value).is_some_and(|s| &s == wanted);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn rule(claim: &str, contains: Option<&str>, equals: Option<&str>) -> ClaimRule {
        ClaimRule { claim: claim.into(), contains: contains.map(Into::into), equals: equals.map(Into::into) }
    }

    #[test]
    fn claim_rules_read_lists_strings_and_dotted_paths() {
        let c = claims(json!({
            "groups": ["staff", "ops"], "hd": "example.com", "admin": true,
            "realm_access": {"roles": ["portal-user"]},
        }));
        assert!(rule_holds(&rule("groups", Some("staff"), None), lookup(&c, "groups")));
        assert!(!rule_holds(&rule("groups", Some("sta"), None), lookup(&c, "groups")));
        assert!(rule_holds(&rule("hd", None, Some("example.com")), lookup(&c, "hd")));
        assert!(rule_holds(&rule("admin", None, Some("true")), lookup(&c, "admin")));
        let roles = lookup(&c, "realm_access.roles");
        assert!(rule_holds(&rule("realm_access.roles", Some("portal-user"), None), roles));
        assert!(!rule_holds(&rule("missing", Some("x"), None), lookup(&c, "missing")));
        assert!(lookup(&c, "groups.deeper").is_none());
    }

    #[test]
    fn numeric_subjects_read_as_text() {
        assert_eq!(text(&claims(json!({"sub": 12345})), "sub").as_deref(), Some("12345"));
        assert_eq!(text(&claims(json!({"sub": ["x"]})), "sub"), None);
    }
}
