//! An embeddable SCIM 2.0 service provider (RFC 7643/7644) over an idsync
//! [`Target`], applying a [`Profile`]'s rules: receive provisioning from an
//! identity provider (Azure AD / Entra ID, Okta, OneLogin, …) into the
//! application the embedder already wrote a `Target` for.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use idsync_core::{Profile, ProfileId, memory::MemoryTarget};
//! use idsync_scim::server::{MemoryHistory, ScimServer};
//!
//! let profile: Profile = serde_json::from_value(serde_json::json!({
//!     "id": "7b1f4a4e-5d7e-4b59-8d38-2c7a6f0b1c11", "name": "Entra ID → app"
//! })).expect("a valid profile");
//! let history = MemoryHistory::new();
//! let app = ScimServer::new(profile, Arc::new(MemoryTarget::new()), "s3cret".to_owned().into())
//!     .with_sink(history.clone())
//!     .router();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, axum::Router::new().nest("/scim/v2", app)).await
//! # }
//! ```
//!
//! **Identity.** The SCIM `id` handed out is the target's account id
//! (stable for the life of the account). Each account carries the link
//! `(profile, external id)`, the external id being the identity provider's
//! `externalId` (or a generated one, `scim:<uuid>`, when it sends none); a
//! POST whose `externalId` is linked to an account already (one the
//! provider deleted earlier, or one a pull sync created) takes that account
//! over instead of making a second one. A changed `externalId` moves the link.
//!
//! **Fields.** With no mapping for the kind in the profile, the target's
//! fields are the resource's attribute paths as [`crate::map`] spells them
//! (`userName`, `name.givenName`, `emails[type eq "work"].value`, …).
//! With a mapping, the resource is read as a source object (attributes in
//! the same spellings) and the mapping computes the fields. Only changed
//! fields are written.
//!
//! **Rules.** A DELETE deprovisions by the profile's rule: disable (the
//! default), delete only when the profile opts in, or leave; with Do Not
//! Disable nothing is disabled or deleted; a target's veto
//! ([`Target::can_deprovision`]) is asked first. `active: false` from the
//! provider is a disable under the same rules. What the rules decided lands
//! in the record's findings. Group members not linked to this profile are
//! never removed. Passwords are never stored.
//!
//! **History.** Every request, authenticated or not, is handed to the
//! [`ProvisioningSink`] as a [`ProvisioningRecord`].
//!
//! **State.** The server keeps the full SCIM documents (what the provider
//! sent, including attributes no field holds) in memory, loaded from the
//! target's linked accounts on first use: after a restart the documents
//! are rebuilt from the target's fields, and accounts deprovisioned by
//! disabling show again as `active: false`.

mod history;
mod schemas;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, OriginalUri, Path, Request, State};
use axum::http::header::{
    AUTHORIZATION, CONTENT_TYPE, ETAG, HOST, IF_MATCH, IF_NONE_MATCH, LOCATION, WWW_AUTHENTICATE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use idsync_core::profile::Deprovision;
use idsync_core::{
    ErrorKind, FieldChange, Fields, Link, Lookup, ObjectKind, Profile, Target, TargetAccount, TargetId, TargetOp, Veto,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;

pub use history::{MemoryHistory, ProvisioningRecord, ProvisioningSink};

use crate::filter::{AttrRef, Filter, get_ci, sort_key_cmp};
use crate::map::{AttrPath, GROUP_SCHEMA, USER_SCHEMA, bool_of, flatten};
use crate::patch::{PatchRequest, entry_ci, remove_ci};
use schemas::{ERROR, LIST_RESPONSE, SEARCH_REQUEST};

/// The prefix of the external ids made up for resources sent without an
/// `externalId`.
pub const GENERATED_PREFIX: &str = "scim:";

/// The media type of SCIM messages.
const SCIM_JSON: &str = "application/scim+json";

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
        let st = Arc::new(St {
            profile: self.profile,
            target: self.target,
            token: self.token,
            sink: self.sink,
            base_url: self.base_url,
            max_results: self.max_results,
            writes: tokio::sync::Mutex::new(()),
            loaded: tokio::sync::OnceCell::new(),
            index: Mutex::new(BTreeMap::new()),
        });
        let mut router = Router::new()
            .route("/ServiceProviderConfig", get(discovery_spc))
            .route("/Schemas", get(discovery_schemas))
            .route("/Schemas/{id}", get(discovery_schema))
            .route("/ResourceTypes", get(discovery_resource_types))
            .route("/ResourceTypes/{id}", get(discovery_resource_type))
            .route(
                "/.search",
                post(|s: State<Arc<St>>, r: Req, b: Bytes| search_route(s, r, b, None)),
            );
        for (kind, endpoint) in [(ObjectKind::User, "/Users"), (ObjectKind::Group, "/Groups")] {
            router = router
                .route(
                    endpoint,
                    get(move |s: State<Arc<St>>, r: Req| list_route(s, r, kind))
                        .post(move |s: State<Arc<St>>, r: Req, b: Bytes| create_route(s, r, b, kind)),
                )
                .route(
                    &format!("{endpoint}/.search"),
                    post(move |s: State<Arc<St>>, r: Req, b: Bytes| search_route(s, r, b, Some(kind))),
                )
                .route(
                    &format!("{endpoint}/{{id}}"),
                    get(move |s: State<Arc<St>>, r: Req, p: Path<String>| get_route(s, r, p, kind))
                        .put(move |s: State<Arc<St>>, r: Req, p: Path<String>, b: Bytes| {
                            write_route(s, r, p, b, kind, Write::Replace)
                        })
                        .patch(move |s: State<Arc<St>>, r: Req, p: Path<String>, b: Bytes| {
                            write_route(s, r, p, b, kind, Write::Patch)
                        })
                        .delete(move |s: State<Arc<St>>, r: Req, p: Path<String>| {
                            write_route(s, r, p, Bytes::new(), kind, Write::Delete)
                        }),
                );
        }
        router
            .fallback(not_found_route)
            .layer(middleware::from_fn_with_state(st.clone(), auth))
            .with_state(st)
    }
}

