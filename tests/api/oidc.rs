//! The OpenID provider against a local client: discovery, the authorization request and its
//! refusals, consent, the token endpoint (both client authentications, PKCE, codes used
//! twice, refresh rotation and replay), userinfo, revocation, introspection, RP-initiated
//! logout, and every way a sign-out ends what a grant issued.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use portal_testkit::app::{
    body, extract_hidden, form_body, json, location, same_origin, unescape_html, TestApp, START,
};
use portal_testkit::PASSWORD;
use rocket::http::{ContentType, Header, Status};
use serde_json::{json, Value};
use sha2::Digest as _;

const ISSUER: &str = "http://portal.test";
const SECRET: &str = "the app's secret, long enough";
const APP_CB: &str = "https://app.example.com/cb";
const BYE: &str = "https://app.example.com/bye";
const SPA_CB: &str = "http://127.0.0.1:9/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn provider() -> TestApp {
    TestApp::spawn_with(|f| {
        f.merge(("public_url", ISSUER)).merge((
            "oidc",
            json!({ "clients": [
                { "client_id": "app", "client_secret": SECRET, "name": "The App",
                  "redirect_uris": [APP_CB], "post_logout_redirect_uris": [BYE] },
                { "client_id": "spa", "public": true, "consent": "implicit", "redirect_uris": [SPA_CB] },
                { "client_id": "ed", "client_secret": SECRET, "consent": "implicit",
                  "id_token_signed_response_alg": "EdDSA", "redirect_uris": [APP_CB] },
                { "client_id": "finance", "client_secret": SECRET, "consent": "implicit", "allow": "admins",
                  "redirect_uris": [APP_CB] },
                { "client_id": "vault", "client_secret": SECRET, "consent": "implicit", "second_factor": true,
                  "redirect_uris": [APP_CB] },
            ]}),
        ))
    })
    .await
}

fn authorize_uri(client: &str, redirect: &str, scope: &str, extra: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("client_id", client).append_pair("redirect_uri", redirect);
    query.append_pair("response_type", "code").append_pair("scope", scope).append_pair("state", "st8");
    for (k, v) in extra {
        query.append_pair(k, v);
    }
    format!("/oidc/authorize?{}", query.finish())
}

fn query_of(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

fn param(url: &str, name: &str) -> Option<String> {
    query_of(url).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Signs alice in and answers the consent page with Allow: the redirect's URL.
async fn code_for(app: &TestApp, client: &str, scope: &str, extra: &[(&str, &str)]) -> String {
    let response = app.get(&authorize_uri(client, APP_CB, scope, extra)).await;
    let url = match response.status() {
        Status::SeeOther => location(&response).unwrap().to_owned(),
        Status::Ok => {
            let page = body(response).await;
            assert!(page.contains("Allow"), "{page}");
            let mut fields: Vec<(String, String)> = hidden_fields(&page);
            fields.push(("decision".into(), "allow".into()));
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let answer = app
                .client
                .post("/oidc/consent")
                .header(ContentType::Form)
                .body(form_body(&fields))
                .dispatch()
                .await;
            assert_eq!(answer.status(), Status::SeeOther, "{fields:?}");
            location(&answer).unwrap().to_owned()
        }
        other => panic!("authorize answered {other}"),
    };
    assert!(url.starts_with(APP_CB), "{url}");
    param(&url, "code").unwrap_or_else(|| panic!("no code in {url}"))
}

/// The hidden fields of the page's form that posts to `/oidc/…` (not the top bar's logout).
fn hidden_fields(page: &str) -> Vec<(String, String)> {
    let form = page.split("action=\"/oidc/").nth(1).expect("a form to /oidc/");
    let form = form.split("</form>").next().unwrap();
    let mut out = Vec::new();
    for piece in form.split("<input type=\"hidden\" name=\"").skip(1) {
        let (name, rest) = piece.split_once('"').unwrap();
        let value = rest.split_once("value=\"").unwrap().1.split_once('"').unwrap().0;
        out.push((name.to_owned(), unescape_html(value)));
    }
    out
}

fn basic(id: &str, secret: &str) -> Header<'static> {
    Header::new("Authorization", format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))))
}

async fn token(
    app: &TestApp,
    fields: &[(&str, &str)],
    auth: Option<Header<'static>>,
) -> (Status, Value, Option<String>) {
    let mut request = app.client.post("/oidc/token").header(ContentType::Form).body(form_body(fields));
    if let Some(auth) = auth {
        request = request.header(auth);
    }
    let response = request.dispatch().await;
    let status = response.status();
    assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
    let challenge = response.headers().get_one("WWW-Authenticate").map(str::to_owned);
    (status, json(response).await, challenge)
}

async fn exchange(app: &TestApp, code: &str) -> Value {
    let (status, answer, _) = token(
        app,
        &[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", APP_CB)],
        Some(basic("app", SECRET)),
    )
    .await;
    assert_eq!(status, Status::Ok, "{answer}");
    answer
}

async fn userinfo(app: &TestApp, access_token: &str) -> (Status, Value) {
    let response = app
        .client
        .get("/oidc/userinfo")
        .header(Header::new("Authorization", format!("Bearer {access_token}")))
        .dispatch()
        .await;
    let status = response.status();
    (status, json(response).await)
}

/// A JWT's header and claims, not verified (the openidconnect suite verifies signatures).
fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    (header, claims)
}

/// alice, with an email address, signed in on the test client.
async fn alice(app: &TestApp) -> portal::store::User {
    let hash = app.auth().hasher().hash(PASSWORD.to_owned()).await.unwrap();
    let new = portal::store::NewUser {
        username: "alice",
        email: Some("alice@example.com"),
        password_hash: Some(&hash),
        is_admin: false,
    };
    let user = app.store().create_user(new, START).await.unwrap();
    app.sign_in("alice", PASSWORD).await;
    user
}

