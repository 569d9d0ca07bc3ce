#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod config;
mod csv_source;
mod error;
pub mod ldif;
mod ldif_source;
mod stream;

pub use config::{CsvConfig, LdifConfig};
pub use csv_source::CsvSource;
pub use error::FileError;
pub use ldif_source::LdifSource;

/// The backend's name in errors, logs and reports.
pub const NAME: &str = "file";
