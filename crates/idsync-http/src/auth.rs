//! Authentication of requests: bearer, basic, API key (header or query), and OAuth2
//! client credentials with a cached token refreshed before it expires.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::{AuthConfig, ClientAuthMethod};
use crate::error::{HttpError, certificate_refused};
use crate::redact::redact_url;

/// A token is fetched again this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// Lifetime assumed when the token endpoint gives no `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// Adds credentials to requests. Cheap to share; the OAuth2 token is
/// fetched once for all concurrent requests.
pub struct Authenticator {
    config: AuthConfig,
    api_key_header: Option<HeaderName>,
    token: Mutex<Option<CachedToken>>,
}

struct CachedToken {
    value: SecretString,
    expires: Instant,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").field("config", &self.config).finish()
    }
}

impl Authenticator {
    /// An authenticator for `config`; checks header names now.
    pub fn new(config: AuthConfig) -> Result<Self, HttpError> {
        let api_key_header = match &config {
            AuthConfig::ApiKey { header, .. } => Some(HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                HttpError::Config(format!("API key header name {header:?} is not a valid header name"))
            })?),
            _ => None,
        };
        Ok(Authenticator {
            config,
            api_key_header,
            token: Mutex::new(None),
        })
    }

    /// True when a 401 may be cured by fetching a new token.
    pub fn refreshable(&self) -> bool {
        matches!(self.config, AuthConfig::Oauth2ClientCredentials { .. })
    }

    /// Forgets the cached token (after a 401).
    pub async fn invalidate(&self) {
        *self.token.lock().await = None;
    }

    /// Adds the credentials to a request; `http` fetches an OAuth2 token when needed.
    pub async fn apply(&self, http: &reqwest::Client, request: RequestBuilder) -> Result<RequestBuilder, HttpError> {
        Ok(match &self.config {
            AuthConfig::None => request,
            AuthConfig::Bearer { token } => request.header(reqwest::header::AUTHORIZATION, bearer(token)?),
            AuthConfig::Basic { username, password } => request.basic_auth(username, Some(password.expose_secret())),
            AuthConfig::ApiKey { key, .. } => match &self.api_key_header {
                Some(name) => request.header(name.clone(), sensitive(key.expose_secret())?),
                None => request,
            },
            AuthConfig::ApiKeyQuery { param, key } => request.query(&[(param.as_str(), key.expose_secret())]),
            AuthConfig::Oauth2ClientCredentials { .. } => {
                let token = self.oauth2_token(http).await?;
                request.header(reqwest::header::AUTHORIZATION, bearer(&token)?)
            }
        })
    }

    async fn oauth2_token(&self, http: &reqwest::Client) -> Result<SecretString, HttpError> {
        let AuthConfig::Oauth2ClientCredentials {
            token_url,
            client_id,
            client_secret,
            scope,
            client_auth,
        } = &self.config
        else {
            return Err(HttpError::Config("not an OAuth2 configuration".into()));
        };
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref()
            && t.expires > Instant::now() + EXPIRY_MARGIN
        {
            return Ok(t.value.clone());
        }
        let mut request = http
            .post(token_url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if let Some(scope) = scope {
                form.append_pair("scope", scope);
            }
            match client_auth {
                ClientAuthMethod::Basic => {
                    request =
                        request.basic_auth(form_encode(client_id), Some(form_encode(client_secret.expose_secret())));
                }
                ClientAuthMethod::Body => {
                    form.append_pair("client_id", client_id);
                    form.append_pair("client_secret", client_secret.expose_secret());
                }
            }
            form.finish()
        };
        let url = redact_url(token_url);
        let started = Instant::now();
        let response = request
            .body(form)
            .send()
            .await
            .map_err(|e| match certificate_refused(&e) {
                Some(reason) => HttpError::Certificate {
                    method: reqwest::Method::POST,
                    url: url.clone(),
                    reason,
                },
                None => HttpError::Token {
                    url: url.clone(),
                    message: if e.is_timeout() {
                        "timed out".into()
                    } else {
                        "connection failed".into()
                    },
                    status: None,
                },
            })?;
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        tracing::debug!(url = %url, status = status.as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "oauth2 token request");
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            access_token: Option<String>,
            expires_in: Option<serde_json::Value>,
            error: Option<String>,
            error_description: Option<String>,
        }
        let parsed: Option<TokenResponse> = serde_json::from_slice(&body).ok();
        if status != StatusCode::OK {
            let message = match &parsed {
                Some(TokenResponse {
                    error: Some(code),
                    error_description,
                    ..
                }) => match error_description {
                    Some(d) => format!("HTTP {status}: {code}: {d}"),
                    None => format!("HTTP {status}: {code}"),
                },
                _ => format!("HTTP {status}"),
            };
            return Err(HttpError::Token {
                url,
                message,
                status: Some(status),
            });
        }
        let Some(TokenResponse {
            access_token: Some(access_token),
            expires_in,
            ..
        }) = parsed
        else {
            return Err(HttpError::Token {
                url,
                message: "the answer has no access_token".into(),
                status: Some(status),
            });
        };
        let lifetime = match expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64().map(Duration::from_secs),
            Some(serde_json::Value::String(s)) => s.parse().ok().map(Duration::from_secs),
            _ => None,
        }
        .unwrap_or(DEFAULT_LIFETIME);
        let value = SecretString::from(access_token);
        *cached = Some(CachedToken {
            value: value.clone(),
            expires: Instant::now() + lifetime,
        });
        Ok(value)
    }
}

/// `application/x-www-form-urlencoded` encoding of a client id or secret
/// before Basic auth (RFC 6749 §2.3.1).
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn sensitive(value: &str) -> Result<HeaderValue, HttpError> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| HttpError::Config("a credential holds characters not allowed in a header".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

fn bearer(token: &SecretString) -> Result<HeaderValue, HttpError> {
    sensitive(&format!("Bearer {}", token.expose_secret()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_api_key_in_the_query_is_added_at_send_time_and_never_debug_printed() {
        let auth = Authenticator::new(AuthConfig::ApiKeyQuery {
            param: "api_key".into(),
            key: SecretString::from("s3cret"),
        })
        .unwrap();
        assert!(!format!("{auth:?}").contains("s3cret"));
        let http = reqwest::Client::new();
        let request = auth
            .apply(&http, http.get("http://127.0.0.1/contacts?limit=5"))
            .await
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(request.url().query(), Some("limit=5&api_key=s3cret"));
    }
}
