//! A SCIM service that answers badly: every RFC 7644 §3.12 error type and
//! every error status mapped to the right kind (transient or permanent)
//! with the server's detail and the object in the message, and a listing
//! with malformed resources among good ones: the good ones arrive, each bad
//! one is an error naming it (an `active` that is not a boolean included:
//! the read is then partial, nothing is disabled or deprovisioned). The
//! testkit's scripted HTTP server on loopback, no scim2-server needed.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::sync::Arc;

use futures::StreamExt;
use idsync_core::memory::MemoryTarget;
use idsync_core::plan::Action;
use idsync_core::{
    Completeness, Engine, ErrorKind, ExternalId, FieldChange, MemoryStateStore, ObjectKind, Profile, ProfileId,
    ReadItem, ReadMode, RunOptions, Scope, Source, Target, TargetId, TargetOp,
};
use idsync_http::Url;
use idsync_scim::{ScimConfig, ScimSource, ScimTarget};
use idsync_testkit::read::full_read;
use idsync_testkit::scripted::ScriptedServer;
use serde_json::json;

/// The testkit's scripted server as a SCIM service under `/v2`.
struct Scripted {
    server: ScriptedServer,
    base: String,
}

impl Scripted {
    async fn start() -> Scripted {
        let server = ScriptedServer::start().await.unwrap();
        let base = format!("{}/v2", server.base_url());
        Scripted { server, base }
    }

    fn answer(&self, status: u16, headers: &str, body: &str) {
        let headers: Vec<&str> = headers.lines().filter(|h| !h.is_empty()).collect();
        self.server.answer(status, &headers, body);
        self.server.clear_seen();
    }

    fn seen(&self) -> Vec<String> {
        self.server.seen()
    }

    fn config(&self) -> ScimConfig {
        let mut c = ScimConfig::new(Url::parse(&self.base).unwrap(), "token");
        c.discover = false;
        c.http.retry.max_retries = 0;
        c
    }
}

fn error_body(status: u16, scim_type: Option<&str>, detail: &str) -> String {
    let mut body = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": status.to_string(),
        "detail": detail,
    });
    if let Some(t) = scim_type {
        body["scimType"] = t.into();
    }
    body.to_string()
}

fn update(id: &str) -> TargetOp {
    TargetOp::Update {
        target: TargetId(id.into()),
        kind: ObjectKind::User,
        changes: vec![FieldChange {
            field: "title".into(),
            old: None,
            new: Some("Boss".into()),
        }],
    }
}

#[tokio::test]
async fn every_scim_error_type_and_status_maps_to_its_kind_with_the_detail_and_the_object() {
    let server = Scripted::start().await;
    let target = ScimTarget::connect(server.config()).await.unwrap();
    // (status, scimType, kind, transient)
    let cases: &[(u16, Option<&str>, ErrorKind, bool)] = &[
        (400, Some("invalidFilter"), ErrorKind::Protocol, false),
        (400, Some("tooMany"), ErrorKind::Protocol, false),
        (409, Some("uniqueness"), ErrorKind::AlreadyExists, false),
        (400, Some("mutability"), ErrorKind::InvalidData, false),
        (400, Some("invalidSyntax"), ErrorKind::InvalidData, false),
        (400, Some("invalidPath"), ErrorKind::InvalidData, false),
        (400, Some("noTarget"), ErrorKind::InvalidData, false),
        (400, Some("invalidValue"), ErrorKind::InvalidData, false),
        (400, Some("invalidVers"), ErrorKind::Protocol, false),
        (403, Some("sensitive"), ErrorKind::Protocol, false),
        (400, None, ErrorKind::InvalidData, false),
        (401, None, ErrorKind::Auth, false),
        (403, None, ErrorKind::PermissionDenied, false),
        (404, None, ErrorKind::NotFound, false),
        (409, None, ErrorKind::AlreadyExists, false),
        (412, None, ErrorKind::Conflict, false),
        (413, None, ErrorKind::InvalidData, false),
        (429, None, ErrorKind::RateLimited, true),
        (500, None, ErrorKind::Unavailable, true),
        (501, None, ErrorKind::Unsupported, false),
        // A scimType never hides an outage or a refused token.
        (503, Some("invalidValue"), ErrorKind::Unavailable, true),
        (401, Some("invalidValue"), ErrorKind::Auth, false),
    ];
    for &(status, scim_type, kind, transient) in cases {
        let detail = format!("detail for {status} {}", scim_type.unwrap_or("-"));
        server.answer(status, "", &error_body(status, scim_type, &detail));
        let err = target.apply(&update("u-42")).await.unwrap_err();
        let text = err.to_string();
        let case = format!("{status} {scim_type:?}: {text}");
        assert_eq!(err.kind(), kind, "{case}");
        assert_eq!(err.is_transient(), transient, "{case}");
        assert_eq!(err.stops_run(), kind == ErrorKind::Auth, "{case}");
        assert_eq!(err.object().map(|o| o.0.as_str()), Some("u-42"), "{case}");
        let scim = match scim_type {
            Some(t) => format!("HTTP {status} {t}: {detail}"),
            None => format!("HTTP {status}: {detail}"),
        };
        assert!(
            text.starts_with(&format!("scim apply.update [u-42]: {kind}: ")),
            "{case}"
        );
        assert!(text.contains(&scim), "the server's detail is in the message: {case}");
    }
}

