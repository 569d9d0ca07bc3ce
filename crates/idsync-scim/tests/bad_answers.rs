//! A SCIM service that answers badly: every RFC 7644 §3.12 error type and
//! every error status mapped to the right kind (transient or permanent)
//! with the server's detail and the object in the message, and a listing
//! with malformed resources among good ones: the good ones arrive, each bad
//! one is an error naming it. The testkit's scripted HTTP server on
//! loopback, no scim2-server needed.

use futures::StreamExt;
use idsync_core::{ErrorKind, FieldChange, ObjectKind, ReadItem, Scope, Source, Target, TargetId, TargetOp};
use idsync_http::Url;
use idsync_scim::{ScimConfig, ScimSource, ScimTarget};
use idsync_testkit::scripted::ScriptedServer;

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
        assert_eq!(err.object_ref().map(|o| o.0.as_str()), Some("u-42"), "{case}");
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
    assert_eq!(err.retry_after_hint(), Some(std::time::Duration::from_secs(30)));
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
