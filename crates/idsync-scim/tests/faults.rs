//! 429 and 5xx between the SCIM target and a real scim2-server, injected by
//! the testkit's fault proxy: what is retried, what is not, and what the
//! engine is told.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::TryStreamExt;
use idsync_core::{ErrorKind, FieldChange, ObjectKind, ProfileId, Status, Target, TargetAccount, TargetId, TargetOp};
use idsync_http::Method;
use idsync_scim::ScimTarget;
use idsync_testkit::fault::Fault;
use idsync_testkit::scim2::scim2_server;

fn methods(seen: &[idsync_testkit::scim2::Seen]) -> Vec<(String, u16)> {
    seen.iter().map(|s| (s.method.to_string(), s.status)).collect()
}

#[tokio::test]
async fn a_429_on_create_waits_for_retry_after_and_creates_once() {
    let Some(server) = scim2_server().await else { return };
    let proxy = server.fault_proxy().await.unwrap();
    let t = ScimTarget::connect(config(&proxy.base_url(), server.token()))
        .await
        .unwrap();
    let profile = ProfileId::new_random();
    proxy.clear_seen();
    proxy
        .faults()
        .fail_next_of(Method::POST, 1, Fault::RateLimited { retry_after: Some(1) });
    let started = Instant::now();
    let id = create(
        &t,
        ObjectKind::User,
        link(profile, "rl"),
        fields(&[("userName", "rate.limited")]),
    )
    .await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert_eq!(methods(&proxy.seen()), [("POST".into(), 429), ("POST".into(), 201)]);
    let linked: Vec<TargetAccount> = t.linked(profile).await.unwrap().try_collect().await.unwrap();
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0].id.0, id);
}

#[tokio::test]
async fn server_errors_on_patch_and_get_are_retried() {
    let Some(server) = scim2_server().await else { return };
    let proxy = server.fault_proxy().await.unwrap();
    let t = ScimTarget::connect(config(&proxy.base_url(), server.token()))
        .await
        .unwrap();
    let raw = raw(&server);
    let profile = ProfileId::new_random();
    let id = create(
        &t,
        ObjectKind::User,
        link(profile, "p5"),
        fields(&[("userName", "five.hundred")]),
    )
    .await;
    proxy.clear_seen();
    proxy.faults().fail_next_of(Method::PATCH, 2, Fault::Status(503));
    t.apply(&TargetOp::Update {
        target: TargetId(id.clone()),
        kind: ObjectKind::User,
        changes: vec![FieldChange {
            field: "title".into(),
            old: None,
            new: Some("Retried".into()),
        }],
    })
    .await
    .unwrap();
    assert_eq!(
        methods(&proxy.seen()),
        [("PATCH".into(), 503), ("PATCH".into(), 503), ("PATCH".into(), 204)]
    );
    assert_eq!(raw.get(&format!("Users/{id}")).await["title"], "Retried");

    proxy.clear_seen();
    proxy.faults().fail_next_of(Method::GET, 1, Fault::Status(502));
    let linked: Vec<TargetAccount> = t.linked(profile).await.unwrap().try_collect().await.unwrap();
    assert_eq!(linked.len(), 1);
    assert_eq!(proxy.seen()[0].status, 502);
}

#[tokio::test]
async fn a_5xx_on_create_is_not_sent_again_blindly() {
    let Some(server) = scim2_server().await else { return };
    let proxy = server.fault_proxy().await.unwrap();
    let t = ScimTarget::connect(config(&proxy.base_url(), server.token()))
        .await
        .unwrap();
    let profile = ProfileId::new_random();
    proxy.clear_seen();
    proxy.faults().fail_next_of(Method::POST, 1, Fault::Status(500));
    let op = TargetOp::Create {
        kind: ObjectKind::User,
        link: link(profile, "x500"),
        fields: fields(&[("userName", "post.500")]),
    };
    let err = t.apply(&op).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_transient(), "the engine retries it on a later pass");
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    // one POST, then a look-up by the link (it might have landed), no second POST
    let seen = proxy.seen();
    assert_eq!(seen.iter().filter(|s| s.method == Method::POST).count(), 1, "{seen:?}");
    assert!(
        seen[1].method == Method::GET && seen[1].path.contains("externalId"),
        "{seen:?}"
    );
    // the retry of the operation succeeds and creates exactly one account
    t.apply(&op).await.unwrap();
    let linked: Vec<TargetAccount> = t.linked(profile).await.unwrap().try_collect().await.unwrap();
    assert_eq!(linked.len(), 1);
}

