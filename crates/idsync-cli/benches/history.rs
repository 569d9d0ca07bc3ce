//! Per-object history on a million records (issue 17): `history --object`
//! lookups (by external id, by userName, by mail) through
//! `SqlStateStore::object_history`, against a baseline in the same run:
//! the same lookup as a full scan of the same table (what it costs
//! without the index). On SQLite and on a real PostgreSQL.
//!
//! The million event rows (50,000 objects in 10 profiles, 20 events each)
//! and their 100,000 names are filled with one `INSERT … SELECT` each
//! (the fill is not what is measured); then real runs are recorded
//! through `record_run` to time the write path: a run of 1,000 creates
//! (1,000 events and 2,000 names in the run's transaction).
//!
//! Single-shot (no criterion samples): 200 lookups of each kind, medians
//! and 99th percentiles. Needs PostgreSQL (`bash .ci/install`) for the
//! PostgreSQL half; skips it otherwise.
//!
//! Run: `cargo bench -p idsync-cli --bench history`
#![expect(clippy::expect_used, reason = "bench setup: a failure stops the bench")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use idsync::memory::{MemorySource, MemoryTarget};
use idsync::sql::{RunRecord, SqlStateStore};
use idsync::{Engine, MemoryStateStore, ObjectKind, Profile, ProfileId, RunOptions, SourceObject};

const EVENTS: i64 = 1_000_000;
const OBJECTS: i64 = 50_000;
const LOOKUPS: usize = 200;

/// Fills the history with `EVENTS` events of `OBJECTS` objects, and their
/// names (a userName and a mail each).
async fn fill(url: &str, postgres: bool) -> Duration {
    let started = Instant::now();
    let series = if postgres {
        "generate_series(0, $1 - 1) AS s(g)".to_owned()
    } else {
        "s".to_owned()
    };
    let with = if postgres {
        String::new()
    } else {
        "WITH RECURSIVE s(g) AS (SELECT 0 UNION ALL SELECT g + 1 FROM s WHERE g < $1 - 1) ".to_owned()
    };
    let concat = |parts: &[&str]| parts.join(" || ");
    let obj = "(g % 50000)";
    let profile = concat(&["'00000000-0000-4000-8000-00000000000'", &format!("({obj} % 10)")]);
    let events = format!(
        "{with}INSERT INTO idsync_objects (profile, external, run_id, at_unix_ms, kind, event, status, other, detail) \
         SELECT {profile}, {}, g / 1000, 1800000000000 + g, 'user', \
         CASE WHEN g < 50000 THEN 'create' ELSE 'update' END, 'applied', NULL, \
         {} FROM {series}",
        concat(&["'ext-'", obj]),
        concat(&["'email: \"old\" -> \"new'", "g", "'\"'"]),
    );
    let names = format!(
        "{with}INSERT INTO idsync_names (profile, external, key, field, value, at_unix_ms) \
         SELECT {profile}, {}, {}, CASE WHEN g < 50000 THEN 'userName' ELSE 'email' END, {}, 1800000000000 FROM {series}",
        concat(&["'ext-'", "(g % 50000)"]),
        "CASE WHEN g < 50000 THEN 'user' || g ELSE 'user' || (g - 50000) || '@acme.test' END",
        "CASE WHEN g < 50000 THEN 'User' || g ELSE 'User' || (g - 50000) || '@acme.test' END",
    );
    // The same statements on either pool type (each compiled for its own).
    macro_rules! fill {
        ($pool:expr) => {{
            let pool = $pool.await.expect("connect");
            sqlx::query(&events)
                .bind(EVENTS)
                .execute(&pool)
                .await
                .expect("fill events");
            sqlx::query(&names)
                .bind(2 * OBJECTS)
                .execute(&pool)
                .await
                .expect("fill names");
            sqlx::query("ANALYZE").execute(&pool).await.expect("analyze");
        }};
    }
    if postgres {
        fill!(sqlx::PgPool::connect(url));
    } else {
        fill!(sqlx::SqlitePool::connect(url));
    }
    started.elapsed()
}

/// The median and the 99th percentile, in ms.
fn stats(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(times[times.len() / 2]),
        ms(times[(times.len() * 99 / 100).min(times.len() - 1)]),
    )
}

