//! SCIM errors: the error body (RFC 7644 §3.12) read into a clear message
//! naming the object, classified once into the core's error.

use idsync_core::{Error, ErrorKind};
use idsync_http::HttpError;

use crate::NAME;

/// What went wrong talking SCIM.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScimError {
    /// The server answered a SCIM error.
    #[error("HTTP {status}{}: {detail}", scim_type.as_ref().map(|t| format!(" {t}")).unwrap_or_default())]
    Scim {
        /// The HTTP status.
        status: u16,
        /// The SCIM error type (`uniqueness`, `mutability`, `invalidFilter`, …).
        scim_type: Option<String>,
        /// The server's explanation.
        detail: String,
    },
    /// An answer that is not what RFC 7644 promises.
    #[error("bad answer: {0}")]
    BadResponse(String),
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(rename = "scimType")]
    scim_type: Option<String>,
    detail: Option<String>,
}

/// The SCIM error in a failed request's body, if it holds one.
pub(crate) fn parse_error(e: &HttpError) -> Option<ScimError> {
    let status = e.status()?.as_u16();
    let body: ErrorBody = serde_json::from_slice(e.body()).ok()?;
    if body.scim_type.is_none() && body.detail.is_none() {
        return None;
    }
    Some(ScimError::Scim {
        status,
        scim_type: body.scim_type,
        detail: body.detail.unwrap_or_default(),
    })
}

/// The kind for a `scimType`, refining the status classification.
fn kind_for(scim_type: Option<&str>, status_kind: ErrorKind) -> ErrorKind {
    match scim_type {
        Some("uniqueness") => ErrorKind::AlreadyExists,
        Some("mutability" | "invalidSyntax" | "invalidPath" | "noTarget" | "invalidValue") => ErrorKind::InvalidData,
        Some("invalidFilter" | "tooMany" | "invalidVers" | "sensitive") => ErrorKind::Protocol,
        _ => status_kind,
    }
}

/// Converts a failed request into the core's error: `what` says what was
/// being done ("create user", "list Users"), `object` names the object.
pub(crate) fn http_to_core(e: HttpError, op: &'static str, what: &str, object: Option<&str>) -> Error {
    let (status_kind, _) = e.kind();
    let scim = parse_error(&e);
    let kind = kind_for(
        scim.as_ref().and_then(|s| match s {
            ScimError::Scim { scim_type, .. } => scim_type.as_deref(),
            _ => None,
        }),
        status_kind,
    );
    let message = match &scim {
        Some(s) => format!("{what}: {s} ({e})"),
        None => format!("{what}: {e}"),
    };
    let mut err = e.into_core_as(NAME, kind, message).op(op);
    if let Some(o) = object {
        err = err.object(o);
    }
    err
}

/// A bad answer as the core's error.
pub(crate) fn bad_response(op: &'static str, what: &str, object: Option<&str>) -> Error {
    let mut err = Error::new(ErrorKind::Protocol, ScimError::BadResponse(what.to_owned()).to_string())
        .backend(NAME)
        .op(op);
    if let Some(o) = object {
        err = err.object(o);
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scim_types_refine_the_status() {
        assert_eq!(
            kind_for(Some("uniqueness"), ErrorKind::AlreadyExists),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            kind_for(Some("uniqueness"), ErrorKind::InvalidData),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            kind_for(Some("noTarget"), ErrorKind::InvalidData),
            ErrorKind::InvalidData
        );
        assert_eq!(
            kind_for(Some("invalidFilter"), ErrorKind::InvalidData),
            ErrorKind::Protocol
        );
        assert_eq!(kind_for(None, ErrorKind::Conflict), ErrorKind::Conflict);
    }
}
