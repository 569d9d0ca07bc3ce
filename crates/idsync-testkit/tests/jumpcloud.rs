//! The fake JumpCloud API, driven over HTTP as a client would.
#![expect(clippy::expect_used, reason = "test code: a failure fails the test")]

use idsync_testkit::fault::Fault;
use idsync_testkit::jumpcloud::FakeJumpCloud;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};

const KEY: &str = "0123456789abcdef0123456789abcdef01234567";

struct Api {
    jc: FakeJumpCloud,
    http: Client,
}

impl Api {
    async fn start() -> Api {
        let jc = FakeJumpCloud::start(KEY).await.expect("fake JumpCloud starts");
        Api {
            jc,
            http: Client::new(),
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.jc.base_url()))
            .header("x-api-key", KEY)
            .header("accept", "application/json")
    }

    async fn send(&self, rb: RequestBuilder) -> (StatusCode, Value) {
        let resp = rb.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.expect("body read");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("JSON body")
        };
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.req(reqwest::Method::GET, path)).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.req(reqwest::Method::POST, path).json(&body)).await
    }
}

fn user(n: usize) -> Value {
    json!({ "username": format!("user{n:02}"), "email": format!("user{n:02}@example.org") })
}

#[tokio::test]
async fn v1_paging_ends_with_a_short_page() {
    let api = Api::start().await;
    for n in 0..25 {
        api.jc.insert_user(user(n));
    }
    let mut seen = Vec::new();
    let mut skip = 0;
    loop {
        let (status, body) = api
            .get(&format!("/api/systemusers?limit=10&skip={skip}&sort=_id"))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["totalCount"], 25);
        let page = body["results"].as_array().expect("results").clone();
        seen.extend(
            page.iter()
                .map(|u| u["username"].as_str().expect("username").to_owned()),
        );
        skip += page.len();
        if page.len() < 10 {
            assert_eq!(page.len(), 5);
            break;
        }
    }
    let expected: Vec<String> = (0..25).map(|n| format!("user{n:02}")).collect();
    assert_eq!(seen, expected);

    let (status, body) = api.get("/api/systemusers").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["results"].as_array().map(Vec::len),
        Some(10),
        "default limit is 10"
    );

    let (status, body) = api.get("/api/systemusers?limit=101").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().is_some_and(|m| m.contains("limit")));

    let (_, body) = api
        .get("/api/systemusers?filter=username:$eq:user07&fields=email")
        .await;
    assert_eq!(body["totalCount"], 1);
    assert_eq!(body["results"][0]["email"], "user07@example.org");
    assert!(body["results"][0].get("username").is_none(), "fields projects");
    assert!(body["results"][0].get("_id").is_some(), "_id is always returned");

    let (_, body) = api.get("/api/systemusers?sort=-username&limit=1").await;
    assert_eq!(body["results"][0]["username"], "user24");
}

