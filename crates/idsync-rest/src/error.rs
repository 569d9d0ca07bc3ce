//! REST adapter errors and their classification into the core's.

use idsync_core::{Error, ErrorKind};
use idsync_http::HttpError;
pub use idsync_http::classify;

use crate::NAME;

/// What went wrong talking to a REST API. Every variant names the
/// operation (`create`, `list`, `veto`, …) and the object concerned; an HTTP
/// failure carries the status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestError {
    /// An HTTP failure (status, transport, decoding).
    #[error("{operation} {object}: {source}")]
    Http {
        /// The configured operation (`list`, `get`, `create`, …).
        operation: &'static str,
        /// The object concerned (`user 42`, `users`, `group 7 member 42`).
        object: String,
        /// The underlying error, with the status.
        #[source]
        source: Box<HttpError>,
    },
    /// A success status the operation does not list in `success`.
    #[error("{operation} {object}: unexpected HTTP {status}")]
    UnexpectedStatus {
        /// The operation.
        operation: &'static str,
        /// The object concerned.
        object: String,
        /// The status.
        status: u16,
    },
    /// The server sent data we cannot use, or a value cannot be written.
    #[error("{operation} {object}: {message}")]
    InvalidData {
        /// The operation.
        operation: &'static str,
        /// The object concerned.
        object: String,
        /// What was wrong.
        message: String,
    },
    /// A value read from the API means nothing: an enabled flag that is not
    /// a boolean. The object is not read.
    #[error("{object}, {pointer}: {message}")]
    BadValue {
        /// The object concerned (`user 42`).
        object: String,
        /// The JSON pointer of the value.
        pointer: String,
        /// What the value is and what was expected.
        message: String,
    },
    /// The configuration is unusable (an operation not configured, a bad pointer).
    #[error("configuration: {0}")]
    Config(String),
}

impl RestError {
    pub(crate) fn http(operation: &'static str, object: impl Into<String>, source: HttpError) -> Self {
        RestError::Http {
            operation,
            object: object.into(),
            source: Box::new(source),
        }
    }

    pub(crate) fn invalid(operation: &'static str, object: impl Into<String>, message: impl Into<String>) -> Self {
        RestError::InvalidData {
            operation,
            object: object.into(),
            message: message.into(),
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            RestError::Http { source, .. } => source.status().map(|s| s.as_u16()),
            RestError::UnexpectedStatus { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Into the core's error, naming the operation, with this error as the
    /// source (HTTP statuses through [`classify`]): kind, transient or
    /// permanent, and the object.
    pub fn into_core(self, op: &'static str) -> Error {
        let e = match &self {
            RestError::Http {
                operation,
                object,
                source,
            } => source
                .to_core(NAME, &format!("{operation} {object}"))
                .with_op(op)
                .with_object(object),
            RestError::UnexpectedStatus {
                operation,
                object,
                status,
            } => Error::new(
                ErrorKind::Protocol,
                format!("{operation} {object}: unexpected HTTP {status}"),
            )
            .with_backend(NAME)
            .with_op(op)
            .with_object(object),
            RestError::InvalidData {
                operation,
                object,
                message,
            } => Error::new(ErrorKind::InvalidData, format!("{operation} {object}: {message}"))
                .with_backend(NAME)
                .with_op(op)
                .with_object(object),
            RestError::BadValue {
                object,
                pointer,
                message,
            } => Error::new(ErrorKind::InvalidData, message.clone())
                .with_backend(NAME)
                .with_op(op)
                .with_object(object)
                .with_field(pointer.clone()),
            RestError::Config(m) => Error::config(m.clone()).with_backend(NAME).with_op(op),
        };
        e.with_source(self)
    }
}
