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
        }
    }
    objects
}

/// Source objects whose account in `target` is missing or not in the
/// source's enabled state, and linked accounts whose object is gone but
/// which are still enabled: `(lost, not deprovisioned)`.
fn diff(objects: &[SourceObject], target: &MemoryTarget, profile: &Profile) -> (usize, usize) {
    let lost = objects
        .iter()
        .filter(|o| {
            target
                .linked_to(profile.id, o.id.as_str())
                .is_none_or(|a| a.enabled != o.enabled)
        })
        .count();
    let in_source: std::collections::HashSet<&str> = objects.iter().map(|o| o.id.as_str()).collect();
    let stale = target
        .accounts()
        .iter()
        .filter(|a| a.enabled)
        .filter_map(|a| a.link.as_ref().filter(|l| l.profile == profile.id))
        .filter(|l| !in_source.contains(l.external.as_str()))
        .count();
    (lost, stale)
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
    LdapConfig {
        page_size: 50,
        ..LdapConfig::new(
            &format!("ldap://127.0.0.1:{}", proxy.port()),
            &s.admin_dn(),
            s.admin_password(),
            s.base_dn(),
            Flavor::Generic,
        )
    }
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
    let leavers: Vec<String> = (1990..1995).map(|i| slapd::user_dn(s.base_dn(), i, &[])).collect();
    for dn in &leavers {
        s.ldapdelete(dn).await.unwrap();
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
    assert_eq!(target.accounts().len(), 2004);

    proxy.heal();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.mode, ReadMode::Full, "a partial full read keeps no cursor");
    assert!(report.plan.completeness.is_complete());
    assert_eq!(report.plan.counts.disable, leavers.len(), "{}", report.plan);
    let iterations = 1 + converge(&engine).await;
    let objects = truth(&LdapSource::new(config_direct(&s)), &p).await;
    assert_eq!(objects.len(), 1999);
    let (lost, stale) = diff(&objects, &target, &p);
    assert_eq!((lost, stale), (0, 0));
    let renamed = target.linked_to(p.id, objects_by(&objects, "uid", "u001999").as_str());
    assert_eq!(
        renamed.unwrap().fields.get("name").map(String::as_str),
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

    proxy.reset_after(read_bytes / 2, 1);
    let report = engine.run(&FULL).await.unwrap();
    assert_partial_and_harmless(&report, &target, "the connection failed");
    assert_eq!(proxy.stats().resets, 1);

    proxy.heal();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert!(report.plan.completeness.is_complete());
    assert_eq!(report.plan.counts.disable, 3, "{}", report.plan);
    let iterations = 1 + converge(&engine).await;
    let direct = LdapConfig::new(dc.url(), dc.admin_upn(), dc.admin_password(), dc.base_dn(), Flavor::Ad);
    let objects = truth(&LdapSource::new(direct), &p).await;
    assert_eq!(objects.len(), 41);
    let (lost, stale) = diff(&objects, &target, &p);
    assert_eq!((lost, stale), (0, 0));
    assert!(
        target
            .accounts()
            .iter()
            .any(|a| a.fields.get("name").map(String::as_str) == Some("Renamed Person"))
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
        }
    }
    (present, changed, deleted, end)
}

