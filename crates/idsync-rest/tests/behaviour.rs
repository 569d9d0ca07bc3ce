//! The shared behaviour suites against the testkit REST server.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

mod common;

use std::sync::Arc;

use idsync_core::{Fields, Profile, Scope};
use idsync_rest::{RestSource, RestTarget};
use idsync_testkit::behaviour::{source, target};
use idsync_testkit::rest::RestServer;
use serde_json::json;

fn user_fields(prefix: &str, n: u32) -> Fields {
    [
        ("login".to_owned(), format!("{prefix}-user{n}")),
        ("name".to_owned(), format!("User {n}")),
        ("email".to_owned(), format!("{prefix}-user{n}@example.test")),
    ]
    .into_iter()
    .collect()
}

fn group_fields(prefix: &str, n: u32) -> Fields {
    [("name".to_owned(), format!("{prefix}-group{n}"))]
        .into_iter()
        .collect()
}

#[tokio::test]
async fn the_rest_target_behaves() {
    let server = RestServer::start(common::generic_shape()).await.unwrap();
    let t = RestTarget::new(common::generic(&server)).unwrap();
    let fx = target::Fixture {
        prefix: "rest".into(),
        user_fields,
        group_fields,
        correlation_field: "email".into(),
        updatable_field: "name".into(),
        profile: serde_json::from_value::<Profile>(json!({
            "id": "66666666-6666-4666-8666-666666666666",
            "name": "behaviour",
            "mapping": {
                "users": [
                    {"field": "login", "attribute": "uid"},
                    {"field": "name", "template": "{givenName} {sn}"},
                    {"field": "email", "attribute": "mail"}
                ],
                "groups": [{"field": "name", "attribute": "cn"}]
            }
        }))
        .unwrap(),
    };
    let report = target::run(Arc::new(t), &fx).await;
    report.assert_ok();
    assert!(report.skipped.is_empty(), "{report}");
}

#[tokio::test]
async fn the_rest_source_behaves() {
    let server = RestServer::start(common::generic_shape()).await.unwrap();
    let ann = server.insert(
        "/users",
        json!({"name": "ann", "email": "ann@example.org", "active": true}),
    );
    let bob = server.insert(
        "/users",
        json!({"name": "bob", "email": "bob@example.org", "active": false}),
    );
    server.insert(
        "/users",
        json!({"name": "cy", "email": "cy@example.org", "active": true}),
    );
    server.insert(
        "/groups",
        json!({"name": "staff", "members": [ann.parse::<u64>().unwrap(), bob.parse::<u64>().unwrap()]}),
    );
    let s = RestSource::new(common::generic(&server)).unwrap();
    let fx = source::Fixture {
        scope: Scope::default(),
        name_attribute: "name".into(),
        users: vec!["ann".into(), "bob".into(), "cy".into()],
        groups: vec![("staff".into(), vec!["ann".into(), "bob".into()])],
        disabled: vec!["bob".into()],
    };
    source::run(&s, &fx).await.assert_ok();
}
