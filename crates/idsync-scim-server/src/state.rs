//! The state every handler shares, what a handler needs of the request,
//! and the record each request leaves in the history.

use std::sync::Arc;

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::header::{ETAG, HOST, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use idsync_core::plan::Finding;
use idsync_core::{Link, Lookup, ObjectKind, Profile, Target, TargetAccount, TargetOp};
use secrecy::SecretString;

use crate::error::{ApiError, scim_json};
use crate::history::{ProvisioningRecord, ProvisioningSink};
use crate::store::{Document, DocumentStore, now};

/// What every handler shares.
pub(crate) struct ServerState {
    pub(crate) profile: Profile,
    pub(crate) target: Arc<dyn Target>,
    pub(crate) token: SecretString,
    pub(crate) sink: Option<Arc<dyn ProvisioningSink>>,
    pub(crate) base_url: Option<String>,
    pub(crate) max_results: usize,
    /// Writes are serialized: ETags, uniqueness and membership stay consistent.
    pub(crate) writes: tokio::sync::Mutex<()>,
    pub(crate) store: DocumentStore,
}

/// What a handler needs of the request.
pub(crate) struct RequestInfo {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    /// The path the router is nested under.
    pub(crate) prefix: String,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let original = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
        let prefix = original.path().strip_suffix(parts.uri.path()).unwrap_or("").to_owned();
        Ok(RequestInfo {
            method: parts.method.clone(),
            uri: original,
            headers: parts.headers.clone(),
            prefix,
        })
    }
}

/// The history record of the request being handled, filled in as it goes.
pub(crate) struct PendingRecord {
    method: String,
    path: String,
    action: &'static str,
    kind: Option<ObjectKind>,
    pub(crate) resource: Option<String>,
    pub(crate) link: Option<Link>,
    pub(crate) operations: Vec<TargetOp>,
    pub(crate) findings: Vec<Finding>,
    pub(crate) notes: Vec<String>,
}

impl ServerState {
    /// The base URL of `meta.location`.
    pub(crate) fn base(&self, req: &RequestInfo) -> String {
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

    /// Starts the record of a request.
    pub(crate) fn record(&self, req: &RequestInfo, action: &'static str, kind: Option<ObjectKind>) -> PendingRecord {
        PendingRecord {
            method: req.method.to_string(),
            path: req
                .uri
                .path_and_query()
                .map_or_else(|| req.uri.path().to_owned(), |p| p.to_string()),
            action,
            kind,
            resource: None,
            link: None,
            operations: Vec::new(),
            findings: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The answer to a request, after its record went to the history.
    pub(crate) fn finish(&self, record: PendingRecord, result: Result<Response, ApiError>) -> Response {
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
            method: record.method,
            path: record.path,
            action: record.action.to_owned(),
            kind: record.kind,
            resource: record.resource,
            link: record.link,
            operations: record.operations,
            findings: record.findings,
            notes: record.notes,
            status: response.status().as_u16(),
            error,
        };
        tracing::info!(
            method = %record.method, path = %record.path, status = record.status,
            operations = record.operations.len(),
            findings = ?record.findings.iter().map(|f| f.kind).collect::<Vec<_>>(),
            "SCIM request"
        );
        if let Some(sink) = &self.sink {
            sink.record(&record);
        }
        response
    }

    /// The account linked to `link`, if the target has one.
    pub(crate) async fn linked_account(
        &self,
        kind: ObjectKind,
        link: &Link,
    ) -> Result<Option<TargetAccount>, ApiError> {
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

    /// A document as the answer, with its `ETag` and `Location`.
    pub(crate) fn resource_response(&self, status: StatusCode, id: &str, document: &Document, base: &str) -> Response {
        let doc = self.store.render(id, document, base);
        let mut r = scim_json(status, &doc);
        if let Some(Ok(v)) = doc["meta"]["version"].as_str().map(HeaderValue::from_str) {
            r.headers_mut().insert(ETAG, v);
        }
        if let Some(Ok(v)) = doc["meta"]["location"].as_str().map(HeaderValue::from_str) {
            r.headers_mut().insert(LOCATION, v);
        }
        r
    }
}
