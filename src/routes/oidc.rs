//! The OpenID provider's endpoints: discovery, authorization (and its consent form), token,
//! userinfo, revocation, introspection, RP-initiated logout, and disconnecting an
//! application from the account page. The JWK Set is forward-auth's
//! (`/.well-known/jwks.json`, in `routes::authz`): one set of keys for both.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rocket::form::{self, Form};
use rocket::http::{Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder};
use rocket::{get, options, post, FromForm, Route, State};
use serde_json::{json, Value};

use crate::auth::provider::tokens::{CLAIMS, SCOPES};
use crate::auth::provider::{
    AuthRequest, Authorize, ClientAuth, Decision, EndSession, EndSessionRequest, TokenError, TokenRequest,
};
use crate::auth::{Auth, AuthError, ClientInfo};
use crate::web::cookies::Jar;
use crate::web::csrf::{Checked, CsrfOnly, CsrfProtected, FormRefused};
use crate::web::flash::Kind;
use crate::web::guard::LoggedIn;
use crate::web::headers::FormsTo;
use crate::web::oidc_pages::{ConsentView, Hidden, LogoutConfirmView};
use crate::web::pages::{message_page_reply, Layout, Reply};

pub const AUTHORIZE: &str = "/oidc/authorize";
pub const TOKEN: &str = "/oidc/token";
pub const USERINFO: &str = "/oidc/userinfo";
pub const REVOKE: &str = "/oidc/revoke";
pub const INTROSPECT: &str = "/oidc/introspect";
pub const LOGOUT: &str = "/oidc/logout";
pub const JWKS: &str = "/.well-known/jwks.json";

/// A JSON answer of the provider: never cached, readable from any origin (no cookie is
/// read on these endpoints), with `WWW-Authenticate` when it is a 401.
pub struct ProviderJson {
    status: Status,
    body: Value,
    challenge: Option<String>,
}

impl ProviderJson {
    fn ok(body: Value) -> ProviderJson {
        ProviderJson { status: Status::Ok, body, challenge: None }
    }
}

impl<'r> Responder<'r, 'static> for ProviderJson {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let mut response = rocket::response::Response::build_from(
            (rocket::http::ContentType::JSON, self.body.to_string()).respond_to(request)?,
        )
        .status(self.status)
        .header(Header::new("Cache-Control", "no-store"))
        .header(Header::new("Pragma", "no-cache"))
        .header(Header::new("Access-Control-Allow-Origin", "*"))
        .finalize();
        if let Some(challenge) = self.challenge {
            response.set_header(Header::new("WWW-Authenticate", challenge));
        }
        Ok(response)
    }
}

/// A token-endpoint error as RFC 6749 §5.2 sends it.
fn token_error(e: TokenError) -> ProviderJson {
    let (status, challenge) = match &e {
        TokenError::InvalidClient => (Status::Unauthorized, Some("Basic realm=\"portal\"".to_owned())),
        TokenError::Failed(AuthError::Store(_) | AuthError::Busy) => (Status::ServiceUnavailable, None),
        TokenError::Failed(inner) => {
            log::error!("oidc: token endpoint failed: {inner}");
            (Status::InternalServerError, None)
        }
        _ => (Status::BadRequest, None),
    };
    if let TokenError::Failed(AuthError::Store(inner)) = &e {
        log::warn!("oidc: the store did not answer: {inner}");
    }
    ProviderJson {
        status,
        body: json!({ "error": e.code(), "error_description": e.description() }),
        challenge,
    }
}

/// `client_secret_basic`: the `Authorization: Basic` header, its halves form-decoded (RFC 6749
/// §2.3.1). A header that cannot be read is an authentication that failed.
pub struct BasicCredentials(Result<Option<(String, String)>, ()>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for BasicCredentials {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let Some(header) = request.headers().get_one("Authorization") else {
            return Outcome::Success(BasicCredentials(Ok(None)));
        };
        let parsed = (|| {
            let (scheme, encoded) = header.trim().split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return None;
            }
            let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
            let (id, secret) = decoded.split_once(':')?;
            let form_decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned())
            };
            Some((form_decode(id)?, form_decode(secret)?))
        })();
        Outcome::Success(BasicCredentials(parsed.map(Some).ok_or(())))
    }
}

