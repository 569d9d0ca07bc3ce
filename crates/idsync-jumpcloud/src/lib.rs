#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod client;
mod config;
mod error;
mod map;
mod source;
mod target;

pub use client::JumpCloudClient;
pub use config::{JumpCloudConfig, MatchColumn};
pub use error::{JumpCloudError, classify};
pub use source::JumpCloudSource;
pub use target::JumpCloudTarget;

/// The backend name, used in errors, tracing spans and reports.
pub const NAME: &str = "jumpcloud";
