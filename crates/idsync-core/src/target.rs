//! The `Target` trait: the application whose accounts idsync manages.

use std::fmt;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{ExternalId, Fields, Link, ObjectKind, ProfileId, TargetAccount, TargetId};

/// What a target can do. `Default` means "nothing"; the `with_*` builders
/// say what it can:
///
/// ```
/// use idsync_core::TargetCapabilities;
/// let caps = TargetCapabilities::default().with_groups(true).with_disable(true).with_batch(500);
/// assert!(caps.groups && !caps.delete);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TargetCapabilities {
    /// Groups and membership.
    pub groups: bool,
    /// Disable and enable user accounts.
    pub disable: bool,
    /// Disable and enable groups.
    pub disable_groups: bool,
    /// Delete accounts (used only when a profile opts in).
    pub delete: bool,
    /// Asks [`Target::can_deprovision`] before each deprovision.
    pub veto: bool,
    /// The most operations [`Target::apply_batch`] takes in one call: a
    /// target that sends many changes as one request (SCIM Bulk and member
    /// PATCHes, one SQL transaction, one LDAP modify of many `member`
    /// values) says how many. 0 and 1 mean one at a time.
    pub batch: usize,
}

impl TargetCapabilities {
    /// With groups and membership.
    pub fn with_groups(mut self, groups: bool) -> Self {
        self.groups = groups;
        self
    }

    /// Users can be disabled and enabled.
    pub fn with_disable(mut self, disable: bool) -> Self {
        self.disable = disable;
        self
    }

    /// Groups can be disabled and enabled.
    pub fn with_disable_groups(mut self, disable_groups: bool) -> Self {
        self.disable_groups = disable_groups;
        self
    }

    /// Accounts can be deleted.
    pub fn with_delete(mut self, delete: bool) -> Self {
        self.delete = delete;
        self
    }

    /// Deprovisions are asked about first.
    pub fn with_veto(mut self, veto: bool) -> Self {
        self.veto = veto;
        self
    }

    /// Batches of up to `batch` operations.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// True when accounts of `kind` can be disabled and enabled.
    pub fn can_disable(&self, kind: ObjectKind) -> bool {
        match kind {
            ObjectKind::User => self.disable,
            ObjectKind::Group => self.disable_groups,
        }
    }
}

/// A part of a batch's work: its results, by the operations' indexes.
pub type BatchJob<'a> = futures::future::BoxFuture<'a, Vec<(usize, Result<Applied>)>>;

/// The results of one [`Target::apply_batch`] call whose work was split
/// into `jobs`, each answering some of the batch's `len` operations by
/// index (a group's member changes, a bulk request, one operation alone):
/// runs up to `at_once` jobs at a time and gives the results in the
/// operations' order. An operation no job answered is an
/// [`Internal`](crate::ErrorKind::Internal) error of `backend`.
pub async fn gather_batch(
    len: usize,
    jobs: Vec<BatchJob<'_>>,
    at_once: usize,
    backend: &'static str,
) -> Vec<Result<Applied>> {
    use futures::StreamExt;
    let mut results: Vec<Option<Result<Applied>>> = std::iter::repeat_with(|| None).take(len).collect();
    let mut finished = futures::stream::iter(jobs).buffer_unordered(at_once.max(1));
    while let Some(done) = finished.next().await {
        for (index, result) in done {
            if let Some(slot) = results.get_mut(index) {
                *slot = Some(result);
            }
        }
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(crate::Error::new(crate::ErrorKind::Internal, "no result for the operation").with_backend(backend))
            })
        })
        .collect()
}

/// The error for an operation or a look-up a target does not support (a
/// kind newer than the target, a capability it lacks).
pub fn unsupported(backend: &'static str, what: &str) -> crate::Error {
    crate::Error::new(
        crate::ErrorKind::Unsupported,
        format!("{backend} does not support {what}"),
    )
    .with_backend(backend)
}

/// A field's change: old → new. `None` is "not set".
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FieldChange {
    /// The target field.
    pub field: String,
    /// The value now.
    pub old: Option<String>,
    /// The value wanted.
    pub new: Option<String>,
}

/// A search for accounts not (yet) linked to the profile.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Lookup {
    /// Accounts of this kind whose `field` equals `value` (case-insensitive,
    /// trimmed): soft-match candidates for adoption.
    Field {
        /// User or group.
        kind: ObjectKind,
        /// The target field (the profile's correlation field).
        field: String,
        /// The source's value.
        value: String,
    },
    /// Accounts of any profile linked to this external id: overlap with
    /// another profile, or adoption from a retired one.
    External {
        /// User or group.
        kind: ObjectKind,
        /// The source object's id.
        external: ExternalId,
    },
}

