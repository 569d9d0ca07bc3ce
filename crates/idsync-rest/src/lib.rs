//! Config-driven generic REST/JSON source and target for idsync.
#![deny(missing_docs)]

/// The backend name, used in errors, tracing spans and reports.
pub const NAME: &str = "rest";
