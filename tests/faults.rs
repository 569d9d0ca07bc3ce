//! Faults against real servers (issues #9 and #14): connections reset in
//! the middle of a full read (slapd, Samba AD DC, scim2-server as a
//! source) or of a slapd syncrepl delta (its present phase, its look-ups of
//! a changed group's members), bursts of
//! 429 and 5xx and lost answers while applying into scim2-server, a source
//! that suddenly returns far fewer users, and a scope that drops an OU.
//!
//! Each scenario asserts the target's state after the runs: nothing
//! deprovisioned on a partial read, no duplicate, the threshold holding,
//! and convergence. Each prints a `figures:` line (faults injected, runs
//! to converge, objects lost); run with `--nocapture` to see them.
#![cfg(all(feature = "ldap", feature = "scim"))]
#![expect(clippy::panic, clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;
use idsync::ldap::{Flavor, LdapConfig, LdapSource};
use idsync::memory::{Fault, MemorySource, MemoryTarget};
use idsync::plan::FindingKind;
use idsync::scim::{ScimConfig, ScimSource, ScimTarget};
use idsync::{
    Completeness, Cursor, DeltaItem, Engine, ErrorKind, MemoryStateStore, ObjectKind, Profile, ReadItem, ReadMode,
    RunOptions, RunReport, Source, SourceObject, StateStore, TargetAccount,
};
use idsync_testkit::proxy::TcpProxy;
use idsync_testkit::scim2::{Scim2Server, scim2_server};
use idsync_testkit::slapd::{self, SlapdOptions};
use serde_json::{Value, json};

const FULL: RunOptions = RunOptions {
    dry_run: false,
    confirm: false,
    full: true,
};

fn profile(id: &str, scope: Value, users: Value, groups: Value) -> Profile {
    serde_json::from_value(json!({
        "id": id, "name": "faults", "scope": scope,
        "mapping": {"users": users, "groups": groups}
    }))
    .unwrap()
}

/// The LDAP mapping used with slapd and Samba.
fn ldap_profile(id: &str, scope: Value) -> Profile {
    profile(
        id,
        scope,
        json!([{"field": "login", "attribute": "uid"}, {"field": "name", "attribute": "cn"}]),
        json!([{"field": "name", "attribute": "cn"}]),
    )
}

fn figures(scenario: &str, faults: u64, iterations: usize, lost: usize) {
    eprintln!("figures: {scenario}: faults injected {faults}, runs to converge {iterations}, objects lost {lost}");
}

/// Every object the source has in `profile`'s scope, read directly (not
/// through a proxy).
async fn truth(source: &dyn Source, profile: &Profile) -> Vec<SourceObject> {
    let mut stream = source.read_full(&profile.scope).await.unwrap();
    let mut objects = Vec::new();
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            ReadItem::Object(o) => objects.push(o),
            ReadItem::End { completeness, .. } => assert!(completeness.is_complete(), "{completeness:?}"),
            other => panic!("an item this test does not know: {other:?}"),
        }
    }
    objects
}

/// A target's accounts for one profile, by name: the `login` of each
/// enabled and of each disabled user, and each group's `name` with the
/// logins of its members (a member no account of the profile links shows
/// as `unlinked <id>`).
#[derive(Debug, Default, PartialEq)]
struct Mirror {
    enabled: BTreeSet<String>,
    disabled: BTreeSet<String>,
    groups: BTreeMap<String, BTreeSet<String>>,
}

impl Mirror {
    fn of(target: &MemoryTarget, profile: &Profile) -> Mirror {
        let accounts: Vec<TargetAccount> = target
            .accounts()
            .into_iter()
            .filter(|a| a.link.as_ref().is_some_and(|l| l.profile == profile.id))
            .collect();
        let field = |a: &TargetAccount, f: &str| a.fields.get(f).cloned().unwrap_or_default();
        let logins: BTreeMap<&str, String> = accounts
            .iter()
            .filter(|a| a.kind == ObjectKind::User)
            .map(|a| (a.id.0.as_str(), field(a, "login")))
            .collect();
        let mut mirror = Mirror::default();
        for a in &accounts {
            match a.kind {
                ObjectKind::User if a.enabled => mirror.enabled.insert(field(a, "login")),
                ObjectKind::User => mirror.disabled.insert(field(a, "login")),
                ObjectKind::Group => {
                    let members = a
                        .members
                        .iter()
                        .map(|m| logins.get(m.0.as_str()).cloned().unwrap_or(format!("unlinked {}", m.0)))
                        .collect();
                    mirror.groups.insert(field(a, "name"), members).is_none()
                }
            };
        }
        mirror
    }

    /// The slapd fixture of `users` users and `groups` groups
    /// (`slapd::users_ldif`, `slapd::groups_ldif`) after the users `gone`
    /// left: those disabled, and out of their groups.
    fn slapd_fixture(users: usize, groups: usize, gone: &[usize]) -> Mirror {
        let present = |i: &usize| !gone.contains(i);
        Mirror {
            enabled: (0..users).filter(present).map(slapd::user_uid).collect(),
            disabled: gone.iter().copied().map(slapd::user_uid).collect(),
            groups: (0..groups)
                .map(|g| {
                    let members = slapd::group_members(g, groups, users);
                    let members = members.into_iter().filter(present).map(slapd::user_uid);
                    (slapd::group_cn(g), members.collect())
                })
                .collect(),
        }
    }
}

