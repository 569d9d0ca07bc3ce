//! Planner properties, checked with proptest on generated directories,
//! applications and reads.
//!
//! What is generated: a directory (users and groups in containers, some
//! disabled, some sharing a correlation key, some naming others in their
//! aliases); an application holding accounts linked to this profile, to a
//! second active profile, to a retired one, or to none; the profile's rules
//! and scope (kinds, containers, attribute predicates, out-of-scope policy,
//! `adopt_from`, threshold); what the target can do (groups, disable,
//! delete, veto) and which deprovisions it refuses; and a read of the
//! directory as the source streams it: full, delta of changed and deleted
//! objects, or delta in present mode, each complete or cut short, with the
//! same external id sometimes read twice (identical or differing copies).
//! The engine's share (collecting the stream, turning "linked and neither
//! present nor changed" into deleted ids, looking candidates up, asking the
//! veto) is modelled here as the engine does it.
//!
//! The oracles are computed from those inputs: never from the planner's
//! `Situation` labels or from `Threshold::exceeded`. The properties:
//! determinism and order-insensitivity; idempotence (apply, plan the same
//! read again: nothing to do); nothing deleted unless the profile opts in
//! and the target can, no disable or enable a target cannot do; Do Not
//! Disable; a cut-short full read deprovisions only what it read; each
//! linked account gets exactly what its object calls for, and memberships
//! follow the groups; the threshold; one account per (profile, external
//! id), and creates only where no account can be the object's; no account
//! touched but the profile's, links only as the rules allow; an id read
//! twice counts once or is held; vetoes; `adopt_from` and cross-profile
//! overlap; two profiles on one target. And two rules being added: a
//! cut-short delta deprovisions nothing and removes no member; the
//! threshold's percentage counts every linked account.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use idsync_core::plan::{Action, FindingKind, Operation, Plan, PlanInput, ReadMode, plan};
use idsync_core::profile::{Correlation, Deprovision, DuplicatePolicy, OutOfScope, Threshold};
use idsync_core::scope::AttributePredicate;
use idsync_core::{
    Completeness, Cursor, DeltaItem, ExternalId, Link, ObjectKind, Profile, ProfileId, ReadItem, Scope, SourceObject,
    TargetAccount, TargetCapabilities, TargetId,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Cases per property: 3000, or `PROPTEST_CASES` when set (for long runs).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

type Check = Result<(), TestCaseError>;

// ---------------------------------------------------------------------------
// Profiles

/// The profile under test.
const P: &str = "22222222-2222-4222-8222-222222222222";
/// A second, active profile on the same target.
const Q: &str = "33333333-3333-4333-8333-333333333333";
/// A retired profile, which P may name in `adopt_from`.
const R: &str = "44444444-4444-4444-8444-444444444444";

fn profile_id(id: &str) -> ProfileId {
    ProfileId(id.parse().unwrap())
}

fn new_profile(id: &str, name: &str) -> Profile {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "name": name,
        "mapping": {
            "users": [
                {"field": "name", "template": "{givenName} {sn}"},
                {"field": "dept", "attribute": "department"},
                {"field": "employee", "attribute": "employeeID"}
            ],
            "groups": [{"field": "name", "attribute": "cn"}]
        }
    }))
    .unwrap()
}

/// The fields the mapping above gives `o`, worked out by hand.
fn mapped(o: &SourceObject) -> BTreeMap<String, String> {
    let text = |a: &str| o.first_text(a).unwrap_or_default().to_owned();
    match o.kind {
        ObjectKind::User => BTreeMap::from([
            ("name".to_owned(), format!("{} {}", text("givenName"), text("sn"))),
            ("dept".to_owned(), text("department")),
            ("employee".to_owned(), text("employeeID")),
        ]),
        ObjectKind::Group => BTreeMap::from([("name".to_owned(), text("cn"))]),
    }
}

const GIVEN: [&str; 4] = ["Ann", "Bob", "Cé", "Dan"];
const DEPARTMENTS: [&str; 3] = ["Sales", "IT", "HR"];
const CONTAINERS: [&str; 4] = [
    "OU=Sales,DC=acme,DC=test",
    "OU=EMEA,OU=Sales,DC=acme,DC=test",
    "OU=PreSales,DC=acme,DC=test",
    "OU=IT,DC=acme,DC=test",
];
const USERS: u8 = 24;
const GROUPS: u8 = 4;

/// kinds: 0–1 any, 2 users, 3 users and groups, 4 groups; containers: 0 any,
/// 1 Sales (and below), 2 IT and EMEA; department predicate or not.
fn scope(kinds: u8, containers: u8, department: bool) -> Scope {
    Scope {
        kinds: match kinds {
            0 | 1 => vec![],
            2 => vec![ObjectKind::User],
            3 => vec![ObjectKind::User, ObjectKind::Group],
            _ => vec![ObjectKind::Group],
        },
        containers: match containers {
            0 => vec![],
            1 => vec!["ou=sales,dc=acme,dc=test".into()],
            _ => vec![
                "OU=IT,DC=acme,DC=test".into(),
                "OU=EMEA, OU=Sales,DC=acme,DC=test".into(),
            ],
        },
        attributes: if department {
            vec![AttributePredicate {
                attribute: "department".into(),
                any_of: vec!["sales".into(), " IT ".into()],
            }]
        } else {
            vec![]
        },
        ..Scope::default()
    }
}

// ---------------------------------------------------------------------------
// The generated world

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadKind {
    Full,
    /// Changed and deleted objects.
    Delta,
    /// Changed objects and the ids still present (syncrepl present mode).
    PresentDelta,
}

/// What the source streams.
#[derive(Clone, Debug)]
enum Stream {
    Full(Vec<ReadItem>),
    Delta(Vec<DeltaItem>),
}

/// A generated world: a directory, an application, two profiles, and one
/// read of the directory by the profile under test.
#[derive(Clone)]
struct World {
    /// The profile under test (P).
    profile: Profile,
    /// Another active profile on the same target (Q).
    second: Profile,
    caps: TargetCapabilities,
    /// The directory as it is now, one object per id.
    directory: Vec<SourceObject>,
    /// The target's accounts.
    accounts: Vec<TargetAccount>,
    /// P's read of the directory.
    stream: Stream,
    /// A delta passes only the linked accounts it touches (and the total).
    touched_only: bool,
    /// Accounts whose deprovision the target refuses (when `caps.veto`).
    refused: BTreeSet<TargetId>,
    /// The operator confirmed the deprovisions.
    confirmed: bool,
}

/// One line per object, account and item: failures stay readable.
impl fmt::Debug for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = |id: &ProfileId| match id.to_string() {
            p if p == P => "P".to_owned(),
            q if q == Q => "Q".to_owned(),
            r if r == R => "R".to_owned(),
            other => other,
        };
        let object = |o: &SourceObject| {
            let attributes: Vec<String> = o
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}={:?}", v.iter().filter_map(|v| v.as_text()).collect::<Vec<_>>()))
                .collect();
            format!(
                "{} {} {} in {:?} {} aliases={:?} members={:?}",
                o.id,
                o.kind,
                if o.enabled { "enabled" } else { "disabled" },
                o.container,
                attributes.join(" "),
                o.aliases.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
                o.members.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            )
        };
        for (name, p) in [("P", &self.profile), ("Q", &self.second)] {
            let r = &p.rules;
            writeln!(
                f,
                "{name}: scope kinds={:?} containers={:?} attributes={:?}",
                p.scope.kinds,
                p.scope.containers,
                p.scope
                    .attributes
                    .iter()
                    .map(|a| (&a.attribute, &a.any_of))
                    .collect::<Vec<_>>()
            )?;
            writeln!(
                f,
                "   rules deprovision={:?} do_not_disable={} correlation={} duplicates={:?} out_of_scope={:?} adopt_from={:?} threshold={:?}",
                r.deprovision,
                r.do_not_disable,
                r.correlation.is_some(),
                r.duplicates,
                r.out_of_scope,
                r.adopt_from.iter().map(who).collect::<Vec<_>>(),
                r.threshold
            )?;
        }
        writeln!(f, "caps: {:?}", self.caps)?;
        writeln!(
            f,
            "touched_only={} confirmed={} refused={:?}",
            self.touched_only,
            self.confirmed,
            self.refused.iter().map(|t| t.0.as_str()).collect::<Vec<_>>()
        )?;
        writeln!(f, "directory:")?;
        for o in &self.directory {
            writeln!(f, "   {}", object(o))?;
        }
        writeln!(f, "accounts:")?;
        for a in &self.accounts {
            writeln!(
                f,
                "   {} {} {} link={} fields={:?} members={:?}",
                a.id,
                a.kind,
                if a.enabled { "enabled" } else { "disabled" },
                a.link
                    .as_ref()
                    .map_or("-".to_owned(), |l| format!("{}/{}", who(&l.profile), l.external)),
                a.fields,
                a.members.iter().map(|m| m.0.as_str()).collect::<Vec<_>>()
            )?;
        }
        match &self.stream {
            Stream::Full(items) => {
                writeln!(f, "full read:")?;
                for item in items {
                    match item {
                        ReadItem::Object(o) => writeln!(f, "   object {}", object(o))?,
                        ReadItem::End { completeness, .. } => writeln!(f, "   end {completeness:?}")?,
                        other => writeln!(f, "   {other:?}")?,
                    }
                }
            }
            Stream::Delta(items) => {
                writeln!(f, "delta read:")?;
                for item in items {
                    match item {
                        DeltaItem::Changed(o) => writeln!(f, "   changed {}", object(o))?,
                        DeltaItem::Deleted(id) => writeln!(f, "   deleted {id}")?,
                        DeltaItem::Present(id) => writeln!(f, "   present {id}")?,
                        DeltaItem::End { .. } => writeln!(f, "   end")?,
                        DeltaItem::ResyncRequired { reason } => writeln!(f, "   resync {reason}")?,
                        other => writeln!(f, "   {other:?}")?,
                    }
                }
            }
        }
        Ok(())
    }
}

