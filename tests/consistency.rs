//! Every way of reading slapd ends in the same state (issue #14, items 2
//! and 8): deltas end where a full read would, and a just-in-time sync of
//! one user admits exactly what a full run admits.
//!
//! slapd runs without the refint overlay, as OpenLDAP does by default: a
//! user deleted, moved or renamed stays in the `member` values of the
//! groups that listed the old DN, and a full read drops such members
//! because the DN no longer resolves.
#![expect(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    reason = "test code: a failure fails the test"
)]

use std::collections::BTreeSet;
use std::sync::Arc;

use idsync::ldap::{Flavor, LdapConfig, LdapSource};
use idsync::memory::MemoryTarget;
use idsync::plan::{Action, Plan};
use idsync::{Engine, ExternalId, MemoryStateStore, ObjectKind, Profile, ReadMode, RunOptions, TargetAccount};
use idsync_testkit::slapd::{self, Slapd, SlapdOptions};
use serde_json::{Value, json};

const FULL: RunOptions = RunOptions {
    dry_run: false,
    confirm: false,
    full: true,
};

const FULL_DRY_RUN: RunOptions = RunOptions {
    dry_run: true,
    confirm: false,
    full: true,
};

const DRY_RUN: RunOptions = RunOptions {
    dry_run: true,
    confirm: false,
    full: false,
};

fn profile(id: &str, scope: Value) -> Profile {
    serde_json::from_value(json!({
        "id": id, "name": "consistency", "scope": scope,
        "mapping": {
            "users": [{"field": "login", "attribute": "uid"}, {"field": "name", "attribute": "cn"}],
            "groups": [{"field": "name", "attribute": "cn"}]
        }
    }))
    .unwrap()
}

fn engine(s: &Slapd, profile: &Profile, target: &MemoryTarget) -> Engine {
    let config = LdapConfig::new(
        &s.url(),
        &s.admin_dn(),
        s.admin_password(),
        s.base_dn(),
        Flavor::Generic,
    );
    Engine::new(
        profile.clone(),
        Arc::new(LdapSource::new(config)),
        Arc::new(target.clone()),
        Arc::new(MemoryStateStore::new()),
    )
}

/// The account named `name` (a group's `cn`, a user's `uid`).
fn account(target: &MemoryTarget, field: &str, name: &str) -> Option<TargetAccount> {
    target
        .accounts()
        .into_iter()
        .find(|a| a.fields.get(field).map(String::as_str) == Some(name))
}

/// The logins of the members of group `cn` in the target.
fn members(target: &MemoryTarget, cn: &str) -> BTreeSet<String> {
    let group = account(target, "name", cn).unwrap_or_else(|| panic!("no group {cn}"));
    assert_eq!(group.kind, ObjectKind::Group);
    group
        .members
        .iter()
        .filter_map(|id| target.account(id))
        .filter_map(|a| a.fields.get("login").cloned())
        .collect()
}

/// The entryUUID (the external id) of the user `uid`.
async fn user_id(s: &Slapd, uid: &str) -> ExternalId {
    let found = s
        .search(s.base_dn(), &format!("(uid={uid})"), &["entryUUID"])
        .await
        .unwrap();
    ExternalId::from(found[0].first_str("entryUUID").expect("an entryUUID"))
}

async fn modrdn(s: &Slapd, dn: &str, new_rdn: &str, new_superior: Option<&str>) {
    let superior = new_superior.map(|p| format!("newsuperior: {p}\n")).unwrap_or_default();
    s.ldapmodify(&format!(
        "dn: {dn}\nchangetype: modrdn\nnewrdn: {new_rdn}\ndeleteoldrdn: 1\n{superior}"
    ))
    .await
    .unwrap();
}

