//! Reads: discovery, list and `/.search` (filter, sort, page, projection)
//! and GET of one resource (`If-None-Match`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::IF_NONE_MATCH;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use idsync_core::ObjectKind;
use idsync_scim::json::{entry_ci, get_ci, remove_ci};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, scim_json};
use crate::filter::{AttrRef, Filter, sort_key_cmp};
use crate::schemas::{self, LIST_RESPONSE, SEARCH_REQUEST};
use crate::state::{RequestInfo, ServerState};
use crate::store::{etag_listed, render};

type Shared = State<Arc<ServerState>>;

fn list_response(resources: Vec<Value>, total: usize, start: usize) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// Answers with every discovery document of a list.
fn all_of(state: &ServerState, req: &RequestInfo, all: Vec<Value>) -> Response {
    let record = state.record(req, "discovery", None);
    let n = all.len();
    state.finish(record, Ok(scim_json(StatusCode::OK, &list_response(all, n, 1))))
}

/// Answers with the discovery document `id` (any case) of a list.
fn one_of(state: &ServerState, req: &RequestInfo, all: Vec<Value>, id: &str, what: &str) -> Response {
    let record = state.record(req, "discovery", None);
    let found = all
        .into_iter()
        .find(|s| s["id"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(id)));
    let result = found
        .map(|s| scim_json(StatusCode::OK, &s))
        .ok_or_else(|| ApiError::not_found(format!("no {what} {id:?}")));
    state.finish(record, result)
}

pub(crate) async fn discovery_spc(State(state): Shared, req: RequestInfo) -> Response {
    let record = state.record(&req, "discovery", None);
    let body = schemas::service_provider_config(&state.base(&req), state.max_results);
    state.finish(record, Ok(scim_json(StatusCode::OK, &body)))
}

pub(crate) async fn discovery_schemas(State(state): Shared, req: RequestInfo) -> Response {
    all_of(&state, &req, schemas::schemas(&state.base(&req)))
}

pub(crate) async fn discovery_schema(State(state): Shared, req: RequestInfo, Path(id): Path<String>) -> Response {
    one_of(&state, &req, schemas::schemas(&state.base(&req)), &id, "schema")
}

pub(crate) async fn discovery_resource_types(State(state): Shared, req: RequestInfo) -> Response {
    all_of(&state, &req, schemas::resource_types(&state.base(&req)))
}

pub(crate) async fn discovery_resource_type(
    State(state): Shared,
    req: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    one_of(
        &state,
        &req,
        schemas::resource_types(&state.base(&req)),
        &id,
        "resource type",
    )
}

pub(crate) async fn not_found_route(State(state): Shared, req: RequestInfo) -> Response {
    let record = state.record(&req, "unknown", None);
    state.finish(
        record,
        Err(ApiError::not_found(format!("no endpoint {}", req.uri.path()))),
    )
}

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

async fn run_query(
    state: &ServerState,
    req: &RequestInfo,
    q: &Query,
    kinds: &[ObjectKind],
) -> Result<Response, ApiError> {
    state.store.load(state.target.as_ref(), state.profile.id).await?;
    let base = state.base(req);
    let mut docs: Vec<Value> = {
        let documents = state.store.lock();
        documents
            .iter()
            .filter(|(_, d)| !d.deleted && kinds.contains(&d.kind))
            .map(|(id, d)| render(&documents, id, d, &base))
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
    let count = q.count.unwrap_or(state.max_results).min(state.max_results);
    let page: Vec<Value> = docs
        .into_iter()
        .skip(q.start.saturating_sub(1))
        .take(count)
        .map(|d| project(d, q))
        .collect();
    Ok(scim_json(StatusCode::OK, &list_response(page, total, q.start)))
}

pub(crate) async fn list_route(State(state): Shared, req: RequestInfo, kind: ObjectKind) -> Response {
    let record = state.record(&req, "list", Some(kind));
    let result = match Query::from_uri(&req.uri) {
        Ok(q) => run_query(&state, &req, &q, &[kind]).await,
        Err(e) => Err(e),
    };
    state.finish(record, result)
}

pub(crate) async fn search_route(
    State(state): Shared,
    req: RequestInfo,
    body: Bytes,
    kind: Option<ObjectKind>,
) -> Response {
    let record = state.record(&req, "search", kind);
    let kinds = match kind {
        Some(k) => vec![k],
        None => vec![ObjectKind::User, ObjectKind::Group],
    };
    let result = match Query::from_search(&body) {
        Ok(q) => run_query(&state, &req, &q, &kinds).await,
        Err(e) => Err(e),
    };
    state.finish(record, result)
}

pub(crate) async fn get_route(
    State(state): Shared,
    req: RequestInfo,
    Path(id): Path<String>,
    kind: ObjectKind,
) -> Response {
    let mut record = state.record(&req, "get", Some(kind));
    record.resource = Some(id.clone());
    let result = async {
        let q = Query::from_uri(&req.uri)?;
        state.store.load(state.target.as_ref(), state.profile.id).await?;
        let document = state.store.live(kind, &id)?;
        let none_match = req.headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok());
        if none_match.is_some_and(|m| etag_listed(m, &state.store.etag(&id, &document))) {
            return Ok(StatusCode::NOT_MODIFIED.into_response());
        }
        let base = state.base(&req);
        let mut r = state.resource_response(StatusCode::OK, &id, &document, &base);
        if !q.attributes.is_empty() || !q.excluded.is_empty() {
            let doc = project(state.store.render(&id, &document, &base), &q);
            *r.body_mut() = axum::body::Body::from(doc.to_string());
        }
        Ok(r)
    }
    .await;
    state.finish(record, result)
}