/// Which worlds a property wants.
#[derive(Clone, Copy)]
struct Gen {
    kinds: &'static [ReadKind],
    complete: Option<bool>,
    min_copies: usize,
    touched: Option<bool>,
    veto: Option<bool>,
}

const ANY: Gen = Gen {
    kinds: &[ReadKind::Full, ReadKind::Delta, ReadKind::PresentDelta],
    complete: None,
    min_copies: 0,
    touched: None,
    veto: None,
};
const DELTAS: &[ReadKind] = &[ReadKind::Delta, ReadKind::PresentDelta];

fn flag(fixed: Option<bool>, p: f64) -> BoxedStrategy<bool> {
    match fixed {
        Some(v) => Just(v).boxed(),
        None => prop::bool::weighted(p).boxed(),
    }
}

type UserSpec = (u8, u8, u8, u8, bool, bool, u8);
type GroupSpec = (u8, Vec<u8>, u8);
type AccountSpec = (u8, u8, bool, bool, Vec<u8>, u8);
type RuleSpec = (u8, bool, bool, u8, bool, bool);
type ThresholdSpec = (Option<usize>, Option<u8>, usize);
type ScopeSpec = (u8, u8, bool, u8, bool);
type CapsSpec = (bool, bool, bool, bool, bool);
type ReadSpec = (ReadKind, bool, u64, u8, bool);
type CopySpec = (Index, u8);

fn world(g: Gen) -> BoxedStrategy<World> {
    use prop::collection::vec;
    (
        // users: id, given name, department, employee id, enabled, alias, container
        vec(
            (
                0..USERS,
                0u8..4,
                0u8..3,
                0u8..12,
                prop::bool::weighted(0.85),
                any::<bool>(),
                0u8..4,
            ),
            0..18,
        ),
        // groups: cn, members, container
        vec((0u8..4, vec(0..USERS, 0..6), 0u8..4), 0..4),
        // accounts: owner, external, fresh, enabled, members, correlation value
        vec(
            (
                0u8..8,
                0..USERS + GROUPS,
                any::<bool>(),
                prop::bool::weighted(0.8),
                vec(0u8..22, 0..4),
                0u8..12,
            ),
            0..22,
        ),
        // rules: deprovision, do not disable, correlation, duplicates, leave out of scope, adopt from R
        (
            0u8..3,
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.7),
            0u8..3,
            any::<bool>(),
            any::<bool>(),
        ),
        // threshold: max count, max percent, min count for percent
        (prop::option::of(1usize..8), prop::option::of(0u8..4), 0usize..5),
        // scopes: P's kinds, containers, department; Q's containers, department
        (0u8..5, 0u8..3, prop::bool::weighted(0.3), 0u8..3, any::<bool>()),
        // target: groups, disable, disable groups, delete, veto
        (
            prop::bool::weighted(0.7),
            prop::bool::weighted(0.7),
            any::<bool>(),
            prop::bool::weighted(0.7),
            flag(g.veto, 0.3),
        ),
        vec(0u8..22, 0..6),
        (
            prop::sample::select(g.kinds),
            flag(g.complete, 0.6),
            any::<u64>(),
            0u8..=100,
            flag(g.touched, 0.5),
        ),
        vec((any::<Index>(), 0u8..4), g.min_copies..3),
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(users, groups, accounts, rules, threshold, scopes, caps, refused, read, copies, confirmed)| {
                build(
                    users, groups, accounts, rules, threshold, scopes, caps, refused, read, copies, confirmed,
                )
            },
        )
        .boxed()
}

#[expect(
    clippy::too_many_arguments,
    reason = "one argument per generated part of the situation"
)]
fn build(
    users: Vec<UserSpec>,
    groups: Vec<GroupSpec>,
    accounts: Vec<AccountSpec>,
    (deprovision, dnd, correlation, duplicates, leave, adopt): RuleSpec,
    (max_count, max_percent, min_count): ThresholdSpec,
    (kinds, containers, department, q_containers, q_department): ScopeSpec,
    (groups_cap, disable, disable_groups, delete, veto): CapsSpec,
    refused: Vec<u8>,
    (kind, complete, seed, cut, touched_only): ReadSpec,
    copies: Vec<CopySpec>,
    confirmed: bool,
) -> World {
    let mut profile = new_profile(P, "props");
    profile.scope = scope(kinds, containers, department);
    let rules = &mut profile.rules;
    rules.deprovision = [Deprovision::Disable, Deprovision::Delete, Deprovision::Leave][deprovision as usize];
    rules.do_not_disable = dnd;
    rules.correlation = correlation.then(|| Correlation::new("employeeID", "employee"));
    rules.duplicates = [DuplicatePolicy::Report, DuplicatePolicy::Skip, DuplicatePolicy::Relink][duplicates as usize];
    rules.out_of_scope = if leave {
        OutOfScope::Leave
    } else {
        OutOfScope::Deprovision
    };
    rules.adopt_from = if adopt { vec![profile_id(R)] } else { vec![] };
    rules.threshold = Threshold::default();
    rules.threshold.max_count = max_count;
    rules.threshold.max_percent = max_percent.map(|p| [10.0, 25.0, 40.0, 60.0][p as usize]);
    rules.threshold.min_count_for_percent = min_count;
    let mut second = new_profile(Q, "second");
    second.scope = scope(0, q_containers, q_department);

    let mut directory: BTreeMap<ExternalId, SourceObject> = BTreeMap::new();
    for (id, name, dept, emp, enabled, alias, container) in users {
        let mut o = SourceObject::new(format!("u{id}"), ObjectKind::User)
            .in_container(CONTAINERS[container as usize])
            .with("givenName", GIVEN[name as usize])
            .with("sn", "X")
            .with("department", DEPARTMENTS[dept as usize])
            .with("employeeID", format!("E{emp}"))
            .enabled(enabled);
        if alias {
            o = o.with_alias(format!("S-{emp}"));
        }
        directory.insert(o.id.clone(), o);
    }
    for (i, (cn, members, container)) in groups.into_iter().enumerate() {
        let mut g = SourceObject::new(format!("g{i}"), ObjectKind::Group)
            .in_container(CONTAINERS[container as usize])
            .with("cn", format!("group{cn}"));
        for m in members {
            g = g.with_member(format!("u{m}"));
        }
        directory.insert(g.id.clone(), g);
    }

    let mut links = HashSet::new();
    let mut list = Vec::new();
    for (n, (owner, ext, fresh, enabled, members, key)) in accounts.into_iter().enumerate() {
        let (kind, external) = if ext < USERS {
            (ObjectKind::User, ExternalId(format!("u{ext}")))
        } else {
            (ObjectKind::Group, ExternalId(format!("g{}", ext - USERS)))
        };
        let owner = match owner {
            0..=3 => Some(P),
            6 => Some(Q),
            7 => Some(R),
            _ => None,
        };
        let link = owner.map(|p| Link {
            profile: profile_id(p),
            external: external.clone(),
        });
        // One account per link to start with (the rule we check keeps it so).
        if let Some(l) = &link
            && !links.insert(l.clone())
        {
            continue;
        }
        let mut a = TargetAccount::new(format!("t{n}"), kind);
        match directory.get(&external).filter(|_| fresh && link.is_some()) {
            Some(o) => {
                a.fields = mapped(o).into_iter().collect();
                a.enabled = o.enabled;
            }
            None => {
                a.fields.insert("name".into(), "old".into());
                a.fields.insert("employee".into(), format!("E{key}"));
                a.enabled = enabled;
            }
        }
        a.link = link;
        a.fields.insert("untouched".into(), "by idsync".into());
        a.members = members.into_iter().map(|m| TargetId(format!("t{m}"))).collect();
        list.push(a);
    }

    let directory: Vec<SourceObject> = directory.into_values().collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let with_copies = |mut objects: Vec<SourceObject>| {
        for (at, how) in &copies {
            if objects.is_empty() {
                break;
            }
            let mut copy = objects[at.index(objects.len())].clone();
            match how {
                0 => {}
                1 if copy.kind == ObjectKind::User => {
                    copy.attributes.remove("department");
                    copy = copy.with("department", "Elsewhere");
                }
                1 => copy.members.clear(),
                2 => copy.enabled = !copy.enabled,
                _ => copy.container = "OU=Moved,DC=acme,DC=test".into(),
            }
            objects.push(copy);
        }
        objects
    };
    let cut_at = |len: usize| len * cut as usize / 100;
    let stream = match kind {
        ReadKind::Full => {
            let mut objects = with_copies(directory.clone());
            objects.shuffle(&mut rng);
            let mut items: Vec<ReadItem> = objects.into_iter().map(ReadItem::Object).collect();
            if complete {
                items.push(ReadItem::End {
                    completeness: Completeness::Complete,
                    cursor: None,
                });
            } else {
                items.truncate(cut_at(items.len()));
            }
            Stream::Full(items)
        }
        ReadKind::Delta | ReadKind::PresentDelta => {
            let changed: Vec<SourceObject> =
                with_copies(directory.iter().filter(|_| rng.random::<bool>()).cloned().collect());
            let changed_ids: HashSet<&ExternalId> = changed.iter().map(|o| &o.id).collect();
            let gone: BTreeSet<&ExternalId> = list
                .iter()
                .filter_map(|a| a.link.as_ref().map(|l| &l.external))
                .filter(|e| !directory.iter().any(|o| &o.id == *e))
                .collect();
            let mut items: Vec<DeltaItem> = gone
                .into_iter()
                .filter(|_| rng.random_range(0..4u8) < if kind == ReadKind::Delta { 2 } else { 1 })
                .map(|e| DeltaItem::Deleted(e.clone()))
                .collect();
            if kind == ReadKind::PresentDelta {
                items.extend(
                    directory
                        .iter()
                        .filter(|o| !changed_ids.contains(&o.id))
                        .map(|o| DeltaItem::Present(o.id.clone())),
                );
            }
            items.extend(changed.iter().cloned().map(DeltaItem::Changed));
            items.shuffle(&mut rng);
            if complete {
                items.push(DeltaItem::End {
                    cursor: Cursor("next".into()),
                });
            } else {
                items.truncate(cut_at(items.len()));
            }
            Stream::Delta(items)
        }
    };
    // Fields the target gains later (batch sizes) keep their defaults.
    let caps = TargetCapabilities::default()
        .with_groups(groups_cap)
        .with_disable(disable)
        .with_disable_groups(disable_groups)
        .with_delete(delete)
        .with_veto(veto);
    World {
        profile,
        second,
        caps,
        directory,
        accounts: list,
        stream,
        touched_only,
        refused: refused.into_iter().map(|n| TargetId(format!("t{n}"))).collect(),
        confirmed,
    }
}