/// `Authorization: Bearer` (RFC 6750 §2.1), or the form's `access_token` (§2.2) for POST.
pub struct Bearer(Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Bearer {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let token = request.headers().get_one("Authorization").and_then(|h| {
            let (scheme, token) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
        });
        Outcome::Success(Bearer(token))
    }
}

/// `GET /.well-known/openid-configuration`.
#[get("/.well-known/openid-configuration")]
pub fn discovery(auth: &State<Auth>) -> ProviderJson {
    let issuer = auth.issuer();
    let at = |path: &str| format!("{issuer}{path}");
    ProviderJson::ok(json!({
        "issuer": issuer,
        "authorization_endpoint": at(AUTHORIZE),
        "token_endpoint": at(TOKEN),
        "userinfo_endpoint": at(USERINFO),
        "jwks_uri": at(JWKS),
        "revocation_endpoint": at(REVOKE),
        "introspection_endpoint": at(INTROSPECT),
        "end_session_endpoint": at(LOGOUT),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "EdDSA"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": SCOPES,
        "claims_supported": CLAIMS,
        "acr_values_supported": ["aal1", "aal2"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    }))
}

/// What the authorization endpoint's decision becomes in the browser. The consent page's
/// forms lead to the application: its CSP says so.
fn answer(decided: Authorize, layout: &Layout<'_>, jar: &Jar<'_>) -> FormsTo<Reply> {
    let reply = match decided {
        Authorize::Refused(why) => message_page_reply(Status::BadRequest, why),
        Authorize::Redirect(url) => external(url),
        Authorize::SignIn(again) => {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("next", &again);
            Reply::to(format!("/login?{}", query.finish()))
        }
        Authorize::StepUp(again) => {
            jar.flash(Kind::Info, "That application asks for a second factor.");
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("next", &again);
            Reply::to(format!("{}?{}", crate::routes::factors::SECOND_STEP, query.finish()))
        }
        Authorize::Consent(page) => {
            let view = layout.oidc_consent(ConsentView::new(&page));
            return FormsTo(Reply::page(Status::Ok, view), Some(page.redirect_uri));
        }
    };
    FormsTo(reply, None)
}

/// A redirect to an application's registered address (checked before it got here); an
/// address Rocket cannot send as a `Location` is an error page, not a 500.
fn external(url: String) -> Reply {
    match rocket::http::uri::Reference::parse_owned(url) {
        Ok(reference) => Reply::to(reference),
        Err(_) => message_page_reply(
            Status::BadRequest,
            "The application's registered address cannot be used; tell its administrator.",
        ),
    }
}

/// `GET /oidc/authorize`.
#[get("/oidc/authorize?<request..>")]
pub async fn authorize(
    request: AuthRequest,
    me: Option<&LoggedIn>,
    layout: Layout<'_>,
    jar: Jar<'_>,
    client: ClientInfo,
    auth: &State<Auth>,
) -> Result<FormsTo<Reply>, AuthError> {
    let me = me.map(|m| (m.user(), m.session()));
    let decided = auth.oidc_authorize(&request, me, None, &client).await?;
    Ok(answer(decided, &layout, &jar))
}

/// `POST /oidc/authorize`: the same request as a form (Core §3.1.2.1).
#[post("/oidc/authorize", data = "<request>")]
pub async fn authorize_form(
    request: Form<AuthRequest>,
    me: Option<&LoggedIn>,
    layout: Layout<'_>,
    jar: Jar<'_>,
    client: ClientInfo,
    auth: &State<Auth>,
) -> Result<FormsTo<Reply>, AuthError> {
    let me = me.map(|m| (m.user(), m.session()));
    let decided = auth.oidc_authorize(&request, me, None, &client).await?;
    Ok(answer(decided, &layout, &jar))
}

#[derive(FromForm)]
pub struct ConsentForm<'r> {
    request: AuthRequest,
    decision: Option<&'r str>,
    csrf_token: Option<&'r str>,
}

impl CsrfProtected for ConsentForm<'_> {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token
    }
}

