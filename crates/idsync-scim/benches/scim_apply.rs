//! Provisioning N users (default 10 000) into scim2-server through
//! `ScimTarget::apply`, one POST per user, and through
//! `ScimTarget::apply_batch` with `/Bulk` (and, with the
//! modes `engine` and `engine-bulk`, through a whole engine run), against
//! a raw reqwest loop of the same creates at the same concurrency, in the
//! same run, each on a fresh server. (A group holding every user: the
//! `groups` bench.)
//!
//! Needs scim2-server (`bash .ci/install`). `IDSYNC_BENCH_USERS` and
//! `IDSYNC_BENCH_CONCURRENCY` (default 8, the engine's default) change the
//! load. Prints one line per mode and the ratios; the figures depend on the
//! machine, so only the ratios of one run mean anything.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "bench setup: a failure stops the bench"
)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use idsync_core::{Fields, Link, ObjectKind, ProfileId, Target, TargetOp};
use idsync_scim::{BulkMode, ScimConfig, ScimTarget};
use idsync_testkit::scim2::Scim2Server;

mod common;

use common::{count, engine_run, env, raw_loop};

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
    let mut sums = [(0.0f64, 0u32); 5];
    for mode in modes.split(',') {
        let (slot, label, bulk) = match mode.trim() {
            "raw" => (0, "raw reqwest loop", None),
            "post" => (1, "ScimTarget (POST)", Some(BulkMode::Off)),
            "bulk" => (2, "ScimTarget (Bulk)", Some(BulkMode::On)),
            "engine" => (3, "Engine run (POST)", Some(BulkMode::Off)),
            "engine-bulk" => (4, "Engine run (Bulk)", Some(BulkMode::On)),
            other => panic!("unknown mode {other:?} in IDSYNC_BENCH_MODES"),
        };
        let server = Scim2Server::start().await.expect("scim2-server");
        let took = match (slot, bulk) {
            (_, None) => raw_loop(&server, n, c).await,
            (3 | 4, Some(b)) => engine_run(&server.base_url(), server.token(), n, c, b, false).await,
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
    // Ratios of the modes that ran, against the raw loop.
    let names = ["target POST", "target Bulk", "engine POST", "engine Bulk"];
    let ratios: Vec<String> = names
        .iter()
        .zip(&figures[1..])
        .filter(|(_, f)| **f > 0.0 && figures[0] > 0.0)
        .map(|(name, f)| format!("{name} {:.2}x", f / figures[0]))
        .collect();
    println!(
        "scim_apply ratio to the raw loop: {} (goals: target >= 0.9x, Bulk > 1x, engine >= 1.0x)",
        ratios.join(", ")
    );
}