/// The lookups, each kind `LOOKUPS` times on spread objects; every answer
/// holds the object's 20 events (the limit is 50).
async fn lookups(store: &SqlStateStore, kind: &str) -> (f64, f64) {
    let mut times = Vec::new();
    for n in 0..LOOKUPS {
        let k = (n as i64 * 7919) % OBJECTS;
        let key = match kind {
            "external id" => format!("ext-{k}"),
            "userName" => format!("USER{k}"),
            _ => format!("user{k}@acme.test"),
        };
        let started = Instant::now();
        let events = store.object_history(None, &key, 50).await.expect("lookup");
        times.push(started.elapsed());
        assert_eq!(events.len(), 20, "{key}");
    }
    stats(times)
}

/// The baseline: the same answer from a full scan of the same table
/// (`external || ''` keeps the index out).
async fn scans(url: &str, postgres: bool) -> (f64, f64) {
    let sql = "SELECT id, detail FROM idsync_objects WHERE external || '' = $1 ORDER BY id";
    let mut times = Vec::new();
    for n in 0..5 {
        let key = format!("ext-{}", (n * 7919) % OBJECTS);
        let rows: Vec<(i64, String)> = if postgres {
            let pool = sqlx::PgPool::connect(url).await.expect("connect");
            let started = Instant::now();
            let rows = sqlx::query_as(sql).bind(&key).fetch_all(&pool).await.expect("scan");
            times.push(started.elapsed());
            rows
        } else {
            let pool = sqlx::SqlitePool::connect(url).await.expect("connect");
            let started = Instant::now();
            let rows = sqlx::query_as(sql).bind(&key).fetch_all(&pool).await.expect("scan");
            times.push(started.elapsed());
            rows
        };
        assert_eq!(rows.len(), 20);
    }
    stats(times)
}

/// Records `runs` real runs of 1,000 creates each; the mean time of one
/// `record_run`, in ms.
async fn record(store: &SqlStateStore, runs: usize) -> f64 {
    let mut total = Duration::ZERO;
    for r in 0..runs {
        let profile: Profile = serde_json::from_value(serde_json::json!({
            "id": ProfileId::new_random().0, "name": "bench",
            "mapping": {"users": [{"field": "userName", "attribute": "uid"}, {"field": "email", "attribute": "mail"}]}
        }))
        .expect("profile");
        let objects: Vec<SourceObject> = (0..1000)
            .map(|i| {
                SourceObject::new(format!("run{r}-{i}"), ObjectKind::User)
                    .with("uid", format!("run{r}u{i}"))
                    .with("mail", format!("run{r}u{i}@acme.test"))
            })
            .collect();
        let engine = Engine::new(
            profile,
            Arc::new(MemorySource::with_objects(objects)),
            Arc::new(MemoryTarget::new()),
            Arc::new(MemoryStateStore::new()),
        );
        let report = engine.run(&RunOptions::default()).await.expect("run");
        assert_eq!(report.applied(), 1000);
        let started = Instant::now();
        store.record_run(&RunRecord::report(&report)).await.expect("record");
        total += started.elapsed();
    }
    total.as_secs_f64() * 1000.0 / runs as f64
}

async fn bench(name: &str, url: &str, postgres: bool) {
    let store = SqlStateStore::connect(url).await.expect("connect");
    let fill = fill(url, postgres).await;
    eprintln!("{name}: filled {EVENTS} events and {} names in {fill:?}", 2 * OBJECTS);
    let (scan_median, _) = scans(url, postgres).await;
    for kind in ["external id", "userName", "mail"] {
        let (median, p99) = lookups(&store, kind).await;
        println!(
            "| {name} | {kind} | {median:.2} ms | {p99:.2} ms | {scan_median:.0} ms | {:.0}x |",
            scan_median / median
        );
    }
    let record_ms = record(&store, 10).await;
    println!("| {name} | record_run of a 1,000-create run | {record_ms:.1} ms | | | |");
}

#[tokio::main]
async fn main() {
    println!("| database | lookup by | median | p99 | full scan (median) | speed-up |");
    println!("|---|---|---:|---:|---:|---:|");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("history.db").display());
    bench("SQLite", &url, false).await;
    match idsync_testkit::postgres::postgres().await {
        Some(pg) => bench("PostgreSQL", &pg.url(), true).await,
        None => eprintln!("PostgreSQL skipped: not installed"),
    }
}