/// `POST /oidc/consent`: Allow or Deny. The request is checked again from the start.
#[post("/oidc/consent", data = "<form>")]
pub async fn consent(
    form: Result<Checked<ConsentForm<'_>>, FormRefused>,
    me: &LoggedIn,
    layout: Layout<'_>,
    jar: Jar<'_>,
    client: ClientInfo,
    auth: &State<Auth>,
) -> Result<FormsTo<Reply>, AuthError> {
    let form = match form {
        Ok(Checked(form)) => form,
        Err(refused) => return Ok(FormsTo(Reply::Error(refused.status()), None)),
    };
    let decision = match form.decision {
        Some("allow") => Decision::Allow,
        Some("deny") => Decision::Deny,
        _ => return Ok(FormsTo(message_page_reply(Status::BadRequest, "Choose Allow or Deny."), None)),
    };
    let decided =
        auth.oidc_authorize(&form.request, Some((me.user(), me.session())), Some(decision), &client).await?;
    Ok(answer(decided, &layout, &jar))
}

/// The token endpoint.
#[post("/oidc/token", data = "<form>")]
pub async fn token(
    form: Result<Form<TokenRequest>, form::Errors<'_>>,
    basic: BasicCredentials,
    client: ClientInfo,
    auth: &State<Auth>,
) -> ProviderJson {
    let Ok(form) = form else {
        return token_error(TokenError::InvalidRequest(
            "the body must be a form (application/x-www-form-urlencoded)",
        ));
    };
    let Ok(basic) = basic.0 else { return token_error(TokenError::InvalidClient) };
    match auth.token(&form, &ClientAuth { basic }, &client).await {
        Ok(tokens) => ProviderJson::ok(json!(tokens)),
        Err(e) => token_error(e),
    }
}

/// userinfo, for a GET with the token in `Authorization`.
#[get("/oidc/userinfo")]
pub async fn userinfo(bearer: Bearer, auth: &State<Auth>) -> Result<ProviderJson, AuthError> {
    userinfo_of(bearer.0, auth).await
}

#[derive(FromForm)]
pub struct BearerForm {
    access_token: Option<String>,
}

/// userinfo by POST: the token in `Authorization`, or in the form.
#[post("/oidc/userinfo", data = "<form>")]
pub async fn userinfo_post(
    bearer: Bearer,
    form: Option<Form<BearerForm>>,
    auth: &State<Auth>,
) -> Result<ProviderJson, AuthError> {
    let token = bearer.0.or_else(|| form.and_then(|f| f.into_inner().access_token));
    userinfo_of(token, auth).await
}

async fn userinfo_of(token: Option<String>, auth: &Auth) -> Result<ProviderJson, AuthError> {
    let Some(token) = token else {
        return Ok(ProviderJson {
            status: Status::Unauthorized,
            body: json!({ "error": "invalid_request", "error_description": "no access token" }),
            challenge: Some("Bearer realm=\"portal\"".into()),
        });
    };
    match auth.userinfo(&token).await? {
        Some(claims) => Ok(ProviderJson::ok(Value::Object(claims))),
        None => Ok(ProviderJson {
            status: Status::Unauthorized,
            body: json!({ "error": "invalid_token", "error_description": "the access token is not valid" }),
            challenge: Some("Bearer realm=\"portal\", error=\"invalid_token\"".into()),
        }),
    }
}

/// CORS preflight for userinfo and the token endpoint (browser applications).
#[options("/oidc/<_endpoint>")]
pub fn preflight(_endpoint: &str) -> PreflightOk {
    PreflightOk
}

pub struct PreflightOk;

impl<'r> Responder<'r, 'static> for PreflightOk {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        Ok(rocket::response::Response::build()
            .status(Status::NoContent)
            .header(Header::new("Access-Control-Allow-Origin", "*"))
            .header(Header::new("Access-Control-Allow-Methods", "GET, POST"))
            .header(Header::new("Access-Control-Allow-Headers", "Authorization, Content-Type"))
            .header(Header::new("Access-Control-Max-Age", "600"))
            .finalize())
    }
}

/// Revocation (RFC 7009): 200 whether or not the token was known.
#[post("/oidc/revoke", data = "<form>")]
pub async fn revoke(
    form: Result<Form<TokenRequest>, form::Errors<'_>>,
    basic: BasicCredentials,
    auth: &State<Auth>,
) -> ProviderJson {
    let Ok(form) = form else { return token_error(TokenError::InvalidRequest("the body must be a form")) };
    let Ok(basic) = basic.0 else { return token_error(TokenError::InvalidClient) };
    match auth.revoke_token(&form, &ClientAuth { basic }).await {
        Ok(()) => ProviderJson::ok(json!({})),
        Err(e) => token_error(e),
    }
}

