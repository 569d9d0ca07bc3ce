//! The SCIM target end to end over HTTPS: a directory is pushed into idsync's
//! own SCIM service provider served with a certificate from a throwaway CA;
//! without that CA the target refuses the server and writes nothing.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::sync::Arc;

use idsync_core::memory::{MemorySource, MemoryTarget};
use idsync_core::{Engine, ErrorKind, MemoryStateStore, ObjectKind, Profile, RunOptions, SourceObject};
use idsync_scim::{ScimConfig, ScimTarget};
use idsync_scim_server::ScimServer;
use idsync_testkit::tls::HttpsServer;
use serde_json::json;

const TOKEN: &str = "tls-test-token";
const IDP: &str = "33333333-3333-4333-8333-333333333333";

/// idsync's SCIM service provider over `app`, on HTTPS.
async fn https_app(app: &MemoryTarget) -> (HttpsServer, Profile) {
    let profile: Profile =
        serde_json::from_value(json!({"id": "44444444-4444-4444-8444-444444444444", "name": "IdP → app"})).unwrap();
    let router = ScimServer::new(profile.clone(), Arc::new(app.clone()), TOKEN.to_owned().into()).router();
    let server = HttpsServer::start(axum::Router::new().nest("/scim/v2", router))
        .await
        .unwrap();
    (server, profile)
}

fn config(server: &HttpsServer) -> ScimConfig {
    ScimConfig::new(url::Url::parse(&format!("{}/scim/v2", server.url())).unwrap(), TOKEN)
}

fn idp_profile() -> Profile {
    serde_json::from_value(json!({
        "id": IDP, "name": "directory → SCIM app",
        "mapping": {
            "users": [{"field": "userName", "attribute": "uid"}, {"field": "displayName", "attribute": "cn"}],
            "groups": [{"field": "displayName", "attribute": "cn"}]
        }
    }))
    .unwrap()
}

fn directory() -> MemorySource {
    MemorySource::with_objects([
        SourceObject::new("u1", ObjectKind::User)
            .with("uid", "ann")
            .with("cn", "Ann Lee"),
        SourceObject::new("u2", ObjectKind::User)
            .with("uid", "bob")
            .with("cn", "Bob Ray"),
        SourceObject::new("g1", ObjectKind::Group)
            .with("cn", "sales")
            .with_member("u1")
            .with_member("u2"),
    ])
}

#[tokio::test]
async fn a_directory_syncs_into_a_scim_app_over_https_with_the_ca_file() {
    let app = MemoryTarget::new();
    let (server, app_profile) = https_app(&app).await;
    let mut c = config(&server);
    c.http.tls.ca_file = Some(server.ca_file());
    let target = ScimTarget::connect(c).await.unwrap();
    let engine = Engine::new(
        idp_profile(),
        Arc::new(directory()),
        Arc::new(target),
        Arc::new(MemoryStateStore::new()),
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.failures().count(), 0, "{}", report.to_json());
    assert_eq!(report.plan.counts.create, 3);

    let linked = |id: &str| app.linked_to(app_profile.id, &format!("{IDP}:{id}")).unwrap();
    let (ann, bob, sales) = (linked("u1"), linked("u2"), linked("g1"));
    assert_eq!(ann.fields.get("userName").map(String::as_str), Some("ann"));
    assert_eq!(bob.fields.get("displayName").map(String::as_str), Some("Bob Ray"));
    let mut members = sales.members.clone();
    members.sort();
    assert_eq!(members, vec![ann.id, bob.id]);
    // Converged: a second run over HTTPS plans nothing.
    assert!(engine.run(&RunOptions::default()).await.unwrap().plan.is_empty());
}

#[tokio::test]
async fn without_the_ca_the_scim_target_refuses_the_server_and_writes_nothing() {
    let app = MemoryTarget::new();
    let (server, _) = https_app(&app).await;
    let e = ScimTarget::connect(config(&server)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(e.stops_run(), "{e}");
    assert!(e.to_string().contains("TLS certificate was refused"), "{e}");
    assert_eq!(server.connections(), 1, "not retried");

    // A target built without discovery fails the run the same way.
    let engine = Engine::new(
        idp_profile(),
        Arc::new(directory()),
        Arc::new(ScimTarget::new(config(&server)).unwrap()),
        Arc::new(MemoryStateStore::new()),
    );
    let e = engine.run(&RunOptions::default()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(app.accounts().is_empty());
}