/// Asserts that `target` holds exactly `want` for `profile`, printing only
/// the differences; returns how many of `want`'s users and groups it lacks
/// (the objects lost).
fn assert_mirrors(target: &MemoryTarget, profile: &Profile, want: &Mirror) -> usize {
    let have = Mirror::of(target, profile);
    let lost = want.enabled.difference(&have.enabled).count()
        + want.groups.keys().filter(|g| !have.groups.contains_key(*g)).count();
    assert_same("enabled users", &have.enabled, &want.enabled);
    assert_same("disabled users", &have.disabled, &want.disabled);
    assert_same("groups", &have.groups.keys().collect(), &want.groups.keys().collect());
    for (group, members) in &want.groups {
        assert_same(&format!("members of {group}"), &have.groups[group], members);
    }
    lost
}

/// Asserts two sets are equal, naming what one has and the other lacks.
fn assert_same<T: Ord + std::fmt::Debug>(what: &str, have: &BTreeSet<T>, want: &BTreeSet<T>) {
    let missing: Vec<_> = want.difference(have).collect();
    let extra: Vec<_> = have.difference(want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing {missing:?}, unexpected {extra:?}"
    );
}

/// Runs until the plan is empty (at most 5 runs) and returns how many runs
/// it took, the last one included.
async fn converge(engine: &Engine) -> usize {
    for run in 1..=5 {
        let report = engine.run(&RunOptions::default()).await.unwrap();
        if report.plan.is_empty() {
            return run;
        }
    }
    panic!("no convergence in 5 runs");
}

fn has_finding(report: &RunReport, kind: FindingKind) -> bool {
    report.plan.findings.iter().any(|f| f.kind == kind)
}

/// The checks of a full read cut by a reset: Partial, nothing deprovisioned
/// or removed, every account still enabled.
fn assert_partial_and_harmless(report: &RunReport, target: &MemoryTarget, why: &str) {
    let Completeness::Partial { reason } = &report.plan.completeness else {
        panic!("the read should be partial: {}", report.plan);
    };
    assert!(reason.contains(why), "{reason}");
    assert!(has_finding(report, FindingKind::PartialRead), "{}", report.plan);
    let c = report.plan.counts;
    assert_eq!((c.disable, c.delete, c.remove_member), (0, 0, 0), "{}", report.plan);
    assert!(target.accounts().iter().all(|a| a.enabled), "nothing disabled");
    assert!(!report.cursor_saved);
}

