//! JumpCloud errors and their classification into the core's.

use idsync_core::{Error, ErrorKind};
use idsync_http::HttpError;
pub use idsync_http::classify;

use crate::NAME;

/// What went wrong talking to JumpCloud.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JumpCloudError {
    /// An HTTP failure (status, transport, decoding) concerning `object`.
    #[error("{object}: {source}")]
    Http {
        /// The object concerned (user id, group id, or a listing).
        object: String,
        /// The underlying error, with the status.
        #[source]
        source: Box<HttpError>,
    },
    /// The server sent data we cannot use.
    #[error("{object}: {message}")]
    InvalidData {
        /// The object concerned.
        object: String,
        /// What was wrong.
        message: String,
    },
    /// A value of an object means nothing: a `suspended` that is not a
    /// boolean, a `state` JumpCloud does not have. The object is not read.
    #[error("{object}, {field}: {message}")]
    BadValue {
        /// The object concerned (`system user <id>`).
        object: String,
        /// The field.
        field: String,
        /// What the value is and what was expected.
        message: String,
    },
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
}

impl JumpCloudError {
    pub(crate) fn http(object: impl Into<String>, source: HttpError) -> Self {
        JumpCloudError::Http {
            object: object.into(),
            source: Box::new(source),
        }
    }

    /// Into the core's error, naming the operation, with this error as the
    /// source (HTTP statuses through [`classify`]).
    pub fn into_core(self, op: &'static str) -> Error {
        let e = match &self {
            JumpCloudError::Http { object, source } => source.to_core(NAME, object).with_op(op).with_object(object),
            JumpCloudError::InvalidData { object, message } => {
                Error::new(ErrorKind::InvalidData, format!("{object}: {message}"))
                    .with_backend(NAME)
                    .with_op(op)
                    .with_object(object)
            }
            JumpCloudError::BadValue { object, field, message } => Error::new(ErrorKind::InvalidData, message.clone())
                .with_backend(NAME)
                .with_op(op)
                .with_object(object)
                .with_field(field.clone()),
            JumpCloudError::Config(m) => Error::config(m.clone()).with_backend(NAME).with_op(op),
        };
        e.with_source(self)
    }
}