/// One resource as the server keeps it.
#[derive(Clone, Debug)]
struct Entry {
    kind: ObjectKind,
    link: Link,
    /// The document without `id` and `meta`.
    resource: Map<String, Value>,
    created: String,
    modified: String,
    /// Deprovisioned by a DELETE but kept (disabled or left) in the target.
    deleted: bool,
}

/// The ETag of a document without `meta`: FNV-1a over its canonical JSON,
/// so it is stable across restarts.
fn etag_of(body: &Map<String, Value>) -> String {
    let text = Value::Object(body.clone()).to_string();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("W/\"{h:016x}\"")
}

/// A document without `meta`: what is kept, the id, and for users the
/// (read-only) groups they are a direct member of.
fn body_in(index: &BTreeMap<String, Entry>, id: &str, e: &Entry) -> Map<String, Value> {
    let mut r = e.resource.clone();
    r.insert("id".into(), Value::String(id.to_owned()));
    if e.kind == ObjectKind::User {
        let groups: Vec<Value> = index
            .iter()
            .filter(|(_, g)| g.kind == ObjectKind::Group && !g.deleted && member_values(&g.resource).contains(id))
            .map(|(gid, g)| {
                let mut v = json!({"value": gid, "type": "direct"});
                if let Some(name) = get_ci(&g.resource, "displayName") {
                    v["display"] = name.clone();
                }
                v
            })
            .collect();
        if !groups.is_empty() {
            r.insert("groups".into(), Value::Array(groups));
        }
    }
    r
}

/// The full document of an entry.
fn render_in(index: &BTreeMap<String, Entry>, id: &str, e: &Entry, base: &str) -> Value {
    let mut r = body_in(index, id, e);
    let version = etag_of(&r);
    r.insert(
        "meta".into(),
        json!({
            "resourceType": resource_type(e.kind),
            "created": e.created,
            "lastModified": e.modified,
            "location": format!("{base}/{}/{id}", endpoint(e.kind)),
            "version": version,
        }),
    );
    Value::Object(r)
}

impl Entry {
    /// A document rebuilt from an account's fields.
    fn rebuild(account: &TargetAccount, link: Link, now: &str) -> Entry {
        let mut resource = Map::new();
        resource.insert("schemas".into(), json!([core_schema(account.kind)]));
        for (field, value) in &account.fields {
            if let Ok(path) = AttrPath::parse(field) {
                path.set(&mut resource, Some(value));
            }
        }
        if !link.external.0.starts_with(GENERATED_PREFIX) {
            resource.insert("externalId".into(), Value::String(link.external.0.clone()));
        }
        match account.kind {
            ObjectKind::User => {
                resource.insert("active".into(), Value::Bool(account.enabled));
            }
            ObjectKind::Group if !account.members.is_empty() => {
                let members = account.members.iter().map(|m| json!({"value": m.0})).collect();
                resource.insert("members".into(), Value::Array(members));
            }
            ObjectKind::Group => {}
        }
        Entry {
            kind: account.kind,
            link,
            resource,
            created: now.to_owned(),
            modified: now.to_owned(),
            deleted: false,
        }
    }
}

struct St {
    profile: Profile,
    target: Arc<dyn Target>,
    token: SecretString,
    sink: Option<Arc<dyn ProvisioningSink>>,
    base_url: Option<String>,
    max_results: usize,
    /// Writes are serialized: ETags, uniqueness and membership stay consistent.
    writes: tokio::sync::Mutex<()>,
    loaded: tokio::sync::OnceCell<()>,
    /// SCIM id (= target id) → document.
    index: Mutex<BTreeMap<String, Entry>>,
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn core_schema(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::User => USER_SCHEMA,
        ObjectKind::Group => GROUP_SCHEMA,
    }
}

fn endpoint(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::User => "Users",
        ObjectKind::Group => "Groups",
    }
}

fn resource_type(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::User => "User",
        ObjectKind::Group => "Group",
    }
}

/// A SCIM error answer (RFC 7644 §3.12).
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    scim_type: Option<&'static str>,
    detail: String,
}

impl ApiError {
    fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, None, detail)
    }

    fn target(e: idsync_core::Error) -> Self {
        let (status, scim_type) = match e.kind() {
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, None),
            ErrorKind::AlreadyExists => (StatusCode::CONFLICT, Some("uniqueness")),
            ErrorKind::Conflict => (StatusCode::CONFLICT, None),
            ErrorKind::InvalidData => (StatusCode::BAD_REQUEST, Some("invalidValue")),
            ErrorKind::Unsupported => (StatusCode::NOT_IMPLEMENTED, None),
            ErrorKind::PermissionDenied => (StatusCode::FORBIDDEN, None),
            ErrorKind::RateLimited => (StatusCode::TOO_MANY_REQUESTS, None),
            ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, None),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, None),
        };
        ApiError::new(status, scim_type, format!("the application refused: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": [ERROR],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = Value::String(t.to_owned());
        }
        scim_json(self.status, &body)
    }
}

fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    r
}

/// What a handler needs of the request.
struct Req {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    /// The path the router is nested under.
    prefix: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Req {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let original = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
        let prefix = original.path().strip_suffix(parts.uri.path()).unwrap_or("").to_owned();
        Ok(Req {
            method: parts.method.clone(),
            uri: original,
            headers: parts.headers.clone(),
            prefix,
        })
    }
}

/// A request being handled: what goes into the history.
struct Rec {
    method: String,
    path: String,
    action: &'static str,
    kind: Option<ObjectKind>,
    resource: Option<String>,
    link: Option<Link>,
    ops: Vec<TargetOp>,
    findings: Vec<String>,
}

impl St {
    fn index(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn base(&self, req: &Req) -> String {
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

    fn rec(&self, req: &Req, action: &'static str, kind: Option<ObjectKind>) -> Rec {
        Rec {
            method: req.method.to_string(),
            path: req
                .uri
                .path_and_query()
                .map_or_else(|| req.uri.path().to_owned(), |p| p.to_string()),
            action,
            kind,
            resource: None,
            link: None,
            ops: Vec::new(),
            findings: Vec::new(),
        }
    }

    fn finish(&self, rec: Rec, result: Result<Response, ApiError>) -> Response {
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
            method: rec.method,
            path: rec.path,
            action: rec.action.to_owned(),
            kind: rec.kind,
            resource: rec.resource,
            link: rec.link,
            operations: rec.ops,
            findings: rec.findings,
            status: response.status().as_u16(),
            error,
        };
        tracing::info!(
            method = %record.method, path = %record.path, status = record.status,
            operations = record.operations.len(), findings = ?record.findings, "SCIM request"
        );
        if let Some(sink) = &self.sink {
            sink.record(&record);
        }
        response
    }

    /// Loads the linked accounts of the profile once.
    async fn ensure_loaded(&self) -> Result<(), ApiError> {
        self.loaded
            .get_or_try_init(|| async {
                let mut stream = self.target.linked(self.profile.id).await.map_err(ApiError::target)?;
                let mut accounts = Vec::new();
                while let Some(a) = stream.next().await {
                    accounts.push(a.map_err(ApiError::target)?);
                }
                drop(stream);
                let now = now();
                let mut index = self.index();
                for a in accounts {
                    if let Some(link) = a.link.clone() {
                        index
                            .entry(a.id.0.clone())
                            .or_insert_with(|| Entry::rebuild(&a, link, &now));
                    }
                }
                Ok::<(), ApiError>(())
            })
            .await
            .map(|_| ())
    }

    async fn apply(&self, rec: &mut Rec, op: TargetOp) -> Result<Option<TargetId>, ApiError> {
        let applied = self.target.apply(&op).await;
        rec.ops.push(op);
        let applied = applied.map_err(ApiError::target)?;
        if let Some(note) = applied.note {
            rec.findings.push(format!("the application noted: {note}"));
        }
        Ok(applied.target)
    }

    /// The account linked to `link`, if the target has one.
    async fn linked_account(&self, kind: ObjectKind, link: &Link) -> Result<Option<TargetAccount>, ApiError> {
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

    /// The target's fields for a document.
    fn fields(&self, kind: ObjectKind, id: &str, resource: &Map<String, Value>) -> Fields {
        let mut doc = resource.clone();
        doc.insert("id".into(), Value::String(id.to_owned()));
        let doc = Value::Object(doc);
        if self.profile.mapping.for_kind(kind).is_empty() {
            flatten(&doc)
        } else {
            match crate::source::to_object(&doc, kind, "fields") {
                Ok(Some(object)) => self.profile.mapping.fields(&object),
                Ok(None) | Err(_) => Fields::new(),
            }
        }
    }

    fn render(&self, id: &str, e: &Entry, base: &str) -> Value {
        render_in(&self.index(), id, e, base)
    }

    /// The current ETag of an entry.
    fn etag(&self, id: &str, e: &Entry) -> String {
        etag_of(&body_in(&self.index(), id, e))
    }

    fn resource_response(&self, status: StatusCode, id: &str, e: &Entry, base: &str) -> Response {
        let doc = self.render(id, e, base);
        let mut r = scim_json(status, &doc);
        if let Some(Ok(v)) = doc["meta"]["version"].as_str().map(HeaderValue::from_str) {
            r.headers_mut().insert(ETAG, v);
        }
        if let Some(Ok(v)) = doc["meta"]["location"].as_str().map(HeaderValue::from_str) {
            r.headers_mut().insert(LOCATION, v);
        }
        r
    }

    /// The live (not deprovisioned) entry `id` of `kind`.
    fn live(&self, kind: ObjectKind, id: &str) -> Result<Entry, ApiError> {
        self.index()
            .get(id)
            .filter(|e| e.kind == kind && !e.deleted)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("no {} with id {id:?}", resource_type(kind))))
    }
}

// ---------------------------------------------------------------------------
// Authentication and discovery

async fn auth(State(st): State<Arc<St>>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
        });
    let ok = presented.is_some_and(|t| bool::from(t.as_bytes().ct_eq(st.token.expose_secret().as_bytes())));
    if ok {
        return next.run(req).await;
    }
    let (parts, _) = req.into_parts();
    let r = Req {
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        headers: HeaderMap::new(),
        prefix: String::new(),
    };
    let rec = st.rec(&r, "unauthorized", None);
    let mut response = st.finish(
        rec,
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            None,
            "a valid bearer token is required",
        )),
    );
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"SCIM\""));
    response
}

