//! Malformed JSON from a JumpCloud server for one object among good ones:
//! the good ones arrive, the bad one is an error naming it and its `_id`
//! field, and the read is partial (nothing is deprovisioned). A page
//! without `results` is an error, never an empty directory.

use idsync_core::{Completeness, Scope, Source};
use idsync_jumpcloud::{JumpCloudConfig, JumpCloudSource};
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
        {"_id": "u2", "username": "bob", "suspended": "yes", "department": {"nested": true}},
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
