//! `idsync worker`: one process running many profiles, each on its own
//! schedule, claiming due profiles from the state database with leases,
//! so that several workers on several machines share them through
//! PostgreSQL alone (or SQLite on one machine).
//!
//! The loop: claim due profiles (one statement each, `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL) while fewer than `--concurrency` runs go on,
//! skipping sources that already have `--per-source` runs here; run each
//! under its lease (renewed every third of it, the run stopped when it is
//! lost, every state write fenced by it); record the run and release the
//! lease with the profile's next run time. On SIGTERM or SIGINT: claim
//! nothing more, stop every run (a run still reading is dropped, having
//! written nothing; a run applying finishes the operation in hand and
//! saves), record, release, exit 0.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use idsync::sql::{Claimed, RunRecord, Scheduled, SqlStateStore, StoredProfile};
use idsync::{Event, Observer, ProfileId, RunOptions, RunReport, StopSignal};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;

use crate::config::{self, Config};
use crate::schedule::Schedule;
use crate::state::{RunLock, State, worker_name};
use crate::{Failure, exit_code};

/// How often an idle worker looks for due profiles at least (it also
/// wakes when the next profile is due and when a run ends).
const POLL: Duration = Duration::from_secs(1);
/// How often the profiles folder and table are read again.
const RESCAN: Duration = Duration::from_secs(30);
/// How often old history is purged.
const PURGE: Duration = Duration::from_secs(3600);

/// The worker's settings.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// A folder of profile files (`*.toml`).
    pub profiles: Option<PathBuf>,
    /// Runs at once.
    pub concurrency: usize,
    /// Runs at once of profiles naming the same source (host and port, or
    /// file).
    pub per_source: usize,
    /// How long a lease lasts unless renewed.
    pub lease: Duration,
    /// Keep runs and object history this many days (0: forever).
    pub history_days: u64,
}

/// Where a profile comes from.
#[derive(Clone, Debug)]
enum Origin {
    File(PathBuf),
    Stored(String),
}

/// A profile the worker can run.
#[derive(Clone, Debug)]
struct Entry {
    origin: Origin,
    schedule: Schedule,
}

impl Entry {
    /// The profile file as it is now (a file is read again at every run).
    fn load(&self, profile: ProfileId) -> Result<Config, String> {
        match &self.origin {
            Origin::File(path) => config::load(path),
            Origin::Stored(text) => config::parse(text, &format!("idsync_profiles row {profile}"), Path::new(".")),
        }
    }
}

/// The profiles known to this worker, from the folder and the table.
#[derive(Default)]
struct Catalog {
    entries: HashMap<ProfileId, Entry>,
    /// Files read, by path: when they were changed, and their profile.
    files: HashMap<PathBuf, (SystemTime, Option<ProfileId>)>,
    /// Rows read, by profile: when they were changed.
    rows: HashMap<String, i64>,
    rows_since: i64,
}