#[tokio::test]
async fn the_exact_text_of_a_uniqueness_error_and_a_retry_after_hint() {
    let server = Scripted::start().await;
    let target = ScimTarget::connect(server.config()).await.unwrap();
    server.answer(
        409,
        "",
        &error_body(409, Some("uniqueness"), "userName \"ann\" is already taken"),
    );
    let err = target.apply(&update("u-7")).await.unwrap_err();
    let port_free = err.to_string().replace(&server.base, "BASE");
    assert_eq!(
        port_free,
        "scim apply.update [u-7]: already exists: update user: HTTP 409 uniqueness: userName \"ann\" is already taken (PATCH BASE/Users/u-7: HTTP 409 Conflict)"
    );
    assert_eq!(
        server.seen(),
        ["PATCH /v2/Users/u-7"],
        "a permanent error is not retried"
    );

    server.answer(429, "Retry-After: 30", &error_body(429, None, "slow down"));
    let err = target.apply(&update("u-7")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(30)));
    assert!(err.to_string().contains("HTTP 429: slow down"), "{err}");
}

#[tokio::test]
async fn an_error_body_that_is_not_scim_still_gives_the_status_and_a_forged_line_is_blanked() {
    let server = Scripted::start().await;
    let target = ScimTarget::connect(server.config()).await.unwrap();
    server.answer(400, "", "<html><body>Bad</body></html>");
    let err = target.apply(&update("u-1")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(
        err.to_string().ends_with("/v2/Users/u-1: HTTP 400 Bad Request"),
        "{err}"
    );

    server.answer(
        400,
        "",
        &error_body(400, Some("invalidValue"), "bad\nINFO forged log line"),
    );
    let err = target.apply(&update("u-1")).await.unwrap_err().to_string();
    assert!(err.contains("HTTP 400 invalidValue: bad INFO forged log line"), "{err}");
    assert!(!err.contains('\n'), "{err:?}");
}

#[tokio::test]
async fn malformed_resources_among_good_ones_are_errors_naming_them_and_the_good_ones_arrive() {
    let server = Scripted::start().await;
    let source = ScimSource::connect(server.config()).await.unwrap();
    let page = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 6, "startIndex": 1, "itemsPerPage": 6,
        "Resources": [
            {"id": "1", "userName": "ann", "active": true, "name": {"givenName": "Ann"}},
            "not an object",
            {"userName": "no.id", "active": true},
            {"id": 17, "userName": "numeric.id"},
            {"id": "", "displayName": "empty id"},
            {"id": "2", "userName": "bob", "active": "false", "emails": "not a list", "name": 5}
        ]
    });
    server.answer(200, "", &page.to_string());
    let scope = Scope {
        kinds: vec![ObjectKind::User],
        ..Scope::default()
    };
    let mut stream = source.read_full(&scope).await.unwrap();
    let (mut objects, mut errors, mut end) = (vec![], vec![], None);
    while let Some(item) = stream.next().await {
        match item {
            Ok(ReadItem::Object(o)) => objects.push(o),
            Ok(ReadItem::End { completeness, .. }) => end = Some(completeness),
            Ok(other) => panic!("an item this test does not know: {other:?}"),
            Err(e) => errors.push((e.kind(), e.to_string())),
        }
    }
    let ids: Vec<&str> = objects.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["1", "2"], "the good resources arrive");
    assert!(!objects[1].enabled, "active \"false\" as a string");
    assert_eq!(objects[1].first_text("userName"), Some("bob"));
    let texts: Vec<&str> = errors.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts,
        [
            "scim read_full [Users resource #2] field \"id\": protocol error: bad answer: a resource that is not a JSON object in Users",
            "scim read_full [userName \"no.id\"] field \"id\": protocol error: bad answer: a resource without a non-empty string id in Users",
            "scim read_full [userName \"numeric.id\"] field \"id\": protocol error: bad answer: a resource without a non-empty string id in Users",
            "scim read_full [displayName \"empty id\"] field \"id\": protocol error: bad answer: a resource without a non-empty string id in Users",
        ]
    );
    assert!(errors.iter().all(|(k, _)| *k == ErrorKind::Protocol));
    assert!(end.is_some(), "the read ends");
}

