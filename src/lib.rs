//! idsync
