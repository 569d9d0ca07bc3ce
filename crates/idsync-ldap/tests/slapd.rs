//! The LDAP adapter (generic flavour) against a real OpenLDAP slapd.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::sync::Arc;

use futures::StreamExt;
use idsync_core::memory::{MemorySource, MemoryTarget};
use idsync_core::{
    Engine, Fields, MemoryStateStore, ObjectKind, Profile, ReadItem, RunOptions, Scope, Source, SourceObject, Target,
    TargetId, TargetOp,
};
use idsync_ldap::{Flavor, LdapConfig, LdapSource, LdapTarget};
use idsync_testkit::behaviour::{source, target};
use idsync_testkit::slapd::{Slapd, SlapdOptions, slapd, user_names};

fn config(s: &Slapd) -> LdapConfig {
    LdapConfig::new(
        &s.url(),
        &s.admin_dn(),
        s.admin_password(),
        s.base_dn(),
        Flavor::Generic,
    )
}

fn profile(json: serde_json::Value) -> Profile {
    serde_json::from_value(json).unwrap()
}

fn read_profile() -> Profile {
    profile(serde_json::json!({
        "id": "a1a1a1a1-0000-4000-8000-000000000001", "name": "slapd to app",
        "mapping": {"users": [{"field": "login", "attribute": "uid"}, {"field": "name", "attribute": "cn"}],
                    "groups": [{"field": "name", "attribute": "cn"}]}
    }))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_source_passes_the_behaviour_suite() {
    let Some(s) = slapd(SlapdOptions::with_users(12, 2)).await else {
        return;
    };
    let users: Vec<String> = (0..12)
        .map(|i| {
            let (g, n) = user_names(i);
            format!("{g} {n}")
        })
        .collect();
    let group_members = |g: usize| {
        (0..12)
            .filter(|i| i % 2 == g)
            .map(|i| users[i].clone())
            .collect::<Vec<_>>()
    };
    let fx = source::Fixture {
        scope: Scope::default(),
        name_attribute: "cn".into(),
        users: users.clone(),
        groups: vec![
            (idsync_testkit::slapd::group_cn(0), group_members(0)),
            (idsync_testkit::slapd::group_cn(1), group_members(1)),
        ],
        disabled: vec![],
    };
    let report = source::run(&LdapSource::new(config(&s)), &fx).await;
    report.assert_ok();
    assert!(report.skipped.is_empty(), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_sync_into_the_app_brings_users_groups_members_and_non_ascii_names() {
    let Some(s) = slapd(SlapdOptions::with_users(40, 3)).await else {
        return;
    };
    let target = MemoryTarget::new();
    let engine = Engine::new(
        read_profile(),
        Arc::new(LdapSource::new(config(&s))),
        Arc::new(target.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert!(report.plan.completeness.is_complete());
    assert_eq!(
        (report.plan.counts.create, report.plan.counts.add_member),
        (43, 40),
        "{}",
        report.plan
    );
    let accounts = target.accounts();
    assert!(
        accounts
            .iter()
            .any(|a| a.fields.get("name").is_some_and(|n| !n.is_ascii())),
        "non-ASCII names arrive intact"
    );
    // A leaver and a rename, seen by the next (full) run.
    s.ldapdelete(&format!(
        "uid={},ou=people,{}",
        idsync_testkit::slapd::user_uid(3),
        s.base_dn()
    ))
    .await
    .unwrap();
    s.ldapmodify(&format!(
        "dn: uid={},ou=people,{}\nchangetype: modify\nreplace: cn\ncn: Renamed Person\n",
        idsync_testkit::slapd::user_uid(5),
        s.base_dn()
    ))
    .await
    .unwrap();
    // A full read: OpenLDAP without the refint overlay keeps the deleted
    // user's DN in the group, so only a full read sees the membership go.
    let full = RunOptions {
        full: true,
        ..RunOptions::default()
    };
    let report = engine.run(&full).await.unwrap();
    let actions: Vec<_> = report.plan.operations.iter().map(|o| o.action.name()).collect();
    assert!(
        actions.contains(&"disable") && actions.contains(&"update") && actions.contains(&"remove_member"),
        "{}",
        report.plan
    );
    assert!(engine.run(&RunOptions::default()).await.unwrap().plan.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_size_limit_makes_the_read_partial_and_nothing_is_deprovisioned() {
    let Some(s) = slapd(SlapdOptions {
        size_limit: Some(5),
        reader: true,
        ..SlapdOptions::with_users(12, 0)
    })
    .await
    else {
        return;
    };
    let mut c = config(&s);
    c.bind_dn = s.reader_dn().unwrap();
    c.password = s.reader_password().to_owned().into();
    let source = LdapSource::new(c);
    let mut stream = source.read_full(&Scope::default()).await.unwrap();
    let mut objects = 0;
    let mut end = None;
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            ReadItem::Object(_) => objects += 1,
            ReadItem::End { completeness, .. } => end = Some(completeness),
            other => panic!("a case this code does not know: {other:?}"),
        }
    }
    assert!(objects <= 5);
    let end = end.unwrap();
    assert!(
        matches!(&end, idsync_core::Completeness::Partial { reason } if reason.contains("size limit")),
        "{end:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_server_gives_an_error_and_no_deprovisions() {
    let Some(mut s) = slapd(SlapdOptions::with_users(6, 0)).await else {
        return;
    };
    let target = MemoryTarget::new();
    let engine = Engine::new(
        read_profile(),
        Arc::new(LdapSource::new(config(&s))),
        Arc::new(target.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    engine.run(&RunOptions::default()).await.unwrap();
    s.stop().await;
    let e = engine.run(&RunOptions::default()).await.unwrap_err();
    assert_eq!(e.kind(), idsync_core::ErrorKind::Unavailable, "{e}");
    assert!(target.accounts().iter().all(|a| a.enabled));
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_stop_the_run() {
    let Some(s) = slapd(SlapdOptions::default()).await else {
        return;
    };
    let mut c = config(&s);
    c.password = "wrong".to_owned().into();
    let e = LdapSource::connect(c).await.unwrap_err();
    assert!(e.stops_run(), "{e}");
    assert!(
        !e.to_string().contains("wrong"),
        "the password never appears in errors: {e}"
    );
}

/// A typo in the profile's LDAP filter or in the directory's URL is a
/// configuration error: the run stops at once, before anything is read or
/// written, and is not retried (`idsync schedule` stops on it too).
#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_filter_or_url_stops_the_run_at_once_with_a_config_error() {
    let Some(s) = slapd(SlapdOptions::with_users(6, 1)).await else {
        return;
    };
    let assert_config = |e: &idsync_core::Error, names: &str| {
        assert_eq!(e.kind(), idsync_core::ErrorKind::Config, "{e}");
        assert!(e.stops_run() && !e.is_transient(), "{e}");
        assert!(e.to_string().contains(names), "{e}");
    };
    let mut bad = read_profile();
    bad.scope.filter = Some("(uid=nobody".into());
    let target = MemoryTarget::new();
    let engine = Engine::new(
        bad.clone(),
        Arc::new(LdapSource::new(config(&s))),
        Arc::new(target.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    let started = std::time::Instant::now();
    let e = engine.run(&RunOptions::default()).await.unwrap_err();
    assert_config(&e, "scope.filter");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(target.accounts().is_empty());

    // A delta from a good cursor with the same typo stops the same way.
    let good = LdapSource::new(config(&s));
    let mut stream = good.read_full(&Scope::default()).await.unwrap();
    let mut cursor = None;
    while let Some(item) = stream.next().await {
        if let ReadItem::End { cursor: c, .. } = item.unwrap() {
            cursor = c;
        }
    }
    let e = match good.read_delta(&bad.scope, &cursor.unwrap()).await {
        Ok(_) => panic!("a delta with a malformed filter started"),
        Err(e) => e,
    };
    assert_config(&e, "scope.filter");

    // So does a configured user filter that does not parse.
    let mut c = config(&s);
    c.user_filter = Some("(objectClass=inetOrgPerson".into());
    let e = match LdapSource::new(c).read_full(&Scope::default()).await {
        Ok(_) => panic!("a read with a malformed user_filter started"),
        Err(e) => e,
    };
    assert_config(&e, "user_filter");

    // And a URL that does not parse, on the source and on the target.
    let mut c = config(&s);
    c.url = s.url().replace("ldap://", "ldpa://");
    assert_config(&LdapSource::connect(c.clone()).await.unwrap_err(), "scheme");
    let mut bad_url = target_config(&s);
    bad_url.url = "ldap://127.0.0.1:389x".into();
    let engine = Engine::new(
        read_profile(),
        Arc::new(MemorySource::with_objects([SourceObject::new("e1", ObjectKind::User)])),
        Arc::new(LdapTarget::new(bad_url)),
        Arc::new(MemoryStateStore::new()),
    );
    let started = std::time::Instant::now();
    assert_config(&engine.run(&RunOptions::default()).await.unwrap_err(), "url");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

fn target_config(s: &Slapd) -> LdapConfig {
    let mut c = config(s);
    c.default_container = Some(s.people_dn());
    c.disabled_attribute = Some("employeeType".into());
    c
}

fn user_fields(prefix: &str, n: u32) -> Fields {
    [
        ("cn", format!("{prefix} user{n}")),
        ("sn", format!("User{n}")),
        ("mail", format!("{prefix}-user{n}@acme.test")),
        ("givenName", "Tëst".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn group_fields(prefix: &str, n: u32) -> Fields {
    [("cn".to_owned(), format!("{prefix} group{n}"))].into_iter().collect()
}

fn target_profile() -> Profile {
    profile(serde_json::json!({
        "id": "a1a1a1a1-0000-4000-8000-000000000002", "name": "app to slapd",
        "mapping": {"users": [{"field": "cn", "template": "{givenName} {sn}"}, {"field": "sn", "attribute": "sn"},
                              {"field": "givenName", "attribute": "givenName"}, {"field": "mail", "attribute": "mail"}],
                    "groups": [{"field": "cn", "attribute": "cn"}]}
    }))
}

fn target_fixture(prefix: &str) -> target::Fixture {
    target::Fixture {
        prefix: prefix.into(),
        user_fields,
        group_fields,
        correlation_field: "mail".into(),
        updatable_field: "sn".into(),
        profile: target_profile(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_target_passes_the_behaviour_suite() {
    let Some(s) = slapd(SlapdOptions::default()).await else {
        return;
    };
    let report = target::run(Arc::new(LdapTarget::new(target_config(&s))), &target_fixture("bt")).await;
    report.assert_ok();
    assert!(report.skipped.is_empty(), "{report}");
}

/// Generic LDAP has no disabled flag of its own: without
/// `disabled_attribute` the target cannot disable, and the suite says
/// exactly which checks it skipped for that.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_disabled_attribute_the_suite_skips_exactly_the_disable_checks() {
    let Some(s) = slapd(SlapdOptions::default()).await else {
        return;
    };
    let mut c = target_config(&s);
    c.disabled_attribute = None;
    let report = target::run(Arc::new(LdapTarget::new(c)), &target_fixture("nd")).await;
    report.assert_ok();
    let skipped: Vec<_> = report.skipped.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        skipped,
        ["disable_keeps_the_account", "an_engine_run_disables_a_leaver"],
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_in_memory_directory_syncs_into_slapd() {
    let Some(s) = slapd(SlapdOptions::default()).await else {
        return;
    };
    let user = |id: &str, given: &str, sn: &str| {
        SourceObject::new(id, ObjectKind::User)
            .with("givenName", given)
            .with("sn", sn)
            .with("mail", format!("{id}@acme.test"))
    };
    let source = MemorySource::with_objects([
        user("e1", "Ann", "Lee"),
        user("e2", "Zoë", "Müller"),
        SourceObject::new("g1", ObjectKind::Group)
            .with("cn", "staff")
            .with_member("e1")
            .with_member("e2"),
    ]);
    let engine = Engine::new(
        target_profile(),
        Arc::new(source.clone()),
        Arc::new(LdapTarget::new(target_config(&s))),
        Arc::new(MemoryStateStore::new()),
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(
        report.outcome,
        idsync_core::report::RunOutcome::Succeeded,
        "{}",
        report.to_json()
    );
    let people = s
        .search(&s.people_dn(), "(objectClass=inetOrgPerson)", &["cn", "mail"])
        .await
        .unwrap();
    let mut names: Vec<String> = people.iter().filter_map(|e| e.first_str("cn")).collect();
    names.sort();
    assert_eq!(names, ["Ann Lee", "Zoë Müller"]);
    let group = s.search(&s.people_dn(), "(cn=staff)", &["member"]).await.unwrap();
    assert_eq!(group[0].strs("member").into_iter().filter(|m| !m.is_empty()).count(), 2);
    // A rename moves the entry (cn is the naming attribute); a leaver is disabled.
    source.modify("e1", |o| {
        o.attributes
            .insert("sn".into(), vec![idsync_core::AttrValue::Text("Lee-Smith".into())]);
    });
    source.delete("e2");
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(
        report.outcome,
        idsync_core::report::RunOutcome::Succeeded,
        "{}",
        report.to_json()
    );
    let renamed = s.search(&s.people_dn(), "(cn=Ann Lee-Smith)", &["sn"]).await.unwrap();
    assert_eq!(renamed.len(), 1, "renamed in place");
    assert!(renamed[0].dn.starts_with("cn=Ann Lee-Smith,"), "{}", renamed[0].dn);
    let zoe = s
        .search(&s.people_dn(), "(sn=Müller)", &["employeeType"])
        .await
        .unwrap();
    assert_eq!(zoe[0].first_str("employeeType").as_deref(), Some("disabled"));
    assert!(engine.run(&RunOptions::default()).await.unwrap().plan.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn syncrepl_deltas_see_adds_modifies_deletes_and_after_a_restart_the_present_set() {
    let Some(mut s) = slapd(SlapdOptions::with_users(10, 1)).await else {
        return;
    };
    let target = MemoryTarget::new();
    let engine = Engine::new(
        read_profile(),
        Arc::new(LdapSource::new(config(&s))),
        Arc::new(target.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    let first = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(first.plan.mode, idsync_core::ReadMode::Full);
    assert!(first.cursor_saved);
    let uid = idsync_testkit::slapd::user_uid;
    let people = s.people_dn();
    s.ldapmodify(&format!(
        "dn: uid={},{people}\nchangetype: modify\nreplace: cn\ncn: Changed One\n",
        uid(1)
    ))
    .await
    .unwrap();
    s.ldapmodify(&format!(
        "dn: uid={},{people}\nchangetype: modify\nreplace: cn\ncn: Changed Two\n",
        uid(2)
    ))
    .await
    .unwrap();
    s.ldapdelete(&format!("uid={},{people}", uid(3))).await.unwrap();
    s.ldapadd(&idsync_testkit::slapd::user_ldif(s.base_dn(), 50, &[]))
        .await
        .unwrap();
    let delta = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(delta.plan.mode, idsync_core::ReadMode::Delta, "{}", delta.plan);
    let c = delta.plan.counts;
    assert_eq!((c.create, c.update, c.disable), (1, 2, 1), "{}", delta.plan);
    assert!(delta.cursor_saved);
    // After a restart the session log is gone: deletes arrive as the present set.
    s.restart().await.unwrap();
    s.ldapdelete(&format!("uid={},{people}", uid(4))).await.unwrap();
    let delta = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(delta.plan.mode, idsync_core::ReadMode::Delta, "{}", delta.plan);
    assert_eq!(delta.plan.counts.disable, 1, "{}", delta.plan);
    let gone = target
        .accounts()
        .into_iter()
        .filter(|a| a.kind == ObjectKind::User && !a.enabled)
        .count();
    assert_eq!(gone, 2);
    assert!(engine.run(&RunOptions::default()).await.unwrap().plan.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn without_syncrepl_deltas_come_from_modify_timestamp() {
    let Some(s) = slapd(SlapdOptions {
        syncprov: false,
        ..SlapdOptions::with_users(10, 1)
    })
    .await
    else {
        return;
    };
    let target = MemoryTarget::new();
    let state = Arc::new(MemoryStateStore::new());
    let engine = Engine::new(
        read_profile(),
        Arc::new(LdapSource::new(config(&s))),
        Arc::new(target.clone()),
        state.clone(),
    );
    let first = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(first.plan.mode, idsync_core::ReadMode::Full);
    let saved = idsync_core::StateStore::load(&*state, read_profile().id)
        .await
        .unwrap()
        .cursor
        .expect("a cursor");
    assert!(saved.0.starts_with("ldap:modifytimestamp:"), "{}", saved.0);

    let uid = idsync_testkit::slapd::user_uid;
    let people = s.people_dn();
    for i in [1, 2] {
        s.ldapmodify(&format!(
            "dn: uid={},{people}\nchangetype: modify\nreplace: cn\ncn: Changed {i}\n",
            uid(i)
        ))
        .await
        .unwrap();
    }
    s.ldapdelete(&format!("uid={},{people}", uid(3))).await.unwrap();
    s.ldapadd(&idsync_testkit::slapd::user_ldif(s.base_dn(), 50, &[]))
        .await
        .unwrap();
    // The only group (all 10 users) loses user 5 (and, without the refint
    // overlay, keeps the DN of deleted user 3, which no longer resolves).
    s.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\ndelete: member\nmember: uid={},{people}\n",
        idsync_testkit::slapd::group_dn(s.base_dn(), 0),
        uid(5)
    ))
    .await
    .unwrap();
    let delta = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(delta.plan.mode, idsync_core::ReadMode::Delta, "{}", delta.plan);
    let c = delta.plan.counts;
    assert_eq!(
        (c.create, c.update, c.disable, c.remove_member),
        (1, 2, 1, 2),
        "{}",
        delta.plan
    );
    assert!(delta.cursor_saved);
    let names: Vec<String> = target
        .accounts()
        .into_iter()
        .filter(|a| a.kind == ObjectKind::User && a.enabled)
        .filter_map(|a| a.fields.get("name").cloned())
        .collect();
    assert!(
        names.iter().any(|n| n == "Changed 1") && names.iter().any(|n| n == "Changed 2"),
        "{names:?}"
    );
    // The margin reads the same changes again: nothing new to do.
    let again = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(again.plan.mode, idsync_core::ReadMode::Delta);
    assert!(again.plan.is_empty(), "{}", again.plan);
}

/// A slapd with `users` fixture users in the OUs `east` (even) and `west`
/// (odd), and one group holding them all.
async fn east_and_west(users: usize) -> Option<Slapd> {
    use idsync_testkit::slapd::{DEFAULT_SUFFIX, groups_ldif, ous_ldif, users_ldif};
    let (base, ous) = (DEFAULT_SUFFIX, ["east", "west"]);
    let mut ldif = ous_ldif(base, &ous);
    ldif.push_str(&users_ldif(base, users, &ous));
    ldif.push_str(&groups_ldif(base, 1, users, &ous));
    slapd(SlapdOptions {
        ldif,
        ..SlapdOptions::default()
    })
    .await
}

/// A group read alone (`read_one`, as a delta reads the groups that named
/// a moved or renamed member, and a syncrepl delta's changed groups)
/// resolves its member DNs in batches: one search per 200 members, then one
/// per member those did not find, instead of one per member (issue 15). It
/// still names exactly the members a full read lists: under the scope's
/// containers, matching its filter, still there, whatever the case and
/// spacing of the DN in the group.
#[tokio::test(flavor = "multi_thread")]
async fn a_big_group_read_alone_costs_a_few_searches_and_names_exactly_its_members_in_scope() {
    use idsync_testkit::proxy::TcpProxy;
    use idsync_testkit::slapd::{DEFAULT_SUFFIX, group_dn, user_dn, user_uid};
    let (base, ous) = (DEFAULT_SUFFIX, ["east", "west"]);
    let Some(s) = east_and_west(1000).await else {
        return;
    };
    // Users 0 and 2 (east) leave; without refint their DNs stay in the group.
    for i in [0, 2] {
        s.ldapdelete(&user_dn(base, i, &ous)).await.unwrap();
    }
    // User 10's DN is written in another case and spacing.
    s.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\ndelete: member\nmember: {}\n-\nadd: member\nmember: UID={}, OU=East,{base}\n",
        group_dn(base, 0),
        user_dn(base, 10, &ous),
        user_uid(10)
    ))
    .await
    .unwrap();
    let uuid_of = |e: &idsync_testkit::ldif_cli::Entry| e.first_str("entryUUID").unwrap();
    let group = s
        .search(&group_dn(base, 0), "(objectClass=*)", &["entryUUID"])
        .await
        .unwrap();
    let users = s
        .search(base, "(objectClass=inetOrgPerson)", &["uid", "entryUUID"])
        .await
        .unwrap();
    // In scope: east users (even i) but 4, 6 and 8, which the filter leaves out.
    let filtered = [4, 6, 8];
    let expected: std::collections::BTreeSet<String> = users
        .iter()
        .filter(|e| {
            let i: usize = e.first_str("uid").unwrap()[1..].parse().unwrap();
            i.is_multiple_of(2) && !filtered.contains(&i)
        })
        .map(uuid_of)
        .collect();
    assert_eq!(expected.len(), 495);

    let proxy = TcpProxy::start(s.port()).await.unwrap();
    let mut c = config(&s);
    c.url = format!("ldap://127.0.0.1:{}", proxy.port());
    let scope = Scope {
        containers: vec![format!("ou=east,{base}"), s.groups_dn()],
        filter: Some(format!(
            "(!(|{}))",
            filtered.map(|i| format!("(uid={})", user_uid(i))).concat()
        )),
        ..Scope::default()
    };
    let id = idsync_core::ExternalId(uuid_of(&group[0]));
    let object = LdapSource::new(c).read_one(&scope, &id).await.unwrap().unwrap();
    let members: std::collections::BTreeSet<String> = object.members.iter().map(|m| m.0.clone()).collect();
    assert_eq!(object.members.len(), 495, "each member once");
    assert_eq!(members, expected);
    // The group, then its 500 east DNs in 3 batches, then alone the 5 that
    // those did not find (2 gone, 3 filtered out); the west DNs cost nothing.
    assert_eq!(proxy.stats().ldap.search, 1 + 3 + 5, "{:?}", proxy.stats().ldap);
}

/// The DNs in a group's `member` (without the placeholder of a group
/// idsync created), lower case.
async fn member_dns(s: &Slapd, group_dn: &str) -> std::collections::BTreeSet<String> {
    let entry = s.search(group_dn, "(objectClass=*)", &["member"]).await.unwrap();
    entry[0]
        .strs("member")
        .into_iter()
        .filter(|m| !m.is_empty())
        .map(|m| m.to_lowercase())
        .collect()
}

/// The target through a proxy that counts its LDAP requests.
async fn counted_target(s: &Slapd, per_modify: usize) -> (LdapTarget, idsync_testkit::proxy::TcpProxy) {
    let proxy = idsync_testkit::proxy::TcpProxy::start(s.port()).await.unwrap();
    let mut config = target_config(s);
    config.url = format!("ldap://127.0.0.1:{}", proxy.port());
    config.members_per_modify = per_modify;
    (LdapTarget::new(config), proxy)
}

/// Issue 15: a group's membership changes go out as modifies of many
/// `member` values. An engine run creates 1,000 users and a group holding
/// them all with one modify of 1,000 values; 500 leave in one modify more;
/// with `members_per_modify = 300`, 1,000 adds take four modifies.
/// Counted at the wire; the group holds exactly the members wanted.
#[tokio::test(flavor = "multi_thread")]
async fn a_group_of_1000_members_is_filled_and_half_emptied_with_one_modify_each() {
    let Some(s) = slapd(SlapdOptions::default()).await else {
        return;
    };
    let (target, proxy) = counted_target(&s, 1000).await;
    let user = |i: usize| {
        SourceObject::new(format!("e{i}"), ObjectKind::User)
            .with("givenName", "Member")
            .with("sn", format!("N{i:04}"))
            .with("mail", format!("m{i}@acme.test"))
    };
    let mut group = SourceObject::new("g1", ObjectKind::Group).with("cn", "all");
    for i in 0..1000 {
        group = group.with_member(format!("e{i}"));
    }
    let source = MemorySource::with_objects((0..1000).map(user).chain([group]));
    let engine = Engine::new(
        target_profile(),
        Arc::new(source.clone()),
        Arc::new(target),
        Arc::new(MemoryStateStore::new()),
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.failures().count(), 0, "{}", report.to_json());
    let c = report.plan.counts;
    assert_eq!((c.create, c.add_member), (1001, 1000), "{}", report.plan);
    let sent = proxy.stats().ldap;
    assert_eq!((sent.add, sent.modify), (1001, 1), "{sent:?}");
    let group_dn = format!("cn=all,{}", s.people_dn());
    let dn = |i: usize| format!("cn=member n{i:04},{}", s.people_dn());
    let all: std::collections::BTreeSet<String> = (0..1000).map(dn).collect();
    assert_eq!(member_dns(&s, &group_dn).await, all);

    // The odd half leaves the group: one modify deleting 500 values.
    source.modify("g1", |g| {
        g.members.retain(|m| m.0[1..].parse::<usize>().unwrap() % 2 == 0)
    });
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.failures().count(), 0, "{}", report.to_json());
    assert_eq!(report.plan.counts.remove_member, 500, "{}", report.plan);
    assert_eq!(proxy.stats().ldap.modify - sent.modify, 1, "{:?}", proxy.stats().ldap);
    let even: std::collections::BTreeSet<String> = (0..1000).step_by(2).map(dn).collect();
    assert_eq!(member_dns(&s, &group_dn).await, even);

    // Another group, filled through a target that sends 300 values a modify.
    let (target, proxy) = counted_target(&s, 300).await;
    let link = idsync_core::Link {
        profile: target_profile().id,
        external: idsync_core::ExternalId("g2".into()),
    };
    let created = target
        .apply(&TargetOp::Create {
            kind: ObjectKind::Group,
            link,
            fields: group_fields("batched", 2),
        })
        .await
        .unwrap();
    let group = created.target.unwrap();
    let users = s.search(&s.people_dn(), "(sn=N*)", &["entryUUID"]).await.unwrap();
    let ops: Vec<TargetOp> = users
        .iter()
        .map(|e| TargetOp::AddMember {
            group: group.clone(),
            member: TargetId(e.first_str("entryUUID").unwrap()),
        })
        .collect();
    let before = proxy.stats().ldap;
    let results = target.apply_batch(&ops).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let sent = proxy.stats().ldap;
    // 1,000 ids and the group's found by 6 searches of up to 200 ids.
    assert_eq!(
        (sent.modify - before.modify, sent.search - before.search),
        (4, 6),
        "{sent:?}"
    );
    assert_eq!(
        member_dns(&s, &format!("cn=batched group2,{}", s.people_dn())).await,
        all
    );
}

/// Issue 15: in one batch of a group's membership changes, members that
/// are already there count as added and members that are not there count
/// as removed, a member the directory refuses fails alone with an error
/// naming it (here a group, where a constraint admits only people), and an
/// account that does not exist fails alone, named by its id. Everything
/// else is applied.
#[tokio::test(flavor = "multi_thread")]
async fn already_members_count_as_done_and_a_refused_member_fails_alone_named() {
    use idsync_testkit::slapd::{DEFAULT_SUFFIX, user_dn, users_ldif};
    let base = DEFAULT_SUFFIX;
    let mut ldif = users_ldif(base, 20, &[]);
    let team = format!("cn=team,ou=groups,{base}");
    ldif.push_str(&format!(
        "dn: {team}\nobjectClass: groupOfNames\ncn: team\n{}\n",
        (0..5)
            .map(|i| format!("member: {}\n", user_dn(base, i, &[])))
            .collect::<String>()
    ));
    ldif.push_str(&format!(
        "dn: cn=other,ou=groups,{base}\nobjectClass: groupOfNames\ncn: other\nmember: {}\n\n",
        user_dn(base, 0, &[])
    ));
    let constraint = format!(
        "overlay constraint\nconstraint_attribute member uri ldap:///ou=people,{base}?entryDN?sub?(objectClass=inetOrgPerson)"
    );
    let Some(s) = slapd(SlapdOptions {
        ldif,
        overlays: vec![("constraint".into(), constraint)],
        ..SlapdOptions::default()
    })
    .await
    else {
        return;
    };
    let id_of = |dn: String| {
        let s = &s;
        async move {
            let e = s.search(&dn, "(objectClass=*)", &["entryUUID"]).await.unwrap();
            TargetId(e[0].first_str("entryUUID").unwrap())
        }
    };
    let group = id_of(team.clone()).await;
    let other = id_of(format!("cn=other,ou=groups,{base}")).await;
    let mut users = Vec::new();
    for i in 0..20 {
        users.push(id_of(user_dn(base, i, &[])).await);
    }
    let nobody = TargetId("0badc0de-0000-4000-8000-000000000000".into());
    let add = |member: &TargetId| TargetOp::AddMember {
        group: group.clone(),
        member: member.clone(),
    };
    let remove = |member: &TargetId| TargetOp::RemoveMember {
        group: group.clone(),
        member: member.clone(),
    };
    // Adds of users 0–9 (0–4 are members already), of the group `other`
    // and of an account that does not exist; then removes of users 3 (a
    // member) and 15 (not one).
    let mut ops: Vec<TargetOp> = users[..10].iter().map(add).collect();
    ops.push(add(&other));
    ops.push(add(&nobody));
    ops.push(remove(&users[3]));
    ops.push(remove(&users[15]));
    let (target, proxy) = counted_target(&s, 1000).await;
    let results = target.apply_batch(&ops).await;
    assert_eq!(results.len(), ops.len());
    let failed: Vec<(usize, String)> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e.to_string())))
        .collect();
    assert_eq!(
        failed.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [10, 11],
        "{failed:?}"
    );
    let refused = results[10].as_ref().unwrap_err();
    assert_eq!(refused.kind(), idsync_core::ErrorKind::InvalidData, "{refused}");
    assert!(
        refused
            .to_string()
            .contains(&format!("adding member cn=other,ou=groups,{base} of {team}")),
        "{refused}"
    );
    let missing = results[11].as_ref().unwrap_err();
    assert_eq!(missing.kind(), idsync_core::ErrorKind::NotFound, "{missing}");
    assert!(missing.to_string().contains(&nobody.0), "{missing}");
    for r in results.iter().filter_map(|r| r.as_ref().ok()) {
        assert_eq!(r.target.as_ref(), Some(&group));
    }
    let expected: std::collections::BTreeSet<String> =
        [0, 1, 2, 4, 5, 6, 7, 8, 9].map(|i| user_dn(base, i, &[])).into();
    assert_eq!(member_dns(&s, &team).await, expected);
    // The 11 adds went out as one modify, refused and sent again in halves
    // down to the values refused (0–4, other): 17 modifies; the 2 removes
    // as one, refused for user 15, then one each: 3.
    assert_eq!(proxy.stats().ldap.modify, 17 + 3, "{:?}", proxy.stats().ldap);
}

/// A delta names the group that changed and the members that left it; the
/// target finds the group by its link (`lookup`) and must say who is in it,
/// or the planner sees an empty group and removes nobody (issue 15 made
/// deltas look accounts up instead of listing them all).
#[tokio::test(flavor = "multi_thread")]
async fn a_delta_into_the_directory_removes_the_members_that_left_a_group() {
    let Some(s) = slapd(SlapdOptions::default()).await else {
        return;
    };
    let user = |i: u32| {
        SourceObject::new(format!("e{i}"), ObjectKind::User)
            .with("givenName", "Left")
            .with("sn", format!("N{i}"))
            .with("mail", format!("left{i}@acme.test"))
    };
    let group = SourceObject::new("g1", ObjectKind::Group)
        .with("cn", "leavers")
        .with_member("e0")
        .with_member("e1")
        .with_member("e2");
    let source = MemorySource::with_objects((0..3).map(user).chain([group]));
    let engine = Engine::new(
        target_profile(),
        Arc::new(source.clone()),
        Arc::new(LdapTarget::new(target_config(&s))),
        Arc::new(MemoryStateStore::new()),
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.counts.add_member, 3, "{}", report.plan);
    source.modify("g1", |g| g.members.retain(|m| m.0 == "e0"));
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.mode, idsync_core::ReadMode::Delta, "{}", report.plan);
    assert_eq!(report.plan.counts.remove_member, 2, "{}", report.plan);
    assert_eq!(report.failures().count(), 0, "{}", report.to_json());
    let group = s.search(&s.people_dn(), "(cn=leavers)", &["member"]).await.unwrap();
    let members: Vec<String> = group[0].strs("member").into_iter().filter(|m| !m.is_empty()).collect();
    assert_eq!(members, [format!("cn=Left N0,{}", s.people_dn())]);
    assert!(engine.run(&RunOptions::default()).await.unwrap().plan.is_empty());
}

/// A sync at login by name searches the directory (`find_users`): the
/// server's matching rules (case-insensitive uid and mail), only users,
/// only within the scope's containers and filter; a value is escaped, never
/// read as a filter; an attribute name that breaks the filter is a config
/// error.
#[tokio::test(flavor = "multi_thread")]
async fn users_are_found_by_login_name_within_the_scope_only() {
    use idsync_testkit::slapd::{DEFAULT_SUFFIX, user_uid};
    let base = DEFAULT_SUFFIX;
    let Some(s) = east_and_west(10).await else {
        return;
    };
    let source = LdapSource::new(config(&s));
    // East holds the even users; the filter leaves out user 4.
    let scope = Scope {
        containers: vec![format!("ou=east,{base}")],
        filter: Some(format!("(!(uid={}))", user_uid(4))),
        ..Scope::default()
    };
    let uids = |found: Vec<SourceObject>| -> Vec<String> {
        found
            .iter()
            .map(|o| o.first_text("uid").unwrap_or_default().to_owned())
            .collect()
    };
    let by_uid = source
        .find_users(&scope, "uid", &user_uid(2).to_uppercase())
        .await
        .unwrap();
    assert_eq!(uids(by_uid), [user_uid(2)]);
    let mail = format!("{}@ACME.test", user_uid(6));
    let found = source.find_users(&scope, "mail", &mail).await.unwrap();
    assert_eq!(uids(found), [user_uid(6)], "mail {mail}");
    // Out of the containers, left out by the filter, a group, a wildcard.
    for (attribute, value) in [
        ("uid", user_uid(3)),
        ("uid", user_uid(4)),
        ("cn", idsync_testkit::slapd::group_cn(0)),
        ("uid", "*".to_owned()),
    ] {
        let found = source.find_users(&scope, attribute, &value).await.unwrap();
        assert!(found.is_empty(), "{attribute}={value}: {:?}", uids(found));
    }
    let e = source.find_users(&scope, "uid)(x", "a").await.unwrap_err();
    assert_eq!(e.kind(), idsync_core::ErrorKind::Config, "{e}");
}
