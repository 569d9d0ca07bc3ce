//! [`SqlStateStore`]'s connection, profile states, report history and
//! leases, and [`FencedStateStore`], the view of a lease's holder.

use std::time::Duration;

use async_trait::async_trait;
use idsync_core::{ProfileId, ProfileState, Result, RunReport, StateStore};

use crate::client::{Db, Dialect, on_db};
use crate::error::SqlError;
use crate::history::RunRecord;
use crate::store::{HISTORY, LEASES, Lease, STATE, SqlStateStore, ms, to_json};

/// The state store as the holder of one lease sees it
/// ([`SqlStateStore::fenced`]): it loads as the store does, and it saves
/// states and records reports only while the lease row still names this
/// lease's worker and generation.
///
/// Each write is one `INSERT … SELECT … WHERE EXISTS (SELECT 1 FROM
/// idsync_leases WHERE profile = … AND worker = … AND generation = …)` in
/// its own transaction (`BEGIN IMMEDIATE` on SQLite; on PostgreSQL the
/// lease row is read `FOR SHARE`, so a take-over waits for the write to
/// commit, and a write waits for a take-over in progress and then sees
/// it). A refused write is a permanent [`ErrorKind::Conflict`] error
/// ([`SqlError::LeaseLost`]) naming the profile, this lease and the
/// lease's holder now. Renewals keep the generation, so the view stays
/// valid for the whole run.
///
/// [`ErrorKind::Conflict`]: idsync_core::ErrorKind::Conflict
#[derive(Debug, Clone)]
pub struct FencedStateStore {
    store: SqlStateStore,
    pub(crate) lease: Lease,
}

fn now_ms(d: Dialect) -> &'static str {
    d.now_ms()
}

/// What a state write does when the profile has a state already.
const UPSERT_STATE: &str =
    "ON CONFLICT (profile) DO UPDATE SET state = excluded.state, updated_unix_ms = excluded.updated_unix_ms";

