//! The SCIM service provider (`idsync-scim-server`) against the `scim2`
//! compliance checker (scim2-cli / scim2-tester, PyPI): every check must
//! pass, over a `MemoryTarget` and over the SQL target on SQLite. Skipped
//! when the checker is not installed, unless IDSYNC_REQUIRE_SERVERS=1
//! (`bash .ci/install` puts it into target/testkit-venv).
#![expect(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failure fails the test"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use idsync::Profile;
use idsync::memory::MemoryTarget;
use idsync::scim_server::{MemoryHistory, ScimServer};
use idsync_testkit::{StartError, gate};

const TOKEN: &str = "conformance-t0ken";

/// The `scim2` binary: on `PATH`, else in the workspace's venv.
fn checker() -> Result<PathBuf, StartError> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("scim2");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/testkit-venv/bin/scim2");
    if venv.is_file() {
        Ok(venv)
    } else {
        Err(StartError(
            "scim2 (scim2-cli) is not on PATH nor in target/testkit-venv (run `bash .ci/install`)".into(),
        ))
    }
}

/// The profile of the example service provider (examples/scim_server.rs):
/// SCIM attributes mapped onto the SQL target's default columns.
fn sql_profile() -> Profile {
    serde_json::from_value(serde_json::json!({
        "id": "33333333-3333-4333-8333-333333333334",
        "name": "conformance over SQLite",
        "mapping": {
            "users": [
                {"field": "userName", "attribute": "userName"},
                {"field": "email", "attribute": "emails[type eq \"work\"].value"},
                {"field": "givenName", "attribute": "name.givenName"},
                {"field": "familyName", "attribute": "name.familyName"},
                {"field": "displayName", "attribute": "displayName"}
            ],
            "groups": [{"field": "name", "attribute": "displayName"}]
        }
    }))
    .unwrap()
}

/// Runs the checker against `server`; panics with every failed check.
async fn check(scim2: &std::path::Path, server: ScimServer) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(server.serve(listener));
    let run = tokio::process::Command::new(scim2)
        .args(["--url", &format!("http://{addr}"), "test", "--verbose"])
        // the token goes by the environment, not the command line
        .env("SCIM_CLI_HEADERS", format!("Authorization: Bearer {TOKEN}"))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the checker finished within 5 minutes")
        .expect("the checker runs");
    task.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let results: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_uppercase()) && !l.starts_with("Performing"))
        .collect();
    let failed: Vec<&str> = results.iter().copied().filter(|l| !l.starts_with("SUCCESS")).collect();
    assert!(
        out.status.success() && failed.is_empty() && results.len() > 100,
        "the checker reported failures ({} results, exit {:?}):\n{}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        results.len(),
        out.status.code(),
        failed.join("\n"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scim2_checker_reports_no_failures() {
    let Some(scim2) = gate("scim2 (scim2-cli)", checker()) else {
        return;
    };
    let profile: Profile = serde_json::from_value(serde_json::json!({
        "id": "33333333-3333-4333-8333-333333333333",
        "name": "conformance"
    }))
    .unwrap();
    let app = MemoryTarget::new();
    let history = MemoryHistory::new();
    let server = ScimServer::new(profile, Arc::new(app.clone()), TOKEN.to_owned().into()).with_sink(history.clone());
    check(&scim2, server).await;
    // every request landed in the history, and the app holds what survived the checks
    assert!(history.records().len() > 100);
    assert!(history.records().iter().all(|r| r.status != 401));
    assert!(!app.log().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scim2_checker_reports_no_failures_over_the_sqlite_target() {
    let Some(scim2) = gate("scim2 (scim2-cli)", checker()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display());
    let app = idsync::sql::SqlTarget::connect(&url, idsync::sql::SqlTargetConfig::default())
        .await
        .unwrap();
    let history = MemoryHistory::new();
    let server = ScimServer::new(sql_profile(), Arc::new(app), TOKEN.to_owned().into()).with_sink(history.clone());
    check(&scim2, server).await;
    assert!(history.records().len() > 100);
}
