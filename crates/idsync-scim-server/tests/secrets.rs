//! The SCIM bearer token never shows: not in logs at TRACE, not in the run
//! report (JSON and Debug), the plan, the errors of a refused token
//! (Display and Debug), nor the Debug of the configuration and the target.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::sync::Arc;

use idsync_core::memory::{MemorySource, MemoryTarget};
use idsync_core::{Engine, ErrorKind, MemoryStateStore, ObjectKind, Profile, RunOptions, SourceObject};
use idsync_scim::{ScimConfig, ScimTarget};
use idsync_scim_server::ScimServer;
use idsync_testkit::logs::{self, assert_no_secret};
use serde_json::json;

/// The token the app accepts, and one it refuses: neither may show.
const TOKEN: &str = "scim-bearer-7Hq2xVw9pLk4";
const WRONG: &str = "scim-bearer-wrong-Rt5mN8";

async fn app(target: &MemoryTarget) -> (String, tokio::task::JoinHandle<()>) {
    let profile: Profile =
        serde_json::from_value(json!({"id": "55555555-5555-4555-8555-555555555555", "name": "IdP → app"})).unwrap();
    let router = ScimServer::new(profile, Arc::new(target.clone()), TOKEN.to_owned().into()).router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, axum::Router::new().nest("/scim/v2", router)).await;
    });
    (format!("http://{addr}/scim/v2"), task)
}

fn config(base: &str, token: &str) -> ScimConfig {
    let mut c = ScimConfig::new(url::Url::parse(base).unwrap(), token);
    c.http.retry.max_retries = 0;
    c
}

fn engine(target: ScimTarget) -> Engine {
    let profile: Profile = serde_json::from_value(json!({
        "id": "66666666-6666-4666-8666-666666666666", "name": "directory → SCIM app",
        "mapping": {"users": [{"field": "userName", "attribute": "uid"}]}
    }))
    .unwrap();
    let source = MemorySource::with_objects([SourceObject::new("u1", ObjectKind::User).with("uid", "ann")]);
    Engine::new(
        profile,
        Arc::new(source),
        Arc::new(target),
        Arc::new(MemoryStateStore::new()),
    )
}

#[tokio::test]
async fn the_bearer_token_stays_out_of_logs_reports_plans_and_debug() {
    let logs = logs::capture();
    let app_target = MemoryTarget::new();
    let (base, _server) = app(&app_target).await;
    let c = config(&base, TOKEN);
    let config_debug = format!("{c:?}");
    let target = ScimTarget::connect(c).await.unwrap();
    let target_debug = format!("{target:?}");
    let engine = engine(target);
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(app_target.accounts().len(), 1, "the sync ran: {}", report.to_json());
    assert!(logs.text().contains("http request"), "requests are traced");
    assert_no_secret(
        TOKEN,
        &[
            ("logs", logs.text()),
            ("report JSON", report.to_json()),
            ("report Debug", format!("{report:?}")),
            ("plan", report.plan.to_string()),
            ("plan JSON", report.plan.to_json()),
            ("config Debug", config_debug),
            ("target Debug", target_debug),
        ],
    );
}

#[tokio::test]
async fn a_refused_token_is_an_auth_error_that_shows_no_token() {
    let logs = logs::capture();
    let app_target = MemoryTarget::new();
    let (base, _server) = app(&app_target).await;
    let e = ScimTarget::connect(config(&base, WRONG)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    let run = engine(ScimTarget::new(config(&base, WRONG)).unwrap())
        .run(&RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(run.kind(), ErrorKind::Auth, "{run}");
    assert!(app_target.accounts().is_empty());
    for secret in [TOKEN, WRONG] {
        assert_no_secret(
            secret,
            &[
                ("logs", logs.text()),
                ("error Display", e.to_string()),
                ("error Debug", format!("{e:?}")),
                ("run error Display", run.to_string()),
                ("run error Debug", format!("{run:?}")),
            ],
        );
    }
}