impl SqlStateStore {
    /// Connects (`sqlite://path?mode=rwc`, `sqlite::memory:`,
    /// `postgres://…`) and creates the tables that are missing.
    pub async fn connect(url: &str) -> Result<SqlStateStore> {
        let db = Db::connect(url).await.map_err(|e| e.into_core("connect"))?;
        let d = db.dialect();
        let ddl = vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {STATE} (profile TEXT PRIMARY KEY, state TEXT NOT NULL, \
                 updated_unix_ms BIGINT NOT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {HISTORY} (id {}, profile TEXT NOT NULL, started_at TEXT NOT NULL, \
                 report TEXT NOT NULL)",
                d.serial_key()
            ),
            format!("CREATE INDEX IF NOT EXISTS {HISTORY}_profile ON {HISTORY} (profile, id)"),
            format!(
                "CREATE TABLE IF NOT EXISTS {LEASES} (profile TEXT PRIMARY KEY, worker TEXT NOT NULL, \
                 generation BIGINT NOT NULL, expires_unix_ms BIGINT NOT NULL)"
            ),
        ];
        let mut ddl = ddl;
        ddl.extend(
            crate::schedule::ddl(&db)
                .await
                .map_err(|e| e.into_core("create schema"))?,
        );
        ddl.extend(crate::history::ddl(d));
        db.run_ddl(&ddl).await.map_err(|e| e.into_core("create schema"))?;
        Ok(SqlStateStore { db })
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.db.close().await
    }

    /// The store for the holder of `lease`: its writes are refused once
    /// another worker has taken the lease over. See [`FencedStateStore`].
    pub fn fenced(&self, lease: &Lease) -> FencedStateStore {
        FencedStateStore {
            store: self.clone(),
            lease: lease.clone(),
        }
    }

    /// Appends a run report to the profile's history, with its summary and
    /// its objects' events (see [`SqlStateStore::record_run`]).
    pub async fn record(&self, report: &RunReport) -> Result<()> {
        self.record_run(&RunRecord::report(report)).await.map(drop)
    }

    /// The last `limit` reports of `profile`, oldest first (as the CLI's
    /// `history.jsonl` reads). Reports that do not parse are skipped with
    /// a warning.
    pub async fn history(&self, profile: ProfileId, limit: usize) -> Result<Vec<RunReport>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!("SELECT id, report FROM {HISTORY} WHERE profile = $1 ORDER BY id DESC LIMIT $2");
        let rows: Vec<(i64, String)> = on_db!(&self.db, p => sqlx::query_as(&sql)
            .bind(profile.to_string())
            .bind(limit)
            .fetch_all(p)
            .await)
        .map_err(|e| SqlError::from(e).into_core("history"))?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, json) in rows.into_iter().rev() {
            match serde_json::from_str(&json) {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!(%profile, id, error = %e, "skipping a history row"),
            }
        }
        Ok(out)
    }

    /// Takes the lease of `profile` for `worker` for `ttl`, or `None` when
    /// another worker holds an unexpired lease (or is taking it right now).
    /// A worker that already holds the lease gets it again, with a new
    /// generation. See [the type's documentation](SqlStateStore#leases).
    pub async fn try_lease(&self, profile: ProfileId, worker: &str, ttl: Duration) -> Result<Option<Lease>> {
        self.try_lease_inner(profile, worker, ttl)
            .await
            .map_err(|e| e.into_core("lease"))
    }

    async fn try_lease_inner(
        &self,
        profile: ProfileId,
        worker: &str,
        ttl: Duration,
    ) -> std::result::Result<Option<Lease>, SqlError> {
        let now = now_ms(self.db.dialect());
        let key = profile.to_string();
        let ttl = ms(ttl);
        let take = format!(
            "UPDATE {LEASES} SET worker = $2, generation = generation + 1, expires_unix_ms = {now} + $3 \
             WHERE profile = $1 RETURNING generation, expires_unix_ms"
        );
        let lease = |(generation, expires_unix_ms): (i64, i64)| Lease {
            profile,
            worker: worker.to_owned(),
            generation,
            expires_unix_ms,
            taken_unix_ms: expires_unix_ms - ttl,
        };
        // PostgreSQL locks the row (and skips one another taker holds);
        // SQLite's BEGIN IMMEDIATE takes the write lock before the read, so
        // no other taker can slip in between. A dropped future rolls back.
        let lock = match self.db.dialect() {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let read = format!("SELECT worker, expires_unix_ms, {now} FROM {LEASES} WHERE profile = $1{lock}");
        // Missing, or locked by another taker: insert, and the conflict (the
        // row exists, maybe locked) means held.
        let insert = format!(
            "INSERT INTO {LEASES} (profile, worker, generation, expires_unix_ms) \
             VALUES ($1, $2, 1, {now} + $3) ON CONFLICT (profile) DO NOTHING \
             RETURNING generation, expires_unix_ms"
        );
        on_db!(&self.db, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let row: Option<(String, i64, i64)> =
                sqlx::query_as(&read).bind(key.clone()).fetch_optional(&mut *tx).await?;
            let sql = match row {
                Some((holder, expires, now)) if expires > now && holder != worker => None,
                Some(_) => Some(&take),
                None => Some(&insert),
            };
            let got: Option<(i64, i64)> = match sql {
                Some(sql) => {
                    sqlx::query_as(sql)
                        .bind(key)
                        .bind(worker.to_owned())
                        .bind(ttl)
                        .fetch_optional(&mut *tx)
                        .await?
                }
                None => None,
            };
            tx.commit().await?;
            Ok(got.map(lease))
        })
    }

    /// Extends `lease` to `ttl` from now, or `None` when it was lost
    /// (expired and taken over, or released).
    pub async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>> {
        let now = now_ms(self.db.dialect());
        let sql = format!(
            "UPDATE {LEASES} SET expires_unix_ms = {now} + $4 WHERE profile = $1 AND worker = $2 \
             AND generation = $3 AND expires_unix_ms > {now} RETURNING expires_unix_ms"
        );
        let expires: Option<i64> = on_db!(&self.db, p => sqlx::query_scalar(&sql)
            .bind(lease.profile.to_string())
            .bind(lease.worker.clone())
            .bind(lease.generation)
            .bind(ms(ttl))
            .fetch_optional(p)
            .await)
        .map_err(|e| SqlError::from(e).into_core("renew"))?;
        Ok(expires.map(|expires_unix_ms| Lease {
            expires_unix_ms,
            ..lease.clone()
        }))
    }

    /// Gives `lease` up so another worker may take the profile at once.
    /// False when it had already been lost.
    pub async fn release(&self, lease: &Lease) -> Result<bool> {
        let sql =
            format!("UPDATE {LEASES} SET expires_unix_ms = 0 WHERE profile = $1 AND worker = $2 AND generation = $3");
        let n = on_db!(&self.db, p => sqlx::query(&sql)
            .bind(lease.profile.to_string())
            .bind(lease.worker.clone())
            .bind(lease.generation)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| SqlError::from(e).into_core("release"))?;
        Ok(n > 0)
    }
}

#[async_trait]
impl StateStore for SqlStateStore {
    async fn load(&self, profile: ProfileId) -> Result<ProfileState> {
        let sql = format!("SELECT state FROM {STATE} WHERE profile = $1");
        let json: Option<String> = on_db!(&self.db, p => sqlx::query_scalar(&sql)
            .bind(profile.to_string())
            .fetch_optional(p)
            .await)
        .map_err(|e| SqlError::from(e).into_core("load state"))?;
        match json {
            None => Ok(ProfileState::default()),
            Some(j) => serde_json::from_str(&j).map_err(|e| {
                SqlError::InvalidData {
                    what: "state",
                    message: e.to_string(),
                }
                .into_core("load state")
                .with_object(profile)
            }),
        }
    }

