//! The shared behaviour suites against the fake JumpCloud.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

mod common;

use std::sync::Arc;

use idsync_core::{Fields, Profile, Scope};
use idsync_jumpcloud::{JumpCloudSource, JumpCloudTarget};
use idsync_testkit::behaviour::{source, target};
use serde_json::json;

fn user_fields(prefix: &str, n: u32) -> Fields {
    [
        ("username".to_owned(), format!("{prefix}-user{n}")),
        ("displayname".to_owned(), format!("User {n}")),
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
async fn the_jumpcloud_target_behaves() {
    let jc = common::fake().await;
    let t = JumpCloudTarget::new(common::config(&jc)).unwrap();
    let fx = target::Fixture {
        prefix: "jc".into(),
        user_fields,
        group_fields,
        correlation_field: "email".into(),
        updatable_field: "displayname".into(),
        profile: serde_json::from_value::<Profile>(json!({
            "id": "55555555-5555-4555-8555-555555555555",
            "name": "behaviour",
            "mapping": {
                "users": [
                    {"field": "username", "attribute": "uid"},
                    {"field": "displayname", "template": "{givenName} {sn}"},
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
async fn the_jumpcloud_source_behaves() {
    let jc = common::fake().await;
    let ann = jc.insert_user(json!({"username": "ann", "email": "ann@example.org"}));
    let bob =
        jc.insert_user(json!({"username": "bob", "email": "bob@example.org", "suspended": true, "state": "SUSPENDED"}));
    jc.insert_user(json!({"username": "cy", "email": "cy@example.org"}));
    let staff = jc.insert_group("staff");
    jc.add_member(&staff, &ann);
    jc.add_member(&staff, &bob);
    let s = JumpCloudSource::new(common::config(&jc)).unwrap();
    let fx = source::Fixture {
        scope: Scope::default(),
        name_attribute: "name".into(),
        users: vec!["ann".into(), "bob".into(), "cy".into()],
        groups: vec![("staff".into(), vec!["ann".into(), "bob".into()])],
        disabled: vec!["bob".into()],
    };
    source::run(&s, &fx).await.assert_ok();
}
