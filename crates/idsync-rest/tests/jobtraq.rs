//! examples/rest/jobtraq.toml end to end (from the in-memory directory into
//! the testkit server shaped like JobTraQ's contacts API; from a real slapd:
//! the facade's `tests/ldap_to_rest.rs`), and every paging and auth style,
//! faults and error texts.
#![expect(clippy::panic, clippy::unwrap_used, reason = "test code: a failure fails the test")]

mod common;

use std::sync::Arc;

use futures::StreamExt;
use idsync_core::memory::MemorySource;
use idsync_core::{
    Engine, ErrorKind, MemoryStateStore, ObjectKind, Profile, ReadItem, RunOptions, Scope, Source, SourceObject,
};
use idsync_rest::{AuthConfig, Pagination, RestConfig, RestSource, RestTarget};
use idsync_testkit::fault::Fault;
use idsync_testkit::rest::{Paging, RestServer, RestShape, ServerAuth};
use serde_json::json;

const EXAMPLE: &str = include_str!("../../../examples/rest/jobtraq.toml");

fn api_key() -> ServerAuth {
    ServerAuth::ApiKeyHeader {
        header: "x-api-key".into(),
        key: "change-me".into(),
    }
}

fn offset_limit() -> Paging {
    Paging::OffsetLimit {
        offset_param: "offset".into(),
        limit_param: "limit".into(),
    }
}

fn config(server: &RestServer) -> RestConfig {
    let mut c = common::config_for(EXAMPLE, server);
    c.users.list.pagination = Pagination::OffsetLimit {
        offset_param: "offset".into(),
        limit_param: "limit".into(),
        limit: 3,
        first: 0,
    };
    c
}

fn profile(users: serde_json::Value) -> Profile {
    serde_json::from_value(json!({
        "id": "22222222-3333-4444-8555-666666666666",
        "name": "AD to JobTraQ",
        "mapping": { "users": users },
        "rules": { "threshold": { "max_percent": null } }
    }))
    .unwrap()
}

fn memory_profile() -> Profile {
    profile(json!([
        {"field": "first_name", "attribute": "givenName"},
        {"field": "last_name", "attribute": "sn"},
        {"field": "email", "attribute": "mail", "transforms": ["lowercase"]},
        {"field": "department", "attribute": "department"}
    ]))
}

fn person(n: u32) -> SourceObject {
    SourceObject::new(format!("guid-{n}"), ObjectKind::User)
        .with("givenName", format!("Given{n}"))
        .with("sn", "Tester")
        .with("mail", format!("User{n}@acme.test"))
        .with("department", "Ops")
}

fn engine(source: MemorySource, target: RestTarget) -> Engine {
    Engine::new(
        memory_profile(),
        Arc::new(source),
        Arc::new(target),
        Arc::new(MemoryStateStore::new()),
    )
}

#[tokio::test]
async fn the_memory_directory_syncs_into_jobtraq_contacts() {
    let server = RestServer::start(RestShape::jobtraq(offset_limit(), api_key()))
        .await
        .unwrap();
    // A contact made by hand in JobTraQ is never touched.
    server.insert(
        "/contacts",
        json!({"email": "boss@acme.test", "first_name": "Boss", "active": true}),
    );
    let source = MemorySource::with_objects((1..=7).map(person));
    let engine = engine(source.clone(), RestTarget::new(config(&server)).unwrap());
    let first = engine.run(&RunOptions::default()).await.unwrap();
    assert!(first.failures().next().is_none(), "{}", first.to_json());
    assert_eq!(server.items("/contacts").len(), 8);
    let c = server.find("/contacts", "email", "user3@acme.test").unwrap();
    assert_eq!(
        (c["first_name"].as_str(), c["department"].as_str()),
        (Some("Given3"), Some("Ops"))
    );

    source.upsert(person(3).with("department", "ignored second value"));
    let mut moved = person(4);
    moved
        .attributes
        .insert("department".into(), vec![idsync_core::AttrValue::Text("Sales".into())]);
    source.upsert(moved);
    source.upsert(person(5).enabled(false));
    source.delete("guid-6");
    let second = engine.run(&RunOptions::default()).await.unwrap();
    assert!(second.failures().next().is_none(), "{}", second.to_json());
    assert_eq!(
        server.find("/contacts", "email", "user4@acme.test").unwrap()["department"],
        "Sales"
    );
    assert_eq!(
        server.find("/contacts", "email", "user5@acme.test").unwrap()["active"],
        false
    );
    assert_eq!(
        server.find("/contacts", "email", "user6@acme.test").unwrap()["active"],
        false
    );
    assert_ne!(
        server.find("/contacts", "email", "user7@acme.test").unwrap()["active"],
        false,
        "untouched: created without the flag, which reads as enabled"
    );
    assert!(
        server
            .find("/contacts", "email", "boss@acme.test")
            .unwrap()
            .get("external_ref")
            .is_none()
    );
    assert!(
        server.requests_to("PATCH", "/contacts/c6") >= 1,
        "disabled with the configured PATCH"
    );

    source.upsert(person(5));
    let third = engine.run(&RunOptions::default()).await.unwrap();
    assert!(third.failures().next().is_none(), "{}", third.to_json());
    assert_eq!(
        server.find("/contacts", "email", "user5@acme.test").unwrap()["active"],
        true
    );
    let fourth = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(fourth.applied(), 0, "{}", fourth.plan);
}

