//! The provisioning history: one record per SCIM request received.

use std::fmt;
use std::sync::{Arc, Mutex};

use idsync_core::plan::Finding;
use idsync_core::{Link, ObjectKind, ProfileId, TargetOp};
use serde::Serialize;

/// One SCIM request as the provisioning history keeps it: what the
/// identity provider asked, what the target was told to do, what the
/// profile's rules decided instead (findings), and the answer. Never holds
/// the bearer token or a password.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProvisioningRecord {
    /// When the request arrived (RFC 3339, UTC).
    pub at: String,
    /// The profile the server applies.
    pub profile: ProfileId,
    /// The HTTP method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// What the request was: `create`, `replace`, `patch`, `delete`,
    /// `get`, `list`, `search`, `discovery`, `unauthorized`, …
    pub action: String,
    /// User or group, when the request is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ObjectKind>,
    /// The SCIM resource id (the target's account id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The account's link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<Link>,
    /// The operations applied to the target, in order.
    pub operations: Vec<TargetOp>,
    /// What the profile's rules decided instead of what was asked, as a
    /// sync's plan reports it (Do Not Disable, a veto, a target that cannot
    /// delete, a duplicate identity, an ambiguous match, …).
    pub findings: Vec<Finding>,
    /// Other remarks: an ignored password, what the target noted, an
    /// account taken over.
    pub notes: Vec<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// The error detail, when the request failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Receives a record of every SCIM request. Called inline after the
/// request is handled: keep it quick, hand long work off.
///
/// Closures `Fn(&ProvisioningRecord)` are sinks.
pub trait ProvisioningSink: Send + Sync + 'static {
    /// One request.
    fn record(&self, record: &ProvisioningRecord);
}

impl<F: Fn(&ProvisioningRecord) + Send + Sync + 'static> ProvisioningSink for F {
    fn record(&self, record: &ProvisioningRecord) {
        self(record)
    }
}

/// A sink that keeps every record in memory (tests, small embeddings).
/// Cheap to clone (clones share the records).
#[derive(Clone, Default)]
pub struct MemoryHistory(Arc<Mutex<Vec<ProvisioningRecord>>>);

impl MemoryHistory {
    /// An empty history.
    pub fn new() -> Self {
        MemoryHistory::default()
    }

    /// Every record so far, oldest first.
    pub fn records(&self) -> Vec<ProvisioningRecord> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl fmt::Debug for MemoryHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemoryHistory({} records)", self.records().len())
    }
}

impl ProvisioningSink for MemoryHistory {
    fn record(&self, record: &ProvisioningRecord) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(record.clone());
    }
}