async fn not_found_route(State(st): State<Arc<St>>, req: Req) -> Response {
    let rec = st.rec(&req, "unknown", None);
    st.finish(rec, Err(ApiError::not_found(format!("no endpoint {}", req.uri.path()))))
}

fn list_response(resources: Vec<Value>, total: usize, start: usize) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

async fn discovery_spc(State(st): State<Arc<St>>, req: Req) -> Response {
    let rec = st.rec(&req, "discovery", None);
    let body = schemas::service_provider_config(&st.base(&req), st.max_results);
    st.finish(rec, Ok(scim_json(StatusCode::OK, &body)))
}

async fn discovery_schemas(State(st): State<Arc<St>>, req: Req) -> Response {
    let rec = st.rec(&req, "discovery", None);
    let all = schemas::schemas(&st.base(&req));
    let n = all.len();
    st.finish(rec, Ok(scim_json(StatusCode::OK, &list_response(all, n, 1))))
}

async fn discovery_schema(State(st): State<Arc<St>>, req: Req, Path(id): Path<String>) -> Response {
    let rec = st.rec(&req, "discovery", None);
    let found = schemas::schemas(&st.base(&req))
        .into_iter()
        .find(|s| s["id"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(&id)));
    let result = found
        .map(|s| scim_json(StatusCode::OK, &s))
        .ok_or_else(|| ApiError::not_found(format!("no schema {id:?}")));
    st.finish(rec, result)
}

async fn discovery_resource_types(State(st): State<Arc<St>>, req: Req) -> Response {
    let rec = st.rec(&req, "discovery", None);
    let all = schemas::resource_types(&st.base(&req));
    let n = all.len();
    st.finish(rec, Ok(scim_json(StatusCode::OK, &list_response(all, n, 1))))
}

async fn discovery_resource_type(State(st): State<Arc<St>>, req: Req, Path(id): Path<String>) -> Response {
    let rec = st.rec(&req, "discovery", None);
    let found = schemas::resource_types(&st.base(&req))
        .into_iter()
        .find(|s| s["id"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(&id)));
    let result = found
        .map(|s| scim_json(StatusCode::OK, &s))
        .ok_or_else(|| ApiError::not_found(format!("no resource type {id:?}")));
    st.finish(rec, result)
}

// ---------------------------------------------------------------------------
// Queries

/// Parameters of a list or search.
#[derive(Default)]
struct Query {
    filter: Option<Filter>,
    start: usize,
    count: Option<usize>,
    sort_by: Option<AttrRef>,
    descending: bool,
    attributes: Vec<AttrRef>,
    excluded: Vec<AttrRef>,
}

fn attr_list(text: &str) -> Result<Vec<AttrRef>, ApiError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| AttrRef::parse(s).map_err(|e| ApiError::bad("invalidPath", format!("attribute {s:?}: {e}"))))
        .collect()
}

impl Query {
    fn set(&mut self, name: &str, value: &str) -> Result<(), ApiError> {
        let number = |v: &str| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| ApiError::bad("invalidValue", format!("{name} must be an integer, not {v:?}")))
        };
        match name.to_ascii_lowercase().as_str() {
            "filter" => {
                let f = Filter::parse(value)
                    .map_err(|e| ApiError::bad("invalidFilter", format!("filter {value:?}: {e}")))?;
                self.filter = Some(f);
            }
            "startindex" => self.start = usize::try_from(number(value)?.max(1)).unwrap_or(1),
            "count" => self.count = Some(usize::try_from(number(value)?.max(0)).unwrap_or(0)),
            "sortby" => {
                let r = AttrRef::parse(value)
                    .map_err(|e| ApiError::bad("invalidPath", format!("sortBy {value:?}: {e}")))?;
                self.sort_by = Some(r);
            }
            "sortorder" => {
                self.descending = match value.to_ascii_lowercase().as_str() {
                    "ascending" => false,
                    "descending" => true,
                    _ => {
                        return Err(ApiError::bad("invalidValue", "sortOrder is ascending or descending"));
                    }
                }
            }
            "attributes" => self.attributes = attr_list(value)?,
            "excludedattributes" => self.excluded = attr_list(value)?,
            _ => {}
        }
        Ok(())
    }

    fn from_uri(uri: &Uri) -> Result<Query, ApiError> {
        let mut q = Query {
            start: 1,
            ..Query::default()
        };
        for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
            q.set(&k, &v)?;
        }
        Ok(q)
    }

    fn from_search(body: &[u8]) -> Result<Query, ApiError> {
        let mut q = Query {
            start: 1,
            ..Query::default()
        };
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(q);
        }
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad("invalidSyntax", format!("the body is not JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| ApiError::bad("invalidSyntax", "a SearchRequest is a JSON object"))?;
        if let Some(s) = get_ci(obj, "schemas")
            && !s.as_array().is_some_and(|s| {
                s.iter()
                    .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(SEARCH_REQUEST)))
            })
        {
            return Err(ApiError::bad(
                "invalidSyntax",
                format!("schemas must list {SEARCH_REQUEST}"),
            ));
        }
        for (k, v) in obj {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
                _ => continue,
            };
            q.set(k, &text)?;
        }
        Ok(q)
    }
}