/// One change for the target to make, with every reference resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "op")]
#[non_exhaustive]
pub enum TargetOp {
    /// Create an account carrying `link`. Must be idempotent through the
    /// link: a target that finds an account with this link already returns
    /// that account's id.
    Create {
        /// User or group.
        kind: ObjectKind,
        /// The link to store with the account.
        link: Link,
        /// The mapped fields.
        fields: Fields,
    },
    /// Set (replace) the link of an existing account (adoption, rehire).
    SetLink {
        /// The account.
        target: TargetId,
        /// User or group.
        kind: ObjectKind,
        /// The new link.
        link: Link,
    },
    /// Change some mapped fields, leaving every other field alone.
    Update {
        /// The account.
        target: TargetId,
        /// User or group.
        kind: ObjectKind,
        /// The changes.
        changes: Vec<FieldChange>,
    },
    /// Enable or disable an account.
    SetEnabled {
        /// The account.
        target: TargetId,
        /// User or group.
        kind: ObjectKind,
        /// The state wanted.
        enabled: bool,
    },
    /// Delete an account (only when the profile opts in).
    Delete {
        /// The account.
        target: TargetId,
        /// User or group.
        kind: ObjectKind,
    },
    /// Add a member to a group. Already a member counts as success.
    AddMember {
        /// The group.
        group: TargetId,
        /// The member.
        member: TargetId,
    },
    /// Remove a member from a group. Not a member counts as success.
    RemoveMember {
        /// The group.
        group: TargetId,
        /// The member.
        member: TargetId,
    },
}

/// What applying an operation produced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The account's id (always set by `Create`).
    pub target: Option<TargetId>,
    /// Something the report should say (e.g. "created disabled: AD requires
    /// a password before an account can be enabled").
    pub note: Option<String>,
}

impl Applied {
    /// Applied to the account `target`, with nothing to report.
    pub fn to(target: TargetId) -> Self {
        Applied {
            target: Some(target),
            note: None,
        }
    }

    /// The same, with something the report should say.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// A target's answer to "may this account be deprovisioned?".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Veto {
    /// Go ahead.
    Allow,
    /// Leave it, for this reason (HaloPSA: "user has open tickets").
    Deny(String),
}

/// The application whose accounts idsync manages. Passwords are never read
/// or written.
#[async_trait]
pub trait Target: Send + Sync + fmt::Debug + 'static {
    /// The backend's name, used in errors and logs.
    fn backend(&self) -> &'static str;

    /// What this target can do.
    fn capabilities(&self) -> TargetCapabilities;

    /// Every account linked to `profile`.
    async fn linked(&self, profile: ProfileId) -> Result<BoxStream<'_, Result<TargetAccount>>>;

    /// Accounts matching any of `lookups`, each listed once.
    async fn lookup(&self, lookups: &[Lookup]) -> Result<Vec<TargetAccount>>;

    /// Applies one operation.
    async fn apply(&self, op: &TargetOp) -> Result<Applied>;

    /// Applies several operations, returning one result per operation, in
    /// the same order. Called with up to [`TargetCapabilities::batch`]
    /// operations; the default applies them one after the other with
    /// [`Target::apply`], so a target without batches needs nothing more.
    ///
    /// What the engine promises: no operation in a batch depends on another
    /// one of the same batch; the operations on one account come in the
    /// order they must be applied in; the membership changes of one group
    /// are never in two batches at once.
    ///
    /// What a target promises: one bad operation fails alone. A target that
    /// sends a batch as one request and sees the request refused as a whole
    /// applies the operations again in smaller requests (down to one), so
    /// that the error names the object that caused it. Transient errors are
    /// returned as such: the engine retries those operations, in a batch.
    async fn apply_batch(&self, ops: &[TargetOp]) -> Vec<Result<Applied>> {
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(self.apply(op).await);
        }
        results
    }

    /// Whether `account` may be deprovisioned. Asked only when
    /// [`TargetCapabilities::veto`] is set; the default allows.
    async fn can_deprovision(&self, account: &TargetAccount) -> Result<Veto> {
        let _ = account;
        Ok(Veto::Allow)
    }
}
