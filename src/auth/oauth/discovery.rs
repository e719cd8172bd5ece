//! An OpenID provider's discovery document and signing keys: fetched at start (retried in
//! the background while the provider is unreachable), cached, refreshed hourly, and the keys
//! re-read when a token names a `kid` the portal has not seen (key rotation). JWTs are
//! checked here too: signature by one of those keys, with an asymmetric algorithm only.

use std::sync::{Arc, Mutex, RwLock};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::http::ProviderHttp;
use super::OAuthError;

/// Documents (and keys) are re-read this often.
pub const METADATA_TTL_SECS: i64 = 3600;
/// A token naming an unknown `kid` re-reads the keys at most this often, so nobody can
/// make the portal hammer the provider with made-up key ids.
const KEY_REFETCH_SECS: i64 = 10;
/// Seconds of clock difference tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;
/// Microsoft's multi-tenant documents name this in their issuer.
const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// The fields of a discovery document the portal uses; the rest is ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: String,
    pub end_session_endpoint: Option<String>,
    /// RFC 9207: the provider adds `iss` to its authorization responses.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

/// How the ID tokens' `iss` is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerCheck {
    /// Equal to this.
    Exact(String),
    /// Microsoft's multi-tenant endpoint: the document's issuer with `{tenantid}` replaced
    /// by the token's own `tid` claim.
    Tenant(String),
}

impl IssuerCheck {
    /// Whether `iss` is right for a token whose `tid` is `tid`.
    pub fn accepts(&self, iss: &str, tid: Option<&str>) -> bool {
        match self {
            IssuerCheck::Exact(expected) => iss == expected,
            IssuerCheck::Tenant(template) => tid
                .filter(|tid| is_tenant_id(tid))
                .is_some_and(|tid| iss == template.replace(TENANT_PLACEHOLDER, tid)),
        }
    }

    /// Whether `iss` is one of this provider's (an authorization response's `iss`, which
    /// has no `tid` beside it).
    pub fn names(&self, iss: &str) -> bool {
        match self {
            IssuerCheck::Exact(expected) => iss == expected,
            IssuerCheck::Tenant(template) => {
                let Some((before, after)) = template.split_once(TENANT_PLACEHOLDER) else { return false };
                iss.strip_prefix(before).and_then(|rest| rest.strip_suffix(after)).is_some_and(is_tenant_id)
            }
        }
    }
}