/// Reading slapd through `proxy`, in pages of 50.
fn through_proxy(s: &slapd::Slapd, proxy: &TcpProxy) -> LdapConfig {
    let mut c = LdapConfig::new(
        &format!("ldap://127.0.0.1:{}", proxy.port()),
        &s.admin_dn(),
        s.admin_password(),
        s.base_dn(),
        Flavor::Generic,
    );
    c.page_size = 50;
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_during_a_full_read_from_slapd_deprovisions_nothing() {
    let Some(s) = slapd::slapd(SlapdOptions::with_users(2000, 4)).await else {
        return;
    };
    let proxy = TcpProxy::start(s.port()).await.unwrap();
    let config = through_proxy(&s, &proxy);
    let p = ldap_profile("fa000000-0000-4000-8000-000000000001", json!({}));
    let target = MemoryTarget::new();
    let engine = Engine::new(
        p.clone(),
        Arc::new(LdapSource::new(config.clone())),
        Arc::new(target.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.counts.create, 2004, "{}", report.plan);
    let read_bytes = proxy.stats().bytes_down;

    // Leavers and renames the faulted read must not act on wrongly.
    let leavers: Vec<usize> = (1990..1995).collect();
    for i in &leavers {
        s.ldapdelete(&slapd::user_dn(s.base_dn(), *i, &[])).await.unwrap();
    }
    let mut renames = String::new();
    for i in [7, 1000, 1999] {
        let dn = slapd::user_dn(s.base_dn(), i, &[]);
        renames.push_str(&format!(
            "dn: {dn}\nchangetype: modify\nreplace: cn\ncn: Renamed {i}\n\n"
        ));
    }
    s.ldapmodify(&renames).await.unwrap();

    proxy.reset_after(read_bytes / 2, 1);
    let report = engine.run(&FULL).await.unwrap();
    assert_partial_and_harmless(&report, &target, "the connection failed");
    assert_eq!(proxy.stats().resets, 1);
    assert_mirrors(&target, &p, &Mirror::slapd_fixture(2000, 4, &[]));

    proxy.heal();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.mode, ReadMode::Full, "a partial full read keeps no cursor");
    assert!(report.plan.completeness.is_complete());
    let want = Mirror::slapd_fixture(2000, 4, &leavers);
    assert_same("disabled users", &Mirror::of(&target, &p).disabled, &want.disabled);
    let iterations = 1 + converge(&engine).await;
    let lost = assert_mirrors(&target, &p, &want);
    assert_eq!(
        user(&target, "u001999").fields.get("name").map(String::as_str),
        Some("Renamed 1999")
    );
    figures("reset during a slapd read", proxy.stats().faults(), iterations, lost);
}

fn config_direct(s: &slapd::Slapd) -> LdapConfig {
    LdapConfig::new(
        &s.url(),
        &s.admin_dn(),
        s.admin_password(),
        s.base_dn(),
        Flavor::Generic,
    )
}

/// The user account whose `login` is `login`.
fn user(target: &MemoryTarget, login: &str) -> TargetAccount {
    let mut found = target
        .accounts()
        .into_iter()
        .filter(|a| a.kind == ObjectKind::User && a.fields.get("login").map(String::as_str) == Some(login));
    let account = found.next().unwrap_or_else(|| panic!("no account {login}"));
    assert!(found.next().is_none(), "two accounts {login}");
    account
}

/// The id of the object whose `attribute` is `value`.
fn objects_by(objects: &[SourceObject], attribute: &str, value: &str) -> String {
    objects
        .iter()
        .find(|o| o.first_text(attribute) == Some(value))
        .map(|o| o.id.0.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_during_a_full_read_from_samba_ad_deprovisions_nothing() {
    let Some(dc) = idsync_testkit::samba::samba_dc().await else {
        return;
    };
    let ou = dc.unique_ou("faults").await.unwrap();
    let users = dc.add_users(&ou, 40).await.unwrap();
    let enable: String = users
        .iter()
        .map(|u| format!("dn: {u}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 544\n\n"))
        .collect();
    dc.ldapmodify(&enable).await.unwrap();
    // Samba answers in objectGUID order, so some of these groups are read
    // before the reset and some of their members after it: those members
    // must not look as if they had left.
    let tag = idsync_testkit::samba::random_tag();
    for (k, members) in users.chunks(10).enumerate() {
        dc.add_group(&ou, &format!("g{k}-{tag}"), members).await.unwrap();
    }

    let proxy = TcpProxy::start(389).await.unwrap();
    let mut config = LdapConfig::new(
        &format!("ldap://127.0.0.1:{}", proxy.port()),
        dc.admin_upn(),
        dc.admin_password(),
        dc.base_dn(),
        Flavor::Ad,
    );
    config.page_size = 5;
    let p = profile(
        "fa000000-0000-4000-8000-000000000002",
        json!({"containers": [ou]}),
        json!([{"field": "login", "attribute": "sAMAccountName"}, {"field": "name", "attribute": "displayName"}]),
        json!([{"field": "name", "attribute": "cn"}]),
    );
    let target = MemoryTarget::new();
    let engine = Engine::new(
        p.clone(),
        Arc::new(LdapSource::new(config.clone())),
        Arc::new(target.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    let before = proxy.stats().bytes_down;
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(
        (report.plan.counts.create, report.plan.counts.add_member),
        (44, 40),
        "{}",
        report.plan
    );
    let read_bytes = proxy.stats().bytes_down - before;

    for u in &users[37..] {
        dc.ldapdelete(u).await.unwrap();
    }
    dc.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nreplace: displayName\ndisplayName: Renamed Person\n",
        users[3]
    ))
    .await
    .unwrap();

    // The users from `left` on have left: disabled, and out of their groups.
    let sam = |dn: &String| {
        dn.split(',')
            .next()
            .unwrap_or_default()
            .trim_start_matches("CN=")
            .to_owned()
    };
    let fixture = |left: usize| Mirror {
        enabled: users[..left].iter().map(sam).collect(),
        disabled: users[left..].iter().map(sam).collect(),
        groups: users
            .chunks(10)
            .enumerate()
            .map(|(k, members)| {
                let members = members.iter().filter(|m| users[..left].contains(m));
                (format!("g{k}-{tag}"), members.map(sam).collect())
            })
            .collect(),
    };

    proxy.reset_after(read_bytes / 2, 1);
    let report = engine.run(&FULL).await.unwrap();
    assert_partial_and_harmless(&report, &target, "the connection failed");
    assert_eq!(proxy.stats().resets, 1);
    assert_mirrors(&target, &p, &fixture(40));

    proxy.heal();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.mode, ReadMode::Full, "a partial full read keeps no cursor");
    assert!(report.plan.completeness.is_complete());
    assert_same(
        "disabled users",
        &Mirror::of(&target, &p).disabled,
        &fixture(37).disabled,
    );
    let iterations = 1 + converge(&engine).await;
    let lost = assert_mirrors(&target, &p, &fixture(37));
    assert_eq!(
        user(&target, &sam(&users[3])).fields.get("name").map(String::as_str),
        Some("Renamed Person")
    );
    figures("reset during a Samba AD read", proxy.stats().faults(), iterations, lost);
    dc.delete_tree(&ou).await.unwrap();
}

/// The delta items of one read from `cursor`: (present, changed, deleted,
/// ended with End).
async fn delta_items(source: &dyn Source, profile: &Profile, cursor: &Cursor) -> (usize, usize, usize, bool) {
    let mut stream = source.read_delta(&profile.scope, cursor).await.unwrap();
    let (mut present, mut changed, mut deleted, mut end) = (0, 0, 0, false);
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            DeltaItem::Present(_) => present += 1,
            DeltaItem::Changed(_) => changed += 1,
            DeltaItem::Deleted(_) => deleted += 1,
            DeltaItem::End { .. } => end = true,
            DeltaItem::ResyncRequired { reason } => panic!("the server asks for a full read: {reason}"),
            other => panic!("an item this test does not know: {other:?}"),
        }
    }
    (present, changed, deleted, end)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_during_a_present_mode_delta_from_slapd_deprovisions_nothing_and_keeps_the_cursor() {
    let Some(mut s) = slapd::slapd(SlapdOptions::with_users(2000, 4)).await else {
        return;
    };
    let proxy = TcpProxy::start(s.port()).await.unwrap();
    let config = through_proxy(&s, &proxy);
    let p = ldap_profile("fa000000-0000-4000-8000-000000000008", json!({}));
    let (target, state) = (MemoryTarget::new(), Arc::new(MemoryStateStore::new()));
    let engine = Engine::new(
        p.clone(),
        Arc::new(LdapSource::new(config.clone())),
        Arc::new(target.clone()),
        state.clone(),
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    let c = report.plan.counts;
    assert_eq!((c.create, c.add_member), (2004, 2000), "{}", report.plan);
    let start = Mirror::slapd_fixture(2000, 4, &[]);
    assert_mirrors(&target, &p, &start);
    let direct = LdapSource::new(config_direct(&s));
    let g1_id = objects_by(&truth(&direct, &p).await, "cn", &slapd::group_cn(1));

    // u000009 leaves g0001; removing it fails in the target, so the group
    // is held for retry: every later delta reads it again, even one cut
    // short, and would remove its missing members.
    let base = s.base_dn().to_owned();
    s.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\ndelete: member\nmember: {}\n",
        slapd::group_dn(&base, 1),
        slapd::user_dn(&base, 9, &[])
    ))
    .await
    .unwrap();
    target.fail(Fault {
        on: g1_id.clone(),
        kind: ErrorKind::PermissionDenied,
        times: 1,
        retry_after: None,
    });
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.mode, ReadMode::Delta, "{}", report.plan);
    assert_eq!(
        (report.plan.counts.remove_member, report.failures().count()),
        (1, 1),
        "{}",
        report.plan
    );
    assert!(report.cursor_saved, "the group is held for retry");
    let cursor = state.load(p.id).await.unwrap().cursor.expect("a syncrepl cursor");
    assert_mirrors(&target, &p, &start);

    // Leavers (u000005 of g0001 among them) and a changed user. The session
    // log is lost on restart, and the new one starts after these changes:
    // a delta from the saved cookie answers in present mode (every entry
    // still there, listed by UUID; no deletes named).
    let leavers = [5, 1990, 1991, 1992, 1993, 1994];
    for i in leavers {
        s.ldapdelete(&slapd::user_dn(&base, i, &[])).await.unwrap();
    }
    s.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nreplace: cn\ncn: Renamed One\n",
        slapd::user_dn(&base, 1, &[])
    ))
    .await
    .unwrap();
    s.restart().await.unwrap();
    let (present, changed, deleted, end) = delta_items(&direct, &p, &cursor).await;
    assert!(end);
    assert_eq!((changed, deleted), (1, 0), "present mode names no deletes");
    assert_eq!(present, 1998, "present mode lists every entry");

    // The bytes of the same delta through the proxy; the next one is reset
    // halfway, in the middle of its present phase.
    let before = proxy.stats().bytes_down;
    delta_items(&LdapSource::new(config.clone()), &p, &cursor).await;
    let delta_bytes = proxy.stats().bytes_down - before;
    proxy.reset_after(delta_bytes / 2, 1);
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(proxy.stats().resets, 1);
    assert_eq!(report.plan.mode, ReadMode::Delta, "{}", report.plan);
    let Completeness::Partial { reason } = &report.plan.completeness else {
        panic!("the delta should be partial: {}", report.plan);
    };
    assert!(reason.contains("ended early"), "{reason}");
    assert!(has_finding(&report, FindingKind::PartialRead), "{}", report.plan);
    let c = report.plan.counts;
    assert_eq!((c.disable, c.delete, c.remove_member), (0, 0, 0), "{}", report.plan);
    // Nothing disabled, no member removed (u000005 and u000009 still in g0001).
    assert_mirrors(&target, &p, &start);
    assert!(!report.cursor_saved);
    assert_eq!(state.load(p.id).await.unwrap().cursor, Some(cursor), "the cursor stays");

    // A clean run reads the same present-mode delta whole and converges.
    proxy.heal();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.mode, ReadMode::Delta, "{}", report.plan);
    assert!(report.plan.completeness.is_complete(), "{}", report.plan);
    let c = report.plan.counts;
    // Removed: u000009, and the leavers u000005, u001992…u001994 and
    // u001990 from their groups.
    assert_eq!((c.disable, c.update, c.remove_member), (6, 1, 7), "{}", report.plan);
    assert!(report.cursor_saved);
    let mut want = Mirror::slapd_fixture(2000, 4, &leavers);
    want.groups
        .get_mut(&slapd::group_cn(1))
        .unwrap()
        .remove(&slapd::user_uid(9));
    assert_mirrors(&target, &p, &want);
    assert_eq!(
        user(&target, "u000001").fields.get("name").map(String::as_str),
        Some("Renamed One")
    );
    let full = engine.run(&RunOptions { dry_run: true, ..FULL }).await.unwrap();
    assert!(
        full.plan.is_empty(),
        "a full read finds nothing left to do: {}",
        full.plan
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert!(report.plan.is_empty(), "{}", report.plan);
    figures("reset during a present-mode slapd delta", proxy.stats().faults(), 2, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_while_a_delta_resolves_a_groups_members_removes_no_member() {
    let Some(s) = slapd::slapd(SlapdOptions::with_users(2000, 4)).await else {
        return;
    };
    let proxy = TcpProxy::start(s.port()).await.unwrap();
    let config = through_proxy(&s, &proxy);
    let p = ldap_profile("fa000000-0000-4000-8000-000000000009", json!({}));
    let (target, state) = (MemoryTarget::new(), Arc::new(MemoryStateStore::new()));
    let engine = Engine::new(
        p.clone(),
        Arc::new(LdapSource::new(config.clone())),
        Arc::new(target.clone()),
        state.clone(),
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.counts.create, 2004, "{}", report.plan);
    let start = Mirror::slapd_fixture(2000, 4, &[]);
    assert_mirrors(&target, &p, &start);
    let cursor = state.load(p.id).await.unwrap().cursor.expect("a syncrepl cursor");

    // g0001 changes (one member leaves): a delta sends it with its 499
    // member DNs, each looked up for its id after the changes were read.
    let base = s.base_dn().to_owned();
    s.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\ndelete: member\nmember: {}\n",
        slapd::group_dn(&base, 1),
        slapd::user_dn(&base, 9, &[])
    ))
    .await
    .unwrap();
    let before = proxy.stats().bytes_down;
    let (_, changed, ..) = delta_items(&LdapSource::new(config.clone()), &p, &cursor).await;
    assert_eq!(changed, 1);
    let delta_bytes = proxy.stats().bytes_down - before;
    // Most of those bytes are the 499 look-ups, which come last: a reset
    // at three quarters falls among them.
    proxy.reset_after(delta_bytes * 3 / 4, 1);
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(proxy.stats().resets, 1);
    let Completeness::Partial { reason } = &report.plan.completeness else {
        panic!("the delta should be partial: {}", report.plan);
    };
    assert!(reason.contains("ended early"), "{reason}");
    let c = report.plan.counts;
    assert_eq!((c.disable, c.remove_member), (0, 0), "{}", report.plan);
    assert_mirrors(&target, &p, &start);
    assert!(!report.cursor_saved);
    assert_eq!(state.load(p.id).await.unwrap().cursor, Some(cursor), "the cursor stays");

    proxy.heal();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert!(report.plan.completeness.is_complete(), "{}", report.plan);
    assert_eq!(report.plan.counts.remove_member, 1, "{}", report.plan);
    let mut want = start;
    want.groups
        .get_mut(&slapd::group_cn(1))
        .unwrap()
        .remove(&slapd::user_uid(9));
    assert_mirrors(&target, &p, &want);
    let full = engine.run(&RunOptions { dry_run: true, ..FULL }).await.unwrap();
    assert!(
        full.plan.is_empty(),
        "a full read finds nothing left to do: {}",
        full.plan
    );
    figures(
        "reset while a slapd delta resolves members",
        proxy.stats().faults(),
        1,
        0,
    );
}

