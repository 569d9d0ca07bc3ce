//! Configuration of the JumpCloud adapter.

use std::fmt;

use idsync_http::{RateLimitConfig, RetryConfig, TlsOptions};
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

/// The column that identifies a person in both systems, used to adopt
/// unlinked system users (`Lookup::Field`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum MatchColumn {
    /// `employeeIdentifier` (default).
    #[default]
    #[serde(rename = "employeeIdentifier")]
    EmployeeIdentifier,
    /// `username`.
    #[serde(rename = "username")]
    Username,
    /// `email`.
    #[serde(rename = "email")]
    Email,
}

impl MatchColumn {
    /// The JSON field name.
    pub fn field(self) -> &'static str {
        match self {
            MatchColumn::EmployeeIdentifier => "employeeIdentifier",
            MatchColumn::Username => "username",
            MatchColumn::Email => "email",
        }
    }
}

/// How to reach a JumpCloud organization.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JumpCloudConfig {
    /// The console URL (default `https://console.jumpcloud.com`).
    #[serde(default = "default_base_url")]
    pub base_url: Url,
    /// The API key, sent as `x-api-key`; never logged.
    pub api_key: SecretString,
    /// `x-org-id` for multi-tenant administrators.
    #[serde(default)]
    pub org_id: Option<String>,
    /// Page size for `skip`/`limit` paging (default 100, the documented maximum).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Client-side rate limit.
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    /// Retries of transient failures.
    #[serde(default)]
    pub retry: RetryConfig,
    /// TLS options.
    #[serde(default)]
    pub tls: TlsOptions,
    /// The unique column used to adopt unlinked users.
    #[serde(default)]
    pub match_column: MatchColumn,
    /// The custom attribute holding the link (default `idsyncLink`).
    #[serde(default = "default_link_attribute")]
    pub link_attribute: String,
}

fn default_base_url() -> Url {
    #[expect(clippy::expect_used, reason = "a constant URL that parses")]
    Url::parse("https://console.jumpcloud.com").expect("constant URL")
}

fn default_page_size() -> u32 {
    100
}

fn default_link_attribute() -> String {
    "idsyncLink".to_owned()
}

impl JumpCloudConfig {
    /// A config for `base_url` with `api_key` and every other setting at its default.
    pub fn new(base_url: Url, api_key: SecretString) -> Self {
        JumpCloudConfig {
            base_url,
            api_key,
            org_id: None,
            page_size: default_page_size(),
            rate_limit: None,
            retry: RetryConfig::default(),
            tls: TlsOptions::default(),
            match_column: MatchColumn::default(),
            link_attribute: default_link_attribute(),
        }
    }
}

impl fmt::Debug for JumpCloudConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JumpCloudConfig")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &"<redacted>")
            .field("org_id", &self.org_id)
            .field("page_size", &self.page_size)
            .field("match_column", &self.match_column)
            .field("link_attribute", &self.link_attribute)
            .finish()
    }
}
