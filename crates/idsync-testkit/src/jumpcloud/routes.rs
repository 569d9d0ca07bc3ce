//! HTTP: the router, authentication and one handler per documented route.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::Shared;
use super::error::ApiError;
use super::query::{Api, ListQuery, lookup};

type Ctx = State<Arc<Shared>>;
type Params = Query<Vec<(String, String)>>;
type Answer = Result<Response, ApiError>;

/// The whole API under `/api` and `/api/v2`.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/systemusers", get(list_users).post(create_user))
        .route(
            "/api/systemusers/{id}",
            get(get_user).put(update_user).delete(delete_user),
        )
        .route("/api/systemusers/{id}/state/activate", post(activate_user))
        .route("/api/systemusers/{id}/unlock", post(unlock_user))
        .route("/api/search/systemusers", post(search_users))
        .route("/api/v2/usergroups", get(list_groups).post(create_group))
        .route(
            "/api/v2/usergroups/{id}",
            get(get_group).put(put_group).patch(patch_group).delete(delete_group),
        )
        .route("/api/v2/usergroups/{id}/members", get(list_members).post(change_member))
        .route("/api/v2/usergroups/{id}/membership", get(list_membership))
        .route("/api/v2/users/{id}/memberof", get(list_member_of))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "Not Found") })
        .layer(middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared)
}

/// Counts, injects faults, then checks `x-api-key` and `x-org-id`.
async fn guard(State(shared): Ctx, req: Request, next: Next) -> Response {
    {
        let mut c = shared.counters();
        c.total += 1;
        *c.per_path.entry(req.uri().path().to_owned()).or_default() += 1;
    }
    if let Some(fault) = shared.faults.intercept(req.method()).await {
        let status = fault.status();
        let reason = status.canonical_reason().unwrap_or("Server Error");
        return fault.respond(ApiError::new(status, reason));
    }
    match authorize(&shared, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let header = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    if header("x-api-key") != Some(shared.api_key.as_str()) {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized"));
    }
    let Some(org) = shared.org_id() else {
        return Ok(()); // single-tenant key: x-org-id is accepted and ignored
    };
    match header("x-org-id") {
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "x-org-id header is required for this administrator",
        )),
        Some(o) if !is_object_id(o) => Err(ApiError::bad_request(format!("invalid x-org-id \"{o}\""))),
        Some(o) if o != org => Err(ApiError::not_found("organization", o)),
        Some(_) => Ok(()),
    }
}

/// 24 lowercase hex characters.
fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn json_body(bytes: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::details(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

fn ok(body: Value) -> Answer {
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// A v2 list: a bare array plus `x-total-count`.
fn v2_list(page: Vec<Value>, total: usize) -> Answer {
    let mut r = (StatusCode::OK, axum::Json(Value::Array(page))).into_response();
    r.headers_mut().insert("x-total-count", HeaderValue::from(total));
    Ok(r)
}

// ---- v1 system users ----

/// The v1 list envelope.
fn v1_list(shared: &Shared, q: &ListQuery) -> Answer {
    let (page, total) = q.apply(shared.store().users(), "_id");
    ok(json!({ "totalCount": total, "results": page }))
}

async fn list_users(State(s): Ctx, Query(p): Params) -> Answer {
    v1_list(&s, &ListQuery::parse(Api::V1, &p)?)
}

/// `POST /api/search/systemusers`: the query-string `filter`, `fields`,
/// `limit`, `skip`, plus in the body `filter` as an array of exact-match
/// objects (ANDed) and `fields`, `limit`, `skip`. `searchFilter`,
/// `$regex` and `and`/`or` objects are not implemented (400).
async fn search_users(State(s): Ctx, Query(mut p): Params, body: Bytes) -> Answer {
    let body = if body.is_empty() { json!({}) } else { json_body(&body)? };
    for key in ["fields", "limit", "skip"] {
        match body.get(key) {
            Some(Value::String(v)) => p.push((key.into(), v.clone())),
            Some(Value::Number(n)) => p.push((key.into(), n.to_string())),
            _ => {}
        }
    }
    let mut exact = Vec::new();
    match body.get("filter") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(f) => p.push(("filter".into(), f.clone())),
                    Value::Object(m) if m.values().all(|v| !v.is_object()) => exact.extend(m.clone()),
                    _ => return Err(ApiError::bad_request("unsupported search filter")),
                }
            }
        }
        Some(_) => return Err(ApiError::bad_request("unsupported search filter")),
    }
    if body.get("searchFilter").is_some() {
        return Err(ApiError::bad_request("searchFilter is not supported by this fake"));
    }
    let q = ListQuery::parse(Api::V1, &p)?;
    let users = s
        .store()
        .users()
        .into_iter()
        .filter(|u| exact.iter().all(|(k, v)| lookup(u, k) == Some(v)));
    let (page, total) = q.apply(users.collect(), "_id");
    ok(json!({ "totalCount": total, "results": page }))
}

async fn get_user(State(s): Ctx, Path(id): Path<String>, Query(p): Params) -> Answer {
    let q = ListQuery::parse(Api::V1, &p)?;
    let user = s.store().user(&id).ok_or_else(|| ApiError::not_found("user", &id))?;
    ok(q.project(user, "_id"))
}

/// Create answers 200, not 201 ([spec]).
async fn create_user(State(s): Ctx, body: Bytes) -> Answer {
    let user = s.store().create_user(json_body(&body)?)?;
    ok(user)
}

async fn update_user(State(s): Ctx, Path(id): Path<String>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let user = s.store().update_user(&id, body)?;
    ok(user)
}

