//! Planner properties, checked with proptest on generated directories and
//! applications: convergence, order-insensitivity, determinism, never delete
//! unless opted in, Do Not Disable, no deprovision after a Partial read, the
//! threshold, one account per (profile, external id), unmanaged accounts
//! untouched.

use std::collections::{BTreeMap, HashMap};

use idsync_core::plan::{Action, Plan, PlanInput, ReadMode, Situation, plan};
use idsync_core::profile::{Correlation, Deprovision, DuplicatePolicy, Threshold};
use idsync_core::{
    Completeness, Link, ObjectKind, Profile, ProfileId, SourceObject, TargetAccount, TargetCapabilities, TargetId,
};
use proptest::prelude::*;

/// Cases per property: 3000, or `PROPTEST_CASES` when set (for long runs).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

fn base_profile() -> Profile {
    serde_json::from_value(serde_json::json!({
        "id": "22222222-2222-4222-8222-222222222222",
        "name": "props",
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

fn other_profile() -> ProfileId {
    ProfileId("33333333-3333-4333-8333-333333333333".parse().unwrap())
}

/// A generated world: a directory, an application, and the profile's rules.
#[derive(Clone, Debug)]
struct World {
    profile: Profile,
    caps: TargetCapabilities,
    objects: Vec<SourceObject>,
    accounts: Vec<TargetAccount>,
    complete: bool,
}

fn user_strategy() -> impl Strategy<Value = (u8, u8, u8, u8, bool, bool)> {
    // id, name, department, employee id, enabled, has alias
    (
        0u8..24,
        0u8..4,
        0u8..3,
        0u8..12,
        prop::bool::weighted(0.85),
        prop::bool::ANY,
    )
}

fn world_strategy() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(user_strategy(), 0..18),
        prop::collection::vec((0u8..4, prop::collection::vec(0u8..24, 0..6)), 0..4),
        // accounts: (external index or unlinked/other, stale?, enabled, members)
        prop::collection::vec(
            (
                0u8..30,
                0u8..3,
                prop::bool::weighted(0.8),
                prop::collection::vec(0u8..30, 0..4),
            ),
            0..20,
        ),
        (0u8..3, prop::bool::weighted(0.2), prop::option::of(0u8..3), 0u8..3),
        (prop::bool::weighted(0.85), prop::bool::ANY, prop::bool::ANY, 1usize..8),
    )
        .prop_map(
            |(users, groups, accounts, (deprov, dnd, corr, policy), (complete, groups_cap, disable_cap, max))| {
                let mut profile = base_profile();
                profile.rules.deprovision =
                    [Deprovision::Disable, Deprovision::Delete, Deprovision::Leave][deprov as usize];
                profile.rules.do_not_disable = dnd;
                profile.rules.correlation = corr.map(|_| Correlation {
                    attribute: "employeeID".into(),
                    field: "employee".into(),
                });
                profile.rules.duplicates =
                    [DuplicatePolicy::Report, DuplicatePolicy::Skip, DuplicatePolicy::Relink][policy as usize];
                profile.rules.threshold = Threshold {
                    max_count: Some(max),
                    max_percent: Some(40.0),
                    min_count_for_percent: 3,
                };
                let mut objects: BTreeMap<String, SourceObject> = BTreeMap::new();
                for (id, name, dept, emp, enabled, alias) in users {
                    let mut o = SourceObject::new(format!("u{id}"), ObjectKind::User)
                        .with("givenName", ["Ann", "Bob", "Cé", "Dan"][name as usize])
                        .with("sn", "X")
                        .with("department", ["Sales", "IT", "HR"][dept as usize])
                        .with("employeeID", format!("E{emp}"))
                        .enabled(enabled);
                    if alias {
                        o = o.with_alias(format!("S-{emp}"));
                    }
                    objects.insert(o.id.0.clone(), o);
                }
                for (i, (cn, members)) in groups.into_iter().enumerate() {
                    let mut g = SourceObject::new(format!("g{i}"), ObjectKind::Group).with("cn", format!("group{cn}"));
                    for m in members {
                        g = g.with_member(format!("u{m}"));
                    }
                    objects.insert(g.id.0.clone(), g);
                }
                let mut linked_seen = std::collections::HashSet::new();
                let mut list = Vec::new();
                for (n, (ext, stale, enabled, members)) in accounts.into_iter().enumerate() {
                    let (kind, link) = match ext {
                        0..=23 => (
                            ObjectKind::User,
                            Some(Link {
                                profile: profile.id,
                                external: format!("u{ext}").into(),
                            }),
                        ),
                        24..=25 => (
                            ObjectKind::Group,
                            Some(Link {
                                profile: profile.id,
                                external: format!("g{}", ext - 24).into(),
                            }),
                        ),
                        26..=27 => (ObjectKind::User, None),
                        _ => (
                            ObjectKind::User,
                            Some(Link {
                                profile: other_profile(),
                                external: format!("u{}", ext - 28).into(),
                            }),
                        ),
                    };
                    // One account per link to start with (the rule we check keeps it so).
                    if let Some(l) = &link
                        && !linked_seen.insert(l.clone())
                    {
                        continue;
                    }
                    let mut a = TargetAccount::new(format!("t{n}"), kind);
                    a.link = link;
                    a.enabled = enabled;
                    a.fields
                        .insert("name".into(), if stale == 0 { "old".into() } else { "Ann X".into() });
                    a.fields.insert("employee".into(), format!("E{}", n % 12));
                    a.fields.insert("untouched".into(), "by idsync".into());
                    a.members = members.into_iter().map(|m| TargetId(format!("t{m}"))).collect();
                    list.push(a);
                }
                World {
                    profile,
                    caps: TargetCapabilities {
                        groups: groups_cap,
                        disable: disable_cap,
                        disable_groups: disable_cap,
                        delete: true,
                        veto: false,
                        ..TargetCapabilities::default()
                    },
                    objects: objects.into_values().collect(),
                    accounts: list,
                    complete,
                }
            },
        )
}

impl World {
    fn plan_with(&self, objects: &[SourceObject], accounts: &[TargetAccount], confirmed: bool) -> Plan {
        let (linked, candidates): (Vec<TargetAccount>, Vec<TargetAccount>) = accounts
            .iter()
            .cloned()
            .partition(|a| a.link.as_ref().is_some_and(|l| l.profile == self.profile.id));
        let completeness = if self.complete {
            Completeness::Complete
        } else {
            Completeness::Partial { reason: "test".into() }
        };
        plan(PlanInput {
            profile: &self.profile,
            capabilities: self.caps,
            mode: ReadMode::Full,
            completeness: &completeness,
            objects,
            deleted: &[],
            linked: &linked,
            linked_total: linked.len(),
            candidates: &candidates,
            assigned: None,
            unread_groups: &[],
            gone: &Default::default(),
            confirmed,
        })
    }

    fn plan(&self, confirmed: bool) -> Plan {
        self.plan_with(&self.objects, &self.accounts, confirmed)
    }
}

/// Applies a plan to a list of accounts the way a faithful target would.
fn apply(plan: &Plan, accounts: &[TargetAccount]) -> Vec<TargetAccount> {
    let mut by_id: BTreeMap<TargetId, TargetAccount> = accounts.iter().map(|a| (a.id.clone(), a.clone())).collect();
    let mut created: HashMap<Link, TargetId> = HashMap::new();
    let mut next = 0;
    for op in plan.operations.iter().filter(|op| op.held.is_none()) {
        let this = op.target.clone().or_else(|| created.get(&op.link).cloned());
        match &op.action {
            Action::Create { fields } => {
                next += 1;
                let id = TargetId(format!("new{next}"));
                let mut a = TargetAccount::new(id.0.clone(), op.kind);
                a.link = Some(op.link.clone());
                a.fields = fields.clone();
                created.insert(op.link.clone(), id.clone());
                by_id.insert(id, a);
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
        }
    }
    by_id.into_values().collect()
}

fn shuffled<T: Clone>(v: &[T], seed: u64) -> Vec<T> {
    let mut out = v.to_vec();
    let mut rng = fastrand::Rng::with_seed(seed);
    rng.shuffle(&mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn the_plan_is_deterministic_and_order_insensitive(world in world_strategy(), seed in any::<u64>()) {
        let a = world.plan(false);
        let b = world.plan_with(&shuffled(&world.objects, seed), &shuffled(&world.accounts, seed ^ 1), false);
        prop_assert_eq!(a.to_json(), b.to_json());
        prop_assert_eq!(a.to_json(), world.plan(false).to_json());
    }

    #[test]
    fn applying_then_planning_again_yields_an_empty_plan(world in world_strategy()) {
        let mut world = world;
        world.complete = true;
        let first = world.plan(true);
        let after = apply(&first, &world.accounts);
        let second = world.plan_with(&world.objects, &after, true);
        prop_assert!(second.is_empty(), "first:\n{}\nsecond:\n{}", first, second);
    }

    #[test]
    fn nothing_is_deleted_unless_the_profile_opts_in(world in world_strategy()) {
        let plan = world.plan(true);
        if world.profile.rules.deprovision != Deprovision::Delete {
            prop_assert!(plan.operations.iter().all(|op| op.action != Action::Delete));
        }
    }

    #[test]
    fn do_not_disable_means_no_disable_and_no_delete(world in world_strategy()) {
        let mut world = world;
        world.profile.rules.do_not_disable = true;
        let plan = world.plan(true);
        prop_assert!(plan.operations.iter().all(|op| !op.action.is_deprovision()), "{}", plan);
    }

    #[test]
    fn a_partial_read_deprovisions_nothing_that_is_merely_absent(world in world_strategy()) {
        let mut world = world;
        world.complete = false;
        let plan = world.plan(true);
        prop_assert!(plan.operations.iter().all(|op| op.reason.situation != Situation::Absent), "{}", plan);
        // A member the source group lists is never removed, even when the
        // member itself was not read.
        for op in &plan.operations {
            if let Action::RemoveMember { member, .. } = &op.action {
                let group = world.objects.iter().find(|o| o.id == op.link.external).unwrap();
                prop_assert!(!group.members.contains(&member.external), "{}", plan);
            }
        }
    }

    #[test]
    fn deprovisions_beyond_the_threshold_are_all_held(world in world_strategy()) {
        let plan = world.plan(false);
        let deprovisions: Vec<_> = plan.operations.iter().filter(|op| op.action.is_deprovision()).collect();
        let linked = world.accounts.iter().filter(|a| a.link.as_ref().is_some_and(|l| l.profile == world.profile.id)).count();
        if world.profile.rules.threshold.exceeded(deprovisions.len(), linked) {
            prop_assert!(deprovisions.iter().all(|op| op.held.is_some()));
        } else {
            prop_assert!(deprovisions.iter().all(|op| op.held.is_none()));
        }
        prop_assert!(plan.operations.iter().filter(|op| !op.action.is_deprovision()).all(|op| op.held.is_none()));
    }

    #[test]
    fn there_is_exactly_one_account_per_profile_and_external_id(world in world_strategy()) {
        let plan = world.plan(true);
        let after = apply(&plan, &world.accounts);
        let mut seen = std::collections::HashSet::new();
        for a in &after {
            if let Some(l) = &a.link {
                prop_assert!(seen.insert(l.clone()), "two accounts carry {}:\n{}", l, plan);
            }
        }
        // and each planned account operation touches an account at most once per action
        let mut touched = std::collections::HashSet::new();
        for op in &plan.operations {
            if !matches!(op.action, Action::AddMember { .. } | Action::RemoveMember { .. }) {
                prop_assert!(touched.insert((op.link.clone(), op.action.name())), "{}", plan);
            }
        }
    }

    #[test]
    fn unmanaged_accounts_are_never_touched(world in world_strategy()) {
        let plan = world.plan(true);
        let after = apply(&plan, &world.accounts);
        let adopted: std::collections::HashSet<&TargetId> = plan
            .operations
            .iter()
            .filter(|op| matches!(op.action, Action::Link { .. }))
            .filter_map(|op| op.target.as_ref())
            .collect();
        for before in world.accounts.iter().filter(|a| a.link.as_ref().is_none_or(|l| l.profile != world.profile.id)) {
            if adopted.contains(&before.id) {
                continue;
            }
            let now = after.iter().find(|a| a.id == before.id);
            prop_assert_eq!(now, Some(before), "{}", plan);
        }
        for op in &plan.operations {
            if let Some(t) = &op.target {
                let account = world.accounts.iter().find(|a| &a.id == t).unwrap();
                let managed = account.link.as_ref().is_some_and(|l| l.profile == world.profile.id);
                prop_assert!(managed || adopted.contains(t), "op {} touches unmanaged {}", op.id, t);
            }
        }
    }
}
