//! Applies a plan to a target: in phases (links and creates, updates,
//! memberships, deprovisions), in batches as large as the target takes,
//! with bounded concurrency inside a phase, retries with backoff for
//! transient errors, each operation isolated from the others, and an
//! immediate stop on authentication or configuration errors or when the
//! embedding program raises the [`StopSignal`].
//!
//! Inside a phase the operations are sorted into lanes, one per account
//! (one per group for membership changes when the target takes batches):
//! the operations of a lane are applied in order, never two at once. Round
//! `k` takes the `k`-th chunk of every lane (one operation, or up to a batch
//! of one group's membership changes), packs the chunks into batches of up
//! to [`TargetCapabilities::batch`](crate::TargetCapabilities::batch)
//! operations, and applies the batches `concurrency` at a time.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tracing::{debug, warn};

use crate::error::{Error, ErrorKind};
use crate::model::{Link, TargetId};
use crate::observe::{Event, Observers};
use crate::plan::{Action, OpId, Operation, Plan};
use crate::report::{OpOutcome, OpStatus};
use crate::stop::StopSignal;
use crate::target::{Applied, Target, TargetOp};

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
        if let Some(after) = error.retry_after() {
            return after.min(self.max_delay);
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.max_delay);
        // Full jitter in [capped/2, capped].
        let half = capped / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// How an apply runs.
pub(crate) struct Settings<'a> {
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub observers: &'a Observers,
    pub stop: &'a StopSignal,
}

/// The shared, mutable part of one apply.
#[derive(Default)]
struct Progress {
    /// Accounts created in this apply, by link.
    created: HashMap<Link, TargetId>,
    /// Operations applied successfully.
    done: HashSet<OpId>,
    /// The error that stops the run, once one did.
    stop: Option<Error>,
}

/// Applies `plan` (held operations are skipped), passing each operation's
/// outcome to `record` as it is known, and returns the error that stopped
/// the run, if any.
pub(crate) async fn execute(
    plan: &Plan,
    target: &dyn Target,
    settings: &Settings<'_>,
    record: &mut (dyn FnMut(&Operation, OpOutcome) + Send),
) -> Option<Error> {
    let batch = target.capabilities().batch.max(1);
    let progress = Mutex::new(Progress::default());
    for phase in 0..=3u8 {
        let ops = plan.operations.iter().filter(|op| op.action.phase() == phase);
        let mut lanes = lanes(ops, batch > 1);
        let mut round = 0;
        loop {
            let chunks: Vec<&[&Operation]> = lanes
                .iter()
                .filter_map(|lane| {
                    let take = if lane.grouped { batch } else { 1 };
                    lane.ops.chunks(take).nth(round)
                })
                .collect();
            if chunks.is_empty() {
                break;
            }
            let batches = pack(chunks, batch);
            // The futures are made before the stream: a closure mapping
            // the stream would stay in its type, and the run's future
            // would not be `Send` (rust-lang/rust#102211).
            let batches: Vec<_> = batches
                .into_iter()
                .map(|ops| apply_batch(ops, target, settings, &progress).boxed())
                .collect();
            let mut results = futures::stream::iter(batches).buffer_unordered(settings.concurrency.max(1));
            while let Some(outcomes) = results.next().await {
                for (op, outcome) in outcomes {
                    record(op, outcome);
                }
            }
            round += 1;
        }
        lanes.clear();
    }
    progress.into_inner().unwrap_or_else(|p| p.into_inner()).stop
}

/// The operations of one phase on one account, in plan order.
struct Lane<'p> {
    ops: Vec<&'p Operation>,
    /// A group's membership changes, sent together in batches.
    grouped: bool,
}