#[tokio::test]
async fn a_page_that_is_not_a_list_response_never_reads_as_an_empty_directory() {
    let server = Scripted::start().await;
    let source = ScimSource::connect(server.config()).await.unwrap();
    let scope = Scope {
        kinds: vec![ObjectKind::User],
        ..Scope::default()
    };
    for (body, why) in [
        ("{}", "neither Resources nor totalResults 0"),
        ("[]", "a list response is not a JSON object"),
        ("{\"totalResults\": 3, \"Resources\": {}}", "Resources is not a list"),
        (
            "{\"totalResults\": 1, \"Resources\": [{\"id\": \"1\"}",
            "bad response body",
        ),
    ] {
        server.answer(200, "", body);
        let mut stream = source.read_full(&scope).await.unwrap();
        let mut end = None;
        let mut objects = 0;
        while let Some(item) = stream.next().await {
            match item {
                Ok(ReadItem::End { completeness, .. }) => end = Some(completeness),
                Ok(ReadItem::Object(_)) => objects += 1,
                Ok(other) => panic!("an item this test does not know: {other:?}"),
                Err(e) => panic!("{body}: {e}"),
            }
        }
        assert_eq!(objects, 0, "{body}");
        match end {
            Some(idsync_core::Completeness::Partial { reason }) => {
                assert!(reason.contains(why), "{body}: {reason}");
            }
            other => panic!("{body}: a bad page must make the read partial, got {other:?}"),
        }
    }
    server.answer(200, "", "{\"totalResults\": 0}");
    let mut stream = source.read_full(&scope).await.unwrap();
    let last = {
        let mut last = None;
        while let Some(item) = stream.next().await {
            last = Some(item.unwrap());
        }
        last
    };
    assert!(
        matches!(last, Some(ReadItem::End { completeness, .. }) if completeness.is_complete()),
        "totalResults 0 without Resources is an empty list"
    );
}

/// A list response holding `resources`.
fn list(resources: serde_json::Value) -> String {
    let n = resources.as_array().map_or(0, Vec::len);
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": n, "startIndex": 1, "itemsPerPage": n, "Resources": resources
    })
    .to_string()
}

#[tokio::test]
async fn an_active_that_is_not_a_boolean_is_an_error_naming_the_resource_and_active() {
    let server = Scripted::start().await;
    let users = json!([
        {"id": "u1", "userName": "ann", "active": true},
        {"id": "u2", "userName": "bob", "active": "maybe"},
        {"id": "u3", "userName": "cem", "active": 0},
        {"id": "u4", "userName": "dee", "active": "no"},
        {"id": "u5", "userName": "eve", "active": "False"},
        {"id": "u6", "userName": "fay"},
        {"id": "u7", "userName": "gus", "active": null},
        {"id": "u8", "userName": "hal", "active": {"value": false}},
        {"id": "u9", "userName": "ida", "active": "TRUE"},
    ]);
    server.server.route("/v2/Users", 200, &[], &list(users));
    server.server.route("/v2/Groups", 200, &[], &list(json!([])));
    let read = full_read(&ScimSource::connect(server.config()).await.unwrap()).await;
    let enabled: Vec<(String, bool)> = read.objects.iter().map(|o| (o.id.0.clone(), o.enabled)).collect();
    let expected = [("u1", true), ("u5", false), ("u6", true), ("u7", true), ("u9", true)];
    assert_eq!(
        enabled,
        expected.map(|(id, on)| (id.to_owned(), on)),
        "the other users read; absent and null are enabled"
    );
    assert_eq!(
        read.errors,
        [
            "scim read_full [u2] field \"active\": invalid data: \"maybe\" is not a boolean",
            "scim read_full [u3] field \"active\": invalid data: 0 is not a boolean",
            "scim read_full [u4] field \"active\": invalid data: \"no\" is not a boolean",
            "scim read_full [u8] field \"active\": invalid data: an object is not a boolean",
        ]
    );
}

