//! The server: its builder, the routes, the state every handler shares, and
//! the record each request leaves in the history.

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, OriginalUri, Path, State};
use axum::http::header::{ETAG, HOST, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use idsync_core::plan::Finding;
use idsync_core::{Link, Lookup, ObjectKind, Profile, Target, TargetAccount, TargetOp};
use secrecy::SecretString;

use crate::auth::auth;
use crate::error::{ApiError, scim_json};
use crate::history::{ProvisioningRecord, ProvisioningSink};
use crate::query::{
    discovery_resource_type, discovery_resource_types, discovery_schema, discovery_schemas, discovery_spc, get_route,
    list_route, not_found_route, search_route,
};
use crate::store::{Document, DocumentStore, now};
use crate::write::{WriteKind, create_route, write_route};

/// Builds a SCIM service provider; [`ScimServer::router`] gives the axum
/// [`Router`] to serve or nest (e.g. under `/scim/v2`).
pub struct ScimServer {
    profile: Profile,
    target: Arc<dyn Target>,
    token: SecretString,
    sink: Option<Arc<dyn ProvisioningSink>>,
    base_url: Option<String>,
    max_results: usize,
}

impl fmt::Debug for ScimServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScimServer")
            .field("profile", &self.profile.id)
            .field("target", &self.target.backend())
            .field("token", &"[redacted]")
            .field("base_url", &self.base_url)
            .field("max_results", &self.max_results)
            .finish()
    }
}

/// The router of a SCIM service provider for `profile` over `target`,
/// accepting `token` as bearer token. See [`ScimServer`] for options.
pub fn scim_router(profile: Profile, target: Arc<dyn Target>, token: SecretString) -> Router {
    ScimServer::new(profile, target, token).router()
}

impl ScimServer {
    /// A server for `profile` over `target`, accepting `token` as bearer token.
    pub fn new(profile: Profile, target: Arc<dyn Target>, token: SecretString) -> Self {
        ScimServer {
            profile,
            target,
            token,
            sink: None,
            base_url: None,
            max_results: 1000,
        }
    }

    /// Hands a record of every request to `sink` (the provisioning history).
    pub fn with_sink(mut self, sink: impl ProvisioningSink) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// The public base URL (`https://app.example/scim/v2`) for
    /// `meta.location`; by default it is made of the `Host` header and the
    /// path the router is nested under, over `http`.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into().trim_end_matches('/').to_owned());
        self
    }

    /// The most resources one list answer holds (default 1000).
    pub fn with_max_results(mut self, max: usize) -> Self {
        self.max_results = max.max(1);
        self
    }

    /// Serves the router on `listener` (at its root) until the task is
    /// dropped or the listener fails.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// The axum router: `/Users`, `/Groups`, `/ServiceProviderConfig`,
    /// `/Schemas`, `/ResourceTypes`, `/.search`, all behind the bearer token.
    pub fn router(self) -> Router {
        let state = Arc::new(ServerState {
            profile: self.profile,
            target: self.target,
            token: self.token,
            sink: self.sink,
            base_url: self.base_url,
            max_results: self.max_results,
            writes: tokio::sync::Mutex::new(()),
            store: DocumentStore::default(),
        });
        type Shared = State<Arc<ServerState>>;
        let mut router = Router::new()
            .route("/ServiceProviderConfig", get(discovery_spc))
            .route("/Schemas", get(discovery_schemas))
            .route("/Schemas/{id}", get(discovery_schema))
            .route("/ResourceTypes", get(discovery_resource_types))
            .route("/ResourceTypes/{id}", get(discovery_resource_type))
            .route(
                "/.search",
                post(|s: Shared, r: RequestInfo, b: Bytes| search_route(s, r, b, None)),
            );
        for (kind, endpoint) in [(ObjectKind::User, "/Users"), (ObjectKind::Group, "/Groups")] {
            router = router
                .route(
                    endpoint,
                    get(move |s: Shared, r: RequestInfo| list_route(s, r, kind))
                        .post(move |s: Shared, r: RequestInfo, b: Bytes| create_route(s, r, b, kind)),
                )
                .route(
                    &format!("{endpoint}/.search"),
                    post(move |s: Shared, r: RequestInfo, b: Bytes| search_route(s, r, b, Some(kind))),
                )
                .route(
                    &format!("{endpoint}/{{id}}"),
                    get(move |s: Shared, r: RequestInfo, p: Path<String>| get_route(s, r, p, kind))
                        .put(move |s: Shared, r: RequestInfo, p: Path<String>, b: Bytes| {
                            write_route(s, r, p, b, kind, WriteKind::Replace)
                        })
                        .patch(move |s: Shared, r: RequestInfo, p: Path<String>, b: Bytes| {
                            write_route(s, r, p, b, kind, WriteKind::Patch)
                        })
                        .delete(move |s: Shared, r: RequestInfo, p: Path<String>| {
                            write_route(s, r, p, Bytes::new(), kind, WriteKind::Delete)
                        }),
                );
        }
        router
            .fallback(not_found_route)
            .layer(middleware::from_fn_with_state(state.clone(), auth))
            .with_state(state)
    }
}

