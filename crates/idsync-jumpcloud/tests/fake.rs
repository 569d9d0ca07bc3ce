//! The adapter against the fake JumpCloud: paging, state, faults, an engine run.
#![expect(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    reason = "test code: a failure fails the test"
)]

mod common;

use std::sync::Arc;

use futures::TryStreamExt;
use idsync_core::memory::MemorySource;
use idsync_core::target::{Target, TargetOp};
use idsync_core::{
    AttrValue, Completeness, Engine, ErrorKind, Fields, Link, MemoryStateStore, ObjectKind, Profile, ProfileId,
    ReadItem, RunOptions, Scope, Source, SourceObject,
};
use idsync_jumpcloud::{JumpCloudSource, JumpCloudTarget};
use idsync_testkit::fault::Fault;
use serde_json::json;

async fn read(s: &JumpCloudSource) -> (Vec<SourceObject>, Completeness) {
    let items: Vec<ReadItem> = s
        .read_full(&Scope::default())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut objects = Vec::new();
    let mut end = None;
    for i in items {
        match i {
            ReadItem::Object(o) => objects.push(o),
            ReadItem::End { completeness, .. } => end = Some(completeness),
            other => panic!("an item this test does not know: {other:?}"),
        }
    }
    (objects, end.expect("an End item"))
}

#[tokio::test]
async fn a_full_read_pages_until_the_short_page() {
    let jc = common::fake().await;
    for n in 0..23 {
        jc.insert_user(json!({"username": format!("u{n:02}"), "email": format!("u{n:02}@example.org")}));
    }
    let mut config = common::config(&jc);
    config.page_size = 10;
    let s = JumpCloudSource::new(config).unwrap();
    let (objects, end) = read(&s).await;
    assert_eq!(end, Completeness::Complete);
    let mut names: Vec<&str> = objects.iter().filter_map(|o| o.first_text("username")).collect();
    names.sort();
    assert_eq!(names.len(), 23);
    assert_eq!(names.first(), Some(&"u00"));
    assert_eq!(names.last(), Some(&"u22"));
    assert_eq!(jc.requests_to("/api/systemusers"), 3, "pages of 10, 10 and 3");
}

