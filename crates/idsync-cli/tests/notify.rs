//! The `idsync` binary tells admins what went wrong, against real servers:
//! a read cut short by a reset (through the fault proxy) exits 7, sends the
//! notice naming the reason and shows in `status`; a source that is down
//! and a wrong bind password send the notice too.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use futures::TryStreamExt as _;
use idsync::sql::{SqlTarget, SqlTargetConfig};
use idsync::{ObjectKind, ProfileId, Target as _, TargetAccount};
use idsync_testkit::proxy::TcpProxy;
use idsync_testkit::slapd::{Slapd, SlapdOptions, slapd, user_dn};
use predicates::prelude::*;

const PROFILE_ID: &str = "9c4d1e2f-3a5b-4c6d-8e7f-0a1b2c3d4e5f";

const PROFILE: &str = r#"
target = { type = "sql", url = "sqlite://app.db" }
state = { type = "json", path = "state" }

[profile]
id = "PROFILE_ID"
name = "slapd to SQLite, notified"

[[profile.mapping.users]]
field = "userName"
attribute = "uid"
[[profile.mapping.groups]]
field = "name"
attribute = "cn"

[profile.rules.threshold]
max_count = 100

[source]
type = "ldap"
flavor = "generic"
url = "LDAP_URL"
bind_dn = "BIND_DN"
password = "${IDSYNC_TEST_LDAP_PASSWORD}"
base_dn = "BASE_DN"
page_size = 50

[notify]
command = ["sh", "-c", "cat >> 'NOTICES'; echo >> 'NOTICES'"]
"#;

struct Setup {
    dir: tempfile::TempDir,
    password: String,
}

impl Setup {
    /// A profile reading slapd at `url`, each notice appended as one JSON
    /// line to `notices.jsonl`.
    fn new(server: &Slapd, url: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let text = PROFILE
            .replace("PROFILE_ID", PROFILE_ID)
            .replace("LDAP_URL", url)
            .replace("BIND_DN", &server.admin_dn())
            .replace("BASE_DN", server.base_dn())
            .replace("NOTICES", &dir.path().join("notices.jsonl").display().to_string());
        std::fs::write(dir.path().join("idsync.toml"), text).unwrap();
        Setup {
            dir,
            password: server.admin_password().to_owned(),
        }
    }

    fn idsync(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("idsync").unwrap();
        cmd.arg("--config")
            .arg(self.dir.path().join("idsync.toml"))
            .env("IDSYNC_TEST_LDAP_PASSWORD", &self.password)
            .args(args);
        cmd
    }

    /// The notices sent so far.
    fn notices(&self) -> Vec<serde_json::Value> {
        let path: PathBuf = self.dir.path().join("notices.jsonl");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The users the profile linked in the application: (userName, enabled).
    async fn users(&self) -> Vec<(String, bool)> {
        users(&self.dir.path().join("app.db")).await
    }
}

async fn users(db: &Path) -> Vec<(String, bool)> {
    let url = format!("sqlite://{}", db.display());
    let target = SqlTarget::open(&url, SqlTargetConfig::default()).await.unwrap();
    let profile = ProfileId(PROFILE_ID.parse().unwrap());
    let all: Vec<TargetAccount> = target.linked(profile).await.unwrap().try_collect().await.unwrap();
    let mut users: Vec<(String, bool)> = all
        .into_iter()
        .filter(|a| a.kind == ObjectKind::User)
        .map(|a| (a.fields.get("userName").cloned().unwrap_or_default(), a.enabled))
        .collect();
    users.sort();
    users
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_cut_short_exits_7_sends_the_notice_and_shows_in_status() {
    let Some(server) = slapd(SlapdOptions::with_users(500, 3)).await else {
        return;
    };
    let proxy = TcpProxy::start(server.port()).await.unwrap();
    let s = Setup::new(&server, &format!("ldap://127.0.0.1:{}", proxy.port()));
    s.idsync(&["sync"])
        .assert()
        .code(0)
        .stdout(predicate::str::is_match(r"(?m)^Succeeded: \d+ applied, 0 failed").unwrap());
    assert!(s.notices().is_empty(), "a complete run sends no notice");
    assert_eq!(s.users().await.len(), 500);
    let read_bytes = proxy.stats().bytes_down;

    // Five leavers; the next full read is reset half way.
    for i in 10..15 {
        server.ldapdelete(&user_dn(server.base_dn(), i, &[])).await.unwrap();
    }
    proxy.reset_after(read_bytes / 2, 1);
    let out = s
        .idsync(&["sync", "--full"])
        .assert()
        .code(7)
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(proxy.stats().resets, 1);
    assert!(!out.lines().any(|l| l.starts_with("Succeeded")), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("Partial read: ") && l.contains("deprovisions were spared")),
        "{out}"
    );
    assert!(
        s.users().await.iter().all(|(_, enabled)| *enabled),
        "nothing disabled on a partial read"
    );
    let notices = s.notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    let notice = &notices[0];
    assert_eq!(notice["profile"], PROFILE_ID);
    assert_eq!(notice["exit_code"], 7);
    let partial = notice["partial_read"].as_str().unwrap_or_default();
    assert!(partial.contains("the connection failed"), "{notice}");
    s.idsync(&["status"])
        .assert()
        .success()
        .stdout(predicate::str::is_match("(?m)^last read partial: .*the connection failed").unwrap());

    // Healed: the leavers are disabled, the run is a plain success again.
    proxy.heal();
    s.idsync(&["sync", "--full"])
        .assert()
        .code(0)
        .stdout(predicate::str::is_match("(?m)^Succeeded: ").unwrap());
    let disabled: Vec<String> = s
        .users()
        .await
        .into_iter()
        .filter(|(_, enabled)| !enabled)
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        disabled,
        (10..15).map(idsync_testkit::slapd::user_uid).collect::<Vec<_>>()
    );
    assert_eq!(s.notices().len(), 1, "no notice for a complete run");
    s.idsync(&["status"])
        .assert()
        .success()
        .stdout(predicate::str::is_match("(?m)^last read complete").unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_bind_password_and_a_stopped_source_send_the_notice() {
    let Some(mut server) = slapd(SlapdOptions::with_users(5, 1)).await else {
        return;
    };
    let mut s = Setup::new(&server, &server.url());
    s.password = "not-the-password".into();
    s.idsync(&["sync"]).assert().code(5);
    let notices = s.notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["exit_code"], 5);
    let what = notices[0]["what"].as_str().unwrap_or_default();
    assert!(what.contains("authentication failed"), "{what}");
    assert!(!what.contains("not-the-password"), "{what}");

    s.password = server.admin_password().to_owned();
    s.idsync(&["sync"]).assert().code(0);
    assert_eq!(s.notices().len(), 1);

    server.stop().await;
    s.idsync(&["sync"]).assert().code(3);
    let notices = s.notices();
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert_eq!(notices[1]["exit_code"], 3);
    let what = notices[1]["what"].as_str().unwrap_or_default();
    assert!(what.contains("unavailable"), "{what}");
}

#[test]
fn the_exit_codes_are_in_the_help() {
    Command::cargo_bin("idsync")
        .unwrap()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes:"))
        .stdout(predicate::str::contains(
            "5  the run stopped (authentication failed, the lease was lost)",
        ))
        .stdout(predicate::str::contains("7  applied, but the read was partial"));
}
