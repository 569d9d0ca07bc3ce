//! The one error type of idsync: what happened, whether to retry, whether it
//! stops the run, and which object it concerns.

use std::fmt;
use std::time::Duration;

/// What went wrong, independent of the backend.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The configuration is wrong: stops the run.
    Config,
    /// Authentication failed: stops the run.
    Auth,
    /// The account lacks the right to do this.
    PermissionDenied,
    /// The object does not exist.
    NotFound,
    /// The object exists already.
    AlreadyExists,
    /// A precondition failed (stale ETag, concurrent change).
    Conflict,
    /// The data of one object is unacceptable (bad field, bad encoding).
    InvalidData,
    /// The server asks us to slow down.
    RateLimited,
    /// The server is unavailable or failed (timeouts, 5xx, connection lost).
    Unavailable,
    /// The backend does not support this operation.
    Unsupported,
    /// The server answered something we do not understand.
    Protocol,
    /// A bug in idsync.
    Internal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::Config => "configuration error",
            ErrorKind::Auth => "authentication failed",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidData => "invalid data",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::Internal => "internal error",
        };
        f.write_str(s)
    }
}

/// Whether an error is worth retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Try again, after `retry_after` when the server said so.
    Transient {
        /// The server's Retry-After, when it gave one.
        retry_after: Option<Duration>,
    },
    /// Trying again will not help.
    Permanent,
    /// It was transient, was retried, and still failed.
    Exhausted,
}

/// The object an error concerns: its external id, its target id or its
/// name in the backend (a DN, a userName).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRef(pub String);

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An idsync error. Built as
/// `Error::new(ErrorKind::Unavailable, "busy").transient().with_op("read_full").with_object(id)`.
///
/// The message never holds a secret or a raw request body.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(Box<Inner>);

/// The fields of an [`Error`], boxed so that `Result`s stay small.
#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    status: Status,
    backend: &'static str,
    op: &'static str,
    object: Option<ObjectRef>,
    field: Option<String>,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl std::error::Error for Inner {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.backend)?;
        if !self.op.is_empty() {
            write!(f, " {}", self.op)?;
        }
        if let Some(o) = &self.object {
            write!(f, " [{o}]")?;
        }
        if let Some(field) = &self.field {
            write!(f, " field {field:?}")?;
        }
        write!(f, ": {}: {}", self.kind, self.message)
    }
}

/// `Result` with idsync's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A permanent error of this kind; rate limits and unavailability start
    /// out transient.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let status = match kind {
            ErrorKind::RateLimited | ErrorKind::Unavailable => Status::Transient { retry_after: None },
            _ => Status::Permanent,
        };
        Error(Box::new(Inner {
            kind,
            status,
            backend: "core",
            op: "",
            object: None,
            field: None,
            message: message.into(),
            source: None,
        }))
    }

    /// Shorthand for a configuration error.
    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    /// Marks the error transient.
    pub fn transient(mut self) -> Self {
        self.0.status = Status::Transient { retry_after: None };
        self
    }

    /// Marks the error permanent.
    pub fn permanent(mut self) -> Self {
        self.0.status = Status::Permanent;
        self
    }

    /// Marks the error transient, to be retried after `after`.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.0.status = Status::Transient {
            retry_after: Some(after),
        };
        self
    }

    /// Marks a transient error as retried and still failing.
    pub fn exhausted(mut self) -> Self {
        if self.is_transient() {
            self.0.status = Status::Exhausted;
        }
        self
    }

    /// Names the backend (`"ldap"`, `"scim"`, …).
    pub fn with_backend(mut self, backend: &'static str) -> Self {
        self.0.backend = backend;
        self
    }

    /// Names the operation (`"read_full"`, `"apply.create"`, …).
    pub fn with_op(mut self, op: &'static str) -> Self {
        self.0.op = op;
        self
    }

    /// Names the object concerned.
    pub fn with_object(mut self, object: impl fmt::Display) -> Self {
        self.0.object = Some(ObjectRef(object.to_string()));
        self
    }

    /// Names the field concerned.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.0.field = Some(field.into());
        self
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.0.source = Some(Box::new(source));
        self
    }

    /// What happened.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// Whether to retry, permanent, or exhausted.
    pub fn status(&self) -> Status {
        self.0.status
    }

    /// The backend that raised it.
    pub fn backend(&self) -> &'static str {
        self.0.backend
    }

    /// The operation that failed.
    pub fn op(&self) -> &'static str {
        self.0.op
    }

    /// The object concerned, when known.
    pub fn object(&self) -> Option<&ObjectRef> {
        self.0.object.as_ref()
    }

    /// The field concerned, when known.
    pub fn field(&self) -> Option<&str> {
        self.0.field.as_deref()
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// True when retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(self.0.status, Status::Transient { .. })
    }

    /// The server's Retry-After, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.0.status {
            Status::Transient { retry_after } => retry_after,
            _ => None,
        }
    }

    /// True when the whole run must stop (authentication, configuration).
    pub fn stops_run(&self) -> bool {
        matches!(self.0.kind, ErrorKind::Config | ErrorKind::Auth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_backend_op_object_and_field() {
        let e = Error::new(ErrorKind::InvalidData, "not a date")
            .with_backend("ldap")
            .with_op("read_full")
            .with_object("cn=Ann,ou=people")
            .with_field("whenChanged");
        assert_eq!(
            e.to_string(),
            "ldap read_full [cn=Ann,ou=people] field \"whenChanged\": invalid data: not a date"
        );
        assert!(!e.is_transient());
        assert!(!e.stops_run());
    }

    #[test]
    fn kinds_start_with_the_right_status() {
        assert!(Error::new(ErrorKind::Unavailable, "x").is_transient());
        assert!(Error::new(ErrorKind::RateLimited, "x").is_transient());
        assert!(!Error::new(ErrorKind::Conflict, "x").is_transient());
        assert!(Error::new(ErrorKind::Auth, "x").stops_run());
        assert!(Error::config("x").stops_run());
        let e = Error::new(ErrorKind::RateLimited, "x").with_retry_after(Duration::from_secs(3));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(e.exhausted().status(), Status::Exhausted);
    }
}
