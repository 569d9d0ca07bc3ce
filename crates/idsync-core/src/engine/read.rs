//! The source side of a run: a full read, or a delta read completed with
//! the objects it implies (failures held for retry, groups that named a
//! deleted or renamed object).

use std::collections::{BTreeSet, HashSet};

use futures::StreamExt;
use tracing::{info, warn};

use crate::error::Result;
use crate::model::{ExternalId, ObjectKind, SourceObject, TargetAccount};
use crate::plan::ReadMode;
use crate::profile::Profile;
use crate::source::{Completeness, Cursor, DeltaItem, ReadItem, Source};
use crate::state::ProfileState;

/// What a source read produced, before planning.
pub(super) struct SourceRead {
    pub mode: ReadMode,
    /// Full: every object read. Delta: the objects changed (or read again).
    pub objects: Vec<SourceObject>,
    /// Delta: the ids deleted.
    pub deleted: Vec<ExternalId>,
    /// A complete present-mode delta: every id still in scope.
    pub present: Option<HashSet<ExternalId>>,
    pub completeness: Completeness,
    /// Objects the source could not read.
    pub errors: Vec<String>,
    /// Where the next delta starts, when the read allows moving on.
    pub cursor: Option<Cursor>,
    pub cursor_ok: bool,
}

impl SourceRead {
    /// True for a full read that saw everything.
    pub(super) fn complete_full(&self) -> bool {
        self.mode == ReadMode::Full && self.completeness.is_complete() && self.errors.is_empty()
    }

    /// What the state keeps of this read, which it consumes (a large read's
    /// member lists move, they are not copied): the groups' members, and
    /// which objects of `linked` accounts are gone.
    pub(super) fn into_seen(self, profile: &Profile, linked: &[TargetAccount]) -> Seen {
        let whole = self.complete_full();
        let mut seen = Seen {
            whole,
            deleted: self.deleted,
            ..Seen::default()
        };
        let mut inside: HashSet<ExternalId> = HashSet::new();
        for o in self.objects {
            match (profile.scope.admits(&o), whole) {
                (true, true) => {
                    inside.insert(o.id.clone());
                }
                (true, false) => seen.back.push(o.id.clone()),
                (false, _) => seen.gone.push(o.id.clone()),
            }
            if o.kind == ObjectKind::Group {
                seen.groups.push((o.id, o.members.into_iter().collect()));
            }
        }
        if whole {
            seen.gone = linked
                .iter()
                .filter_map(|a| a.link.as_ref().map(|l| &l.external))
                .filter(|e| !inside.contains(*e))
                .cloned()
                .collect();
        } else {
            seen.gone.extend(seen.deleted.iter().cloned());
        }
        seen
    }
}

/// What the state keeps of a read (see [`ProfileState::members`] and
/// [`ProfileState::gone`]).
#[derive(Clone, Debug, Default)]
pub(super) struct Seen {
    /// Every object in scope was read: what is not listed is gone.
    whole: bool,
    groups: Vec<(ExternalId, BTreeSet<ExternalId>)>,
    /// Deleted ids (groups among them are forgotten).
    deleted: Vec<ExternalId>,
    /// Objects now deleted or out of scope.
    gone: Vec<ExternalId>,
    /// Objects read in scope.
    back: Vec<ExternalId>,
}

impl Seen {
    /// Writes what was seen into the state.
    pub(super) fn remember(self, state: &mut ProfileState) {
        if self.whole {
            state.members.clear();
            state.gone.clear();
        }
        for id in &self.deleted {
            state.members.remove(id);
        }
        state.members.extend(self.groups);
        state.gone.extend(self.gone);
        for id in &self.back {
            state.gone.remove(id);
        }
    }
}

/// Reads every object in scope, keeping only the attributes the profile reads.
pub(super) async fn full(source: &dyn Source, profile: &Profile) -> Result<SourceRead> {
    let mut stream = source.read_full(&profile.scope).await?;
    let read = profile.attributes_read();
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    let mut end = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(ReadItem::Object(o)) => objects.push(keep_attributes(o, &read)),
            Ok(ReadItem::End { completeness, cursor }) => {
                end = Some((completeness, cursor));
                break;
            }
            Err(e) if e.stops_run() => return Err(e),
            Err(e) => {
                warn!(error = %e, "an object could not be read");
                errors.push(e.to_string());
            }
        }
    }
    let (completeness, cursor) = match end {
        None => (
            Completeness::Partial {
                reason: "the read ended before the source said it was complete".into(),
            },
            None,
        ),
        Some((Completeness::Complete, cursor)) if !errors.is_empty() => (
            Completeness::Partial {
                reason: format!("{} object(s) could not be read", errors.len()),
            },
            cursor,
        ),
        Some(end) => end,
    };
    let cursor_ok = completeness.is_complete();
    Ok(SourceRead {
        mode: ReadMode::Full,
        objects,
        deleted: Vec::new(),
        present: None,
        completeness,
        errors,
        cursor: if cursor_ok { cursor } else { None },
        cursor_ok,
    })
}

