//! idsync core (being written).
