//! The engine: one run is load state → choose full or delta → read source
//! and target → plan → safety checks → apply (or stop on a dry run) → save
//! the cursor only when nothing is lost → report.

mod read;
mod view;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::{Instrument, info, info_span};

use crate::error::Result;
use crate::executor::{self, RetryPolicy, Settings};
use crate::model::{ExternalId, SourceObject, TargetAccount};
use crate::observe::{Event, Observer, Observers};
use crate::plan::{self, Action, OpId, Operation, Plan, PlanInput, ReadMode};
use crate::profile::Profile;
use crate::report::{OpOutcome, OpStatus, RunOutcome, RunReport, Tally};
use crate::source::{Completeness, Cursor, Source};
use crate::state::{ProfileState, StateStore};
use crate::stop::StopSignal;
use crate::target::{Target, Veto};

use read::{Seen, SourceRead};
use view::TargetView;

/// How an engine works, whatever the run.
#[derive(Clone, Copy, Debug)]
pub struct EngineOptions {
    /// Batches (or single operations) applied at once within a phase.
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
    /// What the state keeps of the read, once applied.
    seen: Option<Seen>,
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
            seen: None,
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
    stop: StopSignal,
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
            stop: StopSignal::new(),
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

    /// Stops applying when `stop` is raised (a lost lease, a SIGTERM): see
    /// [`StopSignal`].
    pub fn with_stop(mut self, stop: StopSignal) -> Self {
        self.stop = stop;
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
                match read::delta(self.source.as_ref(), &self.profile, cursor, &state).await? {
                    Some(read) => read,
                    None => read::full(self.source.as_ref(), &self.profile).await?,
                }
            }
            None => {
                self.observers.emit(&Event::RunStarted { mode: ReadMode::Full });
                read::full(self.source.as_ref(), &self.profile).await?
            }
        };
        let read_ms = ms(read_start);
        self.observers.emit(&Event::SourceRead {
            objects: read.objects.len(),
        });
        let view = self.target_view(&mut read, &state).await?;
        let mut plan = plan::plan(PlanInput {
            profile: &self.profile,
            capabilities: self.target.capabilities(),
            mode: read.mode,
            completeness: &read.completeness,
            objects: &read.objects,
            deleted: &read.deleted,
            linked: &view.linked,
            linked_total: view.linked_total,
            candidates: &view.candidates,
            assigned: None,
            unread_groups: &view.unread,
            gone: &state.gone,
            confirmed: options.confirm,
        });
        ask_vetoes(self.target.as_ref(), &mut plan, &view.linked).await?;
        info!(operations = plan.operations.len(), findings = plan.findings.len(), mode = ?plan.mode, "planned");
        self.observers.emit(&Event::Planned { plan: &plan });
        let (complete_full, cursor_ok, next_cursor) = (read.complete_full(), read.cursor_ok, read.cursor.take());
        let read_errors = std::mem::take(&mut read.errors);
        Ok(Prepared {
            plan,
            complete_full,
            seen: Some(read.into_seen(&self.profile, &view.linked)),
            read_errors,
            started,
            read_ms,
            next_cursor,
            cursor_ok,
            left_out: BTreeSet::new(),
        })
    }

    /// What the planner must see of the target. A full read and a
    /// present-mode delta list every linked account (the present set turns
    /// into deletions here); any other delta looks up only what it names,
    /// after reading again the groups that named what it deleted.
    async fn target_view<'s>(&self, read: &mut SourceRead, state: &'s ProfileState) -> Result<TargetView<'s>> {
        let (target, profile, batch) = (self.target.as_ref(), &self.profile, self.options.lookup_batch);
        let present = read.present.take();
        if read.mode == ReadMode::Delta
            && present.is_none()
            && let Some(total) = state.linked
        {
            read::stale_groups(self.source.as_ref(), profile, read, state).await?;
            let named = view::Named {
                objects: &read.objects,
                deleted: &read.deleted,
                members: view::member_changes(&read.objects, &state.members),
                unread: view::unread_groups(&state.members, &read.objects, &read.deleted),
                groups: &state.members,
            };
            let view = view::named(target, profile, named, total, batch).await?;
            if !view::unknown_members(&view, &read.objects, &state.members) {
                return Ok(view);
            }
            info!("a group new to the state has members in the target: listing the linked accounts");
        }
        let linked = view::linked(target, profile).await?;
        if let Some(present) = present {
            let changed: HashSet<&ExternalId> = read.objects.iter().map(|o| &o.id).collect();
            read.deleted.extend(
                linked
                    .iter()
                    .filter_map(|a| a.link.as_ref().map(|l| &l.external))
                    .filter(|e| !present.contains(*e) && !changed.contains(e))
                    .cloned(),
            );
        }
        if read.mode == ReadMode::Full {
            return view::listed(target, profile, &read.objects, linked, batch).await;
        }
        read::stale_groups(self.source.as_ref(), profile, read, state).await?;
        let view = view::listed(target, profile, &read.objects, linked, batch).await?;
        Ok(TargetView {
            unread: view::unread_groups(&state.members, &read.objects, &read.deleted),
            ..view
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
            tally: Tally::default(),
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
            let mut state = self.state.load(self.profile.id).await?;
            let apply_start = Instant::now();
            let mut tally = Tally::default();
            let mut outcomes: Vec<OpOutcome> = Vec::new();
            let mut retry: BTreeSet<ExternalId> = prepared.left_out.clone();
            let mut linked = state.linked.unwrap_or(prepared.plan.counts.linked) as i64;
            let settings = Settings {
                concurrency: self.options.concurrency,
                retry: self.options.retry,
                observers: &self.observers,
                stop: &self.stop,
            };
            let stopped = executor::execute(&prepared.plan, self.target.as_ref(), &settings, &mut |op, o| {
                match &o.status {
                    OpStatus::Applied => {
                        tally.applied += 1;
                        linked += linked_change(op, &self.profile);
                    }
                    OpStatus::Failed { .. } => tally.failed += 1,
                    OpStatus::Skipped { .. } => tally.skipped += 1,
                }
                if o.status != OpStatus::Applied {
                    retry.insert(o.link.external.clone());
                    if let Action::AddMember { member, .. } | Action::RemoveMember { member, .. } = &op.action {
                        retry.insert(member.external.clone());
                    }
                }
                if o.status != OpStatus::Applied || o.note.is_some() || o.attempts > 1 {
                    outcomes.push(o);
                }
            })
            .await;
            let stopped = stopped.map(|e| e.to_string()).or_else(|| self.stop.reason());
            outcomes.sort_by_key(|o| o.op);
            let apply_ms = ms(apply_start);
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
            if let Some(seen) = prepared.seen {
                seen.remember(&mut state);
                state.linked = Some(linked.max(0) as usize);
            }
            self.state.save(self.profile.id, &state).await?;
            let outcome = match (stopped, tally.failed + tally.skipped) {
                (Some(error), _) => RunOutcome::Stopped { error },
                (None, 0) => RunOutcome::Succeeded,
                (None, _) => RunOutcome::PartiallyFailed {
                    failed: tally.failed,
                    skipped: tally.skipped,
                },
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
                tally,
                outcomes,
            };
            info!(
                applied = tally.applied,
                failed = tally.failed,
                skipped = tally.skipped,
                cursor_saved,
                "run finished"
            );
            self.observers.emit(&Event::RunFinished { report: &report });
            Ok(report)
        }
        .instrument(span)
        .await
    }

    /// Just-in-time sync of the user who logs in as `name` (TrackTik's
    /// "provision on demand", Process Director's login-time sync): the
    /// user is looked up by the profile's
    /// [`login_attributes`](crate::Profile::login_attributes), in order,
    /// then synced as [`Engine::sync_one`] does. No user with that name in
    /// scope is a [`NotFound`](crate::ErrorKind::NotFound) error; several
    /// are an [`InvalidData`](crate::ErrorKind::InvalidData) error naming
    /// them: a login never picks one of two people.
    pub async fn sync_login(&self, name: &str, options: &RunOptions) -> Result<RunReport> {
        let scope = &self.profile.scope;
        if self.profile.login_attributes.is_empty() {
            return Err(crate::Error::new(
                crate::ErrorKind::Config,
                "the profile has no login_attributes: a sync at login takes an external id",
            )
            .with_field("login_attributes"));
        }
        for attribute in &self.profile.login_attributes {
            let found = self.source.find_users(scope, attribute, name).await?;
            match &found[..] {
                [] => continue,
                [one] => return self.sync_one(&one.id, options).await,
                several => {
                    let ids = several.iter().map(|o| o.id.as_str()).collect::<Vec<_>>().join(", ");
                    return Err(crate::Error::new(
                        crate::ErrorKind::InvalidData,
                        format!(
                            "{} users have {attribute} = {name:?} ({ids}): none is synced",
                            several.len()
                        ),
                    )
                    .with_object(name)
                    .with_field(attribute.as_str()));
                }
            }
        }
        Err(crate::Error::new(
            crate::ErrorKind::NotFound,
            format!(
                "no user in scope has {} = {name:?}",
                self.profile.login_attributes.join(" or ")
            ),
        )
        .with_object(name))
    }

    /// Just-in-time sync of one object (at first login, seed 001): reads it
    /// and plans it alone, as a delta of one, with its memberships. The
    /// groups the last run saw are read again, as they are now: the object
    /// joins those that list it and leaves those that no longer do. It
    /// admits exactly what a full run admits: the source applies its
    /// filter, and assigned groups are resolved over the groups read. (A
    /// group created since the last run is seen by the next scheduled run.)
    pub async fn sync_one(&self, id: &ExternalId, options: &RunOptions) -> Result<RunReport> {
        let started = SystemTime::now();
        let read_start = Instant::now();
        let state = self.state.load(self.profile.id).await?;
        let scope = &self.profile.scope;
        let object = self.source.read_one(scope, id).await?;
        let attributes = self.profile.attributes_read();
        let mut objects: Vec<SourceObject> = object
            .into_iter()
            .map(|o| read::keep_attributes(o, &attributes))
            .collect();
        // The groups the last run saw, as they are now: they tell the
        // object's memberships, and assigned groups decide its scope.
        if !objects.is_empty() && (self.target.capabilities().groups || scope.needs_full_view()) {
            for group in state.members.keys().filter(|g| *g != id) {
                if let Some(g) = self.source.read_one(scope, group).await? {
                    objects.push(read::keep_attributes(g, &attributes));
                }
            }
        }
        let assigned = scope.assigned(&objects);
        // Of the groups, only those that hold the object, or held it at the
        // last run, matter to it.
        objects.retain(|o| {
            &o.id == id || o.members.contains(id) || state.members.get(&o.id).is_some_and(|m| m.contains(id))
        });
        let read_ms = ms(read_start);
        let deleted: Vec<ExternalId> = if objects.iter().any(|o| &o.id == id) {
            Vec::new()
        } else {
            vec![id.clone()]
        };
        let named = view::Named {
            objects: &objects,
            deleted: &deleted,
            members: BTreeSet::new(),
            unread: view::unread_groups(&state.members, &objects, &deleted),
            groups: &state.members,
        };
        let total = state.linked.unwrap_or_default();
        let view = view::named(
            self.target.as_ref(),
            &self.profile,
            named,
            total,
            self.options.lookup_batch,
        )
        .await?;
        let mut plan = plan::plan(PlanInput {
            profile: &self.profile,
            capabilities: self.target.capabilities(),
            mode: ReadMode::Delta,
            completeness: &Completeness::Complete,
            objects: &objects,
            deleted: &deleted,
            linked: &view.linked,
            linked_total: view.linked_total,
            candidates: &view.candidates,
            assigned: assigned.as_ref(),
            unread_groups: &view.unread,
            gone: &state.gone,
            confirmed: options.confirm,
        });
        ask_vetoes(self.target.as_ref(), &mut plan, &view.linked).await?;
        let prepared = Prepared {
            plan,
            read_errors: Vec::new(),
            started,
            read_ms,
            next_cursor: None,
            cursor_ok: false,
            complete_full: false,
            left_out: BTreeSet::new(),
            seen: None,
        };
        if options.dry_run {
            return Ok(self.dry_run_report(prepared));
        }
        // `cursor_ok` is false: the saved cursor stays where it is.
        self.apply(prepared).await
    }
}

