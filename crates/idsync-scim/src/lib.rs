#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod client;
mod config;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod json;
pub mod map;
mod source;
mod target;

pub use client::ServiceProvider;
pub use config::{BulkMode, LinkStyle, ScimConfig, ScimDialect};
pub use error::{ScimError, classify};
pub use source::{ScimSource, to_object};
pub use target::ScimTarget;

/// The backend name in errors and logs.
pub const NAME: &str = "scim";
