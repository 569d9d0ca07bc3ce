//! Where a profile's state, history and run lock live: JSON files in a
//! folder, or tables in SQLite or PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idsync::plan::{Action, Plan};
use idsync::sql::{FencedStateStore, Lease, RunRecord, SqlStateStore};
use idsync::{Error, ErrorKind, ExternalId, JsonFileStateStore, ProfileId, RunReport, StateStore, StopSignal};

use crate::Failure;
use crate::config::{Config, StateConfig};
use crate::duration::parse_duration;

/// A profile's state, opened.
pub(crate) enum State {
    /// JSON files: the state, `<profile>.history.jsonl` and `<profile>.lock`.
    Json {
        /// The folder.
        dir: PathBuf,
        /// The store.
        store: Arc<JsonFileStateStore>,
    },
    /// Tables in a database.
    Sql {
        /// The store.
        store: Arc<SqlStateStore>,
        /// How long a lease lasts without renewal; it is renewed every
        /// third of it while the run goes on.
        lease: Duration,
    },
}

/// One run at a time per profile: a file lock, or a database lease kept
/// alive while held. The run saves its state and records its report
/// through the lock ([`RunLock::store`], [`RunLock::record_run`]) and stops
/// applying when [`RunLock::stop`] is raised.
pub(crate) struct RunLock {
    held: Held,
    /// Raised by the renewer when the lease is lost.
    stop: StopSignal,
}

enum Held {
    /// An exclusive lock on a file (released when the file is closed).
    File(#[expect(dead_code, reason = "held, never read: closing it releases the lock")] std::fs::File),
    /// A lease, renewed in the background.
    Lease {
        /// The store that granted it.
        store: Arc<SqlStateStore>,
        /// The store fenced by the lease: its writes are refused once
        /// another worker took the lease over.
        fenced: Arc<FencedStateStore>,
        /// The renewing task.
        renewer: tokio::task::JoinHandle<()>,
    },
}

impl State {
    /// Opens the state the profile file names.
    pub(crate) async fn open(config: &Config) -> Result<State, Failure> {
        Ok(match &config.state {
            StateConfig::Json { path } => State::Json {
                dir: path.clone(),
                store: Arc::new(JsonFileStateStore::new(path).map_err(Failure::unavailable)?),
            },
            StateConfig::Sql { url, lease } => State::Sql {
                lease: parse_duration("state.lease", lease).map_err(Failure::config)?,
                store: Arc::new(
                    SqlStateStore::connect(url.expose())
                        .await
                        .map_err(Failure::unavailable)?,
                ),
            },
        })
    }

    /// The store the engine uses.
    pub(crate) fn store(&self) -> Arc<dyn StateStore> {
        match self {
            State::Json { store, .. } => store.clone(),
            State::Sql { store, .. } => store.clone(),
        }
    }

    /// Where it is, for people.
    pub(crate) fn describe(&self) -> String {
        match self {
            State::Json { dir, .. } => format!("in {}", dir.display()),
            State::Sql { store, .. } => format!("in a {:?} database", store.dialect()),
        }
    }

    /// Appends a report to the history.
    pub(crate) async fn record(&self, report: &RunReport) -> Result<(), String> {
        match self {
            State::Json { dir, .. } => record_json(dir, report),
            State::Sql { store, .. } => store.record(report).await.map_err(|e| e.to_string()),
        }
    }

    /// The last `limit` reports, oldest first.
    pub(crate) async fn history(&self, profile: ProfileId, limit: usize) -> Result<Vec<RunReport>, String> {
        match self {
            State::Json { dir, .. } => {
                let mut all = read_json(dir, profile)?;
                let skip = all.len().saturating_sub(limit);
                Ok(all.split_off(skip))
            }
            State::Sql { store, .. } => store.history(profile, limit).await.map_err(|e| e.to_string()),
        }
    }

