//! Delta: what a delta run costs, as a user sees it. A real slapd holds N
//! users (3,000 and 30,000 by default) in five OUs and three groups (one
//! with every user, one of 300, one of 140), synced into a real
//! scim2-server. Then 110 changes — 30 renames, 50 moves to another OU,
//! 20 leavers, 10 hires, and 100 members removed from the big group — and
//! one delta run, timed; then a delta run with no change, timed. The
//! baseline, in the same run: a full read and plan of the same directory
//! and application (a dry run), the cost a run has when it cannot use a
//! delta.
//!
//! Goals (issue 15): the delta at most 2 s, the delta with no change at
//! most 0.3 s, at both sizes. Single-shot runs, not criterion samples: the
//! initial sync of 30,000 users takes minutes. Needs slapd and scim2-server
//! (`bash .ci/install`); skips otherwise.
//!
//! Run: `cargo bench --bench delta --features ldap,scim`
//! (`IDSYNC_BENCH_SIZES=3000,30000`).
#![expect(clippy::expect_used, reason = "bench setup: a failure stops the bench")]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use idsync::ldap::{Flavor, LdapConfig, LdapSource};
use idsync::scim::{ScimConfig, ScimTarget};
use idsync::{Engine, EngineOptions, MemoryStateStore, Profile, RunOptions, RunReport};
use idsync_testkit::scim2::Scim2Server;
use idsync_testkit::slapd::{DEFAULT_SUFFIX, Slapd, SlapdOptions, ous_ldif, user_dn, user_ldif, users_ldif};

const OUS: [&str; 5] = ["o0", "o1", "o2", "o3", "o4"];

fn profile() -> Profile {
    let base = DEFAULT_SUFFIX;
    let mut containers: Vec<String> = OUS.iter().map(|ou| format!("ou={ou},{base}")).collect();
    containers.push(format!("ou=groups,{base}"));
    serde_json::from_value(serde_json::json!({
        "id": "7e1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b", "name": "delta",
        "scope": {"containers": containers},
        "mapping": {"users": [{"field": "userName", "attribute": "uid"},
                              {"field": "displayName", "attribute": "displayName"},
                              {"field": "name.givenName", "attribute": "givenName"},
                              {"field": "name.familyName", "attribute": "sn"},
                              {"field": "emails[type eq \"work\"].value", "attribute": "mail"}],
                    "groups": [{"field": "displayName", "attribute": "cn"}]}
    }))
    .expect("profile")
}

/// A group of the users `members`.
fn group_ldif(cn: &str, members: impl Iterator<Item = usize>) -> String {
    let mut out = format!("dn: cn={cn},ou=groups,{DEFAULT_SUFFIX}\nobjectClass: groupOfNames\ncn: {cn}\n");
    for i in members {
        let _ = writeln!(out, "member: {}", user_dn(DEFAULT_SUFFIX, i, &OUS));
    }
    out.push('\n');
    out
}

/// The 110 changes, as one LDIF for ldapmodify.
fn changes(n: usize) -> String {
    let base = DEFAULT_SUFFIX;
    let mut out = String::new();
    let spread = |k: usize, count: usize| (k * n / count + 7) % n;
    for k in 0..30 {
        let i = spread(k, 30);
        let _ = writeln!(
            out,
            "dn: {}\nchangetype: modrdn\nnewrdn: uid=renamed{i:06}\ndeleteoldrdn: 1\n",
            user_dn(base, i, &OUS)
        );
    }
    for k in 0..50 {
        let i = spread(k, 50) + 1;
        let to = OUS[(i + 1) % OUS.len()];
        let _ = writeln!(
            out,
            "dn: {}\nchangetype: modrdn\nnewrdn: uid={}\ndeleteoldrdn: 0\nnewsuperior: ou={to},{base}\n",
            user_dn(base, i, &OUS),
            idsync_testkit::slapd::user_uid(i)
        );
    }
    for k in 0..20 {
        let i = spread(k, 20) + 2;
        let _ = writeln!(out, "dn: {}\nchangetype: delete\n", user_dn(base, i, &OUS));
    }
    for i in n..n + 10 {
        let add = user_ldif(base, i, &OUS).replacen('\n', "\nchangetype: add\n", 1);
        out.push_str(&add);
    }
    let _ = writeln!(
        out,
        "dn: cn=everyone,ou=groups,{base}\nchangetype: modify\ndelete: member"
    );
    for k in 0..100 {
        let _ = writeln!(out, "member: {}", user_dn(base, spread(k, 100) + 3, &OUS));
    }
    out.push_str("-\n\n");
    out
}

