//! Checks shared by the SQLite and PostgreSQL tests, each given a URL.
#![allow(
    dead_code,
    reason = "each test binary uses part of it: expect would fail in the ones that use all"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use idsync_core::memory::{MemorySource, MemoryTarget};
use idsync_core::{
    Applied, Cursor, Engine, ErrorKind, ExternalId, FieldChange, Fields, Link, Lookup, MemoryStateStore, ObjectKind,
    Profile, ProfileId, ProfileState, RunOptions, SourceObject, StateStore, Target, TargetAccount, TargetId, TargetOp,
};
use idsync_sql::{Dialect, SqlStateStore, SqlTarget, SqlTargetConfig};
use idsync_testkit::behaviour::target;

pub(crate) fn user_fields(prefix: &str, n: u32) -> Fields {
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

pub(crate) fn group_fields(prefix: &str, n: u32) -> Fields {
    [("name".to_owned(), format!("{prefix} group{n}"))]
        .into_iter()
        .collect()
}

pub(crate) fn target_profile() -> Profile {
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

pub(crate) fn fixture(prefix: &str) -> target::Fixture {
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
pub(crate) async fn behaviour(url: &str) {
    let t = SqlTarget::connect(url, SqlTargetConfig::default())
        .await
        .expect("connect");
    target::run(Arc::new(t), &fixture("bt")).await.assert_ok();
}

/// The behaviour suite on custom tables: text ids, other names, no groups.
pub(crate) async fn behaviour_custom(url: &str) {
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
pub(crate) async fn bad_config(url: &str) {
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
    assert_eq!(e.field(), Some("users.columns.phone"), "{e}");
    assert!(e.to_string().contains("users.columns.phone"), "{e}");

    let mut missing = config.clone();
    missing.users.table = "no_such_table".into();
    let e = SqlTarget::open(url, missing)
        .await
        .expect("open")
        .verify()
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("users.table"), "{e}");

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
        assert_eq!(e.field(), Some(field), "{e}");
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

pub(crate) async fn state_round_trip(url: &str) {
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

pub(crate) async fn history(url: &str) {
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
pub(crate) async fn two_workers_never_overlap(url: &str, rounds: usize) {
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

/// Two targets on `url`, each with a pool of its own.
async fn two_targets(url: &str) -> (Arc<SqlTarget>, Arc<SqlTarget>) {
    let connect = || async {
        Arc::new(
            SqlTarget::connect(url, SqlTargetConfig::default())
                .await
                .expect("connect"),
        )
    };
    (connect().await, connect().await)
}

/// Two targets (separate pools) create the same links at once: each link
/// ends with one account, and both creators are told its id.
pub(crate) async fn concurrent_creates_link_once(url: &str) {
    let (a, b) = two_targets(url).await;
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
pub(crate) async fn overlapping_row_ids_converge(url: &str) {
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

/// Creates of `n` users of `profile`, each with [`user_fields`].
pub(crate) fn creates(prefix: &str, profile: ProfileId, n: u32) -> Vec<TargetOp> {
    (0..n)
        .map(|i| TargetOp::Create {
            kind: ObjectKind::User,
            link: Link {
                profile,
                external: ExternalId(format!("{prefix}-{i}")),
            },
            fields: user_fields(prefix, i),
        })
        .collect()
}

/// The linked accounts of `profile`, by external id.
pub(crate) async fn linked(t: &SqlTarget, profile: ProfileId) -> BTreeMap<String, TargetAccount> {
    let all: Vec<TargetAccount> = Target::linked(t, profile)
        .await
        .expect("linked")
        .try_collect()
        .await
        .expect("linked");
    all.into_iter()
        .map(|a| (a.link.as_ref().expect("linked").external.0.clone(), a))
        .collect()
}

/// 500 creates in one batch: each gets its own row, with its fields and
/// its link. Returns the ids, in the order of the creates.
pub(crate) async fn a_batch_of_creates(t: &SqlTarget, profile: ProfileId) -> Vec<TargetId> {
    assert_eq!(Target::capabilities(t).batch, 500);
    let ops = creates("b", profile, 500);
    let results = Target::apply_batch(t, &ops).await;
    assert_eq!(results.len(), 500);
    let ids: Vec<TargetId> = results
        .into_iter()
        .map(|r| {
            let a = r.expect("create");
            assert_eq!(a.note, None);
            a.target.expect("id")
        })
        .collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 500, "distinct ids");
    let accounts = linked(t, profile).await;
    assert_eq!(accounts.len(), 500);
    for (i, id) in ids.iter().enumerate() {
        let a = &accounts[&format!("b-{i}")];
        assert_eq!(&a.id, id, "b-{i}");
        assert_eq!(a.fields, user_fields("b", i as u32), "b-{i}");
        assert!(a.enabled);
    }
    ids
}

/// Creates stay idempotent through the link in a batch: creates of links
/// that exist answer with their accounts, a link created twice in one batch
/// gets one account, and only the new link makes a row.
pub(crate) async fn creates_in_a_batch_are_idempotent(url: &str) {
    let t = SqlTarget::connect(url, SqlTargetConfig::default())
        .await
        .expect("connect");
    let profile = ProfileId::new_random();
    let before = Target::apply_batch(&t, &creates("i", profile, 3)).await;
    let before: Vec<TargetId> = before
        .into_iter()
        .map(|r| r.expect("create").target.expect("id"))
        .collect();
    // 0..3 exist; 3 is new and asked twice; 1 again at the end.
    let mut ops = creates("i", profile, 4);
    ops.push(ops[3].clone());
    ops.push(ops[1].clone());
    let results: Vec<Applied> = Target::apply_batch(&t, &ops)
        .await
        .into_iter()
        .map(|r| r.expect("create"))
        .collect();
    for i in [0, 1, 2, 5] {
        let n = if i == 5 { 1 } else { i };
        assert_eq!(results[i].target.as_ref(), Some(&before[n]), "create {i}");
        assert_eq!(results[i].note.as_deref(), Some("already existed"), "create {i}");
    }
    assert_eq!(results[3].note, None);
    assert_eq!(results[4].target, results[3].target);
    assert_eq!(results[4].note.as_deref(), Some("already existed"));
    let accounts = linked(&t, profile).await;
    assert_eq!(accounts.len(), 4, "{accounts:?}");
    assert_eq!(accounts["i-3"].id, results[3].target.clone().expect("id"));
}

/// The users table of [`one_bad_row_fails_alone`]: a NOT NULL user name,
/// an email that must hold an `@`, a family name of at most 20 characters.
pub(crate) fn strict_users_ddl(dialect: Dialect) -> String {
    let key = match dialect {
        Dialect::Sqlite => "INTEGER PRIMARY KEY",
        Dialect::Postgres => "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    };
    format!(
        "CREATE TABLE strict_users (id {key}, user_name TEXT NOT NULL, \
         email TEXT CONSTRAINT strict_users_email_check CHECK (email LIKE '%@%'), \
         family_name VARCHAR(20), active BOOLEAN NOT NULL DEFAULT TRUE)"
    )
}

/// A batch of 500 operations with one bad row: that operation fails,
/// naming its object and the field and column, and the other 499 commit.
/// The table of [`strict_users_ddl`] must exist; `lengths` says whether
/// the database enforces `VARCHAR(20)` (PostgreSQL does, SQLite does not).
pub(crate) async fn one_bad_row_fails_alone(url: &str, lengths: bool) {
    let config: SqlTargetConfig = serde_json::from_value(serde_json::json!({
        "users": {"table": "strict_users",
                  "columns": {"userName": "user_name", "email": "email", "familyName": "family_name"},
                  "enabled_column": "active"},
        "links_table": "strict_links"
    }))
    .expect("config");
    let t = SqlTarget::connect(url, config).await.expect("connect");
    /// (field, column, how the bad row spoils it)
    type Case = (&'static str, &'static str, fn(&mut Fields));
    let mut cases: Vec<Case> = vec![
        ("userName", "user_name", |f| {
            f.remove("userName");
        }),
        ("email", "email", |f| {
            f.insert("email".into(), "no at sign".into());
        }),
    ];
    if lengths {
        cases.push(("familyName", "family_name", |f| {
            f.insert("familyName".into(), "x".repeat(21));
        }));
    }
    for (case, (field, column, spoil)) in cases.into_iter().enumerate() {
        let profile = ProfileId::new_random();
        let prefix = format!("bad{case}");
        let mut ops: Vec<TargetOp> = creates(&prefix, profile, 500)
            .into_iter()
            .map(|mut op| {
                if let TargetOp::Create { fields, .. } = &mut op {
                    fields.retain(|k, _| ["userName", "email", "familyName"].contains(&k.as_str()));
                }
                op
            })
            .collect();
        if let TargetOp::Create { fields, .. } = &mut ops[137] {
            spoil(fields);
        }
        let results = Target::apply_batch(&t, &ops).await;
        for (i, r) in results.iter().enumerate() {
            match (i, r) {
                (137, Err(e)) => {
                    assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
                    assert!(!e.is_transient(), "{e}");
                    assert_eq!(e.field(), Some(field), "{e}");
                    let text = e.to_string();
                    assert!(text.contains(&format!("{prefix}-137")), "names the link: {text}");
                    assert!(text.contains(&format!("column {column}")), "names the column: {text}");
                }
                (137, Ok(a)) => panic!("{field}: the bad row was created: {a:?}"),
                (_, Err(e)) => panic!("{field}: create {i} failed: {e}"),
                (_, Ok(_)) => {}
            }
        }
        let accounts = linked(&t, profile).await;
        assert_eq!(accounts.len(), 499, "{field}");
        assert!(!accounts.contains_key(&format!("{prefix}-137")));
    }

    // Updates: one sets the user name to NULL; the others commit.
    let profile = ProfileId::new_random();
    let ops: Vec<TargetOp> = creates("up", profile, 20)
        .into_iter()
        .map(|mut op| {
            if let TargetOp::Create { fields, .. } = &mut op {
                fields.retain(|k, _| k == "userName");
            }
            op
        })
        .collect();
    let ids: Vec<TargetId> = Target::apply_batch(&t, &ops)
        .await
        .into_iter()
        .map(|r| r.expect("create").target.expect("id"))
        .collect();
    let updates: Vec<TargetOp> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| TargetOp::Update {
            target: id.clone(),
            kind: ObjectKind::User,
            changes: vec![FieldChange {
                field: "userName".into(),
                old: None,
                new: (i != 7).then(|| format!("renamed{i}")),
            }],
        })
        .collect();
    let results = Target::apply_batch(&t, &updates).await;
    let e = results[7].as_ref().expect_err("NULL user name");
    assert_eq!(e.field(), Some("userName"), "{e}");
    assert!(e.to_string().contains(&format!("[{}]", ids[7])), "names the id: {e}");
    let accounts = linked(&t, profile).await;
    for (i, r) in results.iter().enumerate().filter(|(i, _)| *i != 7) {
        r.as_ref().expect("update");
        assert_eq!(
            accounts[&format!("up-{i}")].fields.get("userName"),
            Some(&format!("renamed{i}"))
        );
    }
    assert_eq!(accounts["up-7"].fields.get("userName"), Some(&"up-user7".to_owned()));
}

/// Member adds and removes in batches: several groups at once, missing
/// users and groups fail alone (naming them), adding a member twice and
/// removing a non-member succeed, and the last change of a membership in a
/// batch wins.
pub(crate) async fn members_in_a_batch(url: &str) {
    let t = SqlTarget::connect(url, SqlTargetConfig::default())
        .await
        .expect("connect");
    let profile = ProfileId::new_random();
    let users: Vec<TargetId> = Target::apply_batch(&t, &creates("m", profile, 10))
        .await
        .into_iter()
        .map(|r| r.expect("create").target.expect("id"))
        .collect();
    let group_ops: Vec<TargetOp> = (0..2)
        .map(|n| TargetOp::Create {
            kind: ObjectKind::Group,
            link: Link {
                profile,
                external: ExternalId(format!("mg-{n}")),
            },
            fields: group_fields("m", n),
        })
        .collect();
    let groups: Vec<TargetId> = Target::apply_batch(&t, &group_ops)
        .await
        .into_iter()
        .map(|r| r.expect("create group").target.expect("id"))
        .collect();
    let add = |g: usize, u: &TargetId| TargetOp::AddMember {
        group: groups[g].clone(),
        member: u.clone(),
    };
    let remove = |g: usize, u: &TargetId| TargetOp::RemoveMember {
        group: groups[g].clone(),
        member: u.clone(),
    };
    let members = |accounts: &BTreeMap<String, TargetAccount>, g: usize| -> BTreeSet<TargetId> {
        accounts[&format!("mg-{g}")].members.iter().cloned().collect()
    };
    let mut ops: Vec<TargetOp> = users.iter().map(|u| add(0, u)).collect();
    ops.extend(users[..5].iter().map(|u| add(1, u)));
    ops.push(add(0, &TargetId("999999".into())));
    ops.push(TargetOp::AddMember {
        group: TargetId("group:999999".into()),
        member: users[0].clone(),
    });
    ops.push(add(1, &users[0])); // twice in one batch
    let results = Target::apply_batch(&t, &ops).await;
    for (i, r) in results.iter().enumerate() {
        match i {
            15 | 16 => {
                let e = r.as_ref().expect_err("missing");
                assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
                let missing = if i == 15 { "999999" } else { "group:999999" };
                assert!(e.to_string().contains(missing), "{e}");
            }
            _ => assert_eq!(
                r.as_ref().expect("member").target.as_ref(),
                Some(&groups[usize::from(i >= 10)])
            ),
        }
    }
    let accounts = linked(&t, profile).await;
    assert_eq!(members(&accounts, 0), users.iter().cloned().collect());
    assert_eq!(members(&accounts, 1), users[..5].iter().cloned().collect());

    // Removes and adds of two groups in one batch, a member already there,
    // a non-member removed, and an add then a remove of the same pair.
    let mut ops: Vec<TargetOp> = users[..5].iter().map(|u| remove(0, u)).collect();
    ops.push(add(0, &users[9]));
    ops.push(remove(1, &users[9]));
    ops.push(add(1, &users[8]));
    ops.push(remove(1, &users[8]));
    ops.push(add(1, &users[7]));
    for r in Target::apply_batch(&t, &ops).await {
        r.expect("member change");
    }
    let accounts = linked(&t, profile).await;
    assert_eq!(members(&accounts, 0), users[5..].iter().cloned().collect());
    let mut one: BTreeSet<TargetId> = users[..5].iter().cloned().collect();
    one.insert(users[7].clone());
    assert_eq!(members(&accounts, 1), one);
}

/// 1,000 users and 10 groups from a MemorySource into the target in one
/// engine run; a second run plans nothing.
pub(crate) async fn an_engine_run_of_1000_users_converges(url: &str) {
    let mut objects: Vec<SourceObject> = (0..1000)
        .map(|n| {
            SourceObject::new(format!("e{n}"), ObjectKind::User)
                .with("uid", format!("user{n}"))
                .with("givenName", "Ann")
                .with("sn", format!("Tester{n}"))
                .with("mail", format!("user{n}@acme.test"))
        })
        .collect();
    for g in 0..10 {
        let group = (0..1000).filter(|n| n % 10 == g || g == 0).fold(
            SourceObject::new(format!("g{g}"), ObjectKind::Group).with("cn", format!("group{g}")),
            |o, n| o.with_member(format!("e{n}")),
        );
        objects.push(group);
    }
    let target = SqlTarget::connect(url, SqlTargetConfig::default())
        .await
        .expect("connect");
    let engine = Engine::new(
        target_profile(),
        Arc::new(MemorySource::with_objects(objects)),
        Arc::new(target),
        Arc::new(MemoryStateStore::new()),
    );
    let first = engine.run(&RunOptions::default()).await.expect("first run");
    assert_eq!(first.failures().count(), 0, "{}", first.plan);
    assert_eq!(first.plan.counts.create, 1010, "{}", first.plan);
    assert_eq!(first.plan.counts.add_member, 1000 + 9 * 100, "{}", first.plan);
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

/// Lookups in bulk (more than one query's worth): by external id and by
/// field (trimmed, case-insensitive), each account listed once, unknown
/// values finding nothing.
pub(crate) async fn lookups_in_bulk(url: &str) {
    let t = SqlTarget::connect(url, SqlTargetConfig::default())
        .await
        .expect("connect");
    let profile = ProfileId::new_random();
    for r in Target::apply_batch(&t, &creates("lk", profile, 600)).await {
        r.expect("create");
    }
    let mut lookups: Vec<Lookup> = (0..600)
        .map(|i| Lookup::External {
            kind: ObjectKind::User,
            external: ExternalId(format!("lk-{i}")),
        })
        .collect();
    lookups.push(Lookup::External {
        kind: ObjectKind::User,
        external: ExternalId("lk-none".into()),
    });
    lookups.push(Lookup::Field {
        kind: ObjectKind::User,
        field: "email".into(),
        value: " LK-USER7@acme.test ".into(),
    });
    lookups.push(Lookup::Field {
        kind: ObjectKind::User,
        field: "email".into(),
        value: "nobody@acme.test".into(),
    });
    let found = Target::lookup(&t, &lookups).await.expect("lookup");
    assert_eq!(found.len(), 600);
    let externals: BTreeSet<String> = found
        .iter()
        .map(|a| a.link.as_ref().expect("linked").external.0.clone())
        .collect();
    assert_eq!(externals, (0..600).map(|i| format!("lk-{i}")).collect());
    let by_email = Target::lookup(&t, &lookups[601..602]).await.expect("lookup");
    assert_eq!(by_email.len(), 1);
    assert_eq!(by_email[0].fields.get("userName"), Some(&"lk-user7".to_owned()));
}

/// Two targets (separate pools) apply the same batch of creates at once:
/// each link ends with one account, and both are told its id.
pub(crate) async fn concurrent_batches_link_once(url: &str) {
    let (a, b) = two_targets(url).await;
    let profile = ProfileId::new_random();
    for round in 0..5 {
        let ops = Arc::new(creates(&format!("cb{round}"), profile, 200));
        let run = |t: Arc<SqlTarget>, ops: Arc<Vec<TargetOp>>| {
            tokio::spawn(async move { Target::apply_batch(t.as_ref(), &ops).await })
        };
        let (ra, rb) = (run(a.clone(), ops.clone()), run(b.clone(), ops.clone()));
        let (ra, rb) = (ra.await.expect("join"), rb.await.expect("join"));
        for (i, (x, y)) in ra.into_iter().zip(rb).enumerate() {
            let (x, y) = (x.expect("create a"), y.expect("create b"));
            assert_eq!(x.target, y.target, "round {round}, create {i}");
        }
    }
    assert_eq!(linked(&a, profile).await.len(), 1000);
}

/// A worker's writes through its fenced view stop at the take-over: its
/// lease expires, another worker takes the profile, and the first one's
/// state saves and history records are refused (a permanent Conflict naming
/// the profile and both generations) while the new holder's go through.
/// A lease taken again by the same worker name is a new generation: the old
/// view stays refused.
pub(crate) async fn fenced_writes_stop_at_a_take_over(url: &str) {
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
pub(crate) async fn scheduling(url: &str) {
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
pub(crate) async fn object_history(url: &str) {
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
