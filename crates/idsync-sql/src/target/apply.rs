//! The write path of [`SqlTarget`]: the operations of a batch in one
//! transaction, creates and membership changes in multi-row statements.

use std::collections::{BTreeMap, HashMap, HashSet};

use idsync_core::{Applied, FieldChange, Fields, Link, ObjectKind, TargetId, TargetOp};
use tracing::warn;

use super::{SqlTarget, Tbl, kind_name};
use crate::client::{Dialect, TextRow, Tx};
use crate::config::IdType;
use crate::error::SqlError;

/// The most parameters one statement binds (SQLite takes up to 32,766,
/// PostgreSQL 65,535).
const MAX_PARAMS: usize = 30_000;

/// One operation's result inside a batch.
pub(super) type Outcome = Result<Applied, SqlError>;

/// The placeholders of parameters `from` to `from + n - 1`, each wrapped by
/// `wrap` (a cast, or nothing), separated by commas. Statements built from
/// lists use [`Dialect::placeholder`], so their parameters are bound in the
/// order the SQL text takes them.
fn params(d: Dialect, from: usize, n: usize, wrap: impl Fn(String) -> String) -> String {
    (from..from + n)
        .map(|i| wrap(d.placeholder(i)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plain(p: String) -> String {
    p
}

/// `r` as an operation's own result, or the error that fails the whole
/// transaction: a database error (after one, PostgreSQL refuses every
/// further statement of the transaction).
fn own<T>(r: Result<T, SqlError>) -> Result<Result<T, SqlError>, SqlError> {
    match r {
        Err(e @ SqlError::Database(_)) => Err(e),
        r => Ok(r),
    }
}

/// A create whose link the table holds for another kind of account.
fn linked_elsewhere(link: &Link, kind: &str, id: &str) -> SqlError {
    SqlError::InvalidData {
        what: "link",
        message: format!("{link} is already linked to {kind} {id}"),
    }
}

impl SqlTarget {
    /// Applies `ops` in one transaction and commits it. An operation's own
    /// failure that leaves the transaction sound (no such account, a field
    /// without a column, a link held by another kind) is its result; a
    /// database error fails the whole, which is rolled back.
    ///
    /// Creates come first, then the other operations in order, then the
    /// membership changes (the engine never batches operations that depend
    /// on each other).
    pub(super) async fn write(&self, ops: &[TargetOp]) -> Result<Vec<Outcome>, SqlError> {
        // SQLite takes one writer at a time: queue this target's writers
        // here rather than in SQLite's busy handler, which polls with
        // sleeps of up to 100 ms and leaves the database idle between.
        let _writer = match self.db.dialect() {
            Dialect::Sqlite => Some(self.writer.lock().await),
            Dialect::Postgres => None,
        };
        let mut tx = self.db.begin().await?;
        let mut out: Vec<Option<Outcome>> = ops.iter().map(|_| None).collect();
        self.create_all(&mut tx, ops, &mut out).await?;
        for (op, slot) in ops.iter().zip(&mut out) {
            let (target, r) = match op {
                TargetOp::Create { .. } | TargetOp::AddMember { .. } | TargetOp::RemoveMember { .. } => continue,
                TargetOp::SetLink { target, kind, link } => (target, self.set_link(&mut tx, target, *kind, link).await),
                TargetOp::Update { target, kind, changes } => {
                    (target, self.update(&mut tx, target, *kind, changes).await)
                }
                TargetOp::SetEnabled { target, kind, enabled } => {
                    (target, self.set_enabled(&mut tx, target, *kind, *enabled).await)
                }
                TargetOp::Delete { target, kind } => (target, self.delete(&mut tx, target, *kind).await),
                _ => {
                    *slot = Some(Err(SqlError::Unsupported("an operation newer than this target")));
                    continue;
                }
            };
            *slot = Some(own(r)?.map(|()| Applied::to(target.clone())));
        }
        self.members_all(&mut tx, ops, &mut out).await?;
        tx.commit().await?;
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or(Err(SqlError::Internal("an operation of the batch was left out"))))
            .collect())
    }

    /// The batch's creates: one query for the links that exist already,
    /// one multi-row INSERT per table and set of fields, one for the new
    /// links. A create whose link exists (before or earlier in the batch)
    /// answers with that account.
    async fn create_all(&self, tx: &mut Tx, ops: &[TargetOp], out: &mut [Option<Outcome>]) -> Result<(), SqlError> {
        let creates: Vec<(usize, ObjectKind, &Link, &Fields)> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| match op {
                TargetOp::Create { kind, link, fields } => Some((i, *kind, link, fields)),
                _ => None,
            })
            .collect();
        if creates.is_empty() {
            return Ok(());
        }
        let existing = self.links_of(tx, creates.iter().map(|c| c.2)).await?;
        // The rows to insert, by table and set of fields: indexes into `creates`.
        let mut new: BTreeMap<(ObjectKind, Vec<&str>), Vec<usize>> = BTreeMap::new();
        // The first create of each link, and the later ones: (op, first op).
        let mut first: HashMap<&Link, usize> = HashMap::new();
        let mut again: Vec<(usize, usize)> = Vec::new();
        for (n, &(i, kind, link, fields)) in creates.iter().enumerate() {
            let t = match self.table(kind) {
                Ok(t) => t,
                Err(e) => {
                    out[i] = Some(Err(e));
                    continue;
                }
            };
            if let Some((k, id)) = existing.get(&(link.profile.to_string(), link.external.0.clone())) {
                out[i] = Some(if k == kind_name(kind) {
                    Ok(Applied::to(t.target_id(id.clone())).with_note("already existed"))
                } else {
                    Err(linked_elsewhere(link, k, id))
                });
                continue;
            }
            if let Some(&j) = first.get(link) {
                again.push((i, j));
                continue;
            }
            if let Err(e) = fields.keys().try_for_each(|f| t.column(f).map(drop)) {
                out[i] = Some(Err(e));
                continue;
            }
            first.insert(link, i);
            new.entry((kind, fields.keys().map(String::as_str).collect()))
                .or_default()
                .push(n);
        }
        let mut links: Vec<(&Link, ObjectKind, String)> = Vec::new();
        for ((kind, names), group) in new {
            let t = self.table(kind)?;
            let rows: Vec<&Fields> = group.iter().map(|&n| creates[n].3).collect();
            let ids = self.insert_rows(tx, t, &names, &rows).await?;
            for (&n, id) in group.iter().zip(ids) {
                let (i, kind, link, _) = creates[n];
                out[i] = Some(Ok(Applied::to(t.target_id(id.clone()))));
                links.push((link, kind, id));
            }
        }
        self.insert_links(tx, &links).await?;
        for (i, j) in again {
            out[i] = Some(match &out[j] {
                Some(Ok(Applied { target: Some(id), .. })) => Ok(Applied::to(id.clone()).with_note("already existed")),
                _ => Err(SqlError::Internal("a repeated create lost its first")),
            });
        }
        Ok(())
    }

    /// Which of `links` the links table holds: (profile, external id) →
    /// (kind, row id).
    async fn links_of<'l>(
        &self,
        tx: &mut Tx,
        links: impl Iterator<Item = &'l Link>,
    ) -> Result<HashMap<(String, String), (String, String)>, SqlError> {
        let mut by_profile: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for l in links {
            by_profile.entry(l.profile.to_string()).or_default().push(&l.external.0);
        }
        let mut found = HashMap::new();
        for (profile, externals) in &by_profile {
            for chunk in externals.chunks(MAX_PARAMS - 1) {
                let d = self.db.dialect();
                let sql = format!(
                    "SELECT external_id, kind, row_id FROM {} WHERE profile = {} AND external_id IN ({})",
                    self.links,
                    d.placeholder(1),
                    params(d, 2, chunk.len(), plain)
                );
                let binds: Vec<Option<&str>> = std::iter::once(Some(profile.as_str()))
                    .chain(chunk.iter().map(|x| Some(*x)))
                    .collect();
                for row in tx.rows(&sql, &binds).await? {
                    if let [Some(x), Some(k), Some(id)] = &row[..] {
                        found.insert((profile.clone(), x.clone()), (k.clone(), id.clone()));
                    }
                }
            }
        }
        Ok(found)
    }

    /// Inserts one row per entry of `rows`, each holding exactly the
    /// fields `names` (and enabled, when the table has the column), and
    /// returns their ids in the same order. Rows go in multi-row INSERTs;
    /// the rows those return are matched to the inserted ones by position,
    /// else by their values (rows with equal values are alike, so any
    /// pairing of them does). When the database returns values that differ
    /// from those inserted (a column of another type, a trigger), the
    /// statement is undone (to a savepoint) and its rows go in one by one.
    async fn insert_rows(
        &self,
        tx: &mut Tx,
        t: &Tbl,
        names: &[&str],
        rows: &[&Fields],
    ) -> Result<Vec<String>, SqlError> {
        let text_id = t.id_type == IdType::Text;
        let mut columns: Vec<&str> = names.iter().map(|f| t.column(f)).collect::<Result<_, _>>()?;
        let ids: Vec<String> = match text_id {
            true => rows.iter().map(|_| uuid::Uuid::new_v4().to_string()).collect(),
            false => Vec::new(),
        };
        if text_id {
            columns.push(&t.id);
        }
        if columns.is_empty() && t.enabled.is_none() {
            // No value to give: one `DEFAULT VALUES` row at a time.
            let sql = format!(
                "INSERT INTO {} DEFAULT VALUES RETURNING CAST({} AS TEXT)",
                t.table, t.id
            );
            let mut out = Vec::with_capacity(rows.len());
            for _ in rows {
                let returned = tx.rows(&sql, &[]).await?;
                out.extend(returned.into_iter().next().and_then(|r| r.into_iter().next().flatten()));
            }
            return Ok(out);
        }
        let per_row = columns.len();
        let enabled = t.enabled.as_deref().map(|e| (e, "TRUE"));
        if let Some((e, _)) = enabled {
            columns.push(e);
        }
        // RETURNING the id, then what identifies the row: its id again when
        // idsync chose it, else its values.
        let mut returning = format!("CAST({} AS TEXT)", t.id);
        let key_columns = if text_id {
            &columns[names.len()..]
        } else {
            &columns[..names.len()]
        };
        for c in key_columns {
            returning.push_str(&format!(", CAST({c} AS TEXT)"));
        }
        let values = |r: usize| -> Vec<Option<&str>> {
            names
                .iter()
                .map(|f| rows[r].get(*f).map(String::as_str))
                .chain(ids.get(r).map(|id| Some(id.as_str())))
                .collect()
        };
        let key = |r: usize| -> Vec<Option<&str>> {
            match ids.get(r) {
                Some(id) => vec![Some(id.as_str())],
                None => values(r),
            }
        };
        let insert = |n: usize| {
            let tuples: Vec<String> = (0..n)
                .map(|k| {
                    let mut v: Vec<String> = (0..per_row)
                        .map(|c| self.db.dialect().placeholder(k * per_row + c + 1))
                        .collect();
                    v.extend(enabled.map(|(_, on)| on.to_owned()));
                    format!("({})", v.join(", "))
                })
                .collect();
            format!(
                "INSERT INTO {} ({}) VALUES {} RETURNING {returning}",
                t.table,
                columns.join(", "),
                tuples.join(", ")
            )
        };
        let step = (MAX_PARAMS / per_row.max(1)).max(1);
        let mut out = Vec::with_capacity(rows.len());
        for start in (0..rows.len()).step_by(step) {
            let end = (start + step).min(rows.len());
            let binds: Vec<Option<&str>> = (start..end).flat_map(values).collect();
            if end - start == 1 {
                let returned = tx.rows(&insert(1), &binds).await?;
                out.extend(returned.into_iter().next().and_then(|r| r.into_iter().next().flatten()));
                continue;
            }
            tx.execute("SAVEPOINT idsync_rows", &[]).await?;
            let returned = tx.rows(&insert(end - start), &binds).await?;
            let expected: Vec<Vec<Option<&str>>> = (start..end).map(key).collect();
            match matched(&returned, &expected) {
                Some(found) => out.extend(found),
                None => {
                    warn!(
                        table = %t.table,
                        "the rows returned differ from the rows inserted (column types or triggers): inserting them one by one"
                    );
                    tx.execute("ROLLBACK TO SAVEPOINT idsync_rows", &[]).await?;
                    for r in start..end {
                        let returned = tx.rows(&insert(1), &values(r)).await?;
                        out.extend(returned.into_iter().next().and_then(|r| r.into_iter().next().flatten()));
                    }
                }
            }
            tx.execute("RELEASE SAVEPOINT idsync_rows", &[]).await?;
        }
        if out.len() != rows.len() {
            return Err(SqlError::Internal("an INSERT returned no id"));
        }
        Ok(out)
    }

    /// Inserts the links of new accounts: (link, kind, row id).
    async fn insert_links(&self, tx: &mut Tx, links: &[(&Link, ObjectKind, String)]) -> Result<(), SqlError> {
        for chunk in links.chunks(MAX_PARAMS / 4) {
            let tuples: Vec<String> = (0..chunk.len())
                .map(|k| format!("({})", params(self.db.dialect(), 4 * k + 1, 4, plain)))
                .collect();
            let sql = format!(
                "INSERT INTO {} (profile, external_id, kind, row_id) VALUES {}",
                self.links,
                tuples.join(", ")
            );
            let owned: Vec<[String; 2]> = chunk
                .iter()
                .map(|(l, _, _)| [l.profile.to_string(), l.external.0.clone()])
                .collect();
            let binds: Vec<Option<&str>> = chunk
                .iter()
                .zip(&owned)
                .flat_map(|((_, kind, id), [p, x])| {
                    [
                        Some(p.as_str()),
                        Some(x.as_str()),
                        Some(kind_name(*kind)),
                        Some(id.as_str()),
                    ]
                })
                .collect();
            tx.execute(&sql, &binds).await?;
        }
        Ok(())
    }

    async fn exists(&self, tx: &mut Tx, t: &Tbl, id: &str) -> Result<bool, SqlError> {
        let sql = format!(
            "SELECT CAST(t.{id} AS TEXT) FROM {} t WHERE t.{id} = {}",
            t.table,
            t.param(1),
            id = t.id
        );
        Ok(!tx.rows(&sql, &[Some(id)]).await?.is_empty())
    }

    async fn set_link(&self, tx: &mut Tx, target: &TargetId, kind: ObjectKind, link: &Link) -> Result<(), SqlError> {
        let t = self.table(kind)?;
        let id = t.canonical(target)?;
        if !self.exists(tx, t, &id).await? {
            return Err(t.not_found(&target.0));
        }
        let drop_old = format!("DELETE FROM {} WHERE kind = $1 AND row_id = $2", self.links);
        tx.execute(&drop_old, &[Some(kind_name(kind)), Some(&id)]).await?;
        let add = format!(
            "INSERT INTO {} (profile, external_id, kind, row_id) VALUES ($1, $2, $3, $4)",
            self.links
        );
        let profile = link.profile.to_string();
        tx.execute(
            &add,
            &[Some(&profile), Some(&link.external.0), Some(kind_name(kind)), Some(&id)],
        )
        .await?;
        Ok(())
    }

    async fn update(
        &self,
        tx: &mut Tx,
        target: &TargetId,
        kind: ObjectKind,
        changes: &[FieldChange],
    ) -> Result<(), SqlError> {
        let t = self.table(kind)?;
        let id = t.canonical(target)?;
        if changes.is_empty() {
            return match self.exists(tx, t, &id).await? {
                true => Ok(()),
                false => Err(t.not_found(&target.0)),
            };
        }
        let mut sets = Vec::new();
        for (i, c) in changes.iter().enumerate() {
            sets.push(format!("{} = ${}", t.column(&c.field)?, i + 1));
        }
        let sql = format!(
            "UPDATE {} SET {} WHERE {}.{} = {}",
            t.table,
            sets.join(", "),
            t.table,
            t.id,
            t.param(changes.len() + 1)
        );
        let binds: Vec<Option<&str>> = changes
            .iter()
            .map(|c| c.new.as_deref())
            .chain([Some(id.as_str())])
            .collect();
        match tx.execute(&sql, &binds).await? {
            0 => Err(t.not_found(&target.0)),
            _ => Ok(()),
        }
    }

    async fn set_enabled(
        &self,
        tx: &mut Tx,
        target: &TargetId,
        kind: ObjectKind,
        enabled: bool,
    ) -> Result<(), SqlError> {
        let t = self.table(kind)?;
        let Some(e) = &t.enabled else {
            return Err(SqlError::Unsupported("disabling (no enabled_column)"));
        };
        let id = t.canonical(target)?;
        let sql = format!(
            "UPDATE {} SET {e} = {} WHERE {}.{} = {}",
            t.table,
            if enabled { "TRUE" } else { "FALSE" },
            t.table,
            t.id,
            t.param(1)
        );
        match tx.execute(&sql, &[Some(&id)]).await? {
            0 => Err(t.not_found(&target.0)),
            _ => Ok(()),
        }
    }

    async fn delete(&self, tx: &mut Tx, target: &TargetId, kind: ObjectKind) -> Result<(), SqlError> {
        if !self.config.allow_delete {
            return Err(SqlError::Unsupported("delete (allow_delete is false)"));
        }
        let t = self.table(kind)?;
        let Ok(id) = t.canonical(target) else {
            return Ok(());
        };
        let mut statements = Vec::new();
        if let Some((m, gc, mc)) = &self.members {
            let col = if kind == ObjectKind::Group { gc } else { mc };
            statements.push(format!("DELETE FROM {m} WHERE {m}.{col} = {}", t.param(1)));
        }
        statements.push(format!(
            "DELETE FROM {} WHERE kind = '{}' AND row_id = $1",
            self.links,
            kind_name(kind)
        ));
        statements.push(format!(
            "DELETE FROM {} WHERE {}.{} = {}",
            t.table,
            t.table,
            t.id,
            t.param(1)
        ));
        for s in &statements {
            tx.execute(s, &[Some(&id)]).await?;
        }
        Ok(())
    }

    /// The batch's membership changes, in few statements: one query for
    /// the groups and one for the users that members are added to and
    /// from, then per group one INSERT of its new members and one DELETE
    /// of its removed ones. When a batch changes the same membership twice,
    /// the last change wins, as if they were applied in order.
    async fn members_all(&self, tx: &mut Tx, ops: &[TargetOp], out: &mut [Option<Outcome>]) -> Result<(), SqlError> {
        let changes: Vec<(usize, &TargetId, &TargetId, bool)> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| match op {
                TargetOp::AddMember { group, member } => Some((i, group, member, true)),
                TargetOp::RemoveMember { group, member } => Some((i, group, member, false)),
                _ => None,
            })
            .collect();
        if changes.is_empty() {
            return Ok(());
        }
        let (g, (m, gc, mc)) = match (self.table(ObjectKind::Group), &self.members) {
            (Ok(g), Some(members)) => (g, members),
            _ => {
                for &(i, ..) in &changes {
                    out[i] = Some(Err(SqlError::Unsupported("membership (no membership table)")));
                }
                return Ok(());
            }
        };
        let u = &self.users;
        // (op, group row id, member row id, add); a member that cannot be
        // a user is not one, so removing it is done already.
        let mut valid: Vec<(usize, String, String, bool)> = Vec::new();
        for &(i, group, member, add) in &changes {
            let r = match (g.canonical(group), u.canonical(member)) {
                (Err(e), _) => Err(e),
                (Ok(_), Err(e)) if add => Err(e),
                (Ok(_), Err(_)) => Ok(Applied::to(group.clone())),
                (Ok(gid), Ok(uid)) => {
                    valid.push((i, gid, uid, add));
                    continue;
                }
            };
            out[i] = Some(r);
        }
        let adds = || valid.iter().filter(|v| v.3);
        let groups = self.existing(tx, g, adds().map(|v| v.1.as_str())).await?;
        let users = self.existing(tx, u, adds().map(|v| v.2.as_str())).await?;
        // The final state of each membership: group → member → add.
        let mut wanted: BTreeMap<&str, BTreeMap<&str, bool>> = BTreeMap::new();
        for (i, gid, uid, add) in &valid {
            let (group, member) = match &ops[*i] {
                TargetOp::AddMember { group, member } | TargetOp::RemoveMember { group, member } => (group, member),
                _ => continue,
            };
            out[*i] = Some(if *add && !groups.contains(gid) {
                Err(g.not_found(&group.0))
            } else if *add && !users.contains(uid) {
                Err(u.not_found(&member.0))
            } else {
                wanted.entry(gid).or_default().insert(uid, *add);
                Ok(Applied::to(group.clone()))
            });
        }
        let d = self.db.dialect();
        let per = MAX_PARAMS - 2;
        for (gid, members) in wanted {
            let (add, remove): (Vec<&str>, Vec<&str>) = {
                let add = members.iter().filter(|(_, a)| **a).map(|(m, _)| *m).collect();
                let remove = members.iter().filter(|(_, a)| !**a).map(|(m, _)| *m).collect();
                (add, remove)
            };
            for chunk in add.chunks(per) {
                // The group's id twice: before and after the list.
                let sql = format!(
                    "INSERT INTO {m} ({gc}, {mc}) SELECT {gp}, u.{uid} FROM {users} u WHERE u.{uid} IN ({list}) \
                     AND NOT EXISTS (SELECT 1 FROM {m} x WHERE x.{gc} = {again} AND x.{mc} = u.{uid})",
                    gp = g.cast(&d.placeholder(1)),
                    uid = u.id,
                    users = u.table,
                    list = params(d, 2, chunk.len(), |p| u.cast(&p)),
                    again = g.cast(&d.placeholder(chunk.len() + 2)),
                );
                let binds: Vec<Option<&str>> = std::iter::once(Some(gid))
                    .chain(chunk.iter().map(|x| Some(*x)))
                    .chain([Some(gid)])
                    .collect();
                tx.execute(&sql, &binds).await?;
            }
            for chunk in remove.chunks(per) {
                let sql = format!(
                    "DELETE FROM {m} WHERE {m}.{gc} = {} AND {m}.{mc} IN ({})",
                    g.cast(&d.placeholder(1)),
                    params(d, 2, chunk.len(), |p| u.cast(&p)),
                );
                let binds: Vec<Option<&str>> = std::iter::once(Some(gid))
                    .chain(chunk.iter().map(|x| Some(*x)))
                    .collect();
                tx.execute(&sql, &binds).await?;
            }
        }
        Ok(())
    }

    /// Which of `ids` (canonical row ids) are rows of `t`.
    async fn existing<'i>(
        &self,
        tx: &mut Tx,
        t: &Tbl,
        ids: impl Iterator<Item = &'i str>,
    ) -> Result<HashSet<String>, SqlError> {
        let ids: Vec<&str> = ids.collect::<HashSet<_>>().into_iter().collect();
        let mut found = HashSet::new();
        for chunk in ids.chunks(MAX_PARAMS) {
            let sql = format!(
                "SELECT CAST(t.{id} AS TEXT) FROM {} t WHERE t.{id} IN ({})",
                t.table,
                params(self.db.dialect(), 1, chunk.len(), |p| t.cast(&p)),
                id = t.id,
            );
            let binds: Vec<Option<&str>> = chunk.iter().map(|x| Some(*x)).collect();
            found.extend(
                tx.rows(&sql, &binds)
                    .await?
                    .into_iter()
                    .filter_map(|r| r.into_iter().next().flatten()),
            );
        }
        Ok(found)
    }
}

