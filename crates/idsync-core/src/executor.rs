//! Applies a plan to a target: in phases (links and creates, updates,
//! memberships, deprovisions), with bounded concurrency inside a phase,
//! retries with backoff for transient errors, each operation isolated from
//! the others, and an immediate stop on authentication or configuration
//! errors.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use tracing::{debug, warn};

use crate::error::{Error, ErrorKind};
use crate::model::{Link, TargetId};
use crate::observe::{Event, Observers};
use crate::plan::{Action, OpId, Operation, Plan};
use crate::report::{OpOutcome, OpStatus};
use crate::target::{Target, TargetOp};

/// Retries of transient errors: exponential backoff with jitter, or the
/// server's Retry-After when it gave one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The first backoff.
    pub base_delay: Duration,
    /// The longest backoff (and the longest Retry-After honoured).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempt counts from 1).
    pub fn delay(&self, attempt: u32, error: &Error) -> Duration {
        if let Some(after) = error.retry_after_hint() {
            return after.min(self.max_delay);
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.max_delay);
        // Full jitter in [capped/2, capped].
        let half = capped / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// The shared, mutable part of one apply.
struct Progress {
    /// Accounts created in this apply, by link.
    created: HashMap<Link, TargetId>,
    /// Operations applied successfully.
    done: HashSet<OpId>,
    /// Set when an error stops the run.
    stop: Option<String>,
}

/// Applies `plan` (held operations are skipped) and returns one outcome per
/// operation, in plan order, plus the error that stopped the run, if any.
pub(crate) async fn execute(
    plan: &Plan,
    target: &dyn Target,
    concurrency: usize,
    retry: RetryPolicy,
    observers: &Observers,
) -> (Vec<OpOutcome>, Option<Error>) {
    let progress = Mutex::new(Progress {
        created: HashMap::new(),
        done: HashSet::new(),
        stop: None,
    });
    let stop_error: Mutex<Option<Error>> = Mutex::new(None);
    let mut outcomes: Vec<OpOutcome> = Vec::with_capacity(plan.operations.len());
    for phase in 0..=3u8 {
        let ops: Vec<&Operation> = plan.operations.iter().filter(|op| op.action.phase() == phase).collect();
        let results: Vec<OpOutcome> = futures::stream::iter(ops)
            .map(|op| apply_one(op, target, retry, &progress, &stop_error, observers))
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        outcomes.extend(results);
    }
    outcomes.sort_by_key(|o| o.op);
    let error = stop_error.into_inner().unwrap_or_else(|p| p.into_inner());
    (outcomes, error)
}

fn outcome(
    op: &Operation,
    status: OpStatus,
    attempts: u32,
    target: Option<TargetId>,
    note: Option<String>,
) -> OpOutcome {
    OpOutcome {
        op: op.id,
        kind: op.kind,
        link: op.link.clone(),
        action: op.action.name().to_owned(),
        target,
        status,
        attempts,
        note,
    }
}

async fn apply_one(
    op: &Operation,
    target: &dyn Target,
    retry: RetryPolicy,
    progress: &Mutex<Progress>,
    stop_error: &Mutex<Option<Error>>,
    observers: &Observers,
) -> OpOutcome {
    let skip = |reason: String| outcome(op, OpStatus::Skipped { reason }, 0, op.target.clone(), None);
    if let Some(why) = &op.held {
        return skip(format!("held: {why}"));
    }
    let resolved = {
        let p = match progress.lock() {
            Ok(p) => p,
            Err(_) => return skip("internal: progress lock poisoned".into()),
        };
        if let Some(why) = &p.stop {
            return skip(format!("run stopped: {why}"));
        }
        if let Some(missing) = op.after.iter().find(|a| !p.done.contains(a)) {
            return skip(format!("operation {missing} it depends on was not applied"));
        }
        resolve(op, &p.created)
    };
    let target_op = match resolved {
        Ok(t) => t,
        Err(reason) => return skip(reason),
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        match target.apply(&target_op).await {
            Ok(applied) => {
                let id = applied.target.clone().or_else(|| op.target.clone());
                if let Ok(mut p) = progress.lock() {
                    p.done.insert(op.id);
                    if let (Action::Create { .. }, Some(id)) = (&op.action, &id) {
                        p.created.insert(op.link.clone(), id.clone());
                    }
                }
                debug!(op = op.id, action = op.action.name(), link = %op.link, "applied");
                observers.emit(&Event::OperationApplied {
                    op,
                    note: applied.note.as_deref(),
                });
                return outcome(op, OpStatus::Applied, attempts, id, applied.note);
            }
            Err(e) if e.is_transient() && attempts < retry.max_attempts => {
                let wait = retry.delay(attempts, &e);
                warn!(op = op.id, attempt = attempts, wait_ms = wait.as_millis() as u64, error = %e, "transient failure, retrying");
                futures_timer::Delay::new(wait).await;
            }
            Err(e) => {
                let e = e.exhausted();
                warn!(op = op.id, action = op.action.name(), link = %op.link, error = %e, "operation failed");
                observers.emit(&Event::OperationFailed { op, error: &e });
                let status = OpStatus::Failed {
                    error: e.to_string(),
                    kind: e.kind(),
                    transient: matches!(e.status(), crate::Status::Exhausted),
                };
                if e.stops_run() {
                    if let Ok(mut p) = progress.lock() {
                        p.stop.get_or_insert_with(|| e.to_string());
                    }
                    if let Ok(mut s) = stop_error.lock() {
                        s.get_or_insert(e);
                    }
                }
                return outcome(op, status, attempts, op.target.clone(), None);
            }
        }
    }
}

/// Turns a plan operation into a target operation, resolving accounts
/// created earlier in this apply.
fn resolve(op: &Operation, created: &HashMap<Link, TargetId>) -> Result<TargetOp, String> {
    let this = || {
        op.target
            .clone()
            .or_else(|| created.get(&op.link).cloned())
            .ok_or_else(|| format!("the account of {} does not exist", op.link))
    };
    Ok(match &op.action {
        Action::Create { fields } => TargetOp::Create {
            kind: op.kind,
            link: op.link.clone(),
            fields: fields.clone(),
        },
        Action::Link { .. } => TargetOp::SetLink {
            target: this()?,
            kind: op.kind,
            link: op.link.clone(),
        },
        Action::Update { changes } => TargetOp::Update {
            target: this()?,
            kind: op.kind,
            changes: changes.clone(),
        },
        Action::Enable => TargetOp::SetEnabled {
            target: this()?,
            kind: op.kind,
            enabled: true,
        },
        Action::Disable => TargetOp::SetEnabled {
            target: this()?,
            kind: op.kind,
            enabled: false,
        },
        Action::Delete => TargetOp::Delete {
            target: this()?,
            kind: op.kind,
        },
        Action::AddMember { member, member_target } => TargetOp::AddMember {
            group: this()?,
            member: member_target
                .clone()
                .or_else(|| created.get(member).cloned())
                .ok_or_else(|| format!("the account of member {member} does not exist"))?,
        },
        Action::RemoveMember { member_target, .. } => TargetOp::RemoveMember {
            group: this()?,
            member: member_target.clone(),
        },
    })
}

/// An error for an operation a target does not support.
pub fn unsupported(backend: &'static str, what: &str) -> Error {
    Error::new(ErrorKind::Unsupported, format!("{backend} does not support {what}")).backend(backend)
}