/// What every handler shares.
pub(crate) struct ServerState {
    pub(crate) profile: Profile,
    pub(crate) target: Arc<dyn Target>,
    pub(crate) token: SecretString,
    sink: Option<Arc<dyn ProvisioningSink>>,
    base_url: Option<String>,
    pub(crate) max_results: usize,
    /// Writes are serialized: ETags, uniqueness and membership stay consistent.
    pub(crate) writes: tokio::sync::Mutex<()>,
    pub(crate) store: DocumentStore,
}

/// What a handler needs of the request.
pub(crate) struct RequestInfo {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    /// The path the router is nested under.
    pub(crate) prefix: String,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let original = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
        let prefix = original.path().strip_suffix(parts.uri.path()).unwrap_or("").to_owned();
        Ok(RequestInfo {
            method: parts.method.clone(),
            uri: original,
            headers: parts.headers.clone(),
            prefix,
        })
    }
}

/// The history record of the request being handled, filled in as it goes.
pub(crate) struct PendingRecord {
    method: String,
    path: String,
    action: &'static str,
    kind: Option<ObjectKind>,
    pub(crate) resource: Option<String>,
    pub(crate) link: Option<Link>,
    pub(crate) operations: Vec<TargetOp>,
    pub(crate) findings: Vec<Finding>,
    pub(crate) notes: Vec<String>,
}

impl ServerState {
    /// The base URL of `meta.location`.
    pub(crate) fn base(&self, req: &RequestInfo) -> String {
        if let Some(b) = &self.base_url {
            return b.clone();
        }
        let host = req
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}{}", req.prefix)
    }

    /// Starts the record of a request.
    pub(crate) fn record(&self, req: &RequestInfo, action: &'static str, kind: Option<ObjectKind>) -> PendingRecord {
        PendingRecord {
            method: req.method.to_string(),
            path: req
                .uri
                .path_and_query()
                .map_or_else(|| req.uri.path().to_owned(), |p| p.to_string()),
            action,
            kind,
            resource: None,
            link: None,
            operations: Vec::new(),
            findings: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The answer to a request, after its record went to the history.
    pub(crate) fn finish(&self, record: PendingRecord, result: Result<Response, ApiError>) -> Response {
        let (response, error) = match result {
            Ok(r) => (r, None),
            Err(e) => {
                let detail = e.detail.clone();
                (e.into_response(), Some(detail))
            }
        };
        let record = ProvisioningRecord {
            at: now(),
            profile: self.profile.id,
            method: record.method,
            path: record.path,
            action: record.action.to_owned(),
            kind: record.kind,
            resource: record.resource,
            link: record.link,
            operations: record.operations,
            findings: record.findings,
            notes: record.notes,
            status: response.status().as_u16(),
            error,
        };
        tracing::info!(
            method = %record.method, path = %record.path, status = record.status,
            operations = record.operations.len(),
            findings = ?record.findings.iter().map(|f| f.kind).collect::<Vec<_>>(),
            "SCIM request"
        );
        if let Some(sink) = &self.sink {
            sink.record(&record);
        }
        response
    }

    /// The account linked to `link`, if the target has one.
    pub(crate) async fn linked_account(
        &self,
        kind: ObjectKind,
        link: &Link,
    ) -> Result<Option<TargetAccount>, ApiError> {
        let found = self
            .target
            .lookup(&[Lookup::External {
                kind,
                external: link.external.clone(),
            }])
            .await
            .map_err(ApiError::target)?;
        Ok(found.into_iter().find(|a| a.link.as_ref() == Some(link)))
    }

    /// A document as the answer, with its `ETag` and `Location`.
    pub(crate) fn resource_response(&self, status: StatusCode, id: &str, document: &Document, base: &str) -> Response {
        let doc = self.store.render(id, document, base);
        let mut r = scim_json(status, &doc);
        if let Some(Ok(v)) = doc["meta"]["version"].as_str().map(HeaderValue::from_str) {
            r.headers_mut().insert(ETAG, v);
        }
        if let Some(Ok(v)) = doc["meta"]["location"].as_str().map(HeaderValue::from_str) {
            r.headers_mut().insert(LOCATION, v);
        }
        r
    }
}
