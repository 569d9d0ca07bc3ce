//! The `idsync` process killed with SIGKILL at random points of its runs,
//! over and over, while the directory keeps changing: the next clean run
//! (a delta, not a full read) converges with exactly one account per
//! (profile, external id) and no update lost.
#![expect(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failure fails the test"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::TryStreamExt as _;
use idsync::sql::{SqlTarget, SqlTargetConfig};
use idsync::{ObjectKind, ProfileId, Target as _};
use idsync_testkit::slapd::{Slapd, SlapdOptions, slapd, user_dn, user_ldif, user_uid};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PROFILE_ID: &str = "5a0f3c2e-9b1d-4e7a-8c6f-2d4b6a8e0c13";
const USERS: usize = 300;
/// Runs killed.
const KILLS: usize = 50;
/// Users whose mail changes in each round.
const CHANGED: usize = 100;

/// Batches of 10 operations, so that a round's 100 changes are applied in
/// ten transactions and a kill can land between two of them (one batch of
/// 500 would commit a round's changes at once: no kill could fall inside).
const PROFILE: &str = r#"
target = { type = "sql", url = "sqlite://app.db", batch = 10 }
state = { type = "sql", url = "sqlite://state.db", lease = "1s" }

[profile]
id = "PROFILE_ID"
name = "crash test"

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
"#;

/// What the directory holds: uid → mail, for users present.
type Expected = BTreeMap<String, String>;

async fn change_directory(server: &Slapd, expected: &mut Expected, round: usize) {
    let base = server.base_dn().to_owned();
    let mut ldif = String::new();
    for k in 0..CHANGED {
        let i = (round * 37 + k * 11) % USERS;
        let uid = user_uid(i);
        if let Some(mail) = expected.get_mut(&uid) {
            *mail = format!("{uid}.r{round}@acme.test");
            ldif.push_str(&format!(
                "dn: {}\nchangetype: modify\nreplace: mail\nmail: {mail}\n\n",
                user_dn(&base, i, &[])
            ));
        }
    }
    server.ldapmodify(&ldif).await.expect("modify");
    // A joiner and, every other round, a leaver.
    let joiner = USERS + round;
    server.ldapadd(&user_ldif(&base, joiner, &[])).await.expect("add");
    expected.insert(user_uid(joiner), format!("{}@acme.test", user_uid(joiner)));
    if round % 2 == 1 {
        let i = round * 5 % USERS;
        if expected.remove(&user_uid(i)).is_some() {
            server.ldapdelete(&user_dn(&base, i, &[])).await.expect("delete");
        }
    }
}

/// How many of round `round`'s mail changes the directory holds (a leaver
/// of the round may have been changed before it left).
fn changed_in(expected: &Expected, round: usize) -> usize {
    let suffix = format!(".r{round}@acme.test");
    expected.values().filter(|mail| mail.ends_with(&suffix)).count()
}

/// How many of round `round`'s mail changes have reached the application.
async fn applied(pool: &sqlx::SqlitePool, round: usize) -> usize {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM idsync_users WHERE email LIKE $1")
        .bind(format!("%.r{round}@acme.test"))
        .fetch_one(pool)
        .await
        .unwrap();
    usize::try_from(n).unwrap_or(0)
}

