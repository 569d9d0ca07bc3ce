//! Real servers for idsync tests, started on loopback in temporary
//! directories and stopped on drop, plus the behaviour suites that every
//! `Source` and `Target` runs.
//!
//! A server that is not installed makes its test skip, except when
//! `IDSYNC_REQUIRE_SERVERS=1` (set by `.ci/run`): then it is a failure.
#![deny(missing_docs)]
#![expect(
    clippy::panic,
    clippy::expect_used,
    reason = "test code: a fixture that cannot be set up fails the test that asked for it"
)]

pub mod behaviour;
pub mod fault;
mod gate;
pub mod jumpcloud;
pub mod ldif_cli;
pub mod logs;
pub mod postgres;
pub mod proxy;
pub mod read;
pub mod rest;
pub mod samba;
pub mod scim2;
pub mod scripted;
pub mod slapd;
pub mod tls;

pub use gate::{StartError, gate, require_servers};
