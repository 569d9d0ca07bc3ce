//! The LDAP adapter (AD flavour) against a real Samba AD DC: ids, aliases,
//! disabled accounts, a group of more than 1500 members, the target.

use std::sync::Arc;

use futures::StreamExt;
use idsync_core::memory::{MemorySource, MemoryTarget};
use idsync_core::{
    DeltaItem, Engine, Fields, MemoryStateStore, ObjectKind, Profile, ReadItem, RunOptions, Scope, Source, SourceObject,
};
use idsync_ldap::{AdDelta, Flavor, LdapConfig, LdapSource, LdapTarget};
use idsync_testkit::behaviour::target;
use idsync_testkit::samba::{SambaDc, samba_dc};

fn config(dc: &SambaDc) -> LdapConfig {
    LdapConfig::new(dc.url(), dc.admin_upn(), dc.admin_password(), dc.base_dn(), Flavor::Ad)
}

async fn read(source: &LdapSource, scope: &Scope) -> (Vec<SourceObject>, idsync_core::Completeness) {
    let mut stream = source.read_full(scope).await.unwrap();
    let (mut objects, mut end) = (Vec::new(), None);
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            ReadItem::Object(o) => objects.push(o),
            ReadItem::End { completeness, .. } => end = Some(completeness),
        }
    }
    (objects, end.unwrap())
}

