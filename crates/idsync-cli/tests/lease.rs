//! Two `idsync` processes on one profile, with its state and leases on a
//! real PostgreSQL: worker A takes the lease and is frozen (SIGSTOP) past
//! it while its read hangs on a stalled link; worker B takes the profile
//! over and runs; A, resumed (SIGCONT), must write nothing, neither to the
//! target nor to the state or history, and end stopped. The profile's
//! state is then B's.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt as _;
use idsync::sql::{SqlTarget, SqlTargetConfig};
use idsync::{ProfileId, Target as _, TargetAccount};
use idsync_testkit::postgres::postgres;

mod common;
use common::Process;
use idsync_testkit::proxy::TcpProxy;
use idsync_testkit::slapd::{SlapdOptions, slapd, user_dn, user_uid};

const PROFILE_ID: &str = "6e1f0a2b-7c3d-4e5f-9a0b-1c2d3e4f5a6b";
const USERS: usize = 300;

const PROFILE: &str = r#"
target = { type = "sql", url = "sqlite://app.db" }
state = { type = "sql", url = "STATE_URL", lease = "2s" }

[profile]
id = "PROFILE_ID"
name = "two workers"

[[profile.mapping.users]]
field = "userName"
attribute = "uid"
[[profile.mapping.users]]
field = "email"
attribute = "mail"

[source]
type = "ldap"
flavor = "generic"
url = "LDAP_URL"
bind_dn = "BIND_DN"
password = "${IDSYNC_TEST_LDAP_PASSWORD}"
base_dn = "BASE_DN"
user_filter = "(objectClass=inetOrgPerson)"
page_size = 50
timeout_secs = 120

[notify]
command = ["sh", "-c", "cat >> 'NOTICES'; echo >> 'NOTICES'"]
"#;

/// Everything the profile's run may write: the target's accounts, the
/// state row (with its write time) and the history's size, and the lease.
#[derive(Debug, PartialEq)]
struct Snapshot {
    accounts: Vec<TargetAccount>,
    state: Option<(String, i64)>,
    history: i64,
    lease: (String, i64),
}

async fn snapshot(app: &Path, pg: &sqlx::PgPool) -> Snapshot {
    let target = SqlTarget::open(&format!("sqlite://{}", app.display()), SqlTargetConfig::default())
        .await
        .unwrap();
    let profile = ProfileId(PROFILE_ID.parse().unwrap());
    let mut accounts: Vec<TargetAccount> = target.linked(profile).await.unwrap().try_collect().await.unwrap();
    accounts.sort_by(|a, b| a.id.0.cmp(&b.id.0));
    Snapshot {
        accounts,
        state: sqlx::query_as("SELECT state, updated_unix_ms FROM idsync_state WHERE profile = $1")
            .bind(PROFILE_ID)
            .fetch_optional(pg)
            .await
            .unwrap(),
        history: sqlx::query_scalar("SELECT COUNT(*) FROM idsync_history WHERE profile = $1")
            .bind(PROFILE_ID)
            .fetch_one(pg)
            .await
            .unwrap(),
        lease: lease(pg).await,
    }
}

