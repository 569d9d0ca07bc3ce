//! Configuration: where the SCIM service is, how to authenticate, and the
//! server's dialect.

use std::fmt;

use idsync_core::{ExternalId, Link, ProfileId};
use idsync_http::{AuthConfig, HttpConfig};
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

/// How to reach a SCIM 2.0 service.
///
/// ```toml
/// base_url = "https://app.example.invalid/scim/v2"
/// token = "…"                       # bearer token (or http.auth for OAuth2 etc.)
/// [dialect]
/// patch = false                      # a server without PATCH: updates by PUT
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ScimConfig {
    /// The service's base URL, e.g. `https://app.example.invalid/scim/v2`.
    pub base_url: Url,
    /// The bearer token. When unset, `http.auth` applies (OAuth2 client
    /// credentials, basic, …).
    #[serde(default)]
    pub token: Option<SecretString>,
    /// Timeouts, TLS, proxy, retries, rate limit, other auth.
    #[serde(default)]
    pub http: HttpConfig,
    /// The server's quirks.
    #[serde(default)]
    pub dialect: ScimDialect,
    /// Resources per page when listing (default 500, lowered to the server's
    /// `filter.maxResults`; a server that answers fewer is asked for the rest).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Whether the creates, updates, enables and disables of a batch go
    /// through `/Bulk` (default: when the server says it supports it).
    #[serde(default)]
    pub bulk: BulkMode,
    /// Read `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas` when
    /// connecting (default true); without it the dialect's flags decide.
    #[serde(default = "yes")]
    pub discover: bool,
    /// How the link is kept in `externalId`.
    #[serde(default)]
    pub link: LinkStyle,
}

/// How a target account's link is kept in `externalId`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", tag = "style", deny_unknown_fields)]
pub enum LinkStyle {
    /// `"<profile id>:<external id>"`: several profiles can share one
    /// service, and accounts of other profiles are told apart.
    #[default]
    Prefixed,
    /// The external id alone (what Azure AD and most provisioning clients
    /// write, for apps that read `externalId` as the directory's id): every
    /// account with an `externalId` belongs to this one profile, and no
    /// other profile may use the service.
    Plain {
        /// The one profile.
        profile: ProfileId,
    },
}

impl LinkStyle {
    /// The `externalId` for a link, or why this style cannot hold it.
    pub fn encode(&self, link: &Link) -> Result<String, String> {
        match self {
            LinkStyle::Prefixed => Ok(format!("{}:{}", link.profile, link.external)),
            LinkStyle::Plain { profile } if *profile == link.profile => Ok(link.external.0.clone()),
            LinkStyle::Plain { profile } => Err(format!(
                "the plain link style keeps links of profile {profile} only, not of {}",
                link.profile
            )),
        }
    }

    /// The link an `externalId` holds, if any.
    pub fn decode(&self, external_id: &str) -> Option<Link> {
        match self {
            LinkStyle::Prefixed => {
                let (profile, external) = external_id.split_once(':')?;
                let profile = uuid::Uuid::parse_str(profile).ok()?;
                (!external.is_empty()).then(|| Link {
                    profile: ProfileId(profile),
                    external: ExternalId(external.to_owned()),
                })
            }
            LinkStyle::Plain { profile } => (!external_id.is_empty()).then(|| Link {
                profile: *profile,
                external: ExternalId(external_id.to_owned()),
            }),
        }
    }
}

fn default_page_size() -> u32 {
    500
}

fn yes() -> bool {
    true
}

impl ScimConfig {
    /// A config with a bearer token and every other option at its default.
    pub fn new(base_url: Url, token: impl Into<String>) -> Self {
        ScimConfig {
            base_url,
            token: Some(SecretString::from(token.into())),
            http: HttpConfig::default(),
            dialect: ScimDialect::default(),
            page_size: default_page_size(),
            bulk: BulkMode::default(),
            discover: true,
            link: LinkStyle::default(),
        }
    }

    /// The HTTP config with the bearer token applied.
    pub(crate) fn http_config(&self) -> HttpConfig {
        let mut http = self.http.clone();
        if let Some(token) = &self.token {
            http.auth = AuthConfig::Bearer { token: token.clone() };
        }
        http
    }
}

