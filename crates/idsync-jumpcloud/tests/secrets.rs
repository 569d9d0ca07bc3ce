//! The JumpCloud API key (`x-api-key`) never shows: not in logs at TRACE of
//! a read and a push, not in the run reports (JSON and Debug), the plans,
//! the Debug of the configuration, source and target, nor in the errors of
//! a refused key (Display and Debug).
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::sync::Arc;

use idsync_core::memory::{MemorySource, MemoryTarget};
use idsync_core::{Engine, ErrorKind, MemoryStateStore, ObjectKind, Profile, RunOptions, RunReport, SourceObject};
use idsync_jumpcloud::{JumpCloudConfig, JumpCloudSource, JumpCloudTarget};
use idsync_testkit::jumpcloud::FakeJumpCloud;
use idsync_testkit::logs::{self, assert_no_secret};
use serde_json::json;

/// The key the fake accepts, and one it refuses: neither may show.
const KEY: &str = "jck1S3cr3tA9f4e7b2c8d1a6f3e9b5c2d7a4f8e1";
const WRONG: &str = "jck1Wr0ngB7c3d9e2f6a1b8c4d0e5f2a7b3c9d6";

fn config(jc: &FakeJumpCloud, key: &str) -> JumpCloudConfig {
    let mut c = JumpCloudConfig::new(jc.base_url().parse().unwrap(), key.to_owned().into());
    c.retry.max_retries = 0;
    c
}

fn profile(id: &str) -> Profile {
    serde_json::from_value(json!({
        "id": id, "name": "jumpcloud",
        "mapping": {"users": [{"field": "username", "attribute": "username"},
                              {"field": "email", "attribute": "email"}]}
    }))
    .unwrap()
}

/// JumpCloud → an app.
async fn read_into(source: JumpCloudSource, app: &MemoryTarget) -> idsync_core::Result<RunReport> {
    Engine::new(
        profile("77777777-7777-4777-8777-777777777771"),
        Arc::new(source),
        Arc::new(app.clone()),
        Arc::new(MemoryStateStore::new()),
    )
    .run(&RunOptions::default())
    .await
}

/// A directory → JumpCloud.
async fn push(target: JumpCloudTarget) -> idsync_core::Result<RunReport> {
    let directory = MemorySource::with_objects([SourceObject::new("guid-1", ObjectKind::User)
        .with("username", "cy")
        .with("email", "cy@example.org")]);
    Engine::new(
        profile("77777777-7777-4777-8777-777777777772"),
        Arc::new(directory),
        Arc::new(target),
        Arc::new(MemoryStateStore::new()),
    )
    .run(&RunOptions::default())
    .await
}

#[tokio::test]
async fn the_api_key_stays_out_of_logs_reports_plans_and_debug() {
    let logs = logs::capture();
    let jc = FakeJumpCloud::start(KEY).await.unwrap();
    jc.insert_user(json!({"username": "ann", "email": "ann@example.org"}));
    let c = config(&jc, KEY);
    let source = JumpCloudSource::new(c.clone()).unwrap();
    let target = JumpCloudTarget::new(c.clone()).unwrap();
    let debugs = [format!("{c:?}"), format!("{source:?}"), format!("{target:?}")];

    let app = MemoryTarget::new();
    let read = read_into(source, &app).await.unwrap();
    assert_eq!(app.accounts().len(), 1, "the read ran: {}", read.to_json());
    let pushed = push(target).await.unwrap();
    assert_eq!(jc.users().len(), 2, "the push ran: {}", pushed.to_json());
    assert!(logs.text().contains("http request"), "requests are traced");

    let mut channels = vec![("logs", logs.text())];
    for report in [&read, &pushed] {
        channels.extend([
            ("report JSON", report.to_json()),
            ("report Debug", format!("{report:?}")),
            ("plan", report.plan.to_string()),
        ]);
    }
    let [config_debug, source_debug, target_debug] = debugs;
    channels.extend([
        ("config Debug", config_debug),
        ("source Debug", source_debug),
        ("target Debug", target_debug),
    ]);
    assert_no_secret(KEY, &channels);
}

#[tokio::test]
async fn a_refused_key_is_an_auth_error_that_shows_no_key() {
    let logs = logs::capture();
    let jc = FakeJumpCloud::start(KEY).await.unwrap();
    let app = MemoryTarget::new();
    let read = read_into(JumpCloudSource::new(config(&jc, WRONG)).unwrap(), &app)
        .await
        .unwrap_err();
    assert_eq!(read.kind(), ErrorKind::Auth, "{read}");
    let pushed = push(JumpCloudTarget::new(config(&jc, WRONG)).unwrap())
        .await
        .unwrap_err();
    assert_eq!(pushed.kind(), ErrorKind::Auth, "{pushed}");
    assert!(jc.users().is_empty() && app.accounts().is_empty());
    for secret in [KEY, WRONG] {
        assert_no_secret(
            secret,
            &[
                ("logs", logs.text()),
                ("read error Display", read.to_string()),
                ("read error Debug", format!("{read:?}")),
                ("push error Display", pushed.to_string()),
                ("push error Debug", format!("{pushed:?}")),
            ],
        );
    }
}
