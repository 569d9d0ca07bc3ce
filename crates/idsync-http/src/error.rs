//! Errors of the HTTP layer and the one classification of HTTP statuses
//! (STYLE §9) into the core's [`ErrorKind`].

use std::time::Duration;

use idsync_core::{Error, ErrorKind};
use reqwest::{Method, StatusCode};

/// What went wrong with an HTTP request. Messages hold the method and the
/// path (query redacted), never a header, a token or a request body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The server answered with a non-success status, after any retries.
    #[error("{method} {url}: HTTP {status}{}", retried_note(*.retries))]
    Status {
        /// The request method.
        method: Method,
        /// The URL, secrets redacted.
        url: String,
        /// The status.
        status: StatusCode,
        /// The server's Retry-After, when it sent one.
        retry_after: Option<Duration>,
        /// The response body (adapters read their error format from it; never logged here).
        body: bytes::Bytes,
        /// How many retries were made before giving up.
        retries: u32,
    },
    /// The request did not complete: connection refused or lost, timeout, TLS.
    #[error("{method} {url}: {what}{}", retried_note(*.retries))]
    Transport {
        /// The request method.
        method: Method,
        /// The URL, secrets redacted.
        url: String,
        /// "connection failed", "timed out", …
        what: &'static str,
        /// How many retries were made before giving up.
        retries: u32,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The server's TLS certificate did not verify: an unknown CA, another
    /// host name, expired. Never retried; stops the run like a failed login.
    #[error(
        "{method} {url}: the server's TLS certificate was refused (is tls.ca_file its CA, and does the URL name the host it was issued for?): {reason}"
    )]
    Certificate {
        /// The request method.
        method: Method,
        /// The URL, secrets redacted.
        url: String,
        /// The TLS library's reason.
        reason: String,
    },
    /// The client could not be built or a request not formed (bad CA file,
    /// bad proxy, bad header name).
    #[error("{0}")]
    Config(String),
    /// Getting an OAuth2 token failed.
    #[error("OAuth2 token request to {url}: {message}")]
    Token {
        /// The token endpoint, redacted.
        url: String,
        /// What failed (the server's `error` code, never the secret).
        message: String,
        /// The token endpoint's status, when it answered.
        status: Option<StatusCode>,
    },
    /// A response body that is not what the API promised.
    #[error("{method} {url}: bad response body: {message}")]
    Decode {
        /// The request method.
        method: Method,
        /// The URL, secrets redacted.
        url: String,
        /// What was wrong.
        message: String,
    },
}

fn retried_note(retries: u32) -> String {
    if retries == 0 {
        String::new()
    } else {
        format!(" (after {retries} retries)")
    }
}

/// The one classification of HTTP statuses used by every HTTP adapter:
/// the kind and whether it is transient (worth retrying).
pub fn classify(status: StatusCode) -> (ErrorKind, bool) {
    use ErrorKind::*;
    match status.as_u16() {
        401 => (Auth, false),
        403 => (PermissionDenied, false),
        404 | 410 => (NotFound, false),
        409 => (AlreadyExists, false),
        412 => (Conflict, false),
        // 413: this object's payload is too large for the server.
        400 | 413 | 422 => (InvalidData, false),
        405 | 501 => (Unsupported, false),
        429 => (RateLimited, true),
        408 | 500..=599 => (Unavailable, true),
        _ => (Protocol, false),
    }
}