// ---------------------------------------------------------------------------
// The engine's share, modelled as `engine.rs` does it

/// What the engine hands the planner after a read.
#[derive(Clone, Debug)]
struct Read {
    mode: ReadMode,
    objects: Vec<SourceObject>,
    /// Deleted ids, including those the engine infers from a present set.
    deleted: Vec<ExternalId>,
    /// The deleted ids the source itself sent.
    sent_deleted: BTreeSet<ExternalId>,
    completeness: Completeness,
    /// A complete present-mode delta: the engine lists every linked account
    /// to infer its deletions.
    present: bool,
}

fn linked_to(profile: ProfileId, accounts: &[TargetAccount]) -> Vec<TargetAccount> {
    accounts
        .iter()
        .filter(|a| a.link.as_ref().is_some_and(|l| l.profile == profile))
        .cloned()
        .collect()
}

/// `Engine::read_full` / `read_delta`, then `read.present.take()`: every
/// linked id neither present nor changed is deleted.
fn engine_read(stream: &Stream, profile: ProfileId, accounts: &[TargetAccount]) -> Read {
    let cut_short = Completeness::Partial {
        reason: "the read ended early".into(),
    };
    match stream {
        Stream::Full(items) => {
            let mut objects = Vec::new();
            let mut completeness = cut_short;
            for item in items {
                match item {
                    ReadItem::Object(o) => objects.push(o.clone()),
                    ReadItem::End { completeness: c, .. } => {
                        completeness = c.clone();
                        break;
                    }
                    other => unreachable!("not generated: {other:?}"),
                }
            }
            Read {
                mode: ReadMode::Full,
                objects,
                deleted: vec![],
                sent_deleted: BTreeSet::new(),
                completeness,
                present: false,
            }
        }
        Stream::Delta(items) => {
            let (mut objects, mut deleted, mut present) = (Vec::new(), Vec::new(), None);
            let mut completeness = cut_short;
            for item in items {
                match item {
                    DeltaItem::Changed(o) => objects.push(o.clone()),
                    DeltaItem::Deleted(id) => deleted.push(id.clone()),
                    DeltaItem::Present(id) => {
                        present.get_or_insert_with(HashSet::new).insert(id.clone());
                    }
                    DeltaItem::End { .. } => {
                        completeness = Completeness::Complete;
                        break;
                    }
                    other => unreachable!("not generated: {other:?}"),
                }
            }
            let sent_deleted = deleted.iter().cloned().collect();
            // A present set cut short may not list what is still there: the
            // engine drops it.
            let present = present.filter(|_| completeness.is_complete());
            let present_used = present.is_some();
            if let Some(present) = present {
                let changed: HashSet<&ExternalId> = objects.iter().map(|o| &o.id).collect();
                deleted.extend(
                    linked_to(profile, accounts)
                        .iter()
                        .filter_map(|a| a.link.as_ref().map(|l| &l.external))
                        .filter(|e| !present.contains(*e) && !changed.contains(e))
                        .cloned(),
                );
            }
            Read {
                mode: ReadMode::Delta,
                objects,
                deleted,
                sent_deleted,
                completeness,
                present: present_used,
            }
        }
    }
}

/// The linked accounts a delta touches: those of the objects it lists (changed,
/// deleted, members of changed groups) and the current members of those
/// groups' accounts (the engine lists every linked account when a group it
/// has no members remembered for has members in the target).
fn touched(read: &Read, linked: Vec<TargetAccount>, accounts: &[TargetAccount]) -> Vec<TargetAccount> {
    let mut named: HashSet<&ExternalId> = read.deleted.iter().collect();
    for o in &read.objects {
        named.insert(&o.id);
        named.extend(o.members.iter());
    }
    // The members of every account found for a named group, whoever links it
    // (an adopted group brings its members).
    let members: HashSet<&TargetId> = accounts
        .iter()
        .filter(|a| a.link.as_ref().is_some_and(|l| named.contains(&l.external)))
        .flat_map(|a| a.members.iter())
        .collect();
    let keep: Vec<bool> = linked
        .iter()
        .map(|a| a.link.as_ref().is_some_and(|l| named.contains(&l.external)) || members.contains(&a.id))
        .collect();
    linked
        .into_iter()
        .zip(keep)
        .filter_map(|(a, k)| k.then_some(a))
        .collect()
}

/// `Engine::lookups` against a target holding `accounts`.
fn lookups(profile: &Profile, read: &Read, linked: &[TargetAccount], accounts: &[TargetAccount]) -> Vec<TargetAccount> {
    let linked_ids: HashSet<&ExternalId> = linked
        .iter()
        .filter_map(|a| a.link.as_ref().map(|l| &l.external))
        .collect();
    let corr = profile.rules.correlation.as_ref();
    let wanted: Vec<&SourceObject> = read
        .objects
        .iter()
        .filter(|o| !linked_ids.contains(&o.id) && o.enabled && profile.scope.admits(o))
        .collect();
    accounts
        .iter()
        .filter(|a| {
            wanted.iter().any(|o| {
                a.kind == o.kind
                    && (a.link.as_ref().is_some_and(|l| l.external == o.id)
                        || corr.is_some_and(|c| {
                            let value = o.first_text(&c.attribute).filter(|v| !v.trim().is_empty());
                            value.is_some_and(|v| a.fields.get(&c.field).is_some_and(|f| norm(f) == norm(v)))
                        }))
            })
        })
        .cloned()
        .collect()
}

