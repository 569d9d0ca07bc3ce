//! The engine end to end over the in-memory directory and application:
//! full and delta runs, failures isolated and retried, the cursor kept when
//! something is lost, runs stopped on authentication errors, dry runs,
//! threshold, veto, just-in-time sync and observers.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use idsync_core::memory::{Fault, MemorySource, MemoryTarget};
use idsync_core::plan::{FindingKind, ReadMode};
use idsync_core::report::{OpStatus, RunOutcome};
use idsync_core::{
    Engine, EngineOptions, ErrorKind, Event, ExternalId, MemoryStateStore, ObjectKind, Observer, Profile, RetryPolicy,
    RunOptions, SourceObject, StateStore,
};

fn profile() -> Profile {
    serde_json::from_value(serde_json::json!({
        "id": "44444444-4444-4444-8444-444444444444",
        "name": "engine",
        "mapping": {
            "users": [
                {"field": "name", "template": "{givenName} {sn}"},
                {"field": "dept", "attribute": "department"}
            ],
            "groups": [{"field": "name", "attribute": "cn"}]
        }
    }))
    .unwrap()
}

fn user(id: &str, name: &str, dept: &str) -> SourceObject {
    SourceObject::new(id, ObjectKind::User)
        .with("givenName", name)
        .with("sn", "Test")
        .with("department", dept)
}

fn directory() -> MemorySource {
    MemorySource::with_objects([
        user("u1", "Ann", "Sales"),
        user("u2", "Bob", "Sales"),
        user("u3", "Cem", "IT"),
        SourceObject::new("g1", ObjectKind::Group)
            .with("cn", "sales")
            .with_member("u1")
            .with_member("u2"),
    ])
}

struct Setup {
    source: MemorySource,
    target: MemoryTarget,
    state: Arc<MemoryStateStore>,
    engine: Engine,
}

fn setup_with(source: MemorySource, target: MemoryTarget, profile: Profile) -> Setup {
    let state = Arc::new(MemoryStateStore::new());
    let engine = Engine::new(
        profile,
        Arc::new(source.clone()),
        Arc::new(target.clone()),
        state.clone(),
    )
    .with_options(EngineOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
        },
        ..EngineOptions::default()
    });
    Setup {
        source,
        target,
        state,
        engine,
    }
}

fn setup() -> Setup {
    setup_with(directory(), MemoryTarget::new(), profile())
}

async fn run(s: &Setup) -> idsync_core::RunReport {
    s.engine.run(&RunOptions::default()).await.unwrap()
}

