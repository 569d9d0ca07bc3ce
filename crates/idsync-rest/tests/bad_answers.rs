//! Malformed JSON from a REST API for one object among good ones: the good
//! ones arrive, the bad one is an error naming it and the id pointer (or
//! the enabled pointer, for a flag that is not a boolean), and the read is
//! partial (nothing is deprovisioned); a page that is not JSON makes the
//! read partial too.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::sync::Arc;

use futures::StreamExt as _;
use idsync_core::memory::MemoryTarget;
use idsync_core::plan::{Action, FindingKind};
use idsync_core::{Completeness, Engine, ExternalId, MemoryStateStore, Profile, ProfileId, RunOptions, Source, Target};
use idsync_rest::{RestConfig, RestSource, RestTarget};
use idsync_testkit::read::full_read;
use idsync_testkit::scripted::ScriptedServer;
use serde_json::json;

const CONFIG: &str = r#"
base_url = "http://127.0.0.1:1"

[users]
id = "/id"
numeric_id = true
enabled = { pointer = "/active" }
link = "/ref"
fields = { login = "/login", email = "/email" }
list = { path = "/users", items = "/data", total = "/total", pagination = { style = "offset_limit", limit = 50 } }
get = { method = "GET", path = "/users/{id}" }
"#;

fn config(server: &ScriptedServer) -> RestConfig {
    let mut c = RestConfig::from_toml(CONFIG).unwrap();
    c.base_url = server.base_url().parse().unwrap();
    c.http.retry.max_retries = 0;
    c
}

fn source(server: &ScriptedServer) -> RestSource {
    RestSource::new(config(server)).unwrap()
}

/// A page of `users` in the configured envelope.
fn page(users: serde_json::Value) -> String {
    let total = users.as_array().map_or(0, Vec::len);
    json!({"total": total, "data": users}).to_string()
}

async fn read(source: &dyn Source) -> (Vec<String>, Vec<String>, Option<Completeness>) {
    let r = full_read(source).await;
    (r.ids(), r.errors, r.end)
}

#[tokio::test]
async fn a_malformed_object_among_good_ones_is_an_error_naming_it() {
    let server = ScriptedServer::start().await.unwrap();
    let page = json!({"total": 5, "data": [
        {"id": 1, "login": "ann", "email": "ann@acme.test", "active": true},
        {"login": "no.id", "email": "noid@acme.test"},
        "not an object",
        {"id": "", "email": "empty@acme.test"},
        {"id": 2, "login": ["not", "text"], "email": {"nested": 1}, "active": "yes"},
    ]});
    server.route("/users", 200, &[], &page.to_string());
    let (ids, errors, end) = read(&source(&server)).await;
    assert_eq!(ids, ["1", "2"], "the good objects arrive");
    assert_eq!(
        errors,
        [
            "rest read_full [user with email \"noid@acme.test\"] field \"/id\": invalid data: a listed user is unusable: no id at /id",
            "rest read_full [a user] field \"/id\": invalid data: a listed user is unusable: not a JSON object",
            "rest read_full [user with email \"empty@acme.test\"] field \"/id\": invalid data: a listed user is unusable: no id at /id",
        ]
    );
    assert!(
        matches!(end, Some(Completeness::Partial { .. })),
        "nothing may be deprovisioned: {end:?}"
    );
}

#[tokio::test]
async fn a_page_that_is_not_json_makes_the_read_partial() {
    let server = ScriptedServer::start().await.unwrap();
    server.route("/users", 200, &[], "{\"total\": 2, \"data\": [{\"id\": 1}");
    let (ids, errors, end) = read(&source(&server)).await;
    assert!(ids.is_empty() && errors.is_empty(), "{ids:?} {errors:?}");
    match end {
        Some(Completeness::Partial { reason }) => assert!(reason.contains("/users"), "{reason}"),
        other => panic!("a broken page must make the read partial: {other:?}"),
    }
}