/// Introspection (RFC 7662).
#[post("/oidc/introspect", data = "<form>")]
pub async fn introspect(
    form: Result<Form<TokenRequest>, form::Errors<'_>>,
    basic: BasicCredentials,
    auth: &State<Auth>,
) -> ProviderJson {
    let Ok(form) = form else { return token_error(TokenError::InvalidRequest("the body must be a form")) };
    let Ok(basic) = basic.0 else { return token_error(TokenError::InvalidClient) };
    match auth.introspect(&form, &ClientAuth { basic }).await {
        Ok(answer) => ProviderJson::ok(Value::Object(answer)),
        Err(e) => token_error(e),
    }
}

/// RP-initiated logout, as a link.
#[get("/oidc/logout?<request..>")]
pub async fn end_session(
    request: EndSessionRequest,
    me: Option<&LoggedIn>,
    layout: Layout<'_>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<FormsTo<Reply>, AuthError> {
    end_session_with(request, me, false, layout, jar, auth).await
}

#[derive(FromForm)]
pub struct LogoutForm<'r> {
    request: EndSessionRequest,
    csrf_token: Option<&'r str>,
}

impl CsrfProtected for LogoutForm<'_> {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token
    }
}

/// The confirmation page's "Sign out".
#[post("/oidc/logout", data = "<form>")]
pub async fn end_session_confirmed(
    form: Result<Checked<LogoutForm<'_>>, FormRefused>,
    me: Option<&LoggedIn>,
    layout: Layout<'_>,
    jar: Jar<'_>,
    auth: &State<Auth>,
) -> Result<FormsTo<Reply>, AuthError> {
    match form {
        Ok(Checked(form)) => end_session_with(form.request, me, true, layout, jar, auth).await,
        Err(refused) => Ok(FormsTo(Reply::Error(refused.status()), None)),
    }
}

async fn end_session_with(
    request: EndSessionRequest,
    me: Option<&LoggedIn>,
    confirmed: bool,
    layout: Layout<'_>,
    jar: Jar<'_>,
    auth: &Auth,
) -> Result<FormsTo<Reply>, AuthError> {
    let who = me.map(|m| (m.user(), m.session()));
    match auth.rp_logout(&request, who, confirmed).await? {
        EndSession::Refused(why) => Ok(FormsTo(message_page_reply(Status::BadRequest, why), None)),
        EndSession::Confirm { client_name, back } => {
            let fields = [
                ("id_token_hint", &request.id_token_hint),
                ("post_logout_redirect_uri", &request.post_logout_redirect_uri),
                ("state", &request.state),
                ("client_id", &request.client_id),
            ];
            let hidden = fields
                .into_iter()
                .filter_map(|(name, value)| value.as_deref().map(|value| Hidden { name, value }))
                .collect();
            let page = LogoutConfirmView { client_name: client_name.as_deref(), hidden };
            Ok(FormsTo(Reply::page(Status::Ok, layout.oidc_logout(page)), back))
        }
        EndSession::Done(back) => {
            if me.is_some() {
                jar.end_session();
            }
            let reply = match back {
                Some(url) => external(url),
                None => {
                    jar.flash(Kind::Success, "You were signed out.");
                    Reply::to("/")
                }
            };
            Ok(FormsTo(reply, None))
        }
    }
}

/// "Disconnect" on the account page: forget the consent, end the application's tokens.
#[post("/account/applications/<client_id>/disconnect", data = "<form>")]
pub async fn disconnect(
    client_id: &str,
    form: Result<Checked<CsrfOnly<'_>>, FormRefused>,
    me: &LoggedIn,
    jar: Jar<'_>,
    client: ClientInfo,
    auth: &State<Auth>,
) -> Result<Reply, AuthError> {
    if let Err(refused) = form {
        return Ok(Reply::Error(refused.status()));
    }
    if auth.disconnect_application(me.user(), client_id, &client).await? {
        jar.flash(Kind::Success, "The application is disconnected: it has to ask you again.");
    }
    Ok(Reply::to("/account"))
}

/// This module's routes, mounted at `/`.
pub fn routes() -> Vec<Route> {
    rocket::routes![
        discovery,
        authorize,
        authorize_form,
        consent,
        token,
        userinfo,
        userinfo_post,
        preflight,
        revoke,
        introspect,
        end_session,
        end_session_confirmed,
        disconnect,
    ]
}
