//! The report of a run: the plan, the outcome of every operation, findings
//! and timings. Serializable to JSON: the per-user provisioning history.

use serde::{Deserialize, Serialize};

use crate::model::{Link, ObjectKind, ProfileId, TargetId};
use crate::plan::{OpId, Plan};

/// What happened to one operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum OpStatus {
    /// Applied.
    Applied,
    /// Failed; `transient` failures were retried first.
    Failed {
        /// The error, as text.
        error: String,
        /// The error kind.
        kind: crate::ErrorKind,
        /// Whether it was a transient failure (retries exhausted).
        transient: bool,
    },
    /// Not attempted, and why (held, prerequisite failed, run stopped).
    Skipped {
        /// Why.
        reason: String,
    },
}

/// The outcome of one operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpOutcome {
    /// The operation's id in the plan.
    pub op: OpId,
    /// User or group.
    pub kind: ObjectKind,
    /// The account's link.
    pub link: Link,
    /// The action's name.
    pub action: String,
    /// The account (set after a create).
    pub target: Option<TargetId>,
    /// Applied, failed or skipped.
    #[serde(flatten)]
    pub status: OpStatus,
    /// How many times it was tried.
    pub attempts: u32,
    /// What the target said about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum RunOutcome {
    /// Every operation was applied (or there was none).
    Succeeded,
    /// Planned only.
    DryRun,
    /// Some operations failed or were skipped; they are retried next run.
    PartiallyFailed {
        /// How many failed.
        failed: usize,
        /// How many were skipped.
        skipped: usize,
    },
    /// The run stopped (authentication, configuration): nothing more was done.
    Stopped {
        /// Why.
        error: String,
    },
}

/// The report of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The profile.
    pub profile: ProfileId,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// How long the source read took, in milliseconds.
    pub read_ms: u64,
    /// How long applying took, in milliseconds.
    pub apply_ms: u64,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: RunOutcome,
    /// Objects the source could not read (each error names the object).
    pub read_errors: Vec<String>,
    /// Whether the delta cursor moved on.
    pub cursor_saved: bool,
    /// The plan that was applied (its findings included).
    pub plan: Plan,
    /// How many operations were applied, failed and skipped.
    pub tally: Tally,
    /// The outcome of every operation that was not simply applied: those
    /// that failed or were skipped, those applied after retries, and those
    /// the target said something about. An operation of the plan without an
    /// outcome here was applied at the first attempt.
    pub outcomes: Vec<OpOutcome>,
}

/// How many operations of a run were applied, failed and skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Applied.
    pub applied: usize,
    /// Failed (after their retries).
    pub failed: usize,
    /// Not attempted.
    pub skipped: usize,
}

impl RunReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// Outcomes that failed.
    pub fn failures(&self) -> impl Iterator<Item = &OpOutcome> {
        self.outcomes
            .iter()
            .filter(|o| matches!(o.status, OpStatus::Failed { .. }))
    }

    /// How many operations were applied.
    pub fn applied(&self) -> usize {
        self.tally.applied
    }

    /// The status of operation `op`: its outcome's, or applied when the
    /// report lists no outcome for an operation of a run that applied.
    pub fn status_of(&self, op: OpId) -> Option<&OpStatus> {
        const APPLIED: &OpStatus = &OpStatus::Applied;
        match self.outcomes.binary_search_by_key(&op, |o| o.op) {
            Ok(i) => Some(&self.outcomes[i].status),
            Err(_) if self.outcome == RunOutcome::DryRun => None,
            Err(_) => self.plan.operations.iter().any(|o| o.id == op).then_some(APPLIED),
        }
    }
}
