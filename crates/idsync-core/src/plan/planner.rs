//! The planner: a pure, deterministic function from (source view, target
//! view, profile) to a [`Plan`]. No I/O, no clock. Lookups use hash maps;
//! determinism comes from sorting the operations and findings at the end.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Hash maps with a fast hasher: the planner hashes millions of ids.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type Set<K> = HashSet<K, foldhash::fast::RandomState>;

use serde::{Deserialize, Serialize};

use super::{Action, Counts, Finding, FindingKind, OpId, Operation, Plan, Reason, Situation};
use crate::decide::{self, Decision};
use crate::model::{ExternalId, Link, ObjectKind, SourceObject, TargetAccount, TargetId};
use crate::profile::{DuplicatePolicy, OutOfScope, Profile};
use crate::source::Completeness;
use crate::target::TargetCapabilities;

/// Full or delta.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// Every object in scope was read: what is absent is gone.
    Full,
    /// Only changes were read: what is not mentioned is unchanged.
    Delta,
}

/// Everything the planner looks at.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// The profile.
    pub profile: &'a Profile,
    /// What the target can do.
    pub capabilities: TargetCapabilities,
    /// Full or delta.
    pub mode: ReadMode,
    /// How the read ended.
    pub completeness: &'a Completeness,
    /// Full: every object read. Delta: the changed objects.
    pub objects: &'a [SourceObject],
    /// Delta: the ids deleted (including those missing from a present set).
    pub deleted: &'a [ExternalId],
    /// The accounts linked to the profile: all of them on a full read; on
    /// a delta, those of the objects it names (changed, deleted, members
    /// that joined or left a changed group).
    pub linked: &'a [TargetAccount],
    /// How many accounts are linked to the profile in all: the base of the
    /// threshold's percentage (a delta's `linked` holds only some).
    pub linked_total: usize,
    /// Accounts found by the engine's lookups for the unlinked objects:
    /// unlinked soft-match candidates and accounts linked to the same
    /// external ids by other profiles.
    pub candidates: &'a [TargetAccount],
    /// The ids the scope's assigned groups bring in, when the caller worked
    /// them out (a just-in-time sync reads the groups for that). `None`: on
    /// a full read the planner resolves them itself; a delta has no
    /// assigned groups (such profiles always read in full).
    pub assigned: Option<&'a HashSet<ExternalId>>,
    /// Delta: groups the delta did not read that list an object it changed
    /// or deleted, with their members as last read. Their memberships of
    /// the objects whose accounts the planner sees are planned again: an
    /// object that came into scope joins the groups that list it, one that
    /// left the scope or was deleted leaves them, as a full read would do.
    pub unread_groups: &'a [GroupMembers<'a>],
    /// Delta: objects an earlier run found deleted or out of scope, whose
    /// accounts may still be linked (disabled, or left by the rules). As on
    /// a full read, where they are absent, they are no group's members and
    /// count as gone for the relink rule; their deprovisioning is done.
    pub gone: &'a BTreeSet<ExternalId>,
    /// An operator confirmed the deprovisions: the threshold holds nothing.
    pub confirmed: bool,
}

/// A group's members as the last run read them.
#[derive(Clone, Copy, Debug)]
pub struct GroupMembers<'a> {
    /// The group.
    pub group: &'a ExternalId,
    /// Its members.
    pub members: &'a BTreeSet<ExternalId>,
}

/// An operation before sorting: `after` holds draft indices.
struct Draft {
    kind: ObjectKind,
    link: Link,
    target: Option<TargetId>,
    action: Action,
    situation: Situation,
    detail: String,
    after: Vec<usize>,
}

/// Where an object's account is, or will be once the plan is applied.
#[derive(Clone, Copy)]
struct Account<'a> {
    target: Option<&'a TargetId>,
    /// The draft that creates or links it.
    draft: Option<usize>,
}

/// Normalized correlation value: trimmed, lower case.
fn norm(v: &str) -> String {
    v.trim().to_lowercase()
}

/// Computes the plan. Same input in any order gives the same plan.
pub fn plan(input: PlanInput<'_>) -> Plan {
    Planner::new(input).run()
}

