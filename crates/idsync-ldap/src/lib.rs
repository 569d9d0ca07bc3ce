#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod ad_delta;
mod changes;
mod config;
mod conn;
mod dirsync;
mod entry;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod password;
mod source;
mod syncrepl;
mod target;
mod timestamp;

pub use config::{AdDelta, Flavor, InitialPassword, LdapConfig};
pub use error::{LdapError, classify};
pub use source::LdapSource;
pub use target::LdapTarget;

/// The backend's name in errors, logs and reports.
pub const NAME: &str = "ldap";
