//! SQL for idsync (work in progress).