/// Keeps only the attributes asked for (and `id`, `schemas`, `meta`), or
/// drops the excluded ones.
fn project(doc: Value, q: &Query) -> Value {
    let Value::Object(mut obj) = doc else { return doc };
    let always = |k: &str| ["id", "schemas", "meta"].iter().any(|a| a.eq_ignore_ascii_case(k));
    if !q.attributes.is_empty() {
        let mut out = Map::new();
        for (k, v) in &obj {
            if always(k) {
                out.insert(k.clone(), v.clone());
            }
        }
        for r in &q.attributes {
            let (src, dst): (Option<&Map<String, Value>>, &mut Map<String, Value>) = match &r.schema {
                Some(s) => {
                    let key = obj.keys().find(|k| k.eq_ignore_ascii_case(s)).cloned();
                    let Some(key) = key else { continue };
                    let dst = entry_ci(&mut out, &key);
                    if !dst.is_object() {
                        *dst = Value::Object(Map::new());
                    }
                    match (obj.get(&key).and_then(Value::as_object), dst.as_object_mut()) {
                        (Some(src), Some(dst)) => (Some(src), dst),
                        _ => continue,
                    }
                }
                None => (Some(&obj), &mut out),
            };
            let Some(src) = src else { continue };
            let Some((key, value)) = src.iter().find(|(k, _)| k.eq_ignore_ascii_case(&r.attr)) else {
                continue;
            };
            match (&r.sub, value) {
                (None, v) => {
                    dst.insert(key.clone(), v.clone());
                }
                (Some(sub), Value::Object(inner)) => {
                    if let Some((sk, sv)) = inner.iter().find(|(k, _)| k.eq_ignore_ascii_case(sub)) {
                        let slot = entry_ci(dst, key);
                        if !slot.is_object() {
                            *slot = Value::Object(Map::new());
                        }
                        if let Value::Object(o) = slot {
                            o.insert(sk.clone(), sv.clone());
                        }
                    }
                }
                (Some(sub), Value::Array(items)) => {
                    let picked: Vec<Value> = items
                        .iter()
                        .filter_map(|e| {
                            let (sk, sv) = e.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(sub))?;
                            Some(json!({ sk.clone(): sv.clone() }))
                        })
                        .collect();
                    dst.insert(key.clone(), Value::Array(picked));
                }
                _ => {}
            }
        }
        return Value::Object(out);
    }
    for r in &q.excluded {
        if always(&r.attr) && r.schema.is_none() {
            continue;
        }
        let container = match &r.schema {
            Some(s) => match obj.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(s)) {
                Some((_, Value::Object(o))) => o,
                _ => continue,
            },
            None => &mut obj,
        };
        match &r.sub {
            None => remove_ci(container, &r.attr),
            Some(sub) => match container.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(&r.attr)) {
                Some((_, Value::Object(o))) => remove_ci(o, sub),
                Some((_, Value::Array(items))) => {
                    for e in items {
                        if let Value::Object(o) = e {
                            remove_ci(o, sub);
                        }
                    }
                }
                _ => {}
            },
        }
    }
    Value::Object(obj)
}

async fn run_query(st: &St, req: &Req, q: &Query, kinds: &[ObjectKind]) -> Result<Response, ApiError> {
    st.ensure_loaded().await?;
    let base = st.base(req);
    let mut docs: Vec<Value> = {
        let index = st.index();
        index
            .iter()
            .filter(|(_, e)| !e.deleted && kinds.contains(&e.kind))
            .map(|(id, e)| render_in(&index, id, e, &base))
            .filter(|doc| q.filter.as_ref().is_none_or(|f| f.matches(doc)))
            .collect()
    };
    if let Some(by) = &q.sort_by {
        docs.sort_by(|a, b| {
            let o = sort_key_cmp(by, a, b);
            if q.descending { o.reverse() } else { o }
        });
    }
    let total = docs.len();
    let count = q.count.unwrap_or(st.max_results).min(st.max_results);
    let page: Vec<Value> = docs
        .into_iter()
        .skip(q.start.saturating_sub(1))
        .take(count)
        .map(|d| project(d, q))
        .collect();
    Ok(scim_json(StatusCode::OK, &list_response(page, total, q.start)))
}

async fn list_route(State(st): State<Arc<St>>, req: Req, kind: ObjectKind) -> Response {
    let rec = st.rec(&req, "list", Some(kind));
    let result = match Query::from_uri(&req.uri) {
        Ok(q) => run_query(&st, &req, &q, &[kind]).await,
        Err(e) => Err(e),
    };
    st.finish(rec, result)
}

async fn search_route(State(st): State<Arc<St>>, req: Req, body: Bytes, kind: Option<ObjectKind>) -> Response {
    let rec = st.rec(&req, "search", kind);
    let kinds = match kind {
        Some(k) => vec![k],
        None => vec![ObjectKind::User, ObjectKind::Group],
    };
    let result = match Query::from_search(&body) {
        Ok(q) => run_query(&st, &req, &q, &kinds).await,
        Err(e) => Err(e),
    };
    st.finish(rec, result)
}

async fn get_route(State(st): State<Arc<St>>, req: Req, Path(id): Path<String>, kind: ObjectKind) -> Response {
    let mut rec = st.rec(&req, "get", Some(kind));
    rec.resource = Some(id.clone());
    let result = async {
        let q = Query::from_uri(&req.uri)?;
        st.ensure_loaded().await?;
        let e = st.live(kind, &id)?;
        let none_match = req.headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok());
        if none_match.is_some_and(|m| etag_listed(m, &st.etag(&id, &e))) {
            return Ok(StatusCode::NOT_MODIFIED.into_response());
        }
        let base = st.base(&req);
        let mut r = st.resource_response(StatusCode::OK, &id, &e, &base);
        if !q.attributes.is_empty() || !q.excluded.is_empty() {
            let doc = project(st.render(&id, &e, &base), &q);
            *r.body_mut() = axum::body::Body::from(doc.to_string());
        }
        Ok(r)
    }
    .await;
    st.finish(rec, result)
}