/// No ids (a plan with nothing gone from earlier runs).
static NO_IDS: BTreeSet<idsync_core::ExternalId> = BTreeSet::new();

/// The one place a `PlanInput` is built.
fn plan_input<'a>(
    profile: &'a Profile,
    capabilities: TargetCapabilities,
    read: &'a Read,
    linked: &'a [TargetAccount],
    candidates: &'a [TargetAccount],
    linked_total: usize,
    confirmed: bool,
) -> PlanInput<'a> {
    // `linked_total`: every account linked to the profile, even when a delta
    // passes only the ones it touches (the threshold's percentage counts
    // them all).
    PlanInput {
        profile,
        capabilities,
        mode: read.mode,
        completeness: &read.completeness,
        objects: &read.objects,
        deleted: &read.deleted,
        linked,
        linked_total,
        candidates,
        assigned: None,
        unread_groups: &[],
        gone: &NO_IDS,
        confirmed,
    }
}

/// One planned run: its inputs and its plan.
#[derive(Clone, Debug)]
struct Run {
    read: Read,
    linked: Vec<TargetAccount>,
    candidates: Vec<TargetAccount>,
    /// Every account linked to the profile.
    total: usize,
    plan: Plan,
}

impl Run {
    fn new(
        profile: &Profile,
        caps: TargetCapabilities,
        stream: &Stream,
        accounts: &[TargetAccount],
        touched_only: bool,
        confirmed: bool,
    ) -> Run {
        let read = engine_read(stream, profile.id, accounts);
        let all = linked_to(profile.id, accounts);
        let total = all.len();
        // As `Engine::target_view`: a delta without a present set looks up
        // what it names, and the profile's own accounts its look-ups find
        // join the linked ones.
        let named = touched_only && read.mode == ReadMode::Delta && !read.present;
        let mut linked = if named { touched(&read, all, accounts) } else { all };
        let mut candidates = lookups(profile, &read, &linked, accounts);
        if named {
            let own = |a: &TargetAccount| a.link.as_ref().is_some_and(|l| l.profile == profile.id);
            for a in candidates.iter().filter(|a| own(a)) {
                if !linked.iter().any(|l| l.id == a.id) {
                    linked.push(a.clone());
                }
            }
            candidates.retain(|a| !own(a));
        }
        let plan = plan(plan_input(profile, caps, &read, &linked, &candidates, total, confirmed));
        Run {
            read,
            linked,
            candidates,
            total,
            plan,
        }
    }

    /// `Engine::vetoes`: each deprovision not held whose account the target
    /// refuses is vetoed.
    fn veto(mut self, caps: TargetCapabilities, refused: &BTreeSet<TargetId>) -> Run {
        if caps.veto {
            let denied: Vec<u32> = self
                .plan
                .operations
                .iter()
                .filter(|op| op.action.is_deprovision() && op.held.is_none())
                .filter(|op| {
                    op.target
                        .as_ref()
                        .is_some_and(|t| refused.contains(t) && self.linked.iter().any(|a| &a.id == t))
                })
                .map(|op| op.id)
                .collect();
            for id in denied {
                self.plan.veto(id, "open tickets");
            }
        }
        self
    }
}

impl World {
    /// P plans its read against `accounts` (no veto asked).
    fn plan(&self, accounts: &[TargetAccount], confirmed: bool) -> Run {
        Run::new(
            &self.profile,
            self.caps,
            &self.stream,
            accounts,
            self.touched_only,
            confirmed,
        )
    }

    /// P plans its read against `accounts`, then the target vetoes.
    fn run(&self, accounts: &[TargetAccount], confirmed: bool) -> Run {
        self.plan(accounts, confirmed).veto(self.caps, &self.refused)
    }

    /// Q reads the whole directory and plans against `accounts`, then the
    /// target vetoes.
    fn run_second(&self, accounts: &[TargetAccount]) -> Run {
        let mut items: Vec<ReadItem> = self.directory.iter().cloned().map(ReadItem::Object).collect();
        items.push(ReadItem::End {
            completeness: Completeness::Complete,
            cursor: None,
        });
        Run::new(&self.second, self.caps, &Stream::Full(items), accounts, false, true).veto(self.caps, &self.refused)
    }

    fn cut_short_delta(&self) -> bool {
        matches!(&self.stream, Stream::Delta(items) if !matches!(items.last(), Some(DeltaItem::End { .. })))
    }

    /// The same stream, without items repeating an earlier one exactly.
    fn without_identical_copies(&self) -> World {
        fn dedup<T: PartialEq + Clone>(items: &[T]) -> Vec<T> {
            let mut out: Vec<T> = Vec::new();
            for i in items {
                if !out.contains(i) {
                    out.push(i.clone());
                }
            }
            out
        }
        let mut w = self.clone();
        w.stream = match &self.stream {
            Stream::Full(items) => Stream::Full(dedup(items)),
            Stream::Delta(items) => Stream::Delta(dedup(items)),
        };
        w
    }

    /// The same items, ending with `End`.
    fn completed(&self) -> World {
        let mut w = self.clone();
        if let Stream::Delta(items) = &mut w.stream
            && !matches!(items.last(), Some(DeltaItem::End { .. }))
        {
            items.push(DeltaItem::End {
                cursor: Cursor("next".into()),
            });
        }
        w
    }
}

/// Applies a plan to a list of accounts the way a faithful target would;
/// new accounts get ids `{tag}1`, `{tag}2`, …
fn apply(plan: &Plan, accounts: &[TargetAccount], tag: &str) -> Vec<TargetAccount> {
    let mut by_id: BTreeMap<TargetId, TargetAccount> = accounts.iter().map(|a| (a.id.clone(), a.clone())).collect();
    let mut created: HashMap<Link, TargetId> = HashMap::new();
    let mut next = 0;
    for op in plan.operations.iter().filter(|op| op.held.is_none()) {
        let this = op.target.clone().or_else(|| created.get(&op.link).cloned());
        match &op.action {
            Action::Create { fields } => {
                next += 1;
                let id = TargetId(format!("{tag}{next}"));
                let mut a = TargetAccount::new(id.0.clone(), op.kind);
                a.link = Some(op.link.clone());
                a.fields = fields.clone();
                created.insert(op.link.clone(), id.clone());
                assert!(by_id.insert(id, a).is_none());
            }
            Action::Link { .. } => by_id.get_mut(&this.unwrap()).unwrap().link = Some(op.link.clone()),
            Action::Update { changes } => {
                let a = by_id.get_mut(&this.unwrap()).unwrap();
                for c in changes {
                    match &c.new {
                        Some(v) => a.fields.insert(c.field.clone(), v.clone()),
                        None => a.fields.remove(&c.field),
                    };
                }
            }
            Action::Enable => by_id.get_mut(&this.unwrap()).unwrap().enabled = true,
            Action::Disable => by_id.get_mut(&this.unwrap()).unwrap().enabled = false,
            Action::Delete => {
                by_id.remove(&this.unwrap());
            }
            Action::AddMember { member, member_target } => {
                let m = member_target.clone().or_else(|| created.get(member).cloned()).unwrap();
                let g = by_id.get_mut(&this.unwrap()).unwrap();
                if !g.members.contains(&m) {
                    g.members.push(m);
                }
            }
            Action::RemoveMember { member_target, .. } => by_id
                .get_mut(&this.unwrap())
                .unwrap()
                .members
                .retain(|m| m != member_target),
            other => unreachable!("no such action yet: {other:?}"),
        }
    }
    by_id.into_values().collect()
}

fn shuffled<T: Clone>(v: &[T], seed: u64) -> Vec<T> {
    let mut out = v.to_vec();
    let mut rng = StdRng::seed_from_u64(seed);
    out.shuffle(&mut rng);
    out
}

// ---------------------------------------------------------------------------
// Oracles: facts about the inputs, worked out without the planner

/// Normalized correlation value: trimmed, lower case.
fn norm(v: &str) -> String {
    v.trim().to_lowercase()
}

