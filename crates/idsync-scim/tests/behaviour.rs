//! The shared behaviour suites on the SCIM target and source, and an engine
//! run from an in-memory directory into a real scim2-server.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

mod common;

use std::sync::Arc;

use common::*;
use futures::TryStreamExt;
use idsync_core::memory::MemorySource;
use idsync_core::{
    Engine, Fields, MemoryStateStore, ObjectKind, Profile, ProfileId, RunOptions, Scope, SourceObject, Target,
    TargetAccount,
};
use idsync_scim::{ScimSource, ScimTarget};
use idsync_testkit::behaviour::{source, target};
use idsync_testkit::scim2::scim2_server;
use serde_json::json;

const WORK: &str = "emails[type eq \"work\"].value";

fn user_fields(prefix: &str, n: u32) -> Fields {
    [
        ("userName".to_owned(), format!("{prefix}-user{n}")),
        ("displayName".to_owned(), format!("User {n}")),
        (WORK.to_owned(), format!("{prefix}-user{n}@example.test")),
        ("name.givenName".to_owned(), format!("Given{n}")),
    ]
    .into_iter()
    .collect()
}

fn group_fields(prefix: &str, n: u32) -> Fields {
    [("displayName".to_owned(), format!("{prefix}-group{n}"))]
        .into_iter()
        .collect()
}

