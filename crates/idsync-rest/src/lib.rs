#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod client;
mod config;
mod error;
mod map;
mod source;
mod target;

pub use client::RestClient;
pub use config::{
    EnabledSpec, FieldSpec, FieldType, ListConfig, OperationConfig, ResourceConfig, RestConfig, VetoConfig,
};
pub use error::{RestError, classify};
pub use idsync_http::{AuthConfig, HttpConfig, Pagination};
pub use source::RestSource;
pub use target::RestTarget;

/// The backend name, used in errors, tracing spans and reports.
pub const NAME: &str = "rest";
