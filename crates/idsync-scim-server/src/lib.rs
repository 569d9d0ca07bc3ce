#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod auth;
mod error;
pub mod filter;
mod history;
pub mod patch;
mod provision;
mod query;
mod router;
mod schemas;
mod state;
mod store;
mod write;

pub use history::{MemoryHistory, ProvisioningRecord, ProvisioningSink};
pub use router::{ScimServer, scim_router};
pub use store::GENERATED_PREFIX;
