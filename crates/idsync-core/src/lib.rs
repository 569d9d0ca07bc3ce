#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod ad;
pub mod decide;
pub mod dn;
pub mod engine;
pub mod error;
mod executor;
pub mod mapping;
pub mod memory;
pub mod model;
pub mod observe;
pub mod plan;
pub mod profile;
pub mod report;
pub mod scope;
pub mod source;
pub mod state;
mod stop;
pub mod target;

pub use engine::{Engine, EngineOptions, Prepared, RunOptions};
pub use error::{Error, ErrorKind, Result, Status};
pub use executor::RetryPolicy;
pub use model::{
    AttrValue, Attributes, ExternalId, Fields, Link, ObjectKind, ProfileId, SourceObject, TargetAccount, TargetId,
};
pub use observe::{Event, Observer};
pub use plan::{Plan, PlanInput, ReadMode};
pub use profile::Profile;
pub use report::RunReport;
pub use scope::Scope;
pub use source::{Completeness, Cursor, DeltaItem, ReadItem, Source, SourceCapabilities};
pub use state::{JsonFileStateStore, MemoryStateStore, ProfileState, StateStore};
pub use stop::StopSignal;
pub use target::{
    Applied, BatchJob, FieldChange, Lookup, Target, TargetCapabilities, TargetOp, Veto, gather_batch, unsupported,
};
