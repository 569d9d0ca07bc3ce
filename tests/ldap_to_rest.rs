//! A real slapd synced into the testkit REST server shaped like HaloPSA
//! (examples/rest/halopsa.toml) and like JobTraQ's contacts API
//! (examples/rest/jobtraq.toml). The same examples from the in-memory
//! directory: `crates/idsync-rest/tests/{halopsa,jobtraq}.rs`.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::sync::Arc;

use idsync::ldap::{Flavor, LdapConfig, LdapSource};
use idsync::plan::FindingKind;
use idsync::rest::{AuthConfig, Pagination, RestConfig, RestTarget};
use idsync::{Engine, MemoryStateStore, Profile, RunOptions};
use idsync_testkit::rest::{Paging, RestServer, RestShape, ServerAuth};
use idsync_testkit::slapd::{Slapd, SlapdOptions, slapd, user_uid};
use serde_json::json;

const HALOPSA: &str = include_str!("../examples/rest/halopsa.toml");
const JOBTRAQ: &str = include_str!("../examples/rest/jobtraq.toml");

/// `text` (TOML) pointed at `server`, with fast retries.
fn config_for(text: &str, server: &RestServer) -> RestConfig {
    let mut c = RestConfig::from_toml(text).unwrap();
    c.base_url = server.base_url().parse().unwrap();
    let retry = &mut c.http.retry;
    (
        retry.max_retries,
        retry.base_ms,
        retry.max_backoff_ms,
        retry.max_retry_after_ms,
    ) = (4, 5, 20, 5_000);
    c
}

fn profile(id: &str, name: &str, users: serde_json::Value) -> Profile {
    serde_json::from_value(json!({
        "id": id,
        "name": name,
        "mapping": { "users": users },
        "rules": { "threshold": { "max_percent": null } }
    }))
    .unwrap()
}

/// HaloPSA: page number paging, OAuth2 client credentials, a tickets lookup
/// as the deprovision veto.
/// An engine from slapd (generic flavour) into the REST API `rest`.
fn engine(s: &Slapd, profile: Profile, rest: RestConfig) -> Engine {
    let ldap = LdapConfig::new(
        &s.url(),
        &s.admin_dn(),
        s.admin_password(),
        s.base_dn(),
        Flavor::Generic,
    );
    Engine::new(
        profile,
        Arc::new(LdapSource::new(ldap)),
        Arc::new(RestTarget::new(rest).unwrap()),
        Arc::new(MemoryStateStore::new()),
    )
}

fn halopsa_shape() -> RestShape {
    RestShape::halopsa(ServerAuth::OAuth2 {
        client_id: "idsync".into(),
        client_secret: "change-me".into(),
    })
}

/// The HaloPSA example, pointed at the server, with small pages so paging is exercised.
fn halopsa_config(server: &RestServer) -> RestConfig {
    let mut c = config_for(HALOPSA, server);
    if let AuthConfig::Oauth2ClientCredentials { token_url, .. } = &mut c.http.auth {
        *token_url = server.token_url().parse().unwrap();
    }
    c.http.rate_limit = None;
    c.users.list.pagination = Pagination::PageNumber {
        page_param: "page_no".into(),
        size_param: Some("page_size".into()),
        size: 2,
        first: 1,
    };
    c
}

/// JobTraQ's contacts: string ids, offset/limit paging, an API key header.
fn jobtraq_shape() -> RestShape {
    RestShape::jobtraq(
        Paging::OffsetLimit {
            offset_param: "offset".into(),
            limit_param: "limit".into(),
        },
        ServerAuth::ApiKeyHeader {
            header: "x-api-key".into(),
            key: "change-me".into(),
        },
    )
}

fn jobtraq_config(server: &RestServer) -> RestConfig {
    let mut c = config_for(JOBTRAQ, server);
    c.users.list.pagination = Pagination::OffsetLimit {
        offset_param: "offset".into(),
        limit_param: "limit".into(),
        limit: 3,
        first: 0,
    };
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn slapd_users_sync_into_halopsa() {
    let Some(s) = slapd(SlapdOptions::with_users(7, 0)).await else {
        return;
    };
    let server = RestServer::start(halopsa_shape()).await.unwrap();
    let p = profile(
        "11111111-2222-4333-8444-555555555555",
        "AD to HaloPSA",
        json!([
            {"field": "name", "attribute": "cn"},
            {"field": "emailaddress", "attribute": "mail"},
            {"field": "login", "attribute": "uid"},
            {"field": "site_name", "container": [{"under": s.people_dn(), "value": "Head office"}]},
            {"field": "client_name", "constant": "Acme"}
        ]),
    );
    let engine = engine(&s, p, halopsa_config(&server));
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert!(report.failures().next().is_none(), "{}", report.to_json());
    assert_eq!(server.items("/Users").len(), 7);
    let u = server.find("/Users", "login", &user_uid(3)).unwrap();
    assert_eq!(u["site_name"], "Head office");
    assert_eq!(u["client_name"], "Acme");
    // A leaver with a ticket is kept, the report says why.
    let id = u["id"].to_string();
    server.insert("/Tickets", json!({"user_id": id, "summary": "laptop"}));
    s.ldapdelete(&format!("uid={},{}", user_uid(3), s.people_dn()))
        .await
        .unwrap();
    s.ldapdelete(&format!("uid={},{}", user_uid(4), s.people_dn()))
        .await
        .unwrap();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert!(report.failures().next().is_none(), "{}", report.to_json());
    assert_ne!(server.find("/Users", "login", &user_uid(3)).unwrap()["inactive"], true);
    assert_eq!(server.find("/Users", "login", &user_uid(4)).unwrap()["inactive"], true);
    assert!(
        report
            .plan
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::Vetoed && f.message.contains("open tickets"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slapd_users_sync_into_jobtraq_contacts() {
    let Some(s) = slapd(SlapdOptions::with_users(6, 0)).await else {
        return;
    };
    let server = RestServer::start(jobtraq_shape()).await.unwrap();
    let p = profile(
        "22222222-3333-4444-8555-666666666666",
        "AD to JobTraQ",
        json!([
            {"field": "first_name", "attribute": "givenName"},
            {"field": "last_name", "attribute": "sn"},
            {"field": "email", "attribute": "mail"},
            {"field": "department", "attribute": "departmentNumber"}
        ]),
    );
    let engine = engine(&s, p, jobtraq_config(&server));
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert!(report.failures().next().is_none(), "{}", report.to_json());
    assert_eq!(server.items("/contacts").len(), 6);
    let mail = format!("{}@acme.test", user_uid(2));
    assert!(server.find("/contacts", "email", &mail).is_some());
    s.ldapmodify(&format!(
        "dn: uid={},{}\nchangetype: modify\nreplace: sn\nsn: Changed\n",
        user_uid(2),
        s.people_dn()
    ))
    .await
    .unwrap();
    s.ldapdelete(&format!("uid={},{}", user_uid(5), s.people_dn()))
        .await
        .unwrap();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert!(report.failures().next().is_none(), "{}", report.to_json());
    assert_eq!(
        server.find("/contacts", "email", &mail).unwrap()["last_name"],
        "Changed"
    );
    let gone = format!("{}@acme.test", user_uid(5));
    assert_eq!(server.find("/contacts", "email", &gone).unwrap()["active"], false);
}
