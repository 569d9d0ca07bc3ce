//! The source behaviour suite: the read contract every source keeps.

use std::collections::HashSet;

use futures::StreamExt;
use idsync_core::{Completeness, DeltaItem, ExternalId, ObjectKind, ReadItem, Scope, Source, SourceObject};

use super::{Report, ensure, step};

/// What the suite expects of the directory behind a source.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// The scope to read with (e.g. the test's own OU).
    pub scope: Scope,
    /// The attribute that names objects (`uid`, `sAMAccountName`, `cn`).
    pub name_attribute: String,
    /// Users expected in scope, by name.
    pub users: Vec<String>,
    /// Groups expected in scope, by name, with their members' names.
    pub groups: Vec<(String, Vec<String>)>,
    /// Names of users expected to be disabled.
    pub disabled: Vec<String>,
}

/// Runs every check the source's capabilities allow.
pub async fn run(s: &dyn Source, fx: &Fixture) -> Report {
    let caps = s.capabilities();
    let mut r = Report::new(s.backend());
    let read = read_full(s, fx).await;
    let objects = read.as_ref().map(|(objects, _)| objects.clone()).unwrap_or_default();
    r.check("a_full_read_ends_once_and_complete", async { read.map(|_| ()) })
        .await;
    r.check("objects_have_their_kind_names_and_state", objects_match(&objects, fx))
        .await;
    r.check("ids_are_unique_and_stable", ids_are_stable(s, fx, &objects))
        .await;
    r.check_if(
        caps.groups,
        "no groups capability",
        "groups_list_their_members",
        groups_list_members(&objects, fx),
    )
    .await;
    r.check_if(
        caps.read_one,
        "no read_one capability",
        "read_one_returns_the_same_object",
        read_one(s, fx, &objects),
    )
    .await;
    r.check_if(
        caps.delta,
        "no delta capability",
        "a_delta_from_the_end_of_a_read_is_quiet",
        quiet_delta(s, fx),
    )
    .await;
    r
}

fn name<'a>(o: &'a SourceObject, fx: &Fixture) -> &'a str {
    o.first_text(&fx.name_attribute).unwrap_or("")
}

async fn read_full(s: &dyn Source, fx: &Fixture) -> Result<(Vec<SourceObject>, Option<idsync_core::Cursor>), String> {
    let mut stream = step("read_full", s.read_full(&fx.scope).await)?;
    let mut objects = Vec::new();
    let mut ends = Vec::new();
    while let Some(item) = stream.next().await {
        match step("read item", item)? {
            ReadItem::Object(o) => {
                ensure(ends.is_empty(), || format!("object {} after the end", o.id))?;
                objects.push(o);
            }
            ReadItem::End { completeness, cursor } => ends.push((completeness, cursor)),
            other => return Err(format!("an item this suite does not know: {other:?}")),
        }
    }
    ensure(ends.len() == 1, || {
        format!("{} end items, expected exactly 1", ends.len())
    })?;
    let (completeness, cursor) = ends.remove(0);
    ensure(completeness == Completeness::Complete, || {
        format!("the read ended {completeness:?}")
    })?;
    Ok((objects, cursor))
}

async fn objects_match(objects: &[SourceObject], fx: &Fixture) -> Result<(), String> {
    for user in &fx.users {
        let found: Vec<_> = objects.iter().filter(|o| name(o, fx) == user).collect();
        ensure(found.len() == 1, || format!("user {user:?} read {} times", found.len()))?;
        ensure(found[0].kind == ObjectKind::User, || {
            format!("{user:?} is a {}", found[0].kind)
        })?;
        let disabled = fx.disabled.contains(user);
        ensure(found[0].enabled != disabled, || {
            format!("{user:?} enabled = {}, expected {}", found[0].enabled, !disabled)
        })?;
        ensure(!found[0].id.0.is_empty(), || format!("{user:?} has an empty id"))?;
    }
    for (group, _) in &fx.groups {
        let found: Vec<_> = objects.iter().filter(|o| name(o, fx) == group).collect();
        ensure(found.len() == 1 && found[0].kind == ObjectKind::Group, || {
            format!("group {group:?} read as {found:?}")
        })?;
    }
    Ok(())
}

