//! A small stateful JSON CRUD server on 127.0.0.1 that can be shaped like
//! different REST APIs (HaloPSA, JobTraQ, …) to test the generic REST
//! adapter: resource paths, id field and type, unique fields, paging style,
//! auth style and the envelope around listed items, plus fault knobs (429
//! with `Retry-After`, 5xx).
//!
//! ```no_run
//! # async fn demo() -> Result<(), idsync_testkit::StartError> {
//! use idsync_testkit::rest::{Collection, Paging, RestServer, RestShape, ServerAuth, Fault};
//! let shape = RestShape {
//!     collections: vec![Collection::new("/contacts").unique(&["email"])],
//!     paging: Paging::OffsetLimit { offset_param: "offset".into(), limit_param: "limit".into() },
//!     envelope: Some("data".into()),
//!     total_field: Some("total".into()),
//!     auth: ServerAuth::ApiKeyHeader { header: "x-api-key".into(), key: "k".into() },
//!     ..RestShape::default()
//! };
//! let server = RestServer::start(shape).await?;
//! let id = server.insert("/contacts", serde_json::json!({ "email": "ann@example.org" }));
//! server.faults().fail_next(1, Fault::RateLimited { retry_after: Some(1) });
//! # Ok(()) }
//! ```
//!
//! Behaviour, for every collection `C` (e.g. `/Users`):
//! - `GET C` lists, paged as [`RestShape::paging`] says, filtered by the
//!   query parameters named in [`Collection::filters`] (text equality);
//! - `GET C/{id}` reads one (404 when unknown);
//! - `POST C` creates from an object (201 with the object) or, HaloPSA
//!   style, from an array of objects (200 with the array), where an element
//!   carrying the id of an existing object updates it instead;
//! - `PUT` and `PATCH C/{id}` merge the body into the object (200);
//! - `DELETE C/{id}` removes it (204);
//! - with [`Collection::members`] set to `members`: `POST C/{id}/members`
//!   with `{"id": …}` adds (409 when already there), `DELETE
//!   C/{id}/members/{member}` removes (404 when not there);
//! - a value of a [`Collection::unique`] field already held by another
//!   object (case-insensitive) is a 409;
//! - with [`ServerAuth::OAuth2`], `POST /oauth/token` issues bearer tokens
//!   for the client credentials (HTTP Basic or form body).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::StartError;

/// One collection of objects.
#[derive(Clone, Debug)]
pub struct Collection {
    /// The path, e.g. `/Users` or `/api/v1/contacts`.
    pub path: String,
    /// The id field (default `id`).
    pub id_field: String,
    /// Ids are JSON numbers 1, 2, … (default); otherwise strings `c1`, `c2`, ….
    pub numeric_ids: bool,
    /// Fields whose values must be unique (409 otherwise).
    pub unique: Vec<String>,
    /// Query parameters that filter a listing by field equality.
    pub filters: Vec<String>,
    /// The member-list field of group-like objects, served as a sub-path.
    pub members: Option<String>,
}

impl Collection {
    /// A collection at `path` with numeric `id`s.
    pub fn new(path: &str) -> Self {
        Collection {
            path: path.trim_end_matches('/').to_owned(),
            id_field: "id".into(),
            numeric_ids: true,
            unique: Vec::new(),
            filters: Vec::new(),
            members: None,
        }
    }

    /// Builder: the id field.
    pub fn id_field(mut self, field: &str) -> Self {
        self.id_field = field.to_owned();
        self
    }

    /// Builder: string ids.
    pub fn string_ids(mut self) -> Self {
        self.numeric_ids = false;
        self
    }