/// A Microsoft tenant id: a GUID.
fn is_tenant_id(tid: &str) -> bool {
    tid.len() == 36 && tid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// A document checked against the configured issuer, with its keys.
#[derive(Clone)]
pub struct Discovered {
    pub fetched: i64,
    pub metadata: Arc<Metadata>,
    pub issuer: IssuerCheck,
    pub authorize: Url,
    pub token: Url,
    pub userinfo: Option<Url>,
    pub end_session: Option<Url>,
    pub keys: Arc<Vec<Jwk>>,
    /// The algorithms ID tokens may use: the document's, less `none` and the HMAC ones.
    pub algorithms: Arc<Vec<Algorithm>>,
}

/// One provider's cached document, and the lock that lets one fetch run at a time.
pub struct Discovery {
    slug: String,
    issuer: String,
    http: Arc<ProviderHttp>,
    current: RwLock<Option<Discovered>>,
    fetching: tokio::sync::Mutex<()>,
    last_key_refetch: Mutex<i64>,
}

impl Discovery {
    pub fn new(slug: &str, issuer: &str, http: Arc<ProviderHttp>) -> Discovery {
        Discovery {
            slug: slug.to_owned(),
            issuer: issuer.to_owned(),
            http,
            current: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
            last_key_refetch: Mutex::new(i64::MIN),
        }
    }

    /// The configured issuer's origin.
    pub fn issuer_origin(&self) -> Option<String> {
        Url::parse(&self.issuer).ok().map(|url| url.origin().ascii_serialization())
    }

    /// The cached document, if discovery ever succeeded (no fetch is started for this).
    pub fn cached(&self) -> Option<Discovered> {
        self.current.read().ok().and_then(|current| current.clone())
    }

    /// The document: the cached one while it is fresh; otherwise fetched (one fetch at a
    /// time), and a failed refresh keeps the old one.
    pub async fn get(&self, now: i64) -> Result<Discovered, OAuthError> {
        if let Some(found) = self.cached().filter(|d| now - d.fetched < METADATA_TTL_SECS) {
            return Ok(found);
        }
        let _one_at_a_time = self.fetching.lock().await;
        // Someone else may have fetched it while this one waited.
        if let Some(found) = self.cached().filter(|d| now - d.fetched < METADATA_TTL_SECS) {
            return Ok(found);
        }
        match self.fetch(now).await {
            Ok(found) => {
                self.store(found.clone());
                Ok(found)
            }
            Err(e) => match self.cached() {
                Some(stale) => {
                    log::warn!("{}: discovery refresh failed ({e}); keeping the cached document", self.slug);
                    Ok(stale)
                }
                None => Err(e),
            },
        }
    }

    fn store(&self, found: Discovered) {
        if let Ok(mut current) = self.current.write() {
            *current = Some(found);
        }
    }

    async fn fetch(&self, now: i64) -> Result<Discovered, OAuthError> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
        let body = self.http.get(&url, None).await?;
        let metadata: Metadata = serde_json::from_slice(&body)
            .map_err(|e| OAuthError::Discovery(format!("the discovery document does not parse: {e}")))?;
        let mut found = check_metadata(&self.issuer, metadata)?;
        found.keys = Arc::new(self.fetch_keys(&found.metadata.jwks_uri).await?);
        found.fetched = now;
        log::info!("{}: discovered {} ({} signing keys)", self.slug, found.metadata.issuer, found.keys.len());
        Ok(found)
    }

    async fn fetch_keys(&self, jwks_uri: &str) -> Result<Vec<Jwk>, OAuthError> {
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<Value>,
        }
        let body = self.http.get(jwks_uri, None).await?;
        let set: Set = serde_json::from_slice(&body)
            .map_err(|_| OAuthError::Discovery("the JWKS is not a key set".into()))?;
        // A key of a type the portal cannot use (an encryption key, a new kty) is skipped,
        // not a reason to drop the others.
        Ok(set.keys.into_iter().filter_map(|key| serde_json::from_value::<Jwk>(key).ok()).collect())
    }

    /// Re-reads the keys because a token named `kid`, unless that happened within the last
    /// few seconds. True when `kid` is now known.
    async fn refetch_keys_for(&self, kid: &str, now: i64) -> bool {
        {
            let Ok(mut last) = self.last_key_refetch.lock() else { return false };
            if now.saturating_sub(*last) < KEY_REFETCH_SECS {
                return false;
            }
            *last = now;
        }
        let Some(mut current) = self.cached() else { return false };
        match self.fetch_keys(&current.metadata.jwks_uri).await {
            Ok(keys) => {
                let known = keys.iter().any(|k| k.common.key_id.as_deref() == Some(kid));
                log::info!(
                    "{}: re-read the signing keys for an unknown kid ({} keys)",
                    self.slug,
                    keys.len()
                );
                current.keys = Arc::new(keys);
                self.store(current);
                known
            }
            Err(e) => {
                log::warn!("{}: could not re-read the signing keys: {e}", self.slug);
                false
            }
        }
    }

    /// Checks a JWT's signature with the provider's keys and its `exp`/`nbf` (with
    /// `audience` as its `aud`), and returns its claims. `iss` and the rest are the caller's.
    pub async fn verify<T: DeserializeOwned>(
        &self,
        jwt: &str,
        audience: &str,
        now: i64,
    ) -> Result<T, OAuthError> {
        let bad = |why: &str| OAuthError::IdToken(why.to_owned());
        let discovered = self.get(now).await?;
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| bad("not a JWT"))?;
        if !discovered.algorithms.contains(&header.alg) {
            return Err(bad("signed with an algorithm the provider does not list (or an HMAC one)"));
        }
        let mut keys = discovered.keys;
        if let Some(kid) = header.kid.as_deref() {
            if !keys.iter().any(|k| k.common.key_id.as_deref() == Some(kid)) {
                if !self.refetch_keys_for(kid, now).await {
                    return Err(bad("signed with a key the provider does not publish"));
                }
                keys = self.cached().map(|d| d.keys).unwrap_or_default();
            }
        }
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let candidates = keys.iter().filter(|key| {
            header.kid.as_deref().is_none_or(|kid| key.common.key_id.as_deref() == Some(kid))
                && usable_for(key, header.alg)
        });
        let mut last = bad("no key of the provider fits the token");
        for key in candidates {
            let Ok(decoding) = DecodingKey::from_jwk(key) else { continue };
            match jsonwebtoken::decode::<T>(jwt, &decoding, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => last = bad(&jwt_error(&e)),
            }
        }
        Err(last)
    }
}

