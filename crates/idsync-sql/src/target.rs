//! [`SqlTarget`]: an application's own tables as an idsync target.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use idsync_core::{
    Applied, Error, ExternalId, Fields, Link, Lookup, ObjectKind, ProfileId, Result, Target, TargetAccount,
    TargetCapabilities, TargetId, TargetOp,
};
use sqlx::postgres::PgDatabaseError;
use sqlx::{ColumnIndex, Decode, Row, Type};
use tracing::debug;

use crate::client::{Db, Dialect, on_db, quote};
use crate::config::{IdType, SqlTargetConfig, TableConfig};
use crate::error::{SqlError, classify};

mod apply;

/// One account table, with its identifiers quoted and its SELECT prepared.
#[derive(Debug)]
struct Tbl {
    kind: ObjectKind,
    table: String,
    id: String,
    id_type: IdType,
    /// Field → quoted column, in field order (the SELECT's order).
    columns: BTreeMap<String, String>,
    enabled: Option<String>,
    /// `SELECT id, columns…, enabled, l.profile, l.external_id FROM t LEFT JOIN links l …`
    select: String,
}

/// The most values one lookup query seeks (an `IN` list).
const LOOKUPS_PER_QUERY: usize = 500;

/// The prefix of group target ids.
const GROUP_PREFIX: &str = "group:";

fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::User => "user",
        ObjectKind::Group => "group",
    }
}

impl Tbl {
    fn new(kind: ObjectKind, cfg: &TableConfig, links: &str) -> Tbl {
        let id = quote(&cfg.id_column);
        let columns: BTreeMap<String, String> = cfg.columns.iter().map(|(f, c)| (f.clone(), quote(c))).collect();
        let enabled = cfg.enabled_column.as_deref().map(quote);
        let mut select = format!("SELECT CAST(t.{id} AS TEXT)");
        for c in columns.values() {
            select.push_str(&format!(", CAST(t.{c} AS TEXT)"));
        }
        match &enabled {
            Some(e) => select.push_str(&format!(", CAST(CASE WHEN t.{e} THEN 1 ELSE 0 END AS BIGINT)")),
            None => select.push_str(", CAST(1 AS BIGINT)"),
        }
        select.push_str(&format!(
            ", l.profile, l.external_id FROM {} t LEFT JOIN {links} l ON l.kind = '{}' AND l.row_id = CAST(t.{id} AS TEXT)",
            quote(&cfg.table),
            kind_name(kind)
        ));
        Tbl {
            kind,
            table: quote(&cfg.table),
            id,
            id_type: cfg.id_type,
            columns,
            enabled,
            select,
        }
    }

    /// `CAST($n AS <id type>)`: ids are always bound as text.
    fn param(&self, n: usize) -> String {
        self.cast(&format!("${n}"))
    }

    /// `CAST(<placeholder> AS <id type>)`.
    fn cast(&self, placeholder: &str) -> String {
        format!("CAST({placeholder} AS {})", self.id_type.sql())
    }

    /// The target id of a row. Group ids carry the prefix `group:` so that
    /// they never equal a user's id (both tables may count from 1).
    fn target_id(&self, row: String) -> TargetId {
        match self.kind {
            ObjectKind::User => TargetId(row),
            ObjectKind::Group => TargetId(format!("{GROUP_PREFIX}{row}")),
        }
    }

    /// The row id of a target id in its canonical text form, or `NotFound`
    /// when it cannot be one of this table's ids.
    fn canonical(&self, id: &TargetId) -> Result<String, SqlError> {
        let row = match self.kind {
            ObjectKind::User => Some(id.0.as_str()),
            ObjectKind::Group => id.0.strip_prefix(GROUP_PREFIX),
        };
        let row = row.ok_or_else(|| self.not_found(&id.0))?;
        match self.id_type {
            IdType::Text => Ok(row.to_owned()),
            IdType::Integer => row
                .trim()
                .parse::<i64>()
                .map(|n| n.to_string())
                .map_err(|_| SqlError::NotFound {
                    kind: kind_name(self.kind),
                    id: id.0.clone(),
                }),
        }
    }