fn etag_listed(header: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").trim_matches('"').to_owned();
    header.split(',').any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

// ---------------------------------------------------------------------------
// Writes

#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    Replace,
    Patch,
    Delete,
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad("invalidSyntax", format!("the body is not JSON: {e}")))
}

/// Cleans a document received: read-only attributes dropped, passwords
/// dropped (with a finding), booleans sent as text made booleans, required
/// attributes checked.
fn sanitize(kind: ObjectKind, mut doc: Map<String, Value>, rec: &mut Rec) -> Result<Map<String, Value>, ApiError> {
    for k in ["id", "meta"] {
        remove_ci(&mut doc, k);
    }
    if kind == ObjectKind::User {
        remove_ci(&mut doc, "groups");
        if get_ci(&doc, "password").is_some() {
            remove_ci(&mut doc, "password");
            rec.findings
                .push("password ignored: idsync never stores or writes passwords".into());
        }
        if let Some(v) = get_ci(&doc, "active").cloned() {
            match (v.is_null(), bool_of(&v)) {
                (true, _) => remove_ci(&mut doc, "active"),
                (false, Some(b)) => *entry_ci(&mut doc, "active") = Value::Bool(b),
                (false, None) => return Err(ApiError::bad("invalidValue", "active must be a boolean")),
            }
        }
    }
    // `primary` sent as text
    for v in doc.values_mut() {
        if let Value::Array(items) = v {
            for item in items {
                if let Some(o) = item.as_object_mut()
                    && let Some(p) = get_ci(o, "primary").and_then(|p| p.as_str().and_then(|_| bool_of(p)))
                {
                    *entry_ci(o, "primary") = Value::Bool(p);
                }
            }
        }
    }
    // nulls mean "unassigned"
    doc.retain(|_, v| !v.is_null());
    let schema = core_schema(kind);
    let schemas = entry_ci(&mut doc, "schemas");
    match schemas {
        Value::Array(list) => {
            if !list
                .iter()
                .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(schema)))
            {
                list.insert(0, Value::String(schema.to_owned()));
            }
        }
        other => *other = json!([schema]),
    }
    let required = match kind {
        ObjectKind::User => "userName",
        ObjectKind::Group => "displayName",
    };
    if get_ci(&doc, required)
        .and_then(Value::as_str)
        .is_none_or(|s| s.trim().is_empty())
    {
        return Err(ApiError::bad("invalidValue", format!("{required} is required")));
    }
    if get_ci(&doc, "externalId").is_some_and(|v| !v.is_string()) {
        return Err(ApiError::bad("invalidValue", "externalId must be a string"));
    }
    if let Some(members) = get_ci(&doc, "members") {
        let ok = members
            .as_array()
            .is_some_and(|m| m.iter().all(|m| m.get("value").is_some_and(Value::is_string)));
        if kind == ObjectKind::User || !ok {
            return Err(ApiError::bad("invalidValue", "members is a list of {\"value\": id}"));
        }
    }
    Ok(doc)
}