/// The fixture users in a group's target account, by login.
fn member_logins(target: &MemoryTarget, group: &TargetAccount) -> BTreeSet<String> {
    group
        .members
        .iter()
        .filter_map(|id| target.account(id))
        .filter_map(|a| a.fields.get("login").cloned())
        .collect()
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
    let direct = LdapSource::new(config_direct(&s));
    let g1_id = objects_by(&truth(&direct, &p).await, "cn", &slapd::group_cn(1));
    let g1 = || target.linked_to(p.id, &g1_id).expect("g0001 has an account");

    // u000009 leaves g0001; removing it fails in the target, so the group
    // is held for retry: every later delta reads it again, even one cut
    // short, and would remove its missing members.
    let (base, uid) = (s.base_dn().to_owned(), slapd::user_uid);
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
    assert!(member_logins(&target, &g1()).contains(&uid(9)));

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
    assert!(target.accounts().iter().all(|a| a.enabled), "nothing disabled");
    let kept = member_logins(&target, &g1());
    assert_eq!(kept.len(), 500, "no member removed");
    assert!(kept.contains(&uid(9)) && kept.contains(&uid(5)));
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
    let objects = truth(&direct, &p).await;
    assert_eq!(objects.len(), 1998);
    assert_eq!(diff(&objects, &target, &p), (0, 0));
    let expected: BTreeSet<String> = slapd::group_members(1, 4, 2000)
        .into_iter()
        .filter(|i| ![5, 9, 1993].contains(i))
        .map(uid)
        .collect();
    assert_eq!(member_logins(&target, &g1()), expected);
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
    let cursor = state.load(p.id).await.unwrap().cursor.expect("a syncrepl cursor");
    let direct = LdapSource::new(config_direct(&s));
    let g1_id = objects_by(&truth(&direct, &p).await, "cn", &slapd::group_cn(1));

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
    let c = report.plan.counts;
    assert_eq!((c.disable, c.remove_member), (0, 0), "{}", report.plan);
    let g1 = target.linked_to(p.id, &g1_id).unwrap();
    assert_eq!(member_logins(&target, &g1).len(), 500, "no member removed");
    assert!(!report.cursor_saved);
    assert_eq!(state.load(p.id).await.unwrap().cursor, Some(cursor), "the cursor stays");

    proxy.heal();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert!(report.plan.completeness.is_complete(), "{}", report.plan);
    assert_eq!(report.plan.counts.remove_member, 1, "{}", report.plan);
    let g1 = target.linked_to(p.id, &g1_id).unwrap();
    assert!(!member_logins(&target, &g1).contains(&slapd::user_uid(9)));
    assert_eq!(member_logins(&target, &g1).len(), 499);
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

async fn resources(server: &Scim2Server, kind: &str) -> Vec<Value> {
    let body = scim(server, reqwest::Method::GET, &format!("{kind}?count=10000"), None).await;
    body["Resources"].as_array().cloned().unwrap_or_default()
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

    // Every connection is reset from the middle of the read on, retries included.
    proxy.reset_after(read_bytes / 2, usize::MAX);
    let report = engine.run(&FULL).await.unwrap();
    assert_partial_and_harmless(&report, &target, "listing Users");
    assert!(proxy.stats().resets >= 3, "{:?}", proxy.stats());

    proxy.heal();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert!(report.plan.completeness.is_complete());
    assert_eq!(report.plan.counts.disable, 4, "{}", report.plan);
    let iterations = 1 + converge(&engine).await;
    let direct = ScimSource::connect(scim_config(server.base_url(), server.token()))
        .await
        .unwrap();
    let objects = truth(&direct, &p).await;
    assert_eq!(objects.len(), 147);
    let (lost, stale) = diff(&objects, &target, &p);
    assert_eq!((lost, stale), (0, 0));
    let renamed = target.linked_to(p.id, &ids[5]).unwrap();
    assert_eq!(renamed.fields.get("name").map(String::as_str), Some("Renamed Person"));
    figures("reset during a SCIM read", proxy.stats().faults(), iterations, lost);
}

/// How many resources of `kind` the server holds per value of `attribute`.
async fn count_by(server: &Scim2Server, kind: &str, attribute: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in resources(server, kind).await {
        *counts
            .entry(r[attribute].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    counts
}

/// Each user and group once on the server (by `userName`, `displayName`),
/// `users` and `groups` of them, every group with `members` members;
/// returns how many are missing.
async fn assert_no_duplicates(server: &Scim2Server, users: usize, groups: usize, members: usize) -> usize {
    let by_name = count_by(server, "Users", "userName").await;
    let duplicates: Vec<_> = by_name.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "duplicate users: {duplicates:?}");
    let by_group = count_by(server, "Groups", "displayName").await;
    let duplicates: Vec<_> = by_group.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "duplicate groups: {duplicates:?}");
    assert_eq!((by_name.len(), by_group.len()), (users, groups));
    for g in resources(server, "Groups").await {
        assert_eq!(g["members"].as_array().map(Vec::len), Some(members), "{g}");
    }
    users + groups - by_name.len() - by_group.len()
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
    http.fail_next(6, 429, Some("1"), Some(reqwest::Method::POST));
    http.fail_next(3, 503, None, Some(reqwest::Method::POST));
    http.fail_next(4, 500, None, Some(reqwest::Method::PATCH));
    http.fail_next(2, 429, Some("1"), Some(reqwest::Method::PATCH));
    engine.apply(prepared).await.unwrap();
    let mut iterations = 1 + converge(&engine).await;
    assert_eq!(http.pending_faults(), 0, "every fault was met");
    assert_no_duplicates(&server, users, groups, users / groups).await;

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
    let lost = assert_no_duplicates(&server, users + more, groups + 1, more).await;
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
    let users = resources(&server, "Users").await;
    assert_eq!(
        users.iter().filter(|u| u["active"] == true).count(),
        100,
        "nothing disabled"
    );
    assert!(users.iter().any(|u| u["displayName"] == "Renamed Person"));
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
    let users = resources(&server, "Users").await;
    assert_eq!(users.iter().filter(|u| u["active"] == false).count(), 60);
    assert_eq!(users.len(), 100, "disabled, not deleted");
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
    assert!(target.accounts().iter().all(|a| a.enabled), "prepare applies nothing");

    let report = narrowed.apply(prepared).await.unwrap();
    assert_eq!(report.applied(), 0);
    assert!(
        target.accounts().iter().all(|a| a.enabled),
        "held operations are not applied"
    );

    let confirmed = RunOptions {
        confirm: true,
        ..RunOptions::default()
    };
    let prepared = narrowed.prepare(&confirmed).await.unwrap();
    assert_eq!((prepared.plan.counts.disable, prepared.plan.counts.held), (30, 0));
    narrowed.apply(prepared).await.unwrap();
    let disabled: Vec<_> = target.accounts().into_iter().filter(|a| !a.enabled).collect();
    assert_eq!(disabled.len(), 30);
    let ops_logins: Vec<String> = (0..90).filter(|i| i % 3 == 2).map(slapd::user_uid).collect();
    assert!(
        disabled
            .iter()
            .all(|a| ops_logins.contains(a.fields.get("login").unwrap_or(&String::new())))
    );
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

    proxy.stall_after(read_bytes / 2);
    let started = std::time::Instant::now();
    let run = tokio::time::timeout(std::time::Duration::from_secs(60), engine.run(&FULL))
        .await
        .expect("a silent link does not hang the run");
    let waited = started.elapsed();
    assert!(proxy.stats().stalled >= 1);
    match run {
        Ok(report) => assert_partial_and_harmless(&report, &target, "timeout"),
        Err(e) => assert!(e.is_transient(), "{e}"),
    }
    assert!(target.accounts().iter().all(|a| a.enabled), "nothing disabled");
    eprintln!("the silent link was given up after {waited:?}");

    proxy.heal();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.counts.disable, 5, "{}", report.plan);
    let iterations = 1 + converge(&engine).await;
    let objects = truth(&LdapSource::new(config_direct(&s)), &p).await;
    let (lost, stale) = diff(&objects, &target, &p);
    assert_eq!((lost, stale), (0, 0));
    figures(
        "silent link during a slapd read",
        proxy.stats().faults(),
        iterations,
        lost,
    );
}