fn dn_key(dn: &str) -> String {
    dn.split(',')
        .map(|c| c.trim().to_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

/// The scope's rule, by hand: kind, container (or below), and for users
/// every attribute predicate.
fn admitted(scope: &Scope, o: &SourceObject) -> bool {
    let container = dn_key(&o.container);
    let kind = scope.kinds.is_empty() || scope.kinds.contains(&o.kind);
    let inside = scope.containers.is_empty()
        || scope.containers.iter().any(|c| {
            let c = dn_key(c);
            container == c || container.ends_with(&format!(",{c}"))
        });
    let attributes = o.kind == ObjectKind::Group
        || scope.attributes.iter().all(|p| {
            o.attributes.get(&p.attribute).is_some_and(|values| {
                values
                    .iter()
                    .filter_map(|v| v.as_text())
                    .any(|v| p.any_of.iter().any(|w| norm(w) == norm(v)))
            })
        });
    kind && inside && attributes
}

fn is_membership(action: &Action) -> bool {
    matches!(action, Action::AddMember { .. } | Action::RemoveMember { .. })
}

/// What the inputs of one run say, for one profile.
struct Facts<'a> {
    profile: &'a Profile,
    caps: TargetCapabilities,
    run: &'a Run,
    /// Every copy read of each id.
    copies: BTreeMap<&'a ExternalId, Vec<&'a SourceObject>>,
    deleted: HashSet<&'a ExternalId>,
}

impl<'a> Facts<'a> {
    fn new(profile: &'a Profile, caps: TargetCapabilities, run: &'a Run) -> Facts<'a> {
        let mut copies: BTreeMap<&ExternalId, Vec<&SourceObject>> = BTreeMap::new();
        for o in &run.read.objects {
            copies.entry(&o.id).or_default().push(o);
        }
        Facts {
            profile,
            caps,
            run,
            copies,
            deleted: run.read.deleted.iter().collect(),
        }
    }

    fn complete(&self) -> bool {
        self.run.read.completeness.is_complete()
    }

    fn read(&self, id: &ExternalId) -> bool {
        self.copies.contains_key(id)
    }

    /// Read with copies that differ.
    fn conflicting(&self, id: &ExternalId) -> bool {
        self.copies.get(id).is_some_and(|c| c.iter().any(|o| *o != c[0]))
    }

    /// The object read, when all its copies agree.
    fn object(&self, id: &ExternalId) -> Option<&'a SourceObject> {
        let copies = self.copies.get(id)?;
        copies.iter().all(|o| *o == copies[0]).then_some(copies[0])
    }

    fn admits(&self, o: &SourceObject) -> bool {
        admitted(&self.profile.scope, o)
    }

    /// Not read, and gone: absent from a complete full read, or deleted in a
    /// delta.
    fn gone(&self, id: &ExternalId) -> bool {
        !self.read(id)
            && match self.run.read.mode {
                ReadMode::Full => self.complete(),
                ReadMode::Delta => self.deleted.contains(id),
            }
    }

    fn can_disable(&self, kind: ObjectKind) -> bool {
        self.caps.can_disable(kind)
    }

    fn key(&self, o: &SourceObject) -> Option<String> {
        let corr = self.profile.rules.correlation.as_ref()?;
        o.first_text(&corr.attribute).map(norm).filter(|k| !k.is_empty())
    }

    fn account_key(&self, a: &TargetAccount) -> Option<String> {
        let corr = self.profile.rules.correlation.as_ref()?;
        a.fields.get(&corr.field).map(|v| norm(v)).filter(|k| !k.is_empty())
    }

    /// The object as the profile would sync it: read (all copies agreeing),
    /// in scope, enabled, of a kind the target manages.
    fn wanted(&self, id: &ExternalId) -> Option<&'a SourceObject> {
        self.object(id)
            .filter(|o| self.admits(o) && o.enabled && (o.kind == ObjectKind::User || self.caps.groups))
    }

    fn linked_account(&self, id: &ExternalId) -> Option<&'a TargetAccount> {
        self.run
            .linked
            .iter()
            .find(|a| a.link.as_ref().is_some_and(|l| &l.external == id))
    }

    fn input_account(&self, id: &TargetId) -> Option<&'a TargetAccount> {
        self.run.linked.iter().chain(&self.run.candidates).find(|a| &a.id == id)
    }

    /// True when `old`, an account of this profile linked to another object,
    /// may pass to `new` under the relink rule: same kind and correlation
    /// key, `new` enabled, and the old object gone (the source said so) or
    /// read, disabled and named by `new`'s aliases.
    fn may_relink(&self, old: &TargetAccount, new: &SourceObject) -> bool {
        let rules = &self.profile.rules;
        let Some(old_id) = old.link.as_ref().map(|l| &l.external) else {
            return false;
        };
        if rules.duplicates != DuplicatePolicy::Relink || *old_id == new.id || !new.enabled || old.kind != new.kind {
            return false;
        }
        let old_key = match self.copies.get(old_id) {
            Some(copies) => self.key(copies[0]),
            None => self.account_key(old),
        };
        if old_key.is_none() || old_key != self.key(new) {
            return false;
        }
        match self.copies.get(old_id) {
            Some(copies) => {
                let o = copies[0];
                !self.conflicting(old_id)
                    && !o.enabled
                    && (new.aliases.contains(old_id) || o.aliases.iter().any(|a| new.aliases.contains(a)))
            }
            None => match self.run.read.mode {
                ReadMode::Full => self.complete(),
                // Deleted by the source, or inferred from a present set that
                // was read to its end.
                ReadMode::Delta => {
                    self.run.read.sent_deleted.contains(old_id) || (self.complete() && self.deleted.contains(old_id))
                }
            },
        }
    }
}

/// Every account an operation touches is the profile's, or one this plan
/// links; and every link is one of: an unlinked account the correlation
/// rule matches (and no other), an account of a profile in `adopt_from`
/// for the same object, or (relink policy) the profile's own account of an
/// older object.
fn check_links(f: &Facts, all: &[TargetAccount], plan: &Plan) -> Check {
    let mut links: HashMap<&TargetId, &Operation> = HashMap::new();
    for op in plan
        .operations
        .iter()
        .filter(|op| matches!(op.action, Action::Link { .. }))
    {
        let Some(t) = &op.target else {
            return Err(TestCaseError::fail(format!("link {} without an account", op.id)));
        };
        prop_assert!(links.insert(t, op).is_none(), "two links on account {t}:\n{plan}");
        prop_assert_eq!(op.link.profile, f.profile.id);
        let Some(a) = f.input_account(t) else {
            return Err(TestCaseError::fail(format!(
                "op {} links {t}, which it was not given",
                op.id
            )));
        };
        let x = &op.link.external;
        let o = f.wanted(x);
        prop_assert!(
            o.is_some(),
            "op {} links {t} to {x}, which is not to be synced:\n{plan}",
            op.id
        );
        let o = o.unwrap();
        prop_assert!(
            f.linked_account(x).is_none(),
            "op {} links {t} to {x}, which has an account:\n{plan}",
            op.id
        );
        let rules = &f.profile.rules;
        let legitimate = a.kind == o.kind
            && match &a.link {
                None => {
                    let key = f.key(o);
                    let unique_account = key.is_some()
                        && all
                            .iter()
                            .filter(|b| b.link.is_none() && b.kind == o.kind && f.account_key(b) == key)
                            .map(|b| &b.id)
                            .eq([&a.id]);
                    let unique_object = !f.copies.iter().any(|(id, copies)| {
                        *id != x
                            && copies
                                .iter()
                                .all(|c| c.kind == o.kind && f.admits(c) && f.key(c) == key)
                    });
                    unique_account && unique_object
                }
                Some(l) if rules.adopt_from.contains(&l.profile) => l.external == *x,
                Some(l) if l.profile == f.profile.id => f.may_relink(a, o),
                Some(_) => false,
            };
        prop_assert!(
            legitimate,
            "op {} links account {t} ({:?}) to {x}, which no rule allows:\n{plan}",
            op.id,
            a.link
        );
    }
    for op in &plan.operations {
        let Some(t) = &op.target else { continue };
        if matches!(op.action, Action::Link { .. }) {
            continue;
        }
        let own = f
            .run
            .linked
            .iter()
            .any(|a| &a.id == t && a.link.as_ref() == Some(&op.link));
        let linked_now = links.get(t).is_some_and(|l| l.link == op.link);
        prop_assert!(
            (own && !links.contains_key(t)) || linked_now,
            "op {} ({}) touches account {t}, which is not {}'s:\n{plan}",
            op.id,
            op.action.name(),
            op.link
        );
    }
    Ok(())
}

/// After `plan` is applied, every account not linked to the profile and
/// not linked by the plan is exactly as it was.
fn check_others_unchanged(profile: ProfileId, before: &[TargetAccount], plan: &Plan, after: &[TargetAccount]) -> Check {
    let linked_by_plan: HashSet<&TargetId> = plan
        .operations
        .iter()
        .filter(|op| matches!(op.action, Action::Link { .. }) && op.held.is_none())
        .filter_map(|op| op.target.as_ref())
        .collect();
    for a in before {
        if a.link.as_ref().is_some_and(|l| l.profile == profile) || linked_by_plan.contains(&a.id) {
            continue;
        }
        let now = after.iter().find(|b| b.id == a.id);
        prop_assert_eq!(now, Some(a), "{}", plan);
    }
    Ok(())
}

