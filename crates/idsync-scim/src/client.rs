//! The SCIM protocol client: URLs, media types, discovery, listing with
//! paging, and the write verbs, on idsync-http.

use futures::stream::BoxStream;
use idsync_http::header::{ACCEPT, HeaderValue, IF_MATCH};
use idsync_http::{Extracted, HttpClient, HttpError, Method, Pagination, Request, Response};
use serde_json::{Value, json};
use url::Url;

use crate::ScimError;
use crate::config::{BulkMode, LinkStyle, ScimConfig, ScimDialect};
use crate::map::BULK_REQUEST;

/// What the service says of itself (`/ServiceProviderConfig`,
/// `/ResourceTypes`, `/Schemas`), or RFC defaults when not discovered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceProvider {
    /// `patch.supported`.
    pub patch: bool,
    /// `bulk.supported`.
    pub bulk: bool,
    /// `bulk.maxOperations`.
    pub bulk_max_operations: u32,
    /// `bulk.maxPayloadSize` in bytes.
    pub bulk_max_payload: u64,
    /// `etag.supported`.
    pub etag: bool,
    /// `sort.supported`.
    pub sort: bool,
    /// `filter.maxResults`, when given.
    pub filter_max_results: Option<u32>,
    /// The Users endpoint (`Users`).
    pub users_endpoint: String,
    /// The Groups endpoint, `None` when the service has no groups.
    pub groups_endpoint: Option<String>,
    /// The schema URNs the service knows.
    pub schemas: Vec<String>,
    /// The attribute types of `/Schemas` (values are sent as these JSON types).
    pub attribute_types: crate::map::AttributeTypes,
    /// True when the service has been asked (discovery ran).
    pub discovered: bool,
}

impl Default for ServiceProvider {
    fn default() -> Self {
        ServiceProvider {
            patch: true,
            bulk: false,
            bulk_max_operations: 0,
            bulk_max_payload: 0,
            etag: false,
            sort: true,
            filter_max_results: None,
            users_endpoint: "Users".into(),
            groups_endpoint: Some("Groups".into()),
            schemas: Vec::new(),
            attribute_types: crate::map::AttributeTypes::default(),
            discovered: false,
        }
    }
}

/// A SCIM client for one service.
pub(crate) struct ScimClient {
    pub http: HttpClient,
    base: Url,
    content_type: String,
    pub dialect: ScimDialect,
    pub sp: ServiceProvider,
    pub page_size: u32,
    pub bulk_mode: BulkMode,
    pub link: LinkStyle,
}

impl std::fmt::Debug for ScimClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimClient")
            .field("base", &idsync_http::redact_url(&self.base))
            .field("http", &self.http)
            .field("dialect", &self.dialect)
            .field("sp", &self.sp)
            .field("page_size", &self.page_size)
            .field("bulk_mode", &self.bulk_mode)
            .field("link", &self.link)
            .finish()
    }
}

impl ScimClient {
    pub(crate) fn new(config: &ScimConfig) -> idsync_core::Result<Self> {
        let http = HttpClient::new(&config.http_config())
            .map_err(|e| e.into_core(crate::NAME, "building the HTTP client").with_op("connect"))?;
        let mut base = config.base_url.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        if base.cannot_be_a_base() {
            return Err(
                idsync_core::Error::config(format!("SCIM base URL {} cannot be a base", config.base_url))
                    .with_backend(crate::NAME),
            );
        }
        let mut sp = ServiceProvider::default();
        if let Some(p) = config.dialect.patch {
            sp.patch = p;
        }
        Ok(ScimClient {
            http,
            base,
            content_type: config.dialect.content_type.clone(),
            dialect: config.dialect.clone(),
            sp,
            page_size: config.page_size.max(1),
            bulk_mode: config.bulk,
            link: config.link.clone(),
        })
    }

    /// PATCH or PUT.
    pub(crate) fn use_patch(&self) -> bool {
        self.dialect.patch.unwrap_or(self.sp.patch)
    }

    /// If-Match on updates.
    pub(crate) fn use_etag(&self) -> bool {
        self.dialect.etag.unwrap_or(self.sp.etag)
    }

    /// Operations per Bulk request, or `None` when writes go one by one.
    pub(crate) fn bulk_limit(&self) -> Option<usize> {
        let on = match self.bulk_mode {
            BulkMode::Off => false,
            BulkMode::On => true,
            BulkMode::Auto => self.sp.bulk,
        };
        if !on {
            return None;
        }
        let server = if self.sp.bulk_max_operations == 0 {
            u32::MAX
        } else {
            self.sp.bulk_max_operations
        };
        Some(self.dialect.bulk_max_operations.min(server).max(1) as usize)
    }