#[tokio::test]
async fn suspended_users_read_as_disabled_with_their_fields() {
    let jc = common::fake().await;
    let id = jc.insert_user(json!({
        "username": "bo", "email": "bo@example.org", "suspended": true, "state": "SUSPENDED",
        "employeeIdentifier": "E-7", "department": "Finance", "jobTitle": "Clerk",
        "phoneNumbers": [{"type": "work", "number": "+1 555 0100"}],
        "addresses": [{"type": "work", "locality": "Boston"}],
        "attributes": [{"name": "badge", "value": "B12"}]
    }));
    jc.insert_user(json!({"username": "al", "email": "al@example.org"}));
    let s = JumpCloudSource::new(common::config(&jc)).unwrap();
    let (objects, _) = read(&s).await;
    let bo = objects.iter().find(|o| o.id.as_str() == id).unwrap();
    assert!(!bo.enabled);
    assert_eq!(bo.first_text("employeeIdentifier"), Some("E-7"));
    assert_eq!(bo.first_text("department"), Some("Finance"));
    assert_eq!(bo.first_text("jobTitle"), Some("Clerk"));
    assert_eq!(bo.first_text("phoneNumbers.work"), Some("+1 555 0100"));
    assert_eq!(bo.first_text("addresses.work.locality"), Some("Boston"));
    assert_eq!(bo.first_text("attr.badge"), Some("B12"));
    assert!(
        objects
            .iter()
            .find(|o| o.first_text("username") == Some("al"))
            .unwrap()
            .enabled
    );
    let one = s
        .read_one(&Scope::default(), &id.as_str().into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&one, bo);
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_without_duplicates() {
    let jc = common::fake().await;
    let t = JumpCloudTarget::new(common::config(&jc)).unwrap();
    let link = Link {
        profile: ProfileId::new_random(),
        external: "ext-1".into(),
    };
    let fields: Fields = [("username", "ann"), ("email", "ann@example.org")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    jc.faults().fail_next(2, Fault::RateLimited { retry_after: Some(1) });
    let started = std::time::Instant::now();
    let applied = t
        .apply(&TargetOp::Create {
            kind: ObjectKind::User,
            link: link.clone(),
            fields,
        })
        .await
        .unwrap();
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "Retry-After was honoured"
    );
    assert_eq!(jc.faults().faulted(), 2);
    assert_eq!(jc.requests_to("/api/systemusers"), 3);
    assert_eq!(jc.users().len(), 1, "no duplicate user");
    let id = applied.target.unwrap();

    jc.faults().fail_next(3, Fault::Status(503));
    t.apply(&TargetOp::SetEnabled {
        target: id.clone(),
        kind: ObjectKind::User,
        enabled: false,
    })
    .await
    .unwrap();
    assert_eq!(jc.faults().faulted(), 5);
    assert_eq!(jc.user(&id.0).unwrap()["suspended"], true);

    jc.faults().fail_next(10, Fault::Status(500));
    let err = t
        .apply(&TargetOp::SetEnabled {
            target: id.clone(),
            kind: ObjectKind::User,
            enabled: true,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.status(), idsync_core::Status::Exhausted, "retried, then given up");
    assert!(!err.stops_run());
    assert!(err.to_string().contains(&format!("system user {}", id.0)), "{err}");
    assert!(err.to_string().contains("500"), "{err}");
    assert!(!err.to_string().contains(jc.api_key()), "{err}");
}

#[tokio::test]
async fn a_wrong_key_stops_the_run() {
    let jc = common::fake().await;
    let mut config = common::config(&jc);
    config.api_key = "wrong".to_owned().into();
    let s = JumpCloudSource::new(config).unwrap();
    let err = read_result(&s).await.expect_err("401");
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.stops_run());
}

fn profile() -> Profile {
    serde_json::from_value(json!({
        "id": "66666666-6666-4666-8666-666666666666",
        "name": "memory-to-jumpcloud",
        "mapping": {
            "users": [
                {"field": "username", "attribute": "uid"},
                {"field": "email", "attribute": "mail"},
                {"field": "firstname", "attribute": "givenName"},
                {"field": "lastname", "attribute": "sn"},
                {"field": "department", "attribute": "department"}
            ],
            "groups": [{"field": "name", "attribute": "cn"}]
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn an_engine_run_from_memory_into_the_fake() {
    let jc = common::fake().await;
    let user = |n: u32, given: &str| {
        SourceObject::new(format!("guid-{n}"), ObjectKind::User)
            .with("uid", format!("user{n}"))
            .with("givenName", given)
            .with("sn", format!("Tester{n}"))
            .with("mail", format!("user{n}@example.org"))
            .with("department", "Sales")
    };
    let source = MemorySource::with_objects([
        user(1, "Ann"),
        user(2, "Bob"),
        user(3, "Cy"),
        SourceObject::new("guid-g", ObjectKind::Group)
            .with("cn", "sales")
            .with_member("guid-1")
            .with_member("guid-2"),
    ]);
    let target = Arc::new(JumpCloudTarget::new(common::config(&jc)).unwrap());
    let profile = profile();
    let engine = Engine::new(
        profile.clone(),
        Arc::new(source.clone()),
        target.clone(),
        Arc::new(MemoryStateStore::new()),
    );
    let full = RunOptions {
        full: true,
        ..RunOptions::default()
    };

    let first = engine.run(&full).await.unwrap();
    assert!(first.failures().next().is_none(), "{}", first.to_json());
    let by_name = |n: &str| jc.users().into_iter().find(|u| u["username"] == n).unwrap();
    assert_eq!(jc.users().len(), 3);
    let ann = by_name("user1");
    assert_eq!(ann["firstname"], "Ann");
    assert_eq!(ann["department"], "Sales");
    assert_eq!(
        ann["attributes"],
        json!([{"name": "idsyncLink", "value": format!("{}/guid-1", profile.id)}])
    );
    let groups = jc.groups();
    assert_eq!(groups.len(), 1);
    let gid = groups[0]["id"]
        .as_str()
        .or(groups[0]["_id"].as_str())
        .unwrap()
        .to_owned();
    let id = |u: &serde_json::Value| u["_id"].as_str().unwrap().to_owned();
    let mut members = jc.group_members(&gid);
    members.sort();
    let mut want = vec![id(&ann), id(&by_name("user2"))];
    want.sort();
    assert_eq!(members, want);

    let second = engine.run(&full).await.unwrap();
    assert!(second.plan.is_empty(), "{}", second.plan);

    // modify, suspend, group remove and add
    source.modify("guid-1", |o| {
        o.attributes
            .insert("department".into(), vec![AttrValue::Text("Support".into())]);
    });
    source.modify("guid-2", |o| o.enabled = false);
    source.modify("guid-g", |o| {
        o.members.retain(|m| m.as_str() != "guid-2");
        o.members.push("guid-3".into());
    });
    let third = engine.run(&full).await.unwrap();
    assert!(third.failures().next().is_none(), "{}", third.to_json());
    assert_eq!(by_name("user1")["department"], "Support");
    assert_eq!(by_name("user2")["suspended"], true);
    let mut members = jc.group_members(&gid);
    members.sort();
    let mut want = vec![id(&ann), id(&by_name("user3"))];
    want.sort();
    assert_eq!(members, want);
    assert!(engine.run(&full).await.unwrap().plan.is_empty());

    // unsuspend
    source.modify("guid-2", |o| o.enabled = true);
    let fourth = engine.run(&full).await.unwrap();
    assert!(fourth.failures().next().is_none(), "{}", fourth.to_json());
    assert_eq!(by_name("user2")["suspended"], false);
    assert_eq!(by_name("user2")["state"], "ACTIVATED");
    let fifth = engine.run(&full).await.unwrap();
    assert!(fifth.plan.is_empty(), "{}", fifth.plan);
    assert_eq!(jc.users().len(), 3, "nothing created twice");
    let linked: Vec<_> = target.linked(profile.id).await.unwrap().try_collect().await.unwrap();
    assert_eq!(linked.len(), 4);
}

/// Runs a full read to its end, or to the first error.
async fn read_result(s: &JumpCloudSource) -> idsync_core::Result<Vec<ReadItem>> {
    s.read_full(&Scope::default()).await?.try_collect().await
}

#[tokio::test]
async fn an_unreachable_jumpcloud_fails_the_read_instead_of_reading_nothing() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = idsync_jumpcloud::JumpCloudConfig::new(
        format!("http://127.0.0.1:{port}/").parse().unwrap(),
        "k".repeat(40).into(),
    );
    config.retry.base_ms = 1;
    let s = JumpCloudSource::new(config).unwrap();
    let err = s
        .read_full(&Scope::default())
        .await
        .err()
        .expect("an error, not a stream");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("read_full"), "{err}");
}

#[tokio::test]
async fn a_multi_tenant_key_needs_the_right_x_org_id() {
    let jc = common::fake().await;
    jc.insert_user(json!({"username": "ann", "email": "ann@example.org"}));
    jc.require_org_id(Some(idsync_testkit::jumpcloud::ORG_ID));
    let mut config = common::config(&jc);
    let without = read_result(&JumpCloudSource::new(config.clone()).unwrap()).await;
    let err = without.expect_err("401 without x-org-id");
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(err.stops_run());
    config.org_id = Some("0123456789abcdef01234567".into());
    let other = read_result(&JumpCloudSource::new(config.clone()).unwrap()).await;
    assert!(
        other
            .expect_err("404 for another organization")
            .to_string()
            .contains("404")
    );
    config.org_id = Some(idsync_testkit::jumpcloud::ORG_ID.into());
    let items = read_result(&JumpCloudSource::new(config).unwrap()).await.unwrap();
    assert!(
        items
            .iter()
            .any(|i| matches!(i, ReadItem::Object(o) if o.first_text("username") == Some("ann")))
    );
    assert!(matches!(
        items.last(),
        Some(ReadItem::End {
            completeness: Completeness::Complete,
            ..
        })
    ));
}
