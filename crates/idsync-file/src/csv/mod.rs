//! CSV files: an HR feed where each row is a person.

mod map;
pub(crate) mod source;
