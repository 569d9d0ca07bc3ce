//! The HTTP client every HTTP adapter uses: one `send` that authenticates,
//! rate-limits, retries what is safe to retry, and traces each request
//! with secrets redacted.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use url::Url;

use crate::auth::Authenticator;
use crate::config::{HttpConfig, RetryConfig};
use crate::error::{HttpError, certificate_refused, classify};
use crate::paginate::{Page, Pager, Pagination};
use crate::ratelimit::RateLimiter;
use crate::redact::redact_url;
use crate::retry::{backoff, parse_retry_after};

/// A configured HTTP client. Cheap to clone (shared state: connection pool,
/// OAuth2 token, rate limiter).
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    auth: Authenticator,
    retry: RetryConfig,
    limiter: RateLimiter,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("auth", &self.inner.auth)
            .field("retry", &self.inner.retry)
            .field("limiter", &self.inner.limiter)
            .finish()
    }
}

/// One request: method, URL, headers, body, and whether it is idempotent
/// (may be sent again after it possibly reached the server).
#[derive(Clone)]
pub struct Request {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Bytes>,
    idempotent: bool,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &redact_url(&self.url))
            .field("body_bytes", &self.body.as_ref().map(Bytes::len))
            .field("idempotent", &self.idempotent)
            .finish()
    }
}

impl Request {
    /// A request without body; GET, HEAD, OPTIONS, PUT, PATCH and DELETE
    /// count as idempotent, POST does not (STYLE §9).
    pub fn new(method: Method, url: Url) -> Self {
        let idempotent = method != Method::POST;
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            idempotent,
        }
    }

    /// A GET.
    pub fn get(url: Url) -> Self {
        Request::new(Method::GET, url)
    }

    /// Sets a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Sets a JSON body with this content type (`application/json`, `application/scim+json`).
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T, content_type: &str) -> Result<Self, HttpError> {
        let bytes = serde_json::to_vec(body).map_err(|e| HttpError::Config(format!("cannot encode a body: {e}")))?;
        let content_type = HeaderValue::from_str(content_type)
            .map_err(|_| HttpError::Config(format!("{content_type:?} is not a valid content type")))?;
        self.body = Some(Bytes::from(bytes));
        self.headers.insert(CONTENT_TYPE, content_type);
        Ok(self)
    }

    /// Sets a raw body and its content type.
    pub fn body(mut self, body: impl Into<Bytes>, content_type: HeaderValue) -> Self {
        self.body = Some(body.into());
        self.headers.insert(CONTENT_TYPE, content_type);
        self
    }

    /// Overrides whether the request may be sent twice.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Replaces the URL (paging).
    pub fn with_url(mut self, url: Url) -> Self {
        self.url = url;
        self
    }
}

/// A successful (2xx) answer, read whole.
#[derive(Clone)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    method: Method,
    url: Url,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("url", &redact_url(&self.url))
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl Response {
    /// Decodes the JSON body.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| self.decode_error(e.to_string()))
    }

    /// A header's value as text.
    pub fn header(&self, name: impl reqwest::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A [`HttpError::Decode`] about this response.
    pub fn decode_error(&self, message: impl Into<String>) -> HttpError {
        HttpError::Decode {
            method: self.method.clone(),
            url: redact_url(&self.url),
            message: message.into(),
        }
    }
}

impl HttpClient {
    /// Builds a client: timeouts, TLS (a CA file, verification on unless
    /// turned off, which logs a warning), proxy (none unless configured),
    /// auth, retries and rate limit. Redirects are not followed.
    pub fn new(config: &HttpConfig) -> Result<Self, HttpError> {
        // No redirects: a redirect to another host would carry an API-key
        // header along (reqwest strips only Authorization and cookies), and
        // an API that moved is a configuration matter. A 3xx is an error.
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout())
            .connect_timeout(config.connect_timeout())
            .user_agent(
                config
                    .user_agent
                    .clone()
                    .unwrap_or_else(|| concat!("idsync/", env!("CARGO_PKG_VERSION")).to_owned()),
            );
        if !config.tls.verify {
            tracing::warn!("TLS certificate verification is turned off: the server's identity is not checked");
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        if let Some(path) = &config.tls.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| HttpError::Config(format!("cannot read CA file {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| HttpError::Config(format!("CA file {} is not PEM: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(HttpError::Config(format!(
                    "CA file {} holds no certificate",
                    path.display()
                )));
            }
            builder = builder.tls_certs_merge(certs);
        }
        builder = match &config.proxy {
            Some(proxy) => builder.proxy(
                reqwest::Proxy::all(proxy.clone())
                    .map_err(|e| HttpError::Config(format!("bad proxy {}: {e}", redact_url(proxy))))?,
            ),
            None => builder.no_proxy(),
        };
        let http = builder
            .build()
            .map_err(|e| HttpError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpClient {
            inner: Arc::new(Inner {
                http,
                auth: Authenticator::new(config.auth.clone())?,
                retry: config.retry.clone(),
                limiter: RateLimiter::new(config.rate_limit.as_ref()),
            }),
        })
    }

