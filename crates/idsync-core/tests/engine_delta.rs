//! The engine's deltas and batches over the in-memory backends: what a
//! delta costs the target (nothing when nothing changed), a present-mode
//! delta cut short deprovisions nothing, just-in-time sync admits what a
//! full run admits, batches keep their order and isolate one bad object,
//! and a raised stop signal stops the apply.
#![expect(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failure fails the test"
)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use idsync_core::memory::{Fault, MemorySource, MemoryTarget};
use idsync_core::plan::{Action, FindingKind, ReadMode};
use idsync_core::report::{OpStatus, RunOutcome};
use idsync_core::{
    Cursor, DeltaItem, Engine, EngineOptions, ErrorKind, ExternalId, MemoryStateStore, ObjectKind, Profile, ReadItem,
    Result, RetryPolicy, RunOptions, Scope, Source, SourceCapabilities, SourceObject, StateStore, StopSignal,
    TargetCapabilities, TargetOp,
};

fn profile(extra: serde_json::Value) -> Profile {
    let mut p = serde_json::json!({
        "id": "66666666-6666-4666-8666-666666666666",
        "name": "deltas",
        "mapping": {
            "users": [{"field": "name", "attribute": "cn"}],
            "groups": [{"field": "name", "attribute": "cn"}]
        }
    });
    if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
        p.extend(extra.clone());
    }
    serde_json::from_value(p).expect("profile")
}

fn user(n: usize) -> SourceObject {
    SourceObject::new(format!("u{n}").as_str(), ObjectKind::User).with("cn", format!("user {n}"))
}

fn group(id: &str, members: impl IntoIterator<Item = usize>) -> SourceObject {
    members
        .into_iter()
        .fold(SourceObject::new(id, ObjectKind::Group).with("cn", id), |g, n| {
            g.with_member(format!("u{n}").as_str())
        })
}

fn engine(source: Arc<dyn Source>, target: &MemoryTarget, profile: Profile) -> (Engine, Arc<MemoryStateStore>) {
    let state = Arc::new(MemoryStateStore::new());
    let engine = Engine::new(profile, source, Arc::new(target.clone()), state.clone()).with_options(EngineOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(20),
        },
        full_every: None,
        ..EngineOptions::default()
    });
    (engine, state)
}

fn batching(batch: usize) -> MemoryTarget {
    MemoryTarget::with_capabilities(
        TargetCapabilities::default()
            .with_groups(true)
            .with_disable(true)
            .with_disable_groups(true)
            .with_batch(batch),
    )
}

#[tokio::test]
async fn a_delta_with_no_change_asks_the_target_nothing_and_a_delta_asks_only_what_it_names() {
    let source = MemorySource::with_objects((0..50).map(user).chain([group("g1", 0..50)]));
    let target = MemoryTarget::new();
    let (engine, _) = engine(Arc::new(source.clone()), &target, profile(serde_json::json!({})));
    engine.run(&RunOptions::default()).await.unwrap();
    let after_full = target.calls();
    assert_eq!(after_full.linked, 1, "the full read lists the linked accounts once");

    let quiet = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(quiet.plan.mode, ReadMode::Delta);
    assert!(quiet.plan.is_empty());
    assert_eq!(
        target.calls(),
        after_full,
        "a delta with no change asks the target nothing"
    );

    source.modify("u3", |o| {
        o.attributes.remove("cn");
        *o = o.clone().with("cn", "renamed");
    });
    source.modify("g1", |o| o.members.retain(|m| m.as_str() != "u7"));
    let delta = engine.run(&RunOptions::default()).await.unwrap();
    let calls = target.calls();
    assert_eq!(calls.linked, 1, "a delta lists no linked accounts");
    // u3, g1 (changed) and u7 (left g1; not a group the state knows, so a
    // user): one External look-up each.
    assert_eq!(calls.lookups - after_full.lookups, 3);
    let actions: Vec<(String, String)> = delta
        .plan
        .operations
        .iter()
        .map(|op| (op.action.name().to_owned(), op.link.external.0.clone()))
        .collect();
    assert_eq!(
        actions,
        [
            ("update".to_owned(), "u3".to_owned()),
            ("remove_member".into(), "g1".into())
        ]
    );
    let g1 = target.linked_to(engine.profile().id, "g1").unwrap();
    assert_eq!(g1.members.len(), 49);
}

/// A source whose deltas are scripted: full reads and single reads come
/// from a [`MemorySource`].
#[derive(Debug)]
struct Scripted {
    directory: MemorySource,
    delta: Mutex<Vec<DeltaItem>>,
}

