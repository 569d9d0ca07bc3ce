#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod client;
mod config;
mod delta;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod map;
mod password;
mod read;
mod source;
mod target;

pub use config::{AdDelta, Flavor, InitialPassword, LdapConfig};
pub use error::{LdapError, classify};
pub use source::LdapSource;
pub use target::LdapTarget;

/// The backend's name in errors, logs and reports.
pub const NAME: &str = "ldap";