#[tokio::test]
async fn retries_that_run_out_are_exhausted_and_long_retry_after_is_passed_on() {
    let Some(server) = scim2_server().await else { return };
    let proxy = server.fault_proxy().await.unwrap();
    let mut c = config(&proxy.base_url(), server.token());
    c.http.retry.max_retries = 2;
    let t = ScimTarget::connect(c).await.unwrap();
    let profile = ProfileId::new_random();
    let id = create(
        &t,
        ObjectKind::User,
        link(profile, "ex"),
        fields(&[("userName", "exhausted")]),
    )
    .await;

    proxy.faults().fail_next_of(Method::GET, 3, Fault::Status(503));
    let err = t
        .linked(profile)
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.status(), Status::Exhausted);
    assert!(err.to_string().contains("(after 2 retries)"), "{err}");

    proxy.clear_seen();
    proxy
        .faults()
        .fail_next_of(Method::PATCH, 1, Fault::RateLimited { retry_after: Some(120) });
    let started = Instant::now();
    let err = t
        .apply(&TargetOp::SetEnabled {
            target: TargetId(id),
            kind: ObjectKind::User,
            enabled: false,
        })
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "does not sleep 2 minutes in place"
    );
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(proxy.seen().len(), 1);
}

#[tokio::test]
async fn a_wrong_token_stops_the_run() {
    let Some(server) = scim2_server().await else { return };
    let err = ScimTarget::connect(config(&server.base_url(), "wrong-token"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.stops_run());
    assert!(!err.to_string().contains("wrong-token"), "{err}");
}

#[tokio::test]
async fn a_bulk_answer_lost_after_the_server_acted_creates_no_second_copies() {
    let Some(server) = scim2_server().await else { return };
    let proxy = idsync_testkit::proxy::TcpProxy::start(server.port()).await.unwrap();
    let base = format!("http://127.0.0.1:{}/v2", proxy.port());
    let t = ScimTarget::connect(config(&base, server.token())).await.unwrap();
    assert!(t.uses_bulk());
    let profile = ProfileId::new_random();
    // Groups have no unique name the server could refuse a second copy by.
    let ops: Vec<TargetOp> = (0..10)
        .map(|i| TargetOp::Create {
            kind: ObjectKind::Group,
            link: link(profile, &format!("g{i}")),
            fields: fields(&[("displayName", &format!("group {i}"))]),
        })
        .collect();
    // The connection is reset when the Bulk answer starts: the server created them all.
    proxy.reset_after(0, 1);
    let results = t.apply_batch(&ops).await;
    assert_eq!(proxy.stats().resets, 1);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let groups = raw(&server).get("Groups?count=100").await;
    assert_eq!(groups["totalResults"], 10, "no second copies");
    let linked: Vec<TargetAccount> = t.linked(profile).await.unwrap().try_collect().await.unwrap();
    assert_eq!(linked.len(), 10);
}

#[tokio::test]
async fn a_bulk_request_failing_with_a_5xx_is_looked_up_once_and_not_sent_again() {
    let Some(server) = scim2_server().await else { return };
    let proxy = server.fault_proxy().await.unwrap();
    let t = ScimTarget::connect(config(&proxy.base_url(), server.token()))
        .await
        .unwrap();
    assert!(t.uses_bulk());
    let profile = ProfileId::new_random();
    let ops: Vec<TargetOp> = (0..20)
        .map(|i| TargetOp::Create {
            kind: ObjectKind::Group,
            link: link(profile, &format!("g{i}")),
            fields: fields(&[("displayName", &format!("group {i}"))]),
        })
        .collect();
    proxy.clear_seen();
    proxy.faults().fail_next_of(Method::POST, 1, Fault::Status(503));
    let results = t.apply_batch(&ops).await;
    for r in &results {
        let e = r.as_ref().unwrap_err();
        assert!(e.is_transient(), "the engine retries it: {e}");
        assert!(e.to_string().contains("HTTP 503"), "{e}");
    }
    let named: Vec<String> = results
        .iter()
        .map(|r| r.as_ref().unwrap_err().object().unwrap().0.clone())
        .collect();
    assert!(named[3].ends_with("/g3 (group 3)"), "{named:?}");
    // the Bulk, then one or-joined look-up of the 20 links; no POST again
    let seen = proxy.seen();
    assert_eq!(methods(&seen)[0], ("POST".into(), 503));
    assert_eq!(seen.iter().filter(|s| s.method == Method::POST).count(), 1, "{seen:?}");
    assert_eq!(seen.len(), 2, "{seen:?}");
    // the engine's retry creates each group once
    for r in t.apply_batch(&ops).await {
        r.unwrap();
    }
    let groups = raw(&server).get("Groups?count=100").await;
    assert_eq!(groups["totalResults"], 20);
}
