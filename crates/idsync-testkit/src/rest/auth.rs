//! Authentication: the credentials a request must carry, and the OAuth2
//! token endpoint.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;

use super::wire::{error, form_pairs};
use super::{ServerAuth, Shared};

/// Whether the request carries the credentials [`ServerAuth`] asks for.
pub(super) fn authorized(shared: &Shared, headers: &HeaderMap, query: &[(String, String)]) -> bool {
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
    format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
}

/// `POST /oauth/token`: client credentials for a bearer token.
pub(super) fn token(shared: &Shared, headers: &HeaderMap, body: &Bytes) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_is_rfc_7617() {
        assert_eq!(basic("bob", "pw"), "Basic Ym9iOnB3");
    }
}