#[rocket::async_test]
async fn discovery_names_every_endpoint_under_the_issuer() {
    let app = provider().await;
    let response = app.get("/.well-known/openid-configuration").await;
    assert_eq!(response.status(), Status::Ok);
    let doc = json(response).await;
    assert_eq!(doc["issuer"], ISSUER);
    for key in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
    ] {
        assert!(doc[key].as_str().unwrap().starts_with(ISSUER), "{key}");
    }
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["id_token_signing_alg_values_supported"][0], "RS256");
}

#[rocket::async_test]
async fn an_unknown_client_or_an_unregistered_redirect_uri_gets_a_page_never_a_redirect() {
    let app = provider().await;
    alice(&app).await;
    for uri in [
        authorize_uri("nobody", APP_CB, "openid", &[]),
        authorize_uri("app", "https://app.example.com/cb/", "openid", &[]),
        authorize_uri("app", "https://APP.example.com/cb", "openid", &[]),
        authorize_uri("app", "https://app.example.com/Cb", "openid", &[]),
        authorize_uri("app", "https://evil.example/cb", "openid", &[]),
        "/oidc/authorize?client_id=app&response_type=code&scope=openid".to_owned(),
    ] {
        let response = app.get(&uri).await;
        assert_eq!(response.status(), Status::BadRequest, "{uri}");
        assert!(location(&response).is_none());
    }
}

