//! SQL for idsync, on SQLite and PostgreSQL (sqlx):
//!
//! - [`SqlTarget`]: an application's own users, groups and membership
//!   tables as an idsync [`Target`](idsync_core::Target), with the links
//!   kept in a table beside them; the tables and columns come from a
//!   [`SqlTargetConfig`] (serde), and [`SqlTarget::create_schema`] makes
//!   the default ones.
//! - [`SqlStateStore`]: a [`StateStore`](idsync_core::StateStore) with a
//!   run history and [leases](SqlStateStore#leases) so that only one
//!   worker runs a profile at a time, and [`FencedStateStore`], its view
//!   for a lease's holder, whose writes the database refuses once the
//!   lease was taken over.
//!
//! Identifiers from the configuration are checked to be plain SQL
//! identifiers and quoted; values are always bound as parameters.
//!
//! ```no_run
//! # async fn demo() -> idsync_core::Result<()> {
//! use idsync_sql::{SqlStateStore, SqlTarget, SqlTargetConfig};
//! let target = SqlTarget::connect("sqlite://app.db?mode=rwc", SqlTargetConfig::default()).await?;
//! let state = SqlStateStore::connect("sqlite://idsync-state.db?mode=rwc").await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod client;
mod config;
mod error;
mod history;
mod schedule;
mod state;
mod store;
mod target;

pub use client::{Dialect, check_identifier};
pub use config::{IdType, MembershipConfig, SqlTargetConfig, TableConfig};
pub use error::{SqlError, classify, classify_code};
pub use history::{NAME_FIELDS, ObjectEvent, RunRecord, RunRow, is_name_field};
pub use schedule::{Claimed, ProfileStatus, Scheduled, StoredProfile};
pub use state::FencedStateStore;
pub use store::{Lease, SqlStateStore};
pub use target::SqlTarget;

/// The backend's name in errors and logs.
pub const NAME: &str = "sql";

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
