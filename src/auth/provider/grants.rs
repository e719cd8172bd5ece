//! What a grant issues and how it ends: the token endpoint (codes and refresh tokens, each
//! used once), userinfo, revocation (RFC 7009), introspection (RFC 7662) and RP-initiated
//! logout. Errors are RFC 6749 §5.2's.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::clients::SecretCheck;
use super::tokens::{self, has_scope, AccessToken, IdToken, ACCESS_TOKEN_TYP, ID_TOKEN_TYP};
use super::{random_token, token_hash, Client};
use crate::auth::assertion::KeyError;
use crate::auth::audit::EventKind;
use crate::auth::{Auth, AuthError, ClientInfo};
use crate::store::{CodeTaken, GrantRow, Rotation, SessionRecord, User};

/// Longest code, token or verifier read.
const MAX_TOKEN_BYTES: usize = 4096;

/// The token endpoint's form (RFC 6749 §4.1.3, §6).
#[derive(Debug, Default, rocket::FromForm)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Revocation and introspection.
    pub token: Option<String>,
    pub token_type_hint: Option<String>,
}

/// The client's credentials as presented: `client_secret_basic` (the `Authorization`
/// header, already decoded), or the form's `client_id`/`client_secret`.
#[derive(Debug, Default)]
pub struct ClientAuth {
    pub basic: Option<(String, String)>,
}

