//! Error bodies in the shapes of JumpCloud's OpenAPI documents.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error answer: a status and a JSON body.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

impl ApiError {
    /// The spec's `Error` schema: `{ code, message, status }`.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        let body = json!({
            "code": status.as_u16(),
            "message": message.into(),
            "status": rpc_status(status),
        });
        ApiError { status, body }
    }

    /// The spec's `ErrorDetails` schema (v2 400s, v1 POST/PUT user 400s):
    /// `Error` plus an empty `details` array.
    pub(crate) fn details(status: StatusCode, message: impl Into<String>) -> Self {
        let mut e = ApiError::new(status, message);
        e.body["details"] = json!([]);
        e
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_found(what: &str, id: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, format!("{what} {id} not found"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// The google.rpc status name JumpCloud puts in `status` (\[inferred\] the
/// spec says "an HTTP/RPC status name" without a table).
fn rpc_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        410 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}