async fn read_all(source: &RestSource) -> Vec<SourceObject> {
    let mut s = source.read_full(&Scope::default()).await.unwrap();
    let mut out = Vec::new();
    let mut complete = false;
    while let Some(item) = s.next().await {
        match item.unwrap() {
            ReadItem::Object(o) => out.push(o),
            ReadItem::End { completeness, .. } => complete = completeness.is_complete(),
            other => panic!("a case this code does not know: {other:?}"),
        }
    }
    assert!(complete);
    out
}

/// Lists 7 contacts through `pagination` against a server paging as `paging`.
async fn pages(paging: Paging, pagination: Pagination, total: bool) -> (usize, usize) {
    let mut shape = RestShape::jobtraq(paging, api_key());
    if !total {
        shape.total_field = None;
    }
    let server = RestServer::start(shape).await.unwrap();
    for n in 1..=7 {
        server.insert("/contacts", json!({"email": format!("u{n}@acme.test"), "active": true}));
    }
    let mut c = common::config_for(EXAMPLE, &server);
    c.users.list.pagination = pagination;
    c.users.list.next_cursor = Some("/next".into());
    if !total {
        c.users.list.total = None;
    }
    let objects = read_all(&RestSource::new(c).unwrap()).await;
    let mut emails: Vec<String> = objects
        .iter()
        .filter_map(|o| o.first_text("email").map(str::to_owned))
        .collect();
    emails.sort();
    emails.dedup();
    (emails.len(), server.requests_to("GET", "/contacts"))
}

#[tokio::test]
async fn every_paging_style_reads_every_contact_once() {
    let ol = |limit| Pagination::OffsetLimit {
        offset_param: "offset".into(),
        limit_param: "limit".into(),
        limit,
        first: 0,
    };
    assert_eq!(
        pages(offset_limit(), ol(3), true).await,
        (7, 3),
        "offset/limit, by total"
    );
    assert_eq!(
        pages(offset_limit(), ol(3), false).await,
        (7, 3),
        "offset/limit, to a short page"
    );
    assert_eq!(
        pages(offset_limit(), ol(7), false).await,
        (7, 2),
        "offset/limit, an empty last page"
    );
    let pn = Pagination::PageNumber {
        page_param: "page".into(),
        size_param: Some("size".into()),
        size: 2,
        first: 1,
    };
    let page_number = Paging::PageNumber {
        page_param: "page".into(),
        size_param: "size".into(),
    };
    assert_eq!(
        pages(page_number.clone(), pn.clone(), true).await,
        (7, 4),
        "page number"
    );
    assert_eq!(pages(page_number, pn, false).await, (7, 4), "page number, no total");
    let cursor = Paging::Cursor {
        cursor_param: "cursor".into(),
        size_param: "limit".into(),
        next_field: "next".into(),
    };
    let cursor_paging = Pagination::Cursor {
        cursor_param: "cursor".into(),
        size_param: Some("limit".into()),
        size: 3,
    };
    assert_eq!(pages(cursor, cursor_paging, false).await, (7, 3), "cursor");
    let link = Paging::LinkHeader {
        page_param: "page".into(),
        size_param: "per_page".into(),
    };
    let link_paging = Pagination::LinkHeader {
        size_param: Some("per_page".into()),
        size: 2,
    };
    assert_eq!(pages(link, link_paging, false).await, (7, 4), "RFC 8288 Link header");
    assert_eq!(pages(Paging::None, Pagination::None, true).await, (7, 1), "no paging");
}