#[rocket::async_test]
async fn a_bad_request_from_a_known_client_goes_back_to_it_with_an_error_and_the_state() {
    let app = provider().await;
    alice(&app).await;
    let cases = [
        (authorize_uri("app", APP_CB, "profile", &[]), "invalid_scope"),
        (
            authorize_uri("app", APP_CB, "openid", &[]).replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (authorize_uri("spa", SPA_CB, "openid", &[]), "invalid_request"),
        (
            authorize_uri(
                "app",
                APP_CB,
                "openid",
                &[("code_challenge", CHALLENGE), ("code_challenge_method", "plain")],
            ),
            "invalid_request",
        ),
        (authorize_uri("app", APP_CB, "openid", &[("code_challenge", CHALLENGE)]), "invalid_request"),
        (authorize_uri("app", APP_CB, "openid", &[("prompt", "none login")]), "invalid_request"),
        (authorize_uri("app", APP_CB, "openid", &[("max_age", "soon")]), "invalid_request"),
    ];
    for (uri, error) in cases {
        let response = app.get(&uri).await;
        assert_eq!(response.status(), Status::SeeOther, "{uri}");
        let back = location(&response).unwrap();
        let expected_base = if uri.contains("spa") { SPA_CB } else { APP_CB };
        assert!(back.starts_with(expected_base), "{back}");
        assert_eq!(param(back, "error").as_deref(), Some(error), "{uri} -> {back}");
        assert_eq!(param(back, "state").as_deref(), Some("st8"));
        assert_eq!(param(back, "iss").as_deref(), Some(ISSUER));
    }
}

#[rocket::async_test]
async fn signed_out_the_request_goes_to_the_login_page_and_comes_back_to_the_consent_page() {
    let app = provider().await;
    app.create_user("alice", PASSWORD).await;
    let uri = authorize_uri("app", APP_CB, "openid profile", &[("nonce", "n-0S6")]);
    let response = app.get(&uri).await;
    assert_eq!(response.status(), Status::SeeOther);
    let login = location(&response).unwrap().to_owned();
    assert!(login.starts_with("/login?next="), "{login}");
    let next = param(&login, "next").unwrap();
    assert!(next.starts_with("/oidc/authorize?client_id=app"), "{next}");
    let signed_in =
        app.post_login_form(&[("username", "alice"), ("password", PASSWORD), ("next", &next)]).await;
    assert_eq!(location(&signed_in), Some(next.as_str()));
    let consent = app.get(&next).await;
    assert_eq!(consent.status(), Status::Ok);
    let page = body(consent).await;
    assert!(page.contains("Allow The App?"), "{page}");
    assert!(page.contains("Your username"));
}

#[rocket::async_test]
async fn the_code_flow_gives_an_id_token_and_userinfo_with_the_same_claims_and_consent_is_remembered() {
    let app = provider().await;
    let user = alice(&app).await;
    let code = code_for(&app, "app", "openid profile email groups", &[("nonce", "n-0S6")]).await;
    let tokens = exchange(&app, &code).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 600);
    assert!(tokens.get("refresh_token").is_none(), "no offline_access, no refresh token");
    let (header, id) = jwt_parts(tokens["id_token"].as_str().unwrap());
    assert_eq!(header["alg"], "RS256");
    assert_eq!(id["iss"], ISSUER);
    assert_eq!(id["aud"], "app");
    assert_eq!(id["sub"], user.id.to_string());
    assert_eq!(id["nonce"], "n-0S6");
    assert_eq!(id["amr"], json!(["pwd"]));
    assert_eq!(id["acr"], "aal1");
    assert_eq!(id["auth_time"], START);
    assert_eq!(id["preferred_username"], "alice");
    assert_eq!(id["email"], "alice@example.com");
    assert_eq!(id["email_verified"], true);
    assert_eq!(id["groups"], json!([]));
    let (at_header, at) = jwt_parts(tokens["access_token"].as_str().unwrap());
    assert_eq!(at_header["typ"], "at+jwt");
    assert_eq!(at["client_id"], "app");
    let (status, info) = userinfo(&app, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, Status::Ok);
    for claim in ["sub", "preferred_username", "name", "email", "email_verified", "groups"] {
        assert_eq!(info[claim], id[claim], "{claim}");
    }
    // The ID token is not an access token.
    let (status, _) = userinfo(&app, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(status, Status::Unauthorized);
    // Remembered: the same scopes again go straight back with a code.
    let again = app.get(&authorize_uri("app", APP_CB, "openid profile email groups", &[])).await;
    assert_eq!(again.status(), Status::SeeOther);
    assert!(param(location(&again).unwrap(), "code").is_some());
    // A scope not consented to asks again.
    let wider = app.get(&authorize_uri("app", APP_CB, "openid offline_access", &[])).await;
    assert_eq!(wider.status(), Status::Ok);
    let kinds: Vec<String> = app.events().await.into_iter().map(|e| e.0).collect();
    assert!(
        kinds.contains(&"consent_given".to_owned()) && kinds.contains(&"token_issued".to_owned()),
        "{kinds:?}"
    );
}

#[rocket::async_test]
async fn deny_sends_access_denied_and_prompt_none_answers_without_a_page() {
    let app = provider().await;
    let none = app.get(&authorize_uri("app", APP_CB, "openid", &[("prompt", "none")])).await;
    assert_eq!(param(location(&none).unwrap(), "error").as_deref(), Some("login_required"));
    alice(&app).await;
    let none = app.get(&authorize_uri("app", APP_CB, "openid", &[("prompt", "none")])).await;
    assert_eq!(param(location(&none).unwrap(), "error").as_deref(), Some("consent_required"));
    let page = body(app.get(&authorize_uri("app", APP_CB, "openid", &[])).await).await;
    let mut fields = hidden_fields(&page);
    fields.push(("decision".into(), "deny".into()));
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let answer =
        app.client.post("/oidc/consent").header(ContentType::Form).body(form_body(&fields)).dispatch().await;
    let back = location(&answer).unwrap();
    assert_eq!(param(back, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(back, "state").as_deref(), Some("st8"));
}

#[rocket::async_test]
async fn prompt_login_and_max_age_send_a_signed_in_person_to_sign_in_again() {
    let app = provider().await;
    alice(&app).await;
    app.clock.advance(120);
    for extra in [[("prompt", "login")], [("max_age", "60")]] {
        let response = app.get(&authorize_uri("trusted-none", APP_CB, "openid", &[])).await;
        assert_eq!(response.status(), Status::BadRequest, "an unknown client is a page");
        let response = app.get(&authorize_uri("ed", APP_CB, "openid", &extra)).await;
        let login = location(&response).unwrap().to_owned();
        assert!(login.starts_with("/login?next="), "{extra:?}: {login}");
        let next = param(&login, "next").unwrap();
        assert!(!next.contains("prompt=login") && !next.contains("max_age"), "{next}");
    }
    let fresh = app.get(&authorize_uri("ed", APP_CB, "openid", &[("max_age", "600")])).await;
    assert!(param(location(&fresh).unwrap(), "code").is_some());
}

#[rocket::async_test]
async fn each_client_authentication_works_and_a_wrong_secret_is_a_401_through_each() {
    let app = provider().await;
    alice(&app).await;
    let code = code_for(&app, "ed", "openid", &[]).await;
    let (status, _, challenge) = token(
        &app,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", APP_CB)],
        Some(basic("ed", "wrong")),
    )
    .await;
    assert_eq!(status, Status::Unauthorized);
    assert!(challenge.unwrap().starts_with("Basic"));
    let (status, answer, challenge) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", APP_CB),
            ("client_id", "ed"),
            ("client_secret", "wrong"),
        ],
        None,
    )
    .await;
    assert_eq!((status, answer["error"].as_str()), (Status::Unauthorized, Some("invalid_client")));
    assert!(challenge.is_some());
    // No authentication at all from a confidential client.
    let (status, _, _) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", APP_CB),
            ("client_id", "ed"),
        ],
        None,
    )
    .await;
    assert_eq!(status, Status::Unauthorized);
    // Both methods at once.
    let (status, answer, _) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", APP_CB),
            ("client_secret", SECRET),
        ],
        Some(basic("ed", SECRET)),
    )
    .await;
    assert_eq!((status, answer["error"].as_str()), (Status::BadRequest, Some("invalid_request")));
    // The refusals used nothing up: client_secret_post works.
    let (status, answer, _) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", APP_CB),
            ("client_id", "ed"),
            ("client_secret", SECRET),
        ],
        None,
    )
    .await;
    assert_eq!(status, Status::Ok, "{answer}");
    assert_eq!(jwt_parts(answer["id_token"].as_str().unwrap()).0["alg"], "EdDSA");
    // client_secret_basic, with a secret that needs form-decoding (RFC 6749 §2.3.1).
    let code = code_for(&app, "ed", "openid", &[]).await;
    let encoded = url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect::<String>();
    let (status, _, _) = token(
        &app,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", APP_CB)],
        Some(basic("ed", &encoded)),
    )
    .await;
    assert_eq!(status, Status::Ok);
}