async fn ids_are_stable(s: &dyn Source, fx: &Fixture, objects: &[SourceObject]) -> Result<(), String> {
    let ids: HashSet<&ExternalId> = objects.iter().map(|o| &o.id).collect();
    ensure(ids.len() == objects.len(), || "two objects share an id".into())?;
    let (again, _) = read_full(s, fx).await?;
    let again: HashSet<&ExternalId> = again.iter().map(|o| &o.id).collect();
    ensure(ids == again, || "a second read gives other ids".into())
}

async fn groups_list_members(objects: &[SourceObject], fx: &Fixture) -> Result<(), String> {
    for (group, members) in &fx.groups {
        let g = objects
            .iter()
            .find(|o| name(o, fx) == group)
            .ok_or_else(|| format!("group {group:?} not read"))?;
        let mut got: Vec<&str> = g
            .members
            .iter()
            .filter_map(|id| objects.iter().find(|o| &o.id == id))
            .map(|o| name(o, fx))
            .collect();
        got.sort_unstable();
        let mut want: Vec<&str> = members.iter().map(String::as_str).collect();
        want.sort_unstable();
        ensure(got == want, || {
            format!("group {group:?} has members {got:?}, expected {want:?}")
        })?;
    }
    Ok(())
}

async fn read_one(s: &dyn Source, fx: &Fixture, objects: &[SourceObject]) -> Result<(), String> {
    let first = objects
        .iter()
        .find(|o| o.kind == ObjectKind::User)
        .ok_or("no user read")?;
    let one = step("read_one", s.read_one(&fx.scope, &first.id).await)?
        .ok_or_else(|| format!("read_one({}) found nothing", first.id))?;
    ensure(one.id == first.id && name(&one, fx) == name(first, fx), || {
        format!("read_one gave {one:?}")
    })?;
    let none = step(
        "read_one of an unknown id",
        s.read_one(&fx.scope, &ExternalId("00000000-dead-beef-0000-000000000000".into()))
            .await,
    )?;
    ensure(none.is_none(), || format!("an unknown id read as {none:?}"))
}

/// Nothing changes in the scope after a full read, so a delta from its
/// cursor lists no object in scope and deletes none of those read. (A
/// source may list changes outside the scope, e.g. on a directory other
/// tests share: the engine leaves those out, and so does this check.)
async fn quiet_delta(s: &dyn Source, fx: &Fixture) -> Result<(), String> {
    let (objects, cursor) = read_full(s, fx).await?;
    let cursor = cursor.ok_or("a source with deltas gave no cursor at the end of its full read")?;
    let read: HashSet<ExternalId> = objects.into_iter().map(|o| o.id).collect();
    let mut stream = step("read_delta", s.read_delta(&fx.scope, &cursor).await)?;
    let mut changes = Vec::new();
    let mut end = 0;
    while let Some(item) = stream.next().await {
        match step("delta item", item)? {
            DeltaItem::Changed(o) if fx.scope.admits(&o) || read.contains(&o.id) => changes.push(o.id.0),
            DeltaItem::Changed(_) => {}
            DeltaItem::Deleted(id) if read.contains(&id) => changes.push(format!("deleted {id}")),
            DeltaItem::Deleted(_) => {}
            DeltaItem::Present(_) => {}
            DeltaItem::End { .. } => end += 1,
            DeltaItem::ResyncRequired { reason } => return Err(format!("a fresh cursor asks for a resync: {reason}")),
            other => return Err(format!("an item this suite does not know: {other:?}")),
        }
    }
    ensure(end == 1, || format!("{end} end items"))?;
    ensure(changes.is_empty(), || {
        format!("nothing changed, yet the delta lists {changes:?}")
    })
}
