//! The LDIF source on an AD export (ldifde style, binary GUIDs and SIDs)
//! and on slapcat output from a real slapd.
#![expect(clippy::panic, clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::io::Write;
use std::sync::Arc;

use futures::StreamExt;
use idsync_core::memory::MemoryTarget;
use idsync_core::{Engine, MemoryStateStore, ObjectKind, Profile, ReadItem, RunOptions, Scope, Source};
use idsync_file::{LdifConfig, LdifSource};
use idsync_testkit::behaviour::source;

/// An export as ldifde writes it: base64 binary ids, a disabled user (UAC
/// 514), a computer (skipped), an OU (skipped), a group with member DNs,
/// one record with a bad GUID.
const AD_EXPORT: &str = "\
version: 1

dn: OU=Sales,DC=example,DC=test
objectClass: top
objectClass: organizationalUnit
ou: Sales

dn: CN=Ann Lee,OU=Sales,DC=example,DC=test
objectClass: top
objectClass: person
objectClass: organizationalPerson
objectClass: user
sAMAccountName: ann
givenName: Ann
sn: Lee
objectGUID:: MyIRAFVEd2aImaq7zN3u/w==
objectSid:: AQUAAAAAAAUVAAAAx/f+13x3VciUWs4B9QMAAA==
userAccountControl: 512

dn:: Q049Wm/DqyBNw7xsbGVyLE9VPVNhbGVzLERDPWV4YW1wbGUsREM9dGVzdA==
objectClass: user
sAMAccountName: zoe
givenName:: Wm/Dqw==
sn:: TcO8bGxlcg==
objectGUID:: RERERERERERERERERERERA==
userAccountControl: 514

dn: CN=WS01,OU=Sales,DC=example,DC=test
objectClass: user
objectClass: computer
sAMAccountName: WS01$
objectGUID:: VVVVVVVVVVVVVVVVVVVVVQ==

dn: CN=Broken,OU=Sales,DC=example,DC=test
objectClass: user
sAMAccountName: broken
objectGUID:: AAEC

dn: CN=sales-team,OU=Sales,DC=example,DC=test
objectClass: group
sAMAccountName: sales-team
objectGUID:: ZmZmZmZmZmZmZmZmZmZmZg==
member: CN=Ann Lee,OU=Sales,DC=example,DC=test
member: CN=Zoë Müller,OU=Sales,DC=example,DC=test
member: CN=Someone Else,OU=Elsewhere,DC=example,DC=test
";

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

async fn read_all(
    s: &dyn Source,
) -> (
    Vec<idsync_core::SourceObject>,
    Vec<String>,
    Option<idsync_core::Completeness>,
) {
    let mut stream = s.read_full(&Scope::default()).await.unwrap();
    let (mut objects, mut errors, mut end) = (vec![], vec![], None);
    while let Some(item) = stream.next().await {
        match item {
            Ok(ReadItem::Object(o)) => objects.push(o),
            Ok(ReadItem::End { completeness, .. }) => end = Some(completeness),
            Err(e) => errors.push(e.to_string()),
            Ok(other) => panic!("an item this code does not know: {other:?}"),
        }
    }
    (objects, errors, end)
}

#[tokio::test]
async fn an_ad_export_reads_with_ids_aliases_state_and_members() {
    let f = file(AD_EXPORT);
    let source = LdifSource::new(LdifConfig::new(f.path()));
    let (objects, errors, end) = read_all(&source).await;
    assert_eq!(
        errors,
        vec![
            "file read [CN=Broken,OU=Sales,DC=example,DC=test] field \"objectGUID\": invalid data: LDIF line 34, entry CN=Broken,OU=Sales,DC=example,DC=test, field objectGUID: 3 bytes, expected 16"
        ]
    );
    assert!(
        end.unwrap().is_complete(),
        "the file was read to its end; the engine marks the read partial for the error"
    );
    let names: Vec<_> = objects
        .iter()
        .map(|o| o.first_text("sAMAccountName").unwrap())
        .collect();
    assert_eq!(names, ["ann", "zoe", "sales-team"]);
    let ann = &objects[0];
    assert_eq!(ann.id.0, "00112233-4455-6677-8899-aabbccddeeff");
    assert_eq!(ann.aliases[0].0, "S-1-5-21-3623811015-3361044348-30300820-1013");
    assert_eq!(ann.container, "OU=Sales,DC=example,DC=test");
    assert!(ann.enabled);
    let zoe = &objects[1];
    assert_eq!(
        (zoe.first_text("givenName"), zoe.first_text("sn"), zoe.enabled),
        (Some("Zoë"), Some("Müller"), false)
    );
    let group = &objects[2];
    assert_eq!(group.kind, ObjectKind::Group);
    assert_eq!(
        group.members,
        vec![ann.id.clone(), zoe.id.clone()],
        "members by DN, unknown DNs left out"
    );
}