fn summary(r: &RunReport) -> String {
    let c = &r.plan.counts;
    format!(
        "{:?}: {} create, {} update, {} disable, {} member add, {} member remove, {} failed",
        r.plan.mode, c.create, c.update, c.disable, c.add_member, c.remove_member, r.tally.failed
    )
}

async fn timed(engine: &Engine, options: &RunOptions) -> (RunReport, Duration) {
    let started = Instant::now();
    let report = engine.run(options).await.expect("run");
    (report, started.elapsed())
}

async fn bench(n: usize) {
    let mut ldif = ous_ldif(DEFAULT_SUFFIX, &OUS);
    ldif.push_str(&users_ldif(DEFAULT_SUFFIX, n, &OUS));
    ldif.push_str(&group_ldif("everyone", 0..n));
    ldif.push_str(&group_ldif("three-hundred", 0..300.min(n)));
    ldif.push_str(&group_ldif("one-forty", 300.min(n)..440.min(n)));
    let slapd = Slapd::start(SlapdOptions {
        ldif,
        ..SlapdOptions::default()
    })
    .await
    .expect("slapd");
    let scim = Scim2Server::start().await.expect("scim2-server");
    let ldap = LdapConfig::new(
        &slapd.url(),
        &slapd.admin_dn(),
        slapd.admin_password(),
        slapd.base_dn(),
        Flavor::Generic,
    );
    let source = Arc::new(LdapSource::connect(ldap).await.expect("ldap"));
    let proxy = scim.fault_proxy().await.expect("proxy");
    let mut scim_config = ScimConfig::new(proxy.base_url().parse().expect("url"), scim.token());
    // scim2-server filters by scanning every resource: at 30,000 users a
    // look-up of a few dozen ids takes longer than the default 30 s.
    scim_config.http.timeout_ms = 600_000;
    let target = ScimTarget::connect(scim_config).await.expect("scim");
    let engine = Engine::new(profile(), source, Arc::new(target), Arc::new(MemoryStateStore::new())).with_options(
        EngineOptions {
            full_every: None,
            ..EngineOptions::default()
        },
    );
    let (initial, took) = timed(&engine, &RunOptions::default()).await;
    assert_eq!(
        initial.tally.failed,
        0,
        "the initial sync failed: {}",
        initial.to_json()
    );
    println!(
        "delta {n} users: initial sync {:.1} s ({})",
        took.as_secs_f64(),
        summary(&initial)
    );

    slapd.ldapmodify(&changes(n)).await.expect("ldapmodify");
    proxy.clear_seen();
    let (delta, delta_time) = timed(&engine, &RunOptions::default()).await;
    let delta_requests = requests(&proxy);
    assert_eq!(delta.tally.failed, 0, "the delta failed: {}", delta.to_json());
    proxy.clear_seen();
    let (quiet, quiet_time) = timed(&engine, &RunOptions::default()).await;
    let quiet_requests = requests(&proxy);
    assert!(
        quiet.plan.is_empty(),
        "the second delta has nothing to do: {}",
        quiet.plan
    );
    let full = RunOptions {
        full: true,
        dry_run: true,
        ..RunOptions::default()
    };
    let (baseline, full_time) = timed(&engine, &full).await;
    assert!(
        baseline.plan.is_empty(),
        "deltas and a full read agree: {}",
        baseline.plan
    );
    println!(
        "delta {n} users: 110 changes {:.2} s (goal <= 2 s; {}; read {} ms, apply {} ms; requests {delta_requests:?}); \
         no change {:.3} s (goal <= 0.3 s; requests {quiet_requests:?}); baseline full read and plan {:.2} s",
        delta_time.as_secs_f64(),
        summary(&delta),
        delta.read_ms,
        delta.apply_ms,
        quiet_time.as_secs_f64(),
        full_time.as_secs_f64(),
    );
}

/// The requests the target sent through the proxy, by method.
fn requests(proxy: &idsync_testkit::scim2::FaultProxy) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for seen in proxy.seen() {
        *out.entry(seen.method.to_string()).or_default() += 1;
    }
    out
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if idsync_testkit::scim2::scim2_binary().is_none() {
        eprintln!("skipping delta: scim2-server is not installed (bash .ci/install)");
        return;
    }
    let sizes = std::env::var("IDSYNC_BENCH_SIZES").unwrap_or_else(|_| "3000,30000".into());
    for n in sizes.split(',').filter_map(|s| s.trim().parse::<usize>().ok()) {
        bench(n).await;
    }
}