/// A delta read, or `None` when the source asks for a full read. The
/// objects whose operations failed last time are read again. A delta that
/// ends without its `End` item is Partial: its present set is dropped (what
/// it did not list may still be there) and its cursor is not used.
pub(super) async fn delta(
    source: &dyn Source,
    profile: &Profile,
    from: &Cursor,
    state: &ProfileState,
) -> Result<Option<SourceRead>> {
    let mut stream = source.read_delta(&profile.scope, from).await?;
    let attributes = profile.attributes_read();
    let mut read = SourceRead {
        mode: ReadMode::Delta,
        objects: Vec::new(),
        deleted: Vec::new(),
        present: None,
        completeness: Completeness::Complete,
        errors: Vec::new(),
        cursor: None,
        cursor_ok: false,
    };
    while let Some(item) = stream.next().await {
        match item {
            Ok(DeltaItem::Changed(o)) => read.objects.push(keep_attributes(o, &attributes)),
            Ok(DeltaItem::Deleted(id)) => read.deleted.push(id),
            Ok(DeltaItem::Present(id)) => {
                read.present.get_or_insert_with(HashSet::new).insert(id);
            }
            Ok(DeltaItem::End { cursor }) => {
                read.cursor = Some(cursor);
                read.cursor_ok = read.errors.is_empty();
                break;
            }
            Ok(DeltaItem::ResyncRequired { reason }) => {
                info!(%reason, "the source asks for a full read");
                return Ok(None);
            }
            Err(e) if e.stops_run() => return Err(e),
            Err(e) => {
                warn!(error = %e, "a change could not be read; the cursor stays");
                read.errors.push(e.to_string());
            }
        }
    }
    drop(stream);
    if read.cursor.is_none() {
        read.completeness = Completeness::Partial {
            reason: "the delta read ended early".into(),
        };
        read.present = None;
    }
    let again: Vec<ExternalId> = state.retry.iter().cloned().collect();
    read_again(source, profile, &mut read, again).await?;
    Ok(Some(read))
}

/// Where a source's member references go stale
/// ([`SourceCapabilities::stale_members`](crate::SourceCapabilities::stale_members)),
/// reads again the groups that named an object the delta changed: moved or
/// renamed, it may have dropped out of them without the groups changing,
/// as a full read would show.
pub(super) async fn stale_groups(
    source: &dyn Source,
    profile: &Profile,
    read: &mut SourceRead,
    state: &ProfileState,
) -> Result<()> {
    if !source.capabilities().stale_members || read.objects.is_empty() {
        return Ok(());
    }
    let named: HashSet<&ExternalId> = read.objects.iter().map(|o| &o.id).collect();
    let groups: Vec<ExternalId> = state
        .members
        .iter()
        .filter(|(_, members)| members.iter().any(|m| named.contains(m)))
        .map(|(group, _)| group.clone())
        .collect();
    read_again(source, profile, read, groups).await
}

/// Reads `ids` one by one into the delta, skipping those it holds already:
/// an object that is gone (or out of the source's scope) counts as deleted.
async fn read_again(source: &dyn Source, profile: &Profile, read: &mut SourceRead, ids: Vec<ExternalId>) -> Result<()> {
    let seen: HashSet<ExternalId> = read
        .objects
        .iter()
        .map(|o| o.id.clone())
        .chain(read.deleted.iter().cloned())
        .collect();
    let attributes = profile.attributes_read();
    for id in ids.into_iter().filter(|id| !seen.contains(id)) {
        match source.read_one(&profile.scope, &id).await {
            Ok(Some(o)) => read.objects.push(keep_attributes(o, &attributes)),
            Ok(None) => read.deleted.push(id),
            Err(e) if e.stops_run() => return Err(e),
            Err(e) => {
                warn!(error = %e, object = %id, "an object could not be read again; the cursor stays");
                read.errors.push(e.to_string());
                read.cursor_ok = false;
            }
        }
    }
    Ok(())
}

/// The object with only the attributes the profile reads: a full read of a
/// large directory holds every object at once, and most attributes of an
/// entry are never looked at.
pub(super) fn keep_attributes(mut object: SourceObject, read: &BTreeSet<&str>) -> SourceObject {
    object.attributes.retain(|name, _| read.contains(name.as_str()));
    object
}