/// Asks `target`'s veto ([`Target::can_deprovision`]) for each deprovision
/// of `plan` it may refuse, among `accounts`, and drops the refused ones
/// with a [`Vetoed`](crate::plan::FindingKind::Vetoed) finding
/// ([`Plan::veto`]). Nothing is asked of a target without
/// [`veto`](crate::TargetCapabilities::veto).
pub async fn ask_vetoes(target: &dyn Target, plan: &mut Plan, accounts: &[TargetAccount]) -> Result<()> {
    if !target.capabilities().veto {
        return Ok(());
    }
    let asks: Vec<(OpId, &TargetAccount)> = plan
        .operations
        .iter()
        .filter(|op| op.action.is_deprovision() && op.held.is_none())
        .filter_map(|op| Some((op.id, accounts.iter().find(|a| Some(&a.id) == op.target.as_ref())?)))
        .collect();
    for (id, account) in asks {
        if let Veto::Deny(reason) = target.can_deprovision(account).await? {
            plan.veto(id, &reason);
        }
    }
    Ok(())
}

/// How an applied operation changes the number of accounts linked to the
/// profile.
fn linked_change(op: &Operation, profile: &Profile) -> i64 {
    match &op.action {
        Action::Create { .. } => 1,
        Action::Link { previous } if previous.as_ref().is_none_or(|p| p.profile != profile.id) => 1,
        Action::Delete => -1,
        _ => 0,
    }
}
