//! A full read of 100k users (and 200 groups) from a real slapd against
//! `ldapsearch -E pr=1000/noprompt` on the same server in the same run, and
//! a syncrepl delta with 0.1 % of the entries changed against the full read.
//! Needs slapd and ldap-utils (`bash .ci/install`); skips otherwise.
//!
//! Run: `cargo bench --bench ldap_read --features ldap`
//! (`IDSYNC_BENCH_USERS` changes the size).
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "bench setup: a failure stops the bench"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use idsync::ldap::{Flavor, LdapConfig, LdapSource};
use idsync::{Cursor, DeltaItem, ReadItem, Scope, Source};
use idsync_testkit::slapd::{Slapd, SlapdOptions};

fn users() -> usize {
    std::env::var("IDSYNC_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

async fn full_read(source: &LdapSource) -> (usize, Option<Cursor>) {
    let mut stream = source.read_full(&Scope::default()).await.expect("read_full");
    let (mut n, mut cursor) = (0, None);
    while let Some(item) = stream.next().await {
        match item.expect("item") {
            ReadItem::Object(_) => n += 1,
            ReadItem::End { cursor: c, .. } => cursor = c,
            other => panic!("an item this bench does not know: {other:?}"),
        }
    }
    (n, cursor)
}

async fn delta_read(source: &LdapSource, from: &Cursor) -> usize {
    let mut stream = source.read_delta(&Scope::default(), from).await.expect("read_delta");
    let mut n = 0;
    while let Some(item) = stream.next().await {
        if let DeltaItem::Changed(_) = item.expect("item") {
            n += 1;
        }
    }
    n
}

fn ldapsearch(s: &Slapd) -> usize {
    let out = std::process::Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-H",
            &s.url(),
            "-D",
            &s.admin_dn(),
            "-w",
            s.admin_password(),
            "-b",
            s.base_dn(),
        ])
        .args([
            "-E",
            "pr=1000/noprompt",
            "(|(objectClass=inetOrgPerson)(objectClass=groupOfNames))",
        ])
        .output()
        .expect("ldapsearch");
    out.stdout
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"dn:"))
        .count()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let n = users();
    let Some(server) =
        rt.block_on(async { idsync_testkit::gate("slapd", Slapd::start(SlapdOptions::with_users(n, 200)).await) })
    else {
        return;
    };
    let mut config = LdapConfig::new(
        &server.url(),
        &server.admin_dn(),
        server.admin_password(),
        server.base_dn(),
        Flavor::Generic,
    );
    config.page_size = 1000;
    let source = LdapSource::new(config);
    let (read, cursor) = rt.block_on(full_read(&source));
    assert_eq!(read, n + 200);
    assert_eq!(ldapsearch(&server), n + 200);

    let mut group = c.benchmark_group("ldap_read");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements((n + 200) as u64));
    group.bench_function("idsync_full_read", |b| {
        b.iter(|| black_box(rt.block_on(full_read(&source)).0))
    });
    group.bench_function("ldapsearch_paged", |b| b.iter(|| black_box(ldapsearch(&server))));

    // 0.1 % of the users change; a delta from the cookie taken before.
    let cursor = cursor.expect("slapd with syncprov gives a cursor");
    let changed = n / 1000;
    let mut ldif = String::new();
    for i in 0..changed {
        let uid = idsync_testkit::slapd::user_uid(i * 1000);
        ldif.push_str(&format!(
            "dn: uid={uid},{}\nchangetype: modify\nreplace: title\ntitle: bench\n\n",
            server.people_dn()
        ));
    }
    rt.block_on(server.ldapmodify(&ldif)).expect("ldapmodify");
    assert_eq!(rt.block_on(delta_read(&source, &cursor)), changed);
    group.throughput(Throughput::Elements(changed as u64));
    group.bench_function("idsync_delta_read_0.1pct", |b| {
        b.iter(|| black_box(rt.block_on(delta_read(&source, &cursor))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