impl Catalog {
    /// Reads new and changed profile files, and the rows of the profiles
    /// table changed since the last call (`rows`); forgets the files that
    /// are gone. Returns the profiles to schedule.
    fn refresh(&mut self, folder: Option<&Path>, rows: Vec<StoredProfile>) -> Vec<Scheduled> {
        let mut found: Vec<(Origin, Config)> = Vec::new();
        if let Some(folder) = folder {
            match std::fs::read_dir(folder) {
                Ok(dir) => {
                    let mut paths: Vec<PathBuf> = dir
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                        .collect();
                    paths.sort();
                    let gone: Vec<PathBuf> = self.files.keys().filter(|p| !paths.contains(p)).cloned().collect();
                    for path in gone {
                        if let Some((_, Some(id))) = self.files.remove(&path) {
                            tracing::info!(profile = %id, file = %path.display(), "profile file removed: no longer run");
                            self.entries.remove(&id);
                        }
                    }
                    for path in paths {
                        let changed = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
                        if let (Some(t), Some((seen, _))) = (changed, self.files.get(&path))
                            && t == *seen
                        {
                            continue;
                        }
                        let changed = changed.unwrap_or(SystemTime::UNIX_EPOCH);
                        match config::load(&path) {
                            Ok(c) => {
                                self.files.insert(path.clone(), (changed, Some(c.profile.id)));
                                found.push((Origin::File(path), c));
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "a profile file cannot be read; it is not run until fixed");
                                let id = self.files.get(&path).and_then(|(_, id)| *id);
                                self.files.insert(path, (changed, id));
                            }
                        }
                    }
                }
                Err(e) => tracing::error!(folder = %folder.display(), error = %e, "the profiles folder cannot be read"),
            }
        }
        for row in rows {
            self.rows_since = self.rows_since.max(row.updated_unix_ms);
            if self.rows.get(&row.profile) == Some(&row.updated_unix_ms) {
                continue;
            }
            self.rows.insert(row.profile.clone(), row.updated_unix_ms);
            let name = format!("idsync_profiles row {}", row.profile);
            match config::parse(&row.config, &name, Path::new(".")) {
                Ok(c) if c.profile.id.to_string() == row.profile => found.push((Origin::Stored(row.config), c)),
                Ok(c) => tracing::error!(
                    row = %row.profile,
                    profile = %c.profile.id,
                    "a stored profile's row does not name its profile's id; it is not run"
                ),
                Err(e) => tracing::error!(error = %e, "a stored profile cannot be read; it is not run until fixed"),
            }
        }
        let now = jiff::Timestamp::now();
        let mut scheduled = Vec::new();
        for (origin, config) in found {
            let id = config.profile.id;
            let schedule = match config.schedule.schedule() {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(profile = %id, error = %e, "bad schedule");
                    continue;
                }
            };
            if let Some(old) = self.entries.get(&id)
                && !same_origin(&old.origin, &origin)
            {
                tracing::warn!(profile = %id, "two profile files have the same profile id; the first one is run");
                continue;
            }
            scheduled.push(Scheduled {
                profile: id,
                name: config.profile.name.clone(),
                source_key: config.source_key(),
                first_run_in: schedule.first_in(now),
            });
            self.entries.insert(id, Entry { origin, schedule });
        }
        scheduled
    }
}

fn same_origin(a: &Origin, b: &Origin) -> bool {
    match (a, b) {
        (Origin::File(a), Origin::File(b)) => a == b,
        (Origin::Stored(_), Origin::Stored(_)) => true,
        _ => false,
    }
}

/// What the runs share.
struct Ctx {
    state: State,
    store: Arc<SqlStateStore>,
    lease: Duration,
    catalog: Mutex<Catalog>,
    /// The stop signal of every run going on.
    stops: Mutex<HashMap<ProfileId, StopSignal>>,
    /// Raised on SIGTERM / SIGINT.
    terminating: AtomicBool,
}

/// Sets its flag once the plan is made: from then on a stopped run
/// finishes the operation in hand instead of being dropped.
#[derive(Default)]
struct Applying(AtomicBool);

