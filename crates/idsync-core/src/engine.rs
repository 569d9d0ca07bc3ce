//! The engine: one run is load state → choose full or delta → read source
//! and target → plan → safety checks → apply (or stop on a dry run) → save
//! the cursor only when nothing is lost → report.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::{StreamExt, TryStreamExt};
use tracing::{Instrument, info, info_span, warn};

use crate::error::Result;
use crate::executor::{self, RetryPolicy};
use crate::model::{ExternalId, SourceObject, TargetAccount};
use crate::observe::{Event, Observer, Observers};
use crate::plan::{self, Action, OpId, Plan, PlanInput, ReadMode};
use crate::profile::Profile;
use crate::report::{OpStatus, RunOutcome, RunReport};
use crate::source::{Completeness, Cursor, DeltaItem, ReadItem, Source};
use crate::state::{ProfileState, StateStore};
use crate::target::{Lookup, Target, Veto};

/// How an engine works, whatever the run.
#[derive(Clone, Copy, Debug)]
pub struct EngineOptions {
    /// Operations applied at once within a phase.
    pub concurrency: usize,
    /// Retries of transient errors.
    pub retry: RetryPolicy,
    /// A full read at least this often, even when deltas work.
    pub full_every: Option<Duration>,
    /// Lookups sent to the target at once.
    pub lookup_batch: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            concurrency: 8,
            retry: RetryPolicy::default(),
            full_every: Some(Duration::from_secs(24 * 3600)),
            lookup_batch: 200,
        }
    }
}

/// What one run does.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Plan only: apply nothing, save nothing.
    pub dry_run: bool,
    /// The operator confirms deprovisions beyond the threshold.
    pub confirm: bool,
    /// Read in full even when a delta is possible.
    pub full: bool,
}

/// A read and planned run, not yet applied: inspect `plan`, choose part of
/// it with [`Prepared::select`], then [`Engine::apply`] it.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The plan.
    pub plan: Plan,
    /// Objects the source could not read.
    pub read_errors: Vec<String>,
    started: SystemTime,
    read_ms: u64,
    /// The cursor to save when nothing is lost; `None` clears it.
    next_cursor: Option<Cursor>,
    /// Whether the read allows moving the cursor at all.
    cursor_ok: bool,
    complete_full: bool,
    /// Operations planned but not chosen.
    left_out: BTreeSet<ExternalId>,
}

impl Prepared {
    /// A plan reviewed earlier (saved as JSON), to apply exactly as it is.
    /// Applying it never moves the delta cursor: the next run reads again.
    pub fn reviewed(plan: Plan) -> Prepared {
        Prepared {
            plan,
            read_errors: Vec::new(),
            started: SystemTime::now(),
            read_ms: 0,
            next_cursor: None,
            cursor_ok: false,
            complete_full: false,
            left_out: BTreeSet::new(),
        }
    }

    /// Keeps only the chosen operations; the others' objects are retried next run.
    pub fn select(mut self, ids: &BTreeSet<OpId>) -> Prepared {
        for op in self.plan.operations.iter().filter(|op| !ids.contains(&op.id)) {
            self.left_out.insert(op.link.external.clone());
        }
        self.plan = self.plan.select(ids);
        self
    }
}

/// Runs one profile: a source, a target, and where the state is kept.
#[derive(Debug)]
pub struct Engine {
    profile: Profile,
    source: Arc<dyn Source>,
    target: Arc<dyn Target>,
    state: Arc<dyn StateStore>,
    options: EngineOptions,
    observers: Observers,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis().try_into().unwrap_or(u64::MAX)
}

/// What a source read produced, before planning.
struct SourceRead {
    mode: ReadMode,
    objects: Vec<SourceObject>,
    deleted: Vec<ExternalId>,
    present: Option<HashSet<ExternalId>>,
    completeness: Completeness,
    errors: Vec<String>,
    cursor: Option<Cursor>,
    cursor_ok: bool,
}

