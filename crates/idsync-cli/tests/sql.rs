//! The `idsync` binary with SQL: the README's quickstart (the bundled LDIF
//! into SQLite, then the one-line edit to a real slapd), slapd into SQLite
//! with a leaver, and a profile whose lease another worker holds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use futures::TryStreamExt as _;
use idsync_core::{ObjectKind, ProfileId, Target as _, TargetAccount};
use idsync_sql::{SqlStateStore, SqlTarget, SqlTargetConfig};
use idsync_testkit::slapd::{SlapdOptions, group_members, slapd, user_dn};
use predicates::prelude::*;

/// The quickstart profile's id (examples/quickstart/idsync.toml).
const QUICKSTART: &str = "0d6c9e1e-5b7a-4f0e-9a57-3c2b8f1d6e42";

fn quickstart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart")
}

/// A copy of the quickstart folder (profile and LDIF) in a temporary folder.
fn quickstart_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["idsync.toml", "directory.ldif"] {
        std::fs::copy(quickstart_dir().join(f), dir.path().join(f)).unwrap();
    }
    dir
}

fn idsync(config: &Path) -> Command {
    let mut cmd = Command::cargo_bin("idsync").unwrap();
    cmd.arg("--config").arg(config);
    cmd
}

/// Every account the profile links in the SQLite file, users then groups.
async fn accounts(db: &Path, profile: &str) -> Vec<TargetAccount> {
    let url = format!("sqlite://{}", db.display());
    let target = SqlTarget::open(&url, SqlTargetConfig::default()).await.unwrap();
    let profile = ProfileId(profile.parse().unwrap());
    let mut all: Vec<TargetAccount> = target.linked(profile).await.unwrap().try_collect().await.unwrap();
    all.sort_by_key(|a| (a.kind == ObjectKind::Group, a.fields.get("userName").cloned()));
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn the_quickstart_syncs_the_bundled_ldif_then_a_real_slapd() {
    let dir = quickstart_copy();
    let config = dir.path().join("idsync.toml");
    idsync(&config)
        .arg("sync")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("create        user"))
        .stdout(predicate::str::contains("Succeeded: 114 applied, 0 failed"));
    let app = accounts(&dir.path().join("app.db"), QUICKSTART).await;
    let users: Vec<&TargetAccount> = app.iter().filter(|a| a.kind == ObjectKind::User).collect();
    assert_eq!(users.len(), 49, "50 users in the export, one of them disabled");
    assert!(users.iter().all(|u| u.enabled));
    let ann = users
        .iter()
        .find(|u| u.fields.get("userName").map(String::as_str) == Some("ann.lee"))
        .unwrap();
    assert_eq!(ann.fields.get("displayName").unwrap(), "Ann Lee");
    assert_eq!(ann.fields.get("email").unwrap(), "ann.lee@acme.test");
    let groups: Vec<&TargetAccount> = app.iter().filter(|a| a.kind == ObjectKind::Group).collect();
    assert_eq!(groups.len(), 4);
    assert_eq!(groups.iter().map(|g| g.members.len()).sum::<usize>(), 61);
    idsync(&config)
        .arg("sync")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("nothing to do"));

    // README: the one-line edit that points the profile at a real directory.
    let Some(server) = slapd(SlapdOptions::with_users(20, 2)).await else {
        return;
    };
    let text = std::fs::read_to_string(&config).unwrap();
    let line = format!(
        r#"source = {{ type = "ldap", flavor = "generic", url = "{}", bind_dn = "{}", password = "${{LDAP_PASSWORD}}", base_dn = "{}" }}"#,
        server.url(),
        server.admin_dn(),
        server.base_dn()
    );
    let old = r#"source = { type = "ldif", path = "directory.ldif" }"#;
    assert!(text.contains(old), "the quickstart profile's source line changed");
    std::fs::write(&config, text.replace(old, &line)).unwrap();
    // The 49 LDIF users are not in slapd: their deprovisions exceed the
    // threshold and wait for --yes (exit code 6); slapd's users arrive.
    idsync(&config)
        .env("LDAP_PASSWORD", server.admin_password())
        .arg("sync")
        .assert()
        .code(6)
        .stdout(predicate::str::contains("held"));
    let app = accounts(&dir.path().join("app.db"), QUICKSTART).await;
    let enabled: Vec<&str> = app
        .iter()
        .filter(|a| a.kind == ObjectKind::User && a.enabled)
        .filter_map(|a| a.fields.get("userName").map(String::as_str))
        .collect();
    assert_eq!(enabled.len(), 49 + 20, "nothing disabled before --yes");
    assert!(enabled.contains(&"u000000") && enabled.contains(&"ann.lee"));
    idsync(&config)
        .env("LDAP_PASSWORD", server.admin_password())
        .args(["sync", "--yes"])
        .assert()
        .code(0);
    let app = accounts(&dir.path().join("app.db"), QUICKSTART).await;
    let users: Vec<&TargetAccount> = app.iter().filter(|a| a.kind == ObjectKind::User).collect();
    assert_eq!(users.len(), 69, "deprovision disables, never deletes");
    assert_eq!(users.iter().filter(|u| u.enabled).count(), 20);
}