async fn count_with(server_auth: ServerAuth, auth: AuthConfig) -> idsync_core::Result<usize> {
    let server = RestServer::start(RestShape::jobtraq(offset_limit(), server_auth))
        .await
        .unwrap();
    server.insert("/contacts", json!({"email": "a@acme.test"}));
    let mut c = config(&server);
    c.http.auth = auth;
    let source = RestSource::new(c).unwrap();
    let mut s = source.read_full(&Scope::default()).await?;
    let mut n = 0;
    while let Some(item) = s.next().await {
        if let ReadItem::Object(_) = item? {
            n += 1;
        }
    }
    Ok(n)
}

#[tokio::test]
async fn every_auth_style_is_accepted_and_a_wrong_key_stops_the_run() {
    let key = |k: &str| AuthConfig::ApiKey {
        header: "x-api-key".into(),
        key: k.to_owned().into(),
    };
    assert_eq!(
        count_with(api_key(), key("change-me")).await.unwrap(),
        1,
        "API key header"
    );
    let e = count_with(api_key(), key("wrong")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert!(e.stops_run());
    assert!(e.to_string().contains("401"), "{e}");
    assert!(!e.to_string().contains("wrong"), "{e}");
    let query = ServerAuth::ApiKeyQuery {
        param: "api_key".into(),
        key: "q-key".into(),
    };
    let by_query = AuthConfig::ApiKeyQuery {
        param: "api_key".into(),
        key: "q-key".to_owned().into(),
    };
    assert_eq!(count_with(query, by_query).await.unwrap(), 1, "API key query");
    let basic = ServerAuth::Basic {
        username: "sync".into(),
        password: "pw".into(),
    };
    let by_basic = AuthConfig::Basic {
        username: "sync".into(),
        password: "pw".to_owned().into(),
    };
    assert_eq!(count_with(basic, by_basic).await.unwrap(), 1, "basic");
    assert_eq!(
        count_with(ServerAuth::Bearer("t0ken".into()), common::bearer())
            .await
            .unwrap(),
        1,
        "bearer"
    );
    // OAuth2 client credentials: see halopsa.rs.
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried() {
    let server = RestServer::start(RestShape::jobtraq(offset_limit(), api_key()))
        .await
        .unwrap();
    let source = MemorySource::with_objects((1..=3).map(person));
    let engine = engine(source.clone(), RestTarget::new(config(&server)).unwrap());
    server
        .faults()
        .fail_next(2, Fault::RateLimited { retry_after: Some(1) });
    let started = std::time::Instant::now();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert!(report.failures().next().is_none(), "{}", report.to_json());
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "Retry-After honoured"
    );
    source.upsert(person(4));
    server.faults().fail_every(2, Fault::Status(503));
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert!(report.failures().next().is_none(), "{}", report.to_json());
    assert_eq!(server.items("/contacts").len(), 4);
    assert!(server.faults().faulted() >= 3, "{}", server.faults().faulted());
}

#[tokio::test]
async fn a_refused_create_names_the_operation_the_object_and_the_status() {
    let server = RestServer::start(RestShape::jobtraq(offset_limit(), api_key()))
        .await
        .unwrap();
    // An unlinked contact already holds the email: the API refuses with 409.
    server.insert("/contacts", json!({"email": "user1@acme.test"}));
    let engine = engine(
        MemorySource::with_objects([person(1)]),
        RestTarget::new(config(&server)).unwrap(),
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    let failure = report.failures().next().expect("the create failed");
    let text = serde_json::to_string(failure).unwrap();
    assert!(text.contains("create user guid-1"), "{text}");
    assert!(text.contains("409"), "{text}");
}
