//! The SCIM target against a real scim2-server (skipped when it is not
//! installed, unless IDSYNC_REQUIRE_SERVERS=1).
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

mod common;

use common::*;
use futures::TryStreamExt;
use idsync_core::{ErrorKind, FieldChange, Lookup, ObjectKind, ProfileId, Target, TargetAccount, TargetId, TargetOp};
use idsync_scim::{BulkMode, ScimDialect, ScimTarget};
use idsync_testkit::scim2::scim2_server;
use serde_json::json;

const DEPT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";
const WORK: &str = "emails[type eq \"work\"].value";

fn change(field: &str, old: Option<&str>, new: Option<&str>) -> FieldChange {
    FieldChange {
        field: field.into(),
        old: old.map(str::to_owned),
        new: new.map(str::to_owned),
    }
}

#[tokio::test]
async fn user_lifecycle_create_update_disable_enable_delete() {
    let Some(server) = scim2_server().await else { return };
    let t = target(&server).await;
    assert!(t.service_provider().discovered && t.service_provider().etag && t.service_provider().bulk);
    let types = &t.service_provider().attribute_types;
    let path = |p: &str| idsync_scim::map::AttrPath::parse(p).unwrap();
    assert_eq!(types.type_of(&path("userName")), Some("string"));
    assert_eq!(
        types.type_of(&path("emails[type eq \"work\"].primary")),
        Some("boolean")
    );
    assert_eq!(types.type_of(&path(DEPT)), Some("string"));
    let raw = raw(&server);
    let profile = ProfileId::new_random();
    let f = fields(&[
        ("userName", "ann.lee"),
        ("name.givenName", "Ann"),
        ("name.familyName", "Lee"),
        (WORK, "ann@acme.test"),
        (DEPT, "Sales"),
    ]);
    let id = create(&t, ObjectKind::User, link(profile, "guid-ann"), f.clone()).await;
    let u = raw.get(&format!("Users/{id}")).await;
    assert_eq!(u["externalId"], format!("{profile}:guid-ann"));
    assert_eq!(u["emails"], json!([{"type": "work", "value": "ann@acme.test"}]));
    assert_eq!(
        u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "Sales"
    );
    assert_eq!(u["active"], true);

    // linked() reads it back with exactly the mapped field names
    let linked: Vec<TargetAccount> = t.linked(profile).await.unwrap().try_collect().await.unwrap();
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0].fields, f);
    assert_eq!(linked[0].link.as_ref().unwrap().external.as_str(), "guid-ann");

    // a field set by hand in the app is left alone by an update
    raw.patch(
        &format!("Users/{id}"),
        json!([{"op": "add", "path": "title", "value": "Boss"}]),
    )
    .await;
    // a run reads before it writes: the ETag is fresh again
    let _: Vec<TargetAccount> = t.linked(profile).await.unwrap().try_collect().await.unwrap();
    t.apply(&TargetOp::Update {
        target: TargetId(id.clone()),
        kind: ObjectKind::User,
        changes: vec![
            change(DEPT, Some("Sales"), Some("Support")),
            change(WORK, Some("ann@acme.test"), Some("ann.lee@acme.test")),
            change("name.familyName", Some("Lee"), None),
            change("emails[type eq \"home\"].value", None, Some("ann@home.test")),
        ],
    })
    .await
    .unwrap();
    let u = raw.get(&format!("Users/{id}")).await;
    assert_eq!(u["title"], "Boss");
    assert_eq!(
        u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "Support"
    );
    assert_eq!(u["name"], json!({"givenName": "Ann"}));
    let emails = u["emails"].as_array().unwrap();
    assert!(
        emails.contains(&json!({"type": "work", "value": "ann.lee@acme.test"})),
        "{emails:?}"
    );
    assert!(
        emails.contains(&json!({"type": "home", "value": "ann@home.test"})),
        "{emails:?}"
    );

    for enabled in [false, true] {
        t.apply(&TargetOp::SetEnabled {
            target: TargetId(id.clone()),
            kind: ObjectKind::User,
            enabled,
        })
        .await
        .unwrap();
        assert_eq!(raw.get(&format!("Users/{id}")).await["active"], enabled);
    }
    let linked: Vec<TargetAccount> = t.linked(profile).await.unwrap().try_collect().await.unwrap();
    assert!(linked[0].enabled);

    t.apply(&TargetOp::Delete {
        target: TargetId(id.clone()),
        kind: ObjectKind::User,
    })
    .await
    .unwrap();
    assert_eq!(raw.status(&format!("Users/{id}")).await, 404);
    // deleting again is not an error
    let again = t
        .apply(&TargetOp::Delete {
            target: TargetId(id.clone()),
            kind: ObjectKind::User,
        })
        .await
        .unwrap();
    assert_eq!(again.note.as_deref(), Some("already gone"));
}