/// A signing key for `alg`: not an HMAC secret, meant for signatures, and of the named
/// algorithm when it names one.
fn usable_for(key: &Jwk, alg: Algorithm) -> bool {
    let asymmetric = !matches!(key.algorithm, AlgorithmParameters::OctetKey(_));
    let signing = !matches!(key.common.public_key_use, Some(PublicKeyUse::Encryption));
    let named = key.common.key_algorithm.is_none_or(|named| named.to_string() == format!("{alg:?}"));
    asymmetric && signing && named
}

/// Why a JWT failed, in words that carry none of it.
fn jwt_error(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidSignature => "the signature does not verify".into(),
        ErrorKind::ExpiredSignature => "expired".into(),
        ErrorKind::ImmatureSignature => "not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => "issued for another client (aud)".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("no {claim} claim"),
        ErrorKind::InvalidAlgorithm => "the key does not fit the algorithm".into(),
        _ => "not a valid token".into(),
    }
}

/// The asymmetric algorithms a provider may sign with.
fn signing_algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Checks a document against the configured issuer (OpenID Connect Discovery §4.3: they
/// must be equal; Microsoft's `{tenantid}` template is the one exception) and parses its
/// endpoints. An `https` issuer's endpoints must be `https` too.
pub fn check_metadata(configured: &str, metadata: Metadata) -> Result<Discovered, OAuthError> {
    let bad = |why: String| OAuthError::Discovery(why);
    let issuer = if metadata.issuer == configured {
        IssuerCheck::Exact(metadata.issuer.clone())
    } else if metadata.issuer.contains(TENANT_PLACEHOLDER) && is_multi_tenant(configured) {
        IssuerCheck::Tenant(metadata.issuer.clone())
    } else if metadata.issuer.contains(TENANT_PLACEHOLDER) {
        return Err(bad(format!(
            "the document's issuer {:?} is a multi-tenant template; set issuer to Microsoft's \
             .../common/v2.0, .../organizations/v2.0 or a tenant's own issuer",
            metadata.issuer
        )));
    } else {
        return Err(bad(format!(
            "the document names issuer {:?}, not the configured {configured:?} (they must be equal)",
            metadata.issuer
        )));
    };
    let secure = configured.starts_with("https://");
    let endpoint = |name: &str, value: &str| -> Result<Url, OAuthError> {
        let url = Url::parse(value).map_err(|_| bad(format!("{name} is not a URL")))?;
        let scheme_ok =
            if secure { url.scheme() == "https" } else { matches!(url.scheme(), "http" | "https") };
        if !scheme_ok {
            return Err(bad(format!("{name} must be https, as the issuer is")));
        }
        Ok(url)
    };
    let authorize = endpoint("authorization_endpoint", &metadata.authorization_endpoint)?;
    let token = endpoint(
        "token_endpoint",
        metadata.token_endpoint.as_deref().ok_or_else(|| bad("the document has no token_endpoint".into()))?,
    )?;
    endpoint("jwks_uri", &metadata.jwks_uri)?;
    let userinfo =
        metadata.userinfo_endpoint.as_deref().map(|u| endpoint("userinfo_endpoint", u)).transpose()?;
    let end_session =
        metadata.end_session_endpoint.as_deref().map(|u| endpoint("end_session_endpoint", u)).transpose()?;
    if let Some(methods) = &metadata.code_challenge_methods_supported {
        if !methods.iter().any(|m| m == "S256") {
            return Err(bad("the provider does not support PKCE with S256".into()));
        }
    }
    // OpenID Connect's default when the document lists none is RS256.
    let mut algorithms: Vec<Algorithm> =
        metadata.id_token_signing_alg_values_supported.iter().filter_map(|a| signing_algorithm(a)).collect();
    if metadata.id_token_signing_alg_values_supported.is_empty() {
        algorithms.push(Algorithm::RS256);
    }
    if algorithms.is_empty() {
        return Err(bad("the provider signs ID tokens with no algorithm the portal accepts".into()));
    }
    Ok(Discovered {
        fetched: 0,
        metadata: Arc::new(metadata),
        issuer,
        authorize,
        token,
        userinfo,
        end_session,
        keys: Arc::new(Vec::new()),
        algorithms: Arc::new(algorithms),
    })
}

/// Microsoft's endpoints for more than one tenant.
fn is_multi_tenant(configured: &str) -> bool {
    ["/common/", "/organizations/", "/consumers/"]
        .iter()
        .any(|segment| format!("{}/", configured.trim_end_matches('/')).contains(segment))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Metadata {
        let path = format!("{}/tests/data/discovery/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn keycloaks_document_parses_with_its_path_issuer_and_iss_parameter() {
        let found = check_metadata("https://sso.example.org/realms/staff", fixture("keycloak")).unwrap();
        assert_eq!(found.issuer, IssuerCheck::Exact("https://sso.example.org/realms/staff".into()));
        assert!(found.metadata.authorization_response_iss_parameter_supported);
        assert!(found.end_session.is_some());
        assert!(found.algorithms.contains(&Algorithm::RS256));
        assert!(!found.algorithms.contains(&Algorithm::HS256), "HMAC is never accepted");
    }

    #[test]
    fn gitlabs_document_parses_without_logout_endpoints() {
        let found = check_metadata("https://gitlab.com", fixture("gitlab")).unwrap();
        assert_eq!(found.token.as_str(), "https://gitlab.com/oauth/token");
        assert!(!found.metadata.authorization_response_iss_parameter_supported);
    }

    #[test]
    fn microsofts_common_endpoint_checks_the_issuer_by_the_tokens_tenant() {
        let common = "https://login.microsoftonline.com/common/v2.0";
        let found = check_metadata(common, fixture("microsoft-common")).unwrap();
        let tid = "9188040d-6c67-4c5b-b112-36a304b66dad";
        let iss = format!("https://login.microsoftonline.com/{tid}/v2.0");
        assert!(found.issuer.accepts(&iss, Some(tid)));
        assert!(found.issuer.names(&iss));
        let other = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        assert!(!found.issuer.accepts(&iss, Some(other)), "the issuer must be the token's own tenant's");
        assert!(!found.issuer.accepts(&iss, None));
        assert!(!found.issuer.accepts("https://evil.example/x/v2.0", Some(tid)));
        assert_eq!(found.userinfo.unwrap().host_str(), Some("graph.microsoft.com"));

        let err = check_metadata("https://login.microsoftonline.com/x/v2.0", fixture("microsoft-common"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("multi-tenant"), "{err}");
    }

    #[test]
    fn a_tenants_own_document_is_an_exact_issuer() {
        let issuer = "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0";
        let found = check_metadata(issuer, fixture("microsoft-tenant")).unwrap();
        assert_eq!(found.issuer, IssuerCheck::Exact(issuer.into()));
    }

    #[test]
    fn a_document_for_another_issuer_or_with_plain_http_endpoints_is_refused() {
        let mut metadata = fixture("gitlab");
        assert!(check_metadata("https://gitlab.example.org", metadata.clone()).is_err());
        metadata.token_endpoint = Some("http://gitlab.com/oauth/token".into());
        let err = check_metadata("https://gitlab.com", metadata).err().unwrap();
        assert!(err.to_string().contains("https"), "{err}");
    }
}
