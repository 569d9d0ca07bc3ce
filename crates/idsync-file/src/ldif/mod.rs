//! LDIF files: an RFC 2849 reader of content records, and the source that
//! reads an export as a directory.

mod map;
mod reader;
pub(crate) mod source;

pub use reader::{LdifReader, MAX_LINE_BYTES, MAX_VALUE_BYTES, Record};
