//! Many profiles, many workers: each profile's lease row also holds when
//! it runs next, so that "due and not leased" is one indexed query, and a
//! worker claims a due profile with one short statement.

use std::time::Duration;

use idsync_core::{ProfileId, Result};
use serde::Serialize;

use crate::client::{Db, Dialect, on_db};
use crate::error::SqlError;
use crate::history::{RUN_COLUMNS, RUNS, RunRow};
use crate::store::{LEASES, Lease, SqlStateStore, ms};

/// Profiles kept in the database, for workers to run: `profile` (the
/// profile's id), `config` (the text of a profile file, TOML) and
/// `updated_unix_ms`.
pub(crate) const PROFILES: &str = "idsync_profiles";

/// The columns the scheduler adds to `idsync_leases`.
const COLUMNS: [(&str, &str); 4] = [
    ("next_run_unix_ms", "BIGINT"),
    ("source_key", "TEXT"),
    ("name", "TEXT"),
    ("failures", "BIGINT NOT NULL DEFAULT 0"),
];

/// The scheduler's columns (added to a lease table made before they
/// existed), its index, and the profiles table.
pub(crate) async fn ddl(db: &Db) -> std::result::Result<Vec<String>, SqlError> {
    let mut out = Vec::new();
    match db {
        Db::Postgres(_) => {
            // CREATE TABLE runs first (in `connect`'s list): the ALTERs
            // then add what an older table lacks.
            for (name, ty) in COLUMNS {
                out.push(format!("ALTER TABLE {LEASES} ADD COLUMN IF NOT EXISTS {name} {ty}"));
            }
        }
        Db::Sqlite(p) => {
            let have: Vec<String> = sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{LEASES}')"))
                .fetch_all(p)
                .await?;
            let fresh = have.is_empty();
            for (name, ty) in COLUMNS {
                if fresh || !have.iter().any(|h| h == name) {
                    out.push(format!("ALTER TABLE {LEASES} ADD COLUMN {name} {ty}"));
                }
            }
        }
    }
    out.push(format!(
        "CREATE INDEX IF NOT EXISTS {LEASES}_due ON {LEASES} (next_run_unix_ms)"
    ));
    out.push(format!(
        "CREATE TABLE IF NOT EXISTS {PROFILES} (profile TEXT PRIMARY KEY, config TEXT NOT NULL, \
         updated_unix_ms BIGINT NOT NULL)"
    ));
    Ok(out)
}

/// A profile a worker knows, to schedule ([`SqlStateStore::schedule`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheduled {
    /// The profile.
    pub profile: ProfileId,
    /// Its name, for `status`.
    pub name: String,
    /// What its source is (a host and port, a file): a worker runs at most
    /// so many profiles of one source at once.
    pub source_key: String,
    /// When its first run is due, from now, if it has never been
    /// scheduled.
    pub first_run_in: Duration,
}

/// A due profile a worker claimed ([`SqlStateStore::claim`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The lease, taken (its generation is the fencing number).
    pub lease: Lease,
    /// The source key the profile was scheduled with.
    pub source_key: String,
    /// How many runs in a row failed before this one.
    pub failures: u32,
}

/// A profile stored in the database ([`SqlStateStore::stored_profiles`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredProfile {
    /// The profile's id (as the row names it).
    pub profile: String,
    /// The profile file's text (TOML).
    pub config: String,
    /// When it was last changed (Unix ms).
    pub updated_unix_ms: i64,
}

/// A profile as `idsync status` shows it ([`SqlStateStore::profiles`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProfileStatus {
    /// The profile's id.
    pub profile: String,
    /// Its name, when a worker scheduled it.
    pub name: Option<String>,
    /// Its source key, when a worker scheduled it.
    pub source: Option<String>,
    /// When it runs next (Unix ms, database clock); `None` when no worker
    /// schedules it.
    pub next_run_unix_ms: Option<i64>,
    /// The worker running it now, if any.
    pub running_on: Option<String>,
    /// The generation of its lease (the fencing number of its latest run).
    pub generation: i64,
    /// How many runs in a row failed.
    pub failures: i64,
    /// Its last recorded run.
    pub last_run: Option<RunRow>,
}

fn now_ms(db: &Db) -> &'static str {
    db.dialect().now_ms()
}

/// `AND source_key NOT IN ($n, …)` for the sources to leave alone, or
/// nothing.
fn skip_clause(first: usize, count: usize) -> String {
    if count == 0 {
        return String::new();
    }
    let marks: Vec<String> = (first..first + count).map(|i| format!("${i}")).collect();
    format!(" AND source_key NOT IN ({})", marks.join(", "))
}