fn idsync(config: &Path, server: &Slapd) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("idsync"));
    cmd.arg("--config")
        .arg(config)
        .env("IDSYNC_TEST_LDAP_PASSWORD", server.admin_password())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_points_loses_nothing_and_duplicates_nothing() {
    let Some(server) = slapd(SlapdOptions::with_users(USERS, 0)).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("idsync.toml");
    std::fs::write(
        &config,
        PROFILE
            .replace("PROFILE_ID", PROFILE_ID)
            .replace("LDAP_URL", &server.url())
            .replace("BIND_DN", &server.admin_dn())
            .replace("BASE_DN", server.base_dn()),
    )
    .unwrap();
    let mut expected: Expected = (0..USERS)
        .map(|i| (user_uid(i), format!("{}@acme.test", user_uid(i))))
        .collect();

    let status = idsync(&config, &server).arg("sync").status().unwrap();
    assert!(status.success(), "first run: {status}");
    // How long a run of one round's changes takes, to spread the kills
    // over such runs: from start-up to the last write.
    change_directory(&server, &mut expected, 0).await;
    let started = Instant::now();
    let status = idsync(&config, &server).arg("sync").status().unwrap();
    assert!(status.success(), "a delta run: {status}");
    let delta_run = started.elapsed();

    let url = format!("sqlite://{}", dir.path().join("app.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let mut rng = StdRng::seed_from_u64(9);
    let (mut killed, mut finished, mut mid_apply) = (0, 0, 0);
    let mut round = 0;
    while killed < KILLS {
        round += 1;
        assert!(round <= 3 * KILLS, "only {killed} runs killed in {round} rounds");
        change_directory(&server, &mut expected, round).await;
        let mut child = idsync(&config, &server).arg("sync").spawn().unwrap();
        if round % 2 == 0 {
            // Anywhere: start-up, the read, the plan or the apply.
            tokio::time::sleep(delta_run.mul_f64(rng.random::<f64>())).await;
        } else {
            // In the apply: once k of this round's changes are written.
            let k = rng.random_range(1..CHANGED);
            let deadline = Instant::now() + delta_run * 3;
            while Instant::now() < deadline && child.try_wait().unwrap().is_none() && applied(&pool, round).await < k {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        match child.try_wait().unwrap() {
            Some(_) => finished += 1,
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed += 1;
                // In the middle of the apply: it had written some of this
                // round's changes (so it had started) but not all of them
                // (so it had not finished), as the database shows.
                let applied = applied(&pool, round).await;
                if applied > 0 && applied < changed_in(&expected, round) {
                    mid_apply += 1;
                }
                // The killed run's lease (1 s) must expire before the next.
                tokio::time::sleep(Duration::from_millis(1100)).await;
            }
        }
    }
    eprintln!(
        "{round} rounds: {killed} runs killed ({mid_apply} in the middle of the apply), {finished} finished first"
    );
    assert!(
        mid_apply >= KILLS / 5,
        "only {mid_apply} runs were killed in the middle of their apply"
    );

    // One clean run, a delta (no --full): it must catch up on everything.
    let pending = changed_in(&expected, round) - applied(&pool, round).await;
    let output = idsync(&config, &server)
        .args(["sync", "--json"])
        .stdout(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "the clean run: {stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["plan"]["mode"], "delta", "the clean run read a delta: {stdout}");
    assert_eq!(report["plan"]["completeness"]["status"], "complete", "{stdout}");
    assert_eq!(report["cursor_saved"], true, "{stdout}");
    let updates = report["plan"]["counts"]["update"].as_u64().unwrap_or(0);
    assert!(
        updates as usize >= pending,
        "{pending} of the last round's changes were pending: {stdout}"
    );

    let target = SqlTarget::open(&url, SqlTargetConfig::default()).await.unwrap();
    let accounts: Vec<_> = target
        .linked(ProfileId(PROFILE_ID.parse().unwrap()))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let users: Vec<_> = accounts.iter().filter(|a| a.kind == ObjectKind::User).collect();
    // Exactly one account per external id, and no row without its link.
    let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
    for u in &users {
        *by_name.entry(u.fields.get("userName").unwrap().as_str()).or_default() += 1;
    }
    assert!(by_name.values().all(|n| *n == 1), "duplicates: {by_name:?}");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM idsync_users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows as usize, users.len(), "rows without a link");
    // No update lost: every present user enabled with the directory's mail,
    // every leaver disabled.
    for u in &users {
        let name = u.fields.get("userName").unwrap();
        match expected.get(name) {
            Some(mail) => {
                assert!(u.enabled, "{name} is disabled");
                assert_eq!(u.fields.get("email"), Some(mail), "{name}'s mail");
            }
            None => assert!(!u.enabled, "{name} left but is enabled"),
        }
    }
    let present = users.iter().filter(|u| u.enabled).count();
    assert_eq!(present, expected.len(), "every present user has an account");
    let status = idsync(&config, &server)
        .args(["plan", "--full"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("nothing to do"),
        "{}\n{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
}
