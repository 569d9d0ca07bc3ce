//! The `idsync` binary end to end: configuration mistakes, plan, sync,
//! saved plans, the threshold, history, from the bundled LDIF export into a
//! real scim2-server.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use idsync_testkit::scim2::Scim2Server;
use predicates::prelude::*;

fn quickstart_ldif() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart/directory.ldif")
}

const PROFILE: &str = r#"
[profile]
id = "3e0c8b1a-2f4d-4c6e-9a1b-5d7f9e2c4a60"
name = "quickstart to SCIM"

[[profile.mapping.users]]
field = "userName"
attribute = "sAMAccountName"
[[profile.mapping.users]]
field = "displayName"
template = "{givenName} {sn}"
[[profile.mapping.users]]
field = "emails[type eq \"work\"].value"
attribute = "mail"
[[profile.mapping.groups]]
field = "displayName"
attribute = "cn"

[profile.rules.threshold]
max_count = 10

[source]
type = "ldif"
path = "LDIF"

[target]
type = "scim"
base_url = "BASE"
token = "${IDSYNC_TEST_SCIM_TOKEN}"

[state]
type = "json"
path = "state"
"#;

struct Setup {
    dir: tempfile::TempDir,
    server: Scim2Server,
}

impl Setup {
    fn config(&self) -> PathBuf {
        self.dir.path().join("idsync.toml")
    }

    fn idsync(&self) -> Command {
        let mut cmd = Command::cargo_bin("idsync").unwrap();
        cmd.arg("--config")
            .arg(self.config())
            .env("IDSYNC_TEST_SCIM_TOKEN", self.server.token());
        cmd
    }

    async fn users(&self) -> Vec<serde_json::Value> {
        self.server.resources("Users").await
    }
}

async fn setup() -> Option<Setup> {
    let server = idsync_testkit::scim2::scim2_server().await?;
    let dir = tempfile::tempdir().unwrap();
    let ldif = dir.path().join("directory.ldif");
    std::fs::copy(quickstart_ldif(), &ldif).unwrap();
    let text = PROFILE
        .replace("LDIF", &ldif.display().to_string())
        .replace("BASE", &server.base_url());
    std::fs::write(dir.path().join("idsync.toml"), text).unwrap();
    Some(Setup { dir, server })
}

#[test]
fn a_configuration_mistake_names_the_file_the_field_and_what_is_expected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        PROFILE.replace(
            "[profile.rules.threshold]",
            "[profile.rules]\ndeprovison = \"delete\"\n[profile.rules.threshold]",
        ),
    )
    .unwrap();
    Command::cargo_bin("idsync")
        .unwrap()
        .args(["--config", path.to_str().unwrap(), "validate"])
        .env("IDSYNC_TEST_SCIM_TOKEN", "x")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.toml"))
        .stderr(predicate::str::contains(
            "unknown field `deprovison`, expected one of `deprovision`",
        ))
        .stderr(predicate::str::contains("line 20, column 1"));
}

