//! CSV files: an HR feed where each row is a person.

pub(crate) mod source;
