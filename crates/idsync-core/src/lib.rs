#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod error;
pub mod mapping;
pub mod model;
pub mod plan;
pub mod profile;
pub mod scope;
pub mod source;
pub mod target;

pub use error::{Error, ErrorKind, Result, Status};
pub use model::{
    AttrValue, Attributes, ExternalId, Fields, Link, ObjectKind, ProfileId, SourceObject, TargetAccount, TargetId,
};
pub use profile::Profile;
pub use scope::Scope;
pub use source::{Completeness, Cursor, DeltaItem, ReadItem, Source, SourceCapabilities};
pub use target::{Applied, FieldChange, Lookup, Target, TargetCapabilities, TargetOp, Veto};