/// The ids of inserted rows in their order, from the rows an INSERT
/// returned (id, then the row's key) and the key of each inserted row: by
/// position when they line up, else by key. `None` when they cannot be
/// matched.
fn matched(returned: &[TextRow], expected: &[Vec<Option<&str>>]) -> Option<Vec<String>> {
    if returned.len() != expected.len() {
        return None;
    }
    let key_of = |row: &TextRow| -> Vec<Option<String>> { row.iter().skip(1).cloned().collect() };
    let same = |row: &TextRow, key: &[Option<&str>]| {
        row.len() == key.len() + 1 && row.iter().skip(1).zip(key).all(|(a, b)| a.as_deref() == *b)
    };
    if returned.iter().zip(expected).all(|(row, key)| same(row, key)) {
        return returned.iter().map(|row| row.first().cloned().flatten()).collect();
    }
    let mut by_key: HashMap<Vec<Option<String>>, Vec<usize>> = HashMap::new();
    for (r, key) in expected.iter().enumerate().rev() {
        let key = key.iter().map(|v| v.map(str::to_owned)).collect();
        by_key.entry(key).or_default().push(r);
    }
    let mut ids: Vec<Option<String>> = vec![None; expected.len()];
    for row in returned {
        let r = by_key.get_mut(&key_of(row))?.pop()?;
        ids[r] = Some(row.first().cloned().flatten()?);
    }
    ids.into_iter().collect()
}
