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
    /// A request failed: what was being done, the SCIM error in the
    /// answer's body when it held one, and the HTTP failure.
    #[error("{message}")]
    Http {
        /// What was being done (`create user`, `list Users`), with the
        /// server's SCIM error and the HTTP failure.
        message: String,
        /// The object concerned, when there is one.
        object: Option<String>,
        /// The HTTP failure, with the status and the body.
        #[source]
        source: Box<HttpError>,
    },
    /// An answer that is not what RFC 7644 promises.
    #[error("bad answer: {what}")]
    BadResponse {
        /// What is wrong with the answer.
        what: String,
        /// The object concerned, when there is one.
        object: Option<String>,
    },
    /// A value of a resource that means nothing (an `active` that is not a
    /// boolean): what it is and what was expected. The resource is not read.
    #[error("{message}")]
    BadValue {
        /// The resource concerned.
        object: String,
        /// The attribute.
        field: String,
        /// What the value is and what was expected.
        message: String,
    },
}

/// The longest server `detail` kept in a message, in characters.
const MAX_DETAIL: usize = 500;

/// The SCIM error in a failed request's body, if it holds one.
pub(crate) fn parse_error(e: &HttpError) -> Option<ScimError> {
    parse_error_body(e.status()?.as_u16(), e.body())
}

/// The SCIM error (RFC 7644 §3.12) in an error `body` answered with
/// `status`, if it holds one. Lenient about types (a numeric `detail` is
/// kept as text); the detail is cut to 500 characters and control
/// characters are blanked, so a server cannot forge log lines.
pub(crate) fn parse_error_body(status: u16, body: &[u8]) -> Option<ScimError> {
    let body: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |key: &str| match body.get(key)? {
        serde_json::Value::String(s) => Some(clean(s)),
        serde_json::Value::Null => None,
        other => Some(clean(&other.to_string())),
    };
    let scim_type = text("scimType").filter(|t| !t.is_empty());
    let detail = text("detail");
    if scim_type.is_none() && detail.is_none() {
        return None;
    }
    Some(ScimError::Scim {
        status,
        scim_type,
        detail: detail.unwrap_or_default(),
    })
}

/// At most [`MAX_DETAIL`] characters, control characters as spaces.
fn clean(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(MAX_DETAIL)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().nth(MAX_DETAIL).is_some() {
        out.push('…');
    }
    out
}

/// The kind for a `scimType`, refining the status classification where RFC
/// 7644 §3.12 puts that type (400, 409 for `uniqueness`, 403 for
/// `sensitive`). Other statuses keep their own kind: a 401 stays an
/// authentication failure, a 5xx stays unavailable, whatever the body says.
fn kind_for(status: u16, scim_type: Option<&str>, status_kind: ErrorKind) -> ErrorKind {
    match (status, scim_type) {
        (400 | 409, Some("uniqueness")) => ErrorKind::AlreadyExists,
        (400 | 409, Some("mutability" | "invalidSyntax" | "invalidPath" | "noTarget" | "invalidValue")) => {
            ErrorKind::InvalidData
        }
        (400 | 403, Some("invalidFilter" | "tooMany" | "invalidVers" | "sensitive")) => ErrorKind::Protocol,
        _ => status_kind,
    }
}

/// The kind and transience of a SCIM error answer: the HTTP status
/// classified by `idsync_http::classify`, refined by its `scimType`.
pub fn classify(status: u16, scim_type: Option<&str>) -> (ErrorKind, bool) {
    let (kind, transient) = match idsync_http::StatusCode::from_u16(status) {
        Ok(s) => idsync_http::classify(s),
        Err(_) => (ErrorKind::Protocol, false),
    };
    (kind_for(status, scim_type, kind), transient)
}

impl ScimError {
    /// A failed request: `what` says what was being done ("create user",
    /// "list Users"), `object` names the object.
    pub(crate) fn http(e: HttpError, what: &str, object: Option<&str>) -> Self {
        let message = match parse_error(&e) {
            Some(s) => format!("{what}: {s} ({e})"),
            None => format!("{what}: {e}"),
        };
        ScimError::Http {
            message,
            object: object.map(str::to_owned),
            source: Box::new(e),
        }
    }

    /// A bad answer: `what` says what is wrong, `object` names the object.
    pub(crate) fn bad_response(what: &str, object: Option<&str>) -> Self {
        ScimError::BadResponse {
            what: what.to_owned(),
            object: object.map(str::to_owned),
        }
    }

