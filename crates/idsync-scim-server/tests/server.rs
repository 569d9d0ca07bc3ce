//! The SCIM service provider end to end: idsync's own SCIM client (the
//! `ScimTarget`) plays the identity provider and pushes a `MemorySource`
//! into the server, which writes into a `MemoryTarget`; and raw requests
//! for filters, paging, PATCH, ETags and authentication.
#![expect(clippy::panic, clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::sync::Arc;
use std::time::Duration;

use idsync_core::memory::{MemorySource, MemoryTarget};
use idsync_core::plan::{Finding, FindingKind};
use idsync_core::{
    Engine, EngineOptions, MemoryStateStore, ObjectKind, Profile, RetryPolicy, RunOptions, RunReport, SourceObject,
    TargetAccount, TargetOp,
};
use idsync_scim::{ScimConfig, ScimTarget};
use idsync_scim_server::{MemoryHistory, ScimServer};
use serde_json::{Value, json};

const TOKEN: &str = "t0ken-for-tests";
const IDP_PROFILE: &str = "11111111-1111-4111-8111-111111111111";
const WORK: &str = "emails[type eq \"work\"].value";

/// A running service provider over a `MemoryTarget`.
struct Sp {
    base: String,
    app: MemoryTarget,
    history: MemoryHistory,
    profile: Profile,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(rules: Value) -> Sp {
    start_over(rules, MemoryTarget::new()).await
}

/// A server over an existing application (a restart).
async fn start_over(rules: Value, app: MemoryTarget) -> Sp {
    let profile: Profile = serde_json::from_value(json!({
        "id": "22222222-2222-4222-8222-222222222222",
        "name": "IdP → app",
        "rules": rules,
    }))
    .unwrap();
    let history = MemoryHistory::new();
    let router = ScimServer::new(profile.clone(), Arc::new(app.clone()), TOKEN.to_owned().into())
        .with_sink(history.clone())
        .router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, axum::Router::new().nest("/scim/v2", router)).await;
    });
    Sp {
        base: format!("http://{addr}/scim/v2"),
        app,
        history,
        profile,
        task,
    }
}

fn idp_profile() -> Profile {
    serde_json::from_value(json!({
        "id": IDP_PROFILE,
        "name": "directory → SCIM app",
        "mapping": {
            "users": [
                {"field": "userName", "attribute": "uid"},
                {"field": "name.givenName", "attribute": "givenName"},
                {"field": "name.familyName", "attribute": "sn"},
                {"field": "displayName", "template": "{givenName} {sn}"},
                {"field": WORK, "attribute": "mail"}
            ],
            "groups": [{"field": "displayName", "attribute": "cn"}]
        },
        // an identity provider deletes what leaves its scope; the server's rules decide what that means
        "rules": {"deprovision": "delete", "threshold": {"max_count": null, "max_percent": null}}
    }))
    .unwrap()
}

fn person(id: &str, uid: &str, given: &str) -> SourceObject {
    SourceObject::new(id, ObjectKind::User)
        .with("uid", uid)
        .with("givenName", given)
        .with("sn", "Test")
        .with("mail", format!("{uid}@acme.test"))
}

fn directory() -> MemorySource {
    MemorySource::with_objects([
        person("u1", "ann", "Ann"),
        person("u2", "bob", "Bob"),
        SourceObject::new("g1", ObjectKind::Group)
            .with("cn", "sales")
            .with_member("u1")
            .with_member("u2"),
    ])
}

/// One full sync of `source` into the server through the SCIM client.
async fn push(sp: &Sp, source: &MemorySource) -> RunReport {
    let mut config = ScimConfig::new(url::Url::parse(&sp.base).unwrap(), TOKEN);
    config.http.retry.base_ms = 10;
    config.http.retry.max_backoff_ms = 50;
    let target = ScimTarget::connect(config).await.unwrap();
    assert!(target.service_provider().etag, "the server announces ETags");
    let engine = Engine::new(
        idp_profile(),
        Arc::new(source.clone()),
        Arc::new(target),
        Arc::new(MemoryStateStore::new()),
    )
    .with_options(EngineOptions {
        retry: RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        },
        ..EngineOptions::default()
    });
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.failures().count(), 0, "{}", report.to_json());
    report
}

