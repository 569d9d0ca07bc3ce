#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod config;
mod csv;
mod error;
pub mod ldif;
mod stream;

pub use config::{CsvConfig, LdifConfig};
pub use csv::source::CsvSource;
pub use error::{FileError, classify};
pub use ldif::source::LdifSource;

/// The largest value read from a file, in bytes (an LDIF value after
/// base64 decoding, a CSV cell): 1 MiB. AD caps `thumbnailPhoto` at
/// 100 KB; a bigger value is a mistake or an attack. It is refused with an
/// error naming the object and the field, and the other objects still read.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

/// The backend's name in errors, logs and reports.
pub const NAME: &str = "file";