async fn delete_user(State(s): Ctx, Path(id): Path<String>, Query(p): Params) -> Answer {
    let cascade = p.iter().any(|(k, v)| k == "cascade_manager" && v == "null");
    let user = s.store().delete_user(&id, cascade)?;
    ok(user)
}

/// Answers a JSON string, as the spec's "a string" response.
async fn activate_user(State(s): Ctx, Path(id): Path<String>) -> Answer {
    s.store().activate_user(&id)?;
    ok(json!(""))
}

async fn unlock_user(State(s): Ctx, Path(id): Path<String>) -> Answer {
    s.store().unlock_user(&id)?;
    ok(json!(""))
}

// ---- v2 user groups ----

async fn list_groups(State(s): Ctx, Query(p): Params) -> Answer {
    let q = ListQuery::parse(Api::V2, &p)?;
    let (page, total) = q.apply(s.store().groups(), "id");
    v2_list(page, total)
}

async fn create_group(State(s): Ctx, body: Bytes) -> Answer {
    let group = s.store().create_group(json_body(&body)?)?;
    Ok((StatusCode::CREATED, axum::Json(group)).into_response())
}

async fn get_group(State(s): Ctx, Path(id): Path<String>, Query(p): Params) -> Answer {
    let q = ListQuery::parse(Api::V2, &p)?;
    let group = s
        .store()
        .group(&id)
        .ok_or_else(|| ApiError::not_found("user group", &id))?;
    ok(q.project(group, "id"))
}

async fn put_group(State(s): Ctx, Path(id): Path<String>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let group = s.store().update_group(&id, body, true)?;
    ok(group)
}

/// PATCH was hidden in S19 ("use PUT") and is gone since; served here as
/// a partial update so an old client does not crash, but do not use it.
async fn patch_group(State(s): Ctx, Path(id): Path<String>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let group = s.store().update_group(&id, body, false)?;
    ok(group)
}

/// 204 without a body (the spec also allows 200 with the group).
async fn delete_group(State(s): Ctx, Path(id): Path<String>) -> Answer {
    s.store().delete_group(&id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Direct members as `GraphConnection`s; `limit`/`skip` only ([spec]).
async fn list_members(State(s): Ctx, Path(id): Path<String>, Query(p): Params) -> Answer {
    let q = ListQuery::parse(Api::V2, &p)?;
    let members = s.store().members(&id)?;
    let total = members.len();
    let page = members
        .into_iter()
        .skip(q.skip)
        .take(q.limit)
        .map(|m| json!({ "to": { "id": m, "type": "user" }, "attributes": null }))
        .collect();
    v2_list(page, total)
}

/// `{ "op": "add" | "remove" | "update", "type": "user", "id": … }` → 204.
/// `update` (S26 only, attributes of the edge) is a no-op on a member.
async fn change_member(State(s): Ctx, Path(group): Path<String>, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    let text = |k| body.get(k).and_then(Value::as_str);
    if text("type") != Some("user") {
        return Err(ApiError::details(StatusCode::BAD_REQUEST, "type must be \"user\""));
    }
    let Some(user) = text("id").filter(|id| !id.is_empty()) else {
        return Err(ApiError::details(StatusCode::BAD_REQUEST, "id is required"));
    };
    let mut store = s.store();
    match text("op") {
        Some("add") => store.add_member(&group, user)?,
        Some("remove") => store.remove_member(&group, user)?,
        Some("update") if store.members(&group)?.iter().any(|m| m == user) => {}
        Some("update") => return Err(ApiError::not_found("member", user)),
        _ => {
            return Err(ApiError::details(
                StatusCode::BAD_REQUEST,
                "op must be add, remove or update",
            ));
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Resolved membership as `GraphObjectWithPaths`; there are no nested
/// groups here, so every path is the one direct edge. Filters on
/// `object_id` and `type`, sorts, pages.
async fn list_membership(State(s): Ctx, Path(id): Path<String>, Query(p): Params) -> Answer {
    let q = ListQuery::parse(Api::V2, &graph_filters(p))?;
    let members = s.store().members(&id)?;
    let objects = members
        .into_iter()
        .map(|m| graph_object(&m, "user", &id, "user_group"))
        .collect();
    let (page, total) = q.apply(objects, "id");
    v2_list(page, total)
}

/// The groups a user belongs to, as `GraphObjectWithPaths`.
async fn list_member_of(State(s): Ctx, Path(id): Path<String>, Query(p): Params) -> Answer {
    let q = ListQuery::parse(Api::V2, &graph_filters(p))?;
    let groups = s.store().member_of(&id)?;
    let objects = groups
        .into_iter()
        .map(|g| graph_object(&g, "user_group", &id, "user"))
        .collect();
    let (page, total) = q.apply(objects, "id");
    v2_list(page, total)
}

/// A `GraphObjectWithPaths` for `id` reached from `from` in one hop.
fn graph_object(id: &str, kind: &str, from: &str, from_kind: &str) -> Value {
    json!({
        "id": id, "type": kind, "compiledAttributes": {},
        "paths": [[ { "from": { "id": from, "type": from_kind }, "to": { "id": id, "type": kind } } ]],
    })
}

/// The graph routes filter on `object_id`, which is the object's `id`.
fn graph_filters(mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    for (key, value) in &mut pairs {
        if let Some(rest) = value.strip_prefix("object_id:").filter(|_| key == "filter") {
            *value = format!("id:{rest}");
        }
    }
    pairs
}
