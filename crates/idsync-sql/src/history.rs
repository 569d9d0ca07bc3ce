//! The lasting history: one row per run (`idsync_runs`), one per operation
//! and finding per object (`idsync_objects`), and the names objects were
//! known by (`idsync_names`), written with the run's report in one
//! transaction, fenced by the run's lease when it has one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use idsync_core::plan::{Action, Operation};
use idsync_core::report::{OpStatus, RunOutcome};
use idsync_core::{Completeness, ExternalId, ProfileId, Result, RunReport};
use serde::Serialize;

use crate::client::{Db, Dialect, on_db};
use crate::error::SqlError;
use crate::store::{HISTORY, LEASES, Lease, SqlStateStore, ms, to_json};

pub(crate) const RUNS: &str = "idsync_runs";
pub(crate) const OBJECTS: &str = "idsync_objects";
pub(crate) const NAMES: &str = "idsync_names";

/// Rows per multi-row insert (well below both databases' parameter limits).
const ROWS: usize = 400;

/// The target fields whose values name an object, compared without case:
/// a `history --object` lookup finds the object by any of them, and plan
/// tables show them beside external ids.
pub const NAME_FIELDS: &[&str] = &[
    "userName",
    "user_name",
    "login",
    "email",
    "mail",
    "name",
    "displayName",
    "cn",
    "uid",
    "sAMAccountName",
    "userPrincipalName",
    "dn",
    "distinguishedName",
];

/// True when `field` is one of [`NAME_FIELDS`].
pub fn is_name_field(field: &str) -> bool {
    NAME_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(field))
}

/// The tables and indexes of the history (created when missing).
pub(crate) fn ddl(d: Dialect) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {RUNS} (id {}, profile TEXT NOT NULL, worker TEXT NOT NULL, \
             generation BIGINT NOT NULL, started_unix_ms BIGINT NOT NULL, finished_unix_ms BIGINT NOT NULL, \
             outcome TEXT NOT NULL, exit_code INTEGER, applied BIGINT NOT NULL, failed BIGINT NOT NULL, \
             held BIGINT NOT NULL, partial TEXT, error TEXT, history_id BIGINT)",
            d.serial_key()
        ),
        format!("CREATE INDEX IF NOT EXISTS {RUNS}_profile ON {RUNS} (profile, id)"),
        format!("CREATE INDEX IF NOT EXISTS {RUNS}_finished ON {RUNS} (finished_unix_ms)"),
        format!(
            "CREATE TABLE IF NOT EXISTS {OBJECTS} (id {}, profile TEXT NOT NULL, external TEXT NOT NULL, \
             run_id BIGINT NOT NULL, at_unix_ms BIGINT NOT NULL, kind TEXT NOT NULL, event TEXT NOT NULL, \
             status TEXT NOT NULL, other TEXT, detail TEXT NOT NULL)",
            d.serial_key()
        ),
        format!("CREATE INDEX IF NOT EXISTS {OBJECTS}_external ON {OBJECTS} (external, profile, id)"),
        format!("CREATE INDEX IF NOT EXISTS {OBJECTS}_at ON {OBJECTS} (at_unix_ms)"),
        format!(
            "CREATE TABLE IF NOT EXISTS {NAMES} (profile TEXT NOT NULL, external TEXT NOT NULL, \
             key TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, at_unix_ms BIGINT NOT NULL, \
             PRIMARY KEY (profile, external, key))"
        ),
        format!("CREATE INDEX IF NOT EXISTS {NAMES}_key ON {NAMES} (key)"),
    ]
}

/// What a run leaves in the history: its report, or the error that ended
/// it before it had one (a missing source file, a refused password).
#[derive(Clone, Copy, Debug)]
pub struct RunRecord<'a> {
    /// The profile.
    pub profile: ProfileId,
    /// The report, when the run got that far.
    pub report: Option<&'a RunReport>,
    /// The error that ended the run before it had a report.
    pub error: Option<&'a str>,
    /// The exit code the binary gives such a run, if the caller has one.
    pub exit_code: Option<u8>,
}

impl<'a> RunRecord<'a> {
    /// A run that has a report.
    pub fn report(report: &'a RunReport) -> Self {
        RunRecord {
            profile: report.profile,
            report: Some(report),
            error: None,
            exit_code: None,
        }
    }