#[tokio::test]
async fn create_twice_returns_the_linked_account_and_errors_name_the_object() {
    let Some(server) = scim2_server().await else { return };
    let t = target(&server).await;
    let profile = ProfileId::new_random();
    let f = fields(&[("userName", "bob")]);
    let first = create(&t, ObjectKind::User, link(profile, "g-bob"), f.clone()).await;
    let second = t
        .apply(&TargetOp::Create {
            kind: ObjectKind::User,
            link: link(profile, "g-bob"),
            fields: f.clone(),
        })
        .await
        .unwrap();
    assert_eq!(second.target.unwrap().0, first);
    assert_eq!(second.note.as_deref(), Some("already existed with this link"));

    // the same userName under another link: a uniqueness error naming the object
    let err = t
        .apply(&TargetOp::Create {
            kind: ObjectKind::User,
            link: link(profile, "g-other"),
            fields: f,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(!err.is_transient());
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("scim apply.create [{profile}/g-other (bob)]")),
        "{text}"
    );
    assert!(text.contains("HTTP 409 uniqueness"), "{text}");
}

#[tokio::test]
async fn lookup_soft_matches_by_user_name_email_and_external_id() {
    let Some(server) = scim2_server().await else { return };
    let t = target(&server).await;
    let raw = raw(&server);
    // an account made by hand in the app, without a link
    let url = idsync_http::Url::parse(&format!("{}/Users", raw.base)).unwrap();
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "Carol.Hand",
        "emails": [{"type": "work", "value": "carol@acme.test"}]});
    raw.http
        .send(
            idsync_http::Request::new(idsync_http::Method::POST, url)
                .json(&body, "application/scim+json")
                .unwrap(),
        )
        .await
        .unwrap();
    let profile = ProfileId::new_random();
    let linked_id = create(
        &t,
        ObjectKind::User,
        link(profile, "g-dan"),
        fields(&[("userName", "dan")]),
    )
    .await;

    let found = t
        .lookup(&[
            Lookup::Field {
                kind: ObjectKind::User,
                field: "userName".into(),
                value: " carol.hand ".into(),
            },
            Lookup::Field {
                kind: ObjectKind::User,
                field: WORK.into(),
                value: "carol@acme.test".into(),
            },
            Lookup::External {
                kind: ObjectKind::User,
                external: "g-dan".into(),
            },
            Lookup::External {
                kind: ObjectKind::User,
                external: "an-dan".into(),
            },
        ])
        .await
        .unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    let carol = found
        .iter()
        .find(|a| a.fields.get("userName").map(String::as_str) == Some("Carol.Hand"))
        .unwrap();
    assert!(carol.link.is_none());
    assert!(found.iter().any(|a| a.id.0 == linked_id && a.link.is_some()));

    // adopting it: set the link, then it is listed as linked
    t.apply(&TargetOp::SetLink {
        target: carol.id.clone(),
        kind: ObjectKind::User,
        link: link(profile, "g-carol"),
    })
    .await
    .unwrap();
    let linked: Vec<TargetAccount> = t.linked(profile).await.unwrap().try_collect().await.unwrap();
    assert_eq!(linked.len(), 2);
}