impl Engine {
    /// An engine with default options and no observers.
    pub fn new(profile: Profile, source: Arc<dyn Source>, target: Arc<dyn Target>, state: Arc<dyn StateStore>) -> Self {
        Engine {
            profile,
            source,
            target,
            state,
            options: EngineOptions::default(),
            observers: Observers::default(),
        }
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: EngineOptions) -> Self {
        self.options = options;
        self
    }

    /// Adds an observer.
    pub fn observe(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.0.push(observer);
        self
    }

    /// The profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Plans and applies (or only plans, on a dry run).
    pub async fn run(&self, options: &RunOptions) -> Result<RunReport> {
        let prepared = self.prepare(options).await?;
        if options.dry_run {
            return Ok(self.dry_run_report(prepared));
        }
        self.apply(prepared).await
    }

    /// Reads, plans and runs the safety checks, applying nothing.
    pub async fn prepare(&self, options: &RunOptions) -> Result<Prepared> {
        let span = info_span!("prepare", profile = %self.profile.id, source = self.source.backend(), target = self.target.backend());
        let result = self.prepare_inner(options).instrument(span).await;
        if let Err(e) = &result {
            self.observers.emit(&Event::RunFailed { error: e });
        }
        result
    }

    async fn prepare_inner(&self, options: &RunOptions) -> Result<Prepared> {
        let started = SystemTime::now();
        let state = self.state.load(self.profile.id).await?;
        let read_start = Instant::now();
        let mut read = match self.delta_cursor(&state, options) {
            Some(cursor) => {
                self.observers.emit(&Event::RunStarted { mode: ReadMode::Delta });
                match self.read_delta(cursor, &state).await? {
                    Some(read) => read,
                    None => self.read_full().await?,
                }
            }
            None => {
                self.observers.emit(&Event::RunStarted { mode: ReadMode::Full });
                self.read_full().await?
            }
        };
        let read_ms = ms(read_start);
        self.observers.emit(&Event::SourceRead {
            objects: read.objects.len(),
        });
        let linked: Vec<TargetAccount> = self.target.linked(self.profile.id).await?.try_collect().await?;
        if let Some(present) = read.present.take() {
            let changed: HashSet<&ExternalId> = read.objects.iter().map(|o| &o.id).collect();
            read.deleted.extend(
                linked
                    .iter()
                    .filter_map(|a| a.link.as_ref().map(|l| &l.external))
                    .filter(|e| !present.contains(*e) && !changed.contains(e))
                    .cloned(),
            );
        }
        let candidates = self.lookups(&read.objects, &linked).await?;
        let mut plan = plan::plan(PlanInput {
            profile: &self.profile,
            capabilities: self.target.capabilities(),
            mode: read.mode,
            completeness: &read.completeness,
            objects: &read.objects,
            deleted: &read.deleted,
            linked: &linked,
            candidates: &candidates,
            confirmed: options.confirm,
        });
        self.vetoes(&mut plan, &linked).await?;
        info!(operations = plan.operations.len(), findings = plan.findings.len(), mode = ?plan.mode, "planned");
        self.observers.emit(&Event::Planned { plan: &plan });
        let complete_full = read.mode == ReadMode::Full && read.completeness.is_complete() && read.errors.is_empty();
        Ok(Prepared {
            plan,
            read_errors: read.errors,
            started,
            read_ms,
            next_cursor: read.cursor,
            cursor_ok: read.cursor_ok,
            complete_full,
            left_out: BTreeSet::new(),
        })
    }