/// For each linked account given to the planner and not relinked: the
/// operations its object calls for, and only those (memberships aside).
/// Not for cut-short deltas (see `a_cut_short_delta_…`).
fn check_fates(f: &Facts, plan: &Plan) -> Check {
    let rules = &f.profile.rules;
    let relinked: HashSet<&TargetId> = plan
        .operations
        .iter()
        .filter(|op| matches!(op.action, Action::Link { .. }))
        .filter_map(|op| op.target.as_ref())
        .collect();
    for a in &f.run.linked {
        if relinked.contains(&a.id) {
            continue;
        }
        let e = &a.link.as_ref().unwrap().external;
        let ops: BTreeSet<&str> = plan
            .operations
            .iter()
            .filter(|op| op.target.as_ref() == Some(&a.id) && !is_membership(&op.action))
            .map(|op| op.action.name())
            .collect();
        let mut expected: BTreeSet<&str> = BTreeSet::new();
        let mut finding = None;
        let mut deprovision = |action: Deprovision, expected: &mut BTreeSet<&str>| match action {
            Deprovision::Leave => {}
            Deprovision::Disable if !a.enabled => {}
            _ if rules.do_not_disable => finding = Some(FindingKind::DoNotDisable),
            Deprovision::Disable if !f.can_disable(a.kind) => finding = Some(FindingKind::Unsupported),
            Deprovision::Delete if !f.caps.delete => finding = Some(FindingKind::Unsupported),
            Deprovision::Disable => {
                expected.insert("disable");
            }
            Deprovision::Delete => {
                expected.insert("delete");
            }
        };
        let why = if f.conflicting(e) {
            "read with differing copies: left alone"
        } else if let Some(o) = f.object(e) {
            if !f.admits(o) {
                if rules.out_of_scope == OutOfScope::Deprovision {
                    deprovision(rules.deprovision, &mut expected);
                }
                "out of scope"
            } else if o.kind == ObjectKind::Group && !f.caps.groups {
                "a group, and the target has none"
            } else {
                if mapped(o).iter().any(|(k, v)| a.fields.get(k) != Some(v)) {
                    expected.insert("update");
                }
                if o.enabled && !a.enabled && f.can_disable(a.kind) {
                    expected.insert("enable");
                }
                if !o.enabled && a.enabled {
                    deprovision(Deprovision::Disable, &mut expected);
                }
                "in scope"
            }
        } else if f.gone(e) {
            deprovision(rules.deprovision, &mut expected);
            "gone"
        } else {
            "not read, not gone"
        };
        // A gone account that could be the old account of a new object, among
        // others (relink policy), is kept and reported instead of deleted.
        let contested = expected.contains("delete")
            && !ops.contains("delete")
            && rules.duplicates == DuplicatePolicy::Relink
            && plan.findings.iter().any(|x| {
                x.kind == FindingKind::DuplicateIdentity
                    && x.objects.contains(&e.0)
                    && x.message
                        .starts_with("accounts gone from the source are kept, not deleted")
            });
        if contested {
            expected.remove("delete");
        }
        prop_assert_eq!(
            &ops,
            &expected,
            "account {} of {} ({}, {:?}):\n{}",
            a.id,
            e,
            why,
            finding,
            plan
        );
        if let Some(kind) = finding {
            prop_assert!(
                plan.findings.iter().any(|x| x.kind == kind && x.objects.contains(&e.0)),
                "no {:?} finding for {}:\n{}",
                kind,
                e,
                plan
            );
        }
    }
    Ok(())
}

/// Members are added only when their group lists them, and removed only
/// when the group does not list them any more, or the member left the scope
/// or is gone.
fn check_members(f: &Facts, plan: &Plan) -> Check {
    for op in &plan.operations {
        let (member, removed) = match &op.action {
            Action::AddMember { member, .. } => (member, None),
            Action::RemoveMember { member, member_target } => (member, Some(member_target)),
            _ => continue,
        };
        let g = &op.link.external;
        let group = f.object(g).filter(|o| f.admits(o) && f.caps.groups);
        prop_assert!(group.is_some(), "op {}: {g} is not a group in scope:\n{plan}", op.id);
        let lists = group.unwrap().members.contains(&member.external);
        match removed {
            None => prop_assert!(lists, "op {} adds a member {g} does not list:\n{plan}", op.id),
            Some(t) => {
                let m = &member.external;
                let left = f.object(m).is_some_and(|o| !f.admits(o));
                prop_assert!(
                    !lists || left || f.gone(m),
                    "op {} removes {m} ({t}), which {g} lists:\n{plan}",
                    op.id
                );
                let account = op.target.as_ref().and_then(|t| f.input_account(t));
                prop_assert!(
                    account.is_some_and(|a| a.members.contains(t)),
                    "op {} removes {t}, which is not a member:\n{plan}",
                    op.id
                );
            }
        }
    }
    Ok(())
}

/// The threshold, by hand: more than `max_count` deprovisions, or from
/// `min_count_for_percent` deprovisions up, more than `max_percent` % of
/// every account linked to the profile. Beyond it, every deprovision is
/// held (unless confirmed) with a finding; otherwise none is.
fn check_threshold(profile: &Profile, plan: &Plan, total: usize, confirmed: bool) -> Check {
    let t = profile.rules.threshold;
    let n = plan.operations.iter().filter(|op| op.action.is_deprovision()).count();
    let by_count = t.max_count.is_some_and(|max| n > max);
    let by_percent = t
        .max_percent
        .is_some_and(|max| n >= t.min_count_for_percent && total > 0 && (n * 100) as f64 / total as f64 > max);
    let hold = (by_count || by_percent) && !confirmed;
    for op in &plan.operations {
        let held = op.action.is_deprovision() && hold;
        prop_assert_eq!(
            op.held.is_some(),
            held,
            "op {}: {} deprovisions of {} linked, threshold {:?}:\n{}",
            op.id,
            n,
            total,
            t,
            plan
        );
    }
    let finding = plan.findings.iter().any(|f| f.kind == FindingKind::ThresholdExceeded);
    prop_assert_eq!(finding, hold, "{}", plan);
    Ok(())
}

/// The operations as (kind, link, account, action) tuples, ids and
/// dependencies aside.
fn op_set(plan: &Plan, keep: impl Fn(&Operation) -> bool) -> BTreeSet<String> {
    plan.operations
        .iter()
        .filter(|op| keep(op))
        .map(|op| format!("{} {} {:?} {:?}", op.kind, op.link, op.target, op.action))
        .collect()
}

