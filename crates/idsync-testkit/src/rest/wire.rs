//! The wire format both the routes and the token endpoint share: error
//! answers and form-encoded pairs.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use url::form_urlencoded;

/// An error answer: `{"error": message}`.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// `application/x-www-form-urlencoded` pairs (query strings, token request bodies).
pub(super) fn form_pairs(text: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(text).into_owned().collect()
}
