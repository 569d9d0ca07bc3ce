//! SCIM error answers (RFC 7644 §3.12) and the JSON responses they share
//! with successful ones.

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use idsync_core::ErrorKind;
use idsync_core::plan::{Finding, FindingKind};
use serde_json::{Value, json};

use crate::schemas::ERROR;

/// The media type of SCIM messages.
const SCIM_JSON: &str = "application/scim+json";

/// A SCIM error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    scim_type: Option<&'static str>,
    pub(crate) detail: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// 400 with a `scimType`.
    pub(crate) fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, None, detail)
    }

    /// 409 `uniqueness`.
    pub(crate) fn taken(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, Some("uniqueness"), detail)
    }

    /// The target refused an operation.
    pub(crate) fn target(e: idsync_core::Error) -> Self {
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

    /// The rules refused to provision a resource: `finding` says why (none:
    /// the resource is outside the profile's scope).
    pub(crate) fn refused(finding: Option<&Finding>) -> Self {
        let Some(f) = finding else {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                None,
                "the resource is outside the scope of the profile: it is not provisioned",
            );
        };
        let detail = format!("{} ({})", f.message, f.remedy);
        match f.kind {
            FindingKind::Unsupported => ApiError::new(StatusCode::NOT_IMPLEMENTED, None, detail),
            _ => ApiError::taken(detail),
        }
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

/// A SCIM JSON answer.
pub(crate) fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    r
}