#[tokio::test]
async fn groups_and_membership_deltas() {
    let Some(server) = scim2_server().await else { return };
    let t = target(&server).await;
    let raw = raw(&server);
    let profile = ProfileId::new_random();
    let ann = create(
        &t,
        ObjectKind::User,
        link(profile, "u1"),
        fields(&[("userName", "g.ann")]),
    )
    .await;
    let bob = create(
        &t,
        ObjectKind::User,
        link(profile, "u2"),
        fields(&[("userName", "g.bob")]),
    )
    .await;
    let group = create(
        &t,
        ObjectKind::Group,
        link(profile, "grp"),
        fields(&[("displayName", "Sales")]),
    )
    .await;
    // a member added by hand in the app stays
    raw.patch(
        &format!("Groups/{group}"),
        json!([{"op": "add", "path": "members", "value": [{"value": "manual"}]}]),
    )
    .await;
    for m in [&ann, &bob] {
        t.apply(&TargetOp::AddMember {
            group: TargetId(group.clone()),
            member: TargetId(m.clone()),
        })
        .await
        .unwrap();
    }
    t.apply(&TargetOp::RemoveMember {
        group: TargetId(group.clone()),
        member: TargetId(ann.clone()),
    })
    .await
    .unwrap();
    // removing a non-member is success
    t.apply(&TargetOp::RemoveMember {
        group: TargetId(group.clone()),
        member: TargetId(ann.clone()),
    })
    .await
    .unwrap();
    t.apply(&TargetOp::Update {
        target: TargetId(group.clone()),
        kind: ObjectKind::Group,
        changes: vec![change("displayName", Some("Sales"), Some("Sales EMEA"))],
    })
    .await
    .unwrap();
    let g = raw.get(&format!("Groups/{group}")).await;
    let mut members: Vec<&str> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["value"].as_str())
        .collect();
    members.sort();
    let mut want = vec![bob.as_str(), "manual"];
    want.sort();
    assert_eq!(members, want);
    assert_eq!(g["displayName"], "Sales EMEA");

    let linked: Vec<TargetAccount> = t.linked(profile).await.unwrap().try_collect().await.unwrap();
    let lg = linked.iter().find(|a| a.kind == ObjectKind::Group).unwrap();
    assert_eq!(lg.fields.get("displayName").map(String::as_str), Some("Sales EMEA"));
    assert_eq!(lg.members.len(), 2);
    assert_eq!(linked.len(), 3);

    let err = t
        .apply(&TargetOp::SetEnabled {
            target: TargetId(group.clone()),
            kind: ObjectKind::Group,
            enabled: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn linked_pages_over_several_pages() {
    let Some(server) = scim2_server().await else { return };
    let mut c = config(&server.base_url(), server.token());
    c.page_size = 3;
    let t = ScimTarget::connect(c).await.unwrap();
    let profile = ProfileId::new_random();
    let other = ProfileId::new_random();
    for i in 0..8 {
        create(
            &t,
            ObjectKind::User,
            link(profile, &format!("p{i}")),
            fields(&[("userName", &format!("page{i}"))]),
        )
        .await;
    }
    create(
        &t,
        ObjectKind::User,
        link(other, "x"),
        fields(&[("userName", "not-mine")]),
    )
    .await;
    let proxy = server.fault_proxy().await.unwrap();
    let mut c = config(&proxy.base_url(), server.token());
    c.page_size = 3;
    let t = ScimTarget::connect(c).await.unwrap();
    proxy.clear_seen();
    let linked: Vec<TargetAccount> = t.linked(profile).await.unwrap().try_collect().await.unwrap();
    let mut names: Vec<String> = linked.iter().map(|a| a.fields["userName"].clone()).collect();
    names.sort();
    assert_eq!(names, (0..8).map(|i| format!("page{i}")).collect::<Vec<_>>());
    let user_pages = proxy.seen().iter().filter(|s| s.path.starts_with("/v2/Users?")).count();
    assert_eq!(user_pages, 3, "{:?}", proxy.seen());
}

#[tokio::test]
async fn a_stale_etag_is_a_conflict() {
    let Some(server) = scim2_server().await else { return };
    let t = target(&server).await;
    let raw = raw(&server);
    let profile = ProfileId::new_random();
    let id = create(
        &t,
        ObjectKind::User,
        link(profile, "e1"),
        fields(&[("userName", "etag.user"), ("title", "A")]),
    )
    .await;
    let _: Vec<TargetAccount> = t.linked(profile).await.unwrap().try_collect().await.unwrap();
    // someone changes it behind our back
    raw.patch(
        &format!("Users/{id}"),
        json!([{"op": "replace", "path": "title", "value": "B"}]),
    )
    .await;
    let err = t
        .apply(&TargetOp::Update {
            target: TargetId(id.clone()),
            kind: ObjectKind::User,
            changes: vec![change("title", Some("A"), Some("C"))],
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(!err.is_transient());
    assert!(
        err.to_string().contains(&format!("[{id}]")) && err.to_string().contains("HTTP 412"),
        "{err}"
    );
    assert_eq!(raw.get(&format!("Users/{id}")).await["title"], "B");
    // the next run reads again and succeeds
    let _: Vec<TargetAccount> = t.linked(profile).await.unwrap().try_collect().await.unwrap();
    t.apply(&TargetOp::Update {
        target: TargetId(id.clone()),
        kind: ObjectKind::User,
        changes: vec![change("title", Some("B"), Some("C"))],
    })
    .await
    .unwrap();
    assert_eq!(raw.get(&format!("Users/{id}")).await["title"], "C");
}

#[tokio::test]
async fn put_dialect_updates_by_put() {
    let Some(server) = scim2_server().await else { return };
    let proxy = server.fault_proxy().await.unwrap();
    let mut c = config(&proxy.base_url(), server.token());
    c.dialect = idsync_scim::ScimDialect::put_only();
    let t = ScimTarget::connect(c).await.unwrap();
    let raw = raw(&server);
    let profile = ProfileId::new_random();
    let id = create(
        &t,
        ObjectKind::User,
        link(profile, "put1"),
        fields(&[("userName", "put.user"), (WORK, "a@x.test")]),
    )
    .await;
    let g = create(
        &t,
        ObjectKind::Group,
        link(profile, "putg"),
        fields(&[("displayName", "PutGroup")]),
    )
    .await;
    proxy.clear_seen();
    t.apply(&TargetOp::Update {
        target: TargetId(id.clone()),
        kind: ObjectKind::User,
        changes: vec![
            change(WORK, Some("a@x.test"), Some("b@x.test")),
            change("title", None, Some("T")),
        ],
    })
    .await
    .unwrap();
    t.apply(&TargetOp::SetEnabled {
        target: TargetId(id.clone()),
        kind: ObjectKind::User,
        enabled: false,
    })
    .await
    .unwrap();
    t.apply(&TargetOp::AddMember {
        group: TargetId(g.clone()),
        member: TargetId(id.clone()),
    })
    .await
    .unwrap();
    let u = raw.get(&format!("Users/{id}")).await;
    assert_eq!((u["title"].as_str(), u["active"].as_bool()), (Some("T"), Some(false)));
    assert_eq!(u["emails"], json!([{"type": "work", "value": "b@x.test"}]));
    assert_eq!(
        raw.get(&format!("Groups/{g}")).await["members"][0]["value"],
        id.as_str()
    );
    let methods: Vec<String> = proxy.seen().iter().map(|s| s.method.to_string()).collect();
    assert_eq!(methods, ["GET", "PUT", "GET", "PUT", "GET", "PUT"]);
}

#[tokio::test]
async fn the_creates_of_a_batch_go_out_in_one_bulk_request() {
    let Some(server) = scim2_server().await else { return };
    let proxy = server.fault_proxy().await.unwrap();
    let mut c = config(&proxy.base_url(), server.token());
    c.bulk = BulkMode::On;
    let t = ScimTarget::connect(c).await.unwrap();
    assert!(t.uses_bulk());
    // A batch is the larger of a group's PATCH and a Bulk request.
    assert_eq!(t.capabilities().batch, ScimDialect::default().member_chunk.max(100));
    let profile = ProfileId::new_random();
    proxy.clear_seen();
    let mut ops: Vec<TargetOp> = (0..30)
        .map(|i| TargetOp::Create {
            kind: ObjectKind::User,
            link: link(profile, &format!("b{i}")),
            fields: fields(&[("userName", &format!("bulk{i}"))]),
        })
        .collect();
    // a duplicate inside the Bulk fails alone, naming the object
    ops.insert(
        10,
        TargetOp::Create {
            kind: ObjectKind::User,
            link: link(profile, "dup"),
            fields: fields(&[("userName", "bulk0")]),
        },
    );
    let mut results = t.apply_batch(&ops).await;
    let dup = results.remove(10).unwrap_err();
    assert_eq!(dup.kind(), ErrorKind::AlreadyExists, "{dup}");
    assert!(dup.to_string().contains("dup (bulk0)"), "{dup}");
    let ids: std::collections::BTreeSet<String> = results.into_iter().map(|r| r.unwrap().target.unwrap().0).collect();
    assert_eq!(ids.len(), 30);
    let bulk_calls = proxy.seen().iter().filter(|s| s.path == "/v2/Bulk").count();
    let posts = proxy.seen().iter().filter(|s| s.path == "/v2/Users").count();
    // one Bulk, and one look-up of the duplicate's link (a 409 may be our own account)
    assert_eq!((bulk_calls, posts), (1, 0), "{:?}", proxy.seen());
    let linked: Vec<TargetAccount> = t.linked(profile).await.unwrap().try_collect().await.unwrap();
    assert_eq!(linked.len(), 30);
    assert!(linked.iter().all(|a| ids.contains(&a.id.0)));
}

#[tokio::test]
async fn a_batch_of_membership_changes_goes_out_in_chunks() {
    let Some(server) = scim2_server().await else { return };
    let proxy = server.fault_proxy().await.unwrap();
    let mut c = config(&proxy.base_url(), server.token());
    c.dialect.member_chunk = 10;
    let t = ScimTarget::connect(c).await.unwrap();
    let raw = raw(&server);
    let profile = ProfileId::new_random();
    let group = create(
        &t,
        ObjectKind::Group,
        link(profile, "big"),
        fields(&[("displayName", "Big")]),
    )
    .await;
    proxy.clear_seen();
    let mut ops: Vec<TargetOp> = (0..25)
        .map(|i| TargetOp::AddMember {
            group: TargetId(group.clone()),
            member: TargetId(format!("m{i:02}")),
        })
        .collect();
    // removing a non-member is done already
    ops.push(TargetOp::RemoveMember {
        group: TargetId(group.clone()),
        member: TargetId("nobody".into()),
    });
    for r in t.apply_batch(&ops).await {
        r.unwrap();
    }
    let g = raw.get(&format!("Groups/{group}")).await;
    let mut members: Vec<&str> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["value"].as_str())
        .collect();
    members.sort();
    let want: Vec<String> = (0..25).map(|i| format!("m{i:02}")).collect();
    assert_eq!(members, want);
    // chunks of 10, 10 and 6 changes
    let patches = proxy.seen().iter().filter(|s| s.method.as_str() == "PATCH").count();
    assert_eq!(patches, 3, "{:?}", proxy.seen());
}

#[tokio::test]
async fn concurrent_writes_to_one_account_do_not_conflict_with_each_other() {
    let Some(server) = scim2_server().await else { return };
    let t = target(&server).await;
    let raw = raw(&server);
    let profile = ProfileId::new_random();
    let id = create(
        &t,
        ObjectKind::User,
        link(profile, "c1"),
        fields(&[("userName", "conc"), ("title", "A")]),
    )
    .await;
    t.apply(&TargetOp::SetEnabled {
        target: TargetId(id.clone()),
        kind: ObjectKind::User,
        enabled: false,
    })
    .await
    .unwrap();
    let _: Vec<TargetAccount> = t.linked(profile).await.unwrap().try_collect().await.unwrap();
    // the executor runs an update and an enable of one account in the same phase
    let ops = [
        TargetOp::Update {
            target: TargetId(id.clone()),
            kind: ObjectKind::User,
            changes: vec![change("title", Some("A"), Some("B"))],
        },
        TargetOp::SetEnabled {
            target: TargetId(id.clone()),
            kind: ObjectKind::User,
            enabled: true,
        },
        TargetOp::Update {
            target: TargetId(id.clone()),
            kind: ObjectKind::User,
            changes: vec![change("nickName", None, Some("C"))],
        },
    ];
    for r in futures::future::join_all(ops.iter().map(|op| t.apply(op))).await {
        r.unwrap();
    }
    let u = raw.get(&format!("Users/{id}")).await;
    assert_eq!(
        (u["title"].as_str(), u["nickName"].as_str(), u["active"].as_bool()),
        (Some("B"), Some("C"), Some(true))
    );
}

#[tokio::test]
async fn many_lookups_go_out_as_few_or_filters() {
    let Some(server) = scim2_server().await else { return };
    let proxy = server.fault_proxy().await.unwrap();
    let t = ScimTarget::connect(config(&proxy.base_url(), server.token()))
        .await
        .unwrap();
    let profile = ProfileId::new_random();
    let ops: Vec<TargetOp> = (0..60)
        .map(|i| TargetOp::Create {
            kind: ObjectKind::User,
            link: link(profile, &format!("x{i}")),
            fields: fields(&[("userName", &format!("look{i}"))]),
        })
        .collect();
    for r in t.apply_batch(&ops).await {
        r.unwrap();
    }
    // an id that ends like another one must not match it
    create(
        &t,
        ObjectKind::User,
        link(profile, "1:x1"),
        fields(&[("userName", "tricky")]),
    )
    .await;
    proxy.clear_seen();
    let mut lookups: Vec<Lookup> = (0..60)
        .map(|i| Lookup::External {
            kind: ObjectKind::User,
            external: format!("x{i}").into(),
        })
        .collect();
    lookups.push(Lookup::External {
        kind: ObjectKind::User,
        external: "nobody".into(),
    });
    lookups.push(Lookup::Field {
        kind: ObjectKind::User,
        field: "userName".into(),
        value: "tricky".into(),
    });
    let found = t.lookup(&lookups).await.unwrap();
    assert_eq!(found.len(), 61, "60 by link and 1 by userName");
    assert_eq!(found.iter().filter(|a| a.fields["userName"] == "tricky").count(), 1);
    let queries = proxy.seen().iter().filter(|s| s.method.as_str() == "GET").count();
    assert_eq!(
        queries,
        3,
        "61 external ids in 2 queries, 1 field lookup: {:?}",
        proxy.seen()
    );
}

#[tokio::test]
async fn plain_link_style_keeps_the_bare_external_id() {
    let Some(server) = scim2_server().await else { return };
    let profile = ProfileId::new_random();
    let mut c = config(&server.base_url(), server.token());
    c.link = idsync_scim::LinkStyle::Plain { profile };
    let t = ScimTarget::connect(c).await.unwrap();
    let raw = raw(&server);
    let id = create(
        &t,
        ObjectKind::User,
        link(profile, "guid-plain"),
        fields(&[("userName", "plain")]),
    )
    .await;
    assert_eq!(raw.get(&format!("Users/{id}")).await["externalId"], "guid-plain");
    // an account without externalId is not linked
    let url = idsync_http::Url::parse(&format!("{}/Users", raw.base)).unwrap();
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "by.hand"});
    raw.http
        .send(
            idsync_http::Request::new(idsync_http::Method::POST, url)
                .json(&body, "application/scim+json")
                .unwrap(),
        )
        .await
        .unwrap();

    let linked: Vec<TargetAccount> = t.linked(profile).await.unwrap().try_collect().await.unwrap();
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0].link, Some(link(profile, "guid-plain")));
    let other = ProfileId::new_random();
    assert!(
        t.linked(other)
            .await
            .unwrap()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .is_empty()
    );
    let found = t
        .lookup(&[Lookup::External {
            kind: ObjectKind::User,
            external: "guid-plain".into(),
        }])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id.0, id);
    // a create twice still finds the account by its link
    let again = t
        .apply(&TargetOp::Create {
            kind: ObjectKind::User,
            link: link(profile, "guid-plain"),
            fields: fields(&[("userName", "plain")]),
        })
        .await
        .unwrap();
    assert_eq!(again.target.unwrap().0, id);
    // another profile cannot be kept in a plain externalId
    let err = t
        .apply(&TargetOp::Create {
            kind: ObjectKind::User,
            link: link(other, "guid-other"),
            fields: fields(&[("userName", "other")]),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("plain link style"), "{err}");
}