    /// A run that ended on `error` before it had a report.
    pub fn failed(profile: ProfileId, error: &'a str) -> Self {
        RunRecord {
            profile,
            report: None,
            error: Some(error),
            exit_code: None,
        }
    }

    /// With the binary's exit code.
    pub fn exit_code(self, code: u8) -> Self {
        RunRecord {
            exit_code: Some(code),
            ..self
        }
    }
}

/// One run as `idsync_runs` holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunRow {
    /// The row's id (grows with time).
    pub id: i64,
    /// The profile.
    pub profile: String,
    /// The worker that ran it (empty when it held no lease).
    pub worker: String,
    /// The generation (fencing number) of its lease; 0 without one.
    pub generation: i64,
    /// When it started: when its lease was taken (database clock).
    pub started_unix_ms: i64,
    /// When it was recorded (database clock).
    pub finished_unix_ms: i64,
    /// `succeeded`, `partially_failed`, `stopped`, or `failed` (no report).
    pub outcome: String,
    /// The binary's exit code, when recorded by the binary.
    pub exit_code: Option<i32>,
    /// Operations applied.
    pub applied: i64,
    /// Operations failed.
    pub failed: i64,
    /// Deprovisions held by the threshold.
    pub held: i64,
    /// Why the read was partial, if it was.
    pub partial: Option<String>,
    /// What went wrong: the error that ended the run, or its first failure.
    pub error: Option<String>,
}

/// The columns of [`RunRow`], in order.
pub(crate) const RUN_COLUMNS: &str = "id, profile, worker, generation, started_unix_ms, finished_unix_ms, outcome, \
     exit_code, applied, failed, held, partial, error";

impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for RunRow
where
    &'r str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i32>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> std::result::Result<Self, sqlx::Error> {
        Ok(RunRow {
            id: row.try_get("id")?,
            profile: row.try_get("profile")?,
            worker: row.try_get("worker")?,
            generation: row.try_get("generation")?,
            started_unix_ms: row.try_get("started_unix_ms")?,
            finished_unix_ms: row.try_get("finished_unix_ms")?,
            outcome: row.try_get("outcome")?,
            exit_code: row.try_get("exit_code")?,
            applied: row.try_get("applied")?,
            failed: row.try_get("failed")?,
            held: row.try_get("held")?,
            partial: row.try_get("partial")?,
            error: row.try_get("error")?,
        })
    }
}

/// One line of an object's history: an operation on it, a membership
/// change, or a finding naming it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectEvent {
    /// The profile.
    pub profile: String,
    /// The object's external id.
    pub external: String,
    /// The run ([`RunRow::id`]).
    pub run_id: i64,
    /// When the run was recorded (Unix ms, database clock).
    pub at_unix_ms: i64,
    /// `user` or `group` (empty for a finding).
    pub kind: String,
    /// The action (`create`, `update`, `disable`, `add_member`, …), `joined`
    /// or `left` (on the member's side of a membership change), or
    /// `finding`.
    pub event: String,
    /// `applied`, `failed`, `skipped`, `held`, or a finding's kind.
    pub status: String,
    /// The other side of a membership change: the member's external id on
    /// the group's line, the group's on the member's.
    pub other: Option<String>,
    /// Fields, changes, reason, error or the finding's message.
    pub detail: String,
}

/// One event row to write: external id, kind, event, status, other, detail.
type EventRow = (String, String, String, String, Option<String>, String);

/// An [`ObjectEvent`] as selected, with its row id first.
type EventTuple = (
    i64,
    String,
    String,
    i64,
    i64,
    String,
    String,
    String,
    Option<String>,
    String,
);

/// One name an object was known by.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NameRow {
    external: String,
    field: String,
    value: String,
}

fn status_name(report: &RunReport, op: &Operation) -> (String, String) {
    if op.held.is_some() {
        return ("held".into(), op.held.clone().unwrap_or_default());
    }
    match report.status_of(op.id) {
        Some(OpStatus::Applied) => ("applied".into(), String::new()),
        Some(OpStatus::Failed { error, .. }) => ("failed".into(), error.clone()),
        Some(OpStatus::Skipped { reason }) => ("skipped".into(), reason.clone()),
        None => ("planned".into(), String::new()),
    }
}

/// The details of an operation, for people.
fn detail(op: &Operation) -> String {
    match &op.action {
        Action::Create { .. } | Action::Update { .. } => op.action.field_detail().unwrap_or_default(),
        Action::Link { previous: Some(p) } => format!("adopted from {p}"),
        Action::Link { previous: None } => {
            format!("adopts account {}", op.target.as_ref().map_or("?", |t| t.0.as_str()))
        }
        _ => op.reason.detail.clone(),
    }
}