impl HttpError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            HttpError::Token { status, .. } => *status,
            _ => None,
        }
    }

    /// The response body of a status error (empty otherwise).
    pub fn body(&self) -> &[u8] {
        match self {
            HttpError::Status { body, .. } => body,
            _ => &[],
        }
    }

    /// The kind and transience of this error.
    pub fn kind(&self) -> (ErrorKind, bool) {
        match self {
            HttpError::Status { status, .. } => classify(*status),
            HttpError::Transport { .. } => (ErrorKind::Unavailable, true),
            // The server failed to authenticate itself; retrying cannot help.
            HttpError::Certificate { .. } => (ErrorKind::Auth, false),
            HttpError::Config(_) => (ErrorKind::Config, false),
            HttpError::Token { status, .. } => match status {
                Some(s) if s.is_server_error() => (ErrorKind::Unavailable, true),
                Some(s) if s.as_u16() == 429 => (ErrorKind::RateLimited, true),
                Some(_) => (ErrorKind::Auth, false),
                None => (ErrorKind::Unavailable, true),
            },
            HttpError::Decode { .. } => (ErrorKind::Protocol, false),
        }
    }

    fn retries(&self) -> u32 {
        match self {
            HttpError::Status { retries, .. } | HttpError::Transport { retries, .. } => *retries,
            _ => 0,
        }
    }

    /// Converts into the core's error for `backend`, with `message` in front
    /// of this error's own text (pass `""` for none). Transient errors carry
    /// the server's Retry-After; those that were retried are exhausted.
    pub fn into_core(self, backend: &'static str, message: &str) -> Error {
        self.to_core(backend, message).with_source(self)
    }

    /// Like [`HttpError::into_core`], without this error as the source:
    /// for an adapter error that holds this one and becomes the source itself.
    pub fn to_core(&self, backend: &'static str, message: &str) -> Error {
        let text = if message.is_empty() {
            self.to_string()
        } else {
            format!("{message}: {self}")
        };
        let (kind, _) = self.kind();
        self.to_core_as(backend, kind, text)
    }

    /// Like [`HttpError::into_core`], with the kind chosen by the adapter
    /// (which read a finer reason from the body, e.g. SCIM's `scimType`)
    /// and the whole message given. Transience still follows the status.
    pub fn into_core_as(self, backend: &'static str, kind: ErrorKind, message: String) -> Error {
        self.to_core_as(backend, kind, message).with_source(self)
    }

    /// Like [`HttpError::into_core_as`], without this error as the source:
    /// for an adapter error that holds this one and becomes the source itself.
    pub fn to_core_as(&self, backend: &'static str, kind: ErrorKind, message: String) -> Error {
        let (_, transient) = self.kind();
        let retries = self.retries();
        let retry_after = match self {
            HttpError::Status { retry_after, .. } => *retry_after,
            _ => None,
        };
        let mut e = Error::new(kind, message).with_backend(backend);
        e = match (transient, retry_after) {
            (true, Some(after)) => e.with_retry_after(after),
            (true, None) => e.transient(),
            (false, _) => e.permanent(),
        };
        if transient && retries > 0 {
            e = e.exhausted();
        }
        e
    }
}

/// OpenSSL's reason when the server's certificate did not verify (unknown
/// CA, another host name, expired), found in the error's sources (reqwest
/// and native-tls expose no kinds for it). Only the TLS library's message is
/// kept, never reqwest's own text, which holds the URL with its query.
pub(crate) fn certificate_refused(e: &reqwest::Error) -> Option<String> {
    // The outermost match is native-tls's, which adds the verify result
    // ("self-signed certificate", "IP address mismatch") to OpenSSL's text.
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if text.contains("certificate verify failed") {
            return Some(text);
        }
        source = s.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_follows_style_9() {
        let c = |n: u16| classify(StatusCode::from_u16(n).unwrap());
        assert_eq!(c(401), (ErrorKind::Auth, false));
        assert_eq!(c(403), (ErrorKind::PermissionDenied, false));
        assert_eq!(c(404), (ErrorKind::NotFound, false));
        assert_eq!(c(409), (ErrorKind::AlreadyExists, false));
        assert_eq!(c(412), (ErrorKind::Conflict, false));
        assert_eq!(c(400), (ErrorKind::InvalidData, false));
        assert_eq!(c(422), (ErrorKind::InvalidData, false));
        assert_eq!(c(413), (ErrorKind::InvalidData, false));
        assert_eq!(c(429), (ErrorKind::RateLimited, true));
        assert_eq!(c(408), (ErrorKind::Unavailable, true));
        assert_eq!(c(500), (ErrorKind::Unavailable, true));
        assert_eq!(c(503), (ErrorKind::Unavailable, true));
        assert_eq!(c(418), (ErrorKind::Protocol, false));
        assert_eq!(c(302), (ErrorKind::Protocol, false));
    }

    #[test]
    fn into_core_keeps_retry_after_and_marks_exhausted() {
        let e = HttpError::Status {
            method: Method::GET,
            url: "http://127.0.0.1/x".into(),
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(Duration::from_secs(7)),
            body: bytes::Bytes::new(),
            retries: 0,
        }
        .into_core("scim", "list users");
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            e.to_string(),
            "scim: rate limited: list users: GET http://127.0.0.1/x: HTTP 429 Too Many Requests"
        );
        let e = HttpError::Status {
            method: Method::PATCH,
            url: "http://127.0.0.1/x".into(),
            status: StatusCode::BAD_GATEWAY,
            retry_after: None,
            body: bytes::Bytes::new(),
            retries: 3,
        }
        .into_core("scim", "");
        assert_eq!(e.status(), idsync_core::Status::Exhausted);
        assert!(e.to_string().ends_with("HTTP 502 Bad Gateway (after 3 retries)"), "{e}");
        let e = HttpError::Status {
            method: Method::GET,
            url: "u".into(),
            status: StatusCode::UNAUTHORIZED,
            retry_after: None,
            body: bytes::Bytes::new(),
            retries: 0,
        }
        .into_core("rest", "");
        assert!(e.stops_run());
    }
}