impl fmt::Debug for ScimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScimConfig")
            .field("base_url", &idsync_http::redact_url(&self.base_url))
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("http", &self.http)
            .field("dialect", &self.dialect)
            .field("page_size", &self.page_size)
            .field("bulk", &self.bulk)
            .field("discover", &self.discover)
            .field("link", &self.link)
            .finish()
    }
}

/// Whether the writes of a batch use `/Bulk`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkMode {
    /// When `/ServiceProviderConfig` says `bulk.supported`.
    #[default]
    Auto,
    /// Never.
    Off,
    /// Always (the server must support it).
    On,
}

/// A SCIM server's departures from RFC 7643/7644, all in one place. Every
/// flag defaults to the RFC behaviour; `None` means "as the server's
/// `/ServiceProviderConfig` says".
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ScimDialect {
    /// Updates with PATCH (`Some(true)`) or PUT of the whole resource
    /// (`Some(false)`: servers without PATCH support, e.g. older
    /// in-house SCIM endpoints). `None`: `patch.supported`.
    pub patch: Option<bool>,
    /// Send `If-Match` with the last seen ETag on updates. `None`:
    /// `etag.supported` (scim2-server: yes).
    pub etag: Option<bool>,
    /// Operations per `/Bulk` request at most; the smaller of this and the
    /// server's `bulk.maxOperations` applies (default 100).
    pub bulk_max_operations: u32,
    /// Sort listings by this attribute, so paging is stable (scim2-server
    /// lists in random-id order without it). `None` sends no `sortBy`.
    /// Sent only when the server supports sorting. Default `id`.
    pub sort_by: Option<String>,
    /// PATCH paths with value filters (`emails[type eq "work"].value`).
    /// `false` updates such fields by GET + PUT instead.
    pub patch_value_filters: bool,
    /// Members per group PATCH at most (default 1000, about 70 KB of JSON).
    /// A server's time for a PATCH of a large group grows with the group
    /// (scim2-server: about 0.4 s per PATCH on a group of 3,000), so larger
    /// chunks make fewer, faster syncs; lower it for a server that limits
    /// request sizes.
    pub member_chunk: usize,
    /// Request body media type (default `application/scim+json`; some
    /// servers accept only `application/json`).
    pub content_type: String,
    /// Filter operator used to list one profile's accounts by the
    /// `externalId` prefix (default `sw`; servers without `sw` may use `co`,
    /// the results are checked again on our side).
    pub prefix_operator: String,
    /// Terms joined with `or` in one filter: lookups in one query, and
    /// members one `remove` takes out of a group (`members[value eq "a" or
    /// value eq "b"]`). Default 50; 1 for servers whose filters take no `or`.
    pub lookup_or_terms: usize,
}

impl Default for ScimDialect {
    fn default() -> Self {
        ScimDialect {
            patch: None,
            etag: None,
            bulk_max_operations: 100,
            sort_by: Some("id".into()),
            patch_value_filters: true,
            member_chunk: 1000,
            content_type: "application/scim+json".into(),
            prefix_operator: "sw".into(),
            lookup_or_terms: 50,
        }
    }
}

impl ScimDialect {
    /// scim2-server (PyPI), the test server: RFC behaviour; PATCH answers
    /// 204 without a body (handled everywhere).
    pub fn scim2_server() -> Self {
        ScimDialect::default()
    }

    /// A server that offers PUT only.
    pub fn put_only() -> Self {
        ScimDialect {
            patch: Some(false),
            ..ScimDialect::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_toml_like_json_refuses_typos_and_hides_the_token() {
        let c: ScimConfig = serde_json::from_value(serde_json::json!({
            "base_url": "https://bob:pw@app.example.invalid/scim/v2",
            "token": "s3cret-token",
            "dialect": {"patch": false, "content_type": "application/json"},
            "bulk": "off"
        }))
        .unwrap();
        assert_eq!(c.dialect.patch, Some(false));
        assert_eq!(c.bulk, BulkMode::Off);
        assert_eq!(c.page_size, 500);
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret") && !debug.contains("pw@"), "{debug}");
        let target = crate::ScimTarget::new(c).unwrap();
        let debug = format!("{target:?}");
        assert!(!debug.contains("s3cret") && !debug.contains("pw@"), "{debug}");
        let typo = serde_json::from_value::<ScimConfig>(serde_json::json!({
            "base_url": "https://app.example.invalid/scim/v2",
            "dialect": {"etags": true}
        }));
        assert!(typo.unwrap_err().to_string().contains("unknown field `etags`"));
    }
}