#[tokio::test]
async fn v1_user_create_update_delete_round_trip() {
    let api = Api::start().await;
    let (status, created) = api
        .post(
            "/api/systemusers",
            json!({
                "username": "ann.lee", "email": "ann.lee@example.org", "firstname": "Ann",
                "lastname": "Lee", "employeeIdentifier": "E-1042", "password": "s3cret!",
                "phoneNumbers": [{ "type": "mobile", "number": "+49 30 1234567" }],
                "attributes": [{ "name": "badge", "value": "4711" }],
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "v1 create answers 200: {created}");
    let id = created["_id"].as_str().expect("_id").to_owned();
    assert_eq!(id.len(), 24);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(created["id"], id.as_str());
    assert!(created.get("password").is_none(), "password is never returned");
    assert_eq!(created["activated"], true);
    assert_eq!(created["state"], "ACTIVATED");
    assert_eq!(created["suspended"], false);
    assert!(created["phoneNumbers"][0]["id"].is_string());

    let (status, updated) = api
        .send(
            api.req(reqwest::Method::PUT, &format!("/api/systemusers/{id}"))
                .json(&json!({ "department": "Finance", "state": "SUSPENDED", "attributes": [] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["department"], "Finance");
    assert_eq!(updated["firstname"], "Ann", "PUT is partial at the top level");
    assert_eq!(updated["suspended"], true, "state and suspended agree");
    assert_eq!(updated["attributes"], json!([]), "arrays are replaced");

    let (status, _) = api
        .send(
            api.req(reqwest::Method::PUT, &format!("/api/systemusers/{id}"))
                .json(&json!({ "state": "ACTIVATED", "suspended": true })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "contradictory state/suspended");
    let (status, _) = api
        .send(
            api.req(reqwest::Method::PUT, &format!("/api/systemusers/{id}"))
                .json(&json!({ "state": "STAGED" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "STAGED cannot be re-entered");

    let (status, got) = api.get(&format!("/api/systemusers/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, updated);
    assert_eq!(api.jc.user(&id), Some(updated.clone()));

    let (status, deleted) = api
        .send(api.req(reqwest::Method::DELETE, &format!("/api/systemusers/{id}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["_id"], id.as_str());
    let (status, body) = api.get(&format!("/api/systemusers/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], 404);
    assert!(api.jc.users().is_empty());
}

#[tokio::test]
async fn missing_or_wrong_key_is_401() {
    let api = Api::start().await;
    let url = format!("{}/api/systemusers", api.jc.base_url());
    let resp = api.http.get(&url).send().await.expect("sent");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body["code"], 401);
    assert!(body["message"].is_string());
    let resp = api
        .http
        .get(&url)
        .header("x-api-key", "wrong")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    api.jc.require_org_id(Some(idsync_testkit::jumpcloud::ORG_ID));
    let (status, _) = api.get("/api/systemusers").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "multi-tenant key without x-org-id");
    let (status, _) = api
        .send(
            api.req(reqwest::Method::GET, "/api/systemusers")
                .header("x-org-id", idsync_testkit::jumpcloud::ORG_ID),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn duplicate_username_or_email_is_rejected() {
    let api = Api::start().await;
    let (status, _) = api.post("/api/systemusers", user(1)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api
        .post(
            "/api/systemusers",
            json!({ "username": "user01", "email": "other@example.org" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "documented as 400");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.to_lowercase().contains("already exists"))
    );
    let (status, _) = api
        .post(
            "/api/systemusers",
            json!({ "username": "other", "email": "user01@example.org" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api.post("/api/systemusers", json!({ "username": "nomail" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "email is required");

    api.jc.set_duplicate_user_status(StatusCode::CONFLICT);
    let (status, _) = api.post("/api/systemusers", user(1)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(api.jc.users().len(), 1);
}

#[tokio::test]
async fn group_crud_and_membership() {
    let api = Api::start().await;
    let ann = api.jc.insert_user(user(1));
    let bo = api.jc.insert_user(user(2));

    let (status, group) = api
        .post("/api/v2/usergroups", json!({ "name": "Finance", "description": "F" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(group["type"], "user_group");
    let gid = group["id"].as_str().expect("id").to_owned();
    let (status, _) = api.post("/api/v2/usergroups", json!({ "name": "Finance" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "duplicate group name");

    let members = format!("/api/v2/usergroups/{gid}/members");
    for u in [&ann, &bo] {
        let (status, body) = api
            .post(&members, json!({ "op": "add", "type": "user", "id": u }))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(body, Value::Null, "204 has no body");
    }
    let (status, _) = api
        .post(&members, json!({ "op": "add", "type": "user", "id": ann }))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "adding an existing member");

    let resp = api
        .req(reqwest::Method::GET, &format!("{members}?limit=1"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.headers()["x-total-count"], "2");
    let page: Value = resp.json().await.expect("JSON");
    assert_eq!(
        page,
        json!([{ "to": { "id": ann, "type": "user" }, "attributes": null }])
    );

    let (status, body) = api
        .get(&format!("/api/v2/usergroups/{gid}/membership?filter=type:eq:user"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().map(Vec::len), Some(2));
    let (_, body) = api.get(&format!("/api/v2/users/{bo}/memberof")).await;
    assert_eq!(body[0]["id"], gid.as_str());

    let (status, _) = api
        .post(&members, json!({ "op": "remove", "type": "user", "id": ann }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api
        .post(&members, json!({ "op": "remove", "type": "user", "id": ann }))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "removing a non-member");
    assert_eq!(api.jc.group_members(&gid), vec![bo.clone()]);

    let (status, _) = api
        .post(
            &members,
            json!({ "op": "add", "type": "user", "id": "000000000000000000000000" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "unknown user");

    let (status, put) = api
        .send(
            api.req(reqwest::Method::PUT, &format!("/api/v2/usergroups/{gid}"))
                .json(&json!({ "name": "Fin" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(put["name"], "Fin");
    assert_eq!(put["description"], "", "PUT is a full update");

    let (_, list) = api.get("/api/v2/usergroups?filter=name:eq:Fin").await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));

    // Deleting a user takes it out of its groups.
    let (status, _) = api
        .send(api.req(reqwest::Method::DELETE, &format!("/api/systemusers/{bo}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(api.jc.group_members(&gid).is_empty());

    let (status, _) = api
        .send(api.req(reqwest::Method::DELETE, &format!("/api/v2/usergroups/{gid}")))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api.get(&format!("/api/v2/usergroups/{gid}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn v2_group_paging() {
    let api = Api::start().await;
    for n in 0..12 {
        api.jc.insert_group(&format!("group{n:02}"));
    }
    let resp = api
        .req(reqwest::Method::GET, "/api/v2/usergroups?limit=5&skip=10")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.headers()["x-total-count"], "12");
    let page: Value = resp.json().await.expect("JSON");
    assert_eq!(page.as_array().map(Vec::len), Some(2), "a short last page");
    assert_eq!(page[0]["name"], "group10");
}

#[tokio::test]
async fn rate_limit_knob_answers_429_with_retry_after_and_is_counted() {
    let api = Api::start().await;
    api.jc
        .faults()
        .fail_next(2, Fault::RateLimited { retry_after: Some(3) });
    for _ in 0..2 {
        let resp = api
            .req(reqwest::Method::GET, "/api/systemusers")
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()["retry-after"], "3");
    }
    let (status, _) = api.get("/api/systemusers").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(api.jc.requests(), 3);
    assert_eq!(api.jc.requests_to("/api/systemusers"), 3);
    assert_eq!(api.jc.faults().faulted(), 2);

    api.jc.faults().fail_every(2, Fault::Status(503));
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(api.get("/api/v2/usergroups").await.0);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::OK,
            StatusCode::SERVICE_UNAVAILABLE
        ]
    );
    assert_eq!(api.jc.requests_to("/api/v2/usergroups"), 4);
    assert_eq!(api.jc.faults().faulted(), 4);

    api.jc.faults().clear();
    api.jc.faults().fail_share(0.5, 7, Fault::Status(502));
    let mut failed = 0;
    for _ in 0..40 {
        failed += usize::from(api.get("/api/systemusers").await.0 == StatusCode::BAD_GATEWAY);
    }
    assert!((5..35).contains(&failed), "about half fail: {failed}");

    api.jc.faults().clear();
    api.jc.faults().set_delay(std::time::Duration::from_millis(100));
    let started = std::time::Instant::now();
    assert_eq!(api.get("/api/systemusers").await.0, StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(100));
}