impl Observer for Applying {
    fn on_event(&self, event: &Event<'_>) {
        if let Event::Planned { .. } = event {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

/// How a run ended.
enum End {
    Report(Box<RunReport>),
    Failed(Failure),
    /// Stopped before it applied anything (its read was dropped).
    Dropped(String),
}

/// Runs the worker until SIGTERM or SIGINT; exit code 0 then.
pub(crate) async fn run(options: Options, state_url: &str) -> Result<u8, Failure> {
    let url = config::state_url(state_url);
    let store = Arc::new(
        SqlStateStore::connect(url.expose())
            .await
            .map_err(Failure::unavailable)?,
    );
    let mut terms = signal(SignalKind::terminate()).map_err(|e| Failure::config(format!("SIGTERM: {e}")))?;
    let mut ints = signal(SignalKind::interrupt()).map_err(|e| Failure::config(format!("SIGINT: {e}")))?;
    let ctx = Arc::new(Ctx {
        state: State::Sql {
            store: store.clone(),
            lease: options.lease,
        },
        store: store.clone(),
        lease: options.lease,
        catalog: Mutex::new(Catalog::default()),
        stops: Mutex::new(HashMap::new()),
        terminating: AtomicBool::new(false),
    });
    let worker = worker_name();
    refresh(&ctx, &options).await;
    tracing::info!(%worker, profiles = ctx.catalog.lock().map(|c| c.entries.len()).unwrap_or(0), concurrency = options.concurrency, "worker started");
    let mut running: JoinSet<()> = JoinSet::new();
    let mut sources: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut next_refresh = Instant::now() + RESCAN;
    let mut next_purge = Instant::now();
    loop {
        let terminating = ctx.terminating.load(Ordering::SeqCst);
        let busy = busy_sources(&sources, options.per_source);
        while !terminating && running.len() < options.concurrency {
            let busy = busy_sources(&sources, options.per_source);
            let asked = Instant::now();
            match store.claim(&worker, options.lease, &busy).await {
                Ok(Some(claimed)) => {
                    let claim_ms = asked.elapsed().as_secs_f64() * 1000.0;
                    let source = claimed.source_key.clone();
                    let handle = running.spawn(spawn_run(ctx.clone(), claimed, claim_ms, asked));
                    sources.insert(handle.id(), source);
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim profiles; trying again");
                    break;
                }
            }
        }
        if terminating && running.is_empty() {
            break;
        }
        let wait = if terminating || running.len() >= options.concurrency {
            POLL
        } else {
            match store.next_due_in(&busy).await {
                Ok(Some(d)) => d.min(POLL),
                Ok(None) => POLL,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the schedule; trying again");
                    POLL
                }
            }
        };
        tokio::select! {
            Some(done) = running.join_next_with_id() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => {
                        tracing::error!(error = %e, "a run panicked");
                        e.id()
                    }
                };
                sources.remove(&id);
            }
            _ = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
            _ = terms.recv() => shut_down(&ctx, "SIGTERM"),
            _ = ints.recv() => shut_down(&ctx, "SIGINT"),
        }
        if ctx.terminating.load(Ordering::SeqCst) {
            continue;
        }
        if Instant::now() >= next_refresh {
            refresh(&ctx, &options).await;
            next_refresh = Instant::now() + RESCAN;
        }
        if options.history_days > 0 && Instant::now() >= next_purge {
            match store.purge(Duration::from_secs(options.history_days * 86_400)).await {
                Ok(n) => tracing::info!(rows = n, days = options.history_days, "old history purged"),
                Err(e) => tracing::warn!(error = %e, "old history could not be purged"),
            }
            next_purge = Instant::now() + PURGE;
        }
    }
    tracing::info!(%worker, "worker stopped");
    store.close().await;
    Ok(0)
}

/// The sources with `cap` runs here already.
fn busy_sources(sources: &HashMap<tokio::task::Id, String>, cap: usize) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for s in sources.values() {
        *counts.entry(s).or_default() += 1;
    }
    let mut busy: Vec<String> = counts
        .into_iter()
        .filter(|(_, n)| *n >= cap)
        .map(|(s, _)| s.to_owned())
        .collect();
    busy.sort();
    busy
}

async fn refresh(ctx: &Ctx, options: &Options) {
    let since = ctx.catalog.lock().map(|c| c.rows_since).unwrap_or(0);
    let rows = ctx.store.stored_profiles(since).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "the profiles table cannot be read");
        Vec::new()
    });
    let scheduled = match ctx.catalog.lock() {
        Ok(mut c) => c.refresh(options.profiles.as_deref(), rows),
        Err(_) => return,
    };
    if !scheduled.is_empty() {
        match ctx.store.schedule(&scheduled).await {
            Ok(()) => tracing::info!(profiles = scheduled.len(), "profiles scheduled"),
            Err(e) => tracing::error!(error = %e, "profiles could not be scheduled"),
        }
    }
}

/// Stops every run: SIGTERM or SIGINT.
fn shut_down(ctx: &Ctx, signal: &str) {
    tracing::info!("{signal}: finishing the runs in hand, then exiting");
    ctx.terminating.store(true, Ordering::SeqCst);
    if let Ok(stops) = ctx.stops.lock() {
        for stop in stops.values() {
            stop.stop(format!("the worker is shutting down ({signal})"));
        }
    }
}

/// Runs [`run_claimed`] as a task of its own, so that a panic in one run
/// is logged and the worker goes on.
async fn spawn_run(ctx: Arc<Ctx>, claimed: Claimed, claim_ms: f64, asked: Instant) {
    let profile = claimed.lease.profile;
    if let Err(e) = tokio::spawn(run_claimed(ctx, claimed, claim_ms, asked)).await {
        tracing::error!(%profile, error = %e, "a run panicked");
    }
}

