//! Three `idsync worker` processes share 300 profiles through a real
//! PostgreSQL: small LDIF files into SQLite and PostgreSQL targets, some
//! slow (a slapd behind a TCP proxy that delays every chunk), some
//! failing (their LDIF file is missing until the middle of the test).
//!
//! One worker is SIGKILLed while it runs slow profiles; another is frozen
//! (SIGSTOP) past its leases and resumed. The sources change; every
//! profile's target must end equal to its source, no profile may have run
//! in two workers at once (the run history's intervals per profile never
//! overlap, and their fencing numbers grow), the frozen worker records
//! nothing under the leases it lost, no worker runs more than
//! `--per-source` slow profiles at once, and SIGTERM ends the others with
//! exit code 0. `status --state --json` then lists every profile.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt as _;
use idsync::sql::{SqlTarget, SqlTargetConfig};
use idsync::{ObjectKind, ProfileId, Target as _, TargetAccount};
use idsync_testkit::postgres::postgres;
use idsync_testkit::proxy::TcpProxy;
use idsync_testkit::slapd::{SlapdOptions, slapd, user_uid};

mod common;
use common::Process;

const PROFILES: usize = 300;
const SLAPD_USERS: usize = 12;
const LEASE_MS: i64 = 4_000;
const PER_SOURCE: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Reads slapd through the delaying proxy.
    Slow,
    /// Its LDIF file is missing until the sources change.
    Failing,
    /// LDIF into the shared PostgreSQL tables.
    Postgres,
    /// LDIF into its own SQLite file.
    Sqlite,
}

fn kind(i: usize) -> Kind {
    match i % 20 {
        0 => Kind::Slow,
        1 => Kind::Failing,
        2 | 12 => Kind::Postgres,
        _ => Kind::Sqlite,
    }
}

fn profile_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

fn uuid(i: usize, j: usize) -> String {
    format!("00000000-0000-4000-9000-{:012}", i * 10 + j)
}

/// Profile i's directory at version v: three users and a group of two.
struct Directory {
    users: Vec<(String, String, String)>,
    group: (String, String, Vec<String>),
}

fn directory(i: usize, v: usize) -> Directory {
    let users = (0..3)
        .map(|j| {
            let uid = format!("p{i:03}u{j}");
            let mail = if v > 0 && j == 0 {
                format!("{uid}.new@t{i}.test")
            } else {
                format!("{uid}@t{i}.test")
            };
            (uuid(i, j), uid, mail)
        })
        .collect();
    let members = if v == 0 { [0, 1] } else { [1, 2] };
    Directory {
        users,
        group: (
            uuid(i, 9),
            format!("p{i:03}g"),
            members.iter().map(|j| uuid(i, *j)).collect(),
        ),
    }
}

fn ldif(i: usize, d: &Directory) -> String {
    let base = format!("dc=t{i},dc=test");
    let mut out = String::new();
    for (id, uid, mail) in &d.users {
        out.push_str(&format!(
            "dn: uid={uid},{base}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nmail: {mail}\nentryUUID: {id}\n\n"
        ));
    }
    let (id, cn, members) = &d.group;
    out.push_str(&format!(
        "dn: cn={cn},{base}\nobjectClass: groupOfNames\ncn: {cn}\nentryUUID: {id}\n"
    ));
    for m in members {
        let uid = &d.users.iter().find(|u| &u.0 == m).unwrap().1;
        out.push_str(&format!("member: uid={uid},{base}\n"));
    }
    out.push('\n');
    out
}

const MAPPING: &str = r#"
[[profile.mapping.users]]
field = "userName"
attribute = "uid"
[[profile.mapping.users]]
field = "email"
attribute = "mail"
[[profile.mapping.groups]]
field = "name"
attribute = "cn"
"#;

struct Setup {
    dir: PathBuf,
    pg_url: String,
    ldap_url: String,
    bind_dn: String,
    base_dn: String,
}

