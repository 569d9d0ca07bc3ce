//! The SCIM source against a real scim2-server: full read and deltas on
//! `meta.lastModified`.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

mod common;

use common::*;
use futures::TryStreamExt;
use idsync_core::{Completeness, Cursor, DeltaItem, ObjectKind, ProfileId, ReadItem, Scope, Source, Target, TargetOp};
use idsync_scim::ScimSource;
use idsync_testkit::fault::Fault;
use idsync_testkit::scim2::scim2_server;
use serde_json::json;

#[tokio::test]
async fn full_read_then_lastmodified_delta() {
    let Some(server) = scim2_server().await else { return };
    let t = target(&server).await;
    let raw = raw(&server);
    let profile = ProfileId::new_random();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            create(
                &t,
                ObjectKind::User,
                link(profile, &format!("s{i}")),
                fields(&[
                    ("userName", &format!("src{i}")),
                    ("emails[type eq \"work\"].value", &format!("src{i}@acme.test")),
                ]),
            )
            .await,
        );
    }
    t.apply(&TargetOp::SetEnabled {
        target: idsync_core::TargetId(ids[4].clone()),
        kind: ObjectKind::User,
        enabled: false,
    })
    .await
    .unwrap();
    let group = create(
        &t,
        ObjectKind::Group,
        link(profile, "sg"),
        fields(&[("displayName", "Readers")]),
    )
    .await;
    for m in &ids[..2] {
        t.apply(&TargetOp::AddMember {
            group: idsync_core::TargetId(group.clone()),
            member: idsync_core::TargetId(m.clone()),
        })
        .await
        .unwrap();
    }

    let mut c = config(&server.base_url(), server.token());
    c.page_size = 2;
    let source = ScimSource::connect(c).await.unwrap();
    assert!(source.capabilities().delta && source.capabilities().groups);
    let items: Vec<ReadItem> = source
        .read_full(&Scope::default())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let (objects, end): (Vec<_>, Vec<_>) = items.into_iter().partition(|i| matches!(i, ReadItem::Object(_)));
    assert_eq!(objects.len(), 6);
    let ReadItem::End { completeness, cursor } = &end[0] else {
        panic!()
    };
    assert_eq!(*completeness, Completeness::Complete);
    let cursor = cursor.clone().unwrap();
    let objects: Vec<_> = objects
        .into_iter()
        .map(|i| match i {
            ReadItem::Object(o) => o,
            _ => unreachable!(),
        })
        .collect();
    let src0 = objects
        .iter()
        .find(|o| o.first_text("userName") == Some("src0"))
        .unwrap();
    assert_eq!(src0.id.as_str(), ids[0]);
    assert_eq!(
        src0.first_text("emails[type eq \"work\"].value"),
        Some("src0@acme.test")
    );
    assert_eq!(src0.first_text("externalId"), Some(format!("{profile}:s0").as_str()));
    assert!(src0.enabled);
    assert!(!objects.iter().find(|o| o.id.as_str() == ids[4]).unwrap().enabled);
    let g = objects.iter().find(|o| o.kind == ObjectKind::Group).unwrap();
    let mut members: Vec<&str> = g.members.iter().map(|m| m.as_str()).collect();
    members.sort();
    let mut want = vec![ids[0].as_str(), ids[1].as_str()];
    want.sort();
    assert_eq!(members, want);

    // users only
    let users_only = Scope {
        kinds: vec![ObjectKind::User],
        ..Scope::default()
    };
    let n = source
        .read_full(&users_only)
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .len();
    assert_eq!(n, 6, "5 users and the End");

    // nothing changed: an empty delta that keeps the cursor
    let delta: Vec<DeltaItem> = source
        .read_delta(&Scope::default(), &cursor)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(delta, vec![DeltaItem::End { cursor: cursor.clone() }]);

    // change one user and the group (lastModified has sub-second precision)
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    raw.patch(
        &format!("Users/{}", ids[3]),
        json!([{"op": "replace", "path": "title", "value": "Changed"}]),
    )
    .await;
    raw.patch(
        &format!("Groups/{group}"),
        json!([{"op": "add", "path": "members", "value": [{"value": ids[2]}]}]),
    )
    .await;
    let delta: Vec<DeltaItem> = source
        .read_delta(&Scope::default(), &cursor)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(delta.len(), 3, "{delta:?}");
    let changed: Vec<&str> = delta
        .iter()
        .filter_map(|d| match d {
            DeltaItem::Changed(o) => Some(o.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(changed, vec![ids[3].as_str(), group.as_str()]);
    let DeltaItem::End { cursor: next } = &delta[2] else {
        panic!()
    };
    assert!(next.0 > cursor.0);
    let again: Vec<DeltaItem> = source
        .read_delta(&Scope::default(), next)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(again, vec![DeltaItem::End { cursor: next.clone() }]);

    // a cursor from elsewhere asks for a full read
    let bad: Vec<DeltaItem> = source
        .read_delta(&Scope::default(), &Cursor("cookie:abc".into()))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(matches!(bad[0], DeltaItem::ResyncRequired { .. }));

    // read one
    let one = source
        .read_one(&Scope::default(), &ids[1].as_str().into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.first_text("userName"), Some("src1"));
    let g1 = source
        .read_one(&Scope::default(), &group.as_str().into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g1.kind, ObjectKind::Group);
    // find by login name: the server's `eq` ignores case; a group is no user
    let found = source.find_users(&Scope::default(), "userName", "SRC1").await.unwrap();
    assert_eq!(
        found.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        [ids[1].as_str()]
    );
    let found = source
        .find_users(&Scope::default(), "displayName", "nobody by that name")
        .await
        .unwrap();
    assert!(found.is_empty(), "{found:?}");
    assert!(
        source
            .read_one(&Scope::default(), &"nope".into())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_failing_listing_makes_the_read_partial() {
    let Some(server) = scim2_server().await else { return };
    let t = target(&server).await;
    create(
        &t,
        ObjectKind::User,
        link(ProfileId::new_random(), "p1"),
        fields(&[("userName", "partial1")]),
    )
    .await;
    let proxy = server.fault_proxy().await.unwrap();
    let mut c = config(&proxy.base_url(), server.token());
    c.http.retry.max_retries = 1;
    let source = ScimSource::connect(c).await.unwrap();
    proxy.faults().fail_next(2, Fault::Status(503));
    let items: Vec<ReadItem> = source
        .read_full(&Scope::default())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    match items.last().unwrap() {
        ReadItem::End {
            completeness: Completeness::Partial { reason },
            ..
        } => assert!(reason.contains("HTTP 503"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_server_refusing_the_lastmodified_filter_asks_for_full_reads() {
    let Some(server) = scim2_server().await else { return };
    let proxy = server.fault_proxy().await.unwrap();
    let source = ScimSource::connect(config(&proxy.base_url(), server.token()))
        .await
        .unwrap();
    proxy
        .faults()
        .fail_next_of(idsync_http::Method::GET, 1, Fault::Status(400));
    let delta: Vec<DeltaItem> = source
        .read_delta(&Scope::default(), &Cursor("2026-01-01T00:00:00Z".into()))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(
        matches!(&delta[..], [DeltaItem::ResyncRequired { reason }] if reason.contains("HTTP 400")),
        "{delta:?}"
    );
    // a 503 that outlasts the retries is an error: the cursor must not move
    let mut c = config(&proxy.base_url(), server.token());
    c.http.retry.max_retries = 0;
    let source = ScimSource::connect(c).await.unwrap();
    proxy
        .faults()
        .fail_next_of(idsync_http::Method::GET, 1, Fault::Status(503));
    let err = source
        .read_delta(&Scope::default(), &Cursor("2026-01-01T00:00:00Z".into()))
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), idsync_core::ErrorKind::Unavailable);
}