    /// Builder: unique fields.
    pub fn unique(mut self, fields: &[&str]) -> Self {
        self.unique = fields.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Builder: filter parameters.
    pub fn filters(mut self, fields: &[&str]) -> Self {
        self.filters = fields.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Builder: a member list field.
    pub fn members(mut self, field: &str) -> Self {
        self.members = Some(field.to_owned());
        self
    }
}

/// How listings are paged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Paging {
    /// Everything in one answer.
    #[default]
    None,
    /// `?offset=N&limit=M`.
    OffsetLimit {
        /// The offset parameter.
        offset_param: String,
        /// The limit parameter.
        limit_param: String,
    },
    /// `?page=N&page_size=M`, pages counted from 1.
    PageNumber {
        /// The page parameter.
        page_param: String,
        /// The page size parameter.
        size_param: String,
    },
    /// `?cursor=TOKEN&limit=M`; the next token (or `null` on the last page)
    /// is put into the envelope at `next_field`.
    Cursor {
        /// The cursor parameter.
        cursor_param: String,
        /// The page size parameter.
        size_param: String,
        /// The envelope field of the next cursor.
        next_field: String,
    },
    /// `?page=N&per_page=M` with `Link: <…>; rel="next"` (RFC 8288).
    LinkHeader {
        /// The page parameter.
        page_param: String,
        /// The page size parameter.
        size_param: String,
    },
}

/// How requests authenticate.
#[derive(Clone, Debug, Default)]
pub enum ServerAuth {
    /// Anyone.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// HTTP Basic.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// An API key in a header.
    ApiKeyHeader {
        /// The header name.
        header: String,
        /// The key.
        key: String,
    },
    /// An API key in a query parameter.
    ApiKeyQuery {
        /// The parameter.
        param: String,
        /// The key.
        key: String,
    },
    /// OAuth2 client credentials at `POST /oauth/token`, then bearer tokens.
    OAuth2 {
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: String,
    },
}

/// The shape of the API served.
#[derive(Clone, Debug)]
pub struct RestShape {
    /// The collections.
    pub collections: Vec<Collection>,
    /// The paging style.
    pub paging: Paging,
    /// The page size when the request names none (default 10).
    pub default_page_size: usize,
    /// `Some(field)`: listings answer `{field: [items], …}`; `None`: a bare array.
    pub envelope: Option<String>,
    /// The envelope field holding the total count, if any.
    pub total_field: Option<String>,
    /// Authentication.
    pub auth: ServerAuth,
}

impl Default for RestShape {
    fn default() -> Self {
        RestShape {
            collections: Vec::new(),
            paging: Paging::None,
            default_page_size: 10,
            envelope: None,
            total_field: None,
            auth: ServerAuth::None,
        }
    }
}

/// What a faulted request gets instead of its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429, with `Retry-After: <seconds>` when `Some`.
    RateLimited {
        /// The header's value in seconds.
        retry_after: Option<u64>,
    },
    /// A status such as 500 or 503.
    Status(u16),
}

/// Fault knobs, settable while the server runs. Faults are injected
/// before authentication; the token endpoint is never faulted.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    plan: Arc<Mutex<FaultPlan>>,
}

#[derive(Debug, Default)]
struct FaultPlan {
    next: Option<(usize, Fault)>,
    every: Option<(u64, u64, Fault)>,
}

impl Faults {
    fn plan(&self) -> MutexGuard<'_, FaultPlan> {
        self.plan.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next `count` requests get `fault`.
    pub fn fail_next(&self, count: usize, fault: Fault) {
        self.plan().next = (count > 0).then_some((count, fault));
    }

    /// Every `n`-th request from now on gets `fault` (`0` turns it off).
    pub fn fail_every(&self, n: u64, fault: Fault) {
        self.plan().every = (n > 0).then_some((n, 0, fault));
    }

    /// Turns every knob off.
    pub fn clear(&self) {
        *self.plan() = FaultPlan::default();
    }

    fn draw(&self) -> Option<Fault> {
        let mut plan = self.plan();
        let mut fault = None;
        if let Some((left, f)) = &mut plan.next {
            fault = Some(*f);
            *left -= 1;
            if *left == 0 {
                plan.next = None;
            }
        }
        if let Some((n, seen, f)) = &mut plan.every {
            *seen += 1;
            if fault.is_none() && *seen % *n == 0 {
                fault = Some(*f);
            }
        }
        fault
    }
}

