//! Profiles per minute with 1, 2 and 3 `idsync worker` processes on the
//! same PostgreSQL (issue 17), and the per-run coordination overhead.
//!
//! 200 small profiles (an LDIF of three users and a group into a SQLite
//! file each) scheduled `every = "1ms"`, so that every profile is always
//! due and the workers run as fast as they can; each run after the first
//! finds nothing to do, so what a run costs is mostly its fixed part:
//! claim, read, list the target, plan, save the state (fenced), record,
//! release. Each worker runs one profile at a time (`--concurrency 1`),
//! so adding workers adds parallelism until the machine's cores are used.
//!
//! For each count of workers: a warm-up, then the runs recorded in a
//! window (from `idsync_runs`), and from the workers' logs the mean time
//! of a claim (one `UPDATE … FOR UPDATE SKIP LOCKED`), of the release
//! with the next run time, and of the run's record (report, summary,
//! object events: one fenced transaction).
//!
//! Single-shot. Needs PostgreSQL (`bash .ci/install`).
//! Run: `cargo bench -p idsync-cli --bench workers`
#![expect(clippy::expect_used, reason = "bench setup: a failure stops the bench")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const PROFILES: usize = 200;
const WARM_UP: Duration = Duration::from_secs(4);
const WINDOW: Duration = Duration::from_secs(15);

fn write_profiles(dir: &Path) {
    for i in 0..PROFILES {
        let mut ldif = String::new();
        for j in 0..3 {
            ldif.push_str(&format!(
                "dn: uid=p{i}u{j},dc=t\nobjectClass: inetOrgPerson\nuid: p{i}u{j}\nmail: p{i}u{j}@t.test\n\
                 entryUUID: 00000000-0000-4000-9000-{:012}\n\n",
                i * 10 + j
            ));
        }
        ldif.push_str(&format!(
            "dn: cn=g{i},dc=t\nobjectClass: groupOfNames\ncn: g{i}\nentryUUID: 00000000-0000-4000-9000-{:012}\n\
             member: uid=p{i}u0,dc=t\nmember: uid=p{i}u1,dc=t\n\n",
            i * 10 + 9
        ));
        std::fs::write(dir.join(format!("p{i}.ldif")), ldif).expect("ldif");
        std::fs::write(
            dir.join(format!("p{i}.toml")),
            format!(
                "source = {{ type = \"ldif\", path = \"p{i}.ldif\", id_attribute = \"entryUUID\" }}\n\
                 target = {{ type = \"sql\", url = \"sqlite://app-{i}.db\" }}\n\
                 [schedule]\nevery = \"1ms\"\n[profile]\nid = \"00000000-0000-4000-8000-{i:012}\"\nname = \"p{i}\"\n\
                 [[profile.mapping.users]]\nfield = \"userName\"\nattribute = \"uid\"\n\
                 [[profile.mapping.users]]\nfield = \"email\"\nattribute = \"mail\"\n\
                 [[profile.mapping.groups]]\nfield = \"name\"\nattribute = \"cn\"\n"
            ),
        )
        .expect("profile");
    }
}

fn start(dir: &Path, url: &str, n: usize) -> Child {
    Command::new(env!("CARGO_BIN_EXE_idsync"))
        .args(["worker", "--profiles"])
        .arg(dir)
        .args([
            "--state",
            url,
            "--concurrency",
            "1",
            "--lease",
            "30s",
            "--log-format",
            "json",
            "-v",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("worker-{n}.log"))).expect("log"))
        .spawn()
        .expect("worker")
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

/// Means of the "run done" fields of the runs logged between `from` and
/// `to`: claim, finish, record, run (ms).
fn overheads(dir: &Path, workers: usize, from: &str, to: &str) -> (usize, f64, f64, f64, f64) {
    let (mut n, mut claim, mut finish, mut record, mut run) = (0usize, 0.0, 0.0, 0.0, 0.0);
    for w in 0..workers {
        let text = std::fs::read_to_string(dir.join(format!("worker-{w}.log"))).unwrap_or_default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let at = v["timestamp"].as_str().unwrap_or_default();
            if v["fields"]["message"] != "run done" || at < from || at > to {
                continue;
            }
            let f = |k: &str| v["fields"][k].as_f64().unwrap_or(0.0);
            n += 1;
            claim += f("claim_ms");
            finish += f("finish_ms");
            record += f("record_ms");
            run += f("run_ms");
        }
    }
    let m = n.max(1) as f64;
    (n, claim / m, finish / m, record / m, run / m)
}

#[tokio::main]
async fn main() {
    let Some(pg) = idsync_testkit::postgres::postgres().await else {
        eprintln!("skipped: PostgreSQL is not installed");
        return;
    };
    let url = pg.url();
    let dir = tempfile::tempdir().expect("tempdir");
    write_profiles(dir.path());
    idsync::sql::SqlStateStore::connect(&url).await.expect("schema");
    let db = sqlx::PgPool::connect(&url).await.expect("connect");
    let runs = async || -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM idsync_runs")
            .fetch_one(&db)
            .await
            .expect("count")
    };
    // A first pass creates every profile's accounts.
    let first = start(dir.path(), &url, 0);
    let began = Instant::now();
    while runs().await < PROFILES as i64 {
        assert!(began.elapsed() < Duration::from_secs(300), "first pass");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop(first);
    println!(
        "| workers | profiles per minute | runs in {}s | claim (mean) | release (mean) | record (mean) | coordination per run | run (mean) |",
        WINDOW.as_secs()
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for workers in 1..=3 {
        let children: Vec<Child> = (0..workers).map(|n| start(dir.path(), &url, n)).collect();
        tokio::time::sleep(WARM_UP).await;
        let before = runs().await;
        let from = rfc3339(SystemTime::now());
        tokio::time::sleep(WINDOW).await;
        let after = runs().await;
        let to = rfc3339(SystemTime::now());
        for c in children {
            stop(c);
        }
        let done = after - before;
        let per_minute = done as f64 * 60.0 / WINDOW.as_secs_f64();
        let (_, claim, finish, record, run) = overheads(dir.path(), workers, &from, &to);
        println!(
            "| {workers} | {per_minute:.0} | {done} | {claim:.2} ms | {finish:.2} ms | {record:.2} ms | {:.2} ms | {run:.1} ms |",
            claim + finish + record
        );
    }
}