impl SqlStateStore {
    /// Makes the profiles known to the scheduler: a profile never scheduled
    /// (or parked) becomes due after its `first_run_in`; one already
    /// scheduled keeps its next run, so restarting workers do not run
    /// everything at once. Names and source keys are updated.
    pub async fn schedule(&self, profiles: &[Scheduled]) -> Result<()> {
        let now = now_ms(&self.db);
        for chunk in profiles.chunks(200) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = i * 4;
                    format!("(${}, '', 0, 0, {now} + ${}, ${}, ${}, 0)", b + 1, b + 2, b + 3, b + 4)
                })
                .collect();
            let sql = format!(
                "INSERT INTO {LEASES} (profile, worker, generation, expires_unix_ms, next_run_unix_ms, source_key, \
                 name, failures) VALUES {} ON CONFLICT (profile) DO UPDATE SET source_key = excluded.source_key, \
                 name = excluded.name, next_run_unix_ms = COALESCE({LEASES}.next_run_unix_ms, \
                 excluded.next_run_unix_ms)",
                rows.join(", ")
            );
            on_db!(&self.db, p => {
                let mut q = sqlx::query(&sql);
                for s in chunk {
                    q = q
                        .bind(s.profile.to_string())
                        .bind(ms(s.first_run_in))
                        .bind(s.source_key.clone())
                        .bind(s.name.clone());
                }
                q.execute(p).await.map(drop)
            })
            .map_err(|e| SqlError::from(e).into_core("schedule"))?;
        }
        Ok(())
    }

    /// Claims the profile due longest ago that no worker holds, skipping
    /// the profiles of `busy_sources`, and leases it to `worker` for
    /// `ttl`; `None` when nothing is due. One statement: on PostgreSQL
    /// the candidate row is locked `FOR UPDATE SKIP LOCKED`, so workers
    /// claiming at once take different profiles and never wait for each
    /// other; on SQLite the statement holds the write lock.
    pub async fn claim(&self, worker: &str, ttl: Duration, busy_sources: &[String]) -> Result<Option<Claimed>> {
        let now = now_ms(&self.db);
        let lock = match self.db.dialect() {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let sql = format!(
            "UPDATE {LEASES} SET worker = $1, generation = generation + 1, expires_unix_ms = {now} + $2 \
             WHERE profile = (SELECT profile FROM {LEASES} WHERE next_run_unix_ms <= {now} \
             AND expires_unix_ms <= {now}{} ORDER BY next_run_unix_ms LIMIT 1{lock}) \
             RETURNING profile, generation, expires_unix_ms, COALESCE(source_key, ''), failures",
            skip_clause(3, busy_sources.len())
        );
        let ttl = ms(ttl);
        let row: Option<(String, i64, i64, String, i64)> = on_db!(&self.db, p => {
            let mut q = sqlx::query_as(&sql).bind(worker.to_owned()).bind(ttl);
            for s in busy_sources {
                q = q.bind(s.clone());
            }
            q.fetch_optional(p).await
        })
        .map_err(|e| SqlError::from(e).into_core("claim"))?;
        let Some((profile, generation, expires_unix_ms, source_key, failures)) = row else {
            return Ok(None);
        };
        let profile = profile.parse().map(ProfileId).map_err(|e| {
            SqlError::InvalidData {
                what: "profile id in idsync_leases",
                message: format!("{profile:?}: {e}"),
            }
            .into_core("claim")
        })?;
        Ok(Some(Claimed {
            lease: Lease {
                profile,
                worker: worker.to_owned(),
                generation,
                expires_unix_ms,
                taken_unix_ms: expires_unix_ms - ttl,
            },
            source_key,
            failures: u32::try_from(failures).unwrap_or(u32::MAX),
        }))
    }

    /// Ends a claimed run: releases `lease` and sets when the profile runs
    /// next (`None`: not until a worker schedules it again) and how many
    /// runs in a row failed. False (and nothing changed) when the lease
    /// had been lost.
    pub async fn finish(&self, lease: &Lease, next_run_in: Option<Duration>, failures: u32) -> Result<bool> {
        let now = now_ms(&self.db);
        let next = match next_run_in {
            Some(_) => format!("{now} + $5"),
            None => "NULL".to_owned(),
        };
        let sql = format!(
            "UPDATE {LEASES} SET expires_unix_ms = 0, next_run_unix_ms = {next}, failures = $4 \
             WHERE profile = $1 AND worker = $2 AND generation = $3"
        );
        let n = on_db!(&self.db, p => {
            let mut q = sqlx::query(&sql)
                .bind(lease.profile.to_string())
                .bind(lease.worker.clone())
                .bind(lease.generation)
                .bind(i64::from(failures));
            if let Some(d) = next_run_in {
                q = q.bind(ms(d));
            }
            q.execute(p).await.map(|r| r.rows_affected())
        })
        .map_err(|e| SqlError::from(e).into_core("finish"))?;
        Ok(n > 0)
    }

    /// How long until a profile that no worker holds is due, skipping
    /// `busy_sources` (zero when one is due now); `None` when none is
    /// scheduled.
    pub async fn next_due_in(&self, busy_sources: &[String]) -> Result<Option<Duration>> {
        let now = now_ms(&self.db);
        let sql = format!(
            "SELECT MIN(next_run_unix_ms) - {now} FROM {LEASES} WHERE next_run_unix_ms IS NOT NULL \
             AND expires_unix_ms <= {now}{}",
            skip_clause(1, busy_sources.len())
        );
        let left: Option<i64> = on_db!(&self.db, p => {
            let mut q = sqlx::query_scalar(&sql);
            for s in busy_sources {
                q = q.bind(s.clone());
            }
            q.fetch_one(p).await
        })
        .map_err(|e| SqlError::from(e).into_core("next due"))?;
        Ok(left.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))))
    }

    /// Every profile the store knows (scheduled or ever leased), by name:
    /// when it runs next, who runs it now, its failures in a row and its
    /// last run. Two indexed queries, whatever the history's size.
    pub async fn profiles(&self) -> Result<Vec<ProfileStatus>> {
        let now = now_ms(&self.db);
        let leases = format!(
            "SELECT profile, name, source_key, next_run_unix_ms, worker, expires_unix_ms, {now}, generation, \
             failures FROM {LEASES} ORDER BY name, profile"
        );
        let last = format!(
            "SELECT {} FROM {LEASES} l JOIN {RUNS} r ON r.id = (SELECT MAX(id) FROM {RUNS} WHERE profile = l.profile)",
            RUN_COLUMNS
                .split(", ")
                .map(|c| format!("r.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        type LeaseRow = (
            String,
            Option<String>,
            Option<String>,
            Option<i64>,
            String,
            i64,
            i64,
            i64,
            i64,
        );
        let rows: Vec<LeaseRow> = on_db!(&self.db, p => sqlx::query_as(&leases).fetch_all(p).await)
            .map_err(|e| SqlError::from(e).into_core("status"))?;
        let runs: Vec<RunRow> = on_db!(&self.db, p => sqlx::query_as(&last).fetch_all(p).await)
            .map_err(|e| SqlError::from(e).into_core("status"))?;
        let mut last: std::collections::HashMap<String, RunRow> =
            runs.into_iter().map(|r| (r.profile.clone(), r)).collect();
        Ok(rows
            .into_iter()
            .map(
                |(profile, name, source, next_run_unix_ms, worker, expires, now, generation, failures)| ProfileStatus {
                    last_run: last.remove(&profile),
                    profile,
                    name,
                    source,
                    next_run_unix_ms,
                    running_on: (expires > now && !worker.is_empty()).then_some(worker),
                    generation,
                    failures,
                },
            )
            .collect())
    }

    /// The profiles stored in `idsync_profiles` changed at or after
    /// `since_unix_ms` (all of them with 0).
    pub async fn stored_profiles(&self, since_unix_ms: i64) -> Result<Vec<StoredProfile>> {
        let sql = format!(
            "SELECT profile, config, updated_unix_ms FROM {PROFILES} WHERE updated_unix_ms >= $1 ORDER BY profile"
        );
        let rows: Vec<(String, String, i64)> = on_db!(&self.db, p => sqlx::query_as(&sql)
            .bind(since_unix_ms)
            .fetch_all(p)
            .await)
        .map_err(|e| SqlError::from(e).into_core("profiles"))?;
        Ok(rows
            .into_iter()
            .map(|(profile, config, updated_unix_ms)| StoredProfile {
                profile,
                config,
                updated_unix_ms,
            })
            .collect())
    }

    /// Stores (or replaces) a profile file's text in `idsync_profiles`,
    /// for workers to run.
    pub async fn put_profile(&self, profile: ProfileId, config: &str) -> Result<()> {
        let now = now_ms(&self.db);
        let sql = format!(
            "INSERT INTO {PROFILES} (profile, config, updated_unix_ms) VALUES ($1, $2, {now}) \
             ON CONFLICT (profile) DO UPDATE SET config = excluded.config, updated_unix_ms = excluded.updated_unix_ms"
        );
        on_db!(&self.db, p => sqlx::query(&sql)
            .bind(profile.to_string())
            .bind(config.to_owned())
            .execute(p)
            .await
            .map(drop))
        .map_err(|e| SqlError::from(e).into_core("profiles"))?;
        Ok(())
    }
}