#[tokio::test]
async fn an_enabled_flag_that_is_not_a_boolean_is_an_error_naming_the_object_and_the_pointer() {
    let server = ScriptedServer::start().await.unwrap();
    let users = json!([
        {"id": 1, "login": "ann", "active": true},
        {"id": 2, "login": "bob", "active": "maybe"},
        {"id": 3, "login": "cem", "active": 2},
        {"id": 4, "login": "dee", "active": ["true"]},
        {"id": 5, "login": "eve", "active": " No "},
        {"id": 6, "login": "fay"},
        {"id": 7, "login": "gus", "active": null},
        {"id": 8, "login": "hal", "active": "YES"},
        {"id": 9, "login": "ida", "active": 0},
        {"id": 10, "login": "jon", "active": {"value": true}},
        {"id": 11, "login": "kim", "active": ""},
    ]);
    server.route("/users", 200, &[], &page(users));
    let read = full_read(&source(&server)).await;
    let enabled: Vec<(String, bool)> = read.objects.iter().map(|o| (o.id.0.clone(), o.enabled)).collect();
    let expected = [
        ("1", true),
        ("5", false),
        ("6", true),
        ("7", true),
        ("8", true),
        ("9", false),
    ];
    assert_eq!(
        enabled,
        expected.map(|(id, on)| (id.to_owned(), on)),
        "the other users read, absent and null are enabled"
    );
    let words = "(true/false, yes/no, y/n, 1/0)";
    assert_eq!(
        read.errors,
        [
            format!("rest read_full [user 2] field \"/active\": invalid data: \"maybe\" is not a boolean {words}"),
            format!("rest read_full [user 3] field \"/active\": invalid data: 2 is not a boolean {words}"),
            format!("rest read_full [user 4] field \"/active\": invalid data: an array is not a boolean {words}"),
            format!("rest read_full [user 10] field \"/active\": invalid data: an object is not a boolean {words}"),
            format!("rest read_full [user 11] field \"/active\": invalid data: \"\" is not a boolean {words}"),
        ]
    );
    assert!(
        matches!(read.end, Some(Completeness::Partial { .. })),
        "nothing may be deprovisioned: {:?}",
        read.end
    );
}

#[tokio::test]
async fn read_one_and_the_target_refuse_an_enabled_flag_that_is_not_a_boolean() {
    let server = ScriptedServer::start().await.unwrap();
    let profile = ProfileId(uuid::Uuid::nil());
    let bob = json!({"id": 2, "login": "bob", "active": "maybe", "ref": format!("{}:guid-2", profile.0)});
    server.route("/users/2", 200, &[], &bob.to_string());
    let e = source(&server)
        .read_one(&idsync_core::Scope::default(), &ExternalId("2".into()))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "rest read_one [user 2] field \"/active\": invalid data: \"maybe\" is not a boolean (true/false, yes/no, y/n, 1/0)"
    );
    assert_eq!(e.kind(), idsync_core::ErrorKind::InvalidData);
    assert!(!e.is_transient() && !e.stops_run());

    // The target reads bob as neither enabled nor disabled: listing him fails,
    // so no run plans on a guess (read as disabled, a leaver would stay enabled).
    server.route("/users", 200, &[], &page(json!([bob])));
    let target = RestTarget::new(config(&server)).unwrap();
    let listed: Vec<String> = target
        .linked(profile)
        .await
        .unwrap()
        .map(|a| a.map(|a| a.id.0).unwrap_or_else(|e| e.to_string()))
        .collect()
        .await;
    assert_eq!(
        listed,
        [
            "rest linked [user 2] field \"/active\": invalid data: \"maybe\" is not a boolean (true/false, yes/no, y/n, 1/0)"
        ]
    );
}

/// The engine over the REST source: bob's flag turns to "maybe" and cem
/// leaves the listing. Bob is not disabled (a SourceDisabled on a guess),
/// cem is not deprovisioned (the read is partial), and the report names bob.
#[tokio::test]
async fn a_user_whose_flag_reads_maybe_is_neither_disabled_nor_deprovisioned() {
    let server = ScriptedServer::start().await.unwrap();
    let user = |id: u32, login: &str, active: serde_json::Value| json!({"id": id, "login": login, "active": active});
    server.route(
        "/users",
        200,
        &[],
        &page(json!([
            user(1, "ann", json!(true)),
            user(2, "bob", json!(true)),
            user(3, "cem", json!(true))
        ])),
    );
    let profile: Profile = serde_json::from_value(json!({
        "id": "55555555-5555-4555-8555-555555555555", "name": "rest flags",
        "mapping": {"users": [{"field": "login", "attribute": "login"}]}
    }))
    .unwrap();
    let app = MemoryTarget::new();
    let engine = Engine::new(
        profile,
        Arc::new(source(&server)),
        Arc::new(app.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    let first = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(first.applied(), 3, "{}", first.plan);

    server.route(
        "/users",
        200,
        &[],
        &page(json!([user(1, "ann", json!(true)), user(2, "bob", json!("maybe"))])),
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
        matches!(second.plan.completeness, Completeness::Partial { .. }),
        "{:?}",
        second.plan.completeness
    );
    let disables: Vec<&Action> = second
        .plan
        .operations
        .iter()
        .map(|op| &op.action)
        .filter(|a| matches!(a, Action::Disable | Action::Delete))
        .collect();
    assert!(disables.is_empty(), "{}", second.plan);
    assert!(
        second.plan.findings.iter().any(|f| f.kind == FindingKind::PartialRead),
        "the spared deprovision is reported: {}",
        second.plan
    );
    assert_eq!(
        second.read_errors,
        [
            "rest read_full [user 2] field \"/active\": invalid data: \"maybe\" is not a boolean (true/false, yes/no, y/n, 1/0)"
        ]
    );
}
