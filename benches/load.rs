//! Load: N users (100k by default) and N/500 groups from a real slapd into
//! a fresh SQLite database in one engine run, with the peak heap measured,
//! against a baseline in the same run: the same read, then the same users
//! inserted with plain sqlx (one row and its link per transaction, as the
//! target commits them) — the least any sync must do. Then a second run
//! that finds nothing to do (a full read and a plan over N linked users).
//!
//! Also idsync's own full read alone, holding what it reads: its time is the
//! second baseline (goal: the run takes at most twice as long) and its heap
//! is the run's input (goal: at most 1 KiB per user beyond it).
//!
//! One run of each, not criterion samples: a 100k run takes minutes. Needs
//! slapd (`bash .ci/install`); skips otherwise.
//!
//! Run: `cargo bench --bench load --features ldap,sql`
//! (`IDSYNC_LOAD_USERS` changes the size).
#![expect(clippy::expect_used, reason = "bench setup: a failure stops the bench")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use idsync::ldap::{Flavor, LdapConfig, LdapSource};
use idsync::sql::{SqlTarget, SqlTargetConfig};
use idsync::{Engine, MemoryStateStore, Profile, ReadItem, RunOptions, Scope, Source};
use idsync_testkit::slapd::{Slapd, SlapdOptions};

mod heap;

#[global_allocator]
static ALLOC: heap::Counting = heap::Counting;

/// Runs `f`, giving its time and the peak heap it added (bytes).
async fn measured<T>(f: impl Future<Output = T>) -> (T, Duration, usize) {
    let before = heap::start();
    let started = Instant::now();
    let out = f.await;
    let took = started.elapsed();
    (out, took, heap::peak_since(before))
}

/// idsync's own full read, the second baseline: every object in scope with
/// the attributes the profile reads, held at once as the engine holds them.
/// Gives the objects, the time, and the heap they hold (the run's input).
async fn full_read(source: &LdapSource, profile: &Profile) -> (usize, Duration, usize) {
    let keep = profile.attributes_read();
    let before = heap::live();
    let started = Instant::now();
    let mut objects = Vec::new();
    let mut stream = source.read_full(&profile.scope).await.expect("read_full");
    while let Some(item) = stream.next().await {
        if let ReadItem::Object(mut o) = item.expect("item") {
            o.attributes.retain(|name, _| keep.contains(name.as_str()));
            objects.push(o);
        }
    }
    let took = started.elapsed();
    let held = heap::live().saturating_sub(before);
    (objects.len(), took, held)
}

const MIB: usize = 1 << 20;

fn profile() -> Profile {
    serde_json::from_value(serde_json::json!({
        "id": "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8", "name": "load",
        "mapping": {"users": [{"field": "userName", "attribute": "uid"},
                              {"field": "email", "attribute": "mail"},
                              {"field": "givenName", "attribute": "givenName"},
                              {"field": "familyName", "attribute": "sn"},
                              {"field": "displayName", "attribute": "displayName"}],
                    "groups": [{"field": "name", "attribute": "cn"}]}
    }))
    .expect("profile")
}