// ---------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn the_plan_is_deterministic_and_order_insensitive(world in world(ANY), seed in any::<u64>()) {
        let run = world.plan(&world.accounts, world.confirmed);
        let mut read = run.read.clone();
        read.objects = shuffled(&read.objects, seed);
        read.deleted = shuffled(&read.deleted, seed ^ 1);
        let linked = shuffled(&run.linked, seed ^ 2);
        let candidates = shuffled(&run.candidates, seed ^ 3);
        let again = plan(plan_input(&world.profile, world.caps, &read, &linked, &candidates, run.total, world.confirmed));
        prop_assert_eq!(run.plan.to_json(), again.to_json());
        prop_assert_eq!(run.plan.to_json(), world.plan(&world.accounts, world.confirmed).plan.to_json());
    }

    /// Planning the same read again, once its plan (less what the target
    /// vetoed) is applied, yields nothing to do: full or delta, complete or
    /// cut short.
    #[test]
    fn applying_then_planning_again_yields_an_empty_plan(world in world(ANY)) {
        let first = world.run(&world.accounts, true);
        let after = apply(&first.plan, &world.accounts, "a");
        let second = world.run(&after, true);
        prop_assert!(second.plan.is_empty(), "first:\n{}\nsecond:\n{}", first.plan, second.plan);
    }

    #[test]
    fn nothing_is_deleted_unless_the_profile_opts_in_and_the_target_can(world in world(ANY)) {
        let run = world.run(&world.accounts, true);
        let rules = &world.profile.rules;
        for op in &run.plan.operations {
            match op.action {
                Action::Delete => prop_assert!(
                    rules.deprovision == Deprovision::Delete && world.caps.delete,
                    "{}", run.plan
                ),
                Action::Disable | Action::Enable => prop_assert!(
                    world.caps.can_disable(op.kind),
                    "the target cannot disable or enable a {}:\n{}", op.kind, run.plan
                ),
                _ => {}
            }
        }
    }

    #[test]
    fn do_not_disable_means_no_disable_and_no_delete(world in world(ANY)) {
        let mut world = world;
        world.profile.rules.do_not_disable = true;
        let run = world.run(&world.accounts, true);
        prop_assert!(run.plan.operations.iter().all(|op| !op.action.is_deprovision()), "{}", run.plan);
    }

    /// A full read cut short deprovisions only accounts whose object it
    /// read (disabled, or out of scope), and never removes a member that
    /// its group lists and that was not read.
    #[test]
    fn a_partial_read_deprovisions_nothing_that_is_merely_absent(
        world in world(Gen { kinds: &[ReadKind::Full], complete: Some(false), ..ANY })
    ) {
        let run = world.run(&world.accounts, true);
        let f = Facts::new(&world.profile, world.caps, &run);
        for op in &run.plan.operations {
            if op.action.is_deprovision() {
                let account = op.target.as_ref().and_then(|t| f.input_account(t)).unwrap();
                let external = &account.link.as_ref().unwrap().external;
                prop_assert!(f.read(external), "op {} deprovisions {} which was not read:\n{}", op.id, external, run.plan);
            }
            if let Action::RemoveMember { member, .. } = &op.action {
                let group = f.object(&op.link.external).unwrap();
                prop_assert!(
                    f.read(&member.external) || !group.members.contains(&member.external),
                    "{}", run.plan
                );
            }
        }
    }

    /// Every linked account gets the operations its object calls for, no
    /// more: update, enable, disable (source disabled, out of scope, gone),
    /// delete (opted in), or nothing with a finding when Do Not Disable or
    /// the target forbids it; nothing for an object not read and not gone,
    /// or read twice differently. Memberships follow the groups.
    #[test]
    fn each_linked_account_gets_what_its_object_calls_for(world in world(ANY)) {
        if world.cut_short_delta() {
            return Ok(()); // rule 1, below
        }
        let run = world.plan(&world.accounts, true);
        let f = Facts::new(&world.profile, world.caps, &run);
        check_fates(&f, &run.plan)?;
        check_members(&f, &run.plan)?;
    }

    /// The threshold, recomputed from the profile's numbers, whenever the
    /// planner is given every linked account.
    #[test]
    fn deprovisions_beyond_the_threshold_are_all_held(world in world(Gen { touched: Some(false), ..ANY })) {
        let run = world.plan(&world.accounts, world.confirmed);
        check_threshold(&world.profile, &run.plan, run.total, world.confirmed)?;
    }

    #[test]
    fn there_is_exactly_one_account_per_profile_and_external_id(world in world(ANY)) {
        let run = world.run(&world.accounts, true);
        let after = apply(&run.plan, &world.accounts, "a");
        let mut seen = HashSet::new();
        for a in &after {
            if let Some(l) = &a.link {
                prop_assert!(seen.insert(l.clone()), "two accounts carry {}:\n{}", l, run.plan);
            }
        }
        // Each account gets each action at most once.
        let mut touched = HashSet::new();
        for op in run.plan.operations.iter().filter(|op| !is_membership(&op.action)) {
            prop_assert!(touched.insert((op.link.clone(), op.action.name())), "{}", run.plan);
        }
        // A create only for an object to sync that no account can be: none
        // of this profile's, none of another profile's for the same id, no
        // unlinked one with its correlation value. Without correlation,
        // such an object always gets its account.
        let f = Facts::new(&world.profile, world.caps, &run);
        for op in run.plan.operations.iter().filter(|op| matches!(op.action, Action::Create { .. })) {
            let x = &op.link.external;
            let o = f.wanted(x);
            prop_assert!(o.is_some(), "creates {} which is not to be synced:\n{}", x, run.plan);
            let o = o.unwrap();
            let key = f.key(o);
            let taken = world.accounts.iter().any(|a| {
                a.kind == o.kind
                    && match &a.link {
                        Some(l) => l.external == *x,
                        None => key.is_some() && f.account_key(a) == key,
                    }
            });
            prop_assert!(!taken, "creates {} though an account can be its:\n{}", x, run.plan);
        }
        if world.profile.rules.correlation.is_none() {
            for id in f.copies.keys() {
                let Some(o) = f.wanted(id) else { continue };
                if world.accounts.iter().any(|a| a.kind == o.kind && a.link.as_ref().is_some_and(|l| l.external == o.id)) {
                    continue;
                }
                prop_assert!(
                    run.plan.operations.iter().any(|op| op.link.external == o.id && matches!(op.action, Action::Create { .. })),
                    "{} has no account and none is created:\n{}", o.id, run.plan
                );
            }
        }
    }

    /// No operation touches an account that is not the profile's, except
    /// through a link the rules allow (checked link by link), and after the
    /// plan is applied every other account is exactly as it was.
    #[test]
    fn unmanaged_accounts_are_never_touched(world in world(ANY)) {
        if world.cut_short_delta() {
            return Ok(()); // see a_cut_short_delta_moves_no_account_on_an_inferred_deletion
        }
        let run = world.run(&world.accounts, true);
        let f = Facts::new(&world.profile, world.caps, &run);
        check_links(&f, &world.accounts, &run.plan)?;
        let after = apply(&run.plan, &world.accounts, "a");
        check_others_unchanged(world.profile.id, &world.accounts, &run.plan, &after)?;
    }

    /// Identical copies of one id count once; copies that differ hold that
    /// id (no operation on it or its account) with a finding.
    #[test]
    fn a_source_id_read_twice_counts_once_or_is_held(world in world(Gen { min_copies: 1, ..ANY })) {
        let run = world.plan(&world.accounts, world.confirmed);
        let once = world.without_identical_copies().plan(&world.accounts, world.confirmed);
        prop_assert_eq!(run.plan.to_json(), once.plan.to_json());
        let f = Facts::new(&world.profile, world.caps, &run);
        for id in f.copies.keys().filter(|id| f.conflicting(id)) {
            let account = f.linked_account(id).map(|a| &a.id);
            for op in &run.plan.operations {
                prop_assert!(
                    op.link.external != **id && (account.is_none_or(|t| op.target.as_ref() != Some(t)) || is_membership(&op.action)),
                    "op {} touches {}, read with differing copies:\n{}", op.id, id, run.plan
                );
            }
            prop_assert!(
                run.plan.findings.iter().any(|x| x.kind == FindingKind::DuplicateIdentity && x.objects.contains(&id.0)),
                "{}", run.plan
            );
        }
    }

    /// The engine's veto drops exactly the deprovisions the target refuses
    /// (not held, linked), each with a finding, and changes nothing else.
    #[test]
    fn vetoed_deprovisions_are_dropped_and_reported(world in world(Gen { veto: Some(true), ..ANY })) {
        let planned = world.plan(&world.accounts, world.confirmed);
        let vetoed = planned.clone().veto(world.caps, &world.refused);
        let refused = |op: &Operation| {
            op.action.is_deprovision()
                && op.held.is_none()
                && op.target.as_ref().is_some_and(|t| world.refused.contains(t))
        };
        let kept: Vec<&Operation> = planned.plan.operations.iter().filter(|op| !refused(op)).collect();
        prop_assert_eq!(vetoed.plan.operations.iter().collect::<Vec<_>>(), kept);
        let mut findings = vetoed.plan.findings.clone();
        for op in planned.plan.operations.iter().filter(|op| refused(op)) {
            let at = findings.iter().position(|x| x.kind == FindingKind::Vetoed && x.objects == [op.link.external.0.clone()]);
            prop_assert!(at.is_some(), "no veto finding for op {}:\n{}", op.id, vetoed.plan);
            findings.remove(at.unwrap());
        }
        prop_assert_eq!(&findings, &planned.plan.findings);
        let c = vetoed.plan.counts;
        let count = |name: &str| vetoed.plan.operations.iter().filter(|op| op.action.name() == name).count();
        prop_assert_eq!((c.disable, c.delete), (count("disable"), count("delete")));
    }

    /// An object with no account of this profile whose account another
    /// profile holds: adopted when that profile is in `adopt_from`,
    /// otherwise never given a second account, with an overlap finding.
    #[test]
    fn accounts_of_a_retired_profile_are_adopted_and_others_overlap(world in world(ANY)) {
        if world.cut_short_delta() {
            return Ok(()); // relinks there: see below
        }
        let run = world.run(&world.accounts, true);
        let f = Facts::new(&world.profile, world.caps, &run);
        let rules = &world.profile.rules;
        for id in f.copies.keys() {
            let Some(o) = f.wanted(id) else { continue };
            if world.accounts.iter().any(|a| a.link.as_ref().is_some_and(|l| l.profile == world.profile.id && l.external == o.id)) {
                continue;
            }
            let others: Vec<&TargetAccount> = world
                .accounts
                .iter()
                .filter(|a| a.kind == o.kind && a.link.as_ref().is_some_and(|l| l.external == o.id))
                .collect();
            if others.is_empty() {
                continue;
            }
            let ops: Vec<&Operation> = run.plan.operations.iter().filter(|op| op.link.external == o.id).collect();
            prop_assert!(
                ops.iter().all(|op| !matches!(op.action, Action::Create { .. })),
                "{} gets a second account:\n{}", o.id, run.plan
            );
            let link = ops.iter().find(|op| matches!(op.action, Action::Link { .. }));
            let retired = others.iter().any(|a| a.link.as_ref().is_some_and(|l| rules.adopt_from.contains(&l.profile)));
            // Another active profile manages it: an overlap, and no account
            // of it (not even a retired profile's) passes to this profile.
            let active = others.iter().any(|a| a.link.as_ref().is_some_and(|l| !rules.adopt_from.contains(&l.profile)));
            match (active, retired, link) {
                (true, _, Some(op)) => prop_assert!(false, "op {} takes an account for {}, which another profile manages:\n{}", op.id, o.id, run.plan),
                (true, _, None) => prop_assert!(
                    run.plan.findings.iter().any(|x| x.kind == FindingKind::CrossProfileOverlap && x.objects.contains(&o.id.0)),
                    "no overlap finding for {}:\n{}", o.id, run.plan
                ),
                (false, true, None) => prop_assert!(false, "{} is not adopted:\n{}", o.id, run.plan),
                _ => {}
            }
        }
    }

    /// Two profiles on one target: P plans and is applied, then Q. Neither
    /// touches the other's accounts, an object in both scopes never gets a
    /// second account, and Q reports the overlap.
    #[test]
    fn two_profiles_never_touch_each_others_accounts(world in world(ANY)) {
        let (p, q) = (world.profile.id, world.second.id);
        let owned_by = |accounts: &[TargetAccount], who: ProfileId| -> HashSet<TargetId> {
            accounts.iter().filter(|a| a.link.as_ref().is_some_and(|l| l.profile == who)).map(|a| a.id.clone()).collect()
        };
        let first = world.run(&world.accounts, true);
        let q_before = owned_by(&world.accounts, q);
        prop_assert!(
            first.plan.operations.iter().all(|op| op.target.as_ref().is_none_or(|t| !q_before.contains(t))),
            "P touches Q's accounts:\n{}", first.plan
        );
        let middle = apply(&first.plan, &world.accounts, "p");
        let second = world.run_second(&middle);
        let p_middle = owned_by(&middle, p);
        prop_assert!(
            second.plan.operations.iter().all(|op| op.target.as_ref().is_none_or(|t| !p_middle.contains(t))),
            "Q touches P's accounts:\n{}", second.plan
        );
        // Never a second account: no create for an object another profile
        // has an account for.
        for (run, before, who) in [(&first, &world.accounts, p), (&second, &middle, q)] {
            for op in run.plan.operations.iter().filter(|op| matches!(op.action, Action::Create { .. })) {
                let elsewhere = before.iter().any(|a| {
                    a.kind == op.kind && a.link.as_ref().is_some_and(|l| l.profile != who && l.external == op.link.external)
                });
                prop_assert!(!elsewhere, "{} gets a second account:\n{}", op.link, run.plan);
            }
        }
        let f = Facts::new(&world.second, world.caps, &second);
        for o in &world.directory {
            if f.wanted(&o.id).is_none() || f.linked_account(&o.id).is_some() {
                continue;
            }
            let elsewhere = middle.iter().any(|a| a.kind == o.kind && a.link.as_ref().is_some_and(|l| l.external == o.id));
            if elsewhere {
                prop_assert!(
                    second.plan.findings.iter().any(|x| x.kind == FindingKind::CrossProfileOverlap && x.objects.contains(&o.id.0)),
                    "no overlap finding for {}:\n{}", o.id, second.plan
                );
            }
        }
    }

    /// New rule: a delta that is not complete deprovisions nothing and
    /// removes no member, whether the deletion was sent or inferred from a
    /// present set. It still provisions: what does not hang on a deletion
    /// (updates and enables of the objects' own accounts, creates of objects
    /// whose correlation value no deleted id's account carries) is planned as
    /// the same items read to their end plan it, and member adds are at least
    /// those.
    #[test]
    fn a_cut_short_delta_deprovisions_nothing_and_removes_no_member(
        world in world(Gen { kinds: DELTAS, complete: Some(false), ..ANY })
    ) {
        let run = world.plan(&world.accounts, true);
        for op in &run.plan.operations {
            prop_assert!(
                !op.action.is_deprovision() && !matches!(op.action, Action::RemoveMember { .. }),
                "op {} ({}) after a cut-short delta:\n{}", op.id, op.action.name(), run.plan
            );
        }
        // Without a present set, the complete delta deletes what the cut-short
        // one does, and the rest of the plan must agree. (A present set read
        // whole infers deletions that change duplicates and relinks.)
        let present = matches!(&world.stream, Stream::Delta(items) if items.iter().any(|i| matches!(i, DeltaItem::Present(_))));
        if !present {
            let complete = world.completed().plan(&world.accounts, true);
            let f = Facts::new(&world.profile, world.caps, &complete);
            let deleted_keys: HashSet<String> = f
                .deleted
                .iter()
                .filter_map(|e| f.linked_account(e))
                .filter_map(|a| f.account_key(a))
                .collect();
            let independent = |op: &Operation| match &op.action {
                Action::Update { .. } | Action::Enable => {
                    f.linked_account(&op.link.external).map(|a| &a.id) == op.target.as_ref()
                }
                Action::Create { .. } => f
                    .object(&op.link.external)
                    .and_then(|o| f.key(o))
                    .is_none_or(|k| !deleted_keys.contains(&k)),
                _ => false,
            };
            prop_assert_eq!(
                op_set(&run.plan, independent),
                op_set(&complete.plan, independent),
                "cut short:\n{}\ncomplete:\n{}", run.plan, complete.plan
            );
            let adds = |op: &Operation| matches!(op.action, Action::AddMember { .. });
            prop_assert!(
                op_set(&complete.plan, adds).is_subset(&op_set(&run.plan, adds)),
                "cut short:\n{}\ncomplete:\n{}", run.plan, complete.plan
            );
        }
    }

    /// New rule: the threshold's percentage counts every account linked to
    /// the profile, also in a delta that passes only the accounts it touches.
    #[test]
    fn the_threshold_percentage_counts_every_linked_account(
        world in world(Gen { kinds: DELTAS, complete: Some(true), touched: Some(true), ..ANY })
    ) {
        let run = world.plan(&world.accounts, world.confirmed);
        check_threshold(&world.profile, &run.plan, run.total, world.confirmed)?;
    }

    /// Overlap is always a finding: when this profile takes an account
    /// (adopted from a retired profile, or its own relinked) for an object
    /// that another active profile already manages, the plan says so.
    #[test]
    fn an_overlap_with_an_active_profile_is_reported_even_when_an_account_is_taken(world in world(ANY)) {
        let run = world.run(&world.accounts, true);
        let rules = &world.profile.rules;
        for op in run.plan.operations.iter().filter(|op| matches!(op.action, Action::Link { .. })) {
            let x = &op.link.external;
            let active = world.accounts.iter().find(|a| {
                a.kind == op.kind
                    && a.link.as_ref().is_some_and(|l| {
                        l.profile != world.profile.id && !rules.adopt_from.contains(&l.profile) && l.external == *x
                    })
            });
            if let Some(other) = active {
                prop_assert!(
                    run.plan.findings.iter().any(|f| f.kind == FindingKind::CrossProfileOverlap && f.objects.contains(&x.0)),
                    "op {} gives {} an account though {} manages it (account {}), and no overlap is reported:\n{}",
                    op.id, x, other.link.as_ref().unwrap().profile, other.id, run.plan
                );
            }
        }
    }

    /// A cut-short delta moves no account to another object on a deletion
    /// it only inferred (a linked id missing from a present set it did not
    /// read to the end): the person may still be there.
    #[test]
    fn a_cut_short_delta_moves_no_account_on_an_inferred_deletion(
        world in world(Gen { kinds: DELTAS, complete: Some(false), ..ANY })
    ) {
        let run = world.run(&world.accounts, true);
        let f = Facts::new(&world.profile, world.caps, &run);
        check_links(&f, &world.accounts, &run.plan)?;
    }
}