/// Runs a delta and checks it read a delta, completely, and moved the cursor.
async fn delta(engine: &Engine) -> Plan {
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.mode, ReadMode::Delta, "{}", report.plan);
    assert!(report.plan.completeness.is_complete(), "{}", report.plan);
    assert_eq!(report.failures().count(), 0, "{}", report.to_json());
    assert!(report.cursor_saved);
    report.plan
}

#[tokio::test(flavor = "multi_thread")]
async fn deltas_on_slapd_without_refint_end_where_a_full_read_does() {
    let base = slapd::DEFAULT_SUFFIX;
    let (users, groups) = (120, 4);
    let mut ldif = slapd::ous_ldif(base, &["staff", "archive"]);
    ldif.push_str(&slapd::users_ldif(base, users, &[]));
    ldif.push_str(&slapd::groups_ldif(base, groups, users, &[]));
    let Some(s) = slapd::slapd(SlapdOptions {
        ldif,
        ..SlapdOptions::default()
    })
    .await
    else {
        return;
    };
    let ou = |name: &str| format!("ou={name},{base}");
    let p = profile(
        "c0000000-0000-4000-8000-000000000001",
        json!({"containers": [ou("people"), ou("staff"), ou("groups")]}),
    );
    let target = MemoryTarget::new();
    let engine = engine(&s, &p, &target);
    let report = engine.run(&RunOptions::default()).await.unwrap();
    let c = report.plan.counts;
    assert_eq!((c.create, c.add_member), (124, 120), "{}", report.plan);

    // Members of every group (no group is modified): 20 leave, 10 move to
    // an OU in scope, 10 to an OU out of scope, 10 are renamed.
    let dn = |i: usize| slapd::user_dn(base, i, &[]);
    let uid = slapd::user_uid;
    for i in 0..20 {
        s.ldapdelete(&dn(i)).await.unwrap();
    }
    let plan = delta(&engine).await;
    assert_eq!(plan.counts.disable, 20, "{plan}");
    for i in 20..30 {
        modrdn(&s, &dn(i), &format!("uid={}", uid(i)), Some(&ou("staff"))).await;
    }
    for i in 30..40 {
        modrdn(&s, &dn(i), &format!("uid={}", uid(i)), Some(&ou("archive"))).await;
    }
    let plan = delta(&engine).await;
    assert_eq!(plan.counts.disable, 10, "{plan}");
    let renamed = |i: usize| format!("r{i:06}");
    for i in 40..50 {
        modrdn(&s, &dn(i), &format!("uid={}", renamed(i)), None).await;
    }
    let plan = delta(&engine).await;
    assert_eq!(plan.counts.update, 10, "{plan}");
    let plan = delta(&engine).await;
    assert!(plan.is_empty(), "nothing changed since: {plan}");

    let full = engine.run(&FULL_DRY_RUN).await.unwrap();
    assert!(full.plan.completeness.is_complete());
    assert!(full.plan.is_empty(), "a full read must plan nothing: {}", full.plan);

    // Every group keeps exactly its members that still resolve.
    for g in 0..groups {
        let expected: BTreeSet<String> = slapd::group_members(g, groups, users)
            .into_iter()
            .filter(|i| *i >= 50)
            .map(uid)
            .collect();
        assert_eq!(members(&target, &slapd::group_cn(g)), expected, "group {g}");
    }
    let enabled = |login: &str| account(&target, "login", login).map(|a| a.enabled);
    for i in 0..50 {
        let (login, on) = match i {
            0..20 | 30..40 => (uid(i), false),
            20..30 => (uid(i), true),
            _ => (renamed(i), true),
        };
        assert_eq!(enabled(&login), Some(on), "{login}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_naming_members_outside_the_scope_reads_the_same_in_a_delta() {
    let base = slapd::DEFAULT_SUFFIX;
    let mut ldif = slapd::ous_ldif(base, &["archive"]);
    ldif.push_str(&slapd::users_ldif(base, 10, &[]));
    ldif.push_str(&slapd::groups_ldif(base, 2, 10, &[]));
    let Some(s) = slapd::slapd(SlapdOptions {
        ldif,
        ..SlapdOptions::default()
    })
    .await
    else {
        return;
    };
    let ou = |name: &str| format!("ou={name},{base}");
    let p = profile(
        "c0000000-0000-4000-8000-000000000004",
        json!({"containers": [ou("people"), ou("groups")], "filter": "(!(employeeType=contractor))"}),
    );
    let target = MemoryTarget::new();
    let engine = engine(&s, &p, &target);
    let report = engine.run(&RunOptions::default()).await.unwrap();
    let c = report.plan.counts;
    assert_eq!((c.create, c.add_member), (12, 10), "{}", report.plan);

    // u000001 (g0001) moves out of the containers; u000002 (g0000) leaves
    // the filter, its DN still named by g0000.
    let dn = |i: usize| slapd::user_dn(base, i, &[]);
    modrdn(&s, &dn(1), "uid=u000001", Some(&ou("archive"))).await;
    s.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nadd: employeeType\nemployeeType: contractor\n",
        dn(2)
    ))
    .await
    .unwrap();
    let plan = delta(&engine).await;
    let c = plan.counts;
    assert_eq!((c.disable, c.remove_member), (2, 2), "{plan}");
    // g0000 changes: it gains u000003 and the moved user's new DN.
    s.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nadd: member\nmember: {}\nmember: uid=u000001,{}\n",
        slapd::group_dn(base, 0),
        dn(3),
        ou("archive")
    ))
    .await
    .unwrap();
    let plan = delta(&engine).await;
    assert_eq!(plan.counts.add_member, 1, "only u000003 joins: {plan}");

    let full = engine.run(&FULL_DRY_RUN).await.unwrap();
    assert!(full.plan.is_empty(), "a full read must plan nothing: {}", full.plan);
    let logins = |ids: &[usize]| -> BTreeSet<String> { ids.iter().map(|i| slapd::user_uid(*i)).collect() };
    assert_eq!(members(&target, "g0000"), logins(&[0, 3, 4, 6, 8]));
    assert_eq!(members(&target, "g0001"), logins(&[3, 5, 7, 9]));
}

