//! The target side of a run: the accounts the planner needs to see.
//!
//! A full read (and a present-mode delta) lists every account linked to the
//! profile, then looks up candidates for the objects without one. Any other
//! delta asks only about the ids it names — changed and deleted objects,
//! and the members that joined or left a changed group — so that its cost
//! follows the changes, not the size of the directory.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use futures::TryStreamExt;

use crate::error::Result;
use crate::model::{ExternalId, ObjectKind, SourceObject, TargetAccount, TargetId};
use crate::plan::GroupMembers;
use crate::profile::Profile;
use crate::target::{Lookup, Target};

/// What the planner sees of the target.
#[derive(Default)]
pub(super) struct TargetView<'s> {
    /// Accounts linked to the profile (all, or those the delta names).
    pub linked: Vec<TargetAccount>,
    /// Unlinked soft-match candidates and other profiles' accounts.
    pub candidates: Vec<TargetAccount>,
    /// How many accounts are linked to the profile in all.
    pub linked_total: usize,
    /// Delta: the groups it did not read whose memberships it may change.
    pub unread: Vec<GroupMembers<'s>>,
}

/// Every account linked to the profile.
pub(super) async fn linked(target: &dyn Target, profile: &Profile) -> Result<Vec<TargetAccount>> {
    target.linked(profile.id).await?.try_collect().await
}

/// The view of a listing: `linked`, every account linked to the profile,
/// and candidates for the objects without one.
pub(super) async fn listed(
    target: &dyn Target,
    profile: &Profile,
    objects: &[SourceObject],
    linked: Vec<TargetAccount>,
    batch: usize,
) -> Result<TargetView<'static>> {
    let linked_ids: HashSet<&ExternalId> = linked
        .iter()
        .filter_map(|a| a.link.as_ref().map(|l| &l.external))
        .collect();
    let mut lookups = Vec::new();
    for o in objects
        .iter()
        .filter(|o| !linked_ids.contains(&o.id) && wanted(profile, o))
    {
        lookups.push(Lookup::External {
            kind: o.kind,
            external: o.id.clone(),
        });
        lookups.extend(Lookup::correlation(profile, o));
    }
    let candidates = look_up(target, &lookups, batch).await?;
    Ok(TargetView {
        linked_total: linked.len(),
        linked,
        candidates,
        unread: Vec::new(),
    })
}

/// What a delta names, whose accounts it must see.
pub(super) struct Named<'r, 's> {
    /// The objects changed (or read again).
    pub objects: &'r [SourceObject],
    /// The ids deleted.
    pub deleted: &'r [ExternalId],
    /// Members (users or groups) that joined or left a changed group.
    pub members: BTreeSet<ExternalId>,
    /// Groups not read whose memberships the delta may change.
    pub unread: Vec<GroupMembers<'s>>,
    /// The groups the state remembers: a deleted id or a member among them
    /// is looked up as a group, any other as a user.
    pub groups: &'r BTreeMap<ExternalId, BTreeSet<ExternalId>>,
}

/// The accounts of the ids a delta names, then candidates for the changed
/// objects that have no account.
pub(super) async fn named<'s>(
    target: &dyn Target,
    profile: &Profile,
    named: Named<'_, 's>,
    linked_total: usize,
    batch: usize,
) -> Result<TargetView<'s>> {
    let Named {
        objects,
        deleted,
        members,
        unread,
        groups,
    } = named;
    let known: HashSet<&ExternalId> = objects.iter().map(|o| &o.id).collect();
    let mut lookups: Vec<Lookup> = objects
        .iter()
        .map(|o| Lookup::External {
            kind: o.kind,
            external: o.id.clone(),
        })
        .collect();
    lookups.extend(unread.iter().map(|g| Lookup::External {
        kind: ObjectKind::Group,
        external: g.group.clone(),
    }));
    for id in deleted.iter().chain(&members).filter(|id| !known.contains(id)) {
        let kind = if groups.contains_key(id) {
            ObjectKind::Group
        } else {
            ObjectKind::User
        };
        lookups.push(Lookup::External {
            kind,
            external: id.clone(),
        });
    }
    lookups.sort_by(|a, b| lookup_key(a).cmp(&lookup_key(b)));
    lookups.dedup();
    let mut view = TargetView {
        linked_total,
        unread,
        ..TargetView::default()
    };
    view.sort(profile, look_up(target, &lookups, batch).await?);
    let linked_ids: HashSet<&ExternalId> = view
        .linked
        .iter()
        .filter_map(|a| a.link.as_ref().map(|l| &l.external))
        .collect();
    let by_field: Vec<Lookup> = objects
        .iter()
        .filter(|o| !linked_ids.contains(&o.id) && wanted(profile, o))
        .filter_map(|o| Lookup::correlation(profile, o))
        .collect();
    view.sort(profile, look_up(target, &by_field, batch).await?);
    Ok(view)
}