struct Planner<'a> {
    input: PlanInput<'a>,
    profile: &'a Profile,
    /// Delta: the ids deleted.
    deleted: Set<&'a ExternalId>,
    /// Ids read several times in different copies: their accounts are left
    /// as they are, and no copy decides anything (which one is right is not
    /// known).
    held: Set<&'a ExternalId>,
    /// Every object read, with whether it is in scope.
    by_id: Map<&'a ExternalId, (&'a SourceObject, bool)>,
    /// Linked accounts by external id (one per link).
    linked: Map<&'a ExternalId, &'a TargetAccount>,
    /// Candidates linked to an external id by another profile.
    others: Map<&'a ExternalId, Vec<&'a TargetAccount>>,
    /// Unlinked candidates by normalized correlation value.
    unlinked_by_key: Map<String, Vec<&'a TargetAccount>>,
    /// In-scope objects and linked accounts by normalized correlation value
    /// (built on first use).
    keys: Option<Map<String, Vec<&'a ExternalId>>>,
    /// Gone accounts that could each be the old account of one new object
    /// (relink with several candidates): not deleted.
    contested: Set<&'a TargetId>,
    /// Accounts whose link this run moves to another object (relink).
    consumed: Set<&'a TargetId>,
    /// Objects whose old account moved to a newer object.
    superseded: Set<&'a ExternalId>,
    /// New objects with several possible old accounts: left for a person.
    undecided: Set<&'a ExternalId>,
    /// Accounts of objects that get a new account or link in this plan.
    new_accounts: Map<&'a ExternalId, Account<'a>>,
    drafts: Vec<Draft>,
    findings: Vec<Finding>,
    /// Aggregated findings: (kind, message, remedy) → objects.
    grouped: BTreeMap<(FindingKind, &'static str, &'static str), BTreeSet<String>>,
    unchanged: usize,
    /// Deprovisions and member removals a partial read left out.
    spared: usize,
    /// The objects in scope, in input order.
    in_scope: Vec<&'a SourceObject>,
}