#[test]
fn a_missing_environment_variable_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idsync.toml");
    std::fs::write(&path, PROFILE).unwrap();
    Command::cargo_bin("idsync")
        .unwrap()
        .args(["--config", path.to_str().unwrap(), "plan"])
        .env_remove("IDSYNC_TEST_SCIM_TOKEN")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "line 29: environment variable IDSYNC_TEST_SCIM_TOKEN is not set",
        ));
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_then_sync_then_nothing_to_do_with_history() {
    let Some(s) = setup().await else { return };
    s.idsync()
        .arg("validate")
        .assert()
        .success()
        .stdout(predicate::str::contains("ok source file answers"));
    // A plan changes nothing.
    let out = s
        .idsync()
        .args(["plan", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let plan: idsync::Plan = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        (plan.counts.create, plan.counts.add_member),
        (53, 61),
        "49 enabled users + 4 groups; 49 + 12 managers"
    );
    assert!(s.users().await.is_empty());
    // Sync applies it.
    s.idsync()
        .arg("sync")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Succeeded"));
    let users = s.users().await;
    assert_eq!(users.len(), 49);
    let ann = users.iter().find(|u| u["userName"] == "ann.lee").unwrap();
    assert_eq!(ann["displayName"], "Ann Lee");
    assert_eq!(ann["emails"][0]["value"], "ann.lee@acme.test");
    // Nothing left to do.
    s.idsync()
        .arg("plan")
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing to do"));
    s.idsync()
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains("last run"));
    let ann_guid = "dcf6150c-46a7-5a5d-94bb-ffc1f45d394f";
    s.idsync()
        .args(["history", "--object", ann_guid])
        .assert()
        .success()
        .stdout(predicate::str::contains("Applied").and(predicate::str::contains("create")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_applied_in_part_and_the_threshold_needs_yes() {
    let Some(s) = setup().await else { return };
    let saved = s.dir.path().join("plan.json");
    s.idsync()
        .args(["plan", "--out", saved.to_str().unwrap()])
        .assert()
        .success();
    s.idsync()
        .args(["sync", "--plan", saved.to_str().unwrap(), "--only", "0,1"])
        .assert()
        .code(0);
    assert_eq!(s.users().await.len(), 2);
    s.idsync()
        .args(["sync", "--plan", saved.to_str().unwrap(), "--only", "9999"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--only: the plan has no operation 9999"));
    s.idsync().arg("sync").assert().code(0);
    // 20 users leave (19 enabled ones): beyond the threshold of 10, the disables are held.
    let ldif = s.dir.path().join("directory.ldif");
    let text = std::fs::read_to_string(&ldif).unwrap();
    let kept: Vec<&str> = text
        .split("\n\n")
        .enumerate()
        .filter(|(i, _)| !(4..24).contains(i))
        .map(|(_, r)| r)
        .collect();
    std::fs::write(&ldif, kept.join("\n\n")).unwrap();
    s.idsync()
        .arg("sync")
        .assert()
        .code(6)
        .stdout(predicate::str::contains("ThresholdExceeded"));
    let active = s.users().await.iter().filter(|u| u["active"] != false).count();
    assert_eq!(active, 49, "nothing was disabled without --yes");
    s.idsync().args(["sync", "--yes"]).assert().code(0);
    let active = s.users().await.iter().filter(|u| u["active"] != false).count();
    assert_eq!(active, 30);
}

#[tokio::test(flavor = "multi_thread")]
async fn samba_ad_dc_into_scim2_server_from_the_command_line() {
    let Some(dc) = idsync_testkit::samba::samba_dc().await else {
        return;
    };
    let Some(server) = idsync_testkit::scim2::scim2_server().await else {
        return;
    };
    let ou = dc.unique_ou("cli").await.unwrap();
    let users = dc.add_users(&ou, 4).await.unwrap();
    for u in &users[..3] {
        dc.ldapmodify(&format!(
            "dn: {u}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 544\n"
        ))
        .await
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ad.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[profile]
id = "3e0c8b1a-2f4d-4c6e-9a1b-5d7f9e2c4a61"
name = "AD to SCIM"
scope = {{ containers = ["{ou}"], kinds = ["user"] }}
[[profile.mapping.users]]
field = "userName"
attribute = "sAMAccountName"

[source]
type = "ldap"
flavor = "ad"
url = "{url}"
bind_dn = "{bind}"
password = "${{IDSYNC_TEST_AD_PASSWORD}}"
base_dn = "{base}"

[target]
type = "scim"
base_url = "{scim}"
token = "${{IDSYNC_TEST_SCIM_TOKEN}}"
"#,
            url = dc.url(),
            bind = dc.admin_upn(),
            base = dc.base_dn(),
            scim = server.base_url()
        ),
    )
    .unwrap();
    let idsync = || {
        let mut cmd = Command::cargo_bin("idsync").unwrap();
        cmd.arg("--config")
            .arg(&config)
            .env("IDSYNC_TEST_AD_PASSWORD", dc.admin_password())
            .env("IDSYNC_TEST_SCIM_TOKEN", server.token());
        cmd
    };
    idsync()
        .arg("validate")
        .assert()
        .success()
        .stdout(predicate::str::contains("ok source ldap answers"));
    idsync().arg("sync").assert().code(0);
    let body: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/Users?count=100", server.base_url()))
        .bearer_auth(server.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["totalResults"], 3,
        "the three enabled users; the disabled one is not provisioned"
    );
    idsync()
        .arg("plan")
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing to do"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_is_exit_code_5() {
    let Some(s) = setup().await else { return };
    let mut cmd = Command::cargo_bin("idsync").unwrap();
    cmd.arg("--config")
        .arg(s.config())
        .env("IDSYNC_TEST_SCIM_TOKEN", "not-the-token");
    cmd.arg("plan")
        .assert()
        .code(5)
        .stderr(predicate::str::contains("authentication failed"));
}

/// `jit --login` finds the user by the profile's login attributes, in
/// order and without regard to case, and syncs that user alone; a name no
/// user has, or none at all, syncs nothing.
#[tokio::test(flavor = "multi_thread")]
async fn jit_by_login_name_syncs_that_user_alone() {
    let Some(s) = setup().await else { return };
    let text = std::fs::read_to_string(s.config()).unwrap().replace(
        "name = \"quickstart to SCIM\"",
        "name = \"quickstart to SCIM\"\nlogin_attributes = [\"sAMAccountName\", \"mail\"]",
    );
    std::fs::write(s.config(), text).unwrap();
    s.idsync()
        .args(["jit", "--login", "ANN.LEE"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Succeeded"));
    s.idsync()
        .args(["jit", "--login", "bob.sato@acme.test"])
        .assert()
        .code(0);
    let mut names: Vec<String> = s
        .users()
        .await
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["ann.lee", "bob.sato"]);
    s.idsync()
        .args(["jit", "--login", "nobody"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "no user in scope has sAMAccountName or mail = \"nobody\"",
        ));
    s.idsync().arg("jit").assert().code(2);
    assert_eq!(s.users().await.len(), 2);
}
