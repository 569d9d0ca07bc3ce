//! Planning 10k, 100k and 1M identities (1 % changed, 0.1 % new, 0.1 %
//! gone, groups included) against a bare HashMap join of the same data, in
//! the same run. Also prints the planner's peak memory beyond its input, per
//! identity, measured with a counting allocator.
//!
//! Run: `cargo bench --bench planner` (IDSYNC_BENCH_SIZES=10000,100000 to
//! choose sizes).
#![expect(clippy::unwrap_used, reason = "bench setup: a failure stops the bench")]

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use idsync::plan::{PlanInput, ReadMode, plan};
use idsync::{Completeness, Link, ObjectKind, Profile, SourceObject, TargetAccount, TargetCapabilities, TargetId};

mod heap;

#[global_allocator]
static ALLOC: heap::Counting = heap::Counting;

const FIELDS: [(&str, &str); 4] = [
    ("first", "givenName"),
    ("last", "sn"),
    ("email", "mail"),
    ("dept", "department"),
];
const GROUP_SIZE: usize = 200;

fn profile() -> Profile {
    let users: Vec<_> = FIELDS
        .iter()
        .map(|(f, a)| serde_json::json!({"field": f, "attribute": a}))
        .collect();
    serde_json::from_value(serde_json::json!({
        "id": "77777777-7777-4777-8777-777777777777",
        "name": "bench",
        "mapping": {"users": users, "groups": [{"field": "name", "attribute": "cn"}]},
        "rules": {"threshold": {"max_count": null, "max_percent": null}}
    }))
    .unwrap()
}

fn user(i: usize) -> SourceObject {
    SourceObject::new(format!("{i:08x}-0000-4000-8000-000000000000"), ObjectKind::User)
        .in_container("OU=People,DC=acme,DC=test")
        .with("givenName", format!("Given{i}"))
        .with("sn", format!("Family{i}"))
        .with("mail", format!("user{i}@acme.test"))
        .with("department", ["Sales", "Support", "IT", "HR"][i % 4])
}

/// The data: the target as a previous sync left it, and the source now.
struct Data {
    objects: Vec<SourceObject>,
    linked: Vec<TargetAccount>,
}

fn data(n: usize, p: &Profile) -> Data {
    let groups = (n / 500).max(1);
    let mut objects: Vec<SourceObject> = (0..n).map(user).collect();
    for g in 0..groups {
        let mut group = SourceObject::new(format!("group-{g:06}"), ObjectKind::Group).with("cn", format!("group {g}"));
        group.members = (0..GROUP_SIZE)
            .map(|k| objects[(g * GROUP_SIZE + k) % n].id.clone())
            .collect();
        objects.push(group);
    }
    // The target as the last sync left it.
    let mut linked: Vec<TargetAccount> = objects
        .iter()
        .enumerate()
        .map(|(i, o)| TargetAccount {
            id: TargetId(format!("t{i}")),
            link: Some(Link {
                profile: p.id,
                external: o.id.clone(),
            }),
            kind: o.kind,
            fields: p.mapping.fields(o),
            enabled: true,
            members: Vec::new(),
        })
        .collect();
    let target_of: HashMap<_, _> = linked
        .iter()
        .map(|a| (a.link.as_ref().unwrap().external.clone(), a.id.clone()))
        .collect();
    for (a, o) in linked.iter_mut().zip(&objects) {
        a.members = o.members.iter().map(|m| target_of[m].clone()).collect();
    }
    // Now: 1 % changed, 0.1 % gone, 0.1 % new (the new ones join a group).
    for i in (0..n).step_by(100) {
        objects[i]
            .attributes
            .insert("sn".into(), vec![idsync::AttrValue::Text(format!("Renamed{i}"))]);
    }
    let gone: HashSet<_> = (0..n).skip(37).step_by(1000).map(|i| objects[i].id.clone()).collect();
    objects.retain(|o| !gone.contains(&o.id));
    for o in objects.iter_mut().filter(|o| o.kind == ObjectKind::Group) {
        o.members.retain(|m| !gone.contains(m));
    }
    let new: Vec<SourceObject> = (n..n + n / 1000).map(user).collect();
    if let Some(g) = objects.iter_mut().find(|o| o.kind == ObjectKind::Group) {
        g.members.extend(new.iter().map(|o| o.id.clone()));
    }
    objects.extend(new);
    Data { objects, linked }
}

fn run_planner(d: &Data, p: &Profile) -> usize {
    let plan = plan(PlanInput {
        profile: p,
        capabilities: TargetCapabilities::default()
            .with_groups(true)
            .with_disable(true)
            .with_disable_groups(true)
            .with_delete(false)
            .with_veto(false),
        mode: ReadMode::Full,
        completeness: &Completeness::Complete,
        objects: &d.objects,
        deleted: &[],
        linked: &d.linked,
        linked_total: d.linked.len(),
        candidates: &[],
        assigned: None,
        unread_groups: &[],
        gone: &Default::default(),
        confirmed: false,
    });
    plan.operations.len()
}

/// The baseline: join on the external id, compare the mapped attributes,
/// diff the member sets, find the gone. No rules, no findings, no plan.
fn bare_join(d: &Data) -> usize {
    let by_ext: HashMap<&str, &TargetAccount> = d
        .linked
        .iter()
        .map(|a| (a.link.as_ref().unwrap().external.as_str(), a))
        .collect();
    let mut ops = 0;
    let mut seen: HashSet<&str> = HashSet::with_capacity(d.objects.len());
    for o in &d.objects {
        seen.insert(o.id.as_str());
        match by_ext.get(o.id.as_str()) {
            None => ops += 1,
            Some(a) => {
                if o.kind == ObjectKind::User
                    && FIELDS
                        .iter()
                        .any(|(f, attr)| a.fields.get(*f).map(String::as_str) != o.first_text(attr))
                {
                    ops += 1;
                }
                if o.kind == ObjectKind::Group {
                    let want: HashSet<&TargetId> = o
                        .members
                        .iter()
                        .filter_map(|m| by_ext.get(m.as_str()))
                        .map(|t| &t.id)
                        .collect();
                    let have: HashSet<&TargetId> = a.members.iter().collect();
                    ops += want.symmetric_difference(&have).count();
                }
            }
        }
    }
    ops + d
        .linked
        .iter()
        .filter(|a| !seen.contains(a.link.as_ref().unwrap().external.as_str()))
        .count()
}

fn sizes() -> Vec<usize> {
    std::env::var("IDSYNC_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000])
}

fn bench(c: &mut Criterion) {
    let p = profile();
    let mut group = c.benchmark_group("planner");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    for n in sizes() {
        let d = data(n, &p);
        let identities = d.objects.len();
        // Memory beyond the input, measured once.
        let before = heap::start();
        let ops = black_box(run_planner(&d, &p));
        let extra = heap::peak_since(before);
        println!(
            "planner n={n}: {identities} identities, {ops} operations, peak memory beyond the input {} bytes/identity ({} MiB)",
            extra / identities.max(1),
            extra >> 20
        );
        group.throughput(Throughput::Elements(identities as u64));
        group.bench_with_input(BenchmarkId::new("plan", n), &d, |b, d| {
            b.iter(|| black_box(run_planner(d, &p)))
        });
        group.bench_with_input(BenchmarkId::new("bare_hashmap_join", n), &d, |b, d| {
            b.iter(|| black_box(bare_join(d)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