impl<'a> Planner<'a> {
    fn new(input: PlanInput<'a>) -> Self {
        let profile = input.profile;
        let resolved;
        let assigned = match (input.assigned, input.mode) {
            (Some(given), _) => Some(given),
            (None, ReadMode::Full) => {
                resolved = profile.scope.assigned(input.objects);
                resolved.as_ref()
            }
            (None, ReadMode::Delta) => None,
        };
        let mut by_id: Map<&'a ExternalId, (&'a SourceObject, bool)> =
            Map::with_capacity_and_hasher(input.objects.len(), Default::default());
        let mut in_scope = Vec::with_capacity(input.objects.len());
        // One id read more than once: identical copies count once; copies
        // that differ are held (not created, updated or deprovisioned) and
        // reported, as the source does not say which one is right.
        let mut conflicting: Vec<&'a ExternalId> = Vec::new();
        for o in input.objects {
            if let Some((first, _)) = by_id.get(&o.id) {
                if *first != o {
                    conflicting.push(&o.id);
                }
                continue;
            }
            let inside = profile.scope.admits(o) && assigned.is_none_or(|a| a.contains(&o.id));
            if inside {
                in_scope.push(o);
            }
            by_id.insert(&o.id, (o, inside));
        }
        let held: Set<&'a ExternalId> = conflicting.iter().copied().collect();
        if !held.is_empty() {
            in_scope.retain(|o| !held.contains(&o.id));
            for id in &held {
                if let Some(entry) = by_id.get_mut(id) {
                    entry.1 = true;
                }
            }
        }
        let mut planner = Planner {
            input,
            profile,
            deleted: input.deleted.iter().collect(),
            by_id,
            held,
            linked: Map::with_capacity_and_hasher(input.linked.len(), Default::default()),
            others: Map::default(),
            unlinked_by_key: Map::default(),
            keys: None,
            contested: Set::default(),
            consumed: Set::default(),
            superseded: Set::default(),
            undecided: Set::default(),
            new_accounts: Map::default(),
            drafts: Vec::new(),
            findings: Vec::new(),
            grouped: BTreeMap::new(),
            unchanged: 0,
            spared: 0,
            in_scope,
        };
        for account in input.linked {
            let Some(link) = &account.link else { continue };
            if link.profile != profile.id {
                continue;
            }
            match planner.linked.get(&link.external) {
                Some(other) if other.id <= account.id => planner.duplicate_link(link, account),
                Some(other) => {
                    let other = *other;
                    planner.linked.insert(&link.external, account);
                    planner.duplicate_link(link, other);
                }
                None => {
                    planner.linked.insert(&link.external, account);
                }
            }
        }
        for id in conflicting {
            planner.note(
                FindingKind::DuplicateIdentity,
                "the source has several different objects with this external id; none of them is synced, and its account is left as it is",
                "fix the source so that one object carries each id",
                id,
            );
        }
        let corr = profile.rules.correlation.as_ref();
        for account in input.candidates {
            match &account.link {
                Some(link) if link.profile != profile.id => {
                    planner.others.entry(&link.external).or_default().push(account);
                }
                Some(_) => {}
                None => {
                    if let Some(v) = corr.and_then(|c| account.fields.get(&c.field)) {
                        planner.unlinked_by_key.entry(norm(v)).or_default().push(account);
                    }
                }
            }
        }
        for list in planner.others.values_mut().chain(planner.unlinked_by_key.values_mut()) {
            list.sort_by(|a, b| a.id.cmp(&b.id));
            list.dedup_by(|a, b| a.id == b.id);
        }
        planner
    }

    fn duplicate_link(&mut self, link: &Link, extra: &TargetAccount) {
        self.findings.push(Finding {
            kind: FindingKind::DuplicateLink,
            objects: vec![link.external.0.clone()],
            message: format!(
                "account {} carries link {link} that another account carries too; it is left alone",
                extra.id
            ),
            remedy: "remove the link from the extra account (or delete it) in the target".into(),
        });
    }

    /// Delta: deleted by this delta or found gone by an earlier run.
    fn gone(&self, external: &ExternalId) -> bool {
        self.deleted.contains(external) || self.input.gone.contains(external)
    }

    fn link_for(&self, external: &ExternalId) -> Link {
        Link {
            profile: self.profile.id,
            external: external.clone(),
        }
    }

    fn push(&mut self, draft: Draft) -> usize {
        self.drafts.push(draft);
        self.drafts.len() - 1
    }

    fn note(&mut self, kind: FindingKind, message: &'static str, remedy: &'static str, object: &ExternalId) {
        self.grouped
            .entry((kind, message, remedy))
            .or_default()
            .insert(object.0.clone());
    }

    fn run(mut self) -> Plan {
        let groups_supported = self.input.capabilities.groups;
        let mut groups_ignored = false;
        let in_scope: Vec<&'a SourceObject> = self
            .in_scope
            .iter()
            .copied()
            .filter(|o| {
                let ignored = o.kind == ObjectKind::Group && !groups_supported;
                groups_ignored |= ignored;
                !ignored
            })
            .collect();
        self.relink(&in_scope);
        for &o in &in_scope {
            if self.superseded.contains(&o.id)
                || self.undecided.contains(&o.id)
                || self.new_accounts.contains_key(&o.id)
            {
                continue;
            }
            match self.linked.get(&o.id).copied() {
                Some(account) if !self.consumed.contains(&account.id) => self.plan_linked(o, account),
                Some(_) => {}
                None => self.plan_unlinked(o),
            }
        }
        self.plan_absent();
        if groups_supported {
            let mut groups: Vec<(&'a ExternalId, Vec<&'a ExternalId>)> = in_scope
                .iter()
                .filter(|o| o.kind == ObjectKind::Group)
                .map(|g| (&g.id, g.members.iter().collect()))
                .collect();
            if self.input.mode == ReadMode::Delta {
                groups.extend(
                    self.input
                        .unread_groups
                        .iter()
                        .filter(|g| !self.by_id.contains_key(g.group) && !self.gone(g.group))
                        .map(|g| (g.group, g.members.iter().collect())),
                );
            }
            self.plan_memberships(groups);
        } else if groups_ignored {
            self.findings.push(Finding {
                kind: FindingKind::Unsupported,
                objects: vec![],
                message: "groups are in scope but the target does not manage groups; they are ignored".into(),
                remedy: "limit the scope to users (scope.kinds = [\"user\"])".into(),
            });
        }
        self.partial_read_finding();
        self.apply_threshold();
        self.finish()
    }

    /// The relink rule (rehire keeps history), applied before everything
    /// else so that neither the old nor the new object is planned twice.
    fn relink(&mut self, in_scope: &[&'a SourceObject]) {
        let rules = &self.profile.rules;
        let Some(corr) = &rules.correlation else { return };
        if rules.duplicates != DuplicatePolicy::Relink {
            return;
        }
        let mut unlinked_by_key: Map<String, Vec<&'a SourceObject>> = Map::default();
        // Enabled objects in scope per key, linked or not: an old account
        // passes to a new object only when no other live object claims it.
        let mut live: Map<(String, ObjectKind), usize> = Map::default();
        for &o in in_scope {
            let Some(k) = o.first_text(&corr.attribute).map(norm).filter(|k| !k.is_empty()) else {
                continue;
            };
            if o.enabled {
                *live.entry((k.clone(), o.kind)).or_default() += 1;
            }
            if !self.linked.contains_key(&o.id) {
                unlinked_by_key.entry(k).or_default().push(o);
            }
        }
        // A held object's copies each claim their key (as in `duplicate`).
        let mut claims: Set<(String, ObjectKind, &'a ExternalId)> = Set::default();
        for o in self.input.objects.iter().filter(|o| self.held.contains(&o.id)) {
            if let Some(k) = o.first_text(&corr.attribute).map(norm).filter(|k| !k.is_empty())
                && claims.insert((k.clone(), o.kind, &o.id))
            {
                *live.entry((k, o.kind)).or_default() += 1;
            }
        }
        if unlinked_by_key.is_empty() {
            return;
        }
        let mut linked_by_key: Map<String, Vec<&'a TargetAccount>> = Map::default();
        for &account in self.linked.values() {
            if let Some(k) = self.account_key(account)
                && unlinked_by_key.contains_key(&k)
            {
                linked_by_key.entry(k).or_default().push(account);
            }
        }
        let mut keys: Vec<&String> = unlinked_by_key.keys().collect();
        keys.sort();
        for key in keys {
            let news = &unlinked_by_key[key];
            let Some(preds) = linked_by_key.get(key) else { continue };
            if news.len() != 1 || live.get(&(key.clone(), news[0].kind)).is_some_and(|n| *n > 1) {
                continue; // several new objects for one person: reported as duplicates later
            }
            let new = news[0];
            if self.others.contains_key(&new.id) {
                continue; // another profile's account of this very id: adopted or reported later
            }
            let eligible: Vec<&'a TargetAccount> = preds
                .iter()
                .copied()
                .filter(|a| a.kind == new.kind && self.predecessor_of(a, new))
                .collect();
            // An old object still present and named by the new one is the
            // strongest evidence; otherwise a single gone predecessor.
            let named: Vec<&'a TargetAccount> = eligible
                .iter()
                .copied()
                .filter(|a| a.link.as_ref().is_some_and(|l| self.by_id.contains_key(&l.external)))
                .collect();
            let chosen = match (&named[..], &eligible[..]) {
                ([one], _) | ([], [one]) => Some(*one),
                ([], several) if several.len() > 1 => {
                    // Which old account is this person's is not known: none
                    // moves, none is deleted and no new one is made, so that
                    // the choice is still there for a person to make.
                    self.contested.extend(several.iter().map(|a| &a.id));
                    self.undecided.insert(&new.id);
                    self.note(
                        FindingKind::DuplicateIdentity,
                        "several old accounts with the same correlation key could be this object's (policy relink): it is not provisioned until a person chooses",
                        "link the right account to the new object by hand (or delete the ones that are not), then run again",
                        &new.id,
                    );
                    None
                }
                _ => None,
            };
            if let Some(old) = chosen {
                let Some(old_link) = &old.link else { continue };
                let draft = self.push(Draft {
                    kind: new.kind,
                    link: self.link_for(&new.id),
                    target: Some(old.id.clone()),
                    action: Action::Link {
                        previous: Some(old_link.clone()),
                    },
                    situation: Situation::Relinked,
                    detail: format!(
                        "{} {} replaces {} (same {})",
                        new.kind, new.id, old_link.external, corr.attribute
                    ),
                    after: vec![],
                });
                self.consumed.insert(&old.id);
                if let Some((old_obj, _)) = self.by_id.get(&old_link.external) {
                    self.superseded.insert(&old_obj.id);
                }
                self.new_accounts.insert(
                    &new.id,
                    Account {
                        target: Some(&old.id),
                        draft: Some(draft),
                    },
                );
                self.reconcile(new, old, Some(draft), Situation::Relinked);
            }
        }
    }

    /// The correlation key of a linked account: its source object's when the
    /// read has it (the truth now; not when its copies differ), else the
    /// target's field.
    fn key_of(
        by_id: &Map<&'a ExternalId, (&'a SourceObject, bool)>,
        held: &Set<&'a ExternalId>,
        corr: &crate::profile::Correlation,
        account: &TargetAccount,
    ) -> Option<String> {
        let external = &account.link.as_ref()?.external;
        match by_id.get(external).filter(|_| !held.contains(external)) {
            Some((o, _)) => o.first_text(&corr.attribute).map(norm),
            None => account.fields.get(&corr.field).map(|v| norm(v)),
        }
        .filter(|k| !k.is_empty())
    }

    fn account_key(&self, account: &TargetAccount) -> Option<String> {
        Self::key_of(
            &self.by_id,
            &self.held,
            self.profile.rules.correlation.as_ref()?,
            account,
        )
    }

    /// True when `account` (linked to another id) may pass to the enabled
    /// object `new`: its object is gone, or is disabled and named by `new`.
    fn predecessor_of(&self, account: &TargetAccount, new: &SourceObject) -> bool {
        let Some(link) = &account.link else { return false };
        if link.external == new.id || !new.enabled || self.held.contains(&link.external) {
            return false;
        }
        match self.by_id.get(&link.external) {
            // The old object is still there: it must be disabled (the leaver)
            // and named by the new one (its id, or an alias such as the old
            // objectSid in the new sIDHistory), so the rule has a direction.
            Some((old, _)) => {
                !old.enabled && (new.aliases.contains(&old.id) || old.aliases.iter().any(|a| new.aliases.contains(a)))
            }
            None => match self.input.mode {
                ReadMode::Full => self.input.completeness.is_complete(),
                ReadMode::Delta => self.gone(&link.external),
            },
        }
    }

    fn plan_linked(&mut self, o: &'a SourceObject, account: &'a TargetAccount) {
        let before = self.drafts.len();
        self.reconcile(o, account, None, Situation::Changed);
        if self.drafts.len() == before {
            self.unchanged += 1;
        }
    }

    /// Update of the differing fields, and enable or disable when the
    /// account's state differs from the source's.
    fn reconcile(
        &mut self,
        o: &'a SourceObject,
        account: &'a TargetAccount,
        after: Option<usize>,
        situation: Situation,
    ) {
        let changes = self.profile.mapping.diff(o, &account.fields);
        let after: Vec<usize> = after.into_iter().collect();
        if !changes.is_empty() {
            let detail = changes.iter().map(|c| c.field.as_str()).collect::<Vec<_>>().join(", ");
            self.push(Draft {
                kind: o.kind,
                link: self.link_for(&o.id),
                target: Some(account.id.clone()),
                action: Action::Update { changes },
                situation,
                detail: format!("fields changed: {detail}"),
                after: after.clone(),
            });
        }
        if o.enabled && !account.enabled && self.input.capabilities.can_disable(o.kind) {
            self.push(Draft {
                kind: o.kind,
                link: self.link_for(&o.id),
                target: Some(account.id.clone()),
                action: Action::Enable,
                situation: if situation == Situation::Changed {
                    Situation::Reenabled
                } else {
                    situation
                },
                detail: "enabled in the source".into(),
                after,
            });
        } else if !o.enabled && account.enabled {
            let situation = if situation == Situation::Changed {
                Situation::SourceDisabled
            } else {
                situation
            };
            let decision = decide::disable(
                &self.profile.rules,
                &self.input.capabilities,
                account.kind,
                account.enabled,
            );
            self.deprovision(
                decision,
                account,
                self.link_for(&o.id),
                situation,
                "disabled in the source",
                after,
            );
        }
    }

    /// True when `account` is linked by a profile this one adopts from.
    fn retired(&self, account: &TargetAccount) -> bool {
        account
            .link
            .as_ref()
            .is_some_and(|l| self.profile.rules.adopt_from.contains(&l.profile))
    }

    fn plan_unlinked(&mut self, o: &'a SourceObject) {
        if !o.enabled {
            return; // disabled objects are not provisioned; enabling them later creates them
        }
        let rules = &self.profile.rules;
        // Accounts linked to this external id by other profiles.
        let others: Vec<&'a TargetAccount> = self
            .others
            .get(&o.id)
            .map(|l| l.iter().copied().filter(|a| a.kind == o.kind).collect())
            .unwrap_or_default();
        // Another active profile manages it: report, never a second account
        // (adopting a retired profile's account would make one).
        if let Some(other) = others.iter().find(|a| !self.retired(a)) {
            let profile = other.link.as_ref().map(|l| l.profile.to_string()).unwrap_or_default();
            self.findings.push(Finding {
                kind: FindingKind::CrossProfileOverlap,
                objects: vec![o.id.0.clone()],
                message: format!("{} {} is already managed by profile {profile} (account {}); no second account is created", o.kind, o.id, other.id),
                remedy: format!("narrow the scopes so that one profile manages it, or add {profile} to rules.adopt_from if that profile is retired"),
            });
            return;
        }
        if let Some(old) = others.first() {
            self.adopt(
                o,
                old,
                Situation::AdoptedFromProfile,
                "the account of a retired profile is adopted",
            );
            return;
        }
        if let Some(corr) = &rules.correlation
            && let Some(key) = o.first_text(&corr.attribute).map(norm).filter(|k| !k.is_empty())
        {
            let (skip, shared) = self.duplicate(o, &key);
            if skip {
                return;
            }
            let matches: Vec<&'a TargetAccount> = self
                .unlinked_by_key
                .get(&key)
                .map(|l| l.iter().copied().filter(|a| a.kind == o.kind).collect())
                .unwrap_or_default();
            match matches[..] {
                [] => {}
                [one] if !shared => {
                    self.adopt(
                        o,
                        one,
                        Situation::SoftMatched,
                        "an unlinked account has the same correlation key",
                    );
                    return;
                }
                _ => {
                    let ids = matches.iter().map(|a| a.id.0.as_str()).collect::<Vec<_>>().join(", ");
                    self.findings.push(Finding {
                        kind: FindingKind::Ambiguous,
                        objects: vec![o.id.0.clone()],
                        message: if shared {
                            format!("{} {} shares {} = {key:?} with other source objects, so unlinked account {ids} is not adopted", o.kind, o.id, corr.field)
                        } else {
                            format!("{} {} matches {} unlinked accounts on {} = {key:?}: {ids}", o.kind, o.id, matches.len(), corr.field)
                        },
                        remedy: "make the correlation field unique in the target (merge or remove the extra accounts), then run again".into(),
                    });
                    return;
                }
            }
        }
        let fields = self.profile.mapping.fields(o);
        let draft = self.push(Draft {
            kind: o.kind,
            link: self.link_for(&o.id),
            target: None,
            action: Action::Create { fields },
            situation: Situation::Unmatched,
            detail: format!(
                "new {} in {}",
                o.kind,
                if o.container.is_empty() {
                    "the source"
                } else {
                    &o.container
                }
            ),
            after: vec![],
        });
        self.new_accounts.insert(
            &o.id,
            Account {
                target: None,
                draft: Some(draft),
            },
        );
    }

    /// Applies the duplicate policy to an unlinked object with correlation
    /// key `key`. Returns (must not be provisioned, key shared with others).
    fn duplicate(&mut self, o: &'a SourceObject, key: &str) -> (bool, bool) {
        let Some(corr) = &self.profile.rules.correlation else {
            return (false, false);
        };
        let keys = self.keys.get_or_insert_with(|| {
            let mut keys: Map<String, Vec<&'a ExternalId>> = Map::default();
            for (o, inside) in self.by_id.values().filter(|(o, _)| !self.held.contains(&o.id)) {
                if let Some(k) = o.first_text(&corr.attribute).filter(|_| *inside).map(norm) {
                    keys.entry(k).or_default().push(&o.id);
                }
            }
            // Each copy of a held object claims its key: which one is right
            // is not known.
            for o in self.input.objects.iter().filter(|o| self.held.contains(&o.id)) {
                if let Some(k) = o.first_text(&corr.attribute).map(norm) {
                    keys.entry(k).or_default().push(&o.id);
                }
            }
            for a in self.linked.values() {
                if let (Some(k), Some(l)) = (Self::key_of(&self.by_id, &self.held, corr, a), &a.link) {
                    keys.entry(k).or_default().push(&l.external);
                }
            }
            keys
        });
        // Others with this key: live ones (in scope now) and predecessors
        // (linked accounts whose object is gone or left the scope).
        let mut live: Vec<&ExternalId> = Vec::new();
        let mut gone: Vec<&ExternalId> = Vec::new();
        for &e in keys.get(key).into_iter().flatten() {
            if *e == o.id {
                continue;
            }
            let account = self
                .linked
                .get(e)
                .filter(|a| a.kind == o.kind && !self.consumed.contains(&a.id));
            match self.by_id.get(e) {
                Some((other, true))
                    if self.held.contains(e)
                        || (other.kind == o.kind
                            && other.first_text(&corr.attribute).is_some_and(|v| norm(v) == key)) =>
                {
                    live.push(e)
                }
                None if account.is_some()
                    && self.input.mode == ReadMode::Delta
                    && !self.deleted.contains(e)
                    && !self.input.gone.contains(e) =>
                {
                    live.push(e)
                }
                _ if account.is_some() => gone.push(e),
                _ => {}
            }
        }
        for list in [&mut live, &mut gone] {
            list.sort();
            list.dedup();
        }
        if live.is_empty() && gone.is_empty() {
            return (false, false);
        }
        let join = |ids: &[&ExternalId]| ids.iter().map(|e| e.0.as_str()).collect::<Vec<_>>().join(", ");
        let (what, attr) = (format!("{} {}", o.kind, o.id), &corr.attribute);
        let policy = self.profile.rules.duplicates;
        let skip = !decide::provision_duplicate(policy, !live.is_empty());
        let message = if live.is_empty() {
            format!(
                "{what} has {attr} = {key:?} like {}, which is gone: a new account is created and the old one deprovisioned, losing its history",
                join(&gone)
            )
        } else {
            let others = join(&live);
            match policy {
                DuplicatePolicy::Report => {
                    format!("{what} has {attr} = {key:?} like {others}; a separate account is created (policy report)")
                }
                DuplicatePolicy::Skip => {
                    format!("{what} has {attr} = {key:?} like {others}; it is not provisioned (policy skip)")
                }
                DuplicatePolicy::Relink => format!(
                    "{what} has {attr} = {key:?} like {others}, which is still present and not named in its aliases; it is not provisioned (policy relink)"
                ),
            }
        };
        let mut objects: Vec<String> = live.iter().chain(&gone).map(|e| e.0.clone()).collect();
        objects.push(o.id.0.clone());
        objects.sort();
        self.findings.push(Finding {
            kind: FindingKind::DuplicateIdentity,
            objects,
            message,
            remedy: "keep one source object per person in scope (disable or move the old one), or list the old id in the new object's aliases (sIDHistory) and use the relink policy".into(),
        });
        (skip, !live.is_empty())
    }

    /// Links an existing account to `o`, then updates and enables it.
    fn adopt(&mut self, o: &'a SourceObject, account: &'a TargetAccount, situation: Situation, detail: &str) {
        let draft = self.push(Draft {
            kind: o.kind,
            link: self.link_for(&o.id),
            target: Some(account.id.clone()),
            action: Action::Link {
                previous: account.link.clone(),
            },
            situation,
            detail: detail.to_owned(),
            after: vec![],
        });
        self.new_accounts.insert(
            &o.id,
            Account {
                target: Some(&account.id),
                draft: Some(draft),
            },
        );
        self.reconcile(o, account, Some(draft), situation);
    }

    /// Linked accounts whose object was not planned: gone, out of scope, or
    /// (delta) unchanged.
    fn plan_absent(&mut self) {
        let mut accounts: Vec<&'a TargetAccount> = self.linked.values().copied().collect();
        accounts.sort_by(|a, b| a.id.cmp(&b.id));
        for account in accounts {
            let Some(link) = &account.link else { continue };
            if self.consumed.contains(&account.id) {
                continue;
            }
            let situation = match self.by_id.get(&link.external) {
                Some((_, true)) => continue, // planned already
                Some((_, false)) if self.profile.rules.out_of_scope == OutOfScope::Leave => continue,
                Some((_, false)) => Situation::OutOfScope,
                None => match self.input.mode {
                    ReadMode::Full => Situation::Absent,
                    ReadMode::Delta if self.deleted.contains(&link.external) => Situation::Deleted,
                    ReadMode::Delta => {
                        self.unchanged += 1;
                        continue;
                    }
                },
            };
            // What a partial read did not see may still be there.
            if situation != Situation::OutOfScope && self.spare() {
                continue;
            }
            let detail = match situation {
                Situation::OutOfScope => "left the scope",
                Situation::Deleted => "deleted in the source",
                _ => "no longer in the source",
            };
            let decision = decide::deprovision(
                &self.profile.rules,
                &self.input.capabilities,
                account.kind,
                account.enabled,
            );
            self.deprovision(decision, account, link.clone(), situation, detail, vec![]);
        }
    }

    /// True (and counted) when a partial read must leave this deprovision
    /// or member removal out: a full read's absent objects may only be
    /// unread, and a delta cut short may not have listed what is still
    /// present, so nothing a partial delta implies is removed.
    fn spare(&mut self) -> bool {
        let spare = !self.input.completeness.is_complete();
        self.spared += usize::from(spare);
        spare
    }

    /// [`Planner::spare`] for deprovisions of objects that were read (source
    /// disabled, left the scope): only a partial delta leaves them out.
    fn spare_deprovision(&mut self) -> bool {
        self.input.mode == ReadMode::Delta && self.spare()
    }

    fn partial_read_finding(&mut self) {
        let spared = self.spared;
        if spared == 0 {
            return;
        }
        let reason = match self.input.completeness {
            Completeness::Partial { reason } => reason.as_str(),
            Completeness::Complete => "",
        };
        let message = match self.input.mode {
            ReadMode::Full => {
                format!("the read was partial ({reason}): {spared} linked account(s) not seen are not deprovisioned")
            }
            ReadMode::Delta => format!(
                "the delta read was partial ({reason}): {spared} deprovision(s) and member removal(s) are left for the next complete read"
            ),
        };
        self.findings.push(Finding {
            kind: FindingKind::PartialRead,
            objects: vec![],
            message,
            remedy: "fix the cause; the next complete read deprovisions what is really gone".into(),
        });
    }

    /// Carries out what the rules decided for `account`: a disable or a
    /// delete (unless a cut-short delta leaves it for later), or a finding.
    fn deprovision(
        &mut self,
        decision: Decision,
        account: &'a TargetAccount,
        link: Link,
        situation: Situation,
        detail: &str,
        after: Vec<usize>,
    ) {
        let (action, detail) = match decision {
            Decision::Nothing => return,
            Decision::Keep(why) => return self.note(why.kind, why.message, why.remedy, &link.external),
            Decision::Delete if self.contested.contains(&account.id) => {
                return self.note(
                    FindingKind::DuplicateIdentity,
                    "accounts gone from the source are kept, not deleted: each could be the old account of a new object with the same correlation key",
                    "link the right account to the new object by hand (or delete the ones that are not), then run again",
                    &link.external,
                );
            }
            Decision::Delete => (Action::Delete, format!("{detail} (profile deletes)")),
            Decision::Disable => (Action::Disable, detail.to_owned()),
        };
        if self.spare_deprovision() {
            return;
        }
        self.push(Draft {
            kind: account.kind,
            link,
            target: Some(account.id.clone()),
            action,
            situation,
            detail,
            after,
        });
    }

    /// Where `external`'s account is (or will be), if it is managed here.
    fn account_of(&self, external: &ExternalId) -> Option<Account<'a>> {
        if let Some(a) = self.new_accounts.get(external) {
            return Some(*a);
        }
        let account = self.linked.get(external)?;
        if self.consumed.contains(&account.id) {
            return None;
        }
        let managed = match self.input.mode {
            // Not read by a partial read: unknown, so still managed (a
            // membership is never removed because a read was cut short).
            ReadMode::Full => match self.by_id.get(external) {
                Some((_, inside)) => *inside,
                None => !self.input.completeness.is_complete(),
            },
            // Read in this delta: in scope or not; otherwise unchanged, unless deleted.
            ReadMode::Delta => match self.by_id.get(external) {
                Some((_, inside)) => *inside,
                None => !self.gone(external),
            },
        };
        managed.then_some(Account {
            target: Some(&account.id),
            draft: None,
        })
    }

    /// Member adds and removes for every group in scope; members not managed
    /// by the profile are left alone.
    fn plan_memberships(&mut self, groups: Vec<(&'a ExternalId, Vec<&'a ExternalId>)>) {
        // Accounts by target id, to translate a group's current members.
        let by_target: Map<&'a TargetId, &'a TargetAccount> = self
            .input
            .linked
            .iter()
            .chain(self.input.candidates)
            .map(|a| (&a.id, a))
            .collect();
        // Accounts this plan links to another object (adoptions, relinks).
        let relinked: Map<&'a TargetId, &'a ExternalId> = self
            .new_accounts
            .iter()
            .filter_map(|(e, a)| Some((a.target?, *e)))
            .collect();
        // The object a managed account stands for, after this plan's links.
        let managed = |t: &'a TargetId| -> Option<&'a ExternalId> {
            if let Some(e) = relinked.get(t) {
                return Some(*e);
            }
            let account = by_target.get(t)?;
            let external = &account.link.as_ref().filter(|l| l.profile == self.profile.id)?.external;
            let current = self.linked.get(external)?;
            (current.id == *t && !self.consumed.contains(t)).then_some(external)
        };
        // Adds and removes, worked out first (the closure above borrows the
        // planner), then pushed.
        let mut changes: Vec<(&'a ExternalId, Account<'a>, &'a ExternalId, Option<&'a TargetId>)> = Vec::new();
        for (group, members) in groups {
            let Some(group_account) = self.account_of(group) else {
                continue;
            };
            let current: BTreeMap<&'a ExternalId, &'a TargetId> = group_account
                .target
                .and_then(|t| by_target.get(t))
                .map(|g| g.members.iter().filter_map(|t| Some((managed(t)?, t))).collect())
                .unwrap_or_default();
            let desired: BTreeSet<&'a ExternalId> = members
                .into_iter()
                .filter(|m| *m != group && self.account_of(m).is_some())
                .collect();
            changes.extend(
                desired
                    .iter()
                    .filter(|m| !current.contains_key(*m))
                    .map(|m| (group, group_account, *m, None)),
            );
            changes.extend(
                current
                    .iter()
                    .filter(|(m, _)| !desired.contains(*m))
                    .map(|(m, t)| (group, group_account, *m, Some(*t))),
            );
        }
        for (group, group_account, m, removed) in changes {
            let (action, detail, after) = match removed {
                None => {
                    let Some(member) = self.account_of(m) else { continue };
                    (
                        Action::AddMember {
                            member: self.link_for(m),
                            member_target: member.target.cloned(),
                        },
                        format!("{m} joined {group}"),
                        group_account.draft.into_iter().chain(member.draft).collect(),
                    )
                }
                Some(_) if self.input.mode == ReadMode::Delta && self.spare() => continue,
                Some(t) => (
                    Action::RemoveMember {
                        member: self.link_for(m),
                        member_target: t.clone(),
                    },
                    format!("{m} left {group}"),
                    group_account.draft.into_iter().collect(),
                ),
            };
            self.push(Draft {
                kind: ObjectKind::Group,
                link: self.link_for(group),
                target: group_account.target.cloned(),
                action,
                situation: Situation::Membership,
                detail,
                after,
            });
        }
    }

    fn apply_threshold(&mut self) {
        let count = self.drafts.iter().filter(|d| d.action.is_deprovision()).count();
        let threshold = self.profile.rules.threshold;
        let linked = self.input.linked_total;
        if count == 0 || self.input.confirmed || !threshold.exceeded(count, linked) {
            return;
        }
        // Disables and deletes are held (in `finish`); the run still creates and updates.
        let why = format!("{count} deprovisions of {linked} linked accounts exceed the threshold");
        self.findings.push(Finding {
            kind: FindingKind::ThresholdExceeded,
            objects: vec![],
            message: format!("{why} (max {:?} or {:?} %): they are held", threshold.max_count, threshold.max_percent),
            remedy: "review the plan; if the deprovisions are right, confirm them (idsync sync --yes), otherwise fix the scope or the source".into(),
        });
    }

    fn finish(mut self) -> Plan {
        let threshold_held = self.findings.iter().any(|f| f.kind == FindingKind::ThresholdExceeded);
        for ((kind, message, remedy), objects) in std::mem::take(&mut self.grouped) {
            self.findings.push(Finding {
                kind,
                objects: objects.into_iter().collect(),
                message: message.to_owned(),
                remedy: remedy.to_owned(),
            });
        }
        let mut order: Vec<usize> = (0..self.drafts.len()).collect();
        let key = |d: &Draft| {
            let member = match &d.action {
                Action::AddMember { member, .. } | Action::RemoveMember { member, .. } => Some(member.external.clone()),
                _ => None,
            };
            (
                d.action.phase(),
                d.kind,
                d.link.external.clone(),
                d.action.name(),
                member,
            )
        };
        order.sort_by_cached_key(|&i| key(&self.drafts[i]));
        let mut id_of = vec![0 as OpId; self.drafts.len()];
        for (new, &old) in order.iter().enumerate() {
            id_of[old] = new as OpId;
        }
        let mut slots: Vec<Option<Draft>> = self.drafts.into_iter().map(Some).collect();
        let operations: Vec<Operation> = order
            .iter()
            .enumerate()
            .filter_map(|(new, &old)| {
                let d = slots[old].take()?;
                let mut after: Vec<OpId> = d.after.iter().map(|&a| id_of[a]).collect();
                after.sort_unstable();
                let held =
                    (threshold_held && d.action.is_deprovision()).then(|| "deprovision threshold exceeded".to_owned());
                Some(Operation {
                    id: new as OpId,
                    kind: d.kind,
                    link: d.link,
                    target: d.target,
                    action: d.action,
                    reason: Reason {
                        situation: d.situation,
                        detail: d.detail,
                    },
                    after,
                    held,
                })
            })
            .collect();
        self.findings.sort();
        let counts = Counts::of(
            &operations,
            self.in_scope.len(),
            self.input.linked_total,
            self.unchanged,
        );
        Plan {
            profile: self.profile.id,
            mode: self.input.mode,
            completeness: self.input.completeness.clone(),
            operations,
            findings: self.findings,
            counts,
        }
    }
}