fn profile() -> Profile {
    serde_json::from_value(json!({
        "id": "55555555-5555-4555-8555-555555555555",
        "name": "scim behaviour",
        "mapping": {
            "users": [
                {"field": "userName", "attribute": "uid"},
                {"field": "displayName", "template": "{givenName} {sn}"},
                {"field": "name.givenName", "attribute": "givenName"},
                {"field": "name.familyName", "attribute": "sn"},
                {"field": WORK, "attribute": "mail", "transforms": ["lowercase"]},
                {"field": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "attribute": "department"}
            ],
            "groups": [{"field": "displayName", "attribute": "cn"}]
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn scim_target_behaves() {
    let Some(server) = scim2_server().await else { return };
    let t = target(&server).await;
    let fx = target::Fixture {
        prefix: format!("s{}", std::process::id()),
        user_fields,
        group_fields,
        correlation_field: WORK.into(),
        updatable_field: "displayName".into(),
        profile: profile(),
    };
    let report = target::run(Arc::new(t), &fx).await;
    report.assert_ok();
    assert!(report.skipped.is_empty(), "{report}");
}

#[tokio::test]
async fn scim_target_without_bulk_or_patch_behaves() {
    let Some(server) = scim2_server().await else { return };
    let mut c = config(&server.base_url(), server.token());
    c.bulk = idsync_scim::BulkMode::Off;
    c.dialect = idsync_scim::ScimDialect::put_only();
    let t = ScimTarget::connect(c).await.unwrap();
    let fx = target::Fixture {
        prefix: format!("p{}", std::process::id()),
        user_fields,
        group_fields,
        correlation_field: "userName".into(),
        updatable_field: WORK.into(),
        profile: profile(),
    };
    target::run(Arc::new(t), &fx).await.assert_ok();
}

#[tokio::test]
async fn scim_source_behaves() {
    let Some(server) = scim2_server().await else { return };
    let t = target(&server).await;
    let p = ProfileId::new_random();
    let ann = create(&t, ObjectKind::User, link(p, "ann"), fields(&[("userName", "ann")])).await;
    let bob = create(&t, ObjectKind::User, link(p, "bob"), fields(&[("userName", "bob")])).await;
    let staff = create(
        &t,
        ObjectKind::Group,
        link(p, "staff"),
        fields(&[("displayName", "staff")]),
    )
    .await;
    t.apply(&idsync_core::TargetOp::SetEnabled {
        target: idsync_core::TargetId(bob),
        kind: ObjectKind::User,
        enabled: false,
    })
    .await
    .unwrap();
    t.apply(&idsync_core::TargetOp::AddMember {
        group: idsync_core::TargetId(staff),
        member: idsync_core::TargetId(ann),
    })
    .await
    .unwrap();
    // another profile's account, outside the scope's filter
    create(
        &t,
        ObjectKind::User,
        link(ProfileId::new_random(), "zed"),
        fields(&[("userName", "zed")]),
    )
    .await;
    let source = ScimSource::connect(config(&server.base_url(), server.token()))
        .await
        .unwrap();
    let n = |s: &str| format!("{p}:{s}");
    let fx = source::Fixture {
        scope: Scope {
            filter: Some(format!("externalId sw \"{p}:\"")),
            ..Scope::default()
        },
        name_attribute: "externalId".into(),
        users: vec![n("ann"), n("bob")],
        groups: vec![(n("staff"), vec![n("ann")])],
        disabled: vec![n("bob")],
    };
    source::run(&source, &fx).await.assert_ok();
}

#[tokio::test]
async fn an_engine_run_from_memory_into_scim2_server() {
    let Some(server) = scim2_server().await else { return };
    let raw = raw(&server);
    let user = |n: u32, given: &str, dept: &str| {
        SourceObject::new(format!("guid-{n}"), ObjectKind::User)
            .with("uid", format!("user{n}"))
            .with("givenName", given)
            .with("sn", format!("Tester{n}"))
            .with("mail", format!("User{n}@Acme.Test"))
            .with("department", dept)
    };
    let source = MemorySource::with_objects([
        user(1, "Ann", "Sales"),
        user(2, "Bob", "Sales"),
        user(3, "Zoë", "IT").enabled(false),
        SourceObject::new("guid-g", ObjectKind::Group)
            .with("cn", "sales")
            .with_member("guid-1")
            .with_member("guid-2"),
    ]);
    let target: Arc<ScimTarget> = Arc::new(target(&server).await);
    let mut profile = profile();
    profile.id = ProfileId::new_random();
    let engine = Engine::new(
        profile.clone(),
        Arc::new(source.clone()),
        target.clone(),
        Arc::new(MemoryStateStore::new()),
    );
    let first = engine.run(&RunOptions::default()).await.unwrap();
    assert!(first.failures().next().is_none(), "{}", first.to_json());

    let users = raw.get("Users?sortBy=userName").await;
    let users = users["Resources"].as_array().unwrap().clone();
    // the planner creates no account for a user disabled in the directory
    assert_eq!(users.len(), 2);
    let by_name = |n: &str| users.iter().find(|u| u["userName"] == n).unwrap().clone();
    let ann = by_name("user1");
    assert_eq!(ann["externalId"], format!("{}:guid-1", profile.id));
    assert_eq!(ann["displayName"], "Ann Tester1");
    assert_eq!(ann["name"], json!({"givenName": "Ann", "familyName": "Tester1"}));
    assert_eq!(ann["emails"], json!([{"type": "work", "value": "user1@acme.test"}]));
    assert_eq!(
        ann["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "Sales"
    );
    assert_eq!(ann["active"], true);
    assert!(users.iter().all(|u| u["userName"] != "user3"));
    let groups = raw.get("Groups").await;
    let group = &groups["Resources"][0];
    assert_eq!(group["displayName"], "sales");
    let mut members: Vec<&str> = group["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["value"].as_str())
        .collect();
    members.sort();
    let bob = by_name("user2");
    let mut want = vec![ann["id"].as_str().unwrap(), bob["id"].as_str().unwrap()];
    want.sort();
    assert_eq!(members, want);

    // converged: a second full run plans nothing
    let second = engine
        .run(&RunOptions {
            full: true,
            ..RunOptions::default()
        })
        .await
        .unwrap();
    assert!(second.plan.is_empty(), "{}", second.plan);

    // a change, a mover out of the group, and a leaver
    source.modify("guid-1", |o| {
        o.attributes.insert(
            "department".into(),
            vec![idsync_core::AttrValue::Text("Support".into())],
        );
    });
    source.modify("guid-g", |o| o.members.retain(|m| m.as_str() != "guid-2"));
    source.delete("guid-2");
    let third = engine
        .run(&RunOptions {
            full: true,
            ..RunOptions::default()
        })
        .await
        .unwrap();
    assert!(third.failures().next().is_none(), "{}", third.to_json());
    let ann_now = raw.get(&format!("Users/{}", ann["id"].as_str().unwrap())).await;
    assert_eq!(
        ann_now["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "Support"
    );
    let bob_now = raw
        .get(&format!("Users/{}", by_name("user2")["id"].as_str().unwrap()))
        .await;
    assert_eq!(bob_now["active"], false, "the leaver is disabled, not deleted");
    let group_now = raw.get(&format!("Groups/{}", group["id"].as_str().unwrap())).await;
    assert_eq!(group_now["members"], json!([{"value": ann["id"]}]));
    let linked: Vec<TargetAccount> = target.linked(profile.id).await.unwrap().try_collect().await.unwrap();
    assert_eq!(linked.len(), 3);
}