    /// The cursor to read a delta from, when a delta is possible and wanted.
    fn delta_cursor<'s>(&self, state: &'s ProfileState, options: &RunOptions) -> Option<&'s Cursor> {
        if options.full || !self.source.capabilities().delta || self.profile.scope.needs_full_view() {
            return None;
        }
        if state.scope_digest.as_ref().is_some_and(|d| *d != self.scope_digest()) {
            info!("the scope or mapping changed since the last full read: reading in full");
            return None;
        }
        let due = match (self.options.full_every, state.last_full_unix) {
            (Some(every), Some(last)) => unix_now().saturating_sub(last) >= every.as_secs(),
            (_, None) => true,
            (None, Some(_)) => false,
        };
        if due { None } else { state.cursor.as_ref() }
    }

    /// The digest saved as [`ProfileState::scope_digest`]: FNV-1a over the
    /// JSON of the scope and mapping (stable: no hash maps in either).
    fn scope_digest(&self) -> String {
        let json = serde_json::to_string(&(&self.profile.scope, &self.profile.mapping)).unwrap_or_default();
        let hash = json.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("{hash:016x}")
    }

    async fn read_full(&self) -> Result<SourceRead> {
        let mut stream = self.source.read_full(&self.profile.scope).await?;
        let read = self.profile.attributes_read();
        let mut objects = Vec::new();
        let mut errors = Vec::new();
        let mut end = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(ReadItem::Object(o)) => objects.push(keep_attributes(o, &read)),
                Ok(ReadItem::End { completeness, cursor }) => {
                    end = Some((completeness, cursor));
                    break;
                }
                Err(e) if e.stops_run() => return Err(e),
                Err(e) => {
                    warn!(error = %e, "an object could not be read");
                    errors.push(e.to_string());
                }
            }
        }
        let (completeness, cursor) = match end {
            None => (
                Completeness::Partial {
                    reason: "the read ended before the source said it was complete".into(),
                },
                None,
            ),
            Some((Completeness::Complete, cursor)) if !errors.is_empty() => (
                Completeness::Partial {
                    reason: format!("{} object(s) could not be read", errors.len()),
                },
                cursor,
            ),
            Some(end) => end,
        };
        let cursor_ok = completeness.is_complete();
        Ok(SourceRead {
            mode: ReadMode::Full,
            objects,
            deleted: Vec::new(),
            present: None,
            completeness,
            errors,
            cursor: if cursor_ok { cursor } else { None },
            cursor_ok,
        })
    }

    /// A delta read, or `None` when the source asks for a full read.
    async fn read_delta(&self, from: &Cursor, state: &ProfileState) -> Result<Option<SourceRead>> {
        let mut stream = self.source.read_delta(&self.profile.scope, from).await?;
        let attributes = self.profile.attributes_read();
        let mut read = SourceRead {
            mode: ReadMode::Delta,
            objects: Vec::new(),
            deleted: Vec::new(),
            present: None,
            completeness: Completeness::Complete,
            errors: Vec::new(),
            cursor: None,
            cursor_ok: false,
        };
        while let Some(item) = stream.next().await {
            match item {
                Ok(DeltaItem::Changed(o)) => read.objects.push(keep_attributes(o, &attributes)),
                Ok(DeltaItem::Deleted(id)) => read.deleted.push(id),
                Ok(DeltaItem::Present(id)) => {
                    read.present.get_or_insert_with(HashSet::new).insert(id);
                }
                Ok(DeltaItem::End { cursor }) => {
                    read.cursor = Some(cursor);
                    read.cursor_ok = read.errors.is_empty();
                    break;
                }
                Ok(DeltaItem::ResyncRequired { reason }) => {
                    info!(%reason, "the source asks for a full read");
                    return Ok(None);
                }
                Err(e) if e.stops_run() => return Err(e),
                Err(e) => {
                    warn!(error = %e, "a change could not be read; the cursor stays");
                    read.errors.push(e.to_string());
                }
            }
        }
        drop(stream);
        if read.cursor.is_none() {
            read.completeness = Completeness::Partial {
                reason: "the delta read ended early".into(),
            };
        }
        // Objects whose operations failed last time are read again.
        let seen: HashSet<ExternalId> = read
            .objects
            .iter()
            .map(|o| o.id.clone())
            .chain(read.deleted.iter().cloned())
            .collect();
        for id in state.retry.iter().filter(|id| !seen.contains(*id)) {
            match self.source.read_one(id).await {
                Ok(Some(o)) => read.objects.push(o),
                Ok(None) => read.deleted.push(id.clone()),
                Err(e) if e.stops_run() => return Err(e),
                Err(e) => {
                    read.errors.push(e.to_string());
                    read.cursor_ok = false;
                }
            }
        }
        Ok(Some(read))
    }

    /// Asks the target about accounts the unlinked objects may already have.
    async fn lookups(&self, objects: &[SourceObject], linked: &[TargetAccount]) -> Result<Vec<TargetAccount>> {
        let linked_ids: HashSet<&ExternalId> = linked
            .iter()
            .filter_map(|a| a.link.as_ref().map(|l| &l.external))
            .collect();
        let corr = self.profile.rules.correlation.as_ref();
        let mut lookups = Vec::new();
        for o in objects {
            if linked_ids.contains(&o.id) || !o.enabled || !self.profile.scope.admits(o) {
                continue;
            }
            lookups.push(Lookup::External {
                kind: o.kind,
                external: o.id.clone(),
            });
            if let Some(value) = corr
                .and_then(|c| o.first_text(&c.attribute))
                .filter(|v| !v.trim().is_empty())
            {
                let field = corr.map(|c| c.field.clone()).unwrap_or_default();
                lookups.push(Lookup::Field {
                    kind: o.kind,
                    field,
                    value: value.to_owned(),
                });
            }
        }
        let mut found = Vec::new();
        for batch in lookups.chunks(self.options.lookup_batch.max(1)) {
            found.extend(self.target.lookup(batch).await?);
        }
        Ok(found)
    }

    /// Asks the target's veto for each deprovision it may refuse.
    async fn vetoes(&self, plan: &mut Plan, linked: &[TargetAccount]) -> Result<()> {
        if !self.target.capabilities().veto {
            return Ok(());
        }
        let asks: Vec<(OpId, &TargetAccount)> = plan
            .operations
            .iter()
            .filter(|op| op.action.is_deprovision() && op.held.is_none())
            .filter_map(|op| Some((op.id, linked.iter().find(|a| Some(&a.id) == op.target.as_ref())?)))
            .collect();
        for (id, account) in asks {
            if let Veto::Deny(reason) = self.target.can_deprovision(account).await? {
                plan.veto(id, &reason);
            }
        }
        Ok(())
    }

    fn dry_run_report(&self, prepared: Prepared) -> RunReport {
        let report = RunReport {
            profile: self.profile.id,
            started_at: humantime::format_rfc3339_millis(prepared.started).to_string(),
            duration_ms: prepared.started.elapsed().map(|d| d.as_millis() as u64).unwrap_or(0),
            read_ms: prepared.read_ms,
            apply_ms: 0,
            outcome: RunOutcome::DryRun,
            read_errors: prepared.read_errors,
            cursor_saved: false,
            plan: prepared.plan,
            outcomes: Vec::new(),
        };
        self.observers.emit(&Event::RunFinished { report: &report });
        report
    }

    /// Applies a prepared run and saves the state: the cursor moves on only
    /// when every operation succeeded or its object is held for retry.
    pub async fn apply(&self, prepared: Prepared) -> Result<RunReport> {
        let span = info_span!("apply", profile = %self.profile.id, target = self.target.backend());
        async move {
            let apply_start = Instant::now();
            let (outcomes, stopped) = executor::execute(
                &prepared.plan,
                self.target.as_ref(),
                self.options.concurrency,
                self.options.retry,
                &self.observers,
            )
            .await;
            let apply_ms = ms(apply_start);
            let mut retry: BTreeSet<ExternalId> = prepared.left_out.clone();
            let (mut failed, mut skipped) = (0, 0);
            for o in &outcomes {
                match &o.status {
                    OpStatus::Applied => continue,
                    OpStatus::Failed { .. } => failed += 1,
                    OpStatus::Skipped { .. } => skipped += 1,
                }
                retry.insert(o.link.external.clone());
                if let Some(op) = prepared.plan.operations.iter().find(|op| op.id == o.op)
                    && let Action::AddMember { member, .. } | Action::RemoveMember { member, .. } = &op.action
                {
                    retry.insert(member.external.clone());
                }
            }
            let mut state = self.state.load(self.profile.id).await?;
            let cursor_saved = prepared.cursor_ok && stopped.is_none();
            if cursor_saved {
                state.cursor = prepared.next_cursor.clone();
                state.retry = retry;
            } else {
                state.retry.extend(retry);
                if prepared.plan.mode == ReadMode::Full {
                    state.cursor = None;
                }
            }
            if prepared.complete_full && stopped.is_none() {
                state.last_full_unix = Some(unix_now());
                state.scope_digest = Some(self.scope_digest());
            }
            self.state.save(self.profile.id, &state).await?;
            let outcome = match (&stopped, failed + skipped) {
                (Some(e), _) => RunOutcome::Stopped { error: e.to_string() },
                (None, 0) => RunOutcome::Succeeded,
                (None, _) => RunOutcome::PartiallyFailed { failed, skipped },
            };
            let report = RunReport {
                profile: self.profile.id,
                started_at: humantime::format_rfc3339_millis(prepared.started).to_string(),
                duration_ms: prepared.started.elapsed().map(|d| d.as_millis() as u64).unwrap_or(0),
                read_ms: prepared.read_ms,
                apply_ms,
                outcome,
                read_errors: prepared.read_errors,
                cursor_saved,
                plan: prepared.plan,
                outcomes,
            };
            info!(
                applied = report.applied(),
                failed, skipped, cursor_saved, "run finished"
            );
            self.observers.emit(&Event::RunFinished { report: &report });
            Ok(report)
        }
        .instrument(span)
        .await
    }

    /// Just-in-time sync of one object (at first login, seed 001): reads it
    /// and plans it alone, as a delta of one. Group memberships are left to
    /// the next scheduled run.
    pub async fn sync_one(&self, id: &ExternalId, options: &RunOptions) -> Result<RunReport> {
        let started = SystemTime::now();
        let read_start = Instant::now();
        let object = self.source.read_one(id).await?;
        let read_ms = ms(read_start);
        let kind = object
            .as_ref()
            .map(|o| o.kind)
            .unwrap_or(crate::model::ObjectKind::User);
        let mut lookups = vec![Lookup::External {
            kind,
            external: id.clone(),
        }];
        if let (Some(o), Some(c)) = (&object, &self.profile.rules.correlation)
            && let Some(value) = o.first_text(&c.attribute)
        {
            lookups.push(Lookup::Field {
                kind,
                field: c.field.clone(),
                value: value.to_owned(),
            });
        }
        let found = self.target.lookup(&lookups).await?;
        let (linked, candidates): (Vec<TargetAccount>, Vec<TargetAccount>) = found
            .into_iter()
            .partition(|a| a.link.as_ref().is_some_and(|l| l.profile == self.profile.id));
        let objects: Vec<SourceObject> = object.into_iter().collect();
        let deleted: Vec<ExternalId> = if objects.is_empty() {
            vec![id.clone()]
        } else {
            Vec::new()
        };
        let mut plan = plan::plan(PlanInput {
            profile: &self.profile,
            capabilities: self.target.capabilities(),
            mode: ReadMode::Delta,
            completeness: &Completeness::Complete,
            objects: &objects,
            deleted: &deleted,
            linked: &linked,
            candidates: &candidates,
            confirmed: options.confirm,
        });
        self.vetoes(&mut plan, &linked).await?;
        let prepared = Prepared {
            plan,
            read_errors: Vec::new(),
            started,
            read_ms,
            next_cursor: None,
            cursor_ok: false,
            complete_full: false,
            left_out: BTreeSet::new(),
        };
        if options.dry_run {
            return Ok(self.dry_run_report(prepared));
        }
        // `cursor_ok` is false: the saved cursor stays where it is.
        self.apply(prepared).await
    }
}

/// The object with only the attributes the profile reads: a full read of a
/// large directory holds every object at once, and most attributes of an
/// entry are never looked at.
fn keep_attributes(mut object: SourceObject, read: &BTreeSet<&str>) -> SourceObject {
    object.attributes.retain(|name, _| read.contains(name.as_str()));
    object
}