#[async_trait]
impl Source for Scripted {
    fn backend(&self) -> &'static str {
        "scripted"
    }

    fn capabilities(&self) -> SourceCapabilities {
        self.directory.capabilities()
    }

    async fn read_full(&self, scope: &Scope) -> Result<BoxStream<'_, Result<ReadItem>>> {
        let items: Vec<Result<ReadItem>> = self.directory.read_full(scope).await?.collect().await;
        Ok(stream::iter(items.into_iter().map(|i| {
            i.map(|i| match i {
                ReadItem::End { completeness, .. } => ReadItem::End {
                    completeness,
                    cursor: Some(Cursor("c1".into())),
                },
                other => other,
            })
        }))
        .boxed())
    }

    async fn read_delta(&self, _scope: &Scope, _from: &Cursor) -> Result<BoxStream<'_, Result<DeltaItem>>> {
        let items = std::mem::take(&mut *self.delta.lock().unwrap());
        Ok(stream::iter(items.into_iter().map(Ok)).boxed())
    }

    async fn read_one(&self, scope: &Scope, id: &ExternalId) -> Result<Option<SourceObject>> {
        self.directory.read_one(scope, id).await
    }
}

#[tokio::test]
async fn a_present_mode_delta_cut_short_deprovisions_nothing_and_keeps_the_cursor() {
    let directory = MemorySource::with_objects((0..10).map(user).chain([group("g1", 0..10)]));
    let scripted = Arc::new(Scripted {
        directory,
        delta: Mutex::new(Vec::new()),
    });
    let target = MemoryTarget::new();
    let (engine, state) = engine(scripted.clone(), &target, profile(serde_json::json!({})));
    engine.run(&RunOptions::default()).await.unwrap();
    let id = engine.profile().id;
    assert_eq!(state.load(id).await.unwrap().cursor, Some(Cursor("c1".into())));

    // The present phase lists u0..u3, then the link drops: no End item.
    let g1 = group("g1", 0..3);
    *scripted.delta.lock().unwrap() = (0..4)
        .map(|n| DeltaItem::Present(ExternalId(format!("u{n}"))))
        .chain([DeltaItem::Changed(g1)])
        .collect();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.mode, ReadMode::Delta);
    assert!(!report.plan.completeness.is_complete());
    assert_eq!(
        report.plan.counts.disable + report.plan.counts.delete,
        0,
        "{}",
        report.plan
    );
    assert_eq!(report.plan.counts.remove_member, 0, "{}", report.plan);
    assert!(report.plan.findings.iter().any(|f| f.kind == FindingKind::PartialRead));
    assert!(target.accounts().iter().all(|a| a.enabled));
    assert_eq!(target.linked_to(id, "g1").unwrap().members.len(), 10);
    assert!(!report.cursor_saved);
    assert_eq!(state.load(id).await.unwrap().cursor, Some(Cursor("c1".into())));

    // The same delta read whole: u4..u9 are gone, and leave g1.
    let g1 = group("g1", 0..4);
    *scripted.delta.lock().unwrap() = (0..4)
        .map(|n| DeltaItem::Present(ExternalId(format!("u{n}"))))
        .chain([
            DeltaItem::Changed(g1),
            DeltaItem::End {
                cursor: Cursor("c2".into()),
            },
        ])
        .collect();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.counts.disable, 6, "{}", report.plan);
    assert_eq!(report.plan.counts.remove_member, 6, "{}", report.plan);
    assert_eq!(state.load(id).await.unwrap().cursor, Some(Cursor("c2".into())));
}

#[tokio::test]
async fn just_in_time_sync_admits_what_a_full_run_admits_with_assigned_groups() {
    let source = MemorySource::with_objects(
        (0..4)
            .map(user)
            .chain([group("app-users", [0, 1]), group("other", [2, 3])]),
    );
    let target = MemoryTarget::new();
    let p = profile(serde_json::json!({"scope": {"groups": ["app-users"]}}));
    let (engine, _) = engine(Arc::new(source.clone()), &target, p);
    engine.run(&RunOptions::default()).await.unwrap();
    let id = engine.profile().id;
    assert!(target.linked_to(id, "u2").is_none());

    // u2 joins app-users, u3 does not: JIT takes u2 (and its membership), not u3.
    source.modify("app-users", |g| g.members.push("u2".into()));
    let outside = engine.sync_one(&"u3".into(), &RunOptions::default()).await.unwrap();
    assert!(outside.plan.is_empty(), "{}", outside.plan);
    assert!(target.linked_to(id, "u3").is_none());
    let inside = engine.sync_one(&"u2".into(), &RunOptions::default()).await.unwrap();
    let actions: Vec<&str> = inside.plan.operations.iter().map(|op| op.action.name()).collect();
    assert_eq!(actions, ["create", "add_member"], "{}", inside.plan);
    let u2 = target.linked_to(id, "u2").unwrap();
    assert!(target.linked_to(id, "app-users").unwrap().members.contains(&u2.id));

    // A full run now agrees: nothing to do.
    let full = engine
        .run(&RunOptions {
            full: true,
            ..RunOptions::default()
        })
        .await
        .unwrap();
    assert!(full.plan.is_empty(), "{}", full.plan);
}

