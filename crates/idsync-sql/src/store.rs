//! What the parts of the state store share: [`SqlStateStore`] itself, its
//! [`Lease`], the names of its tables and the conversions of its columns.

use std::time::Duration;

use idsync_core::{ProfileId, Result};
use serde::{Deserialize, Serialize};

use crate::client::Db;

/// The tables, fixed names (created by [`SqlStateStore::connect`]).
pub(crate) const STATE: &str = "idsync_state";
pub(crate) const HISTORY: &str = "idsync_history";
pub(crate) const LEASES: &str = "idsync_leases";

/// A profile held by one worker until `expires_unix_ms` (database clock).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The profile.
    pub profile: ProfileId,
    /// Who holds it.
    pub worker: String,
    /// Grows by one at every take-over: a fencing token (a higher
    /// generation always belongs to a later holder).
    pub generation: i64,
    /// When it runs out, in Unix milliseconds of the database's clock.
    pub expires_unix_ms: i64,
    /// When it was taken, in Unix milliseconds of the database's clock:
    /// the start of the run it covers, as the run history records it.
    #[serde(default)]
    pub taken_unix_ms: i64,
}

/// Profile states (one JSON document per profile), run reports and
/// leases, on SQLite or PostgreSQL.
///
/// Tables (created when missing): `idsync_state(profile, state,
/// updated_unix_ms)`, `idsync_history(id, profile, started_at, report)`,
/// `idsync_leases(profile, worker, generation, expires_unix_ms,
/// next_run_unix_ms, source_key, name, failures)` (the schedule columns
/// are for workers: [`SqlStateStore::claim`]), `idsync_runs`,
/// `idsync_objects` and `idsync_names` (the lasting history:
/// [`SqlStateStore::record_run`]) and `idsync_profiles`.
///
/// # Leases
///
/// A lease keeps two workers from running the same profile at once.
/// [`SqlStateStore::try_lease`] takes the profile when nobody holds it or
/// the holder's lease has expired, and returns `None` otherwise, without
/// waiting. Expiry uses the database's clock, so workers on different
/// machines need not agree on the time. A worker renews its lease
/// ([`SqlStateStore::renew`]) well before it expires and releases it when
/// done ([`SqlStateStore::release`]); a worker that dies is taken over once
/// its lease expires.
///
/// - PostgreSQL: the lease row is read with `SELECT … FOR UPDATE SKIP
///   LOCKED` in a transaction; a row locked by another worker's attempt
///   counts as held. A missing row is inserted with `ON CONFLICT DO
///   NOTHING`, so exactly one of two first-time takers wins. Safe across
///   processes and machines.
/// - SQLite: the read and the write run in one `BEGIN IMMEDIATE`
///   transaction, which takes SQLite's single write lock first; safe for
///   the workers of one process and for processes sharing the file on
///   one machine (not on a network file system).
///
/// A lease's generation is a fencing number: a worker paused past its
/// lease (a stopped process, a long GC pause, a lost network) may wake up
/// after another worker took the profile over. Its writes go through
/// [`SqlStateStore::fenced`], which the database refuses once the lease row
/// names another worker or generation.
#[derive(Debug, Clone)]
pub struct SqlStateStore {
    pub(crate) db: Db,
}

/// `value` as the JSON text of a column.
pub(crate) fn to_json(value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| idsync_core::Error::new(idsync_core::ErrorKind::Internal, e.to_string()).with_backend(crate::NAME))
}

/// A duration in the milliseconds of the `*_unix_ms` columns.
pub(crate) fn ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4)
}