#[tokio::test]
async fn an_ad_export_passes_the_source_behaviour_suite_once_fixed() {
    let fixed = AD_EXPORT.replace("objectGUID:: AAEC", "objectGUID:: d3d3d3d3d3d3d3d3d3d3dw==");
    let f = file(&fixed);
    let fx = source::Fixture {
        scope: Scope::default(),
        name_attribute: "sAMAccountName".into(),
        users: vec!["ann".into(), "zoe".into(), "broken".into()],
        groups: vec![("sales-team".into(), vec!["ann".into(), "zoe".into()])],
        disabled: vec!["zoe".into()],
    };
    source::run(&LdifSource::new(LdifConfig::new(f.path())), &fx)
        .await
        .assert_ok();
}

#[tokio::test]
async fn a_bad_record_syncs_the_others_and_deprovisions_nothing() {
    let profile: Profile = serde_json::from_value(serde_json::json!({
        "id": "88888888-8888-4888-8888-888888888888", "name": "ldif",
        "mapping": {"users": [{"field": "login", "attribute": "sAMAccountName"}],
                    "groups": [{"field": "name", "attribute": "sAMAccountName"}]}
    }))
    .unwrap();
    let fixed = AD_EXPORT.replace("objectGUID:: AAEC", "objectGUID:: d3d3d3d3d3d3d3d3d3d3dw==");
    let f = file(&fixed);
    let target = MemoryTarget::new();
    let state = Arc::new(MemoryStateStore::new());
    let engine = Engine::new(
        profile.clone(),
        Arc::new(LdifSource::new(LdifConfig::new(f.path()))),
        Arc::new(target.clone()),
        state.clone(),
    );
    engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(
        target.accounts().len(),
        3,
        "ann, broken (now fine) and the group; zoe is disabled so not created"
    );
    // Now the export has a bad record for an existing account: it is not deprovisioned.
    std::fs::write(f.path(), AD_EXPORT).unwrap();
    let engine = Engine::new(
        profile.clone(),
        Arc::new(LdifSource::new(LdifConfig::new(f.path()))),
        Arc::new(target.clone()),
        state,
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.read_errors.len(), 1);
    assert!(!report.plan.completeness.is_complete());
    assert!(target.accounts().iter().all(|a| a.enabled), "{}", report.plan);
}

#[tokio::test]
async fn change_records_are_rejected_by_line() {
    let f = file("dn: cn=x,dc=test\nchangetype: delete\n\n");
    let (objects, errors, _) = read_all(&LdifSource::new(LdifConfig::new(f.path()))).await;
    assert!(objects.is_empty());
    assert!(
        errors[0].contains("LDIF line 2, entry cn=x,dc=test, field changetype: change records are not accepted"),
        "{errors:?}"
    );
}

#[tokio::test]
async fn a_missing_file_is_a_configuration_error_naming_it() {
    let e = LdifSource::new(LdifConfig::new("/nonexistent/export.ldif"))
        .read_full(&Scope::default())
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), idsync_core::ErrorKind::Config);
    assert!(e.to_string().contains("/nonexistent/export.ldif"), "{e}");
}

#[tokio::test]
async fn slapcat_output_of_a_real_slapd_reads_back_every_user_and_group() {
    let Some(server) = idsync_testkit::slapd::slapd(idsync_testkit::slapd::SlapdOptions::with_users(120, 4)).await
    else {
        return;
    };
    let conf = server.dir().join("slapd.conf");
    let out = tokio::process::Command::new("slapcat")
        .arg("-f")
        .arg(&conf)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "slapcat failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), &out.stdout).unwrap();
    let mut config = LdifConfig::new(f.path());
    config.id_attribute = "entryUUID".into();
    let (objects, errors, end) = read_all(&LdifSource::new(config)).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(end.unwrap().is_complete());
    let users = objects.iter().filter(|o| o.kind == ObjectKind::User).count();
    let groups: Vec<_> = objects.iter().filter(|o| o.kind == ObjectKind::Group).collect();
    assert_eq!((users, groups.len()), (120, 4));
    let members: usize = groups.iter().map(|g| g.members.len()).sum();
    let expected: usize = (0..4)
        .map(|g| idsync_testkit::slapd::group_members(g, 4, 120).len())
        .sum();
    assert_eq!(
        members, expected,
        "every member DN resolves to a user read from the same export"
    );
    // Non-ASCII names survive slapcat's base64.
    assert!(
        objects
            .iter()
            .any(|o| o.first_text("cn").is_some_and(|cn| !cn.is_ascii())),
        "the fixture has non-ASCII names"
    );
}