/// RFC 6749 §5.2's errors. `InvalidClient` is a 401 with `WWW-Authenticate`.
#[derive(Debug)]
pub enum TokenError {
    InvalidRequest(&'static str),
    InvalidClient,
    InvalidGrant(&'static str),
    UnauthorizedClient(&'static str),
    UnsupportedGrantType,
    InvalidScope,
    Failed(AuthError),
}

impl From<AuthError> for TokenError {
    fn from(e: AuthError) -> TokenError {
        TokenError::Failed(e)
    }
}

impl From<sqlx::Error> for TokenError {
    fn from(e: sqlx::Error) -> TokenError {
        TokenError::Failed(e.into())
    }
}

impl From<KeyError> for TokenError {
    fn from(e: KeyError) -> TokenError {
        TokenError::Failed(key_error(e))
    }
}

fn key_error(e: KeyError) -> AuthError {
    match e {
        KeyError::Store(e) => e.into(),
        KeyError::Bad(why) => AuthError::Internal(why),
    }
}

impl TokenError {
    /// The `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::InvalidRequest(_) => "invalid_request",
            TokenError::InvalidClient => "invalid_client",
            TokenError::InvalidGrant(_) => "invalid_grant",
            TokenError::UnauthorizedClient(_) => "unauthorized_client",
            TokenError::UnsupportedGrantType => "unsupported_grant_type",
            TokenError::InvalidScope => "invalid_scope",
            TokenError::Failed(_) => "server_error",
        }
    }

    /// The `error_description`: never a token, a code or a secret.
    pub fn description(&self) -> &'static str {
        match self {
            TokenError::InvalidRequest(why)
            | TokenError::InvalidGrant(why)
            | TokenError::UnauthorizedClient(why) => why,
            TokenError::InvalidClient => "client authentication failed",
            TokenError::UnsupportedGrantType => "grant_type must be authorization_code or refresh_token",
            TokenError::InvalidScope => "the scope asked for is wider than the grant",
            TokenError::Failed(_) => "the request could not be completed",
        }
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// An application a person let sign them in.
#[derive(Debug, Clone)]
pub struct ConnectedApp {
    pub client_id: String,
    pub name: String,
    /// Space-separated.
    pub scopes: String,
    pub granted_at: i64,
}

/// What introspection says (RFC 7662 §2.2).
pub type Introspection = Map<String, Value>;

/// What RP-initiated logout does.
#[derive(Debug)]
pub enum EndSession {
    /// An error page: the hint or the address to return to is not acceptable.
    Refused(&'static str),
    /// Ask the person first (no hint for this session): the page, then this request again,
    /// then `back` (where the page's form may lead).
    Confirm { client_name: Option<String>, back: Option<String> },
    /// Signed out (or nobody was); go here (the client's registered address, or the
    /// portal's own "signed out" page when `None`).
    Done(Option<String>),
}

/// The end-session request's parameters.
#[derive(Debug, Default, Clone, rocket::FromForm)]
pub struct EndSessionRequest {
    pub id_token_hint: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub client_id: Option<String>,
}

/// RFC 7636: BASE64URL(SHA256(verifier)) == challenge; the verifier 43 to 128 unreserved
/// characters.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use sha2::Digest as _;
    use subtle::ConstantTimeEq as _;
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    well_formed && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

impl Auth {
    /// The client a token-endpoint request comes from: one method only (RFC 6749 §2.3).
    pub async fn authenticate_client(
        &self,
        form: &TokenRequest,
        auth: &ClientAuth,
    ) -> Result<Client, TokenError> {
        let (id, secret) = match (&auth.basic, &form.client_secret) {
            (Some(_), Some(_)) => {
                return Err(TokenError::InvalidRequest("use one client authentication method"))
            }
            (Some((id, secret)), None) => {
                if form.client_id.as_deref().is_some_and(|form_id| form_id != id) {
                    return Err(TokenError::InvalidRequest(
                        "client_id differs from the authenticated client",
                    ));
                }
                (id.as_str(), Some(secret.as_str()))
            }
            (None, secret) => match &form.client_id {
                Some(id) => (id.as_str(), secret.as_deref()),
                None => return Err(TokenError::InvalidClient),
            },
        };
        let Some(client) = self.client(id).await? else {
            log::info!("oidc: token request from an unknown client");
            return Err(TokenError::InvalidClient);
        };
        match (&client.secret, secret) {
            (SecretCheck::None, None) => Ok(client),
            (SecretCheck::None, Some(_)) | (_, None) => {
                log::info!("oidc: client {} did not authenticate as it must", client.id);
                Err(TokenError::InvalidClient)
            }
            (_, Some(secret)) => {
                if secret.len() > MAX_TOKEN_BYTES
                    || !self.oidc.secrets.check(&client, secret, &self.hasher).await
                {
                    log::warn!("oidc: client {} presented a wrong secret", client.id);
                    return Err(TokenError::InvalidClient);
                }
                Ok(client)
            }
        }
    }

    /// The token endpoint: a code or a refresh token for tokens.
    pub async fn token(
        &self,
        form: &TokenRequest,
        auth: &ClientAuth,
        client_info: &ClientInfo,
    ) -> Result<TokenResponse, TokenError> {
        let client = self.authenticate_client(form, auth).await?;
        match form.grant_type.as_deref() {
            Some("authorization_code") => self.exchange_code(&client, form, client_info).await,
            Some("refresh_token") => self.refresh(&client, form, client_info).await,
            None => Err(TokenError::InvalidRequest("grant_type is missing")),
            Some(_) => Err(TokenError::UnsupportedGrantType),
        }
    }

    async fn exchange_code(
        &self,
        client: &Client,
        form: &TokenRequest,
        client_info: &ClientInfo,
    ) -> Result<TokenResponse, TokenError> {
        let code = form.code.as_deref().ok_or(TokenError::InvalidRequest("code is missing"))?;
        if code.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::InvalidGrant("the code is not valid"));
        }
        let now = self.now();
        let Some(grant) = self.store.grant_by_code(&token_hash(code)).await? else {
            return Err(TokenError::InvalidGrant("the code is not valid"));
        };
        if grant.client_id != client.id {
            log::warn!("oidc: client {} presented a code issued to another client", client.id);
            return Err(TokenError::InvalidGrant("the code is not valid"));
        }
        if grant.code_used_at.is_some() {
            return Err(self.code_replayed(&grant, client_info, now).await);
        }
        if grant.code_expires_at < now || grant.revoked_at.is_some() {
            return Err(TokenError::InvalidGrant("the code has expired"));
        }
        if form.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
            return Err(TokenError::InvalidGrant("redirect_uri differs from the authorization request's"));
        }
        match (grant.code_challenge.as_deref(), form.code_verifier.as_deref()) {
            (Some(challenge), Some(verifier)) if pkce_matches(verifier, challenge) => {}
            (Some(_), Some(_)) => return Err(TokenError::InvalidGrant("code_verifier does not match")),
            (Some(_), None) => return Err(TokenError::InvalidGrant("code_verifier is missing")),
            (None, Some(_)) => {
                return Err(TokenError::InvalidGrant(
                    "code_verifier sent for a request without code_challenge",
                ))
            }
            (None, None) => {}
        }
        let Some(user) = self.grant_user(&grant, now).await? else {
            return Err(TokenError::InvalidGrant("the sign-in behind the code has ended"));
        };
        let refresh = grant.offline.then(random_token);
        let refresh_expires = now + self.oidc.settings.refresh_token_secs;
        let stored = refresh.as_deref().map(|r| (token_hash(r), refresh_expires));
        match self.store.take_code(&grant.id, stored.as_ref().map(|(h, e)| (h.as_str(), *e)), now).await? {
            CodeTaken::Taken => {}
            CodeTaken::Spent => return Err(self.code_replayed(&grant, client_info, now).await),
        }
        let access_token = self.access_token(client, &grant, &user, &grant.scopes, now).await?;
        let id_token = self.id_token(client, &grant, &user, now).await?;
        let detail =
            json!({ "client": client.id, "scopes": grant.scopes, "refresh_token": refresh.is_some() });
        self.user_did(user.id, EventKind::TokenIssued, Some(client_info), detail).await;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.oidc.settings.access_token_secs,
            scope: grant.scopes.clone(),
            id_token: Some(id_token),
            refresh_token: refresh,
        })
    }

    /// A code presented twice: what it issued is revoked (RFC 6749 §4.1.2).
    async fn code_replayed(&self, grant: &GrantRow, client_info: &ClientInfo, now: i64) -> TokenError {
        match self.store.revoke_grant(&grant.id, now).await {
            Ok(_) => {
                log::warn!("oidc: a code of client {} was used twice; its grant is revoked", grant.client_id);
                let detail = json!({ "client": grant.client_id, "token": "code" });
                self.user_did(grant.user_id, EventKind::TokenReplayed, Some(client_info), detail).await;
                TokenError::InvalidGrant("the code was already used")
            }
            Err(e) => TokenError::from(e),
        }
    }

    async fn refresh(
        &self,
        client: &Client,
        form: &TokenRequest,
        client_info: &ClientInfo,
    ) -> Result<TokenResponse, TokenError> {
        let presented =
            form.refresh_token.as_deref().ok_or(TokenError::InvalidRequest("refresh_token is missing"))?;
        if presented.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::InvalidGrant("the refresh token is not valid"));
        }
        let now = self.now();
        let next = random_token();
        let next_stored = (token_hash(&next), now + self.oidc.settings.refresh_token_secs);
        let rotation = self
            .store
            .rotate_refresh(&token_hash(presented), &client.id, (&next_stored.0, next_stored.1), now)
            .await?;
        let grant = match rotation {
            Rotation::Rotated(grant) => grant,
            Rotation::Replayed(grant) => {
                log::warn!(
                    "oidc: a refresh token of client {} was used twice; its family is revoked",
                    client.id
                );
                let detail = json!({ "client": client.id, "token": "refresh_token" });
                self.user_did(grant.user_id, EventKind::TokenReplayed, Some(client_info), detail).await;
                return Err(TokenError::InvalidGrant("the refresh token was already used"));
            }
            Rotation::Unknown => return Err(TokenError::InvalidGrant("the refresh token is not valid")),
        };
        let Some(user) = self.grant_user(&grant, now).await? else {
            return Err(TokenError::InvalidGrant("the refresh token is no longer valid"));
        };
        let scopes = match form.scope.as_deref() {
            None => grant.scopes.clone(),
            Some(asked) if asked.split(' ').all(|s| has_scope(&grant.scopes, s)) => asked.to_owned(),
            Some(_) => return Err(TokenError::InvalidScope),
        };
        // Only the access token is signed: a refresh answers without an ID token (Core §12.2).
        let access_token = self.access_token(client, &grant, &user, &scopes, now).await?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.oidc.settings.access_token_secs,
            scope: scopes,
            id_token: None,
            refresh_token: Some(next),
        })
    }

    async fn access_token(
        &self,
        client: &Client,
        grant: &GrantRow,
        user: &User,
        scopes: &str,
        now: i64,
    ) -> Result<String, TokenError> {
        let claims = AccessToken {
            iss: self.issuer.clone(),
            sub: user.id.to_string(),
            aud: client.id.clone(),
            client_id: client.id.clone(),
            exp: now + self.oidc.settings.access_token_secs,
            iat: now,
            jti: random_token(),
            scope: scopes.to_owned(),
            auth_time: grant.auth_time,
            acr: tokens::acr(grant.aal),
            grant: grant.id.clone(),
        };
        Ok(self.signer.sign_as(client.signing_alg, ACCESS_TOKEN_TYP, &claims, now).await?)
    }

    async fn id_token(
        &self,
        client: &Client,
        grant: &GrantRow,
        user: &User,
        now: i64,
    ) -> Result<String, TokenError> {
        let claims = IdToken {
            iss: self.issuer.clone(),
            sub: user.id.to_string(),
            aud: client.id.clone(),
            azp: client.id.clone(),
            exp: now + self.oidc.settings.id_token_secs,
            iat: now,
            auth_time: grant.auth_time,
            nonce: grant.nonce.clone(),
            amr: tokens::amr(grant),
            acr: tokens::acr(grant.aal),
            person: tokens::person_claims(user, &grant.scopes),
        };
        Ok(self.signer.sign_as(client.signing_alg, ID_TOKEN_TYP, &claims, now).await?)
    }

    /// An access token this portal signed, whose grant is still live: its claims and user.
    pub async fn bearer(&self, token: &str) -> Result<Option<(Arc<AccessToken>, User)>, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Ok(None);
        }
        let now = self.now();
        let claims = match self.oidc.verified.get(token, now) {
            Some(claims) => claims,
            None => {
                let checked: Option<AccessToken> = self
                    .signer
                    .verify(token, ACCESS_TOKEN_TYP, &self.issuer, true, now)
                    .await
                    .map_err(key_error)?;
                let Some(checked) = checked else { return Ok(None) };
                let checked = Arc::new(checked);
                self.oidc.verified.put(token, Arc::clone(&checked), now);
                checked
            }
        };
        let Some((grant, user)) = self.store.grant_with_user(&claims.grant, now).await? else {
            return Ok(None);
        };
        if grant.client_id != claims.client_id || grant.user_id.to_string() != claims.sub {
            return Ok(None);
        }
        Ok(self.live_grant_user(&grant, user, now).await?.map(|user| (claims, user)))
    }

    /// userinfo: the claims the token's scopes release, and `sub`.
    pub async fn userinfo(&self, token: &str) -> Result<Option<Map<String, Value>>, AuthError> {
        let Some((claims, user)) = self.bearer(token).await? else { return Ok(None) };
        let mut out = Map::new();
        out.insert("sub".into(), Value::from(user.id.to_string()));
        out.extend(tokens::person_claims(&user, &claims.scope));
        Ok(Some(out))
    }

    /// Revocation (RFC 7009): a refresh or access token of this client ends its grant.
    /// Unknown tokens are not an error.
    pub async fn revoke_token(&self, form: &TokenRequest, auth: &ClientAuth) -> Result<(), TokenError> {
        let client = self.authenticate_client(form, auth).await?;
        let token = form.token.as_deref().ok_or(TokenError::InvalidRequest("token is missing"))?;
        if token.len() > MAX_TOKEN_BYTES {
            return Ok(());
        }
        let now = self.now();
        let grant_id = match self.store.grant_by_refresh(&token_hash(token)).await? {
            Some((grant, _, _)) => Some((grant.id, grant.client_id)),
            None => {
                let claims: Option<AccessToken> =
                    self.signer.verify(token, ACCESS_TOKEN_TYP, &self.issuer, false, now).await?;
                claims.map(|c| (c.grant, c.client_id))
            }
        };
        if let Some((id, owner)) = grant_id.filter(|(_, owner)| *owner == client.id) {
            if self.store.revoke_grant(&id, now).await? {
                log::info!("oidc: client {owner} revoked a grant");
            }
        }
        Ok(())
    }

    /// Introspection (RFC 7662), for confidential clients, about their own tokens.
    pub async fn introspect(
        &self,
        form: &TokenRequest,
        auth: &ClientAuth,
    ) -> Result<Introspection, TokenError> {
        let client = self.authenticate_client(form, auth).await?;
        if client.public {
            return Err(TokenError::UnauthorizedClient("introspection is for confidential clients"));
        }
        let token = form.token.as_deref().ok_or(TokenError::InvalidRequest("token is missing"))?;
        let inactive = || {
            let mut out = Map::new();
            out.insert("active".into(), Value::Bool(false));
            out
        };
        if token.len() > MAX_TOKEN_BYTES {
            return Ok(inactive());
        }
        let now = self.now();
        if let Some((grant, expires_at, used)) = self.store.grant_by_refresh(&token_hash(token)).await? {
            if grant.client_id != client.id || used || expires_at < now {
                return Ok(inactive());
            }
            let Some(user) = self.grant_user(&grant, now).await? else { return Ok(inactive()) };
            let out = json!({
                "active": true, "token_type": "refresh_token", "scope": grant.scopes, "client_id": grant.client_id,
                "sub": user.id.to_string(), "username": user.username, "exp": expires_at, "iss": self.issuer,
            });
            return Ok(object(out));
        }
        match self.bearer(token).await? {
            Some((claims, user)) if claims.client_id == client.id => {
                let out = json!({
                    "active": true, "token_type": "Bearer", "scope": claims.scope, "client_id": claims.client_id,
                    "sub": claims.sub, "username": user.username, "exp": claims.exp, "iat": claims.iat,
                    "iss": claims.iss, "aud": claims.aud, "jti": claims.jti,
                });
                Ok(object(out))
            }
            _ => Ok(inactive()),
        }
    }

    /// RP-initiated logout. `me` is whoever is signed in; `confirmed` when the person
    /// pressed "Sign out" on the confirmation page.
    pub async fn rp_logout(
        &self,
        request: &EndSessionRequest,
        me: Option<(&User, &SessionRecord)>,
        confirmed: bool,
    ) -> Result<EndSession, AuthError> {
        let now = self.now();
        let hint: Option<IdToken> = match request.id_token_hint.as_deref() {
            None => None,
            Some(raw) if raw.len() > MAX_TOKEN_BYTES => return Ok(EndSession::Refused(BAD_HINT)),
            Some(raw) => match self
                .signer
                .verify(raw, ID_TOKEN_TYP, &self.issuer, false, now)
                .await
                .map_err(key_error)?
            {
                Some(hint) => Some(hint),
                None => return Ok(EndSession::Refused(BAD_HINT)),
            },
        };
        let client_id = match (&hint, request.client_id.as_deref()) {
            (Some(hint), Some(id)) if hint.aud != id => return Ok(EndSession::Refused(BAD_HINT)),
            (Some(hint), _) => Some(hint.aud.clone()),
            (None, id) => id.map(str::to_owned),
        };
        let client = match client_id.as_deref() {
            Some(id) => self.client(id).await?,
            None => None,
        };
        let back = match (request.post_logout_redirect_uri.as_deref(), &client) {
            (None, _) => None,
            (Some(uri), Some(client)) if client.post_logout_redirect_uris.iter().any(|u| u == uri) => {
                let mut url = uri.to_owned();
                if let Some(state) = &request.state {
                    let joiner = if uri.contains('?') { '&' } else { '?' };
                    let query: String = url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("state", state)
                        .finish();
                    url = format!("{url}{joiner}{query}");
                }
                Some(url)
            }
            (Some(_), _) => {
                return Ok(EndSession::Refused(
                    "The application asked to send you to an address it has not registered.",
                ))
            }
        };
        let Some((user, session)) = me else { return Ok(EndSession::Done(back)) };
        let hinted = hint.as_ref().is_some_and(|h| h.sub == user.id.to_string());
        if !hinted && !confirmed {
            return Ok(EndSession::Confirm { client_name: client.map(|c| c.name), back });
        }
        self.sign_out(user, session).await?;
        let revoked = self.store.revoke_grants_of_session(&session.id, now).await?;
        log::info!("oidc: RP-initiated logout of user_id={} ended {revoked} grant(s)", user.id);
        Ok(EndSession::Done(back))
    }

    /// The person's connected applications: their consents, with each client's name.
    pub async fn connected_applications(&self, user: &User) -> Result<Vec<ConnectedApp>, AuthError> {
        let mut out = Vec::new();
        for consent in self.store.consents_of(user.id).await? {
            let name =
                self.client(&consent.client_id).await?.map_or_else(|| consent.client_id.clone(), |c| c.name);
            out.push(ConnectedApp {
                client_id: consent.client_id,
                name,
                scopes: consent.scopes,
                granted_at: consent.granted_at,
            });
        }
        Ok(out)
    }

    /// Forgets a consent and ends the tokens the application holds for this person.
    pub async fn disconnect_application(
        &self,
        user: &User,
        client_id: &str,
        client_info: &ClientInfo,
    ) -> Result<bool, AuthError> {
        let done = self.store.revoke_consent(user.id, client_id, self.now()).await?;
        if done {
            let detail = json!({ "client": client_id });
            self.user_did(user.id, EventKind::ConsentRevoked, Some(client_info), detail).await;
        }
        Ok(done)
    }
}

const BAD_HINT: &str = "The sign-out request carried a token this portal did not issue.";

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::pkce_matches;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK", challenge));
        assert!(!pkce_matches("short", challenge));
    }
}
