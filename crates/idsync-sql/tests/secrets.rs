//! A password in a PostgreSQL URL never shows: not in the errors of a
//! malformed URL, a closed port or a server that hangs up (Display and
//! Debug), not in logs at TRACE, and not in the Debug of a connected
//! target and state store nor in the report of a run into it.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::sync::Arc;

use idsync_core::memory::MemorySource;
use idsync_core::{Engine, ErrorKind, ObjectKind, Profile, RunOptions, SourceObject};
use idsync_sql::{SqlStateStore, SqlTarget, SqlTargetConfig};
use idsync_testkit::logs::{self, assert_no_secret};
use idsync_testkit::postgres::postgres;

const PASSWORD: &str = "pg-pw-Zt4sK8vQ";

/// The errors of both entry points, Display and Debug, as channels.
async fn connect_errors(url: &str) -> Vec<(&'static str, String)> {
    let (store, target) = tokio::join!(
        SqlStateStore::connect(url),
        SqlTarget::connect(url, SqlTargetConfig::default())
    );
    let store = store.unwrap_err();
    let target = target.unwrap_err();
    vec![
        ("state store error Display", store.to_string()),
        ("state store error Debug", format!("{store:?}")),
        ("target error Display", target.to_string()),
        ("target error Debug", format!("{target:?}")),
    ]
}

#[tokio::test]
async fn a_malformed_url_is_a_config_error_without_the_password() {
    let url = format!("postgres://idsync:{PASSWORD}@127.0.0.1:notaport/idsync");
    let e = SqlTarget::connect(&url, SqlTargetConfig::default()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_eq!(e.field(), Some("url"), "{e}");
    assert_no_secret(PASSWORD, &connect_errors(&url).await);
}

#[tokio::test]
async fn a_server_that_hangs_up_gives_errors_without_the_password() {
    let logs = logs::capture();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let url = format!("postgres://idsync:{PASSWORD}@127.0.0.1:{port}/idsync");
    let mut channels = connect_errors(&url).await;
    server.abort();
    channels.push(("logs", logs.text()));
    assert_no_secret(PASSWORD, &channels);
}

/// sqlx waits for a refused port to open until its acquire timeout (30 s).
#[tokio::test]
async fn a_closed_port_gives_unavailable_errors_without_the_password() {
    let logs = logs::capture();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://idsync:{PASSWORD}@127.0.0.1:{port}/idsync");
    let e = SqlStateStore::connect(&url).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let mut channels = vec![
        ("state store error Display", e.to_string()),
        ("state store error Debug", format!("{e:?}")),
    ];
    channels.push(("logs", logs.text()));
    assert_no_secret(PASSWORD, &channels);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connected_target_and_store_show_no_password() {
    let logs = logs::capture();
    let Some(pg) = postgres().await else {
        return;
    };
    // Trust authentication: the server accepts the URL without asking for
    // the password, which still sits in the connection options.
    let url = pg.url().replacen("postgres@", &format!("postgres:{PASSWORD}@"), 1);
    assert!(url.contains(PASSWORD));
    let target = SqlTarget::connect(&url, SqlTargetConfig::default()).await.unwrap();
    let store = SqlStateStore::connect(&url).await.unwrap();
    let debugs = [
        ("target Debug", format!("{target:?}")),
        ("state store Debug", format!("{store:?}")),
    ];
    let profile: Profile = serde_json::from_value(serde_json::json!({
        "id": "99999999-9999-4999-8999-999999999999", "name": "to sql",
        "mapping": {"users": [{"field": "userName", "attribute": "uid"}]}
    }))
    .unwrap();
    let directory = MemorySource::with_objects([SourceObject::new("u1", ObjectKind::User).with("uid", "ann")]);
    let report = Engine::new(profile, Arc::new(directory), Arc::new(target), Arc::new(store))
        .run(&RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.plan.counts.create, 1);
    assert_eq!(report.failures().count(), 0, "{}", report.to_json());
    let mut channels = vec![
        ("logs", logs.text()),
        ("report JSON", report.to_json()),
        ("report Debug", format!("{report:?}")),
        ("plan", report.plan.to_string()),
    ];
    channels.extend(debugs);
    assert_no_secret(PASSWORD, &channels);
}