#[derive(Debug, Default)]
struct Store {
    items: BTreeMap<String, Vec<Value>>,
    next_id: BTreeMap<String, u64>,
    tokens: HashSet<String>,
    requests: Vec<(Method, String)>,
    faulted: u64,
}

#[derive(Debug)]
struct Shared {
    shape: RestShape,
    addr: SocketAddr,
    store: Mutex<Store>,
    faults: Faults,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn collection(&self, path: &str) -> Option<&Collection> {
        self.shape.collections.iter().find(|c| c.path == path)
    }
}

/// A running server on 127.0.0.1; stopped on drop.
#[derive(Debug)]
pub struct RestServer {
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RestServer {
    /// Starts a server of this shape on a free port of 127.0.0.1.
    pub async fn start(shape: RestShape) -> Result<RestServer, StartError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let mut store = Store::default();
        for c in &shape.collections {
            store.items.insert(c.path.clone(), Vec::new());
        }
        let shared = Arc::new(Shared {
            shape,
            addr,
            store: Mutex::new(store),
            faults: Faults::default(),
        });
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!("test REST server stopped: {e}");
            }
        });
        Ok(RestServer {
            shared,
            shutdown: Some(tx),
            task,
        })
    }

    /// `http://127.0.0.1:<port>` (collection paths go below it).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The token endpoint of [`ServerAuth::OAuth2`].
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.base_url())
    }

    /// The fault knobs.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Adds an object to a collection as a `POST` would (its id assigned
    /// unless it has one) and returns the id as text. Panics on an unknown collection.
    pub fn insert(&self, collection: &str, object: Value) -> String {
        let c = self
            .shared
            .collection(collection)
            .unwrap_or_else(|| panic!("no collection {collection}"));
        let mut store = self.shared.store();
        let v = store_create(&mut store, c, object);
        id_text(&v, c)
    }

    /// Every object of a collection, in creation order.
    pub fn items(&self, collection: &str) -> Vec<Value> {
        self.shared.store().items.get(collection).cloned().unwrap_or_default()
    }

    /// One object by id (as text).
    pub fn item(&self, collection: &str, id: &str) -> Option<Value> {
        let c = self.shared.collection(collection)?;
        self.items(collection).into_iter().find(|v| id_text(v, c) == id)
    }

    /// The object of a collection whose `field` is `value` (text equality).
    pub fn find(&self, collection: &str, field: &str, value: &str) -> Option<Value> {
        self.items(collection)
            .into_iter()
            .find(|v| v.get(field).and_then(scalar).as_deref() == Some(value))
    }

    /// How many requests arrived (faulted included), all paths.
    pub fn requests(&self) -> usize {
        self.shared.store().requests.len()
    }

    /// How many `method` requests arrived for this exact path (no query).
    pub fn requests_to(&self, method: &str, path: &str) -> usize {
        self.shared
            .store()
            .requests
            .iter()
            .filter(|(m, p)| m.as_str() == method && p == path)
            .count()
    }

    /// How many requests got a fault.
    pub fn faulted_requests(&self) -> u64 {
        self.shared.store().faulted
    }
}

