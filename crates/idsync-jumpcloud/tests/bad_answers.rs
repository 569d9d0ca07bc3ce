//! Malformed JSON from a JumpCloud server for one object among good ones:
//! the good ones arrive, the bad one is an error naming it and its `_id`
//! field (or its `suspended` or `state`, when they mean nothing), and the
//! read is partial (nothing is deprovisioned). A page without `results` is
//! an error, never an empty directory.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::sync::Arc;

use futures::StreamExt as _;
use idsync_core::memory::MemoryTarget;
use idsync_core::plan::Action;
use idsync_core::{
    Completeness, Engine, ErrorKind, ExternalId, MemoryStateStore, Profile, ProfileId, RunOptions, Scope, Source,
    Target,
};
use idsync_jumpcloud::{JumpCloudConfig, JumpCloudSource, JumpCloudTarget};
use idsync_testkit::read::full_read;
use idsync_testkit::scripted::ScriptedServer;
use serde_json::json;

fn config(server: &ScriptedServer) -> JumpCloudConfig {
    let mut c = JumpCloudConfig::new(server.base_url().parse().unwrap(), "k".repeat(40).into());
    c.retry.max_retries = 0;
    c
}

async fn read(source: &dyn Source) -> (Vec<String>, Vec<String>, Option<Completeness>) {
    let r = full_read(source).await;
    (r.ids(), r.errors, r.end)
}

#[tokio::test]
async fn a_malformed_user_or_group_among_good_ones_is_an_error_naming_it() {
    let server = ScriptedServer::start().await.unwrap();
    let users = json!({"totalCount": 5, "results": [
        {"_id": "u1", "username": "ann", "email": "ann@acme.test", "activated": true},
        {"username": "no.id", "email": "noid@acme.test"},
        "not an object",
        {"_id": 42, "email": "numeric@acme.test"},
        {"_id": "u2", "username": "bob", "suspended": false, "department": {"nested": true}},
    ]});
    server.route("/api/systemusers", 200, &[], &users.to_string());
    let groups = json!([{"id": "g1", "name": "staff"}, {"name": "nameless"}]);
    server.route("/api/v2/usergroups", 200, &[], &groups.to_string());
    server.route(
        "/api/v2/usergroups/g1/members",
        200,
        &[],
        &json!([{"to": {"id": "u1", "type": "user"}}]).to_string(),
    );
    let (ids, errors, end) = read(&JumpCloudSource::new(config(&server)).unwrap()).await;
    assert_eq!(ids, ["u1", "u2", "g1"], "the good objects arrive");
    assert_eq!(
        errors,
        [
            "jumpcloud read_full [system user username \"no.id\"] field \"_id\": invalid data: a system user without an _id",
            "jumpcloud read_full [system user #3 of the listing] field \"_id\": invalid data: a system user that is not a JSON object",
            "jumpcloud read_full [system user email \"numeric@acme.test\"] field \"_id\": invalid data: a system user without an _id",
            "jumpcloud read_full [user group name \"nameless\"] field \"_id\": invalid data: a user group without an _id",
        ]
    );
    assert!(
        matches!(end, Some(Completeness::Partial { .. })),
        "nothing may be deprovisioned: {end:?}"
    );
}

#[tokio::test]
async fn a_page_without_results_or_broken_json_is_an_error_never_an_empty_directory() {
    let server = ScriptedServer::start().await.unwrap();
    server.route("/api/v2/usergroups", 200, &[], "[]");
    let source = JumpCloudSource::new(config(&server)).unwrap();
    for (body, why) in [
        ("{\"totalCount\": 3}", "missing field `results`"),
        ("{\"results\": {}}", "invalid type: map, expected a sequence"),
        ("{\"results\": [", "EOF while parsing"),
    ] {
        server.route("/api/systemusers", 200, &[], body);
        let e = source
            .read_full(&Scope::default())
            .await
            .err()
            .unwrap_or_else(|| panic!("{body} must fail the read"));
        assert!(e.to_string().contains(why), "{body}: {e}");
    }
}

/// A v1 list page of `users`.
fn users_page(users: serde_json::Value) -> String {
    let total = users.as_array().map_or(0, Vec::len);
    json!({"totalCount": total, "results": users}).to_string()
}

