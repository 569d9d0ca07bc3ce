//! Deltas and full reads end in the same state: after any sequence of
//! changes to the in-memory directory, each followed by a delta run, a full
//! read plans nothing. The changes cover what makes a delta and a full read
//! disagree: deletes and moves out of the scope's containers, objects that
//! leave or enter the scope by an attribute, disabled objects, members
//! added to and dropped from groups, groups deleted and re-created, and
//! members deleted while their groups still name them.
#![expect(clippy::expect_used, reason = "test code: a failure fails the test")]

use std::sync::Arc;

use idsync_core::memory::{MemorySource, MemoryTarget};
use idsync_core::plan::Plan;
use idsync_core::{Engine, EngineOptions, MemoryStateStore, ObjectKind, Profile, RunOptions, SourceObject};
use proptest::prelude::*;

const USERS: u8 = 10;
const GROUPS: u8 = 3;

fn profile() -> Profile {
    serde_json::from_value(serde_json::json!({
        "id": "55555555-5555-4555-8555-555555555555",
        "name": "delta props",
        "scope": {
            "containers": ["ou=in"],
            "attributes": [{"attribute": "department", "any_of": ["Sales", "IT"]}]
        },
        "mapping": {
            "users": [{"field": "name", "attribute": "cn"}, {"field": "dept", "attribute": "department"}],
            "groups": [{"field": "name", "attribute": "cn"}]
        },
        "rules": {"threshold": {"max_count": null, "max_percent": null}}
    }))
    .expect("profile")
}

/// One change to the directory.
#[derive(Clone, Debug)]
enum Change {
    /// Creates or replaces user `n` in `ou=in` or `ou=out`, with a department.
    PutUser {
        n: u8,
        inside: bool,
        dept: u8,
        name: u8,
    },
    /// Renames (cn), moves, changes the department or the enabled flag.
    Rename(u8, u8),
    Move(u8, bool),
    Department(u8, u8),
    Enable(u8, bool),
    DeleteUser(u8),
    AddMember(u8, u8),
    RemoveMember(u8, u8),
    /// Creates group `g` (if missing) with these members.
    PutGroup(u8, Vec<u8>),
    DeleteGroup(u8),
}

fn user_id(n: u8) -> String {
    format!("u{n}")
}

fn group_id(g: u8) -> String {
    format!("g{g}")
}

fn department(d: u8) -> &'static str {
    ["Sales", "IT", "Legal"][usize::from(d % 3)]
}

fn container(inside: bool) -> &'static str {
    if inside { "ou=in" } else { "ou=out" }
}

fn change() -> impl Strategy<Value = Change> {
    let u = 0..USERS;
    let g = 0..GROUPS;
    prop_oneof![
        (u.clone(), prop::bool::weighted(0.8), 0u8..3, 0u8..3).prop_map(|(n, inside, dept, name)| Change::PutUser {
            n,
            inside,
            dept,
            name
        }),
        (u.clone(), 0u8..3).prop_map(|(n, name)| Change::Rename(n, name)),
        (u.clone(), prop::bool::ANY).prop_map(|(n, inside)| Change::Move(n, inside)),
        (u.clone(), 0u8..3).prop_map(|(n, d)| Change::Department(n, d)),
        (u.clone(), prop::bool::ANY).prop_map(|(n, e)| Change::Enable(n, e)),
        u.clone().prop_map(Change::DeleteUser),
        (g.clone(), u.clone()).prop_map(|(g, n)| Change::AddMember(g, n)),
        (g.clone(), u.clone()).prop_map(|(g, n)| Change::RemoveMember(g, n)),
        (g.clone(), prop::collection::vec(0..USERS, 0..5)).prop_map(|(g, m)| Change::PutGroup(g, m)),
        g.prop_map(Change::DeleteGroup),
    ]
}

fn apply(source: &MemorySource, change: &Change) {
    match change {
        Change::PutUser { n, inside, dept, name } => source.upsert(
            SourceObject::new(user_id(*n).as_str(), ObjectKind::User)
                .in_container(container(*inside))
                .with("cn", format!("user {n}.{name}"))
                .with("department", department(*dept)),
        ),
        Change::Rename(n, name) => {
            source.modify(&user_id(*n), |o| {
                o.attributes.insert("cn".into(), vec![]);
                *o = o.clone().with("cn", format!("user {n}.{name}"));
            });
        }
        Change::Move(n, inside) => {
            source.modify(&user_id(*n), |o| o.container = container(*inside).into());
        }
        Change::Department(n, d) => {
            source.modify(&user_id(*n), |o| {
                o.attributes.remove("department");
                *o = o.clone().with("department", department(*d));
            });
        }
        Change::Enable(n, e) => {
            source.modify(&user_id(*n), |o| o.enabled = *e);
        }
        Change::DeleteUser(n) => source.delete(&user_id(*n)),
        Change::AddMember(g, n) => {
            source.modify(&group_id(*g), |o| {
                let m = user_id(*n).as_str().into();
                if !o.members.contains(&m) {
                    o.members.push(m);
                }
            });
        }
        Change::RemoveMember(g, n) => {
            source.modify(&group_id(*g), |o| o.members.retain(|m| m.as_str() != user_id(*n)));
        }
        Change::PutGroup(g, members) => {
            if source.get(&group_id(*g)).is_none() {
                let mut group = SourceObject::new(group_id(*g).as_str(), ObjectKind::Group)
                    .in_container("ou=in")
                    .with("cn", format!("group {g}"));
                for n in members {
                    group = group.with_member(user_id(*n).as_str());
                }
                source.upsert(group);
            }
        }
        Change::DeleteGroup(g) => source.delete(&group_id(*g)),
    }
}

fn initial() -> impl Strategy<Value = Vec<Change>> {
    prop::collection::vec(change(), 0..12)
}

fn steps() -> impl Strategy<Value = Vec<Vec<Change>>> {
    prop::collection::vec(prop::collection::vec(change(), 1..6), 1..6)
}

/// Runs the initial changes and a full sync, then each step and a delta
/// sync, and returns what a full read would then plan.
fn full_plan_after_deltas(initial: &[Change], steps: &[Vec<Change>]) -> (Plan, Vec<String>) {
    let source = MemorySource::new();
    for c in initial {
        apply(&source, c);
    }
    let target = MemoryTarget::new();
    let engine = Engine::new(
        profile(),
        Arc::new(source.clone()),
        Arc::new(target.clone()),
        Arc::new(MemoryStateStore::new()),
    )
    .with_options(EngineOptions {
        full_every: None,
        ..EngineOptions::default()
    });
    let mut modes = Vec::new();
    futures::executor::block_on(async {
        let first = engine.run(&RunOptions::default()).await.expect("first run");
        modes.push(format!("{:?}", first.plan.mode));
        for step in steps {
            for c in step {
                apply(&source, c);
            }
            let report = engine.run(&RunOptions::default()).await.expect("delta run");
            modes.push(format!("{:?}", report.plan.mode));
        }
        let full = engine
            .run(&RunOptions {
                full: true,
                dry_run: true,
                ..RunOptions::default()
            })
            .await
            .expect("full read");
        (full.plan, modes)
    })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn after_any_deltas_a_full_read_plans_nothing(initial in initial(), steps in steps()) {
        let (plan, modes) = full_plan_after_deltas(&initial, &steps);
        prop_assert!(modes.iter().skip(1).all(|m| m == "Delta"), "every run after the first reads a delta: {modes:?}");
        prop_assert!(
            plan.operations.is_empty(),
            "a full read after the deltas plans:\n{}",
            plan
        );
    }
}
