#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use idsync_core::{
    AttrValue, Attributes, Completeness, Cursor, DeltaItem, Engine, EngineOptions, Error, ErrorKind, Event, ExternalId,
    FieldChange, Fields, JsonFileStateStore, Link, Lookup, MemoryStateStore, ObjectKind, Observer, Plan, PlanInput,
    Prepared, Profile, ProfileId, ProfileState, ReadItem, ReadMode, Result, RetryPolicy, RunOptions, RunReport, Scope,
    Source, SourceCapabilities, SourceObject, StateStore, Status, StopSignal, Target, TargetAccount,
    TargetCapabilities, TargetId, TargetOp, Veto, engine, error, mapping, memory, model, observe, plan, profile,
    report, scope, source, state, target,
};

#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub use idsync_file as file;

#[cfg(feature = "jumpcloud")]
#[cfg_attr(docsrs, doc(cfg(feature = "jumpcloud")))]
pub use idsync_jumpcloud as jumpcloud;

#[cfg(feature = "rest")]
#[cfg_attr(docsrs, doc(cfg(feature = "rest")))]
pub use idsync_rest as rest;

#[cfg(feature = "scim")]
#[cfg_attr(docsrs, doc(cfg(feature = "scim")))]
pub use idsync_scim as scim;

#[cfg(feature = "scim-server")]
#[cfg_attr(docsrs, doc(cfg(feature = "scim-server")))]
pub use idsync_scim_server as scim_server;

#[cfg(feature = "ldap")]
#[cfg_attr(docsrs, doc(cfg(feature = "ldap")))]
pub use idsync_ldap as ldap;

#[cfg(feature = "sql")]
#[cfg_attr(docsrs, doc(cfg(feature = "sql")))]
pub use idsync_sql as sql;
