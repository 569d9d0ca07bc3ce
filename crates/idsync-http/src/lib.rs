#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod auth;
mod client;
mod config;
mod error;
mod paginate;
mod ratelimit;
mod redact;
mod retry;

pub use auth::Authenticator;
pub use client::{Extracted, HttpClient, Request, Response};
pub use config::{AuthConfig, ClientAuthMethod, HttpConfig, RateLimitConfig, RetryConfig, TlsOptions};
pub use error::{HttpError, classify};
pub use paginate::{Page, Pager, Pagination, next_link};
pub use ratelimit::RateLimiter;
pub use redact::redact_url;
pub use retry::{backoff, parse_retry_after};

/// Re-exported so adapters name the same types.
pub use reqwest::{Method, StatusCode, header};
pub use url::Url;

/// The backend name used in errors raised by this crate alone.
pub const NAME: &str = "http";
