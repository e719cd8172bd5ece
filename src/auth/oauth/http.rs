//! The HTTP client for talking to providers: no redirects followed (the `oauth2` crate's SSRF
//! warning), connect and total timeouts, a `User-Agent`, and a cap on response size.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};
use reqwest::redirect::Policy;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("the provider did not answer in time")]
    Timeout,
    #[error("the provider's answer was larger than {0} bytes")]
    TooLarge(usize),
    #[error("could not connect to the provider")]
    Connect,
    #[error("the provider answered HTTP {0}")]
    Status(u16),
    #[error("HTTP error: {0}")]
    Other(String),
}

impl From<reqwest::Error> for HttpError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            HttpError::Timeout
        } else if e.is_connect() {
            HttpError::Connect
        } else {
            HttpError::Other(e.without_url().to_string())
        }
    }
}

pub struct ProviderHttp {
    client: reqwest::Client,
    max_bytes: usize,
}

impl ProviderHttp {
    pub fn new(connect_timeout: Duration, timeout: Duration, max_bytes: usize) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .user_agent(concat!("portal/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("could not build the provider HTTP client: {e}"))?;
        Ok(ProviderHttp { client, max_bytes })
    }

    /// Sends a request and reads at most `max_bytes` of the answer.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        let mut response = self
            .client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await?;
        if response.content_length().is_some_and(|n| n > self.max_bytes as u64) {
            return Err(HttpError::TooLarge(self.max_bytes));
        }
        let mut builder = oauth2::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(HttpError::TooLarge(self.max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        builder.body(body).map_err(|e| HttpError::Other(e.to_string()))
    }
}

impl ProviderHttp {
    /// `GET url` for JSON (with a bearer token when given): the body of a 200, or an error
    /// naming the status (never the token).
    pub async fn get(&self, url: &str, bearer: Option<&str>) -> Result<Vec<u8>, HttpError> {
        let mut request = oauth2::http::Request::builder()
            .method(oauth2::http::Method::GET)
            .uri(url)
            .header(oauth2::http::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            let value = oauth2::http::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| HttpError::Other("the access token is not a valid header value".into()))?;
            request = request.header(oauth2::http::header::AUTHORIZATION, value);
        }
        let request = request.body(Vec::new()).map_err(|_| HttpError::Other("not a valid URL".into()))?;
        let response = self.send(request).await?;
        if response.status() != oauth2::http::StatusCode::OK {
            return Err(HttpError::Status(response.status().as_u16()));
        }
        Ok(response.into_body())
    }
}

impl<'c> AsyncHttpClient<'c> for ProviderHttp {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}