impl TargetView<'_> {
    /// Puts each account found where the planner looks for it: the
    /// profile's own under `linked` (once each), the others' and unlinked
    /// ones under `candidates`.
    fn sort(&mut self, profile: &Profile, found: Vec<TargetAccount>) {
        let mut seen: HashSet<TargetId> = self.linked.iter().map(|a| a.id.clone()).collect();
        for account in found {
            if account.link.as_ref().is_some_and(|l| l.profile == profile.id) {
                if seen.insert(account.id.clone()) {
                    self.linked.push(account);
                }
            } else {
                self.candidates.push(account);
            }
        }
    }
}

/// The ids whose accounts a delta must see for the membership of its
/// changed groups: those that joined or left each group since its members
/// were last read, or every member of a group read for the first time.
pub(super) fn member_changes(
    objects: &[SourceObject],
    remembered: &BTreeMap<ExternalId, BTreeSet<ExternalId>>,
) -> BTreeSet<ExternalId> {
    let mut ids = BTreeSet::new();
    for group in objects.iter().filter(|o| o.kind == ObjectKind::Group) {
        let now: BTreeSet<&ExternalId> = group.members.iter().collect();
        match remembered.get(&group.id) {
            Some(before) => {
                ids.extend(now.iter().filter(|m| !before.contains(**m)).map(|m| (*m).clone()));
                ids.extend(before.iter().filter(|m| !now.contains(m)).cloned());
            }
            None => ids.extend(now.into_iter().cloned()),
        }
    }
    ids
}

/// True when a group the state holds no members for (new to the profile,
/// or back in scope) has an account with members the view does not know:
/// their links are needed to tell which are managed, and only a listing
/// gives them.
pub(super) fn unknown_members(
    view: &TargetView<'_>,
    objects: &[SourceObject],
    remembered: &BTreeMap<ExternalId, BTreeSet<ExternalId>>,
) -> bool {
    let known: HashSet<&TargetId> = view.linked.iter().map(|a| &a.id).collect();
    let new_groups: HashSet<&ExternalId> = objects
        .iter()
        .filter(|o| o.kind == ObjectKind::Group && !remembered.contains_key(&o.id))
        .map(|o| &o.id)
        .collect();
    // Its own account, or one it adopts from a retired profile.
    view.linked.iter().chain(&view.candidates).any(|a| {
        a.link.as_ref().is_some_and(|l| new_groups.contains(&l.external))
            && a.members.iter().any(|m| !known.contains(m))
    })
}

/// The groups a delta did not read that list an object it changed or
/// deleted (see [`PlanInput::unread_groups`](crate::PlanInput::unread_groups)).
pub(super) fn unread_groups<'s>(
    remembered: &'s BTreeMap<ExternalId, BTreeSet<ExternalId>>,
    objects: &[SourceObject],
    deleted: &[ExternalId],
) -> Vec<GroupMembers<'s>> {
    let read: HashSet<&ExternalId> = objects.iter().map(|o| &o.id).chain(deleted).collect();
    remembered
        .iter()
        .filter(|(group, members)| !read.contains(group) && read.iter().any(|id| members.contains(*id)))
        .map(|(group, members)| GroupMembers { group, members })
        .collect()
}

/// True when an unlinked object may be adopted or created: only those are
/// worth a look-up.
fn wanted(profile: &Profile, o: &SourceObject) -> bool {
    o.enabled && profile.scope.admits(o)
}

fn lookup_key(l: &Lookup) -> (u8, ObjectKind, &str, &str) {
    match l {
        Lookup::External { kind, external } => (0, *kind, external.as_str(), ""),
        Lookup::Field { kind, field, value } => (1, *kind, field.as_str(), value.as_str()),
    }
}

/// Sends `lookups` to the target `batch` at a time.
async fn look_up(target: &dyn Target, lookups: &[Lookup], batch: usize) -> Result<Vec<TargetAccount>> {
    let mut found = Vec::new();
    for chunk in lookups.chunks(batch.max(1)) {
        found.extend(target.lookup(chunk).await?);
    }
    Ok(found)
}
