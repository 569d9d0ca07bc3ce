//! Provisioning N users (default 10 000) into scim2-server through
//! `ScimTarget::apply`, one POST per user, and through
//! `ScimTarget::apply_batch` with `/Bulk` (and, with the
//! modes `engine` and `engine-bulk`, through a whole engine run), against
//! a raw reqwest loop of the same creates at the same concurrency, in the
//! same run, each on a fresh server. The mode `engine-group` adds one group
//! holding every user to the engine run and counts its HTTP requests
//! (through the testkit's proxy).
//!
//! Needs scim2-server (`bash .ci/install`). `IDSYNC_BENCH_USERS` and
//! `IDSYNC_BENCH_CONCURRENCY` (default 8, the engine's default) change the
//! load, `IDSYNC_BENCH_MEMBER_CHUNK` the members per PATCH of the engine
//! runs. Prints one line per mode and the ratios; the figures depend on the
//! machine, so only the ratios of one run mean anything.

use std::time::{Duration, Instant};

use futures::StreamExt;
use idsync_core::{Fields, Link, ObjectKind, ProfileId, Target, TargetOp};
use idsync_scim::{BulkMode, ScimConfig, ScimTarget};
use idsync_testkit::scim2::Scim2Server;
use serde_json::{Value, json};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn fields(i: usize) -> Fields {
    [
        ("userName".to_owned(), format!("bench.user{i:05}")),
        ("displayName".to_owned(), format!("Bench User {i}")),
        ("name.givenName".to_owned(), "Bench".to_owned()),
        ("name.familyName".to_owned(), format!("User{i}")),
        (
            "emails[type eq \"work\"].value".to_owned(),
            format!("bench.user{i:05}@acme.test"),
        ),
    ]
    .into_iter()
    .collect()
}

/// The same resource the target sends, built by hand.
fn body(profile: ProfileId, i: usize) -> Value {
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

async fn count(server: &Scim2Server) -> u64 {
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

async fn raw_loop(server: &Scim2Server, n: usize, c: usize) -> Duration {
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

async fn target_loop(server: &Scim2Server, n: usize, c: usize, bulk: BulkMode) -> Duration {
    let mut config = ScimConfig::new(server.base_url().parse().expect("url"), server.token());
    config.bulk = bulk;
    let target = ScimTarget::connect(config).await.expect("connect");
    let profile = ProfileId::new_random();
    let ops: Vec<TargetOp> = (0..n)
        .map(|i| TargetOp::Create {
            kind: ObjectKind::User,
            link: Link {
                profile,
                external: format!("guid-{i}").into(),
            },
            fields: fields(i),
        })
        .collect();
    let started = Instant::now();
    // with Bulk, batches as the engine hands them; else one apply per create
    let batch = if bulk == BulkMode::On {
        target.capabilities().batch
    } else {
        1
    };
    let failures: usize = futures::stream::iter(ops.chunks(batch))
        .map(|chunk| target.apply_batch(chunk))
        .buffer_unordered(c)
        .map(|results| results.iter().filter(|r| r.is_err()).count())
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .sum();
    let took = started.elapsed();
    assert_eq!(failures, 0, "target creates failed");
    took
}

/// A whole engine run (read, plan, apply) from an in-memory directory of
/// `n` users (and, with `group`, one group of all of them) into an empty
/// server, at concurrency `c`.
async fn engine_run(base_url: &str, token: &str, n: usize, c: usize, bulk: BulkMode, group: bool) -> Duration {
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
async fn group_members(server: &Scim2Server) -> usize {
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

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing we need.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env("IDSYNC_BENCH_USERS", 10_000);
    let c = env("IDSYNC_BENCH_CONCURRENCY", 8);
    let Some(_) = idsync_testkit::scim2::scim2_binary() else {
        eprintln!("skipping scim_apply: scim2-server is not installed (bash .ci/install)");
        return;
    };
    // Passes run in ABC-CBA order by default, so a machine whose load drifts
    // during the run favours no mode; IDSYNC_BENCH_MODES chooses others.
    let modes = std::env::var("IDSYNC_BENCH_MODES").unwrap_or_else(|_| "raw,post,bulk,bulk,post,raw".into());
    let mut sums = [(0.0f64, 0u32); 6];
    for mode in modes.split(',') {
        let (slot, label, bulk) = match mode.trim() {
            "raw" => (0, "raw reqwest loop", None),
            "post" => (1, "ScimTarget (POST)", Some(BulkMode::Off)),
            "bulk" => (2, "ScimTarget (Bulk)", Some(BulkMode::On)),
            "engine" => (3, "Engine run (POST)", Some(BulkMode::Off)),
            "engine-bulk" => (4, "Engine run (Bulk)", Some(BulkMode::On)),
            "engine-group" => (5, "Engine run + group", Some(BulkMode::Auto)),
            other => panic!("unknown mode {other:?} in IDSYNC_BENCH_MODES"),
        };
        let server = Scim2Server::start().await.expect("scim2-server");
        let took = match (slot, bulk) {
            (_, None) => raw_loop(&server, n, c).await,
            (3 | 4, Some(b)) => engine_run(&server.base_url(), server.token(), n, c, b, false).await,
            (5, Some(b)) => {
                let proxy = server.fault_proxy().await.expect("proxy");
                let took = engine_run(&proxy.base_url(), server.token(), n, c, b, true).await;
                let mut requests = std::collections::BTreeMap::<String, usize>::new();
                for seen in proxy.seen() {
                    *requests.entry(seen.method.to_string()).or_default() += 1;
                }
                let members = group_members(&server).await;
                assert_eq!(members, n, "not every user is in the group");
                println!("scim_apply {label}: HTTP requests {requests:?}");
                took
            }
            (_, Some(b)) => target_loop(&server, n, c, b).await,
        };
        assert_eq!(
            count(&server).await,
            n as u64,
            "{label}: not every user is on the server"
        );
        let rate = n as f64 / took.as_secs_f64();
        println!(
            "scim_apply {label:<20} {n} creates, concurrency {c}: {:>7.2} s, {rate:>7.0} creates/s",
            took.as_secs_f64()
        );
        sums[slot].0 += took.as_secs_f64();
        sums[slot].1 += 1;
    }
    // creates/s over all passes of a mode (0 for a mode not run)
    let figures = sums.map(|(secs, passes)| {
        if passes == 0 {
            0.0
        } else {
            n as f64 * f64::from(passes) / secs
        }
    });
    println!(
        "scim_apply mean creates/s: raw {:.0}, POST {:.0}, Bulk {:.0}, engine POST {:.0}, engine Bulk {:.0}",
        figures[0], figures[1], figures[2], figures[3], figures[4]
    );
    println!(
        "scim_apply ratio to the raw loop: POST {:.2}x, Bulk {:.2}x (goal: >= 0.9x, Bulk > 1x)",
        figures[1] / figures[0],
        figures[2] / figures[0]
    );
}
