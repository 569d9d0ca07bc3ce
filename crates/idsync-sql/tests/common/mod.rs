//! Checks shared by the SQLite and PostgreSQL tests, each given a URL.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use idsync_core::memory::{MemorySource, MemoryTarget};
use idsync_core::{
    Cursor, Engine, ErrorKind, ExternalId, Fields, MemoryStateStore, ObjectKind, Profile, ProfileId, ProfileState,
    RunOptions, SourceObject, StateStore,
};
use idsync_sql::{SqlStateStore, SqlTarget, SqlTargetConfig};
use idsync_testkit::behaviour::target;

pub fn user_fields(prefix: &str, n: u32) -> Fields {
    [
        ("userName", format!("{prefix}-user{n}")),
        ("email", format!("{prefix}-user{n}@acme.test")),
        ("givenName", "Tëst".into()),
        ("familyName", format!("User{n}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

pub fn group_fields(prefix: &str, n: u32) -> Fields {
    [("name".to_owned(), format!("{prefix} group{n}"))]
        .into_iter()
        .collect()
}

pub fn target_profile() -> Profile {
    serde_json::from_value(serde_json::json!({
        "id": "a1a1a1a1-0000-4000-8000-000000000003", "name": "to sql",
        "mapping": {"users": [{"field": "userName", "attribute": "uid"},
                              {"field": "displayName", "template": "{givenName} {sn}"},
                              {"field": "familyName", "attribute": "sn"},
                              {"field": "givenName", "attribute": "givenName"},
                              {"field": "email", "attribute": "mail"}],
                    "groups": [{"field": "name", "attribute": "cn"}]}
    }))
    .expect("profile")
}

pub fn fixture(prefix: &str) -> target::Fixture {
    target::Fixture {
        prefix: prefix.into(),
        user_fields,
        group_fields,
        correlation_field: "email".into(),
        updatable_field: "familyName".into(),
        profile: target_profile(),
    }
}

/// The behaviour suite with the default configuration.
pub async fn behaviour(url: &str) {
    let t = SqlTarget::connect(url, SqlTargetConfig::default())
        .await
        .expect("connect");
    target::run(Arc::new(t), &fixture("bt")).await.assert_ok();
}

/// The behaviour suite on custom tables: text ids, other names, no groups.
pub async fn behaviour_custom(url: &str) {
    let config: SqlTargetConfig = serde_json::from_value(serde_json::json!({
        "users": {"table": "app_accounts", "id_column": "account_id", "id_type": "text",
                  "columns": {"userName": "login", "email": "mail", "givenName": "first", "familyName": "last",
                              "displayName": "shown"},
                  "enabled_column": "active"},
        "links_table": "app_idsync_links",
        "allow_delete": false
    }))
    .expect("config");
    let t = SqlTarget::connect(url, config).await.expect("connect");
    let caps = idsync_core::Target::capabilities(&t);
    assert!(!caps.groups && caps.disable && !caps.delete);
    let report = target::run(Arc::new(t), &fixture("ct")).await;
    report.assert_ok();
    assert_eq!(report.skipped.len(), 2, "{report}");
}

/// Unknown columns and bad identifiers are clear errors naming the field.
pub async fn bad_config(url: &str) {
    // A table made by hand without the email column.
    let mut config = SqlTargetConfig::default();
    config.users.table = "handmade_users".into();
    config.groups = None;
    let t = SqlTarget::open(url, config.clone()).await.expect("open");
    let _ = idsync_core::Target::backend(&t);
    t.create_schema().await.expect("schema");
    let mut wrong = config.clone();
    wrong.users.columns.insert("phone".into(), "phone_number".into());
    let e = SqlTarget::open(url, wrong)
        .await
        .expect("open")
        .verify()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_eq!(e.field_name(), Some("users.columns.phone"), "{e}");
    assert!(e.to_string().contains("users.columns.phone"), "{e}");

    let mut missing = config.clone();
    missing.users.table = "no_such_table".into();
    let e = SqlTarget::open(url, missing)
        .await
        .expect("open")
        .verify()
        .await
        .unwrap_err();
    assert_eq!(e.field_name(), Some("users.table"), "{e}");

    for (field, mutate) in [
        (
            "users.table",
            (|c: &mut SqlTargetConfig| c.users.table = "users; drop table x".into()) as fn(&mut _),
        ),
        ("users.columns.email", |c| {
            c.users.columns.insert("email".into(), "e\"mail".into());
        }),
        ("users.enabled_column", |c| c.users.enabled_column = Some("1abc".into())),
        ("links_table", |c| c.links_table = "a.b.c".into()),
    ] {
        let mut bad = config.clone();
        mutate(&mut bad);
        let e = SqlTarget::connect(url, bad).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert_eq!(e.field_name(), Some(field), "{e}");
        assert!(e.to_string().contains(field), "{e}");
    }
    let e: Result<SqlTargetConfig, _> =
        serde_json::from_value(serde_json::json!({"users": {"table": "u", "columns": {}, "colour": 1}}));
    assert!(e.unwrap_err().to_string().contains("colour"));
    // A field the configuration does not map.
    let t = SqlTarget::connect(url, config).await.expect("connect");
    let e = idsync_core::Target::apply(
        &t,
        &idsync_core::TargetOp::Create {
            kind: ObjectKind::User,
            link: idsync_core::Link {
                profile: ProfileId::new_random(),
                external: ExternalId::from("x"),
            },
            fields: [("shoeSize".to_owned(), "44".to_owned())].into_iter().collect(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("shoeSize"), "{e}");
    // Values are bound, never spliced: a hostile value is just a value.
    let hostile = "x'); DROP TABLE handmade_users; --";
    let found = idsync_core::Target::lookup(
        &t,
        &[idsync_core::Lookup::Field {
            kind: ObjectKind::User,
            field: "email".into(),
            value: hostile.into(),
        }],
    )
    .await
    .expect("lookup");
    assert!(found.is_empty());
    t.verify().await.expect("the table is still there");
}

pub async fn state_round_trip(url: &str) {
    let store = SqlStateStore::connect(url).await.expect("connect");
    let profile = ProfileId::new_random();
    assert_eq!(store.load(profile).await.expect("load"), ProfileState::default());
    let mut state = ProfileState {
        cursor: Some(Cursor("c1".into())),
        last_full_unix: Some(42),
        retry: [ExternalId::from("u1")].into_iter().collect(),
        ..ProfileState::default()
    };
    store.save(profile, &state).await.expect("save");
    assert_eq!(store.load(profile).await.expect("load"), state);
    state.cursor = Some(Cursor("c2 ünïcode".into()));
    state.retry.clear();
    store.save(profile, &state).await.expect("save again");
    assert_eq!(store.load(profile).await.expect("load"), state);
    // Another store on the same database sees it; other profiles are apart.
    let again = SqlStateStore::connect(url).await.expect("connect again");
    assert_eq!(again.load(profile).await.expect("load"), state);
    assert_eq!(
        again.load(ProfileId::new_random()).await.expect("load"),
        ProfileState::default()
    );
}

pub async fn history(url: &str) {
    let store = SqlStateStore::connect(url).await.expect("connect");
    let profile: Profile = {
        let mut p = target_profile();
        p.id = ProfileId::new_random();
        p
    };
    let source = MemorySource::with_objects(vec![
        SourceObject::new("h1", ObjectKind::User)
            .with("uid", "h1")
            .with("mail", "h1@acme.test"),
    ]);
    let engine = Engine::new(
        profile.clone(),
        Arc::new(source.clone()),
        Arc::new(MemoryTarget::new()),
        Arc::new(MemoryStateStore::new()),
    );
    let mut reports = Vec::new();
    for n in 0..3 {
        source.upsert(SourceObject::new(format!("h{}", n + 2), ObjectKind::User).with("uid", format!("h{}", n + 2)));
        let r = engine.run(&RunOptions::default()).await.expect("run");
        store.record(&r).await.expect("record");
        reports.push(r);
    }
    let other = ProfileId::new_random();
    assert!(store.history(other, 10).await.expect("history").is_empty());
    let all = store.history(profile.id, 10).await.expect("history");
    assert_eq!(all.len(), 3);
    let json = |r: &idsync_core::RunReport| serde_json::to_value(r).expect("json");
    assert_eq!(
        all.iter().map(json).collect::<Vec<_>>(),
        reports.iter().map(json).collect::<Vec<_>>()
    );
    let last2 = store.history(profile.id, 2).await.expect("history");
    assert_eq!(
        last2.iter().map(json).collect::<Vec<_>>(),
        reports[1..].iter().map(json).collect::<Vec<_>>()
    );
}

/// Two stores (separate pools) loop taking the leases of a few profiles;
/// the intervals in which each held a profile never overlap, and both got
/// work. Then an expired lease is taken over and cannot be renewed.
pub async fn two_workers_never_overlap(url: &str, rounds: usize) {
    let a = SqlStateStore::connect(url).await.expect("connect a");
    let b = SqlStateStore::connect(url).await.expect("connect b");
    let profiles: Vec<ProfileId> = (0..3).map(|_| ProfileId::new_random()).collect();
    let ttl = Duration::from_secs(30);
    let worker = |store: SqlStateStore, name: &'static str, profiles: Vec<ProfileId>| {
        tokio::spawn(async move {
            let mut held: Vec<(ProfileId, i64, Instant, Instant)> = Vec::new();
            for i in 0..rounds {
                let p = profiles[i % profiles.len()];
                if let Some(lease) = store.try_lease(p, name, ttl).await.expect("try_lease") {
                    let start = Instant::now();
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    let lease = store.renew(&lease, ttl).await.expect("renew").expect("still held");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    let end = Instant::now();
                    assert!(store.release(&lease).await.expect("release"));
                    held.push((p, lease.generation, start, end));
                } else {
                    tokio::task::yield_now().await;
                }
            }
            held
        })
    };
    let ha = worker(a.clone(), "worker-a", profiles.clone());
    let hb = worker(b.clone(), "worker-b", profiles.clone());
    let (ra, rb) = (ha.await.expect("worker a"), hb.await.expect("worker b"));
    assert!(
        !ra.is_empty() && !rb.is_empty(),
        "a got {}, b got {}",
        ra.len(),
        rb.len()
    );
    let mut by_profile: BTreeMap<ProfileId, Vec<(i64, Instant, Instant, &str)>> = BTreeMap::new();
    for (p, g, s, e) in &ra {
        by_profile.entry(*p).or_default().push((*g, *s, *e, "a"));
    }
    for (p, g, s, e) in &rb {
        by_profile.entry(*p).or_default().push((*g, *s, *e, "b"));
    }
    for (p, mut spans) in by_profile {
        spans.sort_by_key(|s| s.1);
        for w in spans.windows(2) {
            assert!(w[0].2 <= w[1].1, "{p}: {:?} overlaps {:?}", w[0], w[1]);
            assert!(
                w[0].0 < w[1].0,
                "{p}: generations do not grow: {:?} then {:?}",
                w[0],
                w[1]
            );
        }
    }

    // Expiry: a holds with a short ttl; b cannot take it until it expires.
    let p = ProfileId::new_random();
    let la = a
        .try_lease(p, "worker-a", Duration::from_millis(300))
        .await
        .expect("lease")
        .expect("free");
    assert!(b.try_lease(p, "worker-b", ttl).await.expect("lease").is_none());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let lb = b
        .try_lease(p, "worker-b", ttl)
        .await
        .expect("lease")
        .expect("expired, so b takes over");
    assert!(lb.generation > la.generation);
    assert!(a.renew(&la, ttl).await.expect("renew").is_none(), "a lost its lease");
    assert!(
        !a.release(&la).await.expect("release"),
        "a's release does not free b's lease"
    );
    assert!(a.try_lease(p, "worker-a", ttl).await.expect("lease").is_none());
    assert!(b.release(&lb).await.expect("release"));
    assert!(a.try_lease(p, "worker-a", ttl).await.expect("lease").is_some());
}

/// Two targets (separate pools) create the same links at once: each link
/// ends with one account, and both creators are told its id.
pub async fn concurrent_creates_link_once(url: &str) {
    let a = Arc::new(
        SqlTarget::connect(url, SqlTargetConfig::default())
            .await
            .expect("connect a"),
    );
    let b = Arc::new(
        SqlTarget::connect(url, SqlTargetConfig::default())
            .await
            .expect("connect b"),
    );
    let profile = ProfileId::new_random();
    let op = |n: u32| idsync_core::TargetOp::Create {
        kind: ObjectKind::User,
        link: idsync_core::Link {
            profile,
            external: ExternalId(format!("race-{n}")),
        },
        fields: user_fields("race", n),
    };
    for n in 0..20 {
        let (ta, tb) = (a.clone(), b.clone());
        let (oa, ob) = (op(n), op(n));
        let ja = tokio::spawn(async move { idsync_core::Target::apply(ta.as_ref(), &oa).await });
        let jb = tokio::spawn(async move { idsync_core::Target::apply(tb.as_ref(), &ob).await });
        let ra = ja.await.expect("join").expect("create a");
        let rb = jb.await.expect("join").expect("create b");
        assert_eq!(ra.target, rb.target, "link race-{n}");
    }
    let listed: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(
        idsync_core::Target::linked(a.as_ref(), profile).await.expect("linked"),
    )
    .await
    .expect("linked");
    assert_eq!(listed.len(), 20);
}

/// Users and groups whose row ids overlap (both tables count from 1 in a
/// fresh database): the members read back are the users, so a second run
/// has nothing to do.
pub async fn overlapping_row_ids_converge(url: &str) {
    let person = |id: &str, uid: &str| {
        SourceObject::new(id, ObjectKind::User)
            .with("uid", uid)
            .with("givenName", "Ann")
            .with("sn", uid)
            .with("mail", format!("{uid}@acme.test"))
    };
    let group = |id: &str, cn: &str, members: &[&str]| {
        members
            .iter()
            .fold(SourceObject::new(id, ObjectKind::Group).with("cn", cn), |g, m| {
                g.with_member(*m)
            })
    };
    let source = MemorySource::with_objects([
        person("u1", "ann"),
        person("u2", "bob"),
        person("u3", "cem"),
        group("g1", "one", &["u2", "u3"]),
        group("g2", "two", &["u1"]),
    ]);
    let target = SqlTarget::connect(url, SqlTargetConfig::default())
        .await
        .expect("connect");
    let engine = Engine::new(
        target_profile(),
        Arc::new(source),
        Arc::new(target),
        Arc::new(MemoryStateStore::new()),
    );
    let first = engine.run(&RunOptions::default()).await.expect("first run");
    assert_eq!(first.failures().count(), 0, "{}", first.plan);
    assert_eq!(first.plan.counts.add_member, 3, "{}", first.plan);
    let second = engine
        .prepare(&RunOptions {
            dry_run: true,
            full: true,
            ..RunOptions::default()
        })
        .await
        .expect("second plan");
    assert!(second.plan.operations.is_empty(), "{}", second.plan);
}

/// A worker's writes through its fenced view stop at the take-over: its
/// lease expires, another worker takes the profile, and the first one's
/// state saves and history records are refused (a permanent Conflict naming
/// the profile and both generations) while the new holder's go through.
/// A lease taken again by the same worker name is a new generation: the old
/// view stays refused.
pub async fn fenced_writes_stop_at_a_take_over(url: &str) {
    let a = SqlStateStore::connect(url).await.expect("connect a");
    let b = SqlStateStore::connect(url).await.expect("connect b");
    let profile: Profile = {
        let mut p = target_profile();
        p.id = ProfileId::new_random();
        p
    };
    let p = profile.id;
    let report = {
        let source = MemorySource::with_objects(vec![SourceObject::new("f1", ObjectKind::User).with("uid", "f1")]);
        let engine = Engine::new(
            profile.clone(),
            Arc::new(source),
            Arc::new(MemoryTarget::new()),
            Arc::new(MemoryStateStore::new()),
        );
        engine.run(&RunOptions::default()).await.expect("run")
    };
    let state = |c: &str| ProfileState {
        cursor: Some(Cursor(c.into())),
        ..ProfileState::default()
    };
    let ttl = Duration::from_millis(300);
    let la = a.try_lease(p, "worker-a", ttl).await.expect("lease").expect("free");
    let fa = a.fenced(&la);
    assert_eq!(fa.lease(), &la);
    fa.save(p, &state("a1")).await.expect("a holds the lease");
    fa.record(&report).await.expect("a holds the lease");
    assert_eq!(b.load(p).await.expect("load"), state("a1"));

    tokio::time::sleep(Duration::from_millis(400)).await;
    let lb = b
        .try_lease(p, "worker-b", Duration::from_secs(30))
        .await
        .expect("lease")
        .expect("expired, so b takes over");
    assert_eq!(lb.generation, la.generation + 1);
    let e = fa.save(p, &state("a2")).await.expect_err("a's lease was taken over");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(!e.is_transient());
    let message = e.to_string();
    for part in [
        p.to_string(),
        format!("worker worker-a, generation {}", la.generation),
        format!("worker worker-b holds generation {}", lb.generation),
        "the state refused".into(),
    ] {
        assert!(message.contains(&part), "{message:?} lacks {part:?}");
    }
    let e = fa.record(&report).await.expect_err("a's lease was taken over");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(e.to_string().contains("the run report refused"), "{e}");
    assert_eq!(
        b.load(p).await.expect("load"),
        state("a1"),
        "a's stale save changed nothing"
    );
    assert_eq!(
        b.history(p, 10).await.expect("history").len(),
        1,
        "a's stale record added nothing"
    );

    let fb = b.fenced(&lb);
    fb.save(p, &state("b1")).await.expect("b holds the lease");
    fb.record(&report).await.expect("b holds the lease");
    assert_eq!(a.load(p).await.expect("load"), state("b1"));
    assert_eq!(a.history(p, 10).await.expect("history").len(), 2);

    // The same worker name again: a new generation; the old view is stale.
    assert!(b.release(&lb).await.expect("release"));
    let la2 = a.try_lease(p, "worker-a", ttl).await.expect("lease").expect("released");
    assert!(
        fa.save(p, &state("a3")).await.is_err(),
        "generation {} is stale",
        la.generation
    );
    a.fenced(&la2)
        .save(p, &state("a3"))
        .await
        .expect("a holds the lease again");
    assert_eq!(b.load(p).await.expect("load"), state("a3"));
    // A view saves only its own profile.
    let other = ProfileId::new_random();
    assert_eq!(
        a.fenced(&la2)
            .save(other, &state("x"))
            .await
            .expect_err("another profile")
            .kind(),
        ErrorKind::Internal
    );
    assert_eq!(a.load(other).await.expect("load"), ProfileState::default());
}

/// Workers' scheduling: only due profiles not held are claimed, the
/// profile due longest ago first, busy sources skipped; a claim bumps the
/// generation; `finish` sets the next run and the failures, and refuses a
/// stale lease; scheduling again keeps a profile's next run; `profiles`
/// shows who runs what.
pub async fn scheduling(url: &str) {
    use idsync_sql::Scheduled;
    let store = SqlStateStore::connect(url).await.expect("connect");
    let (a, b, c) = (
        ProfileId::new_random(),
        ProfileId::new_random(),
        ProfileId::new_random(),
    );
    let scheduled = |p: ProfileId, name: &str, source: &str, first: u64| Scheduled {
        profile: p,
        name: name.into(),
        source_key: source.into(),
        first_run_in: Duration::from_secs(first),
    };
    store
        .schedule(&[
            scheduled(a, "a", "ldap:1", 0),
            scheduled(b, "b", "ldap:1", 0),
            scheduled(c, "c", "file:x", 3600),
        ])
        .await
        .expect("schedule");
    let ttl = Duration::from_secs(30);
    let first = store
        .claim("w1", ttl, &[])
        .await
        .expect("claim")
        .expect("a or b is due");
    assert!([a, b].contains(&first.lease.profile));
    assert_eq!(
        (first.lease.generation, first.failures, first.source_key.as_str()),
        (1, 0, "ldap:1")
    );
    assert!(
        store
            .claim("w2", ttl, &["ldap:1".into()])
            .await
            .expect("claim")
            .is_none(),
        "a busy source is skipped, c is not due"
    );
    let second = store.claim("w2", ttl, &[]).await.expect("claim").expect("the other");
    assert_ne!(first.lease.profile, second.lease.profile);
    assert!(
        store.claim("w3", ttl, &[]).await.expect("claim").is_none(),
        "held or not due"
    );
    let due = store.next_due_in(&[]).await.expect("due").expect("c is scheduled");
    assert!(due > Duration::from_secs(3500), "{due:?}");

    // Due again at once, after two failures: claimed again, a generation on.
    assert!(
        store
            .finish(&first.lease, Some(Duration::ZERO), 2)
            .await
            .expect("finish")
    );
    let again = store.claim("w3", ttl, &[]).await.expect("claim").expect("due again");
    assert_eq!(again.lease.profile, first.lease.profile);
    assert_eq!((again.lease.generation, again.failures), (2, 2));
    assert!(
        !store.finish(&first.lease, None, 0).await.expect("finish"),
        "a stale lease"
    );
    // Scheduling again keeps c's next run.
    store
        .schedule(&[scheduled(c, "c", "file:x", 0)])
        .await
        .expect("schedule");
    assert!(store.claim("w4", ttl, &[]).await.expect("claim").is_none());

    let status = store.profiles().await.expect("profiles");
    let running: BTreeMap<String, Option<String>> = status
        .iter()
        .map(|p| (p.profile.clone(), p.running_on.clone()))
        .collect();
    assert_eq!(running[&again.lease.profile.to_string()].as_deref(), Some("w3"));
    assert_eq!(running[&second.lease.profile.to_string()].as_deref(), Some("w2"));
    assert_eq!(running[&c.to_string()], None);
    // Parked (no next run): never claimed.
    assert!(store.finish(&again.lease, None, 0).await.expect("finish"));
    assert!(store.claim("w5", ttl, &[]).await.expect("claim").is_none());
}

/// The lasting history: a run's operations, memberships and names are
/// found by external id or by any name the plan gave, without case, also
/// by an old name; names name objects for plan tables; a purge empties it.
pub async fn object_history(url: &str) {
    use idsync_sql::RunRecord;
    let store = SqlStateStore::connect(url).await.expect("connect");
    let mut profile = target_profile();
    profile.id = ProfileId::new_random();
    let ann = |mail: &str| {
        SourceObject::new("ann-1", ObjectKind::User)
            .with("uid", "ann")
            .with("mail", mail)
            .with("givenName", "Ann")
            .with("sn", "Lee")
    };
    let sales = SourceObject::new("sales-1", ObjectKind::Group)
        .with("cn", "Sales")
        .with_member("ann-1");
    let source = MemorySource::with_objects(vec![ann("Ann@Acme.test"), sales]);
    let engine = Engine::new(
        profile.clone(),
        Arc::new(source.clone()),
        Arc::new(MemoryTarget::new()),
        Arc::new(MemoryStateStore::new()),
    );
    let first = engine.run(&RunOptions::default()).await.expect("run");
    store.record_run(&RunRecord::report(&first)).await.expect("record");
    source.upsert(ann("ann.lee@acme.test"));
    let second = engine.run(&RunOptions::default()).await.expect("run");
    store
        .record_run(&RunRecord::report(&second).exit_code(0))
        .await
        .expect("record");

    for key in ["ann-1", "ANN", "ann@acme.test", "Ann.Lee@acme.test", "Ann Lee"] {
        let events = store.object_history(Some(profile.id), key, 50).await.expect("history");
        let seen: Vec<(&str, &str)> = events.iter().map(|e| (e.event.as_str(), e.status.as_str())).collect();
        assert_eq!(
            seen,
            [("create", "applied"), ("joined", "applied"), ("update", "applied")],
            "{key}"
        );
        assert_eq!(events[1].other.as_deref(), Some("sales-1"));
        assert!(
            events[2].detail.contains("\"Ann@Acme.test\" -> \"ann.lee@acme.test\""),
            "{events:?}"
        );
    }
    let group = store.object_history(None, "sales", 50).await.expect("history");
    assert_eq!(group.len(), 2, "{group:?}");
    assert_eq!(
        (group[1].event.as_str(), group[1].other.as_deref()),
        ("add_member", Some("ann-1"))
    );
    assert!(
        store
            .object_history(None, "nobody", 50)
            .await
            .expect("history")
            .is_empty()
    );
    let other = ProfileId::new_random();
    assert!(
        store
            .object_history(Some(other), "ann", 50)
            .await
            .expect("history")
            .is_empty()
    );

    let ids = [ExternalId("ann-1".into()), ExternalId("sales-1".into())]
        .into_iter()
        .collect();
    let names = store.names_of(profile.id, &ids).await.expect("names");
    assert_eq!(names[&ExternalId("ann-1".into())], "ann");
    assert_eq!(names[&ExternalId("sales-1".into())], "Sales");
    let runs = store.runs(Some(profile.id), 10).await.expect("runs");
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0].outcome.as_str(), runs[0].applied, runs[1].exit_code),
        ("succeeded", 3, Some(0))
    );
    assert!(runs[0].started_unix_ms <= runs[0].finished_unix_ms);

    // Purging everything older than now leaves no events, runs or reports.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(store.purge(Duration::ZERO).await.expect("purge") >= 2 + 5);
    assert!(
        store
            .object_history(Some(profile.id), "ann", 50)
            .await
            .expect("history")
            .is_empty()
    );
    assert!(store.runs(Some(profile.id), 10).await.expect("runs").is_empty());
    assert!(store.history(profile.id, 10).await.expect("history").is_empty());
}
