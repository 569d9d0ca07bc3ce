//! The bearer token, compared in constant time. A request without it is
//! answered 401 and still recorded in the history.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::{RequestInfo, ServerState};

/// Lets a request through when it carries the bearer token.
pub(crate) async fn auth(State(state): State<Arc<ServerState>>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
        });
    let ok = presented.is_some_and(|t| bool::from(t.as_bytes().ct_eq(state.token.expose_secret().as_bytes())));
    if ok {
        return next.run(req).await;
    }
    let (parts, _) = req.into_parts();
    let info = RequestInfo {
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        headers: HeaderMap::new(),
        prefix: String::new(),
    };
    let record = state.record(&info, "unauthorized", None);
    let mut response = state.finish(
        record,
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