    /// The names of the objects a plan acts on, for its table: the name
    /// fields of its creates and updates (userName, mail, a group's name:
    /// see [`idsync::sql::NAME_FIELDS`]), and for the others the latest
    /// name the SQL history knows (none with JSON state).
    pub(crate) async fn names(&self, plan: &Plan) -> BTreeMap<ExternalId, String> {
        let mut names: BTreeMap<ExternalId, String> = BTreeMap::new();
        for op in &plan.operations {
            let fields = op.action.written_fields();
            // The first name field in NAME_FIELDS' order wins.
            let best = fields
                .into_iter()
                .filter_map(|(f, v)| {
                    Some((
                        idsync::sql::NAME_FIELDS
                            .iter()
                            .position(|n| n.eq_ignore_ascii_case(f))?,
                        v,
                    ))
                })
                .min_by_key(|(rank, _)| *rank);
            if let Some((_, v)) = best {
                names.insert(op.link.external.clone(), v.clone());
            }
        }
        if let State::Sql { store, .. } = self {
            let mut missing = BTreeSet::new();
            for op in &plan.operations {
                missing.insert(op.link.external.clone());
                if let Action::AddMember { member, .. } | Action::RemoveMember { member, .. } = &op.action {
                    missing.insert(member.external.clone());
                }
            }
            missing.retain(|e| !names.contains_key(e));
            if !missing.is_empty() {
                match store.names_of(plan.profile, &missing).await {
                    Ok(found) => names.extend(found),
                    Err(e) => tracing::warn!(error = %e, "names could not be read from the history"),
                }
            }
        }
        names
    }

    /// Takes the profile's run lock; exit code 3 when another run holds it
    /// (without a notice) or it cannot be taken.
    pub(crate) async fn lock(&self, profile: ProfileId) -> Result<RunLock, Failure> {
        let unavailable = |message: String| Failure::unavailable(Error::new(ErrorKind::Unavailable, message));
        match self {
            State::Json { dir, .. } => {
                std::fs::create_dir_all(dir).map_err(|e| unavailable(format!("{}: {e}", dir.display())))?;
                let path = dir.join(format!("{profile}.lock"));
                let file = std::fs::File::create(&path).map_err(|e| unavailable(format!("{}: {e}", path.display())))?;
                match file.try_lock() {
                    Ok(()) => Ok(RunLock {
                        held: Held::File(file),
                        stop: StopSignal::new(),
                    }),
                    Err(_) => Err(Failure::busy(format!(
                        "profile {profile} is already running (lock {})",
                        path.display()
                    ))),
                }
            }
            State::Sql { store, lease: ttl } => {
                let asked = Instant::now();
                let lease = store
                    .try_lease(profile, &worker_name(), *ttl)
                    .await
                    .map_err(Failure::unavailable)?
                    .ok_or_else(|| {
                        Failure::busy(format!(
                            "profile {profile} is already running (another worker holds its lease)"
                        ))
                    })?;
                Ok(RunLock::leased(store.clone(), lease, *ttl, asked))
            }
        }
    }
}

impl RunLock {
    /// The lock of a lease taken at `asked` (by [`State::lock`], or by a
    /// worker's claim), renewed in the background every third of `ttl`.
    pub(crate) fn leased(store: Arc<SqlStateStore>, lease: Lease, ttl: Duration, asked: Instant) -> RunLock {
        let stop = StopSignal::new();
        let renewer = tokio::spawn(renew(store.clone(), lease.clone(), ttl, asked, stop.clone()));
        RunLock {
            held: Held::Lease {
                fenced: Arc::new(store.fenced(&lease)),
                store,
                renewer,
            },
            stop,
        }
    }

    /// The store the run loads and saves its state through: for a lease,
    /// fenced by it.
    pub(crate) fn store(&self, state: &State) -> Arc<dyn StateStore> {
        match &self.held {
            Held::File(_) => state.store(),
            Held::Lease { fenced, .. } => fenced.clone(),
        }
    }

    /// Raised when the lease is lost: the engine stops applying.
    pub(crate) fn stop(&self) -> StopSignal {
        self.stop.clone()
    }

    /// Records a run, with or without a report, and its exit code: for a
    /// lease, only while it holds (the JSON history keeps reports only).
    pub(crate) async fn record_run(&self, state: &State, run: &RunRecord<'_>) -> Result<(), String> {
        match &self.held {
            Held::File(_) => match run.report {
                Some(report) => state.record(report).await,
                None => Ok(()),
            },
            Held::Lease { fenced, .. } => fenced.record_run(run).await.map(drop).map_err(|e| e.to_string()),
        }
    }

