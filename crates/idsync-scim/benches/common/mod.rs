//! What the SCIM benches share: the raw reqwest loop (the baseline), the
//! resource it posts, whole engine runs from an in-memory directory, and
//! counts read back from the server.

#![allow(dead_code, reason = "each bench uses part of it")]

use std::time::{Duration, Instant};

use futures::StreamExt;
use idsync_core::{ObjectKind, ProfileId};
use idsync_scim::{BulkMode, ScimConfig, ScimTarget};
use idsync_testkit::scim2::Scim2Server;
use serde_json::{Value, json};

/// A number from the environment, or `default`.
pub(crate) fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The same resource the target sends, built by hand.
pub(crate) fn body(profile: ProfileId, i: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "externalId": format!("{profile}:guid-{i}"),
        "active": true,
        "userName": format!("bench.user{i:05}"),
        "displayName": format!("Bench User {i}"),
        "name": {"givenName": "Bench", "familyName": format!("User{i}")},
        "emails": [{"type": "work", "value": format!("bench.user{i:05}@acme.test")}],
    })
}

/// The users on the server.
pub(crate) async fn count(server: &Scim2Server) -> u64 {
    let client = reqwest::Client::new();
    let v: Value = client
        .get(format!("{}/Users?count=0", server.base_url()))
        .bearer_auth(server.token())
        .send()
        .await
        .expect("count")
        .json()
        .await
        .expect("count body");
    v["totalResults"].as_u64().unwrap_or(0)
}

/// `n` POSTs of [`body`] at concurrency `c`: the least any sync must do.
pub(crate) async fn raw_loop(server: &Scim2Server, n: usize, c: usize) -> Duration {
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let profile = ProfileId::new_random();
    let url = format!("{}/Users", server.base_url());
    let started = Instant::now();
    let results: Vec<bool> = futures::stream::iter(0..n)
        .map(|i| {
            let (client, url) = (&client, &url);
            async move {
                client
                    .post(url)
                    .bearer_auth(server.token())
                    .header("content-type", "application/scim+json")
                    .body(body(profile, i).to_string())
                    .send()
                    .await
                    .is_ok_and(|r| r.status().as_u16() == 201)
            }
        })
        .buffer_unordered(c)
        .collect()
        .await;
    let took = started.elapsed();
    assert!(results.iter().all(|ok| *ok), "raw creates failed");
    took
}

/// A whole engine run (read, plan, apply) from an in-memory directory of
/// `n` users (and, with `group`, one group of all of them) into an empty
/// server, at concurrency `c`.
pub(crate) async fn engine_run(
    base_url: &str,
    token: &str,
    n: usize,
    c: usize,
    bulk: BulkMode,
    group: bool,
) -> Duration {
    use std::sync::Arc;

    use idsync_core::memory::MemorySource;
    use idsync_core::{Engine, EngineOptions, MemoryStateStore, Profile, RunOptions, SourceObject};

    let mut config = ScimConfig::new(base_url.parse().expect("url"), token);
    config.bulk = bulk;
    config.dialect.member_chunk = env("IDSYNC_BENCH_MEMBER_CHUNK", config.dialect.member_chunk);
    let target = ScimTarget::connect(config).await.expect("connect");
    let users = (0..n).map(|i| {
        SourceObject::new(format!("guid-{i}"), ObjectKind::User)
            .with("uid", format!("bench.user{i:05}"))
            .with("givenName", "Bench")
            .with("sn", format!("User{i}"))
            .with("mail", format!("bench.user{i:05}@acme.test"))
    });
    let everyone = (0..n).fold(
        SourceObject::new("guid-everyone", ObjectKind::Group).with("cn", "everyone"),
        |g, i| g.with_member(format!("guid-{i}")),
    );
    let source = MemorySource::with_objects(users.chain(group.then_some(everyone)));
    let profile: Profile = serde_json::from_value(json!({
        "id": ProfileId::new_random(),
        "name": "bench",
        "mapping": {"users": [
            {"field": "userName", "attribute": "uid"},
            {"field": "displayName", "template": "Bench User {sn}"},
            {"field": "name.givenName", "attribute": "givenName"},
            {"field": "name.familyName", "attribute": "sn"},
            {"field": "emails[type eq \"work\"].value", "attribute": "mail"}
        ], "groups": [{"field": "displayName", "attribute": "cn"}]}
    }))
    .expect("profile");
    let engine = Engine::new(
        profile,
        Arc::new(source),
        Arc::new(target),
        Arc::new(MemoryStateStore::new()),
    )
    .with_options(EngineOptions {
        concurrency: c,
        ..EngineOptions::default()
    });
    let started = Instant::now();
    let report = engine.run(&RunOptions::default()).await.expect("engine run");
    let took = started.elapsed();
    assert_eq!(report.failures().count(), 0, "engine run failed operations");
    took
}

/// The members of the one group on the server.
pub(crate) async fn group_members(server: &Scim2Server) -> usize {
    let v: Value = reqwest::Client::new()
        .get(format!("{}/Groups", server.base_url()))
        .bearer_auth(server.token())
        .send()
        .await
        .expect("groups")
        .json()
        .await
        .expect("groups body");
    v["Resources"][0]["members"].as_array().map_or(0, Vec::len)
}