    /// A value of the resource `object` that means nothing, at `field`:
    /// invalid data about that resource alone.
    pub(crate) fn bad_value(object: &str, field: &str, message: String) -> Self {
        ScimError::BadValue {
            object: object.to_owned(),
            field: field.to_owned(),
            message,
        }
    }

    /// Into the core's error, naming the operation, with this error as the
    /// source. A failed request keeps the HTTP layer's retry status (the
    /// server's Retry-After, exhausted after retries).
    pub fn into_core(self, op: &'static str) -> Error {
        let e = match &self {
            ScimError::Http {
                message,
                object,
                source,
            } => {
                let (status_kind, _) = source.kind();
                let scim_type = match parse_error(source) {
                    Some(ScimError::Scim { scim_type, .. }) => scim_type,
                    _ => None,
                };
                let kind = kind_for(
                    source.status().map_or(0, |s| s.as_u16()),
                    scim_type.as_deref(),
                    status_kind,
                );
                let e = source.to_core_as(NAME, kind, message.clone()).with_op(op);
                match object {
                    Some(o) => e.with_object(o),
                    None => e,
                }
            }
            ScimError::Scim { status, scim_type, .. } => {
                let (kind, transient) = classify(*status, scim_type.as_deref());
                let e = Error::new(kind, self.to_string()).with_backend(NAME).with_op(op);
                if transient { e.transient() } else { e.permanent() }
            }
            ScimError::BadResponse { object, .. } => {
                let e = Error::new(ErrorKind::Protocol, self.to_string())
                    .with_backend(NAME)
                    .with_op(op);
                match object {
                    Some(o) => e.with_object(o),
                    None => e,
                }
            }
            ScimError::BadValue { object, field, .. } => Error::new(ErrorKind::InvalidData, self.to_string())
                .with_backend(NAME)
                .with_op(op)
                .with_object(object)
                .with_field(field),
        };
        e.with_source(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scim_types_refine_the_status() {
        assert_eq!(
            kind_for(409, Some("uniqueness"), ErrorKind::AlreadyExists),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            kind_for(400, Some("uniqueness"), ErrorKind::InvalidData),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            kind_for(400, Some("noTarget"), ErrorKind::InvalidData),
            ErrorKind::InvalidData
        );
        assert_eq!(
            kind_for(400, Some("invalidFilter"), ErrorKind::InvalidData),
            ErrorKind::Protocol
        );
        assert_eq!(kind_for(412, None, ErrorKind::Conflict), ErrorKind::Conflict);
    }

    #[test]
    fn a_scim_type_does_not_hide_an_auth_failure_or_an_outage() {
        assert_eq!(kind_for(401, Some("invalidValue"), ErrorKind::Auth), ErrorKind::Auth);
        assert_eq!(
            kind_for(503, Some("invalidValue"), ErrorKind::Unavailable),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind_for(429, Some("tooMany"), ErrorKind::RateLimited),
            ErrorKind::RateLimited
        );
    }

    #[test]
    fn error_bodies_are_read_leniently_and_cleaned() {
        let e = parse_error_body(400, br#"{"scimType":"invalidValue","detail":"bad\nline\u0007"}"#).unwrap();
        assert_eq!(e.to_string(), "HTTP 400 invalidValue: bad line ");
        let e = parse_error_body(400, br#"{"detail":42}"#).unwrap();
        assert_eq!(e.to_string(), "HTTP 400: 42");
        let long = format!(r#"{{"detail":"{}"}}"#, "x".repeat(2000));
        let e = parse_error_body(500, long.as_bytes()).unwrap().to_string();
        assert_eq!(e.chars().count(), "HTTP 500: ".len() + 501, "{e}");
        assert!(parse_error_body(500, b"<html>oops</html>").is_none());
        assert!(parse_error_body(500, b"[1,2]").is_none());
        assert!(parse_error_body(500, br#"{"scimType":null}"#).is_none());
    }

    #[test]
    fn into_core_keeps_the_scim_error_as_its_source() {
        let e = ScimError::bad_value("u-1", "active", "\"yes\" is not a boolean".into()).into_core("read_full");
        assert_eq!(e.kind(), ErrorKind::InvalidData);
        assert_eq!((e.op(), e.field()), ("read_full", Some("active")));
        assert_eq!(e.object().map(|o| o.0.as_str()), Some("u-1"));
        let source = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<ScimError>());
        assert!(matches!(source, Some(ScimError::BadValue { .. })), "{source:?}");
        assert_eq!(classify(409, Some("uniqueness")), (ErrorKind::AlreadyExists, false));
        assert_eq!(classify(503, Some("invalidValue")), (ErrorKind::Unavailable, true));
    }
}