/// Sorts a phase's operations into lanes by the account they write: a
/// membership change writes its group when `group_members` (the target
/// takes batches), else its (group, member) pair.
fn lanes<'p>(ops: impl Iterator<Item = &'p Operation>, group_members: bool) -> Vec<Lane<'p>> {
    // (account, membership change?, member when not grouped)
    let mut index: HashMap<(&Link, bool, Option<&Link>), usize> = HashMap::new();
    let mut lanes: Vec<Lane<'p>> = Vec::new();
    for op in ops {
        let member = match &op.action {
            Action::AddMember { member, .. } | Action::RemoveMember { member, .. } => Some(member),
            _ => None,
        };
        let grouped = member.is_some() && group_members;
        let key = (&op.link, member.is_some(), member.filter(|_| !grouped));
        let i = *index.entry(key).or_insert_with(|| {
            lanes.push(Lane {
                ops: Vec::new(),
                grouped,
            });
            lanes.len() - 1
        });
        lanes[i].ops.push(op);
    }
    lanes
}

/// Packs chunks into batches of at most `batch` operations, never splitting
/// a chunk.
fn pack<'p>(chunks: Vec<&[&'p Operation]>, batch: usize) -> Vec<Vec<&'p Operation>> {
    let mut batches: Vec<Vec<&'p Operation>> = Vec::new();
    for chunk in chunks {
        match batches.last_mut() {
            Some(last) if last.len() + chunk.len() <= batch => last.extend_from_slice(chunk),
            _ => batches.push(chunk.to_vec()),
        }
    }
    batches
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

fn skipped(op: &Operation, reason: String) -> OpOutcome {
    outcome(op, OpStatus::Skipped { reason }, 0, op.target.clone(), None)
}

