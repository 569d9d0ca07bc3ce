//! The behaviour suites against the in-memory backends (no server).
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::sync::Arc;

use idsync_core::memory::{MemorySource, MemoryTarget};
use idsync_core::{Fields, ObjectKind, Profile, Scope, SourceObject};
use idsync_testkit::behaviour::{source, target};

fn user_fields(prefix: &str, n: u32) -> Fields {
    [
        ("userName".to_owned(), format!("{prefix}-user{n}")),
        ("displayName".to_owned(), format!("User {n}")),
        ("email".to_owned(), format!("{prefix}-user{n}@example.test")),
    ]
    .into_iter()
    .collect()
}

fn group_fields(prefix: &str, n: u32) -> Fields {
    [("displayName".to_owned(), format!("{prefix}-group{n}"))]
        .into_iter()
        .collect()
}

fn fixture() -> target::Fixture {
    target::Fixture {
        prefix: format!("m{}", std::process::id()),
        user_fields,
        group_fields,
        correlation_field: "email".into(),
        updatable_field: "displayName".into(),
        profile: serde_json::from_value::<Profile>(serde_json::json!({
            "id": "55555555-5555-4555-8555-555555555555",
            "name": "behaviour",
            "mapping": {
                "users": [
                    {"field": "userName", "attribute": "uid"},
                    {"field": "displayName", "template": "{givenName} {sn}"},
                    {"field": "email", "attribute": "mail"}
                ],
                "groups": [{"field": "displayName", "attribute": "cn"}]
            }
        }))
        .unwrap(),
    }
}

#[tokio::test]
async fn the_memory_target_behaves() {
    let report = target::run(Arc::new(MemoryTarget::new()), &fixture()).await;
    report.assert_ok();
    assert!(report.skipped.is_empty(), "{report}");
}

#[tokio::test]
async fn a_target_without_groups_or_disable_skips_those_checks_and_passes_the_rest() {
    let t = MemoryTarget::with_capabilities(idsync_core::TargetCapabilities::default());
    let report = target::run(Arc::new(t), &fixture()).await;
    report.assert_ok();
    let skipped: Vec<_> = report.skipped.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        skipped,
        [
            "disable_keeps_the_account",
            "membership_changes_are_deltas",
            "delete_removes_the_account",
            "an_engine_run_disables_a_leaver"
        ]
    );
}

#[tokio::test]
async fn the_memory_source_behaves() {
    let user = |n: &str| SourceObject::new(format!("id-{n}"), ObjectKind::User).with("uid", n);
    let source = MemorySource::with_objects([
        user("ann"),
        user("bob").enabled(false),
        SourceObject::new("id-g", ObjectKind::Group)
            .with("uid", "staff")
            .with_member("id-ann"),
    ]);
    let fx = source::Fixture {
        scope: Scope::default(),
        name_attribute: "uid".into(),
        users: vec!["ann".into(), "bob".into()],
        groups: vec![("staff".into(), vec!["ann".into()])],
        disabled: vec!["bob".into()],
    };
    source::run(&source, &fx).await.assert_ok();
}

#[tokio::test]
async fn the_suite_catches_a_source_that_never_says_it_is_complete() {
    let source = MemorySource::with_objects([SourceObject::new("x", ObjectKind::User).with("uid", "x")]);
    source.interrupt_after(Some(1));
    let fx = source::Fixture {
        scope: Scope::default(),
        name_attribute: "uid".into(),
        users: vec!["x".into()],
        groups: vec![],
        disabled: vec![],
    };
    let report = source::run(&source, &fx).await;
    assert!(
        report
            .failed
            .iter()
            .any(|(n, e)| *n == "a_full_read_ends_once_and_complete" && e.contains("0 end items")),
        "{report}"
    );
}
