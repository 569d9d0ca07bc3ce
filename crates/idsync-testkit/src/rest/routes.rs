//! HTTP: the one handler that routes every request, and what each route does.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};
use url::form_urlencoded;

use super::auth::{authorized, token};
use super::store::{Store, id_text, merge, scalar, store_create};
use super::wire::{error, form_pairs};
use super::{Collection, Paging, Shared};
use crate::fault::Fault;

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

/// Routes every request (the router's fallback).
pub(super) async fn handle(
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
    if let Some(fault) = shared.faults.intercept(&method).await {
        let message = match fault {
            Fault::RateLimited { .. } => "slow down",
            Fault::Status(_) => "injected failure",
        };
        return fault.respond(axum::Json(json!({ "error": message })));
    }
    let query = uri.query().map(|q| form_pairs(q.as_bytes())).unwrap_or_default();
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
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
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
                let q = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs)
                    .finish();
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