/// Runs one claimed profile under its lease, records the run and releases
/// the lease with the profile's next run time.
async fn run_claimed(ctx: Arc<Ctx>, claimed: Claimed, claim_ms: f64, asked: Instant) {
    let profile = claimed.lease.profile;
    let generation = claimed.lease.generation;
    let lock = RunLock::leased(ctx.store.clone(), claimed.lease.clone(), ctx.lease, asked);
    let stop = lock.stop();
    if let Ok(mut stops) = ctx.stops.lock() {
        stops.insert(profile, stop.clone());
    }
    if ctx.terminating.load(Ordering::SeqCst) {
        stop.stop("the worker is shutting down");
    }
    let entry = ctx.catalog.lock().ok().and_then(|c| c.entries.get(&profile).cloned());
    let Some(entry) = entry else {
        tracing::warn!(%profile, "claimed a profile this worker does not know; it waits for a worker that has it");
        lock.finish(None, claimed.failures).await;
        forget(&ctx, profile);
        return;
    };
    let started = Instant::now();
    let config = entry.load(profile);
    let end = match &config {
        Err(message) => End::Failed(Failure::config(message.clone())),
        Ok(config) => run_engine(config, &ctx.state, &lock).await,
    };
    let run_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (record, code) = match &end {
        End::Report(report) => {
            let code = exit_code(report);
            (Some(RunRecord::report(report).exit_code(code)), code)
        }
        End::Failed(f) => (Some(RunRecord::failed(profile, &f.message).exit_code(f.code)), f.code),
        // It wrote nothing: nothing to record.
        End::Dropped(why) => {
            tracing::info!(%profile, "{why}");
            (None, 5)
        }
    };
    let recording = Instant::now();
    if let Some(record) = &record
        && let Err(e) = lock.record_run(&ctx.state, record).await
    {
        tracing::warn!(%profile, error = %e, "the run could not be recorded in the history");
    }
    let record_ms = recording.elapsed().as_secs_f64() * 1000.0;
    let shutting_down = ctx.terminating.load(Ordering::SeqCst) && stop.is_stopped();
    if let Ok(config) = &config
        && !shutting_down
    {
        notify(config, &end, code).await;
    }
    let failures = match code {
        0 | 6 | 7 => 0,
        _ if shutting_down => claimed.failures,
        _ => claimed.failures.saturating_add(1),
    };
    let next = if shutting_down {
        Duration::ZERO
    } else {
        entry.schedule.next_in(jiff::Timestamp::now(), failures)
    };
    let finishing = Instant::now();
    lock.finish(Some(next), failures).await;
    let finish_ms = finishing.elapsed().as_secs_f64() * 1000.0;
    forget(&ctx, profile);
    tracing::info!(
        %profile,
        generation,
        exit_code = code,
        failures,
        next_run_s = next.as_secs(),
        claim_ms,
        run_ms,
        record_ms,
        finish_ms,
        "run done"
    );
}

fn forget(ctx: &Ctx, profile: ProfileId) {
    if let Ok(mut stops) = ctx.stops.lock() {
        stops.remove(&profile);
    }
}

/// Connects and runs; a run stopped before its plan was made is dropped
/// there (it has written nothing), one stopped while applying finishes
/// the operation in hand and saves.
async fn run_engine(config: &Config, state: &State, lock: &RunLock) -> End {
    let stop = lock.stop();
    let applying = Arc::new(Applying::default());
    let run = async {
        let engine = crate::build_engine(config, lock.store(state)).await?;
        engine
            .observe(applying.clone())
            .with_stop(stop.clone())
            .run(&RunOptions::default())
            .await
            .map_err(Failure::unavailable)
    };
    tokio::pin!(run);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            result = &mut run => {
                return match result {
                    Ok(report) => End::Report(Box::new(report)),
                    Err(f) => End::Failed(crate::stopped(f, &stop)),
                };
            }
            _ = tick.tick() => {
                if let Some(reason) = stop.reason()
                    && !applying.0.load(Ordering::SeqCst)
                {
                    return End::Dropped(format!("run stopped before it applied anything: {reason}"));
                }
            }
        }
    }
}

/// The profile's `[notify]`, for a run that failed, stopped, read
/// partially or could not start (exit codes 2, 3, 4, 5, 7).
async fn notify(config: &Config, end: &End, code: u8) {
    match end {
        End::Report(report) => {
            if matches!(code, 4 | 5 | 7) {
                let what = match crate::partial_read(report) {
                    Some(reason) if code == 7 => format!("the read was partial, deprovisions were spared: {reason}"),
                    _ => format!("{:?}", report.outcome),
                };
                crate::notify::failure(config, &what, code, Some(report)).await;
            }
        }
        End::Failed(f) => crate::notice(config, f).await,
        End::Dropped(why) => crate::notify::failure(config, why, code, None).await,
    }
}