const SLAPD_PROFILE: &str = r#"
target = { type = "sql", url = "sqlite://app.db" }
state = { type = "sql", url = "STATE_URL" }

[profile]
id = "7b3e2f10-4c5d-4e6f-8a9b-0c1d2e3f4a5b"
name = "slapd to SQLite"

[[profile.mapping.users]]
field = "userName"
attribute = "uid"
[[profile.mapping.users]]
field = "email"
attribute = "mail"
[[profile.mapping.groups]]
field = "name"
attribute = "cn"

[source]
type = "ldap"
flavor = "generic"
url = "LDAP_URL"
bind_dn = "BIND_DN"
password = "${IDSYNC_TEST_LDAP_PASSWORD}"
base_dn = "BASE_DN"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn slapd_into_sqlite_with_a_leaver_status_and_history() {
    let Some(server) = slapd(SlapdOptions::with_users(30, 3)).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("idsync.toml");
    let state_url = format!("sqlite://{}", dir.path().join("state.db").display());
    std::fs::write(
        &config,
        SLAPD_PROFILE
            .replace("STATE_URL", &state_url)
            .replace("LDAP_URL", &server.url())
            .replace("BIND_DN", &server.admin_dn())
            .replace("BASE_DN", server.base_dn()),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut cmd = idsync(&config);
        cmd.env("IDSYNC_TEST_LDAP_PASSWORD", server.admin_password()).args(args);
        cmd
    };
    run(&["validate"])
        .assert()
        .success()
        .stdout(predicate::str::contains("target sql answers"));
    run(&["sync"]).assert().code(0);
    let profile = "7b3e2f10-4c5d-4e6f-8a9b-0c1d2e3f4a5b";
    let app = accounts(&dir.path().join("app.db"), profile).await;
    let users: Vec<&TargetAccount> = app.iter().filter(|a| a.kind == ObjectKind::User).collect();
    let groups: Vec<&TargetAccount> = app.iter().filter(|a| a.kind == ObjectKind::Group).collect();
    assert_eq!(users.len(), 30);
    assert_eq!(groups.len(), 3);
    for g in 0..3 {
        let name = idsync_testkit::slapd::group_cn(g);
        let group = groups.iter().find(|a| a.fields.get("name") == Some(&name)).unwrap();
        assert_eq!(group.members.len(), group_members(g, 3, 30).len(), "{name}");
    }

    // A leaver: deleted from the directory, disabled in the application.
    server.ldapdelete(&user_dn(server.base_dn(), 4, &[])).await.unwrap();
    run(&["sync", "--full"]).assert().code(0);
    let app = accounts(&dir.path().join("app.db"), profile).await;
    let leaver = app
        .iter()
        .find(|a| a.fields.get("userName").map(String::as_str) == Some("u000004"))
        .unwrap();
    assert!(!leaver.enabled, "the leaver is disabled, not deleted");
    assert_eq!(
        app.iter().filter(|a| a.kind == ObjectKind::User && a.enabled).count(),
        29
    );

    run(&["status"])
        .assert()
        .success()
        .stdout(predicate::str::contains("last run"))
        .stdout(predicate::str::contains("Succeeded"));
    let history = run(&["history"]).assert().success().get_output().stdout.clone();
    assert_eq!(String::from_utf8(history).unwrap().lines().count(), 2, "two runs");

    // Another worker holds the profile's lease: this one does not run.
    let state = SqlStateStore::connect(&state_url).await.unwrap();
    let lease = state
        .try_lease(
            ProfileId(profile.parse().unwrap()),
            "other-host:1",
            Duration::from_secs(60),
        )
        .await
        .unwrap()
        .expect("the lease is free between runs");
    run(&["sync"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("another worker holds its lease"));
    state.release(&lease).await.unwrap();
    run(&["sync"]).assert().code(0);
}
