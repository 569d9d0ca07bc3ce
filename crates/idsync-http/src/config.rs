//! Configuration of an HTTP client: timeouts, TLS, proxy, auth, retries and
//! rate limit. Every struct is serde with `deny_unknown_fields` (a typo is a
//! configuration error) and a hand-written `Debug` that never prints a secret.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

/// How an adapter reaches its HTTP API.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Whole-request timeout in milliseconds (default 30 000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Connect timeout in milliseconds (default 10 000).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// TLS options (verification on by default).
    #[serde(default)]
    pub tls: TlsOptions,
    /// An HTTP(S) proxy for every request; `None` uses no proxy at all
    /// (the environment's `HTTPS_PROXY` is ignored, so tests stay on loopback).
    #[serde(default)]
    pub proxy: Option<Url>,
    /// The `User-Agent` header (default `idsync/<version>`).
    #[serde(default)]
    pub user_agent: Option<String>,
    /// How requests authenticate.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Retries of transient failures.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Client-side rate limit; `None` = unlimited until the server answers 429.
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
}

fn default_timeout_ms() -> u64 {
    30_000
}

fn default_connect_timeout_ms() -> u64 {
    10_000
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            timeout_ms: default_timeout_ms(),
            connect_timeout_ms: default_connect_timeout_ms(),
            tls: TlsOptions::default(),
            proxy: None,
            user_agent: None,
            auth: AuthConfig::None,
            retry: RetryConfig::default(),
            rate_limit: None,
        }
    }
}

impl HttpConfig {
    /// A default config with this auth.
    pub fn with_auth(auth: AuthConfig) -> Self {
        HttpConfig {
            auth,
            ..HttpConfig::default()
        }
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("timeout_ms", &self.timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("tls", &self.tls)
            .field("proxy", &self.proxy.as_ref().map(crate::redact_url))
            .field("user_agent", &self.user_agent)
            .field("auth", &self.auth)
            .field("retry", &self.retry)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

/// TLS options.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsOptions {
    /// Verify the server's certificate and name (default true). Turning it
    /// off logs a warning each time a client is built.
    #[serde(default = "yes")]
    pub verify: bool,
    /// Extra trusted CA certificates (PEM, one or many), added to the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn yes() -> bool {
    true
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            verify: true,
            ca_file: None,
        }
    }
}

/// How requests authenticate.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", deny_unknown_fields)]
pub enum AuthConfig {
    /// No authentication.
    #[default]
    None,
    /// `Authorization: Bearer <token>` (SCIM).
    Bearer {
        /// The token.
        token: SecretString,
    },
    /// HTTP Basic.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: SecretString,
    },
    /// An API key in a header (JumpCloud: `x-api-key`).
    ApiKey {
        /// The header name.
        header: String,
        /// The key.
        key: SecretString,
    },
    /// An API key in a query parameter (`?api_key=…`). Error texts and
    /// logs never show it: URLs are redacted, and the parameter is added
    /// only when the request is sent.
    ApiKeyQuery {
        /// The query parameter's name.
        param: String,
        /// The key.
        key: SecretString,
    },
    /// OAuth 2.0 client credentials (RFC 6749 §4.4); the token is cached
    /// until shortly before it expires, and fetched again after a 401.
    Oauth2ClientCredentials {
        /// The token endpoint.
        token_url: Url,
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: SecretString,
        /// Space-separated scopes.
        #[serde(default)]
        scope: Option<String>,
        /// How the client authenticates at the token endpoint (default: HTTP Basic).
        #[serde(default)]
        client_auth: ClientAuthMethod,
    },
}

/// How an OAuth2 client sends its credentials to the token endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// `client_secret_basic` (RFC 6749 §2.3.1, which every server must support).
    #[default]
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    Body,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthConfig::None => f.write_str("None"),
            AuthConfig::Bearer { .. } => f.write_str("Bearer { token: [redacted] }"),
            AuthConfig::Basic { username, .. } => write!(f, "Basic {{ username: {username:?}, password: [redacted] }}"),
            AuthConfig::ApiKey { header, .. } => write!(f, "ApiKey {{ header: {header:?}, key: [redacted] }}"),
            AuthConfig::ApiKeyQuery { param, .. } => write!(f, "ApiKeyQuery {{ param: {param:?}, key: [redacted] }}"),
            AuthConfig::Oauth2ClientCredentials {
                token_url,
                client_id,
                scope,
                client_auth,
                ..
            } => write!(
                f,
                "Oauth2ClientCredentials {{ token_url: {:?}, client_id: {client_id:?}, client_secret: [redacted], scope: {scope:?}, client_auth: {client_auth:?} }}",
                crate::redact_url(token_url)
            ),
        }
    }
}

/// Retries of transient failures (timeouts, connection errors, 429, 5xx)
/// with exponential backoff and full jitter, honouring `Retry-After`.
///
/// Only idempotent requests are retried after they may have reached the
/// server; a non-idempotent one (POST) is retried only when it surely did
/// not: a refused connection or a 429.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Retries after the first attempt (default 4; 0 turns retries off).
    pub max_retries: u32,
    /// The first backoff in milliseconds (default 200), doubled each retry.
    pub base_ms: u64,
    /// The longest backoff in milliseconds (default 10 000).
    pub max_backoff_ms: u64,
    /// The longest `Retry-After` waited for in place, in milliseconds
    /// (default 60 000); a longer one fails the request as transient with
    /// the hint, for the engine to retry on a later run.
    pub max_retry_after_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_retries: 4,
            base_ms: 200,
            max_backoff_ms: 10_000,
            max_retry_after_ms: 60_000,
        }
    }
}

/// A client-side rate limit. After a 429 the rate halves (down to
/// `min_per_second`) and climbs back by 10 % per successful request.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// Requests per second at most.
    pub per_second: f64,
    /// The floor the rate may fall to after 429s (default `per_second / 16`).
    #[serde(default)]
    pub min_per_second: Option<f64>,
}

impl RateLimitConfig {
    /// At most `per_second` requests per second, falling to the default
    /// floor after 429s.
    pub fn new(per_second: f64) -> Self {
        RateLimitConfig {
            per_second,
            min_per_second: None,
        }
    }
}