#[tokio::test]
async fn batches_carry_creates_then_one_groups_members_and_keep_their_order() {
    let source = MemorySource::with_objects((0..120).map(user).chain([group("g1", 0..120), group("g2", 0..5)]));
    let target = batching(50);
    let (engine, _) = engine(Arc::new(source), &target, profile(serde_json::json!({})));
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Succeeded);
    assert_eq!(report.tally.applied, 122 + 125);
    let batches = target.calls().batches;
    assert!(batches.iter().all(|b| *b <= 50), "{batches:?}");
    // 122 creates in 3 batches; then g1's 120 member adds in rounds of 50
    // (one writer per group), g2's 5 beside g1's first chunk.
    assert_eq!(batches, [50, 50, 22, 50, 5, 50, 20]);
    let log = target.log();
    let first_member = log
        .iter()
        .position(|op| matches!(op, TargetOp::AddMember { .. }))
        .unwrap();
    assert!(
        log[first_member..]
            .iter()
            .all(|op| matches!(op, TargetOp::AddMember { .. }))
    );
    assert_eq!(target.linked_to(engine.profile().id, "g1").unwrap().members.len(), 120);
}

#[tokio::test]
async fn one_bad_object_in_a_batch_fails_alone_and_a_transient_one_is_retried() {
    let source = MemorySource::with_objects((0..20).map(user));
    let target = batching(10);
    target.fail(Fault {
        on: "u4".into(),
        kind: ErrorKind::InvalidData,
        times: u32::MAX,
        retry_after: None,
    });
    target.fail(Fault {
        on: "u12".into(),
        kind: ErrorKind::Unavailable,
        times: 1,
        retry_after: None,
    });
    let (engine, state) = engine(Arc::new(source), &target, profile(serde_json::json!({})));
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.tally.applied, 19);
    assert_eq!(report.tally.failed, 1);
    let failed: Vec<&str> = report.failures().map(|o| o.link.external.as_str()).collect();
    assert_eq!(failed, ["u4"]);
    let retried = report
        .outcomes
        .iter()
        .find(|o| o.link.external.as_str() == "u12")
        .unwrap();
    assert_eq!((retried.status.clone(), retried.attempts), (OpStatus::Applied, 2));
    // Two batches of 10, then u12 again alone.
    assert_eq!(target.calls().batches, [10, 10, 1]);
    let id = engine.profile().id;
    assert_eq!(
        state
            .load(id)
            .await
            .unwrap()
            .retry
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>(),
        ["u4"]
    );
}

#[tokio::test]
async fn a_raised_stop_signal_skips_what_is_left_and_keeps_the_cursor() {
    let source = MemorySource::with_objects((0..5).map(user));
    let target = MemoryTarget::new();
    let stop = StopSignal::new();
    let (engine, state) = engine(Arc::new(source), &target, profile(serde_json::json!({})));
    let engine = engine.with_stop(stop.clone());
    let prepared = engine.prepare(&RunOptions::default()).await.unwrap();
    stop.stop("the lease was lost");
    let report = engine.apply(prepared).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Stopped {
            error: "the lease was lost".into()
        }
    );
    assert_eq!(report.tally.skipped, 5);
    assert!(target.accounts().is_empty());
    let saved = state.load(engine.profile().id).await.unwrap();
    assert_eq!(saved.cursor, None);
    assert_eq!(saved.retry.len(), 5, "what was skipped is retried next run");
    assert!(
        report
            .plan
            .operations
            .iter()
            .all(|op| matches!(op.action, Action::Create { .. }))
    );
}

#[tokio::test]
async fn a_sync_at_login_finds_the_user_by_name_and_never_guesses() {
    let source = MemorySource::with_objects(
        (0..4)
            .map(user)
            .chain([user(9).with("mail", "ann@acme.test"), group("g1", [1, 9])]),
    );
    source.modify("u2", |o| {
        o.attributes.remove("cn");
        *o = o.clone().with("cn", "user 1");
    });
    let target = MemoryTarget::new();
    let p = profile(serde_json::json!({"login_attributes": ["mail", "cn"]}));
    let (engine, _) = engine(Arc::new(source), &target, p);
    engine
        .run(&RunOptions {
            dry_run: true,
            ..RunOptions::default()
        })
        .await
        .unwrap();
    let id = engine.profile().id;

    // By the second attribute, case aside: u3 alone is created.
    let report = engine.sync_login("USER 3", &RunOptions::default()).await.unwrap();
    let created: Vec<&str> = report
        .plan
        .operations
        .iter()
        .map(|op| op.link.external.as_str())
        .collect();
    assert_eq!(created, ["u3"], "{}", report.plan);
    assert!(target.linked_to(id, "u3").is_some());
    // By the first: u9.
    engine
        .sync_login("ann@acme.test", &RunOptions::default())
        .await
        .unwrap();
    assert!(target.linked_to(id, "u9").is_some());
    // Two users named "user 1": neither is synced.
    let e = engine.sync_login("user 1", &RunOptions::default()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
    assert!(e.to_string().contains("u1, u2") && e.to_string().contains("cn"), "{e}");
    assert!(target.linked_to(id, "u1").is_none() && target.linked_to(id, "u2").is_none());
    let e = engine.sync_login("nobody", &RunOptions::default()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}
