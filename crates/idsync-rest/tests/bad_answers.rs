//! Malformed JSON from a REST API for one object among good ones: the good
//! ones arrive, the bad one is an error naming it and the id pointer, and
//! the read is partial (nothing is deprovisioned); a page that is not JSON
//! makes the read partial too.

use idsync_core::{Completeness, Source};
use idsync_rest::{RestConfig, RestSource};
use idsync_testkit::read::full_read;
use idsync_testkit::scripted::ScriptedServer;
use serde_json::json;

const CONFIG: &str = r#"
base_url = "http://127.0.0.1:1"

[users]
id = "/id"
numeric_id = true
enabled = { pointer = "/active" }
fields = { login = "/login", email = "/email" }
list = { path = "/users", items = "/data", total = "/total", pagination = { style = "offset_limit", limit = 50 } }
"#;

fn source(server: &ScriptedServer) -> RestSource {
    let mut c = RestConfig::from_toml(CONFIG).unwrap();
    c.base_url = server.base_url().parse().unwrap();
    c.http.retry.max_retries = 0;
    RestSource::new(c).unwrap()
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
        {"id": 2, "login": ["not", "text"], "email": {"nested": 1}, "active": "maybe"},
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