impl Setup {
    fn target_url(&self, i: usize) -> String {
        match kind(i) {
            Kind::Postgres => self.pg_url.clone(),
            _ => format!("sqlite://app-{i:03}.db"),
        }
    }

    fn write_profile(&self, i: usize) {
        let source = match kind(i) {
            Kind::Slow => format!(
                "type = \"ldap\"\nflavor = \"generic\"\nurl = \"{}\"\nbind_dn = \"{}\"\n\
                 password = \"${{IDSYNC_TEST_LDAP_PASSWORD}}\"\nbase_dn = \"{}\"\n\
                 user_filter = \"(objectClass=inetOrgPerson)\"\ntimeout_secs = 60\n",
                self.ldap_url, self.bind_dn, self.base_dn
            ),
            _ => format!("type = \"ldif\"\npath = \"p{i:03}.ldif\"\nid_attribute = \"entryUUID\"\n"),
        };
        // Failing profiles back off (x2 … x8 per failure): a short
        // interval keeps their retries within the test.
        let every = if kind(i) == Kind::Failing { "2s" } else { "10s" };
        let text = format!(
            "target = {{ type = \"sql\", url = \"{}\" }}\n\n[schedule]\nevery = \"{every}\"\n\n[profile]\nid = \"{}\"\n\
             name = \"p{i:03} {:?}\"\n{MAPPING}\n[source]\n{source}",
            self.target_url(i),
            profile_id(i),
            kind(i),
        );
        std::fs::write(self.dir.join(format!("p{i:03}.toml")), text).unwrap();
    }

    fn write_ldif(&self, i: usize, v: usize) {
        let path = self.dir.join(format!("p{i:03}.ldif"));
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, ldif(i, &directory(i, v))).unwrap();
        std::fs::rename(tmp, path).unwrap();
    }
}

/// Starts worker `n` over the setup's profiles and PostgreSQL.
fn start_worker(setup: &Setup, password: &str, n: usize) -> Process {
    let log = setup.dir.join(format!("worker-{n}.log"));
    let child = Command::new(assert_cmd::cargo::cargo_bin("idsync"))
        .args(["worker", "--profiles"])
        .arg(&setup.dir)
        .args(["--state", &setup.pg_url, "--concurrency", "4", "--per-source"])
        .arg(PER_SOURCE.to_string())
        .args(["--lease", &format!("{LEASE_MS}ms"), "--log-format", "json", "-v"])
        .env("IDSYNC_TEST_LDAP_PASSWORD", password)
        .env_remove("IDSYNC_STATE")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Process::new(child, Some(log))
}

/// The worker's name in leases and runs ends with this.
fn suffix(worker: &Process) -> String {
    format!(":{}", worker.pid())
}

/// One row of idsync_runs.
#[derive(Debug, Clone)]
struct Run {
    profile: String,
    worker: String,
    generation: i64,
    started: i64,
    finished: i64,
    exit_code: Option<i32>,
}

async fn runs(db: &sqlx::PgPool) -> Vec<Run> {
    let rows: Vec<(String, String, i64, i64, i64, Option<i32>)> = sqlx::query_as(
        "SELECT profile, worker, generation, started_unix_ms, finished_unix_ms, exit_code FROM idsync_runs ORDER BY id",
    )
    .fetch_all(db)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(profile, worker, generation, started, finished, exit_code)| Run {
            profile,
            worker,
            generation,
            started,
            finished,
            exit_code,
        })
        .collect()
}

async fn db_now(db: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")
        .fetch_one(db)
        .await
        .unwrap()
}

/// The unexpired leases a worker holds: (profile, generation).
async fn held(db: &sqlx::PgPool, suffix: &str) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT profile, generation FROM idsync_leases WHERE worker LIKE $1 \
         AND expires_unix_ms > CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    )
    .bind(format!("%{suffix}"))
    .fetch_all(db)
    .await
    .unwrap()
}