impl Drop for RestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn id_text(v: &Value, c: &Collection) -> String {
    v.get(&c.id_field).and_then(scalar).unwrap_or_default()
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn store_create(store: &mut Store, c: &Collection, mut object: Value) -> Value {
    if !object.is_object() {
        object = Value::Object(Map::new());
    }
    let has_id = object.get(&c.id_field).is_some_and(|v| !v.is_null());
    if !has_id {
        let n = store.next_id.entry(c.path.clone()).or_insert(0);
        *n += 1;
        let id = if c.numeric_ids {
            json!(*n)
        } else {
            json!(format!("c{n}"))
        };
        if let Some(map) = object.as_object_mut() {
            map.insert(c.id_field.clone(), id);
        }
    }
    if let Some(field) = &c.members
        && let Some(map) = object.as_object_mut()
    {
        map.entry(field.clone()).or_insert_with(|| json!([]));
    }
    store.items.entry(c.path.clone()).or_default().push(object.clone());
    object
}

/// Deep-merges `patch` into `target` (objects merge, anything else replaces).
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// A 409 when `object` would share a unique value with another object.
fn unique_clash(store: &Store, c: &Collection, object: &Value, except: Option<&str>) -> Option<Response> {
    for field in &c.unique {
        let Some(value) = object.get(field).and_then(scalar).map(|s| s.to_lowercase()) else {
            continue;
        };
        let clash = store.items.get(&c.path).into_iter().flatten().any(|o| {
            Some(id_text(o, c).as_str()) != except
                && o.get(field).and_then(scalar).map(|s| s.to_lowercase()) == Some(value.clone())
        });
        if clash {
            return Some(error(StatusCode::CONFLICT, &format!("{field} already exists")));
        }
    }
    None
}

/// `application/x-www-form-urlencoded` pairs (query strings, token request bodies).
fn form_pairs(text: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(text)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && s.is_char_boundary(i + 3) => {
                match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query().map(|q| form_pairs(q.as_bytes())).unwrap_or_default()
}

fn authorized(shared: &Shared, headers: &HeaderMap, query: &[(String, String)]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let bearer = header("authorization").strip_prefix("Bearer ").unwrap_or("").to_owned();
    match &shared.shape.auth {
        ServerAuth::None => true,
        ServerAuth::Bearer(token) => &bearer == token,
        ServerAuth::Basic { username, password } => header("authorization") == basic(username, password),
        ServerAuth::ApiKeyHeader { header: name, key } => header(name) == key,
        ServerAuth::ApiKeyQuery { param, key } => query.iter().any(|(k, v)| k == param && v == key),
        ServerAuth::OAuth2 { .. } => shared.store().tokens.contains(&bearer),
    }
}

/// The `Authorization` header value of HTTP Basic for these credentials
/// (tests use it to check that it is never logged).
pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn token(shared: &Shared, headers: &HeaderMap, body: &Bytes) -> Response {
    let ServerAuth::OAuth2 {
        client_id,
        client_secret,
    } = &shared.shape.auth
    else {
        return error(StatusCode::NOT_FOUND, "no token endpoint");
    };
    let form = form_pairs(body);
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let by_basic = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&basic(client_id, client_secret));
    let by_form =
        get("client_id").as_deref() == Some(client_id) && get("client_secret").as_deref() == Some(client_secret);
    if get("grant_type").as_deref() != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    if !(by_basic || by_form) {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "invalid_client"}))).into_response();
    }
    let mut store = shared.store();
    let t = format!("tok-{}", store.tokens.len() + 1);
    store.tokens.insert(t.clone());
    axum::Json(json!({"access_token": t, "token_type": "bearer", "expires_in": 3600})).into_response()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_owned();
    shared.store().requests.push((method.clone(), path.clone()));
    if path == "/oauth/token" && method == Method::POST {
        return token(&shared, &headers, &body);
    }
    if let Some(fault) = shared.faults.draw() {
        shared.store().faulted += 1;
        return match fault {
            Fault::RateLimited { retry_after } => {
                let mut r = error(StatusCode::TOO_MANY_REQUESTS, "slow down");
                if let Some(secs) = retry_after {
                    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                r
            }
            Fault::Status(code) => error(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "injected failure",
            ),
        };
    }
    let query = query_pairs(&uri);
    if !authorized(&shared, &headers, &query) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let body: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(_) => return error(StatusCode::BAD_REQUEST, "body is not JSON"),
        }
    };
    // Find the collection: the longest collection path the request path starts with.
    let Some(c) = shared
        .shape
        .collections
        .iter()
        .filter(|c| path == c.path || path.starts_with(&format!("{}/", c.path)))
        .max_by_key(|c| c.path.len())
    else {
        return error(StatusCode::NOT_FOUND, "no such resource");
    };
    let rest: Vec<String> = path[c.path.len()..]
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| decode(&s.replace('+', "%2B")))
        .collect();
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (method.clone(), rest.as_slice()) {
        (Method::GET, []) => list(&shared, c, &uri, &query),
        (Method::POST, []) => create(&shared, c, body),
        (Method::GET, [id]) => match shared
            .store()
            .items
            .get(&c.path)
            .into_iter()
            .flatten()
            .find(|v| id_text(v, c) == *id)
        {
            Some(v) => axum::Json(v.clone()).into_response(),
            None => error(StatusCode::NOT_FOUND, "no such object"),
        },
        (Method::PUT | Method::PATCH, [id]) => update(&shared, c, id, body.unwrap_or(Value::Null)),
        (Method::DELETE, [id]) => {
            let mut store = shared.store();
            let items = store.items.entry(c.path.clone()).or_default();
            let before = items.len();
            items.retain(|v| id_text(v, c) != *id);
            if items.len() == before {
                return error(StatusCode::NOT_FOUND, "no such object");
            }
            StatusCode::NO_CONTENT.into_response()
        }
        (m, [id, field, more @ ..]) if c.members.as_deref() == Some(*field) && more.len() <= 1 => {
            members(&shared, c, &m, id, field, more.first().copied(), body)
        }
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "not supported here"),
    }
}