#[tokio::test]
async fn a_suspended_or_state_that_means_nothing_is_an_error_naming_the_user_and_the_field() {
    let server = ScriptedServer::start().await.unwrap();
    let users = json!([
        {"_id": "u1", "username": "ann", "state": "ACTIVATED", "suspended": false},
        {"_id": "u2", "username": "bob", "suspended": "yes"},
        {"_id": "u3", "username": "cem", "state": "PAUSED"},
        {"_id": "u4", "username": "dee", "state": "suspended"},
        {"_id": "u5", "username": "eve", "suspended": 1},
        {"_id": "u6", "username": "fay", "state": ["SUSPENDED"]},
        {"_id": "u7", "username": "gus", "state": "SUSPENDED", "suspended": true},
        {"_id": "u8", "username": "hal", "state": "STAGED"},
        {"_id": "u9", "username": "ida"},
        {"_id": "u10", "username": "jon", "state": null, "suspended": true},
    ]);
    server.route("/api/systemusers", 200, &[], &users_page(users));
    server.route("/api/v2/usergroups", 200, &[], "[]");
    let read = full_read(&JumpCloudSource::new(config(&server)).unwrap()).await;
    let enabled: Vec<(String, bool)> = read.objects.iter().map(|o| (o.id.0.clone(), o.enabled)).collect();
    let expected = [("u1", true), ("u7", false), ("u8", true), ("u9", true), ("u10", false)];
    assert_eq!(
        enabled,
        expected.map(|(id, on)| (id.to_owned(), on)),
        "the other users read"
    );
    assert_eq!(
        read.errors,
        [
            "jumpcloud read_full [system user u2] field \"suspended\": invalid data: \"yes\" is not a boolean",
            "jumpcloud read_full [system user u3] field \"state\": invalid data: \"PAUSED\" is not one of STAGED, ACTIVATED, SUSPENDED",
            "jumpcloud read_full [system user u4] field \"state\": invalid data: \"suspended\" is not one of STAGED, ACTIVATED, SUSPENDED",
            "jumpcloud read_full [system user u5] field \"suspended\": invalid data: 1 is not a boolean",
            "jumpcloud read_full [system user u6] field \"state\": invalid data: an array is not one of STAGED, ACTIVATED, SUSPENDED",
        ]
    );
    assert!(
        matches!(read.end, Some(Completeness::Partial { .. })),
        "nothing may be deprovisioned: {:?}",
        read.end
    );
}

#[tokio::test]
async fn read_one_and_the_target_refuse_a_suspended_that_is_not_a_boolean() {
    let server = ScriptedServer::start().await.unwrap();
    let bob = json!({"_id": "u2", "username": "bob", "suspended": "yes"});
    server.route("/api/systemusers/u2", 200, &[], &bob.to_string());
    let e = JumpCloudSource::new(config(&server))
        .unwrap()
        .read_one(&idsync_core::Scope::default(), &ExternalId("u2".into()))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "jumpcloud read_one [system user u2] field \"suspended\": invalid data: \"yes\" is not a boolean"
    );
    assert_eq!(e.kind(), ErrorKind::InvalidData);
    assert!(!e.is_transient() && !e.stops_run());

    server.route("/api/systemusers", 200, &[], &users_page(json!([bob])));
    server.route("/api/v2/usergroups", 200, &[], "[]");
    let target = JumpCloudTarget::new(config(&server)).unwrap();
    let listed: Vec<String> = match target.linked(ProfileId(uuid::Uuid::nil())).await {
        Ok(stream) => {
            stream
                .map(|a| a.map(|a| a.id.0).unwrap_or_else(|e| e.to_string()))
                .collect()
                .await
        }
        Err(e) => vec![e.to_string()],
    };
    assert_eq!(
        listed,
        ["jumpcloud linked [system user u2] field \"suspended\": invalid data: \"yes\" is not a boolean"]
    );
}

/// The engine over the JumpCloud source: bob's `state` turns to a value
/// JumpCloud does not have and cem leaves. Bob is not disabled, cem is not
/// deprovisioned (the read is partial), and the report names bob.
#[tokio::test]
async fn a_user_whose_state_means_nothing_is_neither_disabled_nor_deprovisioned() {
    let server = ScriptedServer::start().await.unwrap();
    let user = |id: &str, name: &str, state: &str| json!({"_id": id, "username": name, "state": state});
    server.route("/api/v2/usergroups", 200, &[], "[]");
    server.route(
        "/api/systemusers",
        200,
        &[],
        &users_page(json!([
            user("u1", "ann", "ACTIVATED"),
            user("u2", "bob", "ACTIVATED"),
            user("u3", "cem", "ACTIVATED")
        ])),
    );
    let profile: Profile = serde_json::from_value(json!({
        "id": "55555555-5555-4555-8555-555555555556", "name": "jumpcloud states",
        "mapping": {"users": [{"field": "login", "attribute": "username"}]}
    }))
    .unwrap();
    let app = MemoryTarget::new();
    let engine = Engine::new(
        profile,
        Arc::new(JumpCloudSource::new(config(&server)).unwrap()),
        Arc::new(app.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    let first = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(first.applied(), 3, "{}", first.plan);

    server.route(
        "/api/systemusers",
        200,
        &[],
        &users_page(json!([user("u1", "ann", "ACTIVATED"), user("u2", "bob", "LOCKED")])),
    );
    let second = engine.run(&RunOptions::default()).await.unwrap();
    let mut states: Vec<(String, bool)> = app
        .accounts()
        .iter()
        .map(|a| (a.fields["login"].clone(), a.enabled))
        .collect();
    states.sort();
    assert_eq!(
        states,
        [
            ("ann".to_owned(), true),
            ("bob".to_owned(), true),
            ("cem".to_owned(), true)
        ],
        "{}",
        second.plan
    );
    assert!(
        !second
            .plan
            .operations
            .iter()
            .any(|op| matches!(op.action, Action::Disable | Action::Delete)),
        "{}",
        second.plan
    );
    assert!(
        matches!(second.plan.completeness, Completeness::Partial { .. }),
        "{:?}",
        second.plan.completeness
    );
    assert_eq!(
        second.read_errors,
        [
            "jumpcloud read_full [system user u2] field \"state\": invalid data: \"LOCKED\" is not one of STAGED, ACTIVATED, SUSPENDED"
        ]
    );
}