    async fn save(&self, profile: ProfileId, state: &ProfileState) -> Result<()> {
        let json = to_json(state)?;
        let now = now_ms(self.db.dialect());
        let sql =
            format!("INSERT INTO {STATE} (profile, state, updated_unix_ms) VALUES ($1, $2, {now}) {UPSERT_STATE}");
        on_db!(&self.db, p => sqlx::query(&sql)
            .bind(profile.to_string())
            .bind(json)
            .execute(p)
            .await
            .map(drop))
        .map_err(|e| SqlError::from(e).into_core("save state"))?;
        Ok(())
    }
}

impl FencedStateStore {
    /// The lease this view writes for.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Appends a run report to the profile's history (with its summary
    /// and its objects' events: see [`FencedStateStore::record_run`]),
    /// unless the lease was taken over.
    pub async fn record(&self, report: &RunReport) -> Result<()> {
        self.record_run(&RunRecord::report(report)).await.map(drop)
    }

    /// Records a run of the lease's profile, its report (if any), its
    /// summary and its objects' events and names, in one transaction that
    /// first checks the lease row still names this lease: a permanent
    /// [`SqlError::LeaseLost`] and nothing written otherwise. The run's
    /// start is when the lease was taken. Returns the run's id.
    pub async fn record_run(&self, run: &RunRecord<'_>) -> Result<i64> {
        if run.profile != self.lease.profile {
            let message = format!(
                "the holder of the lease of profile {} cannot record a run of profile {}",
                self.lease.profile, run.profile
            );
            return Err(idsync_core::Error::new(idsync_core::ErrorKind::Internal, message)
                .with_backend(crate::NAME)
                .with_op("record"));
        }
        crate::history::write_run(&self.store.db, Some(&self.lease), run)
            .await
            .map_err(|e| e.into_core("record"))
    }

    /// `EXISTS (the lease row names this lease)`, with the worker and the
    /// generation as parameters `$n` and `$n+1` (the profile is `$1`).
    fn fence(&self, n: usize) -> String {
        let lock = match self.store.db.dialect() {
            Dialect::Postgres => " FOR SHARE",
            Dialect::Sqlite => "",
        };
        format!(
            "EXISTS (SELECT 1 FROM {LEASES} WHERE profile = $1 AND worker = ${n} AND generation = ${}{lock})",
            n + 1
        )
    }

    /// Runs `sql` (an insert fenced by [`Self::fence`]) with `values`, then
    /// the worker and the generation, in one transaction; no row written
    /// means the lease is lost.
    async fn write<const N: usize>(
        &self,
        what: &'static str,
        sql: &str,
        values: [String; N],
    ) -> std::result::Result<(), SqlError> {
        let profile = self.lease.profile.to_string();
        let holder = format!("SELECT worker, generation FROM {LEASES} WHERE profile = $1");
        let (written, now): (u64, Option<(String, i64)>) = on_db!(&self.store.db, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let mut query = sqlx::query(sql);
            for v in values {
                query = query.bind(v);
            }
            let written = query
                .bind(self.lease.worker.clone())
                .bind(self.lease.generation)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let now = if written == 0 {
                sqlx::query_as(&holder).bind(profile.clone()).fetch_optional(&mut *tx).await?
            } else {
                None
            };
            tx.commit().await?;
            (written, now)
        });
        if written > 0 {
            return Ok(());
        }
        tracing::error!(%profile, worker = %self.lease.worker, generation = self.lease.generation, ?now, "{what} refused: the lease was taken over");
        Err(SqlError::LeaseLost {
            profile,
            what,
            worker: self.lease.worker.clone(),
            generation: self.lease.generation,
            now,
        })
    }
}

#[async_trait]
impl StateStore for FencedStateStore {
    async fn load(&self, profile: ProfileId) -> Result<ProfileState> {
        self.store.load(profile).await
    }

    /// Saves the state of the lease's profile, unless the lease was taken
    /// over (a permanent [`SqlError::LeaseLost`]). This view saves no other
    /// profile's state.
    async fn save(&self, profile: ProfileId, state: &ProfileState) -> Result<()> {
        if profile != self.lease.profile {
            let message = format!(
                "the holder of the lease of profile {} cannot save the state of profile {profile}",
                self.lease.profile
            );
            return Err(idsync_core::Error::new(idsync_core::ErrorKind::Internal, message)
                .with_backend(crate::NAME)
                .with_op("save state"));
        }
        let json = to_json(state)?;
        let now = now_ms(self.store.db.dialect());
        let sql = format!(
            "INSERT INTO {STATE} (profile, state, updated_unix_ms) SELECT $1, $2, {now} WHERE {} {UPSERT_STATE}",
            self.fence(3)
        );
        self.write("the state", &sql, [profile.to_string(), json])
            .await
            .map_err(|e| e.into_core("save state"))
    }
}