fn external_id(doc: &Map<String, Value>) -> Option<String> {
    get_ci(doc, "externalId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn member_values(doc: &Map<String, Value>) -> BTreeSet<String> {
    get_ci(doc, "members")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl St {
    /// 409 when another live resource has this `userName` (users) or
    /// `externalId`.
    fn check_unique(&self, kind: ObjectKind, doc: &Map<String, Value>, me: Option<&str>) -> Result<(), ApiError> {
        let index = self.index();
        let others = index
            .iter()
            .filter(|(id, e)| e.kind == kind && !e.deleted && Some(id.as_str()) != me);
        let user_name = get_ci(doc, "userName").and_then(Value::as_str).map(str::to_lowercase);
        let external = external_id(doc);
        for (_, e) in others {
            if kind == ObjectKind::User
                && let Some(u) = &user_name
                && get_ci(&e.resource, "userName")
                    .and_then(Value::as_str)
                    .is_some_and(|o| o.to_lowercase() == *u)
            {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    Some("uniqueness"),
                    format!("userName {u:?} is taken"),
                ));
            }
            if external.is_some() && external_id(&e.resource) == external {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    Some("uniqueness"),
                    "externalId is taken",
                ));
            }
        }
        Ok(())
    }

    /// Every member must be a live resource.
    fn check_members(&self, doc: &Map<String, Value>) -> Result<(), ApiError> {
        let index = self.index();
        for m in member_values(doc) {
            if index.get(&m).is_none_or(|e| e.deleted) {
                return Err(ApiError::bad(
                    "invalidValue",
                    format!("member {m:?} is not a known resource"),
                ));
            }
        }
        Ok(())
    }

    /// Disables `account` as the provider asked (DELETE or `active: false`),
    /// unless the rules say otherwise.
    async fn disable(&self, rec: &mut Rec, account: &TargetAccount, why: &str) -> Result<(), ApiError> {
        if !account.enabled {
            return Ok(());
        }
        if self.profile.rules.do_not_disable {
            rec.findings
                .push(format!("Do Not Disable: {why}, the account stays enabled"));
            return Ok(());
        }
        let caps = self.target.capabilities();
        let can = match account.kind {
            ObjectKind::User => caps.disable,
            ObjectKind::Group => caps.disable_groups,
        };
        if !can {
            rec.findings
                .push(format!("{why}, but the application cannot disable a {}", account.kind));
            return Ok(());
        }
        if caps.veto
            && let Veto::Deny(reason) = self.target.can_deprovision(account).await.map_err(ApiError::target)?
        {
            rec.findings
                .push(format!("{why}, but the application refused: {reason}"));
            return Ok(());
        }
        self.apply(
            rec,
            TargetOp::SetEnabled {
                target: account.id.clone(),
                kind: account.kind,
                enabled: false,
            },
        )
        .await?;
        Ok(())
    }

    /// Brings the account in line with `doc`: link, changed fields,
    /// enabled state, group members.
    async fn converge(
        &self,
        rec: &mut Rec,
        account: &TargetAccount,
        link: &Link,
        doc: &Map<String, Value>,
    ) -> Result<(), ApiError> {
        let id = &account.id;
        let kind = account.kind;
        if account.link.as_ref() != Some(link) {
            self.apply(
                rec,
                TargetOp::SetLink {
                    target: id.clone(),
                    kind,
                    link: link.clone(),
                },
            )
            .await?;
        }
        let want = self.fields(kind, &id.0, doc);
        let keys: BTreeSet<&String> = if self.profile.mapping.for_kind(kind).is_empty() {
            want.keys().chain(account.fields.keys()).collect()
        } else {
            want.keys()
                .chain(self.profile.mapping.for_kind(kind).iter().map(|m| &m.field))
                .collect()
        };
        let changes: Vec<FieldChange> = keys
            .into_iter()
            .filter(|k| want.get(*k) != account.fields.get(*k))
            .map(|k| FieldChange {
                field: k.clone(),
                old: account.fields.get(k).cloned(),
                new: want.get(k).cloned(),
            })
            .collect();
        if !changes.is_empty() {
            self.apply(
                rec,
                TargetOp::Update {
                    target: id.clone(),
                    kind,
                    changes,
                },
            )
            .await?;
        }
        let active = get_ci(doc, "active").and_then(bool_of).unwrap_or(true);
        let caps = self.target.capabilities();
        let can_enable = match kind {
            ObjectKind::User => caps.disable,
            ObjectKind::Group => caps.disable_groups,
        };
        if active && !account.enabled && !can_enable {
            rec.findings.push(format!(
                "the {kind} is disabled in the application, which cannot enable it"
            ));
        } else if active && !account.enabled {
            self.apply(
                rec,
                TargetOp::SetEnabled {
                    target: id.clone(),
                    kind,
                    enabled: true,
                },
            )
            .await?;
        } else if !active {
            self.disable(rec, account, "the identity provider set active to false")
                .await?;
        }
        if kind == ObjectKind::Group {
            let want = member_values(doc);
            let have: BTreeSet<String> = account.members.iter().map(|m| m.0.clone()).collect();
            for m in want.difference(&have) {
                self.apply(
                    rec,
                    TargetOp::AddMember {
                        group: id.clone(),
                        member: TargetId(m.clone()),
                    },
                )
                .await?;
            }
            let managed: Vec<String> = {
                let index = self.index();
                have.difference(&want)
                    .filter(|m| index.contains_key(*m))
                    .cloned()
                    .collect()
            };
            for m in managed {
                self.apply(
                    rec,
                    TargetOp::RemoveMember {
                        group: id.clone(),
                        member: TargetId(m),
                    },
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn create(&self, rec: &mut Rec, req: &Req, kind: ObjectKind, body: &[u8]) -> Result<Response, ApiError> {
        let doc = match parse_body(body)? {
            Value::Object(o) => o,
            _ => return Err(ApiError::bad("invalidSyntax", "a resource is a JSON object")),
        };
        let _writing = self.writes.lock().await;
        self.ensure_loaded().await?;
        let doc = sanitize(kind, doc, rec)?;
        self.check_unique(kind, &doc, None)?;
        self.check_members(&doc)?;
        let external = external_id(&doc).unwrap_or_else(|| format!("{GENERATED_PREFIX}{}", uuid::Uuid::new_v4()));
        let link = Link {
            profile: self.profile.id,
            external: external.into(),
        };
        rec.link = Some(link.clone());
        let existing = self.linked_account(kind, &link).await?;
        let id = match existing {
            Some(account) => {
                if self.index().get(&account.id.0).is_some_and(|e| !e.deleted) {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        Some("uniqueness"),
                        "a resource with this externalId exists",
                    ));
                }
                rec.findings.push(format!(
                    "the account {} already carries this link: it is taken over",
                    account.id
                ));
                self.converge(rec, &account, &link, &doc).await?;
                account.id
            }
            None => {
                let fields = self.fields(kind, "", &doc);
                let id = self
                    .apply(
                        rec,
                        TargetOp::Create {
                            kind,
                            link: link.clone(),
                            fields,
                        },
                    )
                    .await?
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            None,
                            "the application created the account but gave no id",
                        )
                    })?;
                // fields that depend on the id, enabled state and members
                let account = self
                    .linked_account(kind, &link)
                    .await?
                    .unwrap_or_else(|| TargetAccount {
                        link: Some(link.clone()),
                        fields: self.fields(kind, "", &doc),
                        ..TargetAccount::new(id.0.clone(), kind)
                    });
                self.converge(rec, &account, &link, &doc).await?;
                id
            }
        };
        rec.resource = Some(id.0.clone());
        let now = now();
        let entry = Entry {
            kind,
            link,
            resource: doc,
            created: now.clone(),
            modified: now,
            deleted: false,
        };
        self.index().insert(id.0.clone(), entry.clone());
        Ok(self.resource_response(StatusCode::CREATED, &id.0, &entry, &self.base(req)))
    }

    async fn write(
        &self,
        rec: &mut Rec,
        req: &Req,
        kind: ObjectKind,
        id: &str,
        body: &[u8],
        how: Write,
    ) -> Result<Response, ApiError> {
        let parsed = match how {
            Write::Delete => None,
            Write::Replace => match parse_body(body)? {
                Value::Object(o) => Some(Err(o)),
                _ => return Err(ApiError::bad("invalidSyntax", "a resource is a JSON object")),
            },
            Write::Patch => Some(Ok(
                PatchRequest::from_json(&parse_body(body)?).map_err(|e| ApiError::bad(e.scim_type, e.message))?
            )),
        };
        let _writing = self.writes.lock().await;
        self.ensure_loaded().await?;
        let mut entry = self.live(kind, id)?;
        rec.link = Some(entry.link.clone());
        if let Some(m) = req.headers.get(IF_MATCH).and_then(|v| v.to_str().ok())
            && !etag_listed(m, &self.etag(id, &entry))
        {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                None,
                format!("the resource changed: its version is {}", self.etag(id, &entry)),
            ));
        }
        let account = match self.linked_account(kind, &entry.link).await? {
            Some(a) if a.id.0 == id => a,
            _ => {
                self.index().remove(id);
                return Err(ApiError::not_found(format!(
                    "the application no longer has the account {id:?}"
                )));
            }
        };
        let doc = match parsed {
            None => {
                self.deprovision(rec, &account).await?;
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            Some(Err(doc)) => sanitize(kind, doc, rec)?,
            Some(Ok(patch)) => {
                let mut doc = entry.resource.clone();
                patch
                    .apply(&mut doc, &schemas::is_multi)
                    .map_err(|e| ApiError::bad(e.scim_type, e.message))?;
                sanitize(kind, doc, rec)?
            }
        };
        self.check_unique(kind, &doc, Some(id))?;
        self.check_members(&doc)?;
        let mut link = entry.link.clone();
        if let Some(external) = external_id(&doc)
            && external != link.external.0
        {
            let new = Link {
                profile: self.profile.id,
                external: external.into(),
            };
            if self.linked_account(kind, &new).await?.is_some() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    Some("uniqueness"),
                    "another account carries this externalId",
                ));
            }
            link = new;
        }
        rec.link = Some(link.clone());
        self.converge(rec, &account, &link, &doc).await?;
        entry.link = link;
        entry.resource = doc;
        entry.modified = now();
        self.index().insert(id.to_owned(), entry.clone());
        Ok(self.resource_response(StatusCode::OK, id, &entry, &self.base(req)))
    }

    /// A DELETE: the profile's deprovision rule.
    async fn deprovision(&self, rec: &mut Rec, account: &TargetAccount) -> Result<(), ApiError> {
        let id = account.id.0.clone();
        let why = "the identity provider deleted it";
        let rules = &self.profile.rules;
        let mut removed = false;
        if rules.do_not_disable {
            rec.findings
                .push(format!("Do Not Disable: {why}, the account is left as it is"));
        } else {
            match rules.deprovision {
                Deprovision::Leave => rec.findings.push(format!(
                    "deprovision rule is leave: {why}, the account is left as it is"
                )),
                Deprovision::Delete if self.target.capabilities().delete => {
                    let veto = if self.target.capabilities().veto {
                        self.target.can_deprovision(account).await.map_err(ApiError::target)?
                    } else {
                        Veto::Allow
                    };
                    match veto {
                        Veto::Deny(reason) => rec
                            .findings
                            .push(format!("{why}, but the application refused: {reason}")),
                        Veto::Allow => {
                            self.apply(
                                rec,
                                TargetOp::Delete {
                                    target: account.id.clone(),
                                    kind: account.kind,
                                },
                            )
                            .await?;
                            removed = true;
                        }
                    }
                }
                Deprovision::Delete => {
                    rec.findings
                        .push("the application cannot delete: disabling instead".into());
                    self.disable(rec, account, why).await?;
                }
                Deprovision::Disable => self.disable(rec, account, why).await?,
            }
        }
        let mut index = self.index();
        if removed {
            index.remove(&id);
            for e in index.values_mut() {
                if let Some(Value::Array(members)) = e.resource.get_mut("members") {
                    members.retain(|m| m.get("value").and_then(Value::as_str) != Some(id.as_str()));
                }
            }
        } else if let Some(e) = index.get_mut(&id) {
            e.deleted = true;
            e.modified = now();
        }
        Ok(())
    }
}

async fn create_route(State(st): State<Arc<St>>, req: Req, body: Bytes, kind: ObjectKind) -> Response {
    let mut rec = st.rec(&req, "create", Some(kind));
    let result = st.create(&mut rec, &req, kind, &body).await;
    st.finish(rec, result)
}

async fn write_route(
    State(st): State<Arc<St>>,
    req: Req,
    Path(id): Path<String>,
    body: Bytes,
    kind: ObjectKind,
    how: Write,
) -> Response {
    let action = match how {
        Write::Replace => "replace",
        Write::Patch => "patch",
        Write::Delete => "delete",
    };
    let mut rec = st.rec(&req, action, Some(kind));
    rec.resource = Some(id.clone());
    let result = st.write(&mut rec, &req, kind, &id, &body, how).await;
    st.finish(rec, result)
}