    fn column(&self, field: &str) -> Result<&str, SqlError> {
        self.columns.get(field).map(String::as_str).ok_or_else(|| {
            SqlError::config(
                format!("{}s.columns.{field}", kind_name(self.kind)),
                format!("target field {field:?} is not mapped to a column"),
            )
        })
    }

    fn not_found(&self, id: &str) -> SqlError {
        SqlError::NotFound {
            kind: kind_name(self.kind),
            id: id.to_owned(),
        }
    }
}

/// What an operation's error names: the link of a create, else the
/// account's id (a membership change: the group and the member).
fn subject(op: &TargetOp) -> String {
    match op {
        TargetOp::Create { link, .. } => link.to_string(),
        TargetOp::SetLink { target, .. }
        | TargetOp::Update { target, .. }
        | TargetOp::SetEnabled { target, .. }
        | TargetOp::Delete { target, .. } => target.to_string(),
        TargetOp::AddMember { group, member } | TargetOp::RemoveMember { group, member } => {
            format!("{group} member {member}")
        }
        other => format!("{other:?}"),
    }
}

/// An account row as read: id, mapped values, enabled, link.
struct Raw {
    id: String,
    values: Vec<Option<String>>,
    enabled: i64,
    profile: Option<String>,
    external: Option<String>,
}

fn raw<R>(row: &R, n: usize) -> std::result::Result<Raw, sqlx::Error>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut values = Vec::with_capacity(n);
    for i in 0..n {
        values.push(row.try_get::<Option<String>, _>(1 + i)?);
    }
    Ok(Raw {
        id: row.try_get(0)?,
        values,
        enabled: row.try_get(1 + n)?,
        profile: row.try_get(2 + n)?,
        external: row.try_get(3 + n)?,
    })
}

/// An application's accounts in SQL tables (SQLite or PostgreSQL), with
/// idsync's links in a table beside them.
///
/// Reads and writes only the configured columns, each as text; the enabled
/// column is a boolean. Members of groups are users (nested groups are not
/// supported: a member id is always a row of the users table).
///
/// Writes go in batches of up to [`SqlTargetConfig::batch`] operations,
/// one transaction each ([`Target::apply_batch`]); [`Target::apply`] is a
/// batch of one.
///
/// ```no_run
/// # async fn demo() -> idsync_core::Result<()> {
/// use idsync_sql::{SqlTarget, SqlTargetConfig};
/// let target = SqlTarget::connect("sqlite://app.db?mode=rwc", SqlTargetConfig::default()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SqlTarget {
    db: Db,
    config: SqlTargetConfig,
    users: Tbl,
    groups: Option<Tbl>,
    /// (quoted table, group column, member column)
    members: Option<(String, String, String)>,
    links: String,
    /// Held by the transaction writing (on SQLite, one at a time).
    writer: futures::lock::Mutex<()>,
}

impl SqlTarget {
    /// Validates `config`, connects, creates whatever tables are missing
    /// ([`SqlTarget::create_schema`]) and checks that every configured
    /// table and column exists ([`SqlTarget::verify`]).
    ///
    /// `url` is `sqlite://path?mode=rwc` (creates the file),
    /// `sqlite::memory:` or `postgres://user@host:port/db`.
    pub async fn connect(url: &str, config: SqlTargetConfig) -> Result<SqlTarget> {
        let t = SqlTarget::open(url, config).await?;
        t.create_schema().await?;
        t.verify().await?;
        Ok(t)
    }