/// Enables an account without a password (PASSWD_NOTREQD | NORMAL_ACCOUNT).
async fn enable(dc: &SambaDc, dn: &str) {
    dc.ldapmodify(&format!(
        "dn: {dn}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 544\n"
    ))
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn users_read_with_guid_ids_sid_aliases_and_their_enabled_state() {
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("src").await.unwrap();
    let users = dc.add_users(&ou, 3).await.unwrap();
    enable(dc, &users[0]).await;
    enable(dc, &users[1]).await;
    let group = dc
        .add_group(&ou, &format!("g{}", idsync_testkit::samba::random_tag()), &users[..2])
        .await
        .unwrap();
    let scope = Scope {
        containers: vec![ou.clone()],
        ..Scope::default()
    };
    let (objects, end) = read(&LdapSource::new(config(dc)), &scope).await;
    assert!(end.is_complete(), "{end:?}");
    let people: Vec<_> = objects.iter().filter(|o| o.kind == ObjectKind::User).collect();
    assert_eq!(people.len(), 3);
    for p in &people {
        assert_eq!(p.id.0.len(), 36, "objectGUID as a UUID: {}", p.id);
        assert!(
            p.aliases.iter().any(|a| a.0.starts_with("S-1-5-21-")),
            "objectSid as an alias: {:?}",
            p.aliases
        );
        assert_eq!(p.container, ou);
    }
    let disabled: Vec<_> = people.iter().filter(|p| !p.enabled).collect();
    assert_eq!(
        disabled.len(),
        1,
        "the account left at userAccountControl 546 reads as disabled"
    );
    let g = objects.iter().find(|o| o.kind == ObjectKind::Group).unwrap();
    assert_eq!(g.first_text("dn"), Some(group.as_str()));
    assert_eq!(g.members.len(), 2);
    // read_one by GUID
    let one = LdapSource::new(config(dc))
        .read_one(&Scope::default(), &people[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.id, people[0].id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_of_more_than_1500_members_is_read_whole() {
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("big").await.unwrap();
    let users = dc.add_users(&ou, 1600).await.unwrap();
    dc.add_group(&ou, &format!("big{}", idsync_testkit::samba::random_tag()), &users)
        .await
        .unwrap();
    let scope = Scope {
        containers: vec![ou.clone()],
        ..Scope::default()
    };
    let (objects, end) = read(&LdapSource::new(config(dc)), &scope).await;
    assert!(end.is_complete());
    let g = objects.iter().find(|o| o.kind == ObjectKind::Group).unwrap();
    assert_eq!(g.members.len(), 1600, "member;range= was followed to its end");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_that_cannot_be_read_makes_the_read_partial() {
    let Some(dc) = samba_dc().await else { return };
    let scope = Scope {
        containers: vec![format!(
            "OU=does-not-exist-{},{}",
            idsync_testkit::samba::random_tag(),
            dc.base_dn()
        )],
        ..Scope::default()
    };
    let (_, end) = read(&LdapSource::new(config(dc)), &scope).await;
    assert!(
        matches!(&end, idsync_core::Completeness::Partial { reason } if reason.contains("cannot be read")),
        "{end:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rehire_with_a_new_guid_and_the_same_employee_id_keeps_the_account() {
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("rehire").await.unwrap();
    let users = dc.add_users(&ou, 2).await.unwrap();
    for u in &users {
        enable(dc, u).await;
    }
    let profile: Profile = serde_json::from_value(serde_json::json!({
        "id": "b2b2b2b2-0000-4000-8000-000000000001", "name": "ad to app",
        "scope": {"containers": [ou], "kinds": ["user"]},
        "mapping": {"users": [{"field": "login", "attribute": "sAMAccountName"}, {"field": "employee", "attribute": "employeeID"}]},
        "rules": {"correlation": {"attribute": "employeeID", "field": "employee"}, "duplicates": "relink"}
    }))
    .unwrap();
    let app = MemoryTarget::new();
    let engine = Engine::new(
        profile.clone(),
        Arc::new(LdapSource::new(config(dc))),
        Arc::new(app.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(app.accounts().len(), 2);
    let before = app
        .accounts()
        .into_iter()
        .find(|a| a.fields["employee"] == "200000")
        .unwrap();
    // The first user leaves (deleted) and comes back as a new account with the same employeeID.
    dc.ldapdelete(&users[0]).await.unwrap();
    let tag = idsync_testkit::samba::random_tag();
    let sam = format!("re{tag}");
    dc.ldapadd(&format!(
        "dn: CN={sam},{ou}\nobjectClass: user\nsAMAccountName: {sam}\nemployeeID: 200000\nuserAccountControl: 544\n"
    ))
    .await
    .unwrap();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.counts.link, 1, "{}", report.plan);
    assert_eq!(report.plan.counts.create, 0);
    let after = app.account(&before.id).unwrap();
    assert_eq!(
        after.fields["login"], sam,
        "the old account follows the rehire and keeps its history"
    );
    assert!(after.enabled);
}

fn user_fields(prefix: &str, n: u32) -> Fields {
    let sam = format!("{prefix}u{n}");
    [
        ("cn", sam.clone()),
        ("sAMAccountName", sam.clone()),
        ("sn", format!("User{n}")),
        ("mail", format!("{sam}@example.test")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn group_fields(prefix: &str, n: u32) -> Fields {
    let sam = format!("{prefix}g{n}");
    [("cn".to_owned(), sam.clone()), ("sAMAccountName".to_owned(), sam)]
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_target_passes_the_behaviour_suite_and_syncs_from_memory() {
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("tgt").await.unwrap();
    let mut c = config(dc);
    c.default_container = Some(ou.clone());
    let prefix = idsync_testkit::samba::random_tag()[..6].to_owned();
    let fx = target::Fixture {
        prefix: prefix.clone(),
        user_fields,
        group_fields,
        correlation_field: "mail".into(),
        updatable_field: "sn".into(),
        profile: serde_json::from_value(serde_json::json!({
            "id": "b2b2b2b2-0000-4000-8000-000000000002", "name": "memory to ad",
            "mapping": {"users": [{"field": "cn", "attribute": "uid"}, {"field": "sAMAccountName", "attribute": "uid"},
                                  {"field": "sn", "attribute": "sn"}, {"field": "mail", "attribute": "mail"}],
                        "groups": [{"field": "cn", "template": "{cn}"}]}
        }))
        .unwrap(),
    };
    let expect = target::Expect { creates_disabled: true };
    let report = target::run_with(Arc::new(LdapTarget::new(c.clone())), &fx, expect).await;
    report.assert_ok();
    // The engine check above created users without passwords: AD keeps them
    // disabled and the report says so.
    let source = MemorySource::with_objects([SourceObject::new(format!("{prefix}-x1"), ObjectKind::User)
        .with("uid", format!("{prefix}x1"))
        .with("sn", "X")
        .with("mail", "x1@example.test")]);
    let mut profile = fx.profile.clone();
    profile.id = idsync_core::ProfileId::new_random(); // the DC is shared across runs
    let engine = Engine::new(
        profile,
        Arc::new(source),
        Arc::new(LdapTarget::new(c)),
        Arc::new(MemoryStateStore::new()),
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    let note = report.outcomes.iter().find_map(|o| o.note.clone()).unwrap_or_default();
    assert!(note.contains("never sets passwords"), "{}", report.to_json());
    let entry = dc
        .search(&ou, &format!("(sAMAccountName={prefix}x1)"), &["userAccountControl"])
        .await
        .unwrap();
    assert_eq!(entry[0].first_str("userAccountControl").as_deref(), Some("546"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rename_and_a_move_reach_the_directory() {
    let Some(dc) = samba_dc().await else { return };
    let (ou, other) = (dc.unique_ou("mv").await.unwrap(), dc.unique_ou("mv2").await.unwrap());
    let mut c = config(dc);
    c.default_container = Some(ou.clone());
    let t = LdapTarget::new(c);
    let tag = idsync_testkit::samba::random_tag();
    let link = idsync_core::Link {
        profile: idsync_core::ProfileId::new_random(),
        external: format!("mv-{tag}").into(),
    };
    let fields: Fields = [("cn", format!("a{tag}")), ("sAMAccountName", format!("a{tag}"))]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    use idsync_core::{FieldChange, Target, TargetOp};
    let id = t
        .apply(&TargetOp::Create {
            kind: ObjectKind::User,
            link,
            fields,
        })
        .await
        .unwrap()
        .target
        .unwrap();
    let changes = vec![
        FieldChange {
            field: "cn".into(),
            old: Some(format!("a{tag}")),
            new: Some(format!("b{tag}")),
        },
        FieldChange {
            field: "container".into(),
            old: Some(ou.clone()),
            new: Some(other.clone()),
        },
        FieldChange {
            field: "description".into(),
            old: None,
            new: Some("moved".into()),
        },
    ];
    t.apply(&TargetOp::Update {
        target: id,
        kind: ObjectKind::User,
        changes,
    })
    .await
    .unwrap();
    let found = dc
        .search(&other, &format!("(sAMAccountName=a{tag})"), &["cn", "description"])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].first_str("cn").as_deref(), Some(format!("b{tag}").as_str()));
    assert_eq!(found[0].first_str("description").as_deref(), Some("moved"));
}

/// Collects a delta read: changed objects by id, deleted ids, and how it ended.
async fn delta(
    source: &LdapSource,
    scope: &Scope,
    from: &idsync_core::Cursor,
) -> (std::collections::HashMap<String, SourceObject>, Vec<String>, DeltaItem) {
    let mut stream = source.read_delta(scope, from).await.unwrap();
    let (mut changed, mut deleted) = (std::collections::HashMap::new(), Vec::new());
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            DeltaItem::Changed(o) => {
                changed.insert(o.id.0.clone(), o);
            }
            DeltaItem::Deleted(id) => deleted.push(id.0),
            // The present set (uSNChanged) is checked in its own test.
            DeltaItem::Present(_) => {}
            end => return (changed, deleted, end),
        }
    }
    panic!("the delta ended without End or ResyncRequired");
}

async fn full_read_cursor(source: &LdapSource, scope: &Scope) -> (Vec<SourceObject>, idsync_core::Cursor) {
    let mut stream = source.read_full(scope).await.unwrap();
    let mut objects = Vec::new();
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            ReadItem::Object(o) => objects.push(o),
            ReadItem::End { completeness, cursor } => {
                assert!(completeness.is_complete(), "{completeness:?}");
                return (objects, cursor.expect("an AD full read leaves a delta cursor"));
            }
        }
    }
    panic!("no End");
}

/// Adds, modifies, moves, renames, deletes and membership changes, seen by
/// a delta read in the given mode.
async fn deltas_see_every_kind_of_change(dc: &SambaDc, mode: AdDelta) {
    let ou = dc.unique_ou("delta").await.unwrap();
    let moved_ou = format!("OU=moved,{ou}");
    dc.ldapadd(&format!("dn: {moved_ou}\nobjectClass: organizationalUnit\n"))
        .await
        .unwrap();
    let users = dc.add_users(&ou, 5).await.unwrap();
    let tag = idsync_testkit::samba::random_tag();
    let group = dc.add_group(&ou, &format!("dg{tag}"), &users[..2]).await.unwrap();
    let source = LdapSource::new(LdapConfig {
        ad_delta: mode,
        ..config(dc)
    });
    let scope = Scope {
        containers: vec![ou.clone()],
        ..Scope::default()
    };
    let (objects, cursor) = full_read_cursor(&source, &scope).await;
    let prefix = if mode == AdDelta::Usn { "ad:usn:" } else { "ad:dirsync:" };
    assert!(cursor.0.starts_with(prefix), "{}", cursor.0);
    let id_of = |dn: &str| {
        objects
            .iter()
            .find(|o| o.first_text("dn").is_some_and(|d| d.eq_ignore_ascii_case(dn)))
            .map(|o| o.id.0.clone())
            .unwrap()
    };
    let ids: Vec<String> = users.iter().map(|u| id_of(u)).collect();
    let group_id = id_of(&group);

    let added = dc.add_users(&ou, 1).await.unwrap().remove(0);
    dc.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nreplace: givenName\ngivenName: Zoë\n",
        users[1]
    ))
    .await
    .unwrap();
    let rdn = |dn: &str| dn.split(',').next().unwrap().to_owned();
    dc.ldapmodify(&format!(
        "dn: {}\nchangetype: moddn\nnewrdn: {}\ndeleteoldrdn: 1\nnewsuperior: {moved_ou}\n",
        users[2],
        rdn(&users[2])
    ))
    .await
    .unwrap();
    dc.ldapmodify(&format!(
        "dn: {}\nchangetype: moddn\nnewrdn: CN=renamed{tag}\ndeleteoldrdn: 1\n",
        users[3]
    ))
    .await
    .unwrap();
    dc.ldapdelete(&users[4]).await.unwrap();
    dc.ldapmodify(&format!(
        "dn: {group}\nchangetype: modify\nadd: member\nmember: CN=renamed{tag},{ou}\n-\ndelete: member\nmember: {}\n",
        users[0]
    ))
    .await
    .unwrap();

    let (changed, deleted, end) = delta(&source, &scope, &cursor).await;
    let DeltaItem::End { cursor: next } = end else {
        panic!("{mode:?}: {end:?}")
    };
    assert!(next.0.starts_with(prefix), "{}", next.0);
    let new = changed
        .values()
        .find(|o| o.first_text("dn").is_some_and(|d| d.eq_ignore_ascii_case(&added)))
        .unwrap_or_else(|| panic!("{mode:?}: the added user is seen"));
    assert_eq!(new.container.to_lowercase(), ou.to_lowercase());
    assert_eq!(changed[&ids[1]].first_text("givenName"), Some("Zoë"), "{mode:?}");
    assert_eq!(
        changed[&ids[2]].container.to_lowercase(),
        moved_ou.to_lowercase(),
        "{mode:?}: the move"
    );
    assert_eq!(
        changed[&ids[3]].first_text("dn").map(str::to_lowercase),
        Some(format!("cn=renamed{tag},{ou}").to_lowercase()),
        "{mode:?}: the rename"
    );
    assert!(deleted.contains(&ids[4]), "{mode:?}: the delete {deleted:?}");
    let mut members: Vec<String> = changed[&group_id].members.iter().map(|m| m.0.clone()).collect();
    members.sort();
    let mut expected = vec![ids[1].clone(), ids[3].clone()];
    expected.sort();
    assert_eq!(
        members, expected,
        "{mode:?}: the group's members after an add and a remove"
    );
    for live in &ids[..4] {
        assert!(!deleted.contains(live), "{mode:?}: {live} is not deleted");
    }

    // Nothing more in this OU since: the next delta from the new cursor is empty here.
    let (changed, deleted, end) = delta(&source, &scope, &next).await;
    assert!(matches!(end, DeltaItem::End { .. }), "{end:?}");
    let ours: Vec<_> = changed
        .values()
        .filter(|o| idsync_core::dn::within(&o.container, &ou))
        .collect();
    assert!(ours.is_empty(), "{mode:?}: {ours:?}");
    assert!(!ids.iter().any(|id| deleted.contains(id)), "{mode:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dirsync_deltas_see_adds_modifies_moves_renames_deletes_and_membership() {
    let Some(dc) = samba_dc().await else { return };
    deltas_see_every_kind_of_change(dc, AdDelta::DirSync).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn usn_deltas_with_show_deleted_see_the_same_changes() {
    let Some(dc) = samba_dc().await else { return };
    deltas_see_every_kind_of_change(dc, AdDelta::Usn).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_from_another_dc_an_expired_one_or_a_foreign_one_asks_for_a_full_read() {
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("resync").await.unwrap();
    dc.add_users(&ou, 1).await.unwrap();
    let source = LdapSource::new(config(dc));
    let scope = Scope {
        containers: vec![ou.clone()],
        ..Scope::default()
    };
    let (_, cursor) = full_read_cursor(&source, &scope).await;
    // ad:<mode>:<invocationId>:<taken>:<position>
    let parts: Vec<&str> = cursor.0.splitn(5, ':').collect();
    let other_dc = format!(
        "ad:{}:00000000-0000-0000-0000-000000000001:{}:{}",
        parts[1], parts[3], parts[4]
    );
    let expired = format!("ad:{}:{}:0:{}", parts[1], parts[2], parts[4]);
    for (from, why) in [
        (other_dc.as_str(), "another domain controller"),
        (expired.as_str(), "tombstone lifetime"),
        ("syncrepl:AAAA", "not an Active Directory cursor"),
    ] {
        let (_, _, end) = delta(&source, &scope, &idsync_core::Cursor(from.into())).await;
        assert!(
            matches!(&end, DeltaItem::ResyncRequired { reason } if reason.contains(why)),
            "{from}: {end:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_runs_ad_deltas_updates_and_deprovisions() {
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("engdelta").await.unwrap();
    let users = dc.add_users(&ou, 3).await.unwrap();
    for u in &users {
        enable(dc, u).await;
    }
    let profile: Profile = serde_json::from_value(serde_json::json!({
        "id": idsync_core::ProfileId::new_random(), "name": "ad deltas",
        "scope": {"containers": [ou], "kinds": ["user"]},
        "mapping": {"users": [{"field": "login", "attribute": "sAMAccountName"}, {"field": "given", "attribute": "givenName"}]}
    }))
    .unwrap();
    let app = MemoryTarget::new();
    let engine = Engine::new(
        profile,
        Arc::new(LdapSource::new(config(dc))),
        Arc::new(app.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    let first = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(first.plan.mode, idsync_core::ReadMode::Full);
    assert_eq!(first.plan.counts.create, 3, "{}", first.plan);
    assert!(first.cursor_saved);
    dc.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nreplace: givenName\ngivenName: Ærin\n",
        users[0]
    ))
    .await
    .unwrap();
    dc.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 546\n",
        users[1]
    ))
    .await
    .unwrap();
    dc.ldapdelete(&users[2]).await.unwrap();
    let second = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(second.plan.mode, idsync_core::ReadMode::Delta, "{}", second.plan);
    let c = second.plan.counts;
    assert_eq!((c.create, c.update, c.disable), (0, 1, 2), "{}", second.plan);
    let accounts = app.accounts();
    assert_eq!(accounts.iter().filter(|a| a.enabled).count(), 1);
    assert!(
        accounts
            .iter()
            .any(|a| a.fields.get("given").map(String::as_str) == Some("Ærin"))
    );
    let third = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(third.plan.mode, idsync_core::ReadMode::Delta);
    assert!(third.plan.is_empty(), "{}", third.plan);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_without_dirsync_rights_falls_back_to_usn_and_still_sees_deletions() {
    let Some(dc) = samba_dc().await else { return };
    let tag = idsync_testkit::samba::random_tag();
    let password = "L0w!Priv-Passw0rd";
    let Some(upn) = dc.add_user_with_password(&format!("low{tag}"), password).await.unwrap() else {
        return; // a DC this module did not start: no local database to add the account with
    };
    let ou = dc.unique_ou("lowpriv").await.unwrap();
    let users = dc.add_users(&ou, 3).await.unwrap();
    let source = LdapSource::new(LdapConfig::new(dc.url(), &upn, password, dc.base_dn(), Flavor::Ad));
    let scope = Scope {
        containers: vec![ou.clone()],
        kinds: vec![ObjectKind::User],
        ..Scope::default()
    };
    let (objects, cursor) = full_read_cursor(&source, &scope).await;
    assert_eq!(objects.len(), 3);
    assert!(
        cursor.0.starts_with("ad:usn:"),
        "DirSync is refused to this account: {}",
        cursor.0
    );
    dc.ldapdelete(&users[0]).await.unwrap();
    let gone = objects
        .iter()
        .find(|o| o.first_text("dn").is_some_and(|d| d.eq_ignore_ascii_case(&users[0])))
        .map(|o| o.id.clone())
        .unwrap();
    let mut stream = source.read_delta(&scope, &cursor).await.unwrap();
    let (mut present, mut end) = (Vec::new(), None);
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            DeltaItem::Present(id) => present.push(id),
            DeltaItem::Deleted(id) => assert_ne!(id, gone, "this account cannot read tombstones"),
            DeltaItem::Changed(_) => {}
            other => end = Some(other),
        }
    }
    assert!(matches!(end, Some(DeltaItem::End { .. })), "{end:?}");
    assert!(
        !present.contains(&gone),
        "the deleted user is missing from the present set"
    );
    for o in objects.iter().filter(|o| o.id != gone) {
        assert!(present.contains(&o.id), "{} is present", o.id);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn assigned_groups_are_pushed_down_with_in_chain_and_nested_members_come_along() {
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("chain").await.unwrap();
    let users = dc.add_users(&ou, 4).await.unwrap();
    let tag = idsync_testkit::samba::random_tag();
    let inner = dc.add_group(&ou, &format!("in{tag}"), &users[1..2]).await.unwrap();
    let deepest = dc.add_group(&ou, &format!("dp{tag}"), &users[2..3]).await.unwrap();
    dc.ldapmodify(&format!(
        "dn: {inner}\nchangetype: modify\nadd: member\nmember: {deepest}\n"
    ))
    .await
    .unwrap();
    let outer = format!("out{tag}");
    dc.add_group(&ou, &outer, &[users[0].clone(), inner.clone()])
        .await
        .unwrap();
    dc.add_group(&ou, &format!("other{tag}"), &users[3..]).await.unwrap();
    let scope = Scope {
        containers: vec![ou.clone()],
        groups: vec![outer.clone()],
        ..Scope::default()
    };
    let (objects, end) = read(&LdapSource::new(config(dc)), &scope).await;
    assert!(end.is_complete(), "{end:?}");
    let mut dns: Vec<String> = objects
        .iter()
        .filter_map(|o| o.first_text("dn").map(str::to_lowercase))
        .collect();
    dns.sort();
    let mut expected: Vec<String> = [
        &users[0],
        &users[1],
        &users[2],
        &inner,
        &deepest,
        &format!("CN={outer},{ou}"),
    ]
    .iter()
    .map(|d| d.to_lowercase())
    .collect();
    expected.sort();
    assert_eq!(
        dns, expected,
        "the outer group, its nested groups and their members at any depth, nothing else"
    );
    // A group named by objectGUID works the same.
    let outer_id = objects
        .iter()
        .find(|o| o.first_text("cn") == Some(outer.as_str()))
        .map(|o| o.id.0.clone())
        .unwrap();
    let by_id = Scope {
        groups: vec![outer_id],
        ..scope
    };
    let (again, _) = read(&LdapSource::new(config(dc)), &by_id).await;
    assert_eq!(again.len(), 6);
}