#[tokio::test]
async fn read_one_and_the_target_refuse_an_active_that_is_not_a_boolean() {
    let server = Scripted::start().await;
    let profile = ProfileId(uuid::Uuid::nil());
    let bob = json!({"id": "u2", "userName": "bob", "active": "maybe", "externalId": format!("{}:guid-2", profile.0)});
    server.server.route("/v2/Users/u2", 200, &[], &bob.to_string());
    let source = ScimSource::connect(server.config()).await.unwrap();
    let e = source
        .read_one(&idsync_core::Scope::default(), &ExternalId("u2".into()))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "scim read_one [u2] field \"active\": invalid data: \"maybe\" is not a boolean"
    );
    assert_eq!(e.kind(), ErrorKind::InvalidData);
    assert!(!e.is_transient() && !e.stops_run());

    // Read as enabled (any string but "false" was), a disabled account would
    // never be enabled again; read as disabled, a leaver would stay enabled.
    server.server.route("/v2/Users", 200, &[], &list(json!([bob])));
    server.server.route("/v2/Groups", 200, &[], &list(json!([])));
    let target = ScimTarget::connect(server.config()).await.unwrap();
    let listed: Vec<String> = target
        .linked(profile)
        .await
        .unwrap()
        .map(|a| a.map(|a| a.id.0).unwrap_or_else(|e| e.to_string()))
        .collect()
        .await;
    assert_eq!(
        listed,
        ["scim linked [u2] field \"active\": invalid data: \"maybe\" is not a boolean"]
    );
}

/// The engine over the SCIM source: bob's `active` turns to "maybe" and
/// cem leaves. A delta run leaves bob alone and keeps its cursor; a full
/// run neither disables bob nor deprovisions cem (the read is partial).
/// Both reports name bob.
#[tokio::test]
async fn a_user_whose_active_reads_maybe_is_neither_disabled_nor_deprovisioned() {
    let server = Scripted::start().await;
    let user = |id: &str, name: &str, active: serde_json::Value| json!({"id": id, "userName": name, "active": active});
    server.server.route("/v2/Groups", 200, &[], &list(json!([])));
    server.server.route(
        "/v2/Users",
        200,
        &[],
        &list(json!([
            user("u1", "ann", json!(true)),
            user("u2", "bob", json!(true)),
            user("u3", "cem", json!(true))
        ])),
    );
    let profile: Profile = serde_json::from_value(json!({
        "id": "55555555-5555-4555-8555-555555555557", "name": "scim active",
        "mapping": {"users": [{"field": "login", "attribute": "userName"}]}
    }))
    .unwrap();
    let app = MemoryTarget::new();
    let engine = Engine::new(
        profile,
        Arc::new(ScimSource::connect(server.config()).await.unwrap()),
        Arc::new(app.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    let first = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(first.applied(), 3, "{}", first.plan);

    server.server.route(
        "/v2/Users",
        200,
        &[],
        &list(json!([
            user("u1", "ann", json!(true)),
            user("u2", "bob", json!("maybe"))
        ])),
    );
    let bob = "scim read_delta [u2] field \"active\": invalid data: \"maybe\" is not a boolean";
    let delta = engine.run(&RunOptions::default()).await.unwrap();
    let full = engine
        .run(&RunOptions {
            full: true,
            ..RunOptions::default()
        })
        .await
        .unwrap();
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
        "{}\n{}",
        delta.plan,
        full.plan
    );
    for report in [&delta, &full] {
        assert!(
            !report
                .plan
                .operations
                .iter()
                .any(|op| matches!(op.action, Action::Disable | Action::Delete)),
            "{}",
            report.plan
        );
    }
    assert_eq!((delta.plan.mode, full.plan.mode), (ReadMode::Delta, ReadMode::Full));
    assert_eq!(delta.read_errors, [bob]);
    assert!(!delta.cursor_saved, "the delta is read again next time");
    assert!(
        matches!(full.plan.completeness, Completeness::Partial { .. }),
        "{:?}",
        full.plan.completeness
    );
    assert_eq!(full.read_errors, [bob.replace("read_delta", "read_full")]);
}
