//! The LDAP adapter (AD flavour) against a real Samba AD DC: ids, aliases,
//! disabled accounts, a group of more than 1500 members, the target.

use std::sync::Arc;

use futures::StreamExt;
use idsync_core::memory::{MemorySource, MemoryTarget};
use idsync_core::{
    Engine, Fields, MemoryStateStore, ObjectKind, Profile, ReadItem, RunOptions, Scope, Source, SourceObject,
};
use idsync_ldap::{Flavor, LdapConfig, LdapSource, LdapTarget};
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
        .read_one(&people[0].id)
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