fn account(sp: &Sp, external: &str) -> TargetAccount {
    sp.app
        .linked_to(sp.profile.id, &format!("{IDP_PROFILE}:{external}"))
        .unwrap_or_else(|| panic!("no account linked to {external}: {:#?}", sp.app.accounts()))
}

async fn call(
    sp: &Sp,
    method: &str,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client
        .request(method, format!("{}{path}", sp.base))
        .header("Authorization", format!("Bearer {TOKEN}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.header("Content-Type", "application/scim+json").body(b.to_string());
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, headers, v)
}

async fn post_user(sp: &Sp, user: Value) -> String {
    let (status, _, v) = call(sp, "POST", "/Users", Some(user), &[]).await;
    assert_eq!(status, 201, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_scim_client_pushes_a_directory_into_the_app_and_converges() {
    let sp = start(json!({})).await;
    let source = directory();
    let report = push(&sp, &source).await;
    assert_eq!(report.plan.counts.create, 3);

    let ann = account(&sp, "u1");
    let bob = account(&sp, "u2");
    assert_eq!(ann.fields.get("userName").map(String::as_str), Some("ann"));
    assert_eq!(ann.fields.get("name.givenName").map(String::as_str), Some("Ann"));
    assert_eq!(ann.fields.get(WORK).map(String::as_str), Some("ann@acme.test"));
    assert!(ann.enabled);
    let group = account(&sp, "g1");
    assert_eq!(group.fields.get("displayName").map(String::as_str), Some("sales"));
    let mut members = group.members.clone();
    members.sort();
    assert_eq!(members, vec![ann.id.clone(), bob.id.clone()]);

    // the SCIM id given out is the app's id, and the IdP's externalId is kept
    let (status, headers, v) = call(&sp, "GET", &format!("/Users/{}", ann.id), None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(v["externalId"], format!("{IDP_PROFILE}:u1"));
    assert_eq!(v["meta"]["location"], format!("{}/Users/{}", sp.base, ann.id));
    assert_eq!(
        headers["etag"].to_str().unwrap(),
        v["meta"]["version"].as_str().unwrap()
    );
    assert_eq!(
        v["groups"],
        json!([{"value": group.id.0, "display": "sales", "type": "direct"}])
    );

    let again = push(&sp, &source).await;
    assert!(again.plan.is_empty(), "{}", again.plan);

    // a change in the directory arrives as a PATCH of the changed field only
    source.modify("u1", |o| {
        o.attributes.insert(
            "mail".into(),
            vec![idsync_core::AttrValue::Text("ann.lee@acme.test".into())],
        );
    });
    source.modify("g1", |o| o.members.retain(|m| m.as_str() != "u2"));
    let before = sp.app.log().len();
    push(&sp, &source).await;
    let ops: Vec<TargetOp> = sp.app.log()[before..].to_vec();
    assert_eq!(ops.len(), 2, "one field update and one member removal: {ops:#?}");
    assert_eq!(
        account(&sp, "u1").fields.get(WORK).map(String::as_str),
        Some("ann.lee@acme.test")
    );
    assert_eq!(account(&sp, "g1").members, vec![ann.id.clone()]);
    assert!(push(&sp, &source).await.plan.is_empty());

    // every request is in the history, with what was applied
    let records = sp.history.records();
    assert!(records.iter().all(|r| r.profile == sp.profile.id));
    let creates: Vec<_> = records.iter().filter(|r| r.action == "create").collect();
    assert_eq!(creates.len(), 3);
    assert!(
        creates
            .iter()
            .all(|r| r.status == 201 && matches!(r.operations[0], TargetOp::Create { .. }))
    );
    assert!(records.iter().any(|r| r.action == "patch" && r.status == 200));
    assert!(records.iter().any(|r| r.action == "list"));
    let json = serde_json::to_string(&records).unwrap();
    assert!(!json.contains(TOKEN), "the token never lands in the history");
}

#[tokio::test]
async fn a_delete_from_the_identity_provider_disables_by_default() {
    let sp = start(json!({})).await;
    let source = directory();
    push(&sp, &source).await;
    let bob = account(&sp, "u2");
    source.delete("u2");
    push(&sp, &source).await;
    let after = sp.app.account(&bob.id).expect("the account is kept");
    assert!(!after.enabled, "disabled, not deleted");
    let (status, _, v) = call(&sp, "GET", &format!("/Users/{}", bob.id), None, &[]).await;
    assert_eq!((status, v["status"].as_str()), (404, Some("404")), "gone for the IdP");
    let delete = sp.history.records().into_iter().find(|r| r.action == "delete").unwrap();
    assert_eq!(delete.status, 204);
    assert_eq!(
        delete.operations,
        vec![TargetOp::SetEnabled {
            target: bob.id.clone(),
            kind: ObjectKind::User,
            enabled: false
        }]
    );
    assert!(push(&sp, &source).await.plan.is_empty(), "converged");

    // the IdP assigns the person again: the same account comes back, enabled
    source.upsert(person("u2", "bob", "Bob"));
    push(&sp, &source).await;
    let back = account(&sp, "u2");
    assert_eq!(back.id, bob.id);
    assert!(back.enabled);
}

#[tokio::test]
async fn a_delete_deletes_only_when_the_profile_opts_in() {
    let sp = start(json!({"deprovision": "delete"})).await;
    let source = directory();
    push(&sp, &source).await;
    let bob = account(&sp, "u2");
    source.delete("u2");
    push(&sp, &source).await;
    assert!(sp.app.account(&bob.id).is_none());
    assert_eq!(account(&sp, "g1").members.len(), 1);

    let sp = start(json!({"deprovision": "leave"})).await;
    push(&sp, &source).await;
    let ann = account(&sp, "u1");
    source.delete("u1");
    push(&sp, &source).await;
    assert!(sp.app.account(&ann.id).is_some_and(|a| a.enabled));
    let delete = sp.history.records().into_iter().find(|r| r.action == "delete").unwrap();
    assert_eq!(delete.status, 204);
    assert!(delete.operations.is_empty(), "{:?}", delete.operations);
    assert!(
        delete.findings.is_empty(),
        "leave is the rule, not a finding: {:?}",
        delete.findings
    );
}

#[tokio::test]
async fn do_not_disable_is_honoured() {
    let sp = start(json!({"do_not_disable": true, "deprovision": "delete"})).await;
    let source = directory();
    push(&sp, &source).await;
    let ann = account(&sp, "u1");
    let bob = account(&sp, "u2");
    // disabled in the directory: the IdP sends active=false
    source.modify("u1", |o| o.enabled = false);
    source.delete("u2");
    push(&sp, &source).await;
    assert!(sp.app.account(&ann.id).unwrap().enabled);
    assert!(sp.app.account(&bob.id).unwrap().enabled);
    let records = sp.history.records();
    let findings: Vec<&Finding> = records.iter().flat_map(|r| &r.findings).collect();
    assert!(
        findings.iter().filter(|f| f.kind == FindingKind::DoNotDisable).count() >= 2,
        "{findings:?}"
    );
    assert!(!records.iter().flat_map(|r| &r.operations).any(|op| matches!(
        op,
        TargetOp::SetEnabled { enabled: false, .. } | TargetOp::Delete { .. }
    )));
}

#[tokio::test]
async fn a_veto_of_the_app_is_honoured() {
    let sp = start(json!({})).await;
    let source = directory();
    push(&sp, &source).await;
    let bob = account(&sp, "u2");
    sp.app.veto(&bob.id, "open tickets");
    source.delete("u2");
    push(&sp, &source).await;
    assert!(sp.app.account(&bob.id).unwrap().enabled);
    let delete = sp.history.records().into_iter().find(|r| r.action == "delete").unwrap();
    assert_eq!(delete.findings[0].kind, FindingKind::Vetoed);
    assert!(
        delete.findings[0].message.contains("open tickets"),
        "{:?}",
        delete.findings
    );
}

#[tokio::test]
async fn filters_sorting_and_paging() {
    let sp = start(json!({})).await;
    for (i, name) in ["carol", "alice", "eve", "bob", "dave"].iter().enumerate() {
        let mut u = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": name,
            "externalId": format!("ext-{i}"),
            "emails": [{"type": "work", "value": format!("{name}@acme.test")}],
        });
        if i % 2 == 0 {
            u["title"] = json!("Engineer");
        }
        post_user(&sp, u).await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["userName"].as_str().unwrap().to_owned())
            .collect()
    };
    let list = |q: &str| {
        let sp = &sp;
        let q = q.to_owned();
        async move {
            let url = format!(
                "/Users?{}",
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs([("filter", q.as_str()), ("sortBy", "userName")])
                    .finish()
            );
            let (status, _, v) = call(sp, "GET", &url, None, &[]).await;
            assert_eq!(status, 200, "{q}: {v}");
            names(&v)
        }
    };
    assert_eq!(list(r#"userName eq "ALICE""#).await, ["alice"]);
    assert_eq!(list(r#"userName ne "alice""#).await, ["bob", "carol", "dave", "eve"]);
    assert_eq!(list(r#"userName co "a""#).await, ["alice", "carol", "dave"]);
    assert_eq!(list(r#"userName sw "d""#).await, ["dave"]);
    assert_eq!(list(r#"userName ew "e""#).await, ["alice", "dave", "eve"]);
    assert_eq!(list("title pr").await, ["carol", "dave", "eve"]);
    assert_eq!(list(r#"userName gt "carol""#).await, ["dave", "eve"]);
    assert_eq!(list(r#"userName ge "carol""#).await, ["carol", "dave", "eve"]);
    assert_eq!(list(r#"userName lt "bob""#).await, ["alice"]);
    assert_eq!(list(r#"userName le "bob""#).await, ["alice", "bob"]);
    assert_eq!(list(r#"title pr and userName sw "c""#).await, ["carol"]);
    assert_eq!(list(r#"userName eq "bob" or userName eq "eve""#).await, ["bob", "eve"]);
    assert_eq!(list("not (title pr)").await, ["alice", "bob"]);
    assert_eq!(
        list(r#"(userName eq "bob" or userName eq "eve") and not (title pr)"#).await,
        ["bob"]
    );
    assert_eq!(list(r#"emails[type eq "work" and value sw "eve@"]"#).await, ["eve"]);
    assert_eq!(list(r#"externalId eq "ext-3""#).await, ["bob"]);
    assert_eq!(list(r#"meta.lastModified gt "2000-01-01T00:00:00Z""#).await.len(), 5);

    let (_, _, v) = call(
        &sp,
        "GET",
        "/Users?sortBy=userName&sortOrder=descending&startIndex=2&count=2",
        None,
        &[],
    )
    .await;
    assert_eq!(
        (
            v["totalResults"].as_u64(),
            v["startIndex"].as_u64(),
            v["itemsPerPage"].as_u64()
        ),
        (Some(5), Some(2), Some(2))
    );
    assert_eq!(names(&v), ["dave", "carol"]);
    let (_, _, v) = call(&sp, "GET", "/Users?count=0", None, &[]).await;
    assert_eq!(
        (v["totalResults"].as_u64(), v["Resources"].as_array().map(Vec::len)),
        (Some(5), Some(0))
    );
    let (_, _, v) = call(
        &sp,
        "GET",
        "/Users?attributes=userName&sortBy=userName&count=1",
        None,
        &[],
    )
    .await;
    assert_eq!(
        v["Resources"][0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["id", "meta", "schemas", "userName"]
    );

    // POST /.search
    let (status, _, v) = call(
        &sp,
        "POST",
        "/Users/.search",
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "title pr", "sortBy": "userName", "sortOrder": "descending", "count": 2
        })),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(names(&v), ["eve", "dave"]);

    for bad in [
        "userName eq",
        "userName xx \"a\"",
        "(userName pr",
        "emails[type eq \"w\"",
    ] {
        let url = format!(
            "/Users?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("filter", bad)
                .finish()
        );
        let (status, _, v) = call(&sp, "GET", &url, None, &[]).await;
        assert_eq!((status, v["scimType"].as_str()), (400, Some("invalidFilter")), "{bad}");
        assert_eq!(v["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
    }
    let (status, _, v) = call(&sp, "POST", "/Users", Some(json!({"userName": "ALICE"})), &[]).await;
    assert_eq!((status, v["scimType"].as_str()), (409, Some("uniqueness")));
}

#[tokio::test]
async fn patch_with_value_paths() {
    let sp = start(json!({})).await;
    let ann = post_user(
        &sp,
        json!({"userName": "ann", "emails": [{"type": "work", "value": "a@w"}, {"type": "home", "value": "a@h"}]}),
    )
    .await;
    let bob = post_user(&sp, json!({"userName": "bob"})).await;
    let (status, _, g) = call(
        &sp,
        "POST",
        "/Groups",
        Some(json!({"displayName": "sales", "members": [{"value": ann}]})),
        &[],
    )
    .await;
    assert_eq!(status, 201, "{g}");
    let group = g["id"].as_str().unwrap().to_owned();
    let app = |id: &str| sp.app.account(&idsync_core::TargetId(id.to_owned())).unwrap();

    let patch = |path: String, ops: Value| {
        let sp = &sp;
        async move {
            call(
                sp,
                "PATCH",
                &path,
                Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})),
                &[],
            )
            .await
        }
    };
    let (status, _, v) = patch(
        format!("/Groups/{group}"),
        json!([{"op": "add", "path": "members", "value": [{"value": bob}]}]),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(app(&group).members.len(), 2);
    let (status, _, _) = patch(
        format!("/Groups/{group}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{ann}\"]")}]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(app(&group).members, vec![idsync_core::TargetId(bob.clone())]);

    let (status, _, v) = patch(
        format!("/Users/{ann}"),
        json!([
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "ann@work"},
            {"op": "Replace", "value": {"name.givenName": "Ann", "active": "False"}},
            {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales"},
            {"op": "remove", "path": "emails[type eq \"home\"]"}
        ]),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["emails"], json!([{"type": "work", "value": "ann@work"}]));
    let a = app(&ann);
    assert_eq!(a.fields.get(WORK).map(String::as_str), Some("ann@work"));
    assert_eq!(a.fields.get("name.givenName").map(String::as_str), Some("Ann"));
    assert_eq!(
        a.fields
            .get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department")
            .map(String::as_str),
        Some("Sales")
    );
    assert!(!a.fields.contains_key("emails[type eq \"home\"].value"));
    assert!(!a.enabled, "active false disables");

    for (ops, scim_type) in [
        (
            json!([{"op": "replace", "path": "emails[type eq", "value": "x"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq \"fax\"].value", "value": "x"}]),
            "noTarget",
        ),
        (json!([{"op": "remove"}]), "noTarget"),
        (
            json!([{"op": "replace", "path": "active", "value": "maybe"}]),
            "invalidValue",
        ),
        (
            json!([{"op": "add", "path": "members", "value": [{"value": "nobody"}]}]),
            "invalidValue",
        ),
    ] {
        let path = if scim_type == "invalidValue" && ops[0]["path"] == "members" {
            format!("/Groups/{group}")
        } else {
            format!("/Users/{ann}")
        };
        let (status, _, v) = patch(path, ops.clone()).await;
        assert_eq!((status, v["scimType"].as_str()), (400, Some(scim_type)), "{ops}: {v}");
    }
}

#[tokio::test]
async fn if_match_with_a_stale_etag_is_412() {
    let sp = start(json!({})).await;
    let id = post_user(&sp, json!({"userName": "ann"})).await;
    let (_, headers, _) = call(&sp, "GET", &format!("/Users/{id}"), None, &[]).await;
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let (status, _, _) = call(&sp, "GET", &format!("/Users/{id}"), None, &[("If-None-Match", &etag)]).await;
    assert_eq!(status, 304);
    let (status, headers, v) = call(
        &sp,
        "PUT",
        &format!("/Users/{id}"),
        Some(json!({"userName": "ann", "title": "Boss"})),
        &[("If-Match", &etag)],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let newer = headers["etag"].to_str().unwrap().to_owned();
    assert_ne!(newer, etag);
    let before = sp.app.log().len();
    for method in ["PUT", "PATCH", "DELETE"] {
        let body = match method {
            "PUT" => Some(json!({"userName": "ann", "title": "Intern"})),
            "PATCH" => Some(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "title", "value": "Intern"}]}),
            ),
            _ => None,
        };
        let (status, _, v) = call(&sp, method, &format!("/Users/{id}"), body, &[("If-Match", &etag)]).await;
        assert_eq!(status, 412, "{method}: {v}");
        assert_eq!(v["status"], "412");
    }
    assert_eq!(sp.app.log().len(), before, "nothing applied");
    let (status, _, _) = call(&sp, "DELETE", &format!("/Users/{id}"), None, &[("If-Match", &newer)]).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn requests_without_the_right_token_are_401() {
    let sp = start(json!({})).await;
    let client = reqwest::Client::new();
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer t0ken-for-test"),
        Some("Basic dDBrZW4="),
    ] {
        let mut req = client.get(format!("{}/Users", sp.base));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{auth:?}");
        assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(v["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
    }
    let records = sp.history.records();
    assert_eq!(records.len(), 4);
    assert!(records.iter().all(|r| r.action == "unauthorized" && r.status == 401));
    let (status, _, _) = call(&sp, "GET", "/Users", None, &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn after_a_restart_ids_and_documents_come_back_from_the_app() {
    let sp = start(json!({})).await;
    let source = directory();
    push(&sp, &source).await;
    let ann = account(&sp, "u1");
    let (_, _, before) = call(&sp, "GET", &format!("/Users/{}", ann.id), None, &[]).await;
    let app = sp.app.clone();
    drop(sp);

    let sp = start_over(json!({}), app).await;
    let (status, _, after) = call(&sp, "GET", &format!("/Users/{}", ann.id), None, &[]).await;
    assert_eq!(status, 200, "the SCIM id is the app's id: stable across restarts");
    for attr in ["userName", "externalId", "name", "emails", "displayName", "active"] {
        assert_eq!(after[attr], before[attr], "{attr}");
    }
    assert_eq!(
        after["meta"]["version"], before["meta"]["version"],
        "same document, same ETag"
    );
    let report = push(&sp, &source).await;
    assert!(report.plan.is_empty(), "nothing to do after a restart: {}", report.plan);
}

#[tokio::test]
async fn a_profile_mapping_turns_scim_attributes_into_the_apps_columns() {
    let profile: Profile = serde_json::from_value(json!({
        "id": "44444444-4444-4444-8444-444444444444",
        "name": "IdP → app columns",
        "mapping": {"users": [
            {"field": "login", "attribute": "userName", "transforms": ["lowercase"]},
            {"field": "email", "attribute": WORK},
            {"field": "name", "template": "{name.givenName} {name.familyName}"}
        ]}
    }))
    .unwrap();
    let app = MemoryTarget::new();
    let router = ScimServer::new(profile.clone(), Arc::new(app.clone()), TOKEN.to_owned().into()).router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let sp = Sp {
        base: format!("http://{addr}"),
        app,
        history: MemoryHistory::new(),
        profile,
        task,
    };
    let id = post_user(
        &sp,
        json!({"userName": "Ann.Lee", "externalId": "e1", "name": {"givenName": "Ann", "familyName": "Lee"},
               "emails": [{"type": "work", "value": "ann@acme.test"}]}),
    )
    .await;
    let a = sp.app.account(&idsync_core::TargetId(id.clone())).unwrap();
    let want: idsync_core::Fields = [("login", "ann.lee"), ("email", "ann@acme.test"), ("name", "Ann Lee")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(a.fields, want);
    assert_eq!(a.link.unwrap().external.as_str(), "e1");
    let (status, _, _) = call(
        &sp,
        "PATCH",
        &format!("/Users/{id}"),
        Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "ann.lee@acme.test"}]})),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let last = sp.app.log().pop().unwrap();
    assert_eq!(
        last,
        TargetOp::Update {
            target: idsync_core::TargetId(id.clone()),
            kind: ObjectKind::User,
            changes: vec![idsync_core::FieldChange {
                field: "email".into(),
                old: Some("ann@acme.test".into()),
                new: Some("ann.lee@acme.test".into())
            }]
        },
        "only the changed column is written"
    );
}