#[rocket::async_test]
async fn a_code_works_once_and_its_second_use_revokes_what_the_first_issued() {
    let app = provider().await;
    alice(&app).await;
    let code = code_for(&app, "app", "openid profile", &[]).await;
    let tokens = exchange(&app, &code).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, access).await.0, Status::Ok);
    let (status, answer, _) = token(
        &app,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", APP_CB)],
        Some(basic("app", SECRET)),
    )
    .await;
    assert_eq!((status, answer["error"].as_str()), (Status::BadRequest, Some("invalid_grant")));
    assert_eq!(userinfo(&app, access).await.0, Status::Unauthorized);
    assert!(app.events().await.iter().any(|e| e.0 == "token_replayed"));
    // Expired after 60 s; a redirect_uri that differs; another client's code.
    let code = code_for(&app, "app", "openid profile", &[]).await;
    let (status, _, _) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://app.example.com/cb/"),
        ],
        Some(basic("app", SECRET)),
    )
    .await;
    assert_eq!(status, Status::BadRequest);
    let (status, _, _) = token(
        &app,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", APP_CB)],
        Some(basic("ed", SECRET)),
    )
    .await;
    assert_eq!(status, Status::BadRequest);
    app.clock.advance(61);
    let (status, answer, _) = token(
        &app,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", APP_CB)],
        Some(basic("app", SECRET)),
    )
    .await;
    assert_eq!((status, answer["error"].as_str()), (Status::BadRequest, Some("invalid_grant")));
}

#[rocket::async_test]
async fn pkce_is_required_of_public_clients_and_checked_for_everyone() {
    let app = provider().await;
    alice(&app).await;
    async fn spa_code(app: &TestApp) -> String {
        let pkce = [("code_challenge", CHALLENGE), ("code_challenge_method", "S256")];
        let response = app.get(&authorize_uri("spa", SPA_CB, "openid", &pkce)).await;
        param(location(&response).unwrap(), "code").unwrap()
    }
    let form = |code: &str, verifier: Option<&'static str>| {
        let mut fields = vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".into(), code.to_owned()),
            ("redirect_uri".into(), SPA_CB.to_owned()),
            ("client_id".into(), "spa".to_owned()),
        ];
        if let Some(v) = verifier {
            fields.push(("code_verifier".into(), v.to_owned()));
        }
        fields
    };
    for (verifier, expected) in [
        (None, Status::BadRequest),
        (Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK"), Status::BadRequest),
        (Some(VERIFIER), Status::Ok),
    ] {
        let code = spa_code(&app).await;
        let fields = form(&code, verifier);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (status, answer, _) = token(&app, &fields, None).await;
        assert_eq!(status, expected, "{verifier:?}: {answer}");
    }
    // A verifier for a request that had no challenge is refused too.
    let code = code_for(&app, "ed", "openid", &[]).await;
    let (status, _, _) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", APP_CB),
            ("code_verifier", VERIFIER),
        ],
        Some(basic("ed", SECRET)),
    )
    .await;
    assert_eq!(status, Status::BadRequest);
    // A public client presenting a secret is not authenticated.
    let code = spa_code(&app).await;
    let (status, _, _) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", SPA_CB),
            ("client_id", "spa"),
            ("client_secret", "x"),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await;
    assert_eq!(status, Status::Unauthorized);
    assert_eq!(URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(VERIFIER)), CHALLENGE);
}

#[rocket::async_test]
async fn refresh_tokens_rotate_and_a_replayed_one_revokes_its_whole_family() {
    let app = provider().await;
    alice(&app).await;
    let code = code_for(&app, "app", "openid profile offline_access", &[]).await;
    let tokens = exchange(&app, &code).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |presented: String, scope: Option<&'static str>| {
        let app = &app;
        async move {
            let mut fields = vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", presented)];
            if let Some(scope) = scope {
                fields.push(("scope", scope.to_owned()));
            }
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token(app, &fields, Some(basic("app", SECRET))).await
        }
    };
    let (status, second, _) = refresh(first.clone(), None).await;
    assert_eq!(status, Status::Ok, "{second}");
    assert!(second.get("id_token").is_none());
    let second_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first);
    assert_eq!(userinfo(&app, second["access_token"].as_str().unwrap()).await.0, Status::Ok);
    // A narrower scope is fine, a wider one is not.
    let (status, third, _) = refresh(second_refresh.clone(), Some("openid")).await;
    assert_eq!((status, third["scope"].as_str()), (Status::Ok, Some("openid")));
    let third_refresh = third["refresh_token"].as_str().unwrap().to_owned();
    let (status, answer, _) = refresh(third_refresh.clone(), Some("openid email")).await;
    assert_eq!((status, answer["error"].as_str()), (Status::BadRequest, Some("invalid_scope")));
    // `third_refresh` was used by that refusal; the first one replayed ends the family.
    let (status, answer, _) = refresh(first, None).await;
    assert_eq!((status, answer["error"].as_str()), (Status::BadRequest, Some("invalid_grant")));
    let (status, _, _) = refresh(third_refresh, None).await;
    assert_eq!(status, Status::BadRequest);
    assert_eq!(userinfo(&app, third["access_token"].as_str().unwrap()).await.0, Status::Unauthorized);
    // Another client cannot use this client's refresh token.
    let code = code_for(&app, "app", "openid offline_access", &[]).await;
    let tokens = exchange(&app, &code).await;
    let theirs = tokens["refresh_token"].as_str().unwrap();
    let (status, _, _) =
        token(&app, &[("grant_type", "refresh_token"), ("refresh_token", theirs)], Some(basic("ed", SECRET)))
            .await;
    assert_eq!(status, Status::BadRequest);
    let (status, _, _) = refresh(theirs.to_owned(), None).await;
    assert_eq!(status, Status::Ok, "the other client's attempt did not spend it");
}