/// The baseline: read every user, insert each with its link in its own
/// transaction.
async fn baseline(source: &LdapSource, url: &str) -> usize {
    let pool = sqlx::SqlitePool::connect_with(
        url.parse::<sqlx::sqlite::SqliteConnectOptions>()
            .expect("url")
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal),
    )
    .await
    .expect("sqlite");
    for ddl in [
        "CREATE TABLE users (id INTEGER PRIMARY KEY, user_name TEXT, email TEXT, given_name TEXT, family_name TEXT, display_name TEXT, enabled BOOLEAN)",
        "CREATE TABLE links (profile TEXT, external_id TEXT, kind TEXT, row_id TEXT, PRIMARY KEY (profile, external_id))",
    ] {
        sqlx::query(ddl).execute(&pool).await.expect("ddl");
    }
    let mut stream = source.read_full(&Scope::default()).await.expect("read_full");
    let mut n = 0;
    while let Some(item) = stream.next().await {
        let ReadItem::Object(o) = item.expect("item") else {
            continue;
        };
        if o.kind != idsync::ObjectKind::User {
            continue;
        }
        let text = |a: &str| o.first_text(a).map(str::to_owned);
        let mut tx = pool.begin().await.expect("begin");
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (user_name, email, given_name, family_name, display_name, enabled) \
             VALUES ($1, $2, $3, $4, $5, TRUE) RETURNING id",
        )
        .bind(text("uid"))
        .bind(text("mail"))
        .bind(text("givenName"))
        .bind(text("sn"))
        .bind(text("displayName"))
        .fetch_one(&mut *tx)
        .await
        .expect("insert");
        sqlx::query("INSERT INTO links VALUES ('load', $1, 'user', $2)")
            .bind(o.id.0.clone())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .expect("link");
        tx.commit().await.expect("commit");
        n += 1;
    }
    n
}

#[tokio::main]
async fn main() {
    let users: usize = std::env::var("IDSYNC_LOAD_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let groups = (users / 500).max(1);
    let slapd = match Slapd::start(SlapdOptions::with_users(users, groups)).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("load: skipped, slapd cannot start: {e}");
            return;
        }
    };
    let config = LdapConfig::new(
        &slapd.url(),
        &slapd.admin_dn(),
        slapd.admin_password(),
        slapd.base_dn(),
        Flavor::Generic,
    );
    let source = Arc::new(LdapSource::connect(config).await.expect("connect"));
    let dir = tempfile::tempdir().expect("tempdir");
    let url = |name: &str| format!("sqlite://{}?mode=rwc", dir.path().join(name).display());

    let (n, base_time, base_mem) = measured(baseline(&source, &url("baseline.db"))).await;
    println!(
        "baseline: {n} users read and inserted in {base_time:.1?} (peak heap +{} MiB)",
        base_mem / MIB
    );
    let (objects, read_time, input) = full_read(&source, &profile()).await;
    println!(
        "idsync's full read: {objects} objects in {read_time:.1?}, holding {} MiB ({} B per user): the input",
        input / MIB,
        input / users.max(1)
    );

    let target = SqlTarget::connect(&url("app.db"), SqlTargetConfig::default())
        .await
        .expect("target");
    let engine = Engine::new(
        profile(),
        source.clone(),
        Arc::new(target),
        Arc::new(MemoryStateStore::new()),
    );
    let (report, time, mem) = measured(engine.run(&RunOptions::default())).await;
    let report = report.expect("run");
    assert_eq!(report.failures().count(), 0, "failures in the load run");
    println!(
        "idsync: {} operations applied ({} users, {} groups, {} member adds) in {time:.1?}, {:.0} users/s; \
         {:.2}x the plain inserts' time (goal <= 0.33x), {:.2}x its own full read (goal <= 2x); \
         peak heap +{} MiB, {} B per user, {} B per user beyond the input (goal <= 1024); \
         source read {} ms, target listing and plan {} ms, apply {} ms",
        report.applied(),
        report.plan.counts.create - groups,
        groups,
        report.plan.counts.add_member,
        users as f64 / time.as_secs_f64(),
        time.as_secs_f64() / base_time.as_secs_f64(),
        time.as_secs_f64() / read_time.as_secs_f64(),
        mem / MIB,
        mem / users.max(1),
        mem.saturating_sub(input) / users.max(1),
        report.read_ms,
        report.duration_ms.saturating_sub(report.read_ms + report.apply_ms),
        report.apply_ms,
    );
    let full = RunOptions {
        full: true,
        ..RunOptions::default()
    };
    let (report, time, mem) = measured(engine.run(&full)).await;
    let report = report.expect("second run");
    assert_eq!(report.plan.operations.len(), 0, "the second run has nothing to do");
    println!(
        "idsync, second run (full read, nothing to do): {time:.1?} (peak heap +{} MiB)",
        mem / MIB
    );
}