/// The lease row: worker and generation.
async fn lease(pg: &sqlx::PgPool) -> (String, i64) {
    sqlx::query_as("SELECT worker, generation FROM idsync_leases WHERE profile = $1")
        .bind(PROFILE_ID)
        .fetch_optional(pg)
        .await
        .unwrap()
        .unwrap_or_default()
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < Duration::from_secs(60), "waited 60 s for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_paused_past_its_lease_writes_nothing_when_it_wakes_up() {
    let Some(server) = slapd(SlapdOptions::with_users(USERS, 0)).await else {
        return;
    };
    let Some(pg) = postgres().await else {
        return;
    };
    let proxy = TcpProxy::start(server.port()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let notices = dir.path().join("notices.jsonl");
    // A reads slapd through the proxy, B directly; same profile, target
    // and state.
    let write = |name: &str, url: &str| {
        let text = PROFILE
            .replace("PROFILE_ID", PROFILE_ID)
            .replace("STATE_URL", &pg.url())
            .replace("LDAP_URL", url)
            .replace("BIND_DN", &server.admin_dn())
            .replace("BASE_DN", server.base_dn())
            .replace("NOTICES", &notices.display().to_string());
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let config_a = write("a.toml", &format!("ldap://127.0.0.1:{}", proxy.port()));
    let config_b = write("b.toml", &server.url());
    let idsync = |config: &Path| {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("idsync"));
        cmd.arg("--config")
            .arg(config)
            .args(["--log-format", "json", "-v", "sync"])
            .env("IDSYNC_TEST_LDAP_PASSWORD", server.admin_password())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let db = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    let app = dir.path().join("app.db");

    // A takes the lease, and its read hangs in the middle of the first page.
    proxy.stall_after(4_000);
    let a = Process::new(idsync(&config_a).spawn().unwrap(), None);
    let pid = a.pid();
    wait_for("A to hold the lease and hang in its read", async || {
        proxy.stats().stalled >= 1 && lease(&db).await.0.ends_with(&format!(":{pid}"))
    })
    .await;
    let generation_a = lease(&db).await.1;

    // Frozen past its 2 s lease, A cannot renew it: B takes over and runs.
    a.signal("-STOP");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let b = idsync(&config_b).output().unwrap();
    assert_eq!(b.status.code(), Some(0), "B: {}", String::from_utf8_lossy(&b.stderr));
    let after_b = snapshot(&app, &db).await;
    assert_eq!(after_b.accounts.len(), USERS, "B created every user");
    assert_eq!(after_b.history, 1, "B's run is recorded");
    assert_eq!(after_b.lease.1, generation_a + 1, "B took the lease over");
    assert!(after_b.state.is_some());

    // The directory changes: the pages A has not read yet now hold new
    // mails, so A, woken up, plans updates it must not apply.
    let changed: Vec<usize> = (USERS - 50..USERS).collect();
    let mut ldif = String::new();
    for &i in &changed {
        ldif.push_str(&format!(
            "dn: {}\nchangetype: modify\nreplace: mail\nmail: {}.new@acme.test\n\n",
            user_dn(server.base_dn(), i, &[]),
            user_uid(i)
        ));
    }
    server.ldapmodify(&ldif).await.unwrap();

    // A wakes up; a second later its link heals and its read goes on.
    a.signal("-CONT");
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.heal();
    let a = a.output();
    let stderr = String::from_utf8_lossy(&a.stderr);
    let planned: Vec<u64> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "planned")
        .filter_map(|l| l["fields"]["operations"].as_u64())
        .collect();
    assert_eq!(planned, [changed.len() as u64], "A planned the mail updates: {stderr}");

    assert_eq!(
        snapshot(&app, &db).await,
        after_b,
        "A wrote nothing after it woke up: {stderr}"
    );
    assert_eq!(a.status.code(), Some(5), "A ends stopped: {stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("idsync: run stopped: the lease of profile")
            && last.contains(&format!("(generation {generation_a}) was lost"))
            && last.contains("refused"),
        "{last}"
    );
    let notices: Vec<serde_json::Value> = std::fs::read_to_string(&notices)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(notices.len(), 1, "A's notice: {notices:?}");
    assert_eq!(notices[0]["exit_code"], 5);

    // The state is B's; the next run applies the changes A did not.
    let c = idsync(&config_b).output().unwrap();
    assert_eq!(c.status.code(), Some(0), "{}", String::from_utf8_lossy(&c.stderr));
    let last = snapshot(&app, &db).await;
    let mails: Vec<(String, String)> = last
        .accounts
        .iter()
        .filter_map(|a| Some((a.fields.get("userName")?.clone(), a.fields.get("email")?.clone())))
        .filter(|(_, mail)| mail.ends_with(".new@acme.test"))
        .collect();
    assert_eq!(mails.len(), changed.len());
    assert_eq!(last.history, 2);
}
