//! The `idsync` binary with SQL: the README's quickstart (the bundled LDIF
//! into SQLite, then the one-line edit to a real slapd), slapd into SQLite
//! with a leaver, and a profile whose lease another worker holds.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use futures::TryStreamExt as _;
use idsync::sql::{SqlStateStore, SqlTarget, SqlTargetConfig};
use idsync::{ObjectKind, ProfileId, Target as _, TargetAccount};
use idsync_testkit::slapd::{SlapdOptions, group_cn, group_members, slapd, user_dn, user_uid};
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

/// What the application holds for a profile, by name: the `userName` of
/// each enabled and of each disabled user, and each group's `name` with
/// its members' `userName`s.
#[derive(Debug, Default, PartialEq)]
struct App {
    enabled: BTreeSet<String>,
    disabled: BTreeSet<String>,
    groups: BTreeMap<String, BTreeSet<String>>,
}

impl App {
    async fn read(db: &Path, profile: &str) -> App {
        let accounts = accounts(db, profile).await;
        let field = |a: &TargetAccount, f: &str| a.fields.get(f).cloned().unwrap_or_default();
        let user_names: BTreeMap<&str, String> = accounts
            .iter()
            .map(|a| (a.id.0.as_str(), field(a, "userName")))
            .collect();
        let mut app = App::default();
        for a in &accounts {
            let fresh = match a.kind {
                ObjectKind::User if a.enabled => app.enabled.insert(field(a, "userName")),
                ObjectKind::User => app.disabled.insert(field(a, "userName")),
                ObjectKind::Group => {
                    let members = a
                        .members
                        .iter()
                        .map(|m| user_names.get(m.0.as_str()).cloned().unwrap_or(m.0.clone()));
                    app.groups.insert(field(a, "name"), members.collect()).is_none()
                }
            };
            assert!(fresh, "twice: {a:?}");
        }
        app
    }
}

/// The names in `list`, separated by spaces.
fn names(list: &str) -> BTreeSet<String> {
    list.split_whitespace().map(str::to_owned).collect()
}

/// The quickstart's directory.ldif: its 49 enabled users (Hana Popescu,
/// hana.popescu, is disabled) and its four groups with their enabled
/// members, worked out from the LDIF outside idsync (base64 values decoded,
/// member DNs matched to the users' DNs).
fn quickstart_ldif() -> App {
    let users = names(
        "ann.lee ann.lee26 bob.sato bob.sato27 cem.berg cem.berg28 dee.nowak dee.nowak29 eve.kaya \
         eve.kaya30 fay.kim fay.kim31 gus.murphy gus.murphy32 hana.popescu33 ivo.nash ivo.nash34 \
         jae.rossi jae.rossi35 kai.larsen kai.larsen36 lia.sndergaard lia.sndergaard37 mo.pike \
         mo.pike38 nia.novak nia.novak39 oskar.iyer oskar.iyer40 pia.ray pia.ray41 quinn.horvat \
         quinn.horvat42 rta.silva rta.silva43 sven.chen sven.chen44 tariq.moss tariq.moss45 uma.mller \
         uma.mller46 vik.kalnia vik.kalnia47 wen.demir wen.demir48 xenia.ortiz xenia.ortiz49 \
         yusuf.dubois zo.haddad",
    );
    let groups = BTreeMap::from([
        (
            "Sales Team".to_owned(),
            names(
                "ann.lee bob.sato27 dee.nowak eve.kaya30 gus.murphy hana.popescu33 jae.rossi kai.larsen36 \
                 mo.pike nia.novak39 pia.ray quinn.horvat42 sven.chen tariq.moss45 vik.kalnia wen.demir48 \
                 yusuf.dubois",
            ),
        ),
        (
            "Support Team".to_owned(),
            names(
                "bob.sato cem.berg28 eve.kaya fay.kim31 ivo.nash34 kai.larsen lia.sndergaard37 nia.novak \
                 oskar.iyer40 quinn.horvat rta.silva43 tariq.moss uma.mller46 wen.demir xenia.ortiz49 \
                 zo.haddad",
            ),
        ),
        (
            "Engineering".to_owned(),
            names(
                "ann.lee26 cem.berg dee.nowak29 fay.kim gus.murphy32 ivo.nash jae.rossi35 lia.sndergaard \
                 mo.pike38 oskar.iyer pia.ray41 rta.silva sven.chen44 uma.mller vik.kalnia47 xenia.ortiz",
            ),
        ),
        (
            "Managers".to_owned(),
            names(
                "ann.lee26 cem.berg eve.kaya30 gus.murphy ivo.nash34 kai.larsen mo.pike38 oskar.iyer \
                 quinn.horvat42 sven.chen uma.mller46 wen.demir",
            ),
        ),
    ]);
    App {
        enabled: users,
        disabled: BTreeSet::new(),
        groups,
    }
}

/// The slapd fixture of `users` users and `groups` groups
/// (`SlapdOptions::with_users`) without the users `gone`.
fn slapd_fixture(users: usize, groups: usize, gone: &[usize]) -> App {
    let present = |i: &usize| !gone.contains(i);
    App {
        enabled: (0..users).filter(present).map(user_uid).collect(),
        disabled: gone.iter().copied().map(user_uid).collect(),
        groups: (0..groups)
            .map(|g| {
                let members = group_members(g, groups, users).into_iter().filter(present);
                (group_cn(g), members.map(user_uid).collect())
            })
            .collect(),
    }
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
    let db = dir.path().join("app.db");
    assert_eq!(App::read(&db, QUICKSTART).await, quickstart_ldif());
    let app = accounts(&db, QUICKSTART).await;
    let ann = app
        .iter()
        .find(|u| u.fields.get("userName").map(String::as_str) == Some("ann.lee"))
        .unwrap();
    assert_eq!(ann.fields.get("displayName").unwrap(), "Ann Lee");
    assert_eq!(ann.fields.get("email").unwrap(), "ann.lee@acme.test");
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
    let (ldif, slapd_users) = (quickstart_ldif(), slapd_fixture(20, 2, &[]));
    let mut both = App {
        enabled: ldif.enabled.union(&slapd_users.enabled).cloned().collect(),
        disabled: BTreeSet::new(),
        groups: ldif.groups.clone(),
    };
    both.groups.extend(slapd_users.groups.clone());
    assert_eq!(App::read(&db, QUICKSTART).await, both, "nothing disabled before --yes");
    idsync(&config)
        .env("LDAP_PASSWORD", server.admin_password())
        .args(["sync", "--yes"])
        .assert()
        .code(0);
    // Deprovision disables, never deletes. The LDIF's groups stay as they
    // were: the default tables have no column to disable a group.
    let after = App {
        enabled: slapd_users.enabled,
        disabled: ldif.enabled,
        groups: both.groups,
    };
    assert_eq!(App::read(&db, QUICKSTART).await, after);
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
    let db = dir.path().join("app.db");
    assert_eq!(App::read(&db, profile).await, slapd_fixture(30, 3, &[]));

    // A leaver: deleted from the directory, disabled in the application.
    server.ldapdelete(&user_dn(server.base_dn(), 4, &[])).await.unwrap();
    run(&["sync", "--full"]).assert().code(0);
    // The leaver is disabled (not deleted) and out of its group.
    assert_eq!(App::read(&db, profile).await, slapd_fixture(30, 3, &[4]));

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