async fn wait_for(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The profile's linked accounts in its target.
async fn accounts(setup: &Setup, i: usize) -> Vec<TargetAccount> {
    let url = match kind(i) {
        Kind::Postgres => setup.pg_url.clone(),
        _ => format!("sqlite://{}", setup.dir.join(format!("app-{i:03}.db")).display()),
    };
    let target = SqlTarget::open(&url, SqlTargetConfig::default()).await.unwrap();
    let profile = ProfileId(profile_id(i).parse().unwrap());
    target.linked(profile).await.unwrap().try_collect().await.unwrap()
}

/// Asserts that profile i's target holds exactly its source.
async fn assert_converged(setup: &Setup, i: usize) {
    let accounts = accounts(setup, i).await;
    let users: BTreeSet<(String, String)> = accounts
        .iter()
        .filter(|a| a.kind == ObjectKind::User && a.enabled)
        .map(|a| (a.fields["userName"].clone(), a.fields["email"].clone()))
        .collect();
    if kind(i) == Kind::Slow {
        let names: BTreeSet<String> = users.iter().map(|(u, _)| u.clone()).collect();
        let want: BTreeSet<String> = (0..SLAPD_USERS).map(user_uid).collect();
        assert_eq!(names, want, "profile {i}: slapd's users");
        return;
    }
    let d = directory(i, 1);
    let want: BTreeSet<(String, String)> = d.users.iter().map(|(_, u, m)| (u.clone(), m.clone())).collect();
    assert_eq!(users, want, "profile {i}: users");
    let by_id: BTreeMap<&str, &str> = accounts
        .iter()
        .map(|a| {
            (
                a.id.0.as_str(),
                a.fields.get("userName").map(String::as_str).unwrap_or(""),
            )
        })
        .collect();
    let groups: Vec<&TargetAccount> = accounts.iter().filter(|a| a.kind == ObjectKind::Group).collect();
    assert_eq!(groups.len(), 1, "profile {i}: one group");
    let members: BTreeSet<&str> = groups[0].members.iter().map(|m| by_id[m.0.as_str()]).collect();
    let want: BTreeSet<&str> = d
        .group
        .2
        .iter()
        .map(|m| d.users.iter().find(|u| &u.0 == m).unwrap().1.as_str())
        .collect();
    assert_eq!(members, want, "profile {i}: the group's members");
    assert_eq!(groups[0].fields["name"], d.group.1);
}

#[tokio::test(flavor = "multi_thread")]
async fn three_workers_share_300_profiles_through_postgres() {
    let test_start = Instant::now();
    let Some(pg) = postgres().await else {
        return;
    };
    let Some(server) = slapd(SlapdOptions::with_users(SLAPD_USERS, 0)).await else {
        return;
    };
    let proxy = TcpProxy::start(server.port()).await.unwrap();
    proxy.set_delay(Duration::from_millis(400));
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        dir: dir.path().to_path_buf(),
        pg_url: pg.url(),
        ldap_url: format!("ldap://127.0.0.1:{}", proxy.port()),
        bind_dn: server.admin_dn(),
        base_dn: server.base_dn().to_owned(),
    };
    for i in 0..PROFILES {
        setup.write_profile(i);
        if matches!(kind(i), Kind::Sqlite | Kind::Postgres) {
            setup.write_ldif(i, 0);
        }
    }
    // The tables exist before the workers start (they would create them).
    idsync::sql::SqlStateStore::connect(&pg.url()).await.unwrap();
    let db = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    let mut workers: Vec<Process> = (0..3)
        .map(|n| start_worker(&setup, server.admin_password(), n))
        .collect();

    // Every profile that can run has run once.
    let can_run: BTreeSet<String> = (0..PROFILES)
        .filter(|i| kind(*i) != Kind::Failing)
        .map(profile_id)
        .collect();
    wait_for("every profile's first run", Duration::from_secs(60), async || {
        let done: BTreeSet<String> = runs(&db)
            .await
            .into_iter()
            .filter(|r| r.exit_code == Some(0))
            .map(|r| r.profile)
            .collect();
        can_run.is_subset(&done)
    })
    .await;
    eprintln!("first runs done after {:?}", test_start.elapsed());

    // Worker 0 is killed while it runs a slow profile.
    let slow: BTreeSet<String> = (0..PROFILES)
        .filter(|i| kind(*i) == Kind::Slow)
        .map(profile_id)
        .collect();
    let suffix0 = suffix(&workers[0]);
    wait_for("worker 0 to run a slow profile", Duration::from_secs(30), async || {
        held(&db, &suffix0).await.iter().any(|(p, _)| slow.contains(p))
    })
    .await;
    workers[0].signal("-KILL");
    workers[0].wait(Duration::from_secs(5));
    let killed_at = db_now(&db).await;
    let killed_leases = held(&db, &suffix0).await;
    assert!(!killed_leases.is_empty(), "the killed worker held leases");

    // Worker 1 is frozen past its leases, then resumed.
    let suffix1 = suffix(&workers[1]);
    let started = Instant::now();
    let (paused_at, frozen) = loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "worker 1 never held a lease"
        );
        if held(&db, &suffix1).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        workers[1].signal("-STOP");
        let paused_at = db_now(&db).await;
        let frozen = held(&db, &suffix1).await;
        if !frozen.is_empty() {
            break (paused_at, frozen);
        }
        // Its runs ended in between: try again.
        workers[1].signal("-CONT");
    };
    // Past its leases, until the others have taken every one over.
    tokio::time::sleep(Duration::from_millis(LEASE_MS as u64 + 500)).await;
    wait_for(
        "the frozen worker's profiles taken over",
        Duration::from_secs(40),
        async || {
            let mut all = true;
            for (profile, generation) in &frozen {
                let now: i64 = sqlx::query_scalar("SELECT generation FROM idsync_leases WHERE profile = $1")
                    .bind(profile)
                    .fetch_one(&db)
                    .await
                    .unwrap();
                all &= now > *generation;
            }
            all
        },
    )
    .await;
    workers[1].signal("-CONT");

    // The sources change; the missing files appear.
    for i in 0..PROFILES {
        if kind(i) != Kind::Slow {
            setup.write_ldif(i, 1);
        }
    }
    let changed_at = db_now(&db).await;
    eprintln!("sources changed after {:?}", test_start.elapsed());

    // Every profile runs successfully after the change.
    let all: BTreeSet<String> = (0..PROFILES).map(profile_id).collect();
    wait_for(
        "every profile's run after the change",
        Duration::from_secs(70),
        async || {
            let done: BTreeSet<String> = runs(&db)
                .await
                .into_iter()
                .filter(|r| r.exit_code == Some(0) && r.started > changed_at)
                .map(|r| r.profile)
                .collect();
            all.is_subset(&done)
        },
    )
    .await;
    eprintln!("converged after {:?}", test_start.elapsed());

    // SIGTERM: the others finish what they hold and exit 0.
    let stopping = Instant::now();
    for w in &workers[1..] {
        w.signal("-TERM");
    }
    for w in &mut workers[1..] {
        assert_eq!(w.wait(Duration::from_secs(20)), Some(0), "{}", w.log());
    }
    eprintln!("workers stopped in {:?}", stopping.elapsed());
    let held_after: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM idsync_leases WHERE worker NOT LIKE $1 \
         AND expires_unix_ms > CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    )
    .bind(format!("%{suffix0}"))
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(held_after, 0, "SIGTERM released every lease");

    // Every target equals its source.
    for i in 0..PROFILES {
        assert_converged(&setup, i).await;
    }

    let all_runs = runs(&db).await;
    let mut by_profile: BTreeMap<&str, Vec<&Run>> = BTreeMap::new();
    for r in &all_runs {
        by_profile.entry(&r.profile).or_default().push(r);
    }
    assert_eq!(by_profile.len(), PROFILES);
    // No profile ran in two places at once: its recorded runs' intervals
    // (lease taken → run recorded, both by the database's clock) follow
    // one another, with growing fencing numbers.
    for (profile, runs) in &mut by_profile {
        runs.sort_by_key(|r| r.started);
        for pair in runs.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            assert!(a.finished <= b.started, "profile {profile}: {a:?} overlaps {b:?}");
            assert!(a.generation < b.generation, "profile {profile}: {a:?} then {b:?}");
        }
    }
    // The killed worker's profiles were taken over once its leases expired.
    for (profile, generation) in &killed_leases {
        let later: Vec<&&Run> = by_profile[profile.as_str()]
            .iter()
            .filter(|r| r.generation > *generation)
            .collect();
        assert!(!later.is_empty(), "profile {profile} taken over");
        assert!(
            later
                .iter()
                .all(|r| !r.worker.ends_with(&suffix0) && r.started > killed_at),
            "profile {profile}: {later:?}"
        );
    }
    // The frozen worker recorded nothing under the leases it lost.
    let frozen: BTreeSet<(String, i64)> = frozen.into_iter().collect();
    let stale: Vec<&Run> = all_runs
        .iter()
        .filter(|r| r.worker.ends_with(&suffix1) && frozen.contains(&(r.profile.clone(), r.generation)))
        .filter(|r| r.finished > paused_at)
        .collect();
    assert!(stale.is_empty(), "the frozen worker wrote after it resumed: {stale:?}");
    let log1 = workers[1].log();
    assert!(
        log1.contains("was lost") || log1.contains("refused"),
        "the frozen worker noticed its lost leases: {}",
        &log1[log1.len().saturating_sub(3000)..]
    );
    // At most --per-source slow profiles ran at once in one worker.
    let mut slow_by_worker: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for r in all_runs.iter().filter(|r| slow.contains(&r.profile)) {
        slow_by_worker
            .entry(&r.worker)
            .or_default()
            .push((r.started, r.finished));
    }
    for (worker, intervals) in &slow_by_worker {
        let mut edges: Vec<(i64, i32)> = intervals.iter().flat_map(|(s, f)| [(*s, 1), (*f, -1)]).collect();
        edges.sort();
        let (mut now, mut most) = (0, 0);
        for (_, d) in edges {
            now += d;
            most = most.max(now);
        }
        assert!(
            most <= PER_SOURCE as i32,
            "worker {worker} ran {most} slow profiles at once"
        );
    }
    // The failing profiles failed (exit code 2, a missing file) until their
    // file appeared.
    for i in (0..PROFILES).filter(|i| kind(*i) == Kind::Failing) {
        let runs = &by_profile[profile_id(i).as_str()];
        assert!(runs.iter().any(|r| r.exit_code == Some(2)), "profile {i}: {runs:?}");
    }

    // The operator's view: every profile, its next run, no failure.
    let out = Command::new(assert_cmd::cargo::cargo_bin("idsync"))
        .args(["status", "--json", "--state", &pg.url()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = status["profiles"].as_array().unwrap();
    assert_eq!(listed.len(), PROFILES);
    for p in listed {
        assert!(p["next_run"].is_string(), "{p}");
        // The last run succeeded, or SIGTERM stopped it while it applied.
        let last = &p["last_run"];
        assert!(
            last["exit_code"] == 0
                || (last["outcome"] == "stopped"
                    && last["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("shutting down (SIGTERM)"))),
            "{p}"
        );
        assert_eq!(p["failures_in_a_row"], 0, "{p}");
        assert!(p["running_on"].is_null(), "{p}");
    }
    // One object's history, found by its new mail.
    let out = Command::new(assert_cmd::cargo::cargo_bin("idsync"))
        .args(["history", "--state", &pg.url(), "--object", "P003U0.new@t3.test"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" create ") && l.contains("p003u0@t3.test")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" update ") && l.contains("\"p003u0@t3.test\" -> \"p003u0.new@t3.test\"")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" left ") && l.contains("group p003g (")),
        "{text}"
    );
    eprintln!("test took {:?}", test_start.elapsed());
}