/// The operations of `plan` that concern `id`: its own, and the
/// memberships that name it, without their ids and ordering.
fn ops_for(plan: &Plan, id: &ExternalId) -> Vec<(ObjectKind, ExternalId, Action)> {
    let mut ops: Vec<_> = plan
        .operations
        .iter()
        .filter(|op| {
            op.link.external == *id
                || matches!(&op.action, Action::AddMember { member, .. } | Action::RemoveMember { member, .. } if member.external == *id)
        })
        .map(|op| (op.kind, op.link.external.clone(), op.action.clone()))
        .collect();
    ops.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    ops
}

/// Adds fixture user `i` to `ou=people` and to group `g`.
async fn add_member(s: &Slapd, i: usize, g: usize) {
    s.ldapadd(&slapd::user_ldif(s.base_dn(), i, &[])).await.unwrap();
    s.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nadd: member\nmember: {}\n",
        slapd::group_dn(s.base_dn(), g),
        slapd::user_dn(s.base_dn(), i, &[])
    ))
    .await
    .unwrap();
}

/// JIT of each of `refused` creates nothing, as a full run plans nothing
/// for them; JIT of `admitted` plans exactly what a full run plans for it
/// (its create and its memberships), and applies it. Then a full run has
/// nothing left to do.
async fn jit_matches_a_full_run(engine: &Engine, target: &MemoryTarget, refused: &[ExternalId], admitted: &ExternalId) {
    let full = engine.run(&FULL_DRY_RUN).await.unwrap();
    for id in refused {
        assert_eq!(ops_for(&full.plan, id), [], "a full run leaves {id} out");
        let before = target.accounts().len();
        let report = engine.sync_one(id, &RunOptions::default()).await.unwrap();
        assert!(report.plan.is_empty(), "JIT of {id} must do nothing: {}", report.plan);
        assert_eq!(target.accounts().len(), before);
        assert!(
            target
                .accounts()
                .iter()
                .all(|a| a.link.as_ref().is_none_or(|l| l.external != *id))
        );
    }
    let expected = ops_for(&full.plan, admitted);
    assert!(
        expected.iter().any(|(_, _, a)| matches!(a, Action::Create { .. })),
        "{}",
        full.plan
    );
    assert!(
        expected.iter().any(|(_, _, a)| matches!(a, Action::AddMember { .. })),
        "{}",
        full.plan
    );
    let jit = engine.sync_one(admitted, &DRY_RUN).await.unwrap();
    assert_eq!(
        ops_for(&jit.plan, admitted),
        expected,
        "JIT plans what a full run plans"
    );
    assert_eq!(jit.plan.operations.len(), expected.len(), "{}", jit.plan);
    let report = engine.sync_one(admitted, &RunOptions::default()).await.unwrap();
    assert_eq!(report.failures().count(), 0, "{}", report.to_json());
    let report = engine.run(&FULL).await.unwrap();
    assert!(
        report.plan.is_empty(),
        "JIT did what the full run would: {}",
        report.plan
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn jit_admits_what_the_scope_filter_admits() {
    let Some(s) = slapd::slapd(SlapdOptions::with_users(10, 2)).await else {
        return;
    };
    // departmentNumber is Legal for users 4, 11, 18, …; groups have none.
    let p = profile(
        "c0000000-0000-4000-8000-000000000002",
        json!({"filter": "(!(departmentNumber=Legal))"}),
    );
    let target = MemoryTarget::new();
    let engine = engine(&s, &p, &target);
    let report = engine.run(&RunOptions::default()).await.unwrap();
    let c = report.plan.counts;
    assert_eq!((c.create, c.add_member), (11, 9), "{}", report.plan);
    assert!(account(&target, "login", "u000004").is_none());

    // Two newcomers in g0000: u000010 in scope, u000011 (Legal) not.
    add_member(&s, 10, 0).await;
    add_member(&s, 11, 0).await;
    let refused = [user_id(&s, "u000011").await, user_id(&s, "u000004").await];
    jit_matches_a_full_run(&engine, &target, &refused, &user_id(&s, "u000010").await).await;
    let g0: BTreeSet<String> = ["u000000", "u000002", "u000006", "u000008", "u000010"]
        .map(String::from)
        .into();
    assert_eq!(members(&target, "g0000"), g0);
    assert!(account(&target, "login", "u000011").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn jit_admits_only_members_of_the_assigned_groups() {
    let Some(s) = slapd::slapd(SlapdOptions::with_users(10, 2)).await else {
        return;
    };
    let p = profile("c0000000-0000-4000-8000-000000000003", json!({"groups": ["g0000"]}));
    let target = MemoryTarget::new();
    let engine = engine(&s, &p, &target);
    let report = engine.run(&RunOptions::default()).await.unwrap();
    let c = report.plan.counts;
    assert_eq!(
        (c.create, c.add_member),
        (6, 5),
        "g0000 and its 5 members: {}",
        report.plan
    );

    // u000010 joins g0000, u000011 joins g0001 (not assigned); u000001 was
    // in g0001 all along.
    add_member(&s, 10, 0).await;
    add_member(&s, 11, 1).await;
    let refused = [user_id(&s, "u000011").await, user_id(&s, "u000001").await];
    jit_matches_a_full_run(&engine, &target, &refused, &user_id(&s, "u000010").await).await;
    let g0: BTreeSet<String> = ["u000000", "u000002", "u000004", "u000006", "u000008", "u000010"]
        .map(String::from)
        .into();
    assert_eq!(members(&target, "g0000"), g0);
    assert!(account(&target, "name", "g0001").is_none());
    assert_eq!(target.accounts().len(), 7);
}
