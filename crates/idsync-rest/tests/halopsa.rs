//! examples/rest/halopsa.toml end to end: from the in-memory directory into
//! the testkit server shaped like HaloPSA (page
//! number paging, OAuth2 client credentials, users POSTed as arrays, a
//! tickets lookup as the deprovision veto). From a real slapd: the
//! facade's `tests/ldap_to_rest.rs`.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

mod common;

use std::sync::Arc;

use idsync_core::memory::MemorySource;
use idsync_core::plan::FindingKind;
use idsync_core::{Engine, MemoryStateStore, ObjectKind, Profile, RunOptions, SourceObject};
use idsync_rest::{AuthConfig, RestConfig, RestTarget};
use idsync_testkit::rest::{RestServer, RestShape, ServerAuth};
use serde_json::json;

const EXAMPLE: &str = include_str!("../../../examples/rest/halopsa.toml");

fn oauth2() -> ServerAuth {
    ServerAuth::OAuth2 {
        client_id: "idsync".into(),
        client_secret: "change-me".into(),
    }
}

/// The example, pointed at the server, with small pages so paging is exercised.
fn config(server: &RestServer) -> RestConfig {
    let mut c = common::config_for(EXAMPLE, server);
    if let AuthConfig::Oauth2ClientCredentials { token_url, .. } = &mut c.http.auth {
        *token_url = server.token_url().parse().unwrap();
    }
    c.http.rate_limit = None;
    c.users.list.pagination = idsync_rest::Pagination::PageNumber {
        page_param: "page_no".into(),
        size_param: Some("page_size".into()),
        size: 2,
        first: 1,
    };
    c
}

fn profile(users: serde_json::Value) -> Profile {
    serde_json::from_value(json!({
        "id": "11111111-2222-4333-8444-555555555555",
        "name": "AD to HaloPSA",
        "mapping": { "users": users },
        "rules": { "threshold": { "max_percent": null } }
    }))
    .unwrap()
}

fn memory_profile() -> Profile {
    profile(json!([
        {"field": "name", "template": "{givenName} {sn}"},
        {"field": "emailaddress", "attribute": "mail"},
        {"field": "login", "attribute": "uid"},
        {"field": "site_name", "container": [
            {"under": "OU=Leeds,DC=acme,DC=test", "value": "Leeds"},
            {"under": "OU=York,DC=acme,DC=test", "value": "York"}
        ]},
        {"field": "site_id", "container": [
            {"under": "OU=Leeds,DC=acme,DC=test", "value": "11"},
            {"under": "OU=York,DC=acme,DC=test", "value": "12"}
        ]},
        {"field": "client_name", "constant": "Acme"}
    ]))
}

fn person(n: u32, ou: &str) -> SourceObject {
    SourceObject::new(format!("guid-{n}"), ObjectKind::User)
        .in_container(format!("OU={ou},DC=acme,DC=test"))
        .with("uid", format!("user{n}"))
        .with("givenName", format!("Given{n}"))
        .with("sn", "Tester")
        .with("mail", format!("user{n}@acme.test"))
}

#[tokio::test]
async fn the_memory_directory_syncs_into_halopsa_and_the_ticket_veto_holds() {
    let server = RestServer::start(RestShape::halopsa(oauth2())).await.unwrap();
    let source = MemorySource::with_objects(vec![
        person(1, "Leeds"),
        person(2, "Leeds"),
        person(3, "York"),
        person(4, "York"),
        person(5, "Leeds"),
    ]);
    let engine = Engine::new(
        memory_profile(),
        Arc::new(source.clone()),
        Arc::new(RestTarget::new(config(&server)).unwrap()),
        Arc::new(MemoryStateStore::new()),
    );
    let first = engine.run(&RunOptions::default()).await.unwrap();
    assert!(first.failures().next().is_none(), "{}", first.to_json());
    assert_eq!(first.plan.counts.create, 5);
    let users = server.items("/Users");
    assert_eq!(users.len(), 5);
    let u3 = server.find("/Users", "login", "user3").unwrap();
    assert_eq!(u3["name"], "Given3 Tester");
    assert_eq!(u3["site_name"], "York");
    assert_eq!(u3["site_id"], 12, "typed as a number");
    assert_eq!(u3["client_name"], "Acme");
    assert!(u3["other5"].as_str().unwrap().ends_with(":guid-3"));

    // Changed in the directory: updated (POST of the array with the id).
    source.upsert({
        let mut p = person(2, "York");
        p.attributes
            .insert("givenName".into(), vec![idsync_core::AttrValue::Text("Renamed".into())]);
        p
    });
    // Two leavers: user 4 has an open ticket, user 5 has none.
    let u4 = server.find("/Users", "login", "user4").unwrap();
    server.insert(
        "/Tickets",
        json!({"user_id": u4["id"].to_string(), "summary": "printer on fire"}),
    );
    source.delete("guid-4");
    source.delete("guid-5");
    let second = engine.run(&RunOptions::default()).await.unwrap();
    assert!(second.failures().next().is_none(), "{}", second.to_json());
    let u2 = server.find("/Users", "login", "user2").unwrap();
    assert_eq!(u2["name"], "Renamed Tester");
    assert_eq!(u2["site_name"], "York");
    assert_eq!(server.items("/Users").len(), 5, "nothing created twice");
    assert_eq!(server.find("/Users", "login", "user5").unwrap()["inactive"], true);
    let u4 = server.find("/Users", "login", "user4").unwrap();
    assert_ne!(u4["inactive"], true, "a user with tickets stays active");
    let veto = second
        .plan
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Vetoed)
        .expect("a veto finding");
    assert_eq!(veto.objects, vec!["guid-4".to_owned()]);
    assert!(
        veto.message.contains("1 open tickets exist for this user"),
        "{}",
        veto.message
    );

    // Converged: a third run changes nothing.
    let third = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(third.applied(), 0, "{}", third.plan);
}

#[tokio::test]
async fn oauth2_fetches_one_token_and_a_bad_secret_stops_the_run() {
    let server = RestServer::start(RestShape::halopsa(oauth2())).await.unwrap();
    let source = MemorySource::with_objects(vec![person(1, "Leeds"), person(2, "York"), person(3, "York")]);
    let engine = Engine::new(
        memory_profile(),
        Arc::new(source),
        Arc::new(RestTarget::new(config(&server)).unwrap()),
        Arc::new(MemoryStateStore::new()),
    );
    engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(server.requests_to("POST", "/oauth/token"), 1);

    let mut bad = config(&server);
    if let AuthConfig::Oauth2ClientCredentials { client_secret, .. } = &mut bad.http.auth {
        *client_secret = "wrong".to_owned().into();
    }
    let engine = Engine::new(
        memory_profile(),
        Arc::new(MemorySource::with_objects(vec![person(9, "Leeds")])),
        Arc::new(RestTarget::new(bad).unwrap()),
        Arc::new(MemoryStateStore::new()),
    );
    let e = engine.run(&RunOptions::default()).await.unwrap_err();
    assert!(e.stops_run(), "{e}");
}
