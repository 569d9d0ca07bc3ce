//! What big groups cost on a real slapd (issue 15).
//!
//! Source: `read_one` of a group of N members (what a generic LDAP delta
//! does for every group that named a renamed or moved member), and a
//! syncrepl delta that changes that group, against a floor measured in the
//! same run: one paged `ldapsearch` of the N member entries' entryUUIDs
//! (the data the resolution must fetch, in the fewest requests). One
//! untimed pass, then the median of three timed ones.
//!
//! Target: M members added to an empty group through `LdapTarget`, one
//! operation a call (`apply`, as the engine sent them before batches: two
//! DN look-ups and a modify each) against batches of `members_per_modify`
//! (`apply_batch`, as the engine sends them now). One timed pass of each;
//! the group is emptied in between.
//!
//! Needs slapd and ldap-utils (`bash .ci/install`); skips otherwise.
//!
//! Run: `cargo bench -p idsync-ldap --bench members`
//! (`IDSYNC_BENCH_MEMBERS`, 30,000 by default; `IDSYNC_BENCH_ADDS`, 5,000).
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "bench setup: a failure stops the bench"
)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use idsync_core::{Cursor, DeltaItem, ExternalId, ObjectKind, ReadItem, Scope, Source, Target, TargetId, TargetOp};
use idsync_ldap::{Flavor, LdapConfig, LdapSource, LdapTarget};
use idsync_testkit::slapd::{Slapd, SlapdOptions, group_dn, user_uid};

fn size(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The median of three timed runs of `f` (after one untimed run), and
/// what the last one returned.
async fn median<T, F, Fut>(mut f: F) -> (Duration, T)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let _ = f().await;
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let started = Instant::now();
        last = Some(f().await);
        times.push(started.elapsed());
    }
    times.sort();
    (times[1], last.expect("three runs"))
}

/// The group's id, the users' ids and the syncrepl cursor of a full read.
async fn full_read(source: &LdapSource) -> (ExternalId, Vec<ExternalId>, Cursor) {
    let mut stream = source.read_full(&Scope::default()).await.expect("read_full");
    let (mut group, mut users, mut cursor) = (None, Vec::new(), None);
    while let Some(item) = stream.next().await {
        match item.expect("item") {
            ReadItem::Object(o) if o.kind == ObjectKind::Group => group = Some(o.id),
            ReadItem::Object(o) => users.push(o.id),
            ReadItem::End { cursor: c, .. } => cursor = c,
            other => panic!("a case this code does not know: {other:?}"),
        }
    }
    (group.expect("the group"), users, cursor.expect("a syncrepl cursor"))
}

/// The member count of the group a delta from `from` returns.
async fn delta(source: &LdapSource, from: &Cursor) -> usize {
    let mut stream = source.read_delta(&Scope::default(), from).await.expect("read_delta");
    let mut members = None;
    while let Some(item) = stream.next().await {
        if let DeltaItem::Changed(o) = item.expect("item")
            && o.kind == ObjectKind::Group
        {
            members = Some(o.members.len());
        }
    }
    members.expect("the changed group")
}

/// `ldapsearch` of the users' entryUUIDs, paged: the floor.
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
        ])
        .args([
            "-b",
            &s.people_dn(),
            "-E",
            "pr=1000/noprompt",
            "(objectClass=inetOrgPerson)",
            "entryUUID",
        ])
        .output()
        .expect("ldapsearch");
    out.stdout
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"entryUUID:"))
        .count()
}

#[tokio::main]
async fn main() {
    let n = size("IDSYNC_BENCH_MEMBERS", 30_000);
    let adds = size("IDSYNC_BENCH_ADDS", 5_000).min(n);
    let server = match Slapd::start(SlapdOptions::with_users(n, 1)).await {
        Ok(s) => s,
        Err(e) if std::env::var_os("IDSYNC_REQUIRE_SERVERS").is_some() => panic!("slapd required: {e}"),
        Err(e) => {
            eprintln!("members: skipped, slapd cannot start: {e}");
            return;
        }
    };
    let config = LdapConfig::new(
        &server.url(),
        &server.admin_dn(),
        server.admin_password(),
        server.base_dn(),
        Flavor::Generic,
    );
    let source = LdapSource::new(config.clone());
    let (group, users, cursor) = full_read(&source).await;

    let (floor, found) = median(|| async { ldapsearch(&server) }).await;
    assert_eq!(found, n);
    println!("floor: ldapsearch of {n} entryUUIDs, paged 1000: {floor:.2?}");

    let (time, object) = median(|| async {
        source
            .read_one(&Scope::default(), &group)
            .await
            .expect("read_one")
            .expect("the group")
    })
    .await;
    assert_eq!(object.members.len(), n);
    println!("read_one of a group of {n} members: {time:.2?}");

    // The group loses its first member; the delta reads it whole.
    let ldif = format!(
        "dn: {}\nchangetype: modify\ndelete: member\nmember: uid={},{}\n",
        group_dn(server.base_dn(), 0),
        user_uid(0),
        server.people_dn()
    );
    server.ldapmodify(&ldif).await.expect("ldapmodify");
    let (time, left) = median(|| delta(&source, &cursor)).await;
    assert_eq!(left, n - 1);
    println!("syncrepl delta of that group (one member removed): {time:.2?}");

    // The target: `adds` members into an empty group, one by one, then in
    // batches.
    let empty = format!("cn=bench,{}", server.groups_dn());
    server
        .ldapadd(&format!("dn: {empty}\nobjectClass: groupOfNames\ncn: bench\nmember:\n"))
        .await
        .expect("ldapadd");
    let found = server
        .search(&empty, "(objectClass=*)", &["entryUUID"])
        .await
        .expect("search");
    let bench = TargetId(found[0].first_str("entryUUID").expect("entryUUID"));
    let ops: Vec<TargetOp> = users[..adds]
        .iter()
        .map(|u| TargetOp::AddMember {
            group: bench.clone(),
            member: TargetId(u.0.clone()),
        })
        .collect();
    let target = LdapTarget::new(config);
    let started = Instant::now();
    for op in &ops {
        target.apply(op).await.expect("apply");
    }
    let one_by_one = started.elapsed();
    server
        .ldapmodify(&format!("dn: {empty}\nchangetype: modify\nreplace: member\nmember:\n"))
        .await
        .expect("ldapmodify");
    let batch = target.capabilities().batch;
    let started = Instant::now();
    for chunk in ops.chunks(batch) {
        assert!(target.apply_batch(chunk).await.iter().all(|r| r.is_ok()));
    }
    let batched = started.elapsed();
    let held = server
        .search(&empty, "(objectClass=*)", &["member"])
        .await
        .expect("search");
    assert_eq!(
        held[0].strs("member").len(),
        adds + 1,
        "the members and the placeholder"
    );
    println!("{adds} member adds, one operation a call: {one_by_one:.2?}");
    println!("{adds} member adds, in batches of {batch}: {batched:.2?}");
}
