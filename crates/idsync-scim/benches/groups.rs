//! Groups: N users and one group holding all of them, from an in-memory
//! directory into scim2-server in one engine run, against a raw reqwest
//! loop of the same N user POSTs without the group (the least a plain
//! per-user script does), in the same run, each on a fresh server. The
//! engine is also run without the group, to give the share of the time
//! the group takes. N = 3,000 and 10,000 by default.
//!
//! Single-shot runs, not criterion samples: an engine run of 10,000 users
//! takes seconds. Needs scim2-server (`bash .ci/install`); skips otherwise.
//!
//! Run: `cargo bench -p idsync-scim --bench groups`
//! (`IDSYNC_BENCH_SIZES=3000,10000`, `IDSYNC_BENCH_CONCURRENCY=8`).
#![expect(clippy::expect_used, reason = "bench setup: a failure stops the bench")]

use std::collections::BTreeMap;

use idsync_scim::BulkMode;
use idsync_testkit::scim2::Scim2Server;

mod common;

use common::{count, engine_run, env, group_members, raw_loop};

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(_) = idsync_testkit::scim2::scim2_binary() else {
        eprintln!("skipping groups: scim2-server is not installed (bash .ci/install)");
        return;
    };
    let c = env("IDSYNC_BENCH_CONCURRENCY", 8);
    let sizes = std::env::var("IDSYNC_BENCH_SIZES").unwrap_or_else(|_| "3000,10000".into());
    for n in sizes.split(',').filter_map(|s| s.trim().parse::<usize>().ok()) {
        let server = Scim2Server::start().await.expect("scim2-server");
        let raw = raw_loop(&server, n, c).await;
        assert_eq!(count(&server).await, n as u64, "raw: not every user is on the server");
        drop(server);

        let server = Scim2Server::start().await.expect("scim2-server");
        let users_only = engine_run(&server.base_url(), server.token(), n, c, BulkMode::Auto, false).await;
        assert_eq!(
            count(&server).await,
            n as u64,
            "users only: not every user is on the server"
        );
        drop(server);

        let server = Scim2Server::start().await.expect("scim2-server");
        let proxy = server.fault_proxy().await.expect("proxy");
        let with_group = engine_run(&proxy.base_url(), server.token(), n, c, BulkMode::Auto, true).await;
        assert_eq!(count(&server).await, n as u64, "group: not every user is on the server");
        assert_eq!(group_members(&server).await, n, "group: not every user is in the group");
        let mut requests = BTreeMap::<String, usize>::new();
        for seen in proxy.seen() {
            *requests.entry(seen.method.to_string()).or_default() += 1;
        }
        let (raw, users_only, with_group) = (raw.as_secs_f64(), users_only.as_secs_f64(), with_group.as_secs_f64());
        println!(
            "groups {n} users, concurrency {c}: raw loop without the group {raw:.2} s; idsync users only {users_only:.2} s; \
             idsync users + group {with_group:.2} s ({:.2}x the raw loop, goal <= 1.2x); the group takes {:.0} % \
             of the run; requests {requests:?}",
            with_group / raw,
            100.0 * (with_group - users_only).max(0.0) / with_group,
        );
    }
}