    /// The rate limiter shared by this client's requests.
    pub fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// Sends a request and reads the answer. A non-2xx answer is an
    /// [`HttpError::Status`] holding the body. Transient failures (connection
    /// errors, timeouts, 408, 429, 5xx) are retried with backoff and jitter,
    /// honouring `Retry-After`, but a non-idempotent request is sent again
    /// only when it surely did not reach the server (connection refused) or
    /// the server refused it (429). A 401 with OAuth2 fetches a new token
    /// and tries once more.
    pub async fn send(&self, request: Request) -> Result<Response, HttpError> {
        let Inner {
            http,
            auth,
            retry,
            limiter,
        } = &*self.inner;
        let redacted = redact_url(&request.url);
        let mut retries = 0u32;
        let mut refreshed = false;
        loop {
            limiter.acquire().await;
            let mut builder = http
                .request(request.method.clone(), request.url.clone())
                .headers(request.headers.clone());
            if let Some(body) = &request.body {
                builder = builder.body(body.clone());
            }
            let builder = auth.apply(http, builder).await?;
            let started = Instant::now();
            let outcome = match builder.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    response.bytes().await.map(|body| (status, headers, body))
                }
                Err(e) => Err(e),
            };
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match outcome {
                Ok((status, headers, body)) => {
                    tracing::debug!(method = %request.method, url = %redacted, status = status.as_u16(), attempt = retries + 1, elapsed_ms, "http request");
                    if status.is_success() {
                        limiter.succeeded();
                        return Ok(Response {
                            status,
                            headers,
                            body,
                            method: request.method,
                            url: request.url,
                        });
                    }
                    let retry_after = headers
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    if status == StatusCode::UNAUTHORIZED && auth.refreshable() && !refreshed {
                        refreshed = true;
                        auth.invalidate().await;
                        continue;
                    }
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        limiter.throttled(retry_after);
                    }
                    let (_, transient) = classify(status);
                    let safe = request.idempotent || status == StatusCode::TOO_MANY_REQUESTS;
                    let waitable = retry_after.is_none_or(|d| d <= Duration::from_millis(retry.max_retry_after_ms));
                    if transient && safe && waitable && retries < retry.max_retries {
                        let wait = backoff(retry, retries, retry_after);
                        tracing::info!(method = %request.method, url = %redacted, status = status.as_u16(), retry = retries + 1, wait_ms = wait.as_millis() as u64, "retrying");
                        tokio::time::sleep(wait).await;
                        retries += 1;
                        continue;
                    }
                    return Err(HttpError::Status {
                        method: request.method,
                        url: redacted,
                        status,
                        retry_after,
                        body,
                        retries,
                    });
                }
                Err(e) => {
                    if let Some(reason) = certificate_refused(&e) {
                        tracing::debug!(method = %request.method, url = %redacted, %reason, "TLS certificate refused");
                        return Err(HttpError::Certificate {
                            method: request.method,
                            url: redacted,
                            reason,
                        });
                    }
                    let what = if e.is_connect() {
                        "connection failed"
                    } else if e.is_timeout() {
                        "timed out"
                    } else if e.is_body() || e.is_decode() {
                        "reading the answer failed"
                    } else {
                        "request failed"
                    };
                    tracing::debug!(method = %request.method, url = %redacted, error = what, attempt = retries + 1, elapsed_ms, "http request failed");
                    // A refused connection never reached the server; anything else may have.
                    let safe = request.idempotent || e.is_connect();
                    if safe && retries < retry.max_retries {
                        let wait = backoff(retry, retries, None);
                        tracing::info!(method = %request.method, url = %redacted, error = what, retry = retries + 1, wait_ms = wait.as_millis() as u64, "retrying");
                        tokio::time::sleep(wait).await;
                        retries += 1;
                        continue;
                    }
                    return Err(HttpError::Transport {
                        method: request.method,
                        url: redacted,
                        what,
                        retries,
                        source: e.without_url(),
                    });
                }
            }
        }
    }

    /// Sends `request` and decodes its JSON answer.
    pub async fn send_json<T: DeserializeOwned>(&self, request: Request) -> Result<T, HttpError> {
        self.send(request).await?.json()
    }

    /// Streams the items of a paged listing. `request` is the first page's
    /// request without paging parameters; `extract` takes the items of one
    /// page plus the announced total and next cursor, when the API gives them.
    pub fn paginate<'a, T, F>(
        &'a self,
        request: Request,
        pagination: Pagination,
        extract: F,
    ) -> BoxStream<'a, Result<T, HttpError>>
    where
        T: Send + 'a,
        F: FnMut(&Response) -> Result<Extracted<T>, HttpError> + Send + 'a,
    {
        let pager = Pager::new(pagination, request.url.clone());
        stream::try_unfold(
            (Some((pager, request)), extract),
            move |(state, mut extract)| async move {
                let Some((mut pager, request)) = state else {
                    return Ok(None);
                };
                let response = self.send(request.clone().with_url(pager.url().clone())).await?;
                let page = extract(&response)?;
                let more = pager.advance(Page {
                    items: page.items.len(),
                    total: page.total,
                    next_cursor: page.next_cursor.as_deref(),
                    headers: Some(&response.headers),
                });
                let next = more.then_some((pager, request));
                Ok(Some((page.items, (next, extract))))
            },
        )
        .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }
}

/// What [`HttpClient::paginate`]'s `extract` finds in one page.
#[derive(Debug)]
pub struct Extracted<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// The total the API announced, if any.
    pub total: Option<u64>,
    /// The next cursor, for cursor paging.
    pub next_cursor: Option<String>,
}