#[rocket::async_test]
async fn logging_out_ends_the_access_tokens_and_signing_out_everywhere_ends_refresh_tokens() {
    let app = provider().await;
    alice(&app).await;
    let online = exchange(&app, &code_for(&app, "app", "openid offline_access", &[]).await).await;
    let plain = exchange(&app, &code_for(&app, "app", "openid", &[]).await).await;
    assert_eq!(app.post_logout().await.status(), Status::SeeOther);
    assert_eq!(userinfo(&app, plain["access_token"].as_str().unwrap()).await.0, Status::Unauthorized);
    // offline_access outlives the session that made it…
    assert_eq!(userinfo(&app, online["access_token"].as_str().unwrap()).await.0, Status::Ok);
    // …until "sign out everywhere".
    app.sign_in("alice", PASSWORD).await;
    let page = body(app.get("/logout").await).await;
    let token_value = extract_hidden(&page, "csrf_token").unwrap();
    let response = app
        .client
        .post("/logout/everywhere")
        .header(ContentType::Form)
        .body(form_body(&[("csrf_token", &token_value)]))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(userinfo(&app, online["access_token"].as_str().unwrap()).await.0, Status::Unauthorized);
    let (status, _, _) = token(
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", online["refresh_token"].as_str().unwrap())],
        Some(basic("app", SECRET)),
    )
    .await;
    assert_eq!(status, Status::BadRequest);
}

#[rocket::async_test]
async fn disabling_a_user_ends_their_refresh_tokens() {
    let app = provider().await;
    let user = alice(&app).await;
    let tokens = exchange(&app, &code_for(&app, "app", "openid offline_access", &[]).await).await;
    let by = portal::auth::admin::Operator::cli();
    app.auth().set_user_disabled(&by, user.id, true).await.unwrap();
    let (status, _, _) = token(
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())],
        Some(basic("app", SECRET)),
    )
    .await;
    assert_eq!(status, Status::BadRequest);
}

#[rocket::async_test]
async fn rp_initiated_logout_with_a_hint_ends_the_session_and_goes_to_a_registered_address_only() {
    let app = provider().await;
    alice(&app).await;
    let tokens = exchange(&app, &code_for(&app, "app", "openid", &[]).await).await;
    let hint = tokens["id_token"].as_str().unwrap();
    let unregistered = format!(
        "/oidc/logout?id_token_hint={hint}&post_logout_redirect_uri={}",
        url::form_urlencoded::byte_serialize(b"https://evil.example/").collect::<String>()
    );
    assert_eq!(app.get(&unregistered).await.status(), Status::BadRequest);
    assert_eq!(app.get("/oidc/logout?id_token_hint=not.a.token").await.status(), Status::BadRequest);
    // Without a hint: a question first.
    let question = app.get("/oidc/logout?client_id=app").await;
    assert_eq!(question.status(), Status::Ok);
    assert!(body(question).await.contains("Sign out?"));
    assert_eq!(app.get("/welcome").await.status(), Status::Ok, "still signed in");
    let uri = format!(
        "/oidc/logout?id_token_hint={hint}&state=bye1&post_logout_redirect_uri={}",
        url::form_urlencoded::byte_serialize(BYE.as_bytes()).collect::<String>()
    );
    let response = app.get(&uri).await;
    assert_eq!(location(&response), Some(format!("{BYE}?state=bye1").as_str()));
    assert_eq!(userinfo(&app, tokens["access_token"].as_str().unwrap()).await.0, Status::Unauthorized);
    assert_ne!(app.get("/welcome").await.status(), Status::Ok, "signed out");
}

#[rocket::async_test]
async fn revocation_and_introspection_answer_only_the_client_that_holds_the_token() {
    let app = provider().await;
    alice(&app).await;
    let tokens = exchange(&app, &code_for(&app, "app", "openid offline_access", &[]).await).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let post = |path: &'static str, token: String, who: &'static str| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(path)
                .header(ContentType::Form)
                .header(basic(who, SECRET))
                .body(form_body(&[("token", &token)]))
                .dispatch()
                .await;
            (response.status(), json(response).await)
        }
    };
    let (status, answer) = post("/oidc/introspect", access.to_owned(), "app").await;
    assert_eq!((status, &answer["active"], &answer["client_id"]), (Status::Ok, &json!(true), &json!("app")));
    let (_, answer) = post("/oidc/introspect", refresh.to_owned(), "app").await;
    assert_eq!(answer["token_type"], "refresh_token");
    let (_, answer) = post("/oidc/introspect", access.to_owned(), "ed").await;
    assert_eq!(answer, json!({ "active": false }), "another client learns nothing");
    let (status, _) = post("/oidc/revoke", refresh.to_owned(), "ed").await;
    assert_eq!(status, Status::Ok);
    assert_eq!(userinfo(&app, access).await.0, Status::Ok, "another client's revocation does nothing");
    let (status, _) = post("/oidc/revoke", "never-issued".to_owned(), "app").await;
    assert_eq!(status, Status::Ok);
    let (status, _) = post("/oidc/revoke", refresh.to_owned(), "app").await;
    assert_eq!(status, Status::Ok);
    assert_eq!(userinfo(&app, access).await.0, Status::Unauthorized);
    let (_, answer) = post("/oidc/introspect", refresh.to_owned(), "app").await;
    assert_eq!(answer["active"], false);
}

#[rocket::async_test]
async fn a_clients_rule_and_its_second_factor_demand_are_kept() {
    let app = provider().await;
    alice(&app).await;
    let denied = app.get(&authorize_uri("finance", APP_CB, "openid", &[])).await;
    assert_eq!(param(location(&denied).unwrap(), "error").as_deref(), Some("access_denied"));
    let step_up = app.get(&authorize_uri("vault", APP_CB, "openid", &[])).await;
    let to = location(&step_up).unwrap();
    assert!(to.starts_with("/login/second-factor?next=%2Foidc%2Fauthorize"), "{to}");
    let none = app.get(&authorize_uri("vault", APP_CB, "openid", &[("prompt", "none")])).await;
    assert_eq!(param(location(&none).unwrap(), "error").as_deref(), Some("interaction_required"));
    let asked = app.get(&authorize_uri("ed", APP_CB, "openid", &[("acr_values", "aal2")])).await;
    assert!(location(&asked).unwrap().starts_with("/login/second-factor"));
}