/// Applies one batch, retrying its transient failures (as a smaller batch)
/// until they succeed or run out of attempts.
async fn apply_batch<'p>(
    ops: Vec<&'p Operation>,
    target: &dyn Target,
    settings: &Settings<'_>,
    progress: &Mutex<Progress>,
) -> Vec<(&'p Operation, OpOutcome)> {
    let mut out = Vec::with_capacity(ops.len());
    let mut pending: Vec<(&'p Operation, TargetOp)> = Vec::with_capacity(ops.len());
    {
        let p = progress.lock().unwrap_or_else(|p| p.into_inner());
        for op in ops {
            match ready(op, &p, settings.stop) {
                Ok(t) => pending.push((op, t)),
                Err(reason) => out.push((op, skipped(op, reason))),
            }
        }
    }
    let mut attempts = 0;
    while !pending.is_empty() {
        attempts += 1;
        let target_ops: Vec<TargetOp> = pending.iter().map(|(_, t)| t.clone()).collect();
        let mut results = target.apply_batch(&target_ops).await;
        if results.len() != target_ops.len() {
            let message = format!(
                "{} answered {} results for a batch of {}",
                target.backend(),
                results.len(),
                target_ops.len()
            );
            results = target_ops
                .iter()
                .map(|_| Err(Error::new(ErrorKind::Internal, message.clone()).with_backend(target.backend())))
                .collect();
        }
        let mut again = Vec::new();
        let mut wait = Duration::ZERO;
        for ((op, target_op), result) in pending.into_iter().zip(results) {
            match result {
                Ok(applied) => out.push((op, succeeded(op, applied, attempts, progress, settings.observers))),
                Err(e) if e.is_transient() && attempts < settings.retry.max_attempts => {
                    let delay = settings.retry.delay(attempts, &e);
                    warn!(op = op.id, attempt = attempts, wait_ms = delay.as_millis() as u64, error = %e, "transient failure, retrying");
                    wait = wait.max(delay);
                    again.push((op, target_op));
                }
                Err(e) => out.push((op, failed(op, e, attempts, progress, settings.observers))),
            }
        }
        if again.is_empty() {
            break;
        }
        futures_timer::Delay::new(wait).await;
        pending = Vec::with_capacity(again.len());
        let p = progress.lock().unwrap_or_else(|p| p.into_inner());
        for (op, target_op) in again {
            match stopped(&p, settings.stop) {
                Some(reason) => out.push((
                    op,
                    outcome(op, OpStatus::Skipped { reason }, attempts, op.target.clone(), None),
                )),
                None => pending.push((op, target_op)),
            }
        }
    }
    out
}

/// Why the run stopped, if it did.
fn stopped(p: &Progress, stop: &StopSignal) -> Option<String> {
    let why = p.stop.as_ref().map(|e| e.to_string()).or_else(|| stop.reason())?;
    Some(format!("run stopped: {why}"))
}

/// The target operation for `op`, or why it is skipped.
fn ready(op: &Operation, p: &Progress, stop: &StopSignal) -> Result<TargetOp, String> {
    if let Some(why) = &op.held {
        return Err(format!("held: {why}"));
    }
    if let Some(why) = stopped(p, stop) {
        return Err(why);
    }
    if let Some(missing) = op.after.iter().find(|a| !p.done.contains(a)) {
        return Err(format!("operation {missing} it depends on was not applied"));
    }
    op.target_op(&p.created)
}

fn succeeded(
    op: &Operation,
    applied: Applied,
    attempts: u32,
    progress: &Mutex<Progress>,
    observers: &Observers,
) -> OpOutcome {
    let id = applied.target.clone().or_else(|| op.target.clone());
    {
        let mut p = progress.lock().unwrap_or_else(|p| p.into_inner());
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
    outcome(op, OpStatus::Applied, attempts, id, applied.note)
}

fn failed(op: &Operation, e: Error, attempts: u32, progress: &Mutex<Progress>, observers: &Observers) -> OpOutcome {
    let e = e.exhausted();
    warn!(op = op.id, action = op.action.name(), link = %op.link, error = %e, "operation failed");
    observers.emit(&Event::OperationFailed { op, error: &e });
    let status = OpStatus::Failed {
        error: e.to_string(),
        kind: e.kind(),
        transient: matches!(e.status(), crate::Status::Exhausted),
    };
    if e.stops_run() {
        progress.lock().unwrap_or_else(|p| p.into_inner()).stop.get_or_insert(e);
    }
    outcome(op, status, attempts, op.target.clone(), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExternalId, ObjectKind, ProfileId};
    use crate::plan::{Reason, Situation};

    fn op(id: OpId, group: &str, action: Action) -> Operation {
        let link = |e: &str| Link {
            profile: ProfileId(uuid::Uuid::nil()),
            external: ExternalId::from(e),
        };
        Operation {
            id,
            kind: ObjectKind::Group,
            link: link(group),
            target: Some(TargetId::from(group)),
            action,
            reason: Reason {
                situation: Situation::Membership,
                detail: String::new(),
            },
            after: vec![],
            held: None,
        }
    }

    fn add(id: OpId, group: &str, member: &str) -> Operation {
        op(
            id,
            group,
            Action::AddMember {
                member: Link {
                    profile: ProfileId(uuid::Uuid::nil()),
                    external: ExternalId::from(member),
                },
                member_target: Some(TargetId::from(member)),
            },
        )
    }

    #[test]
    fn a_groups_membership_changes_share_a_lane_only_when_the_target_batches() {
        let ops = [
            add(0, "g1", "a"),
            add(1, "g1", "b"),
            add(2, "g2", "a"),
            op(3, "g1", Action::Enable),
        ];
        let batched = lanes(ops.iter(), true);
        let sizes: Vec<(usize, bool)> = batched.iter().map(|l| (l.ops.len(), l.grouped)).collect();
        assert_eq!(sizes, [(2, true), (1, true), (1, false)]);
        let single = lanes(ops.iter(), false);
        assert_eq!(single.len(), 4);
    }

    #[test]
    fn packing_fills_batches_without_splitting_a_chunk() {
        let ops: Vec<Operation> = (0..7).map(|i| add(i, "g", &format!("m{i}"))).collect();
        let refs: Vec<&Operation> = ops.iter().collect();
        let chunks: Vec<&[&Operation]> = vec![&refs[0..3], &refs[3..4], &refs[4..7]];
        let batches = pack(chunks, 4);
        let ids: Vec<Vec<OpId>> = batches.iter().map(|b| b.iter().map(|o| o.id).collect()).collect();
        assert_eq!(ids, [vec![0, 1, 2, 3], vec![4, 5, 6]]);
    }
}