fn list(shared: &Shared, c: &Collection, uri: &Uri, query: &[(String, String)]) -> Response {
    let all: Vec<Value> = shared
        .store()
        .items
        .get(&c.path)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|v| {
            query
                .iter()
                .filter(|(k, _)| c.filters.contains(k))
                .all(|(k, want)| v.get(k).and_then(scalar).as_deref() == Some(want.as_str()))
        })
        .collect();
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let num = |k: &str, default: usize| get(k).and_then(|v| v.parse::<usize>().ok()).unwrap_or(default);
    let size_default = shared.shape.default_page_size.max(1);
    let total = all.len();
    let mut next_cursor = Value::Null;
    let mut link = None;
    let page: Vec<Value> = match &shared.shape.paging {
        Paging::None => all,
        Paging::OffsetLimit {
            offset_param,
            limit_param,
        } => {
            let (offset, limit) = (num(offset_param, 0), num(limit_param, size_default).max(1));
            all.into_iter().skip(offset).take(limit).collect()
        }
        Paging::PageNumber { page_param, size_param } => {
            let (page, size) = (num(page_param, 1).max(1), num(size_param, size_default).max(1));
            all.into_iter().skip((page - 1) * size).take(size).collect()
        }
        Paging::Cursor {
            cursor_param,
            size_param,
            ..
        } => {
            let offset = get(cursor_param)
                .and_then(|c| c.strip_prefix("after-"))
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0);
            let size = num(size_param, size_default).max(1);
            if offset + size < total {
                next_cursor = json!(format!("after-{}", offset + size));
            }
            all.into_iter().skip(offset).take(size).collect()
        }
        Paging::LinkHeader { page_param, size_param } => {
            let (page, size) = (num(page_param, 1).max(1), num(size_param, size_default).max(1));
            if page * size < total {
                let mut pairs: Vec<(String, String)> = query.iter().filter(|(k, _)| k != page_param).cloned().collect();
                pairs.push((page_param.clone(), (page + 1).to_string()));
                let q = pairs
                    .iter()
                    .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                link = Some(format!("<{}?{q}>; rel=\"next\"", uri.path()));
            }
            all.into_iter().skip((page - 1) * size).take(size).collect()
        }
    };
    let mut response = match &shared.shape.envelope {
        None => axum::Json(Value::Array(page)).into_response(),
        Some(field) => {
            let mut env = Map::new();
            env.insert(field.clone(), Value::Array(page));
            if let Some(t) = &shared.shape.total_field {
                env.insert(t.clone(), json!(total));
            }
            if let Paging::Cursor { next_field, .. } = &shared.shape.paging {
                env.insert(next_field.clone(), next_cursor);
            }
            axum::Json(Value::Object(env)).into_response()
        }
    };
    if let Some(l) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, l);
    }
    response
}