#[rocket::async_test]
async fn the_account_page_lists_a_connected_application_and_disconnecting_ends_its_tokens() {
    let app = provider().await;
    alice(&app).await;
    let tokens = exchange(&app, &code_for(&app, "app", "openid email offline_access", &[]).await).await;
    let page = body(app.get("/account").await).await;
    assert!(page.contains("Connected applications") && page.contains("The App"), "{page}");
    let response = app.post_form("/account/applications/app/disconnect", &[]).await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(userinfo(&app, tokens["access_token"].as_str().unwrap()).await.0, Status::Unauthorized);
    assert!(!body(app.get("/account").await).await.contains("Connected applications"));
    let again = app.get(&authorize_uri("app", APP_CB, "openid", &[])).await;
    assert_eq!(again.status(), Status::Ok, "it asks again");
    assert!(app.events().await.iter().any(|e| e.0 == "consent_revoked"));
}

#[rocket::async_test]
async fn the_audit_log_and_the_store_keep_no_code_token_or_secret() {
    let app = provider().await;
    alice(&app).await;
    let code = code_for(&app, "app", "openid offline_access", &[]).await;
    let tokens = exchange(&app, &code).await;
    let events = app.store().recent_events(10_000).await.unwrap();
    let dump: String = events.iter().map(|e| format!("{} {}\n", e.kind, e.detail)).collect();
    assert!(dump.contains("token_issued"), "{dump}");
    for secret in [
        code.as_str(),
        tokens["access_token"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
        SECRET,
    ] {
        assert!(!dump.contains(secret));
    }
}

#[rocket::async_test]
async fn bad_token_requests_get_rfc_6749_errors_never_a_5xx() {
    let app = provider().await;
    type Case = (Vec<(&'static str, &'static str)>, Option<Header<'static>>, Status, &'static str);
    let cases: Vec<Case> = vec![
        (
            vec![("grant_type", "password")],
            Some(basic("app", SECRET)),
            Status::BadRequest,
            "unsupported_grant_type",
        ),
        (vec![], Some(basic("app", SECRET)), Status::BadRequest, "invalid_request"),
        (
            vec![("grant_type", "authorization_code")],
            Some(basic("app", SECRET)),
            Status::BadRequest,
            "invalid_request",
        ),
        (
            vec![("grant_type", "authorization_code"), ("code", "x")],
            Some(basic("app", SECRET)),
            Status::BadRequest,
            "invalid_grant",
        ),
        (
            vec![("grant_type", "refresh_token"), ("refresh_token", "x")],
            Some(basic("app", SECRET)),
            Status::BadRequest,
            "invalid_grant",
        ),
        (
            vec![("grant_type", "authorization_code")],
            Some(Header::new("Authorization", "Basic !!!")),
            Status::Unauthorized,
            "invalid_client",
        ),
        (
            vec![("grant_type", "authorization_code")],
            Some(basic("nobody", SECRET)),
            Status::Unauthorized,
            "invalid_client",
        ),
        (vec![("grant_type", "authorization_code")], None, Status::Unauthorized, "invalid_client"),
    ];
    for (fields, auth, status, error) in cases {
        let (got, answer, _) = token(&app, &fields, auth).await;
        assert_eq!((got, answer["error"].as_str()), (status, Some(error)), "{fields:?}");
    }
    // Not a form: Rocket's own refusal of the media type.
    let response = app.client.post("/oidc/token").header(ContentType::JSON).body("{}").dispatch().await;
    assert_eq!(response.status(), Status::UnsupportedMediaType);
    let (status, answer) = userinfo(&app, "garbage").await;
    assert_eq!((status, answer["error"].as_str()), (Status::Unauthorized, Some("invalid_token")));
}

/// The `openidconnect` crate as a relying party against the real binary: discovery, the code
/// flow with PKCE, the ID token verified with the published JWKS, userinfo, a refresh; then a
/// crash and a restart: the application added on the command line and the refresh token
/// survive, and the used refresh token stays used.
#[rocket::async_test]
async fn the_openidconnect_crate_signs_in_with_the_real_binary_and_a_refresh_token_survives_a_restart() {
    use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
    use openidconnect::{
        AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
        PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
    };
    use portal::auth::oauth::http::ProviderHttp;
    use portal_testkit::process::{free_port, Launch};
    use portal_testkit::visitor::Browser;
    use std::time::Duration;

    let home = tempfile::TempDir::new().unwrap();
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let launch =
        Launch::in_dir(home.path()).test_config(home.path()).env("ROCKET_PUBLIC_URL", issuer.clone());
    launch.add_user("alice");
    let added = launch
        .run(&["clients", "add", "rp", "--redirect-uri", SPA_CB, "--implicit-consent", "--name", "RP"], "");
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let said = String::from_utf8_lossy(&added.stdout).into_owned();
    let secret = said
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .expect("the secret is printed")
        .to_owned();
    let portal = launch.serve(home, port);

    let http = ProviderHttp::new(Duration::from_secs(5), Duration::from_secs(5), 1 << 20).unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(issuer.clone()).unwrap(), &http).await.unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("rp".into()),
        Some(ClientSecret::new(secret)),
    )
    .set_redirect_uri(RedirectUrl::new(SPA_CB.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let mut alice = Browser::new(port);
    assert!(alice.sign_in("alice", PASSWORD).await);
    let path = &url.as_str()[issuer.len()..];
    let answer = alice.get(path).await;
    assert_eq!(answer.status().as_u16(), 303);
    let back = answer.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(param(&back, "state").as_deref(), Some(state.secret().as_str()));
    let code = param(&back, "code").unwrap();

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let claims =
        id_token.claims(&client.id_token_verifier(), &nonce).expect("verified with the published JWKS");
    assert_eq!(claims.preferred_username().unwrap().as_str(), "alice");
    let info: CoreUserInfoClaims =
        client.user_info(tokens.access_token().clone(), None).unwrap().request_async(&http).await.unwrap();
    assert_eq!(info.subject(), claims.subject());
    let first = tokens.refresh_token().expect("offline_access gives a refresh token").clone();
    let refreshed = client.exchange_refresh_token(&first).unwrap().request_async(&http).await.unwrap();
    let second = refreshed.refresh_token().expect("a new refresh token").clone();
    assert_ne!(second.secret(), first.secret());

    let home = portal.crash();
    let portal = launch.serve(home, port);
    let after = client.exchange_refresh_token(&second).unwrap().request_async(&http).await;
    assert!(after.is_ok(), "the refresh token survived the restart: {after:?}");
    let info: Result<CoreUserInfoClaims, _> =
        client.user_info(after.unwrap().access_token().clone(), None).unwrap().request_async(&http).await;
    assert!(info.is_ok());
    let replayed = client.exchange_refresh_token(&first).unwrap().request_async(&http).await;
    assert!(replayed.is_err(), "a used refresh token stays used across the restart");
    drop(portal);
}

#[rocket::async_test]
async fn the_sweep_deletes_spent_grants_and_keeps_one_with_a_live_refresh_token() {
    let app = provider().await;
    alice(&app).await;
    exchange(&app, &code_for(&app, "app", "openid", &[]).await).await;
    let offline = exchange(&app, &code_for(&app, "app", "openid offline_access", &[]).await).await;
    let grants =
        |counts: Vec<(&'static str, i64)>| counts.into_iter().find(|(t, _)| *t == "oidc_grants").unwrap().1;
    assert_eq!(grants(app.store().table_counts().await.unwrap()), 2);
    app.clock.advance(2 * 24 * 60 * 60);
    app.auth().sweeper().sweep().await.unwrap();
    assert_eq!(grants(app.store().table_counts().await.unwrap()), 1, "the spent grant is gone");
    let (status, _, _) = token(
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", offline["refresh_token"].as_str().unwrap())],
        Some(basic("app", SECRET)),
    )
    .await;
    assert_eq!(status, Status::Ok, "the grant with a live refresh token stays");
}

/// Whether `secret` authenticates `client` (the revocation endpoint answers 200 for any
/// token once the client is authenticated, 401 otherwise).
async fn authenticates(app: &TestApp, client: &str, secret: &str) -> bool {
    let response = app
        .client
        .post("/oidc/revoke")
        .header(ContentType::Form)
        .header(basic(client, secret))
        .body(form_body(&[("token", "nothing")]))
        .dispatch()
        .await;
    response.status() == Status::Ok
}

#[rocket::async_test]
async fn administrators_add_rotate_and_remove_applications_in_the_console_and_the_api() {
    let app = TestApp::spawn_with(|f| {
        f.merge(("public_url", ISSUER)).merge((
            "oidc",
            json!({ "clients": [{ "client_id": "app", "client_secret": SECRET, "redirect_uris": [APP_CB] }] }),
        ))
    })
    .await
    .with_root()
    .await;
    app.sign_in("root", PASSWORD).await;
    let list = body(app.get("/admin/clients").await).await;
    assert!(list.contains("<code>app</code>") && list.contains("Configuration file"), "{list}");

    // The console: add, and the secret is on the page once.
    let added = app
        .post_form(
            "/admin/clients",
            &[
                ("client_id", "wiki"),
                ("name", "The Wiki"),
                ("redirect_uris", "https://wiki.example.com/cb\n"),
            ],
        )
        .await;
    assert_eq!(added.status(), Status::Created);
    let page = body(added).await;
    let secret = page
        .split("id=\"secret\" class=\"link\" type=\"text\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(authenticates(&app, "wiki", &secret).await);
    // Refusals keep what was typed and say why.
    let taken = app
        .post_form("/admin/clients", &[("client_id", "wiki"), ("redirect_uris", "https://x.example/cb")])
        .await;
    assert_eq!(taken.status(), Status::Conflict);
    let bad = app
        .post_form("/admin/clients", &[("client_id", "w2"), ("redirect_uris", "http://wiki.example.com/cb")])
        .await;
    assert_eq!(bad.status(), Status::UnprocessableEntity);
    assert!(body(bad).await.contains("must use https"));
    // A new secret: the old one stops working.
    let rotated = body(app.post_form("/admin/clients/wiki/secret", &[]).await).await;
    let new_secret =
        rotated.split("type=\"text\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    assert!(!authenticates(&app, "wiki", &secret).await);
    assert!(authenticates(&app, "wiki", &new_secret).await);
    // The configured one cannot be changed here.
    let configured = app.post_form("/admin/clients/app/remove", &[]).await;
    assert_eq!(location(&configured), Some("/admin/clients"));
    assert!(authenticates(&app, "app", SECRET).await);
    // Removed: its secret no longer authenticates.
    assert_eq!(app.post_form("/admin/clients/wiki/remove", &[]).await.status(), Status::SeeOther);
    assert!(!authenticates(&app, "wiki", &new_secret).await);

    // The API: the same operations as JSON.
    let created = app
        .client
        .post("/api/admin/clients")
        .header(ContentType::JSON)
        .header(same_origin())
        .body(
            json!({ "client_id": "spa", "public": true, "redirect_uris": [SPA_CB], "consent": "implicit" })
                .to_string(),
        )
        .dispatch()
        .await;
    assert_eq!(created.status(), Status::Created);
    let created = json(created).await;
    assert_eq!(created["client_secret"], Value::Null);
    assert_eq!(created["client"]["public"], true);
    let listed = json(app.get("/api/admin/clients").await).await;
    let ids: Vec<&str> =
        listed["clients"].as_array().unwrap().iter().map(|c| c["client_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["app", "spa"]);
    assert!(!listed.to_string().contains(SECRET), "no secret in the list");
    let public_secret =
        app.client.post("/api/admin/clients/spa/secret").header(same_origin()).dispatch().await;
    assert_eq!(public_secret.status(), Status::Conflict);
    let gone = app.client.delete("/api/admin/clients/spa").header(same_origin()).dispatch().await;
    assert_eq!(gone.status(), Status::NoContent);
    let again = app.client.delete("/api/admin/clients/spa").header(same_origin()).dispatch().await;
    assert_eq!(again.status(), Status::NotFound);
    let kinds: Vec<String> = app.events().await.into_iter().map(|e| e.0).collect();
    for kind in ["client_added", "client_secret_rotated", "client_removed"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    // Not an administrator: 403.
    app.post_logout().await;
    let hash = app.auth().hasher().hash(PASSWORD.to_owned()).await.unwrap();
    let new =
        portal::store::NewUser { username: "bob", email: None, password_hash: Some(&hash), is_admin: false };
    app.store().create_user(new, START).await.unwrap();
    app.sign_in("bob", PASSWORD).await;
    assert_eq!(app.get("/admin/clients").await.status(), Status::Forbidden);
    assert_eq!(app.get("/api/admin/clients").await.status(), Status::Forbidden);
}

#[rocket::async_test]
async fn a_client_secret_hash_from_the_configuration_costs_argon2_once() {
    let phc = portal::auth::password::hash_blocking(SECRET).unwrap();
    let app = TestApp::spawn_with(|f| {
        f.merge(("public_url", ISSUER)).merge((
            "oidc",
            json!({ "clients": [{ "client_id": "hashed", "client_secret_hash": phc, "redirect_uris": [APP_CB] }] }),
        ))
    })
    .await;
    let before = app.verify_calls();
    assert!(!authenticates(&app, "hashed", "not the secret").await);
    assert!(authenticates(&app, "hashed", SECRET).await);
    let after_first = app.verify_calls();
    assert_eq!(after_first - before, 2, "a wrong and a right secret, each checked with Argon2");
    for _ in 0..3 {
        assert!(authenticates(&app, "hashed", SECRET).await);
    }
    assert_eq!(app.verify_calls(), after_first, "the accepted secret is remembered");
    assert!(!authenticates(&app, "hashed", "still not the secret").await);
}

#[rocket::async_test]
async fn a_password_change_ends_every_refresh_token() {
    let app = provider().await;
    alice(&app).await;
    let tokens = exchange(&app, &code_for(&app, "app", "openid offline_access", &[]).await).await;
    let changed = app
        .post_form(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a brand new password"),
                ("confirm_password", "a brand new password"),
            ],
        )
        .await;
    assert_eq!(changed.status(), Status::SeeOther);
    let (status, _, _) = token(
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())],
        Some(basic("app", SECRET)),
    )
    .await;
    assert_eq!(status, Status::BadRequest);
    assert_eq!(userinfo(&app, tokens["access_token"].as_str().unwrap()).await.0, Status::Unauthorized);
}

#[rocket::async_test]
async fn rotating_the_keys_publishes_the_new_rsa_key_and_keeps_the_old_one_for_a_day() {
    let app = provider().await;
    alice(&app).await;
    let kid_of = |token: &str| jwt_parts(token).0["kid"].as_str().unwrap().to_owned();
    let kids = |jwks: &Value| -> Vec<String> {
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
    };
    let before = exchange(&app, &code_for(&app, "app", "openid", &[]).await).await;
    let old = kid_of(before["id_token"].as_str().unwrap());
    let jwks = json(app.get("/.well-known/jwks.json").await).await;
    let rsa: Vec<&Value> = jwks["keys"].as_array().unwrap().iter().filter(|k| k["kty"] == "RSA").collect();
    assert_eq!(rsa.len(), 1, "{jwks}");
    assert_eq!((rsa[0]["alg"].as_str(), rsa[0]["e"].as_str()), (Some("RS256"), Some("AQAB")));
    let made = app.auth().signer().rotate(app.auth().now()).await.unwrap();
    assert_eq!(made.len(), 2, "an Ed25519 and an RSA key");
    app.clock.advance(61);
    let after = exchange(&app, &code_for(&app, "app", "openid", &[]).await).await;
    let new = kid_of(after["id_token"].as_str().unwrap());
    assert_ne!(new, old);
    let published = kids(&json(app.get("/.well-known/jwks.json").await).await);
    assert!(published.contains(&old) && published.contains(&new), "{published:?}");
    // The old key's access tokens still check until they expire.
    assert_eq!(userinfo(&app, after["access_token"].as_str().unwrap()).await.0, Status::Ok);
    app.clock.advance(24 * 60 * 60 + 61);
    app.auth().signer().rotate(app.auth().now()).await.unwrap();
    app.clock.advance(61);
    let published = kids(&json(app.get("/.well-known/jwks.json").await).await);
    assert!(!published.contains(&old), "a day later the old key is gone: {published:?}");
}