#[tokio::test]
async fn a_full_sync_creates_everything_and_a_second_run_has_nothing_to_do() {
    let s = setup();
    let report = run(&s).await;
    assert_eq!(report.outcome, RunOutcome::Succeeded);
    assert_eq!((report.plan.counts.create, report.plan.counts.add_member), (4, 2));
    assert_eq!(report.applied(), 6);
    let ann = s.target.linked_to(profile().id, "u1").unwrap();
    assert_eq!(ann.fields.get("name").map(String::as_str), Some("Ann Test"));
    let group = s.target.linked_to(profile().id, "g1").unwrap();
    let bob = s.target.linked_to(profile().id, "u2").unwrap();
    assert_eq!(
        group.members,
        vec![ann.id.clone(), bob.id.clone()]
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    let again = run(&s).await;
    assert!(again.plan.is_empty(), "{}", again.plan);
    assert_eq!(again.plan.mode, ReadMode::Delta, "the cursor of the full read is used");
}

#[tokio::test]
async fn one_failing_object_does_not_block_the_others_and_is_retried_next_run() {
    let s = setup();
    s.target.fail(Fault {
        on: "u2".into(),
        kind: ErrorKind::InvalidData,
        times: 1,
        retry_after: None,
    });
    let report = run(&s).await;
    assert_eq!(report.outcome, RunOutcome::PartiallyFailed { failed: 1, skipped: 1 });
    let failed: Vec<_> = report.failures().map(|o| o.link.external.0.clone()).collect();
    assert_eq!(failed, vec!["u2"]);
    assert!(s.target.linked_to(profile().id, "u1").is_some());
    assert!(s.target.linked_to(profile().id, "u3").is_some());
    assert!(s.target.linked_to(profile().id, "u2").is_none());
    // The membership of u2 depended on its create and was skipped, saying why.
    let skipped = report
        .outcomes
        .iter()
        .find(|o| matches!(o.status, OpStatus::Skipped { .. }))
        .unwrap();
    assert!(matches!(&skipped.status, OpStatus::Skipped { reason } if reason.contains("depends on")));
    let state = s.state.load(profile().id).await.unwrap();
    assert!(state.retry.contains(&ExternalId::from("u2")));
    assert!(
        report.cursor_saved,
        "the failure is held for retry, so the cursor may move on"
    );
    // Next run (a delta with nothing new) re-reads u2 and finishes the job.
    let report = run(&s).await;
    assert_eq!(report.plan.mode, ReadMode::Delta);
    assert_eq!(report.outcome, RunOutcome::Succeeded);
    let bob = s.target.linked_to(profile().id, "u2").unwrap();
    assert!(
        s.target
            .linked_to(profile().id, "g1")
            .unwrap()
            .members
            .contains(&bob.id)
    );
    assert!(s.state.load(profile().id).await.unwrap().retry.is_empty());
}

#[tokio::test]
async fn transient_errors_are_retried_with_backoff() {
    let s = setup();
    s.target.fail(Fault {
        on: "u1".into(),
        kind: ErrorKind::RateLimited,
        times: 2,
        retry_after: Some(Duration::from_millis(10)),
    });
    let report = run(&s).await;
    assert_eq!(report.outcome, RunOutcome::Succeeded);
    let ann = report
        .outcomes
        .iter()
        .find(|o| o.link.external.0 == "u1" && o.action == "create")
        .unwrap();
    assert_eq!(ann.attempts, 3);
    let creates_of_ann = s
        .target
        .log()
        .iter()
        .filter(|op| matches!(op, idsync_core::TargetOp::Create { link, .. } if link.external.0 == "u1"))
        .count();
    assert_eq!(creates_of_ann, 1, "failed attempts did not reach the target");
}

#[tokio::test]
async fn an_authentication_error_stops_the_run_at_once() {
    let s = setup_with(directory(), MemoryTarget::new(), profile());
    s.target.fail(Fault {
        on: "u1".into(),
        kind: ErrorKind::Auth,
        times: u32::MAX,
        retry_after: None,
    });
    let s = Setup {
        engine: Engine::new(
            profile(),
            Arc::new(s.source.clone()),
            Arc::new(s.target.clone()),
            s.state.clone(),
        )
        .with_options(EngineOptions {
            concurrency: 1,
            ..EngineOptions::default()
        }),
        ..s
    };
    let report = run(&s).await;
    let RunOutcome::Stopped { error } = &report.outcome else {
        panic!("{:?}", report.outcome)
    };
    assert!(error.contains("authentication failed"), "{error}");
    let attempted = report
        .outcomes
        .iter()
        .filter(|o| !matches!(o.status, OpStatus::Skipped { .. }))
        .count();
    assert_eq!(attempted, 1, "nothing after the auth failure was attempted");
    assert!(
        report
            .outcomes
            .iter()
            .any(|o| matches!(&o.status, OpStatus::Skipped { reason } if reason.starts_with("run stopped")))
    );
    assert!(!report.cursor_saved);
    assert_eq!(s.state.load(profile().id).await.unwrap().cursor, None);
}

#[tokio::test]
async fn a_delta_run_sees_modifies_deletes_and_membership_changes() {
    let s = setup();
    run(&s).await;
    s.source.modify("u1", |o| {
        o.attributes
            .insert("department".into(), vec![idsync_core::AttrValue::Text("IT".into())]);
    });
    s.source.delete("u3");
    s.source.modify("g1", |g| g.members.retain(|m| m.0 != "u2"));
    s.source.upsert(user("u4", "Dee", "IT"));
    let report = run(&s).await;
    assert_eq!(report.plan.mode, ReadMode::Delta);
    let actions: Vec<_> = report
        .plan
        .operations
        .iter()
        .map(|o| (o.action.name(), o.link.external.0.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("create", "u4"),
            ("update", "u1"),
            ("remove_member", "g1"),
            ("disable", "u3")
        ]
    );
    assert_eq!(report.outcome, RunOutcome::Succeeded);
    assert!(!s.target.linked_to(profile().id, "u3").unwrap().enabled);
    assert_eq!(s.target.linked_to(profile().id, "u1").unwrap().fields["dept"], "IT");
}

#[tokio::test]
async fn a_read_cut_short_deprovisions_nothing_and_keeps_no_cursor() {
    let s = setup();
    run(&s).await;
    s.source.interrupt_after(Some(1));
    let report = s
        .engine
        .run(&RunOptions {
            full: true,
            ..RunOptions::default()
        })
        .await
        .unwrap();
    assert!(!report.plan.completeness.is_complete());
    assert_eq!(report.plan.counts.disable, 0);
    assert!(report.plan.findings.iter().any(|f| f.kind == FindingKind::PartialRead));
    assert!(s.target.accounts().iter().all(|a| a.enabled));
    assert_eq!(
        s.state.load(profile().id).await.unwrap().cursor,
        None,
        "the next run reads in full again"
    );
    s.source.interrupt_after(None);
    let report = run(&s).await;
    assert_eq!(report.plan.mode, ReadMode::Full);
    assert!(report.plan.is_empty());
}

#[tokio::test]
async fn an_unreadable_object_is_named_and_the_others_still_sync() {
    let s = setup();
    run(&s).await;
    s.source.make_unreadable("u2", true);
    s.source.modify("u1", |o| o.enabled = false);
    let report = s
        .engine
        .run(&RunOptions {
            full: true,
            ..RunOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(report.read_errors.len(), 1);
    assert!(
        report.read_errors[0].contains("[u2]") && report.read_errors[0].contains("field \"attributes\""),
        "{:?}",
        report.read_errors
    );
    assert!(
        !s.target.linked_to(profile().id, "u1").unwrap().enabled,
        "the other change still went through"
    );
    assert!(
        s.target.linked_to(profile().id, "u2").unwrap().enabled,
        "u2's account is not deprovisioned"
    );
    assert!(!report.cursor_saved);
}

#[tokio::test]
async fn a_dry_run_applies_and_saves_nothing() {
    let s = setup();
    let report = s
        .engine
        .run(&RunOptions {
            dry_run: true,
            ..RunOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::DryRun);
    assert_eq!(report.plan.counts.create, 4);
    assert!(s.target.accounts().is_empty());
    assert_eq!(s.state.load(profile().id).await.unwrap(), Default::default());
}

#[tokio::test]
async fn the_threshold_holds_mass_deprovisions_until_confirmed() {
    let mut p = profile();
    p.rules.threshold.max_count = Some(1);
    let s = setup_with(directory(), MemoryTarget::new(), p);
    run(&s).await;
    for id in ["u1", "u2", "u3"] {
        s.source.delete(id);
    }
    let report = run(&s).await;
    assert_eq!(report.plan.counts.held, 3);
    assert!(
        report
            .plan
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::ThresholdExceeded)
    );
    assert!(s.target.accounts().iter().all(|a| a.enabled), "nothing was disabled");
    let report = s
        .engine
        .run(&RunOptions {
            confirm: true,
            ..RunOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(report.plan.counts.disable, 3, "{}", report.plan);
    assert_eq!(report.outcome, RunOutcome::Succeeded);
    assert_eq!(
        s.target
            .accounts()
            .iter()
            .filter(|a| a.kind == ObjectKind::User && !a.enabled)
            .count(),
        3
    );
}

#[tokio::test]
async fn a_target_veto_keeps_the_account_and_says_why() {
    let s = setup();
    run(&s).await;
    let bob = s.target.linked_to(profile().id, "u2").unwrap();
    s.target.veto(&bob.id, "2 open tickets");
    s.source.delete("u2");
    let report = run(&s).await;
    assert!(report.plan.operations.iter().all(|o| !o.action.is_deprovision()));
    let veto = report
        .plan
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Vetoed)
        .unwrap();
    assert!(veto.message.contains("2 open tickets"));
    assert!(s.target.account(&bob.id).unwrap().enabled);
}

#[tokio::test]
async fn just_in_time_sync_provisions_one_user() {
    let s = setup();
    let report = s.engine.sync_one(&"u3".into(), &RunOptions::default()).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Succeeded);
    assert_eq!(s.target.accounts().len(), 1);
    assert_eq!(
        s.target.linked_to(profile().id, "u3").unwrap().fields["name"],
        "Cem Test"
    );
}

#[tokio::test]
async fn an_expired_cursor_falls_back_to_a_full_read() {
    let s = setup();
    run(&s).await;
    s.source.delete("u3");
    s.source.compact();
    let report = run(&s).await;
    assert_eq!(report.plan.mode, ReadMode::Full);
    assert_eq!(report.plan.counts.disable, 1);
}

#[tokio::test]
async fn a_chosen_part_of_a_plan_is_applied_and_the_rest_waits() {
    let s = setup();
    let prepared = s.engine.prepare(&RunOptions::default()).await.unwrap();
    let ann = prepared
        .plan
        .operations
        .iter()
        .find(|o| o.link.external.0 == "u1")
        .unwrap()
        .id;
    let report = s
        .engine
        .apply(prepared.select(&[ann].into_iter().collect()))
        .await
        .unwrap();
    assert_eq!(report.applied(), 1);
    assert_eq!(s.target.accounts().len(), 1);
    assert!(!s.state.load(profile().id).await.unwrap().retry.is_empty());
    let report = run(&s).await;
    assert_eq!(report.plan.counts.create, 3);
}

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Observer for Recorder {
    fn on_event(&self, event: &Event<'_>) {
        let name = match event {
            Event::RunStarted { .. } => "started",
            Event::SourceRead { .. } => "read",
            Event::Planned { .. } => "planned",
            Event::OperationApplied { .. } => "applied",
            Event::OperationFailed { .. } => "failed",
            Event::RunFinished { .. } => "finished",
            Event::RunFailed { .. } => "run failed",
            _ => "other",
        };
        self.0.lock().unwrap().push(name.to_owned());
    }
}

#[tokio::test]
async fn observers_see_the_run() {
    let s = setup();
    s.target.fail(Fault {
        on: "u3".into(),
        kind: ErrorKind::InvalidData,
        times: 1,
        retry_after: None,
    });
    let recorder = Arc::new(Recorder::default());
    let engine = Engine::new(
        profile(),
        Arc::new(s.source.clone()),
        Arc::new(s.target.clone()),
        s.state.clone(),
    )
    .observe(recorder.clone());
    engine.run(&RunOptions::default()).await.unwrap();
    let events = recorder.0.lock().unwrap().clone();
    assert_eq!(&events[..3], ["started", "read", "planned"]);
    assert_eq!(events.iter().filter(|e| *e == "applied").count(), 5);
    assert_eq!(events.iter().filter(|e| *e == "failed").count(), 1);
    assert_eq!(events.last().map(String::as_str), Some("finished"));
}

#[tokio::test]
async fn a_plan_saved_as_json_is_applied_later_exactly_as_reviewed() {
    let s = setup();
    let prepared = s.engine.prepare(&RunOptions::default()).await.unwrap();
    let saved = prepared.plan.to_json();
    // Meanwhile the directory changes; the reviewed plan is still what is applied.
    s.source.upsert(user("u9", "Late", "IT"));
    let plan: idsync_core::Plan = serde_json::from_str(&saved).unwrap();
    let only: BTreeSet<_> = plan
        .operations
        .iter()
        .filter(|o| o.action.name() == "create")
        .map(|o| o.id)
        .collect();
    let report = s
        .engine
        .apply(idsync_core::Prepared::reviewed(plan).select(&only))
        .await
        .unwrap();
    assert_eq!(report.applied(), 4);
    assert!(s.target.linked_to(profile().id, "u9").is_none());
    assert!(
        s.target.linked_to(profile().id, "g1").unwrap().members.is_empty(),
        "memberships were not chosen"
    );
    assert_eq!(
        s.state.load(profile().id).await.unwrap().cursor,
        None,
        "a reviewed plan never moves the cursor"
    );
}

#[tokio::test]
async fn a_changed_scope_or_mapping_reads_in_full_not_a_delta() {
    let s = setup();
    run(&s).await;
    assert_eq!(run(&s).await.plan.mode, ReadMode::Delta);
    // The same profile, narrowed to Sales: the delta would show nothing.
    let mut narrowed = profile();
    narrowed.scope = serde_json::from_value(serde_json::json!({
        "attributes": [{"attribute": "department", "any_of": ["Sales"]}]
    }))
    .unwrap();
    let engine = Engine::new(
        narrowed.clone(),
        Arc::new(s.source.clone()),
        Arc::new(s.target.clone()),
        s.state.clone(),
    );
    let prepared = engine.prepare(&RunOptions::default()).await.unwrap();
    assert_eq!(prepared.plan.mode, ReadMode::Full, "{}", prepared.plan);
    assert_eq!(prepared.plan.counts.disable, 1, "{}", prepared.plan);
    engine.apply(prepared).await.unwrap();
    assert!(!s.target.linked_to(profile().id, "u3").unwrap().enabled);
    let again = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(again.plan.mode, ReadMode::Delta, "{}", again.plan);
    assert!(again.plan.is_empty(), "{}", again.plan);

    // A new mapped field: every account gets it, which only a full read shows.
    let mut remapped = narrowed;
    remapped
        .mapping
        .users
        .push(serde_json::from_value(serde_json::json!({"field": "first", "attribute": "givenName"})).unwrap());
    let engine = Engine::new(
        remapped,
        Arc::new(s.source.clone()),
        Arc::new(s.target.clone()),
        s.state.clone(),
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(
        (report.plan.mode, report.plan.counts.update),
        (ReadMode::Full, 2),
        "{}",
        report.plan
    );
}

/// The engine's futures are `Send`, so an application (or the worker) can
/// `tokio::spawn` them on a multi-threaded runtime: a run, a prepared plan
/// and its apply, and a sync of one object, each on a task of its own.
#[tokio::test(flavor = "multi_thread")]
async fn runs_are_spawned_as_tasks_of_their_own() {
    let Setup {
        source, target, engine, ..
    } = setup();
    let engine = Arc::new(engine);
    let e = engine.clone();
    let report = tokio::spawn(async move { e.run(&RunOptions::default()).await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((report.plan.counts.create, report.plan.counts.add_member), (4, 2));
    source.upsert(user("u4", "Dee", "IT"));
    source.upsert(user("u1", "Ann", "IT"));
    let e = engine.clone();
    let one = tokio::spawn(async move { e.sync_one(&ExternalId("u4".into()), &RunOptions::default()).await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.plan.counts.create, 1, "{}", one.plan);
    let e = engine.clone();
    let applied = tokio::spawn(async move {
        let prepared = e.prepare(&RunOptions::default()).await?;
        e.apply(prepared).await
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(applied.plan.counts.update, 1, "{}", applied.plan);
    let ann = target.linked_to(profile().id, "u1").unwrap();
    assert_eq!(ann.fields.get("dept").map(String::as_str), Some("IT"));
    assert!(target.linked_to(profile().id, "u4").is_some());
}