fn create(shared: &Shared, c: &Collection, body: Option<Value>) -> Response {
    let mut store = shared.store();
    match body {
        Some(Value::Array(objects)) => {
            let mut out = Vec::new();
            for o in objects {
                let id = o.get(&c.id_field).and_then(scalar);
                let existing = id
                    .as_deref()
                    .and_then(|id| store.items.get(&c.path)?.iter().position(|v| id_text(v, c) == id));
                if let Some(r) = unique_clash(&store, c, &o, id.as_deref()) {
                    return r;
                }
                match existing {
                    Some(pos) => {
                        let items = store.items.entry(c.path.clone()).or_default();
                        merge(&mut items[pos], &o);
                        out.push(items[pos].clone());
                    }
                    None => out.push(store_create(&mut store, c, o)),
                }
            }
            (StatusCode::OK, axum::Json(Value::Array(out))).into_response()
        }
        Some(o @ Value::Object(_)) => {
            if let Some(r) = unique_clash(&store, c, &o, None) {
                return r;
            }
            let v = store_create(&mut store, c, o);
            let mut r = (StatusCode::CREATED, axum::Json(v.clone())).into_response();
            if let Ok(l) = HeaderValue::from_str(&format!("{}/{}", c.path, id_text(&v, c))) {
                r.headers_mut().insert(header::LOCATION, l);
            }
            r
        }
        _ => error(StatusCode::BAD_REQUEST, "expected an object or an array of objects"),
    }
}

fn update(shared: &Shared, c: &Collection, id: &str, patch: Value) -> Response {
    if !patch.is_object() {
        return error(StatusCode::BAD_REQUEST, "expected an object");
    }
    let mut store = shared.store();
    if let Some(r) = unique_clash(&store, c, &patch, Some(id)) {
        return r;
    }
    let items = store.items.entry(c.path.clone()).or_default();
    let Some(v) = items.iter_mut().find(|v| id_text(v, c) == id) else {
        return error(StatusCode::NOT_FOUND, "no such object");
    };
    merge(v, &patch);
    if let Some(map) = v.as_object_mut()
        && let Some(n) = id.parse::<u64>().ok().filter(|_| c.numeric_ids)
    {
        map.insert(c.id_field.clone(), json!(n));
    }
    axum::Json(v.clone()).into_response()
}

fn members(
    shared: &Shared,
    c: &Collection,
    method: &Method,
    id: &str,
    field: &str,
    member: Option<&str>,
    body: Option<Value>,
) -> Response {
    let mut store = shared.store();
    let items = store.items.entry(c.path.clone()).or_default();
    let Some(group) = items.iter_mut().find(|v| id_text(v, c) == id) else {
        return error(StatusCode::NOT_FOUND, "no such group");
    };
    let Some(list) = group
        .as_object_mut()
        .map(|m| m.entry(field.to_owned()).or_insert_with(|| json!([])))
        .and_then(Value::as_array_mut)
    else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "members is not an array");
    };
    match (method, member) {
        (&Method::GET, None) => axum::Json(Value::Array(list.clone())).into_response(),
        (&Method::POST, None) => {
            let Some(m) = body
                .as_ref()
                .and_then(|b| b.get("id"))
                .filter(|v| !v.is_null())
                .cloned()
            else {
                return error(StatusCode::BAD_REQUEST, "expected {\"id\": …}");
            };
            if list.iter().any(|x| scalar(x) == scalar(&m)) {
                return error(StatusCode::CONFLICT, "already a member");
            }
            list.push(m);
            StatusCode::NO_CONTENT.into_response()
        }
        (&Method::DELETE, Some(m)) => {
            let before = list.len();
            list.retain(|x| scalar(x).as_deref() != Some(m));
            if list.len() == before {
                return error(StatusCode::NOT_FOUND, "not a member");
            }
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "not supported here"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        assert_eq!(base64(b"bob:pw"), "Ym9iOnB3");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(decode("a%3Ab+c%zz"), "a:b c%zz");
        assert_eq!(encode("a:b c"), "a%3Ab%20c");
    }
}