    /// Validates `config` and connects, creating and checking nothing.
    pub async fn open(url: &str, config: SqlTargetConfig) -> Result<SqlTarget> {
        config.validate().map_err(|e| e.into_core("connect"))?;
        let db = Db::connect(url).await.map_err(|e| e.into_core("connect"))?;
        let links = quote(&config.links_table);
        let users = Tbl::new(ObjectKind::User, &config.users, &links);
        let groups = config.groups.as_ref().map(|g| Tbl::new(ObjectKind::Group, g, &links));
        let members = match (&config.groups, &config.membership) {
            (Some(_), Some(m)) => Some((quote(&m.table), quote(&m.group_column), quote(&m.member_column))),
            _ => None,
        };
        Ok(SqlTarget {
            db,
            config,
            users,
            groups,
            members,
            links,
            writer: futures::lock::Mutex::new(()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SqlTargetConfig {
        &self.config
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    /// Creates the configured tables that do not exist yet (`CREATE TABLE
    /// IF NOT EXISTS`): users and groups with their id, one text column per
    /// mapped field and a boolean enabled column (default true), the
    /// membership table and the links table. Existing tables are left
    /// alone.
    pub async fn create_schema(&self) -> Result<()> {
        let d = self.db.dialect();
        let key = |t: &Tbl| match t.id_type {
            IdType::Integer => d.integer_key(),
            IdType::Text => "TEXT PRIMARY KEY",
        };
        let table_ddl = |t: &Tbl| {
            let mut cols = vec![format!("{} {}", t.id, key(t))];
            cols.extend(t.columns.values().map(|c| format!("{c} TEXT")));
            if let Some(e) = &t.enabled {
                cols.push(format!("{e} BOOLEAN NOT NULL DEFAULT TRUE"));
            }
            format!("CREATE TABLE IF NOT EXISTS {} ({})", t.table, cols.join(", "))
        };
        let mut ddl = vec![table_ddl(&self.users)];
        if let (Some(g), Some((m, gc, mc))) = (&self.groups, &self.members) {
            ddl.push(table_ddl(g));
            ddl.push(format!(
                "CREATE TABLE IF NOT EXISTS {m} ({gc} {} NOT NULL REFERENCES {}({}) ON DELETE CASCADE, \
                 {mc} {} NOT NULL REFERENCES {}({}) ON DELETE CASCADE, PRIMARY KEY ({gc}, {mc}))",
                g.id_type.sql(),
                g.table,
                g.id,
                self.users.id_type.sql(),
                self.users.table,
                self.users.id,
            ));
        }
        ddl.push(format!(
            "CREATE TABLE IF NOT EXISTS {} (profile TEXT NOT NULL, external_id TEXT NOT NULL, kind TEXT NOT NULL, \
             row_id TEXT NOT NULL, PRIMARY KEY (profile, external_id), UNIQUE (kind, row_id))",
            self.links
        ));
        self.db.run_ddl(&ddl).await.map_err(|e| e.into_core("create schema"))
    }

    /// Checks that every configured table and column can be read. An error
    /// names the configuration field (`users.columns.email`, …).
    pub async fn verify(&self) -> Result<()> {
        let mut probes: Vec<(String, String)> = Vec::new();
        let mut table = |at: &str, t: &Tbl, cfg: &TableConfig| {
            probes.push((format!("{at}.table"), format!("SELECT 1 FROM {} WHERE 1 = 0", t.table)));
            probes.push((
                format!("{at}.id_column"),
                format!("SELECT t.{} FROM {} t WHERE 1 = 0", t.id, t.table),
            ));
            if let Some(e) = &t.enabled {
                probes.push((
                    format!("{at}.enabled_column"),
                    format!("SELECT t.{e} FROM {} t WHERE 1 = 0", t.table),
                ));
            }
            for (field, c) in &t.columns {
                let _ = cfg;
                probes.push((
                    format!("{at}.columns.{field}"),
                    format!("SELECT t.{c} FROM {} t WHERE 1 = 0", t.table),
                ));
            }
        };
        table("users", &self.users, &self.config.users);
        if let (Some(g), Some(cfg)) = (&self.groups, &self.config.groups) {
            table("groups", g, cfg);
        }
        if let Some((m, gc, mc)) = &self.members {
            probes.push(("membership.table".into(), format!("SELECT 1 FROM {m} WHERE 1 = 0")));
            probes.push((
                "membership.group_column".into(),
                format!("SELECT t.{gc} FROM {m} t WHERE 1 = 0"),
            ));
            probes.push((
                "membership.member_column".into(),
                format!("SELECT t.{mc} FROM {m} t WHERE 1 = 0"),
            ));
        }
        probes.push((
            "links_table".into(),
            format!(
                "SELECT t.profile, t.external_id, t.kind, t.row_id FROM {} t WHERE 1 = 0",
                self.links
            ),
        ));
        for (field, sql) in probes {
            let r = on_db!(&self.db, p => sqlx::query(&sql).fetch_optional(p).await.map(drop));
            if let Err(e) = r {
                let err = if classify(&e).0 == idsync_core::ErrorKind::Config {
                    SqlError::config(field, format!("cannot be read: {e}"))
                } else {
                    SqlError::Database(e)
                };
                return Err(err.into_core("verify"));
            }
        }
        Ok(())
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.db.close().await
    }

    fn table(&self, kind: ObjectKind) -> Result<&Tbl, SqlError> {
        match kind {
            ObjectKind::User => Ok(&self.users),
            ObjectKind::Group => self.groups.as_ref().ok_or(SqlError::Unsupported("groups")),
        }
    }

    fn account(&self, t: &Tbl, r: Raw) -> Result<TargetAccount, SqlError> {
        let link = match (r.profile, r.external) {
            (Some(p), Some(x)) => Some(Link {
                profile: ProfileId(uuid::Uuid::parse_str(&p).map_err(|e| SqlError::InvalidData {
                    what: "link profile",
                    message: format!("{p:?}: {e}"),
                })?),
                external: ExternalId(x),
            }),
            _ => None,
        };
        let fields: Fields = t
            .columns
            .keys()
            .zip(r.values)
            .filter_map(|(f, v)| v.map(|v| (f.clone(), v)))
            .collect();
        Ok(TargetAccount {
            id: t.target_id(r.id),
            link,
            kind: t.kind,
            fields,
            enabled: r.enabled != 0,
            members: Vec::new(),
        })
    }

    /// Accounts of `t` matching `sql_where`, whose placeholders take
    /// `params` in order.
    async fn select(&self, t: &Tbl, sql_where: &str, params: &[&str]) -> Result<Vec<TargetAccount>, SqlError> {
        let sql = format!("{} WHERE {sql_where}", t.select);
        let n = t.columns.len();
        let raws = on_db!(&self.db, p => {
            let q = params.iter().fold(sqlx::query(&sql), |q, v| q.bind(*v));
            let rows = q.fetch_all(p).await?;
            rows.iter().map(|r| raw(r, n)).collect::<std::result::Result<Vec<_>, _>>()?
        });
        raws.into_iter().map(|r| self.account(t, r)).collect()
    }

    /// Fills in the members of groups.
    async fn with_members(
        &self,
        mut groups: Vec<TargetAccount>,
        profile: Option<&str>,
    ) -> Result<Vec<TargetAccount>, SqlError> {
        let Some((m, gc, mc)) = &self.members else {
            return Ok(groups);
        };
        if groups.is_empty() {
            return Ok(groups);
        }
        let mut by_group: BTreeMap<String, Vec<TargetId>> = BTreeMap::new();
        let pairs: Vec<(String, String)> = match profile {
            Some(profile) => {
                let sql = format!(
                    "SELECT CAST(m.{gc} AS TEXT), CAST(m.{mc} AS TEXT) FROM {m} m JOIN {} l ON l.kind = 'group' \
                     AND l.row_id = CAST(m.{gc} AS TEXT) WHERE l.profile = $1 ORDER BY 1, 2",
                    self.links
                );
                on_db!(&self.db, p => sqlx::query_as(&sql).bind(profile.to_owned()).fetch_all(p).await?)
            }
            None => {
                let g = self.groups.as_ref().ok_or(SqlError::Unsupported("groups"))?;
                let sql = format!(
                    "SELECT CAST(m.{gc} AS TEXT), CAST(m.{mc} AS TEXT) FROM {m} m WHERE m.{gc} = {} ORDER BY 2",
                    g.param(1)
                );
                let mut all = Vec::new();
                for group in &groups {
                    let id = g.canonical(&group.id)?;
                    let rows: Vec<(String, String)> =
                        on_db!(&self.db, p => sqlx::query_as(&sql).bind(id).fetch_all(p).await?);
                    all.extend(rows);
                }
                all
            }
        };
        for (g, member) in pairs {
            by_group.entry(g).or_default().push(TargetId(member));
        }
        let table = self.groups.as_ref().ok_or(SqlError::Unsupported("groups"))?;
        for g in &mut groups {
            g.members = by_group.remove(&table.canonical(&g.id)?).unwrap_or_default();
        }
        Ok(groups)
    }

    /// Applies one operation in its own transaction. When another writer
    /// created the same link meanwhile (the links table's key refuses the
    /// second), a create answers with that writer's account.
    async fn apply_one(&self, op: &TargetOp) -> Result<Applied> {
        let r = match self.write(std::slice::from_ref(op)).await {
            Ok(mut results) => results
                .pop()
                .unwrap_or(Err(SqlError::Internal("a batch of one gave no result"))),
            Err(e) => Err(e),
        };
        let r = match (r, op) {
            (Err(SqlError::Database(e)), TargetOp::Create { kind, link, .. })
                if classify(&e).0 == idsync_core::ErrorKind::AlreadyExists =>
            {
                match self.linked_to(*kind, link).await {
                    Ok(Some(id)) => Ok(Applied::to(id).with_note("already existed")),
                    Ok(None) => Err(SqlError::Database(e)),
                    Err(other) => Err(other),
                }
            }
            (r, _) => r,
        };
        match r {
            Ok(applied) => Ok(applied),
            Err(e) => Err(self.named(op, e).await),
        }
    }

    /// The account of `kind` that `link` is linked to.
    async fn linked_to(&self, kind: ObjectKind, link: &Link) -> Result<Option<TargetId>, SqlError> {
        let find = format!(
            "SELECT kind, row_id FROM {} WHERE profile = $1 AND external_id = $2",
            self.links
        );
        let existing: Option<(String, String)> = on_db!(&self.db, p => sqlx::query_as(&find)
            .bind(link.profile.to_string())
            .bind(link.external.0.clone())
            .fetch_optional(p)
            .await?);
        match existing {
            Some((k, id)) if k == kind_name(kind) => Ok(Some(self.table(kind)?.target_id(id))),
            _ => Ok(None),
        }
    }

    /// `e` as the core's error, naming the operation's object (the link of
    /// a create, else the account's id) and, when the database refused one
    /// of its values, the field and its column.
    async fn named(&self, op: &TargetOp, e: SqlError) -> Error {
        let e = match e {
            SqlError::Database(source) => match self.culprit(op, &source).await {
                Some((field, column)) => SqlError::Refused { field, column, source },
                None => SqlError::Database(source),
            },
            e => e,
        };
        let e = e.into_core("apply");
        match e.object() {
            Some(_) => e,
            None => e.with_object(subject(op)),
        }
    }

    /// The field (and its column) whose value of `op` the database
    /// refused: the column that a NOT NULL or CHECK constraint names
    /// (PostgreSQL's column or constraint name, SQLite's text after
    /// "constraint failed:"; the longest column name found in it), or, for
    /// PostgreSQL's "value too long" (which names no column), the written
    /// column whose declared length the value exceeds.
    async fn culprit(&self, op: &TargetOp, e: &sqlx::Error) -> Option<(String, String)> {
        let (kind, values): (ObjectKind, Vec<(&str, &str)>) = match op {
            TargetOp::Create { kind, fields, .. } => {
                (*kind, fields.iter().map(|(f, v)| (f.as_str(), v.as_str())).collect())
            }
            TargetOp::Update { kind, changes, .. } => (
                *kind,
                changes
                    .iter()
                    .map(|c| (c.field.as_str(), c.new.as_deref().unwrap_or("")))
                    .collect(),
            ),
            _ => return None,
        };
        let cfg = match kind {
            ObjectKind::User => &self.config.users,
            ObjectKind::Group => self.config.groups.as_ref()?,
        };
        let db = e.as_database_error()?;
        let named = match db.try_downcast_ref::<PgDatabaseError>() {
            Some(pg) => format!("{} {}", pg.column().unwrap_or(""), pg.constraint().unwrap_or("")),
            None => db
                .message()
                .split_once("constraint failed:")
                .map(|(_, s)| s.to_owned())
                .unwrap_or_default(),
        }
        .to_lowercase();
        let by_name = cfg
            .columns
            .iter()
            .filter(|(_, c)| named.contains(&c.to_lowercase()))
            .max_by_key(|(_, c)| c.len());
        if let Some((f, c)) = by_name {
            return Some((f.clone(), c.clone()));
        }
        if db.code().as_deref() != Some("22001") {
            return None;
        }
        let Db::Postgres(pool) = &self.db else {
            return None;
        };
        // The declared lengths of the table's varchar and char columns.
        let sql = "SELECT CAST(a.attname AS TEXT), CAST(a.atttypmod - 4 AS BIGINT) FROM pg_attribute a \
                   WHERE a.attrelid = CAST($1 AS regclass) AND a.attnum > 0 AND NOT a.attisdropped \
                   AND a.atttypmod > 4 AND a.atttypid IN (CAST('varchar' AS regtype), CAST('bpchar' AS regtype))";
        let limits: Vec<(String, i64)> = sqlx::query_as(sql)
            .bind(self.table(kind).ok()?.table.clone())
            .fetch_all(pool)
            .await
            .ok()?;
        values.into_iter().find_map(|(f, v)| {
            let c = cfg.columns.get(f)?;
            let (_, n) = limits.iter().find(|(name, _)| name == c)?;
            (v.chars().count() as i64 > *n).then(|| (f.to_owned(), c.clone()))
        })
    }

    async fn linked_groups(&self, profile: String) -> Result<Vec<TargetAccount>, SqlError> {
        let Some(g) = &self.groups else {
            return Ok(Vec::new());
        };
        let groups = self.select(g, "l.profile = $1", &[&profile]).await?;
        self.with_members(groups, Some(&profile)).await
    }
}

#[async_trait]
impl Target for SqlTarget {
    fn backend(&self) -> &'static str {
        crate::NAME
    }

    fn capabilities(&self) -> TargetCapabilities {
        TargetCapabilities::default()
            .with_groups(self.groups.is_some() && self.members.is_some())
            .with_disable(self.users.enabled.is_some())
            .with_disable_groups(self.groups.as_ref().is_some_and(|g| g.enabled.is_some()))
            .with_delete(self.config.allow_delete)
            .with_veto(false)
            .with_batch(self.config.batch)
    }

    /// The profile's users (one query), then its groups with their
    /// members (two queries).
    async fn linked(&self, profile: ProfileId) -> Result<BoxStream<'_, Result<TargetAccount>>> {
        let profile = profile.to_string();
        let t = &self.users;
        let n = t.columns.len();
        let sql = format!("{} WHERE l.profile = $1", t.select);
        let users: BoxStream<'_, Result<TargetAccount>> = on_db!(&self.db, p => {
            let rows: Vec<_> = sqlx::query(&sql).bind(profile.clone()).fetch_all(p).await
                .map_err(|e| SqlError::from(e).into_core("linked"))?;
            stream::iter(rows.into_iter().map(move |row| {
                raw(&row, n)
                    .map_err(SqlError::from)
                    .and_then(|r| self.account(t, r))
                    .map_err(|e| e.into_core("linked"))
            }))
            .boxed()
        });
        let groups = stream::once(async move { self.linked_groups(profile).await }).flat_map(|r| {
            stream::iter(match r {
                Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e.into_core("linked"))],
            })
        });
        Ok(users.chain(groups).boxed())
    }

    /// One query per kind and field for up to `LOOKUPS_PER_QUERY` (500)
    /// values (`IN` lists), then the members of the groups found.
    async fn lookup(&self, lookups: &[Lookup]) -> Result<Vec<TargetAccount>> {
        // (kind, field; None: the external id) → the values sought.
        let mut sought: BTreeMap<(ObjectKind, Option<&str>), BTreeSet<String>> = BTreeMap::new();
        for l in lookups {
            let (kind, field, value) = match l {
                Lookup::Field { kind, field, value } => (*kind, Some(field.as_str()), value.trim().to_lowercase()),
                Lookup::External { kind, external } => (*kind, None, external.0.clone()),
                other => return Err(idsync_core::unsupported(crate::NAME, &format!("{other:?}"))),
            };
            if kind == ObjectKind::Group && self.groups.is_none() {
                // No groups table: no groups to find.
                continue;
            }
            sought.entry((kind, field)).or_default().insert(value);
        }
        let mut seen = BTreeSet::new();
        let mut users = Vec::new();
        let mut groups = Vec::new();
        for ((kind, field), values) in sought {
            let t = self.table(kind).map_err(|e| e.into_core("lookup"))?;
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            for chunk in values.chunks(LOOKUPS_PER_QUERY) {
                let d = self.db.dialect();
                let list = (1..=chunk.len())
                    .map(|n| d.placeholder(n))
                    .collect::<Vec<_>>()
                    .join(", ");
                let w = match field {
                    Some(field) => {
                        let c = t.column(field).map_err(|e| e.into_core("lookup"))?;
                        format!("LOWER(TRIM(CAST(t.{c} AS TEXT))) IN ({list})")
                    }
                    None => format!("l.external_id IN ({list})"),
                };
                for a in self.select(t, &w, chunk).await.map_err(|e| e.into_core("lookup"))? {
                    if seen.insert((kind, a.id.clone())) {
                        match kind {
                            ObjectKind::User => users.push(a),
                            ObjectKind::Group => groups.push(a),
                        }
                    }
                }
            }
        }
        let groups = self
            .with_members(groups, None)
            .await
            .map_err(|e| e.into_core("lookup"))?;
        users.extend(groups);
        Ok(users)
    }

    async fn apply(&self, op: &TargetOp) -> Result<Applied> {
        self.apply_one(op).await
    }

    /// One transaction for the whole batch (creates and membership changes
    /// in multi-row statements). When that transaction fails it is rolled
    /// back and, unless the failure is transient (a locked database, a lost
    /// connection: every operation gets it, and the engine retries them),
    /// each operation is applied again in its own transaction, so that an
    /// error names its row and the other rows commit.
    async fn apply_batch(&self, ops: &[TargetOp]) -> Vec<Result<Applied>> {
        if ops.len() > 1 {
            match self.write(ops).await {
                Ok(results) => {
                    let mut out = Vec::with_capacity(ops.len());
                    for (r, op) in results.into_iter().zip(ops) {
                        out.push(match r {
                            Ok(applied) => Ok(applied),
                            Err(e) => Err(self.named(op, e).await),
                        });
                    }
                    return out;
                }
                Err(SqlError::Database(e)) if classify(&e).1 => {
                    let e = SqlError::Database(e).into_core("apply");
                    return ops
                        .iter()
                        .map(|op| {
                            Err(Error::new(e.kind(), e.message())
                                .with_backend(crate::NAME)
                                .with_op("apply")
                                .with_object(subject(op))
                                .transient())
                        })
                        .collect();
                }
                Err(e) => debug!(error = %e, ops = ops.len(), "the batch failed: applying it one operation at a time"),
            }
        }
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            out.push(self.apply_one(op).await);
        }
        out
    }
}