    /// The URL of `segments` under the base (each segment escaped).
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut u = self.base.clone();
        if let Ok(mut path) = u.path_segments_mut() {
            path.pop_if_empty();
            for s in segments {
                for part in s.split('/').filter(|p| !p.is_empty()) {
                    path.push(part);
                }
            }
        }
        u
    }

    /// The path of `segments` relative to the base, as a Bulk operation
    /// names it (`/Users/2819c223`, each segment escaped).
    pub(crate) fn bulk_path(&self, segments: &[&str]) -> String {
        let url = self.url(segments);
        let base = self.base.path().trim_end_matches('/');
        url.path().strip_prefix(base).unwrap_or(url.path()).to_owned()
    }

    fn request(&self, method: Method, url: Url) -> Request {
        Request::new(method, url).header(
            ACCEPT,
            HeaderValue::from_static("application/scim+json, application/json"),
        )
    }

    fn with_if_match(request: Request, etag: Option<&str>) -> Request {
        match etag.and_then(|e| HeaderValue::from_str(e).ok()) {
            Some(v) => request.header(IF_MATCH, v),
            None => request,
        }
    }

    /// Reads the service's self-description. A service without these
    /// endpoints keeps the defaults.
    pub(crate) async fn discover(&mut self) -> idsync_core::Result<()> {
        let spc = match self
            .http
            .send(self.request(Method::GET, self.url(&["ServiceProviderConfig"])))
            .await
        {
            Ok(r) => Some(r),
            Err(e) if e.status().is_some_and(|s| s.as_u16() == 404) => None,
            Err(e) => return Err(ScimError::http(e, "reading /ServiceProviderConfig", None).into_core("connect")),
        };
        if let Some(r) = spc {
            let v: Value = r
                .json()
                .map_err(|e| ScimError::http(e, "reading /ServiceProviderConfig", None).into_core("connect"))?;
            let supported = |k: &str| v[k]["supported"].as_bool().unwrap_or(false);
            self.sp.patch = self.dialect.patch.unwrap_or(supported("patch"));
            self.sp.bulk = supported("bulk");
            self.sp.bulk_max_operations = v["bulk"]["maxOperations"].as_u64().unwrap_or(0).min(u32::MAX as u64) as u32;
            self.sp.bulk_max_payload = v["bulk"]["maxPayloadSize"].as_u64().unwrap_or(0);
            self.sp.etag = supported("etag");
            self.sp.sort = supported("sort");
            self.sp.filter_max_results = v["filter"]["maxResults"]
                .as_u64()
                .map(|n| n.min(u32::MAX as u64) as u32);
        }
        if let Ok(r) = self
            .http
            .send(self.request(Method::GET, self.url(&["ResourceTypes"])))
            .await
            && let Ok(v) = r.json::<Value>()
        {
            let types = v["Resources"].as_array().cloned().unwrap_or_default();
            let endpoint = |schema: &str| {
                types
                    .iter()
                    .find(|t| t["schema"].as_str() == Some(schema))
                    .and_then(|t| t["endpoint"].as_str())
                    .map(|e| e.trim_start_matches('/').to_owned())
            };
            if let Some(users) = endpoint(crate::map::USER_SCHEMA) {
                self.sp.users_endpoint = users;
            }
            self.sp.groups_endpoint = endpoint(crate::map::GROUP_SCHEMA);
        }
        if let Ok(r) = self.http.send(self.request(Method::GET, self.url(&["Schemas"]))).await
            && let Ok(v) = r.json::<Value>()
        {
            let resources = v["Resources"].as_array().cloned().unwrap_or_default();
            self.sp.schemas = resources
                .iter()
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect();
            self.sp.attribute_types = crate::map::AttributeTypes::from_schemas(&resources);
        }
        // /ServiceProviderConfig, /ResourceTypes and /Schemas may be public:
        // one authenticated read checks the credentials now, not mid-run.
        let mut probe = self.url(&[&self.sp.users_endpoint]);
        probe
            .query_pairs_mut()
            .append_pair("startIndex", "1")
            .append_pair("count", "1");
        self.http
            .send(self.request(Method::GET, probe))
            .await
            .map_err(|e| ScimError::http(e, "checking the credentials", None).into_core("connect"))?;
        self.sp.discovered = true;
        tracing::debug!(sp = ?self.sp, "SCIM service discovered");
        Ok(())
    }

    /// Every resource of `endpoint` matching `filter`, page by page.
    pub(crate) fn list(&self, endpoint: &str, filter: Option<&str>) -> BoxStream<'_, Result<Value, HttpError>> {
        let mut url = self.url(&[endpoint]);
        {
            let mut q = url.query_pairs_mut();
            if let Some(f) = filter {
                q.append_pair("filter", f);
            }
            if self.sp.sort
                && let Some(by) = &self.dialect.sort_by
            {
                q.append_pair("sortBy", by);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        let count = match self.sp.filter_max_results {
            Some(max) if max > 0 => self.page_size.min(max),
            _ => self.page_size,
        };
        self.http
            .paginate(self.request(Method::GET, url), Pagination::scim(count), |page| {
                let (items, total) = list_page(page.json()?).map_err(|what| page.decode_error(what))?;
                Ok(Extracted {
                    items,
                    total,
                    next_cursor: None,
                })
            })
    }

    /// [`ScimClient::list`] with owned arguments.
    pub(crate) fn list_owned(
        &self,
        endpoint: String,
        filter: Option<String>,
    ) -> BoxStream<'_, Result<Value, HttpError>> {
        self.list(&endpoint, filter.as_deref())
    }

    pub(crate) async fn get(&self, segments: &[&str]) -> Result<Response, HttpError> {
        self.http.send(self.request(Method::GET, self.url(segments))).await
    }

    pub(crate) async fn post(&self, endpoint: &str, body: &Value) -> Result<Response, HttpError> {
        let req = self
            .request(Method::POST, self.url(&[endpoint]))
            .json(body, &self.content_type)?;
        self.http.send(req).await
    }

    pub(crate) async fn patch(
        &self,
        segments: &[&str],
        ops: Vec<Value>,
        etag: Option<&str>,
    ) -> Result<Response, HttpError> {
        let body = json!({"schemas": [crate::map::PATCH_OP], "Operations": ops});
        let req = self
            .request(Method::PATCH, self.url(segments))
            .json(&body, &self.content_type)?;
        self.http.send(Self::with_if_match(req, etag)).await
    }

    pub(crate) async fn put(&self, segments: &[&str], body: &Value, etag: Option<&str>) -> Result<Response, HttpError> {
        let req = self
            .request(Method::PUT, self.url(segments))
            .json(body, &self.content_type)?;
        self.http.send(Self::with_if_match(req, etag)).await
    }

    pub(crate) async fn delete(&self, segments: &[&str]) -> Result<Response, HttpError> {
        self.http.send(self.request(Method::DELETE, self.url(segments))).await
    }

    /// One `/Bulk` request (not idempotent: POSTs inside).
    pub(crate) async fn bulk(&self, operations: Vec<Value>) -> Result<Response, HttpError> {
        let body = json!({"schemas": [BULK_REQUEST], "Operations": operations});
        let req = self
            .request(Method::POST, self.url(&["Bulk"]))
            .json(&body, &self.content_type)?;
        self.http.send(req).await
    }
}

/// The resources and `totalResults` of one page of a list response
/// (RFC 7644 §3.4.2), or what is wrong with it.
pub(crate) fn list_page(v: Value) -> Result<(Vec<Value>, Option<u64>), &'static str> {
    let Value::Object(mut page) = v else {
        return Err("a list response is not a JSON object");
    };
    let total = page.get("totalResults").and_then(Value::as_u64);
    let items = match page.remove("Resources") {
        Some(Value::Array(items)) => items,
        // Resources may be left out when nothing matched (RFC 7644 §3.4.2);
        // without totalResults 0 saying so, the page is not an empty list.
        None | Some(Value::Null) if total == Some(0) => Vec::new(),
        None | Some(Value::Null) => return Err("neither Resources nor totalResults 0"),
        Some(_) => return Err("Resources is not a list"),
    };
    Ok((items, total))
}

/// The ETag of a write's answer: the `ETag` header, else `meta.version`.
pub(crate) fn etag_of(r: &Response, body: Option<&Value>) -> Option<String> {
    r.header(idsync_http::header::ETAG)
        .map(str::to_owned)
        .or_else(|| body.and_then(|b| b["meta"]["version"].as_str().map(str::to_owned)))
}