    /// Ends a worker's run: gives the lease up and sets when the profile
    /// runs next (`None`: parked until a worker schedules it again) and
    /// its failures in a row.
    pub(crate) async fn finish(self, next_run_in: Option<Duration>, failures: u32) {
        if let Held::Lease { store, fenced, renewer } = self.held {
            renewer.abort();
            match store.finish(fenced.lease(), next_run_in, failures).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(profile = %fenced.lease().profile, "the lease was lost before the run ended")
                }
                Err(e) => tracing::warn!(error = %e, "the lease could not be released; it expires by itself"),
            }
        }
    }

    /// Gives the lock up at once (a lease would otherwise expire).
    pub(crate) async fn release(self) {
        if let Held::Lease { store, fenced, renewer } = self.held {
            renewer.abort();
            if let Err(e) = store.release(fenced.lease()).await {
                tracing::warn!(error = %e, "the lease could not be released; it expires by itself");
            }
        }
    }
}

/// Keeps a lease alive, renewing it every third of `ttl`. When it is lost
/// it raises `stop` and ends: when a renewal finds it taken over (or
/// expired), or when it could not be renewed before it expired by this
/// process's clock (the process was paused, the database did not answer).
/// `asked` is when the lease was asked for: it lasts `ttl` from then at
/// least, by the database's clock.
async fn renew(store: Arc<SqlStateStore>, mut lease: Lease, ttl: Duration, asked: Instant, stop: StopSignal) {
    let profile = lease.profile;
    let generation = lease.generation;
    let expired = format!(
        "the lease of profile {profile} (generation {generation}) was lost: it expired before it could be renewed \
         (the process was paused or the database did not answer)"
    );
    let mut valid_until = asked + ttl;
    // The flag rises by itself at the deadline: a process frozen past it
    // stops before its first batch, whatever task runs first on waking.
    stop.stop_at(valid_until, expired.clone());
    let why = loop {
        tokio::time::sleep(ttl / 3).await;
        let asked = Instant::now();
        let Some(left) = valid_until.checked_duration_since(asked).filter(|d| !d.is_zero()) else {
            break "it expired before it could be renewed (the process was paused or the database did not answer)";
        };
        match tokio::time::timeout(left, store.renew(&lease, ttl)).await {
            Ok(Ok(Some(l))) => {
                lease = l;
                valid_until = asked + ttl;
                stop.stop_at(valid_until, expired.clone());
            }
            Ok(Ok(None)) => break "another worker took it over, or it expired",
            Ok(Err(e)) => tracing::warn!(error = %e, "the lease could not be renewed; trying again"),
            Err(_) => break "the database did not answer before it expired",
        }
    };
    let reason = format!("the lease of profile {profile} (generation {generation}) was lost: {why}");
    tracing::error!(%profile, generation, "{reason}; stopping the run");
    stop.stop(reason);
}

/// This process, as named in leases: host and process id.
pub(crate) fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".into());
    format!("{host}:{}", std::process::id())
}

fn history_path(dir: &Path, profile: ProfileId) -> PathBuf {
    dir.join(format!("{profile}.history.jsonl"))
}

/// Appends a report as one JSON line.
fn record_json(dir: &Path, report: &RunReport) -> Result<(), String> {
    let path = history_path(dir, report.profile);
    let line = serde_json::to_string(report).map_err(|e| e.to_string())?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(f, "{line}").map_err(|e| format!("{}: {e}", path.display()))
}

/// The reports, oldest first. Lines that do not parse are skipped with a warning.
fn read_json(dir: &Path, profile: ProfileId) -> Result<Vec<RunReport>, String> {
    let path = history_path(dir, profile);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        match serde_json::from_str(&line) {
            Ok(r) => out.push(r),
            Err(e) => tracing::warn!(file = %path.display(), line = n + 1, error = %e, "skipping a history line"),
        }
    }
    Ok(out)
}