/// The rows a report leaves: one per operation (two for a membership
/// change: the group's and the member's), one per object a finding names,
/// and the names the plan gives objects (the fields of creates and the new
/// values of updates that are [name fields](NAME_FIELDS)).
fn rows(report: &RunReport) -> (Vec<EventRow>, Vec<NameRow>) {
    let mut events = Vec::new();
    let mut names = Vec::new();
    for op in &report.plan.operations {
        let (status, note) = status_name(report, op);
        let with_note = |d: String| {
            if note.is_empty() {
                d
            } else if d.is_empty() {
                format!("{status}: {note}")
            } else {
                format!("{d} ({status}: {note})")
            }
        };
        let kind = op.kind.to_string();
        let external = op.link.external.0.clone();
        match &op.action {
            Action::AddMember { member, .. } | Action::RemoveMember { member, .. } => {
                let (group_event, member_event) = match op.action {
                    Action::AddMember { .. } => ("add_member", "joined"),
                    _ => ("remove_member", "left"),
                };
                events.push((
                    external.clone(),
                    kind,
                    group_event.to_owned(),
                    status.clone(),
                    Some(member.external.0.clone()),
                    with_note(format!("member {}", member.external)),
                ));
                events.push((
                    member.external.0.clone(),
                    "user".to_owned(),
                    member_event.to_owned(),
                    status.clone(),
                    Some(external.clone()),
                    with_note(format!("group {external}")),
                ));
            }
            action => {
                let fields = action.written_fields();
                for (field, value) in fields {
                    if is_name_field(field) && !value.is_empty() && value.len() <= 512 {
                        names.push(NameRow {
                            external: external.clone(),
                            field: field.clone(),
                            value: value.clone(),
                        });
                    }
                }
                events.push((
                    external,
                    kind,
                    action.name().to_owned(),
                    status.clone(),
                    None,
                    with_note(detail(op)),
                ));
            }
        }
    }
    for f in &report.plan.findings {
        let kind = serde_json::to_value(f.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{:?}", f.kind));
        for object in &f.objects {
            events.push((
                object.clone(),
                String::new(),
                "finding".to_owned(),
                kind.clone(),
                None,
                format!("{} ({})", f.message, f.remedy),
            ));
        }
    }
    (events, names)
}

/// The summary columns of a run: outcome, applied, failed, held, partial
/// read, error.
fn summary(run: &RunRecord<'_>) -> (String, i64, i64, i64, Option<String>, Option<String>) {
    let Some(r) = run.report else {
        return ("failed".into(), 0, 0, 0, None, run.error.map(str::to_owned));
    };
    let outcome = match &r.outcome {
        RunOutcome::Succeeded => "succeeded",
        RunOutcome::DryRun => "dry_run",
        RunOutcome::PartiallyFailed { .. } => "partially_failed",
        RunOutcome::Stopped { .. } => "stopped",
    };
    let error = match (&r.outcome, run.error) {
        (_, Some(e)) => Some(e.to_owned()),
        (RunOutcome::Stopped { error }, None) => Some(error.clone()),
        _ => r.failures().next().map(|o| match &o.status {
            OpStatus::Failed { error, .. } => format!("{} {} {}: {error}", o.action, o.kind, o.link.external),
            other => format!("{other:?}"),
        }),
    };
    let partial = match &r.plan.completeness {
        Completeness::Partial { reason } => Some(reason.clone()),
        Completeness::Complete => None,
    };
    let n = |x: usize| i64::try_from(x).unwrap_or(i64::MAX);
    (
        outcome.into(),
        n(r.tally.applied),
        n(r.tally.failed),
        n(r.plan.counts.held),
        partial,
        error,
    )
}

/// Writes a run (its report, its summary row, its objects' events and
/// names) in one transaction. With a lease, the transaction first checks
/// that the lease row still names it (`FOR SHARE` on PostgreSQL, so a
/// take-over waits for the commit; under `BEGIN IMMEDIATE` on SQLite) and
/// writes nothing when it does not. Returns the run's id.
pub(crate) async fn write_run(
    db: &Db,
    lease: Option<&Lease>,
    run: &RunRecord<'_>,
) -> std::result::Result<i64, SqlError> {
    let d = db.dialect();
    let now = d.now_ms();
    let profile = run.profile.to_string();
    let report_json = match run.report {
        Some(r) => Some(to_json(r).map_err(|e| SqlError::InvalidData {
            what: "report",
            message: e.to_string(),
        })?),
        None => None,
    };
    let (events, names) = run.report.map(rows).unwrap_or_default();
    let (outcome, applied, failed, held, partial, error) = summary(run);
    let (worker, generation) = lease.map_or((String::new(), 0), |l| (l.worker.clone(), l.generation));
    let duration = run.report.map_or(0, |r| i64::try_from(r.duration_ms).unwrap_or(0));
    let started = match lease {
        Some(l) => l.taken_unix_ms.to_string(),
        None => format!("{now} - {duration}"),
    };
    let lock = match d {
        Dialect::Postgres => " FOR SHARE",
        Dialect::Sqlite => "",
    };
    let fence = format!("SELECT generation FROM {LEASES} WHERE profile = $1 AND worker = $2 AND generation = $3{lock}");
    let holder = format!("SELECT worker, generation FROM {LEASES} WHERE profile = $1");
    let insert_report = format!("INSERT INTO {HISTORY} (profile, started_at, report) VALUES ($1, $2, $3) RETURNING id");
    let insert_run = format!(
        "INSERT INTO {RUNS} (profile, worker, generation, started_unix_ms, finished_unix_ms, outcome, exit_code, \
         applied, failed, held, partial, error, history_id) \
         VALUES ($1, $2, $3, {started}, {now}, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id, finished_unix_ms"
    );
    let values = |n: usize, width: usize| -> String {
        (0..n)
            .map(|i| {
                let cols: Vec<String> = (1..=width).map(|c| format!("${}", i * width + c)).collect();
                format!("({})", cols.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let exit_code = run.exit_code.map(i32::from);
    on_db!(db, p, begin => {
        let mut tx = p.begin_with(begin).await?;
        if let Some(lease) = lease {
            let held: Option<i64> = sqlx::query_scalar(&fence)
                .bind(profile.clone())
                .bind(lease.worker.clone())
                .bind(lease.generation)
                .fetch_optional(&mut *tx)
                .await?;
            if held.is_none() {
                let now: Option<(String, i64)> =
                    sqlx::query_as(&holder).bind(profile.clone()).fetch_optional(&mut *tx).await?;
                tx.rollback().await?;
                tracing::error!(%profile, worker = %lease.worker, generation = lease.generation, ?now, "the run report refused: the lease was taken over");
                return Err(SqlError::LeaseLost {
                    profile,
                    what: "the run report",
                    worker: lease.worker.clone(),
                    generation: lease.generation,
                    now,
                });
            }
        }
        let history_id: Option<i64> = match (&report_json, run.report) {
            (Some(json), Some(r)) => Some(
                sqlx::query_scalar(&insert_report)
                    .bind(profile.clone())
                    .bind(r.started_at.clone())
                    .bind(json.clone())
                    .fetch_one(&mut *tx)
                    .await?,
            ),
            _ => None,
        };
        let (run_id, at): (i64, i64) = sqlx::query_as(&insert_run)
            .bind(profile.clone())
            .bind(worker.clone())
            .bind(generation)
            .bind(outcome.clone())
            .bind(exit_code)
            .bind(applied)
            .bind(failed)
            .bind(held)
            .bind(partial.clone())
            .bind(error.clone())
            .bind(history_id)
            .fetch_one(&mut *tx)
            .await?;
        for chunk in events.chunks(ROWS) {
            let sql = format!(
                "INSERT INTO {OBJECTS} (profile, external, run_id, at_unix_ms, kind, event, status, other, detail) VALUES {}",
                values(chunk.len(), 9)
            );
            let mut q = sqlx::query(&sql);
            for (external, kind, event, status, other, detail) in chunk {
                q = q
                    .bind(profile.clone())
                    .bind(external.clone())
                    .bind(run_id)
                    .bind(at)
                    .bind(kind.clone())
                    .bind(event.clone())
                    .bind(status.clone())
                    .bind(other.clone())
                    .bind(detail.clone());
            }
            q.execute(&mut *tx).await?;
        }
        // One row per (object, name): a name seen twice in a run is one row.
        let names: BTreeMap<(String, String), NameRow> = names
            .into_iter()
            .map(|n| ((n.external.clone(), n.value.to_lowercase()), n))
            .collect();
        let names: Vec<((String, String), NameRow)> = names.into_iter().collect();
        for chunk in names.chunks(ROWS) {
            let sql = format!(
                "INSERT INTO {NAMES} (profile, external, key, field, value, at_unix_ms) VALUES {} \
                 ON CONFLICT (profile, external, key) DO UPDATE SET field = excluded.field, \
                 value = excluded.value, at_unix_ms = excluded.at_unix_ms",
                values(chunk.len(), 6)
            );
            let mut q = sqlx::query(&sql);
            for ((external, key), n) in chunk {
                q = q
                    .bind(profile.clone())
                    .bind(external.clone())
                    .bind(key.clone())
                    .bind(n.field.clone())
                    .bind(n.value.clone())
                    .bind(at);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(run_id)
    })
}

impl SqlStateStore {
    /// Records a run: its report (if any) in `idsync_history`, its summary
    /// in `idsync_runs`, and its objects' events and names, in one
    /// transaction. Returns the run's id.
    pub async fn record_run(&self, run: &RunRecord<'_>) -> Result<i64> {
        write_run(&self.db, None, run).await.map_err(|e| e.into_core("record"))
    }

    /// The history of one object, oldest first (at most the last `limit`
    /// events): `key` is its external id, or a name the plan gave it (a
    /// userName, mail, DN: see [`NAME_FIELDS`]; without case). With
    /// `profile`, only that profile's. Indexed: it answers in milliseconds
    /// whatever the size of the history.
    pub async fn object_history(
        &self,
        profile: Option<ProfileId>,
        key: &str,
        limit: usize,
    ) -> Result<Vec<ObjectEvent>> {
        self.object_history_inner(profile, key, limit)
            .await
            .map_err(|e| e.into_core("object history"))
    }

    async fn object_history_inner(
        &self,
        profile: Option<ProfileId>,
        key: &str,
        limit: usize,
    ) -> std::result::Result<Vec<ObjectEvent>, SqlError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let profile = profile.map(|p| p.to_string());
        let by_name = match &profile {
            Some(_) => format!("SELECT profile, external FROM {NAMES} WHERE key = $1 AND profile = $2"),
            None => format!("SELECT profile, external FROM {NAMES} WHERE key = $1"),
        };
        let named: Vec<(String, String)> = on_db!(&self.db, p => {
            let mut q = sqlx::query_as(&by_name).bind(key.to_lowercase());
            if let Some(profile) = &profile {
                q = q.bind(profile.clone());
            }
            q.fetch_all(p).await?
        });
        let mut externals: BTreeSet<String> = named
            .into_iter()
            .filter(|(p, _)| profile.as_ref().is_none_or(|want| want == p))
            .map(|(_, e)| e)
            .collect();
        externals.insert(key.to_owned());
        let columns = "id, profile, external, run_id, at_unix_ms, kind, event, status, other, detail";
        let sql = match &profile {
            Some(_) => format!(
                "SELECT {columns} FROM {OBJECTS} WHERE external = $1 AND profile = $3 ORDER BY id DESC LIMIT $2"
            ),
            None => format!("SELECT {columns} FROM {OBJECTS} WHERE external = $1 ORDER BY id DESC LIMIT $2"),
        };
        let mut out: Vec<(i64, ObjectEvent)> = Vec::new();
        for external in externals {
            let rows: Vec<EventTuple> = on_db!(&self.db, p => {
                let mut q = sqlx::query_as(&sql).bind(external.clone()).bind(limit);
                if let Some(profile) = &profile {
                    q = q.bind(profile.clone());
                }
                q.fetch_all(p).await?
            });
            out.extend(rows.into_iter().map(
                |(id, profile, external, run_id, at_unix_ms, kind, event, status, other, detail)| {
                    (
                        id,
                        ObjectEvent {
                            profile,
                            external,
                            run_id,
                            at_unix_ms,
                            kind,
                            event,
                            status,
                            other,
                            detail,
                        },
                    )
                },
            ));
        }
        out.sort_by_key(|(id, _)| *id);
        let skip = out.len().saturating_sub(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(out.into_iter().skip(skip).map(|(_, e)| e).collect())
    }

    /// The latest name the history knows for each of `externals` in
    /// `profile` (a userName before a mail before a display name), for
    /// plan tables.
    pub async fn names_of(
        &self,
        profile: ProfileId,
        externals: &BTreeSet<ExternalId>,
    ) -> Result<BTreeMap<ExternalId, String>> {
        let mut out = BTreeMap::new();
        let list: Vec<&ExternalId> = externals.iter().collect();
        for chunk in list.chunks(ROWS) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT external, field, value, at_unix_ms FROM {NAMES} WHERE profile = $1 AND external IN ({})",
                marks.join(", ")
            );
            let rows: Vec<(String, String, String, i64)> = on_db!(&self.db, p => {
                let mut q = sqlx::query_as(&sql).bind(profile.to_string());
                for e in chunk {
                    q = q.bind(e.0.clone());
                }
                q.fetch_all(p).await
            })
            .map_err(|e| SqlError::from(e).into_core("names"))?;
            let mut best: BTreeMap<String, (usize, i64, String)> = BTreeMap::new();
            for (external, field, value, at) in rows {
                let rank = NAME_FIELDS
                    .iter()
                    .position(|f| f.eq_ignore_ascii_case(&field))
                    .unwrap_or(NAME_FIELDS.len());
                let better = best.get(&external).is_none_or(|(r, t, _)| (rank, -at) < (*r, -*t));
                if better {
                    best.insert(external, (rank, at, value));
                }
            }
            out.extend(best.into_iter().map(|(e, (_, _, v))| (ExternalId(e), v)));
        }
        Ok(out)
    }

    /// The last `limit` runs of `profile` (of every profile with `None`),
    /// oldest first.
    pub async fn runs(&self, profile: Option<ProfileId>, limit: usize) -> Result<Vec<RunRow>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows: Vec<RunRow> = match profile {
            Some(profile) => {
                let sql = format!("SELECT {RUN_COLUMNS} FROM {RUNS} WHERE profile = $1 ORDER BY id DESC LIMIT $2");
                on_db!(&self.db, p => sqlx::query_as(&sql).bind(profile.to_string()).bind(limit).fetch_all(p).await)
            }
            None => {
                let sql = format!("SELECT {RUN_COLUMNS} FROM {RUNS} ORDER BY id DESC LIMIT $1");
                on_db!(&self.db, p => sqlx::query_as(&sql).bind(limit).fetch_all(p).await)
            }
        }
        .map_err(|e| SqlError::from(e).into_core("runs"))?;
        rows.reverse();
        Ok(rows)
    }

    /// Deletes the runs, reports and object events older than `keep`
    /// (names stay: they are one row per object and name, and plan tables
    /// use them). Deletes in batches, so no transaction grows large.
    /// Returns how many rows went.
    pub async fn purge(&self, keep: Duration) -> Result<u64> {
        let now = self.db.dialect().now_ms();
        let cutoff: i64 = on_db!(&self.db, p => sqlx::query_scalar(&format!("SELECT {now} - $1"))
            .bind(ms(keep))
            .fetch_one(p)
            .await)
        .map_err(|e| SqlError::from(e).into_core("purge"))?;
        let cutoff_text = humantime_rfc3339(cutoff);
        let batches = [
            format!("DELETE FROM {OBJECTS} WHERE id IN (SELECT id FROM {OBJECTS} WHERE at_unix_ms < $1 LIMIT 10000)"),
            format!("DELETE FROM {RUNS} WHERE id IN (SELECT id FROM {RUNS} WHERE finished_unix_ms < $1 LIMIT 10000)"),
        ];
        let mut gone = 0;
        for sql in &batches {
            loop {
                let n =
                    on_db!(&self.db, p => sqlx::query(sql).bind(cutoff).execute(p).await.map(|r| r.rows_affected()))
                        .map_err(|e| SqlError::from(e).into_core("purge"))?;
                gone += n;
                if n == 0 {
                    break;
                }
            }
        }
        let reports =
            format!("DELETE FROM {HISTORY} WHERE id IN (SELECT id FROM {HISTORY} WHERE started_at < $1 LIMIT 1000)");
        loop {
            let n = on_db!(&self.db, p => sqlx::query(&reports).bind(cutoff_text.clone()).execute(p).await.map(|r| r.rows_affected()))
                .map_err(|e| SqlError::from(e).into_core("purge"))?;
            gone += n;
            if n == 0 {
                break;
            }
        }
        Ok(gone)
    }
}

/// Unix milliseconds as the RFC 3339 text reports start with
/// (`2026-01-02T03:04:05.678Z`), to compare with `started_at`.
fn humantime_rfc3339(unix_ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(unix_ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}
