//! `idsync`: plan, sync and schedule directory-to-application syncs.
//!
//! Exit codes scripts can rely on are listed in [`EXIT_CODES`] (shown by
//! `--help`) and in the crate's README.

mod config;
mod connect;
mod duration;
mod notify;
mod output;
mod report;
mod schedule;
mod state;
mod worker;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use idsync::report::RunOutcome;
use idsync::{Completeness, Engine, ExternalId, Plan, Prepared, RunOptions, RunReport, StateStore};

use idsync::sql::RunRecord;

use crate::config::Config;
use crate::state::State;

/// The exit codes scripts and schedulers can rely on.
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  2  configuration or usage error
  3  the source, the target or the state could not be reached or read
     (nothing applied), or another run holds the profile
  4  some operations failed (they are retried next run)
  5  the run stopped (authentication failed, the lease was lost)
  6  deprovisions held by the threshold (run `sync --yes` after review)
  7  applied, but the read was partial: deprovisions were spared until a
     complete read (`status` shows why)";

/// Keep an application's users and groups in step with a directory.
#[derive(Parser)]
#[command(name = "idsync", version, about, after_help = EXIT_CODES)]
struct Cli {
    /// The profile file (TOML).
    #[arg(short, long, global = true, default_value = "idsync.toml", env = "IDSYNC_CONFIG")]
    config: PathBuf,
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// More logs (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// A worker's state database (`sqlite://idsync-state.db`,
    /// `postgres://…`): `worker` keeps every profile's state there, and
    /// `status` and `history` then show every profile in it.
    #[arg(long, global = true, env = "IDSYNC_STATE")]
    state: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Check the profile file, then connect to the source and the target.
    Validate,
    /// Dry run: read, plan and show the plan; change nothing.
    Plan {
        /// The plan as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also save the plan as JSON, to apply it later with `sync --plan`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Read in full even when a delta is possible.
        #[arg(long)]
        full: bool,
    },
    /// Read, plan and apply.
    Sync {
        /// Confirm deprovisions beyond the threshold.
        #[arg(long)]
        yes: bool,
        /// Read in full even when a delta is possible.
        #[arg(long)]
        full: bool,
        /// Apply this saved plan (from `plan --out`) instead of planning now.
        #[arg(long)]
        plan: Option<PathBuf>,
        /// With --plan: apply only these operation ids (comma-separated).
        #[arg(long, value_delimiter = ',', requires = "plan")]
        only: Vec<u32>,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sync on a schedule, one run at a time, backing off after failures.
    Run {
        /// Time between runs ("30m", "1h").
        #[arg(long, default_value = "30m")]
        every: String,
        /// Stop after this many runs (default: never).
        #[arg(long)]
        runs: Option<u32>,
    },
    /// Run many profiles: every `*.toml` in a folder and every row of the
    /// state database's `idsync_profiles`, each on its `[schedule]`, with
    /// other workers sharing the same database. Stops on SIGTERM.
    Worker {
        /// The folder of profile files.
        #[arg(long)]
        profiles: Option<PathBuf>,
        /// Runs at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Runs at once of profiles reading the same source (host and port,
        /// or file).
        #[arg(long, default_value_t = 2)]
        per_source: usize,
        /// How long a run's lease lasts unless renewed: a worker that dies
        /// holds its profiles this long.
        #[arg(long, default_value = "1m")]
        lease: String,
        /// Keep runs and object history this many days (0: forever).
        #[arg(long, default_value_t = 90)]
        history_days: u64,
    },
    /// The profile's saved state and its last run; with --state, every
    /// profile of a worker's store.
    Status {
        /// As JSON, for monitoring.
        #[arg(long)]
        json: bool,
    },
    /// Past runs, or the provisioning history of one object.
    History {
        /// Only this object: its external id, or (with SQL state) a
        /// userName, mail or DN it had.
        #[arg(long)]
        object: Option<String>,
        /// How many runs (with --object and SQL state: how many events).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Sync one user now (login-time provisioning), with their group
    /// memberships within scope.
    Jit {
        /// The object's external id.
        #[arg(required_unless_present = "login", conflicts_with = "login")]
        id: Option<String>,
        /// A login name instead: the user is looked up by the profile's
        /// `login_attributes` (e.g. sAMAccountName, userPrincipalName, uid,
        /// mail), in order; no match or two matches sync nothing.
        #[arg(long, value_name = "NAME")]
        login: Option<String>,
    },
}

/// Errors of the binary, each with its exit code.
struct Failure {
    code: u8,
    message: String,
    /// Sends no notice: another run holds the profile, which is no fault.
    quiet: bool,
}

impl Failure {
    fn config(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
            quiet: false,
        }
    }
    fn unavailable(e: idsync::Error) -> Self {
        let code = match e.kind() {
            idsync::ErrorKind::Config => 2,
            idsync::ErrorKind::Auth => 5,
            _ => 3,
        };
        Failure {
            code,
            message: e.to_string(),
            quiet: false,
        }
    }
    /// Another run holds the profile: exit code 3, no notice.
    fn busy(message: impl Into<String>) -> Self {
        Failure {
            code: 3,
            message: message.into(),
            quiet: true,
        }
    }
}

/// Sends the failure notice for a run that failed before it had a report
/// (the source, target or state unreachable, a bad password), unless
/// another run holds the profile.
async fn notice(config: &Config, f: &Failure) {
    if !f.quiet {
        notify::failure(config, &f.message, f.code, None).await;
    }
}

/// `result`, after [`notice`] of its failure.
async fn notified<T>(config: &Config, result: Result<T, Failure>) -> Result<T, Failure> {
    if let Err(f) = &result {
        notice(config, f).await;
    }
    result
}

/// Why the run's read was partial, if it was: the planner then spared
/// every deprovision the read could not justify.
pub(crate) fn partial_read(report: &RunReport) -> Option<&str> {
    match &report.plan.completeness {
        Completeness::Partial { reason } => Some(reason),
        Completeness::Complete => None,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format, cli.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("idsync: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(&cli)) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("idsync: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn init_logs(format: LogFormat, verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn dispatch(cli: &Cli) -> Result<u8, Failure> {
    // Commands on a worker's store: no profile file.
    match (&cli.command, cli.state.as_deref()) {
        (
            Command::Worker {
                profiles,
                concurrency,
                per_source,
                lease,
                history_days,
            },
            state,
        ) => {
            let options = worker::Options {
                profiles: profiles.clone(),
                concurrency: (*concurrency).max(1),
                per_source: (*per_source).max(1),
                lease: duration::parse_duration("--lease", lease).map_err(Failure::config)?,
                history_days: *history_days,
            };
            return worker::run(options, state.unwrap_or(DEFAULT_STATE)).await;
        }
        (Command::Status { json }, Some(url)) => return report::status(url, *json).await,
        (Command::History { object, limit }, Some(url)) => {
            return report::history(url, None, object.as_deref(), *limit).await;
        }
        _ => {}
    }
    let config = config::load(&cli.config).map_err(Failure::config)?;
    match &cli.command {
        Command::Validate => validate(&config).await,
        Command::Plan { json, out, full } => plan(&config, *json, out.as_deref(), *full).await,
        Command::Sync {
            yes,
            full,
            plan,
            only,
            json,
        } => {
            let options = RunOptions {
                confirm: *yes,
                full: *full,
                dry_run: false,
            };
            let state = notified(&config, State::open(&config).await).await?;
            let report = match plan {
                Some(path) => apply_saved(&config, &state, path, only).await,
                None => run_once(&config, &state, &options).await,
            };
            let report = notified(&config, report).await?;
            Ok(finish(&config, &state, &report, *json).await)
        }
        Command::Run { every, runs } => schedule(&config, every, *runs).await,
        Command::Worker { .. } => Ok(0),
        Command::Status { json } => status(&config, *json).await,
        Command::History { object, limit } => show_history(&config, object.as_deref(), *limit).await,
        Command::Jit { id, login } => {
            let state = notified(&config, State::open(&config).await).await?;
            let report = async {
                let engine = engine(&config, state.store()).await?;
                let options = RunOptions::default();
                match (id, login) {
                    (_, Some(name)) => engine.sync_login(name, &options).await,
                    (Some(id), None) => engine.sync_one(&ExternalId(id.clone()), &options).await,
                    (None, None) => return Err(Failure::config("jit takes an external id or --login NAME")),
                }
                .map_err(Failure::unavailable)
            }
            .await;
            let report = notified(&config, report).await?;
            if let Err(e) = state.record(&report).await {
                tracing::warn!(error = %e, "the run could not be recorded in the history");
            }
            Ok(finish(&config, &state, &report, false).await)
        }
    }
}

/// The state database `worker` uses without --state: SQLite, in the
/// current folder.
const DEFAULT_STATE: &str = "sqlite://idsync-state.db";

/// An engine for the profile, keeping its state in `store`, with progress
/// bars (on a terminal).
async fn engine(config: &Config, store: Arc<dyn StateStore>) -> Result<Engine, Failure> {
    Ok(build_engine(config, store)
        .await?
        .observe(Arc::new(output::Progress::new())))
}

/// An engine for the profile, keeping its state in `store`.
async fn build_engine(config: &Config, store: Arc<dyn StateStore>) -> Result<Engine, Failure> {
    let source = connect::source(config).await.map_err(Failure::unavailable)?;
    let target = connect::target(config).await.map_err(Failure::unavailable)?;
    let options = config.engine.options().map_err(Failure::config)?;
    Ok(Engine::new(config.profile.clone(), source, target, store).with_options(options))
}

/// The failure of a run, as a stop (exit code 5) when `stop` was raised
/// meanwhile (its lease was lost: its state save was refused).
fn stopped(f: Failure, stop: &idsync::StopSignal) -> Failure {
    match stop.reason() {
        Some(reason) => Failure {
            code: 5,
            message: format!("run stopped: {reason}; {}", f.message),
            quiet: false,
        },
        None => f,
    }
}

async fn validate(config: &Config) -> Result<u8, Failure> {
    let mut out = output::Out::new();
    out.ok(&format!(
        "profile {} ({}) is valid",
        config.profile.name, config.profile.id
    ));
    config.engine.options().map_err(Failure::config)?;
    let source = connect::source(config).await.map_err(Failure::unavailable)?;
    let mut stream = source
        .read_full(&config.profile.scope)
        .await
        .map_err(Failure::unavailable)?;
    use futures::StreamExt as _;
    match stream.next().await {
        Some(Err(e)) if e.stops_run() => return Err(Failure::unavailable(e)),
        _ => out.ok(&format!("source {} answers", source.backend())),
    }
    drop(stream);
    let target = connect::target(config).await.map_err(Failure::unavailable)?;
    let mut linked = target.linked(config.profile.id).await.map_err(Failure::unavailable)?;
    if let Some(Err(e)) = linked.next().await {
        return Err(Failure::unavailable(e));
    }
    out.ok(&format!(
        "target {} answers ({:?})",
        target.backend(),
        target.capabilities()
    ));
    let state = State::open(config).await?;
    out.ok(&format!("state {}", state.describe()));
    Ok(0)
}

async fn plan(config: &Config, json: bool, out: Option<&Path>, full: bool) -> Result<u8, Failure> {
    let state = State::open(config).await?;
    let engine = engine(config, state.store()).await?;
    let prepared = engine
        .prepare(&RunOptions {
            dry_run: true,
            full,
            confirm: false,
        })
        .await
        .map_err(Failure::unavailable)?;
    if let Some(path) = out {
        std::fs::write(path, prepared.plan.to_json())
            .map_err(|e| Failure::config(format!("{}: {e}", path.display())))?;
    }
    if json {
        println!("{}", prepared.plan.to_json());
    } else {
        let names = state.names(&prepared.plan).await;
        output::Out::new().plan(&prepared.plan, &prepared.read_errors, &names);
    }
    Ok(0)
}

/// Reads, plans and applies under the profile's run lock.
async fn run_once(config: &Config, state: &State, options: &RunOptions) -> Result<RunReport, Failure> {
    let lock = state.lock(config.profile.id).await?;
    let result = match engine(config, lock.store(state)).await {
        Ok(engine) => engine
            .with_stop(lock.stop())
            .run(options)
            .await
            .map_err(Failure::unavailable),
        Err(f) => Err(f),
    };
    unlock(config, state, lock, result).await
}

/// Records a run's report while its lock is still held (for a lease, the
/// database refuses it once the lease was taken over), then releases the
/// lock. An error of a run whose lease was lost meanwhile (its state save
/// was refused) is a stop, exit code 5.
async fn unlock(
    config: &Config,
    state: &State,
    lock: state::RunLock,
    result: Result<RunReport, Failure>,
) -> Result<RunReport, Failure> {
    let result = result.map_err(|f| stopped(f, &lock.stop()));
    let record = match &result {
        Ok(report) => RunRecord::report(report).exit_code(exit_code(report)),
        Err(f) => RunRecord::failed(config.profile.id, &f.message).exit_code(f.code),
    };
    if let Err(e) = lock.record_run(state, &record).await {
        tracing::warn!(error = %e, "the run could not be recorded in the history");
    }
    lock.release().await;
    result
}

async fn apply_saved(config: &Config, state: &State, path: &Path, only: &[u32]) -> Result<RunReport, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure::config(format!("{}: {e}", path.display())))?;
    let plan: Plan = serde_json::from_str(&text)
        .map_err(|e| Failure::config(format!("{}: not a saved plan: {e}", path.display())))?;
    if plan.profile != config.profile.id {
        return Err(Failure::config(format!(
            "{}: the plan is for profile {}, the configuration is profile {}",
            path.display(),
            plan.profile,
            config.profile.id
        )));
    }
    let mut prepared = Prepared::reviewed(plan);
    if !only.is_empty() {
        let ids: BTreeSet<u32> = only.iter().copied().collect();
        if let Some(missing) = ids
            .iter()
            .find(|id| !prepared.plan.operations.iter().any(|op| op.id == **id))
        {
            return Err(Failure::config(format!("--only: the plan has no operation {missing}")));
        }
        prepared = prepared.select(&ids);
    }
    let lock = state.lock(config.profile.id).await?;
    let result = match engine(config, lock.store(state)).await {
        Ok(engine) => engine
            .with_stop(lock.stop())
            .apply(prepared)
            .await
            .map_err(Failure::unavailable),
        Err(f) => Err(f),
    };
    unlock(config, state, lock, result).await
}

/// Prints the report, notifies on failure, and gives the exit code.
async fn finish(config: &Config, state: &State, report: &RunReport, json: bool) -> u8 {
    if json {
        println!("{}", report.to_json());
    } else {
        let names = state.names(&report.plan).await;
        output::Out::new().report(report, &names);
    }
    let code = exit_code(report);
    if matches!(code, 4 | 5 | 7) {
        let what = match partial_read(report) {
            Some(reason) if code == 7 => format!("the read was partial, deprovisions were spared: {reason}"),
            _ => format!("{:?}", report.outcome),
        };
        notify::failure(config, &what, code, Some(report)).await;
    }
    code
}

/// A run's exit code (see [`EXIT_CODES`]): a stop, then failures, then a
/// partial read, then held deprovisions.
fn exit_code(report: &RunReport) -> u8 {
    let held = report.plan.counts.held > 0;
    match &report.outcome {
        RunOutcome::Stopped { .. } => 5,
        RunOutcome::PartiallyFailed { .. } if report.failures().next().is_some() || !held => 4,
        RunOutcome::DryRun => 0,
        _ if partial_read(report).is_some() => 7,
        _ if held => 6,
        _ => 0,
    }
}

async fn schedule(config: &Config, every: &str, runs: Option<u32>) -> Result<u8, Failure> {
    let interval = duration::parse_duration("--every", every).map_err(Failure::config)?;
    let state = notified(config, State::open(config).await).await?;
    let mut failures = 0u32;
    let mut done = 0u32;
    loop {
        let code = match run_once(config, &state, &RunOptions::default()).await {
            Ok(report) => finish(config, &state, &report, false).await,
            Err(f) => {
                notice(config, &f).await;
                eprintln!("idsync: {}", f.message);
                f.code
            }
        };
        if code == 2 {
            return Ok(2);
        }
        failures = if matches!(code, 0 | 6 | 7) { 0 } else { failures + 1 };
        done += 1;
        if runs.is_some_and(|n| done >= n) {
            return Ok(code);
        }
        // Back off after failures (x2, x4, … up to x8), with ±10 % jitter.
        let factor = 1u32 << failures.min(3);
        let jitter = 0.9 + 0.2 * rand::random::<f64>();
        let wait = interval.saturating_mul(factor).mul_f64(jitter);
        tracing::info!(wait_s = wait.as_secs(), failures, "next run");
        tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
    }
}

async fn status(config: &Config, json: bool) -> Result<u8, Failure> {
    let state = State::open(config).await?;
    let s = state
        .store()
        .load(config.profile.id)
        .await
        .map_err(Failure::unavailable)?;
    if json {
        let reports = state.history(config.profile.id, 1).await.map_err(Failure::config)?;
        let last = reports.last();
        let value = serde_json::json!({
            "profile": config.profile.id,
            "name": config.profile.name,
            "cursor_saved": s.cursor.is_some(),
            "last_full_read": s.last_full_unix.map(|t| humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(t)).to_string()),
            "retry": s.retry.len(),
            "last_run": last.map(|r| serde_json::json!({
                "started_at": r.started_at,
                "outcome": r.outcome,
                "exit_code": exit_code(r),
                "applied": r.applied(),
                "failed": r.failures().count(),
                "held_deprovisions": r.plan.counts.held,
                "partial_read": partial_read(r),
                "read_errors": r.read_errors.iter().take(20).collect::<Vec<_>>(),
            })),
        });
        println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        return Ok(0);
    }
    let mut out = output::Out::new();
    out.line(&format!("profile   {} ({})", config.profile.name, config.profile.id));
    out.line(&format!(
        "cursor    {}",
        if s.cursor.is_some() {
            "saved: the next run may read a delta"
        } else {
            "none: the next run reads in full"
        }
    ));
    let last_full = s
        .last_full_unix
        .map(|t| humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(t)).to_string());
    out.line(&format!("full read {}", last_full.as_deref().unwrap_or("never")));
    out.line(&format!("retry     {} object(s) held for the next run", s.retry.len()));
    let reports = state.history(config.profile.id, 1).await.map_err(Failure::config)?;
    match reports.last() {
        Some(r) => {
            out.line(&format!(
                "last run  {} {:?}, {} applied, {} failed",
                r.started_at,
                r.outcome,
                r.applied(),
                r.failures().count()
            ));
            match partial_read(r) {
                Some(reason) => out.line(&format!(
                    "last read partial: {reason} (deprovisions were spared until a complete read)"
                )),
                None => out.line("last read complete"),
            }
            for e in r.read_errors.iter().take(20) {
                out.line(&format!("          read error: {e}"));
            }
        }
        None => out.line("last run  none"),
    }
    Ok(0)
}

async fn show_history(config: &Config, object: Option<&str>, limit: usize) -> Result<u8, Failure> {
    let state = State::open(config).await?;
    // SQL state keeps a lasting, indexed history per object.
    if let (Some(_), State::Sql { store, .. }) = (object, &state) {
        return report::show(store, Some(config.profile.id), object, limit).await;
    }
    let reports = state.history(config.profile.id, limit).await.map_err(Failure::config)?;
    let mut out = output::Out::new();
    for r in &reports {
        match object {
            None => out.line(&format!(
                "{}  {:<28} {} applied, {} failed, {} findings{}",
                r.started_at,
                format!("{:?}", r.outcome),
                r.applied(),
                r.failures().count(),
                r.plan.findings.len(),
                partial_read(r)
                    .map(|why| format!(", partial read: {why}"))
                    .unwrap_or_default()
            )),
            Some(id) => {
                for op in r.plan.operations.iter().filter(|op| op.link.external.0 == id) {
                    let status = match r.status_of(op.id) {
                        Some(status) => format!("{status:?}"),
                        None => "Planned".to_owned(),
                    };
                    out.line(&format!("{}  {status}  {}", r.started_at, op.row()));
                }
            }
        }
    }
    Ok(0)
}
