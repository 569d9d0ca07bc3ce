//! Batches into the SCIM target (`Target::apply_batch`) against a real
//! scim2-server, requests counted through the testkit's proxy: a group's
//! members in few PATCHes, writes in few Bulk requests, and one bad member
//! or row failing alone.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use idsync_core::memory::MemorySource;
use idsync_core::{
    Engine, ErrorKind, FieldChange, MemoryStateStore, ObjectKind, Profile, ProfileId, RunOptions, SourceObject, Target,
    TargetId, TargetOp,
};
use idsync_scim::{ScimDialect, ScimTarget};
use idsync_testkit::scim2::{FaultProxy, Scim2Server, scim2_server};
use serde_json::{Value, json};

fn count(proxy: &FaultProxy, method: &str, path: &str) -> usize {
    proxy
        .seen()
        .iter()
        .filter(|s| s.method.as_str() == method && s.path.starts_with(path))
        .count()
}

/// The member ids of a group on the server, sorted.
async fn members_of(server: &Scim2Server, group: &str) -> Vec<String> {
    let g = raw(server).get(&format!("Groups/{group}")).await;
    let mut ids: Vec<String> = g["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["value"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// Every resource of `endpoint`, page by page.
async fn all(server: &Scim2Server, endpoint: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let page = raw(server)
            .get(&format!("{endpoint}?sortBy=id&startIndex={}&count=1000", out.len() + 1))
            .await;
        let items = page["Resources"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            return out;
        }
        out.extend(items);
    }
}

fn profile() -> Profile {
    serde_json::from_value(json!({
        "id": ProfileId::new_random(),
        "name": "scim batches",
        "mapping": {
            "users": [{"field": "userName", "attribute": "uid"}],
            "groups": [{"field": "displayName", "attribute": "cn"}]
        }
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_of_1000_members_is_synced_in_few_patches() {
    let Some(server) = scim2_server().await else { return };
    let proxy = server.fault_proxy().await.unwrap();
    let target = ScimTarget::connect(config(&proxy.base_url(), server.token()))
        .await
        .unwrap();
    let chunk = ScimDialect::default().member_chunk;
    assert_eq!(target.capabilities().batch, chunk);
    let n = 1000;
    let group = (0..n).fold(
        SourceObject::new("g-all", ObjectKind::Group).with("cn", "everyone"),
        |g, i| g.with_member(format!("u{i}")),
    );
    let source = MemorySource::with_objects(
        (0..n)
            .map(|i| SourceObject::new(format!("u{i}"), ObjectKind::User).with("uid", format!("batch.user{i:04}")))
            .chain([group]),
    );
    let engine = Engine::new(
        profile(),
        Arc::new(source.clone()),
        Arc::new(target),
        Arc::new(MemoryStateStore::new()),
    );
    proxy.clear_seen();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert!(report.failures().next().is_none(), "{}", report.to_json());

    let users = all(&server, "Users").await;
    assert_eq!(users.len(), n);
    let mut user_ids: Vec<String> = users.iter().map(|u| u["id"].as_str().unwrap().to_owned()).collect();
    user_ids.sort();
    let groups = all(&server, "Groups").await;
    assert_eq!(groups.len(), 1);
    let group_id = groups[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(members_of(&server, &group_id).await, user_ids);
    let patches = count(&proxy, "PATCH", "/v2/Groups/");
    assert!(patches <= n.div_ceil(chunk) + 1, "{patches} PATCHes for {n} members");
    // 1,000 users in Bulk requests of 100, the group in one more request
    let posts = count(&proxy, "POST", "/v2/");
    assert!(posts <= n / 100 + 1, "{posts} POSTs");
    assert_eq!(count(&proxy, "POST", "/v2/Users"), 0);

    // 100 leave the group: one PATCH of two filtered removes
    let number = |m: &idsync_core::ExternalId| m.as_str()[1..].parse::<usize>().unwrap();
    source.modify("g-all", |g| g.members.retain(|m| number(m) >= 100));
    proxy.clear_seen();
    let report = engine
        .run(&RunOptions {
            full: true,
            ..RunOptions::default()
        })
        .await
        .unwrap();
    assert!(report.failures().next().is_none(), "{}", report.to_json());
    assert_eq!(report.plan.operations.len(), 100, "{}", report.plan);
    let stayed: BTreeSet<String> = users
        .iter()
        .filter(|u| u["userName"].as_str().unwrap() >= "batch.user0100")
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    let now: BTreeSet<String> = members_of(&server, &group_id).await.into_iter().collect();
    assert_eq!(now, stayed);
    assert_eq!(count(&proxy, "PATCH", "/v2/Groups/"), 1, "{:?}", proxy.seen());
}

#[tokio::test]
async fn one_bad_member_fails_alone_and_is_named() {
    let Some(server) = scim2_server().await else { return };
    let proxy = server.fault_proxy().await.unwrap();
    let mut c = config(&proxy.base_url(), server.token());
    c.dialect.member_chunk = 10;
    let t = ScimTarget::connect(c).await.unwrap();
    let profile = ProfileId::new_random();
    let group = create(
        &t,
        ObjectKind::Group,
        link(profile, "g"),
        fields(&[("displayName", "G")]),
    )
    .await;
    // scim2-server takes any member id; this one stands for a server that
    // refuses an unknown member
    proxy.refuse_bodies_containing("m-bad", 400, "invalidValue");
    let members: Vec<String> = (0..30)
        .map(|i| {
            if i == 17 {
                "m-bad".to_owned()
            } else {
                format!("m{i:02}")
            }
        })
        .collect();
    let ops: Vec<TargetOp> = members
        .iter()
        .map(|m| TargetOp::AddMember {
            group: TargetId(group.clone()),
            member: TargetId(m.clone()),
        })
        .collect();
    proxy.clear_seen();
    let results = t.apply_batch(&ops).await;
    for (i, r) in results.iter().enumerate() {
        match r {
            Err(e) if i == 17 => {
                assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
                assert!(e.to_string().contains("add member m-bad"), "{e}");
                assert_eq!(e.object().unwrap().0, group);
            }
            Ok(_) if i != 17 => {}
            other => panic!("change {i}: {other:?}"),
        }
    }
    let mut want: Vec<String> = members.iter().filter(|m| *m != "m-bad").cloned().collect();
    want.sort();
    assert_eq!(members_of(&server, &group).await, want);
    // chunks of 10; the one holding m-bad split in halves: 10 → 5 + 5, 5 → 2 + 3, 3 → 1 + 2, 2 → 1 + 1
    let patches = count(&proxy, "PATCH", "/v2/Groups/");
    assert!(patches <= 3 + 8, "{patches} PATCHes");

    // removals: the bad one fails alone, a non-member counts as removed
    let ops: Vec<TargetOp> = ["m00", "m01", "m-bad", "nobody", "m02"]
        .iter()
        .map(|m| TargetOp::RemoveMember {
            group: TargetId(group.clone()),
            member: TargetId((*m).to_owned()),
        })
        .collect();
    let results = t.apply_batch(&ops).await;
    let failed: Vec<usize> = (0..5).filter(|i| results[*i].is_err()).collect();
    assert_eq!(failed, [2], "{results:?}");
    let e = results[2].as_ref().unwrap_err();
    assert!(e.to_string().contains("remove member m-bad"), "{e}");
    assert_eq!(members_of(&server, &group).await, want[3..].to_vec());
}

#[tokio::test]
async fn the_put_dialect_changes_a_groups_members_in_one_put() {
    let Some(server) = scim2_server().await else { return };
    let proxy = server.fault_proxy().await.unwrap();
    let mut c = config(&proxy.base_url(), server.token());
    c.dialect = ScimDialect::put_only();
    let t = ScimTarget::connect(c).await.unwrap();
    let profile = ProfileId::new_random();
    let group = create(
        &t,
        ObjectKind::Group,
        link(profile, "g"),
        fields(&[("displayName", "G")]),
    )
    .await;
    let mut ops: Vec<TargetOp> = (0..20)
        .map(|i| TargetOp::AddMember {
            group: TargetId(group.clone()),
            member: TargetId(format!("m{i:02}")),
        })
        .collect();
    ops.push(TargetOp::RemoveMember {
        group: TargetId(group.clone()),
        member: TargetId("m03".into()),
    });
    proxy.clear_seen();
    for r in t.apply_batch(&ops).await {
        r.unwrap();
    }
    let want: Vec<String> = (0..20).filter(|i| *i != 3).map(|i| format!("m{i:02}")).collect();
    assert_eq!(members_of(&server, &group).await, want);
    let methods: Vec<String> = proxy.seen().iter().map(|s| s.method.to_string()).collect();
    assert_eq!(methods, ["GET", "PUT"]);
}

fn change(field: &str, old: Option<&str>, new: Option<&str>) -> FieldChange {
    FieldChange {
        field: field.into(),
        old: old.map(str::to_owned),
        new: new.map(str::to_owned),
    }
}

#[tokio::test]
async fn bulk_carries_updates_and_disables_each_with_its_own_result() {
    let Some(server) = scim2_server().await else { return };
    let proxy = server.fault_proxy().await.unwrap();
    let t = ScimTarget::connect(config(&proxy.base_url(), server.token()))
        .await
        .unwrap();
    assert!(t.uses_bulk());
    let profile = ProfileId::new_random();
    let creates: Vec<TargetOp> = (0..20)
        .map(|i| TargetOp::Create {
            kind: ObjectKind::User,
            link: link(profile, &format!("u{i}")),
            fields: fields(&[("userName", &format!("bulk.user{i:02}")), ("title", "A")]),
        })
        .collect();
    let ids: Vec<String> = t
        .apply_batch(&creates)
        .await
        .into_iter()
        .map(|r| r.unwrap().target.unwrap().0)
        .collect();
    // someone else changes user 5 after we saw it: its ETag is stale
    raw(&server)
        .patch(
            &format!("Users/{}", ids[5]),
            json!([{"op": "replace", "path": "nickName", "value": "theirs"}]),
        )
        .await;
    let mut ops = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let target = TargetId(id.clone());
        ops.push(match i {
            // a userName another account has: refused alone
            7 => TargetOp::Update {
                target,
                kind: ObjectKind::User,
                changes: vec![change("userName", Some("bulk.user07"), Some("bulk.user08"))],
            },
            _ if i % 2 == 0 => TargetOp::SetEnabled {
                target,
                kind: ObjectKind::User,
                enabled: false,
            },
            _ => TargetOp::Update {
                target,
                kind: ObjectKind::User,
                changes: vec![change("title", Some("A"), Some("B"))],
            },
        });
    }
    // user 5 (odd: an update) is the stale one
    proxy.clear_seen();
    let results = t.apply_batch(&ops).await;
    assert_eq!(count(&proxy, "POST", "/v2/Bulk"), 1, "{:?}", proxy.seen());
    assert_eq!(proxy.seen().len(), 1, "{:?}", proxy.seen());
    for (i, r) in results.iter().enumerate() {
        match (i, r) {
            (5, Err(e)) => assert_eq!(e.kind(), ErrorKind::Conflict, "{e}"),
            (7, Err(e)) => {
                assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
                assert_eq!(e.object().unwrap().0, ids[7]);
                assert!(e.to_string().contains("update user"), "{e}");
            }
            (_, Ok(_)) if i != 5 && i != 7 => {}
            other => panic!("{other:?}"),
        }
    }
    for (i, id) in ids.iter().enumerate() {
        let u = raw(&server).get(&format!("Users/{id}")).await;
        let want_title = if i % 2 == 1 && i != 5 && i != 7 { "B" } else { "A" };
        assert_eq!(u["title"], want_title, "user {i}");
        assert_eq!(u["active"], i % 2 == 1, "user {i}");
        assert_eq!(u["userName"], format!("bulk.user{i:02}"));
    }
    // the conflict forgot the stale ETag: the next try applies
    let retry = t.apply_batch(&ops[5..6]).await;
    assert!(retry[0].is_ok(), "{retry:?}");
    let u = raw(&server).get(&format!("Users/{}", ids[5])).await;
    assert_eq!(
        (u["title"].as_str(), u["nickName"].as_str()),
        (Some("B"), Some("theirs"))
    );
}

#[tokio::test]
async fn bulk_requests_stay_under_the_servers_max_payload_size() {
    let Some(server) = scim2_server().await else { return };
    let proxy = server.fault_proxy().await.unwrap();
    let t = ScimTarget::connect(config(&proxy.base_url(), server.token()))
        .await
        .unwrap();
    let max = t.service_provider().bulk_max_payload;
    assert_eq!(max, 1 << 20);
    let profile = ProfileId::new_random();
    // 100 creates of about 25 KB: 2.5 MB in all
    let title = "t".repeat(25_000);
    let ops: Vec<TargetOp> = (0..100)
        .map(|i| TargetOp::Create {
            kind: ObjectKind::User,
            link: link(profile, &format!("big{i}")),
            fields: fields(&[("userName", &format!("big.user{i:03}")), ("title", &title)]),
        })
        .collect();
    proxy.clear_seen();
    for r in t.apply_batch(&ops).await {
        r.unwrap();
    }
    let statuses: Vec<u16> = proxy.seen().iter().map(|s| s.status).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!((3..=4).contains(&statuses.len()), "{statuses:?}");
    let users = all(&server, "Users").await;
    assert_eq!(users.len(), 100);
    assert!(users.iter().all(|u| u["title"].as_str() == Some(title.as_str())));
}