/// A raw client on scim2-server (not through any proxy).
async fn scim(server: &Scim2Server, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}/{path}", server.base_url()))
        .bearer_auth(server.token());
    if let Some(body) = body {
        request = request
            .header("content-type", "application/scim+json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap_or(Value::Null)
}

fn scim_config(base: String, token: &str) -> ScimConfig {
    let mut c = ScimConfig::new(base.parse().unwrap(), token);
    c.http.retry.max_retries = 2;
    c.http.retry.base_ms = 20;
    c.http.retry.max_backoff_ms = 200;
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_during_a_full_read_from_scim_deprovisions_nothing() {
    let Some(server) = scim2_server().await else { return };
    let user_schema = "urn:ietf:params:scim:schemas:core:2.0:User";
    let mut ids = Vec::new();
    for i in 0..150 {
        let body =
            json!({"schemas": [user_schema], "userName": format!("user{i:03}"), "displayName": format!("User {i}")});
        ids.push(
            scim(&server, reqwest::Method::POST, "Users", Some(body)).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let members: Vec<Value> = ids[..30].iter().map(|id| json!({"value": id})).collect();
    let group =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "staff", "members": members});
    scim(&server, reqwest::Method::POST, "Groups", Some(group)).await;

    let proxy = TcpProxy::start(server.port()).await.unwrap();
    let mut config = scim_config(format!("http://127.0.0.1:{}/v2", proxy.port()), server.token());
    config.page_size = 20;
    let source = ScimSource::connect(config).await.unwrap();
    let p = profile(
        "fa000000-0000-4000-8000-000000000003",
        json!({}),
        json!([{"field": "login", "attribute": "userName"}, {"field": "name", "attribute": "displayName"}]),
        json!([{"field": "name", "attribute": "displayName"}]),
    );
    let target = MemoryTarget::new();
    let engine = Engine::new(
        p.clone(),
        Arc::new(source),
        Arc::new(target.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    let before = proxy.stats().bytes_down;
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(
        (report.plan.counts.create, report.plan.counts.add_member),
        (151, 30),
        "{}",
        report.plan
    );
    let read_bytes = proxy.stats().bytes_down - before;

    for id in &ids[146..] {
        let response = reqwest::Client::new()
            .delete(format!("{}/Users/{id}", server.base_url()))
            .bearer_auth(server.token())
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
    let rename = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Renamed Person"}]});
    scim(
        &server,
        reqwest::Method::PATCH,
        &format!("Users/{}", ids[5]),
        Some(rename),
    )
    .await;

    // The users from `left` on have left; staff keeps its 30 members.
    let name = |i: usize| format!("user{i:03}");
    let fixture = |left: usize| Mirror {
        enabled: (0..left).map(name).collect(),
        disabled: (left..150).map(name).collect(),
        groups: BTreeMap::from([("staff".to_owned(), (0..30).map(name).collect())]),
    };

    // Every connection is reset from the middle of the read on, retries included.
    proxy.reset_after(read_bytes / 2, usize::MAX);
    let report = engine.run(&FULL).await.unwrap();
    assert_partial_and_harmless(&report, &target, "listing Users");
    assert!(proxy.stats().resets >= 3, "{:?}", proxy.stats());
    assert_mirrors(&target, &p, &fixture(150));

    proxy.heal();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.mode, ReadMode::Full, "a partial full read keeps no cursor");
    assert!(report.plan.completeness.is_complete());
    assert_same(
        "disabled users",
        &Mirror::of(&target, &p).disabled,
        &fixture(146).disabled,
    );
    let iterations = 1 + converge(&engine).await;
    let lost = assert_mirrors(&target, &p, &fixture(146));
    let renamed = target.linked_to(p.id, &ids[5]).unwrap();
    assert_eq!(renamed.fields.get("name").map(String::as_str), Some("Renamed Person"));
    figures("reset during a SCIM read", proxy.stats().faults(), iterations, lost);
}

/// Asserts that the SCIM server holds each of `users` (active) and each of
/// `groups` with exactly its members, once and nothing else; returns how
/// many of them it lacks (the objects lost).
async fn assert_scim_holds(
    server: &Scim2Server,
    users: &BTreeSet<String>,
    groups: &BTreeMap<String, BTreeSet<String>>,
) -> usize {
    let (have_users, have_groups) = server.holdings().await;
    let lost = users.iter().filter(|u| !have_users.contains_key(*u)).count()
        + groups.keys().filter(|g| !have_groups.contains_key(*g)).count();
    let active = have_users
        .iter()
        .filter(|(_, active)| **active)
        .map(|(u, _)| u)
        .collect();
    assert_same("active users", &active, &users.iter().collect());
    assert_same("users", &have_users.keys().collect(), &users.iter().collect());
    assert_same("groups", &have_groups.keys().collect(), &groups.keys().collect());
    for (group, members) in groups {
        assert_same(&format!("members of {group}"), &have_groups[group], members);
    }
    lost
}

#[tokio::test(flavor = "multi_thread")]
async fn bursts_of_429_and_5xx_and_lost_answers_while_applying_create_no_duplicates() {
    let Some(server) = scim2_server().await else { return };
    let tcp = TcpProxy::start(server.port()).await.unwrap();
    let http = idsync_testkit::scim2::FaultProxy::start(tcp.port()).await.unwrap();
    let target = ScimTarget::connect(scim_config(http.base_url(), server.token()))
        .await
        .unwrap();
    let (users, groups) = (60, 3);
    let mut objects: Vec<SourceObject> = (0..users)
        .map(|i| {
            SourceObject::new(format!("u{i}"), ObjectKind::User)
                .with("uid", format!("user{i:02}"))
                .with("cn", format!("User {i}"))
        })
        .collect();
    for g in 0..groups {
        let mut group = SourceObject::new(format!("g{g}"), ObjectKind::Group).with("cn", format!("group{g}"));
        for i in (0..users).filter(|i| i % groups == g) {
            group = group.with_member(format!("u{i}"));
        }
        objects.push(group);
    }
    let p = profile(
        "fa000000-0000-4000-8000-000000000004",
        json!({}),
        json!([{"field": "userName", "attribute": "uid"}, {"field": "displayName", "attribute": "cn"}]),
        json!([{"field": "displayName", "attribute": "cn"}]),
    );
    let source = MemorySource::with_objects(objects);
    let engine = Engine::new(
        p.clone(),
        Arc::new(source.clone()),
        Arc::new(target),
        Arc::new(MemoryStateStore::new()),
    );
    let prepared = engine.prepare(&RunOptions::default()).await.unwrap();
    assert_eq!((prepared.plan.counts.create, prepared.plan.counts.add_member), (63, 60));
    {
        use idsync_testkit::fault::Fault;
        use reqwest::Method;
        let rate_limited = Fault::RateLimited { retry_after: Some(1) };
        let faults = http.faults();
        faults.fail_next_of(Method::POST, 6, rate_limited);
        faults.fail_next_of(Method::POST, 3, Fault::Status(503));
        faults.fail_next_of(Method::PATCH, 4, Fault::Status(500));
        faults.fail_next_of(Method::PATCH, 2, rate_limited);
    }
    engine.apply(prepared).await.unwrap();
    let mut iterations = 1 + converge(&engine).await;
    assert_eq!(http.faults().pending(), 0, "every fault was met");
    let name = |i: usize| format!("user{i:02}");
    let mut want_groups: BTreeMap<String, BTreeSet<String>> = (0..groups)
        .map(|g| {
            (
                format!("group{g}"),
                (0..users).filter(|i| i % groups == g).map(name).collect(),
            )
        })
        .collect();
    assert_scim_holds(&server, &(0..users).map(name).collect(), &want_groups).await;

    // Lost answers: for a whole apply, every connection is reset as soon as
    // the server answers, after it acted (Bulk requests, single POSTs and
    // the look-ups that follow them alike).
    let more = 20;
    let mut group = SourceObject::new("g-new", ObjectKind::Group).with("cn", "group-new");
    for i in users..users + more {
        source.upsert(
            SourceObject::new(format!("u{i}"), ObjectKind::User)
                .with("uid", format!("user{i:02}"))
                .with("cn", format!("User {i}")),
        );
        group = group.with_member(format!("u{i}"));
    }
    source.upsert(group);
    let prepared = engine.prepare(&RunOptions::default()).await.unwrap();
    assert_eq!(prepared.plan.counts.create, more + 1);
    let http_faults = http.seen().iter().filter(|s| s.faulted).count() as u64;
    tcp.reset_after(0, usize::MAX);
    let report = engine.apply(prepared).await.unwrap();
    assert_eq!(report.applied(), 0, "{}", report.to_json());
    tcp.heal();
    iterations += 1 + converge(&engine).await;
    // the faults were met: the Bulk request of the creates, then the
    // look-up of their links (and its retries)
    assert!(tcp.stats().resets >= 2, "{:?}", tcp.stats());
    want_groups.insert("group-new".to_owned(), (users..users + more).map(name).collect());
    let lost = assert_scim_holds(&server, &(0..users + more).map(name).collect(), &want_groups).await;
    let injected = http_faults + tcp.stats().faults();
    figures(
        "429/5xx/lost answers while applying into SCIM",
        injected,
        iterations,
        lost,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_returning_60_percent_fewer_users_is_held_by_the_threshold() {
    let Some(s) = slapd::slapd(SlapdOptions::with_users(100, 0)).await else {
        return;
    };
    let Some(server) = scim2_server().await else { return };
    let p = profile(
        "fa000000-0000-4000-8000-000000000005",
        json!({}),
        json!([{"field": "userName", "attribute": "uid"}, {"field": "displayName", "attribute": "cn"}]),
        json!([]),
    );
    let target = ScimTarget::connect(scim_config(server.base_url(), server.token()))
        .await
        .unwrap();
    let engine = Engine::new(
        p.clone(),
        Arc::new(LdapSource::new(config_direct(&s))),
        Arc::new(target),
        Arc::new(MemoryStateStore::new()),
    );
    assert_eq!(
        engine.run(&RunOptions::default()).await.unwrap().plan.counts.create,
        100
    );

    // 60 users vanish at once (a wrong filter, a bad ACL, a botched
    // migration); one more is renamed, which is applied regardless.
    let mut change = String::new();
    for i in 40..100 {
        change.push_str(&format!(
            "dn: {}\nchangetype: delete\n\n",
            slapd::user_dn(s.base_dn(), i, &[])
        ));
    }
    let renamed = slapd::user_dn(s.base_dn(), 3, &[]);
    change.push_str(&format!(
        "dn: {renamed}\nchangetype: modify\nreplace: cn\ncn: Renamed Person\n"
    ));
    s.ldapmodify(&change).await.unwrap();

    let report = engine.run(&RunOptions::default()).await.unwrap();
    let c = report.plan.counts;
    assert_eq!((c.disable, c.held, c.update), (60, 60, 1), "{}", report.plan);
    assert!(has_finding(&report, FindingKind::ThresholdExceeded), "{}", report.plan);
    assert!(report.plan.to_string().contains("threshold"), "{}", report.plan);
    let active = |users: &BTreeMap<String, bool>, want: bool| -> BTreeSet<String> {
        users
            .iter()
            .filter(|(_, a)| **a == want)
            .map(|(u, _)| u.clone())
            .collect()
    };
    let (users, _) = server.holdings().await;
    let all: BTreeSet<String> = (0..100).map(slapd::user_uid).collect();
    assert_same("active users: nothing disabled", &active(&users, true), &all);
    let users = server.resources("Users").await;
    assert!(
        users
            .iter()
            .any(|u| u["userName"] == "u000003" && u["displayName"] == "Renamed Person")
    );
    // Held again by the next run, until someone confirms.
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.counts.held, 60);

    let confirmed = RunOptions {
        confirm: true,
        ..RunOptions::default()
    };
    let report = engine.run(&confirmed).await.unwrap();
    assert_eq!((report.plan.counts.disable, report.plan.counts.held), (60, 0));
    assert_eq!(report.failures().count(), 0, "{}", report.to_json());
    let (users, _) = server.holdings().await;
    let left: BTreeSet<String> = (40..100).map(slapd::user_uid).collect();
    assert_same("inactive users", &active(&users, false), &left);
    assert_same("users: disabled, not deleted", &users.keys().cloned().collect(), &all);
    let iterations = converge(&engine).await;
    figures("60 % fewer users", 0, 3 + iterations, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scope_that_drops_an_ou_shows_its_deprovisions_before_applying() {
    let ous = ["sales", "eng", "ops"];
    let base = slapd::DEFAULT_SUFFIX;
    let mut ldif = slapd::ous_ldif(base, &ous);
    ldif.push_str(&slapd::users_ldif(base, 90, &ous));
    let Some(s) = slapd::slapd(SlapdOptions {
        ldif,
        ..SlapdOptions::default()
    })
    .await
    else {
        return;
    };
    let containers = |names: &[&str]| -> Vec<String> { names.iter().map(|n| format!("ou={n},{base}")).collect() };
    let id = "fa000000-0000-4000-8000-000000000006";
    let before = ldap_profile(id, json!({"containers": containers(&ous)}));
    let after = ldap_profile(id, json!({"containers": containers(&ous[..2])}));
    let (target, state) = (MemoryTarget::new(), Arc::new(MemoryStateStore::new()));
    let engine = |p: &Profile| {
        Engine::new(
            p.clone(),
            Arc::new(LdapSource::new(config_direct(&s))),
            Arc::new(target.clone()),
            state.clone(),
        )
    };
    let report = engine(&before).run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.counts.create, 90);
    // users_ldif puts user i in ous[i % 3]: the users of "ops" are i % 3 == 2.
    let logins = |in_ops: bool| -> BTreeSet<String> {
        (0..90)
            .filter(|i| (i % 3 == 2) == in_ops)
            .map(slapd::user_uid)
            .collect()
    };
    let everyone_enabled = Mirror {
        enabled: (0..90).map(slapd::user_uid).collect(),
        ..Mirror::default()
    };
    assert_mirrors(&target, &before, &everyone_enabled);

    let narrowed = engine(&after);
    let prepared = narrowed.prepare(&RunOptions::default()).await.unwrap();
    let c = prepared.plan.counts;
    assert_eq!(
        (c.disable, c.held, c.create, c.update),
        (30, 30, 0, 0),
        "{}",
        prepared.plan
    );
    assert!(
        prepared
            .plan
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::ThresholdExceeded),
        "{}",
        prepared.plan
    );
    let dropped: Vec<_> = prepared
        .plan
        .operations
        .iter()
        .filter(|op| op.action.is_deprovision())
        .collect();
    assert!(dropped.iter().all(|op| op.held.is_some()));
    let shown: BTreeSet<String> = dropped
        .iter()
        .filter_map(|op| target.account(op.target.as_ref()?))
        .filter_map(|a| a.fields.get("login").cloned())
        .collect();
    assert_same("deprovisions shown", &shown, &logins(true));
    assert_mirrors(&target, &after, &everyone_enabled); // prepare applies nothing

    let report = narrowed.apply(prepared).await.unwrap();
    assert_eq!(report.applied(), 0);
    assert_mirrors(&target, &after, &everyone_enabled); // held operations are not applied

    let confirmed = RunOptions {
        confirm: true,
        ..RunOptions::default()
    };
    let prepared = narrowed.prepare(&confirmed).await.unwrap();
    assert_eq!((prepared.plan.counts.disable, prepared.plan.counts.held), (30, 0));
    narrowed.apply(prepared).await.unwrap();
    let ops_disabled = Mirror {
        enabled: logins(false),
        disabled: logins(true),
        ..Mirror::default()
    };
    assert_mirrors(&target, &after, &ops_disabled);
    let iterations = converge(&narrowed).await;
    figures("scope drops an OU", 0, 2 + iterations, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_that_goes_silent_during_a_read_times_out_and_deprovisions_nothing() {
    let Some(s) = slapd::slapd(SlapdOptions::with_users(2000, 0)).await else {
        return;
    };
    let proxy = TcpProxy::start(s.port()).await.unwrap();
    let mut config = through_proxy(&s, &proxy);
    config.timeout_secs = 2;
    let p = ldap_profile("fa000000-0000-4000-8000-000000000007", json!({}));
    let target = MemoryTarget::new();
    let engine = Engine::new(
        p.clone(),
        Arc::new(LdapSource::new(config)),
        Arc::new(target.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    assert_eq!(
        engine.run(&RunOptions::default()).await.unwrap().plan.counts.create,
        2000
    );
    let read_bytes = proxy.stats().bytes_down;
    for i in 1995..2000 {
        s.ldapdelete(&slapd::user_dn(s.base_dn(), i, &[])).await.unwrap();
    }

    // The read stalls halfway: the run waits out one operation timeout
    // (2 s), not two, and ends with a Partial read, nothing deprovisioned.
    proxy.stall_after(read_bytes / 2);
    let started = std::time::Instant::now();
    let report = tokio::time::timeout(std::time::Duration::from_secs(10), engine.run(&FULL))
        .await
        .expect("a silent link does not hang the run")
        .unwrap();
    let waited = started.elapsed();
    assert!(proxy.stats().stalled >= 1);
    assert_partial_and_harmless(&report, &target, "timeout");
    assert_mirrors(&target, &p, &Mirror::slapd_fixture(2000, 0, &[]));
    eprintln!("the silent link was given up after {waited:?}");
    assert!(
        (2.0..4.0).contains(&waited.as_secs_f64()),
        "given up after {waited:?}, not after one timeout of 2 s"
    );

    proxy.heal();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.mode, ReadMode::Full, "a partial full read keeps no cursor");
    let want = Mirror::slapd_fixture(2000, 0, &[1995, 1996, 1997, 1998, 1999]);
    assert_same("disabled users", &Mirror::of(&target, &p).disabled, &want.disabled);
    let iterations = 1 + converge(&engine).await;
    let lost = assert_mirrors(&target, &p, &want);
    figures(
        "silent link during a slapd read",
        proxy.stats().faults(),
        iterations,
        lost,
    );
}
