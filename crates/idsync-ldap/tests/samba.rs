//! The LDAP adapter (AD flavour) against a real Samba AD DC: ids, aliases,
//! disabled accounts, a group of more than 1500 members, the target.
#![expect(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    reason = "test code: a failure fails the test"
)]

use std::sync::Arc;

use futures::StreamExt;
use idsync_core::memory::{MemorySource, MemoryTarget};
use idsync_core::{
    DeltaItem, Engine, ErrorKind, Fields, Link, Lookup, MemoryStateStore, ObjectKind, Profile, ProfileId, ReadItem,
    RunOptions, Scope, Source, SourceObject, Target, TargetId, TargetOp,
};
use idsync_ldap::{AdDelta, Flavor, InitialPassword, LdapConfig, LdapSource, LdapTarget};
use idsync_testkit::behaviour::{source, target};
use idsync_testkit::samba::{SambaDc, samba_dc};

fn config(dc: &SambaDc) -> LdapConfig {
    LdapConfig::new(dc.url(), dc.admin_upn(), dc.admin_password(), dc.base_dn(), Flavor::Ad)
}

async fn read(source: &LdapSource, scope: &Scope) -> (Vec<SourceObject>, idsync_core::Completeness) {
    let mut stream = source.read_full(scope).await.unwrap();
    let (mut objects, mut end) = (Vec::new(), None);
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            ReadItem::Object(o) => objects.push(o),
            ReadItem::End { completeness, .. } => end = Some(completeness),
            other => panic!("a case this code does not know: {other:?}"),
        }
    }
    (objects, end.unwrap())
}

/// Enables an account without a password (PASSWD_NOTREQD | NORMAL_ACCOUNT).
async fn enable(dc: &SambaDc, dn: &str) {
    dc.ldapmodify(&format!(
        "dn: {dn}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 544\n"
    ))
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn users_read_with_guid_ids_sid_aliases_and_their_enabled_state() {
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("src").await.unwrap();
    let users = dc.add_users(&ou, 3).await.unwrap();
    enable(dc, &users[0]).await;
    enable(dc, &users[1]).await;
    let group = dc
        .add_group(&ou, &format!("g{}", idsync_testkit::samba::random_tag()), &users[..2])
        .await
        .unwrap();
    let scope = Scope {
        containers: vec![ou.clone()],
        ..Scope::default()
    };
    let (objects, end) = read(&LdapSource::new(config(dc)), &scope).await;
    assert!(end.is_complete(), "{end:?}");
    let people: Vec<_> = objects.iter().filter(|o| o.kind == ObjectKind::User).collect();
    assert_eq!(people.len(), 3);
    for p in &people {
        assert_eq!(p.id.0.len(), 36, "objectGUID as a UUID: {}", p.id);
        assert!(
            p.aliases.iter().any(|a| a.0.starts_with("S-1-5-21-")),
            "objectSid as an alias: {:?}",
            p.aliases
        );
        assert_eq!(p.container, ou);
    }
    let disabled: Vec<_> = people.iter().filter(|p| !p.enabled).collect();
    assert_eq!(
        disabled.len(),
        1,
        "the account left at userAccountControl 546 reads as disabled"
    );
    let g = objects.iter().find(|o| o.kind == ObjectKind::Group).unwrap();
    assert_eq!(g.first_text("dn"), Some(group.as_str()));
    assert_eq!(g.members.len(), 2);
    // read_one by GUID
    let one = LdapSource::new(config(dc))
        .read_one(&Scope::default(), &people[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.id, people[0].id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_of_more_than_1500_members_is_read_whole() {
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("big").await.unwrap();
    let users = dc.add_users(&ou, 1600).await.unwrap();
    dc.add_group(&ou, &format!("big{}", idsync_testkit::samba::random_tag()), &users)
        .await
        .unwrap();
    let scope = Scope {
        containers: vec![ou.clone()],
        ..Scope::default()
    };
    let (objects, end) = read(&LdapSource::new(config(dc)), &scope).await;
    assert!(end.is_complete());
    let g = objects.iter().find(|o| o.kind == ObjectKind::Group).unwrap();
    assert_eq!(g.members.len(), 1600, "member;range= was followed to its end");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_that_cannot_be_read_makes_the_read_partial() {
    let Some(dc) = samba_dc().await else { return };
    let scope = Scope {
        containers: vec![format!(
            "OU=does-not-exist-{},{}",
            idsync_testkit::samba::random_tag(),
            dc.base_dn()
        )],
        ..Scope::default()
    };
    let (_, end) = read(&LdapSource::new(config(dc)), &scope).await;
    assert!(
        matches!(&end, idsync_core::Completeness::Partial { reason } if reason.contains("cannot be read")),
        "{end:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rehire_with_a_new_guid_and_the_same_employee_id_keeps_the_account() {
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("rehire").await.unwrap();
    let users = dc.add_users(&ou, 2).await.unwrap();
    for u in &users {
        enable(dc, u).await;
    }
    let profile: Profile = serde_json::from_value(serde_json::json!({
        "id": "b2b2b2b2-0000-4000-8000-000000000001", "name": "ad to app",
        "scope": {"containers": [ou], "kinds": ["user"]},
        "mapping": {"users": [{"field": "login", "attribute": "sAMAccountName"}, {"field": "employee", "attribute": "employeeID"}]},
        "rules": {"correlation": {"attribute": "employeeID", "field": "employee"}, "duplicates": "relink"}
    }))
    .unwrap();
    let app = MemoryTarget::new();
    let engine = Engine::new(
        profile.clone(),
        Arc::new(LdapSource::new(config(dc))),
        Arc::new(app.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(app.accounts().len(), 2);
    let before = app
        .accounts()
        .into_iter()
        .find(|a| a.fields["employee"] == "200000")
        .unwrap();
    // The first user leaves (deleted) and comes back as a new account with the same employeeID.
    dc.ldapdelete(&users[0]).await.unwrap();
    let tag = idsync_testkit::samba::random_tag();
    let sam = format!("re{tag}");
    dc.ldapadd(&format!(
        "dn: CN={sam},{ou}\nobjectClass: user\nsAMAccountName: {sam}\nemployeeID: 200000\nuserAccountControl: 544\n"
    ))
    .await
    .unwrap();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.counts.link, 1, "{}", report.plan);
    assert_eq!(report.plan.counts.create, 0);
    let after = app.account(&before.id).unwrap();
    assert_eq!(
        after.fields["login"], sam,
        "the old account follows the rehire and keeps its history"
    );
    assert!(after.enabled);
}

fn user_fields(prefix: &str, n: u32) -> Fields {
    let sam = format!("{prefix}u{n}");
    [
        ("cn", sam.clone()),
        ("sAMAccountName", sam.clone()),
        ("sn", format!("User{n}")),
        ("mail", format!("{sam}@example.test")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn group_fields(prefix: &str, n: u32) -> Fields {
    let sam = format!("{prefix}g{n}");
    [("cn".to_owned(), sam.clone()), ("sAMAccountName".to_owned(), sam)]
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_source_passes_the_behaviour_suite() {
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("bsrc").await.unwrap();
    let users = dc.add_users(&ou, 4).await.unwrap();
    for u in &users[..2] {
        enable(dc, u).await;
    }
    let group = format!("bg{}", idsync_testkit::samba::random_tag());
    dc.add_group(&ou, &group, &users[1..3]).await.unwrap();
    let sams: Vec<String> = users.iter().map(|dn| sam_of(dn).to_owned()).collect();
    let fx = source::Fixture {
        scope: Scope {
            containers: vec![ou.clone()],
            ..Scope::default()
        },
        name_attribute: "sAMAccountName".into(),
        users: sams.clone(),
        groups: vec![(group, sams[1..3].to_vec())],
        disabled: sams[2..].to_vec(),
    };
    let report = source::run(&LdapSource::new(config(dc)), &fx).await;
    report.assert_ok();
    assert!(report.skipped.is_empty(), "{report}");
}

fn target_fixture(prefix: &str) -> target::Fixture {
    target::Fixture {
        prefix: prefix.to_owned(),
        user_fields,
        group_fields,
        correlation_field: "mail".into(),
        updatable_field: "sn".into(),
        profile: serde_json::from_value(serde_json::json!({
            "id": "b2b2b2b2-0000-4000-8000-000000000002", "name": "memory to ad",
            "mapping": {"users": [{"field": "cn", "attribute": "uid"}, {"field": "sAMAccountName", "attribute": "uid"},
                                  {"field": "sn", "attribute": "sn"}, {"field": "mail", "attribute": "mail"}],
                        "groups": [{"field": "cn", "template": "{cn}"}]}
        }))
        .unwrap(),
    }
}

/// Over ldaps:// or StartTLS with `initial_password = "random"`. Samba's
/// certificate names DC1.example.test, not 127.0.0.1: verification is off
/// (the bytes are still encrypted).
#[derive(Clone, Copy, Debug)]
enum Tls {
    Ldaps,
    StartTls,
}

fn random_password_config(dc: &SambaDc, ou: &str, tls: Tls) -> LdapConfig {
    let mut c = config(dc);
    match tls {
        Tls::Ldaps => c.url = dc.url().replace("ldap://", "ldaps://"),
        Tls::StartTls => c.start_tls = true,
    }
    c.tls_verify = false;
    c.initial_password = InitialPassword::Random;
    c.default_container = Some(ou.to_owned());
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn the_target_passes_the_behaviour_suite_and_leaves_accounts_without_a_password_disabled() {
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("tgt").await.unwrap();
    let mut c = config(dc);
    c.default_container = Some(ou.clone());
    let prefix = idsync_testkit::samba::random_tag()[..6].to_owned();
    let fx = target_fixture(&prefix);
    let expect = target::Expect {
        enable_needs_password: true,
    };
    let report = target::run_with(Arc::new(LdapTarget::new(c.clone())), &fx, expect).await;
    report.assert_ok();
    let skipped: Vec<_> = report.skipped.iter().map(|(name, _)| *name).collect();
    assert_eq!(skipped, ["an_engine_run_disables_a_leaver"], "{report}");
    // An engine run creates the account disabled, and the report says why.
    let source = MemorySource::with_objects([SourceObject::new(format!("{prefix}-x1"), ObjectKind::User)
        .with("uid", format!("{prefix}x1"))
        .with("sn", "X")
        .with("mail", "x1@example.test")]);
    let mut profile = fx.profile.clone();
    profile.id = idsync_core::ProfileId::new_random(); // the DC is shared across runs
    let engine = Engine::new(
        profile,
        Arc::new(source),
        Arc::new(LdapTarget::new(c)),
        Arc::new(MemoryStateStore::new()),
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    let note = report.outcomes.iter().find_map(|o| o.note.clone()).unwrap_or_default();
    assert!(note.contains("has no password"), "{}", report.to_json());
    let entry = dc
        .search(&ou, &format!("(sAMAccountName={prefix}x1)"), &["userAccountControl"])
        .await
        .unwrap();
    assert_eq!(entry[0].first_str("userAccountControl").as_deref(), Some("514"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_target_with_random_initial_passwords_passes_the_behaviour_suite() {
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("tgtpw").await.unwrap();
    let prefix = idsync_testkit::samba::random_tag()[..6].to_owned();
    let t = LdapTarget::new(random_password_config(dc, &ou, Tls::Ldaps));
    let report = target::run(Arc::new(t), &target_fixture(&prefix)).await;
    report.assert_ok();
    assert!(report.skipped.is_empty(), "{report}");
}

/// userAccountControl, pwdLastSet and msDS-KeyVersionNumber (how many
/// times unicodePwd was written) of `dn`.
async fn password_state(dc: &SambaDc, dn: &str) -> (u32, i64, u32) {
    let e = dc
        .entry(dn, &["userAccountControl", "pwdLastSet", "msDS-KeyVersionNumber"])
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{dn} is missing"));
    let n = |a: &str| e.first_str(a).and_then(|v| v.parse::<i64>().ok()).unwrap();
    (
        n("userAccountControl") as u32,
        n("pwdLastSet"),
        n("msDS-KeyVersionNumber") as u32,
    )
}

/// A user's create operation with `cn` and `sAMAccountName` = `sam`.
fn create_user(sam: &str) -> TargetOp {
    TargetOp::Create {
        kind: ObjectKind::User,
        link: Link {
            profile: ProfileId::new_random(),
            external: format!("ext-{sam}").into(),
        },
        fields: [("cn", sam), ("sAMAccountName", sam)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    }
}

fn set_enabled(target: &TargetId, enabled: bool) -> TargetOp {
    TargetOp::SetEnabled {
        target: target.clone(),
        kind: ObjectKind::User,
        enabled,
    }
}

/// The target id of the account `sam`.
async fn id_by_sam(t: &LdapTarget, sam: &str) -> TargetId {
    let found = t
        .lookup(&[Lookup::Field {
            kind: ObjectKind::User,
            field: "sAMAccountName".into(),
            value: sam.into(),
        }])
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "{sam}: {found:?}");
    found[0].id.clone()
}

/// The sAMAccountName in a fixture user's DN (`CN=<sam>,…`).
fn sam_of(dn: &str) -> &str {
    dn.strip_prefix("CN=").and_then(|r| r.split(',').next()).unwrap()
}

const ACCOUNTDISABLE: u32 = 0x2;
const PASSWD_NOTREQD: u32 = 0x20;

#[tokio::test(flavor = "multi_thread")]
async fn without_an_initial_password_no_account_is_enabled_before_it_has_one() {
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("nopw").await.unwrap();
    let mut c = config(dc);
    c.default_container = Some(ou.clone());
    let t = LdapTarget::new(c);
    let sam = format!("np{}", idsync_testkit::samba::random_tag());
    let dn = format!("CN={sam},{ou}");

    // Created disabled, without PASSWD_NOTREQD (AD alone would make it 546).
    let created = t.apply(&create_user(&sam)).await.unwrap();
    assert!(created.note.unwrap_or_default().contains("has no password"));
    let id = created.target.unwrap();
    assert_eq!(password_state(dc, &dn).await.0, 514);
    // Enabled in the source: it stays disabled, and the note says why.
    let enable = t.apply(&set_enabled(&id, true)).await.unwrap();
    assert!(enable.note.unwrap_or_default().contains("has no password"));
    assert_eq!(password_state(dc, &dn).await.0, 514);
    let empty = dc.simple_bind(&dn, "").await.unwrap_err();
    assert_eq!(empty.code, Some(49), "{empty}");

    // An account made by hand without a password (546) is not enabled
    // either, and loses PASSWD_NOTREQD.
    let hand = dc.add_users(&ou, 1).await.unwrap().remove(0);
    assert_eq!(password_state(dc, &hand).await.0, 546);
    let hand_id = id_by_sam(&t, sam_of(&hand)).await;
    let enable = t.apply(&set_enabled(&hand_id, true)).await.unwrap();
    assert!(enable.note.is_some());
    assert_eq!(password_state(dc, &hand).await.0, 514);

    // Once it has a password, the enable goes through; a disable keeps
    // PASSWD_NOTREQD off.
    dc.set_password(&dn, "Hand-Set-Passw0rd!").await.unwrap();
    let enable = t.apply(&set_enabled(&id, true)).await.unwrap();
    assert_eq!(enable.note, None);
    assert_eq!(password_state(dc, &dn).await.0, 512);
    t.apply(&set_enabled(&id, false)).await.unwrap();
    assert_eq!(password_state(dc, &dn).await.0, 514);
    for dn in [&dn, &hand] {
        let uac = password_state(dc, dn).await.0;
        assert_eq!(uac & PASSWD_NOTREQD, 0, "{dn}: {uac}");
    }
}

/// Strings in `text` that could be a password idsync generated: 24
/// characters of its alphabet with an upper and a lower case letter, a
/// digit and a symbol.
fn password_shaped(text: &str) -> std::collections::BTreeSet<String> {
    const SYMBOLS: &str = "!#%*+-.:?@^_~";
    let chars: Vec<char> = text.chars().collect();
    let allowed = |c: &char| c.is_ascii_alphanumeric() || SYMBOLS.contains(*c);
    let mut out = std::collections::BTreeSet::new();
    for run in chars.split(|c| !allowed(c)).filter(|r| r.len() >= 24) {
        for w in run.windows(24) {
            let has = |f: fn(&char) -> bool| w.iter().any(f);
            if has(char::is_ascii_uppercase)
                && has(char::is_ascii_lowercase)
                && has(char::is_ascii_digit)
                && has(|c| SYMBOLS.contains(*c))
            {
                out.insert(w.iter().collect());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_random_initial_password_is_set_over_tls_must_be_changed_and_shows_nowhere() {
    let logs = idsync_testkit::logs::capture();
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("rndpw").await.unwrap();
    let tag = idsync_testkit::samba::random_tag();

    // Plain LDAP is refused before anything is written.
    let mut plain = config(dc);
    plain.initial_password = InitialPassword::Random;
    plain.default_container = Some(ou.clone());
    let e = LdapTarget::connect(plain.clone()).await.unwrap_err();
    assert!(e.stops_run() && e.kind() == ErrorKind::Config, "{e}");
    let e = LdapTarget::new(plain)
        .apply(&create_user(&format!("pl{tag}")))
        .await
        .unwrap_err();
    assert!(e.stops_run() && e.kind() == ErrorKind::Config, "{e}");
    let errors = format!("{e}\n{e:?}");
    assert!(
        dc.search(&ou, &format!("(sAMAccountName=pl{tag})"), &["1.1"])
            .await
            .unwrap()
            .is_empty()
    );

    // An engine run creates enabled accounts with a password to change.
    let mut created = Vec::new();
    let mut reports = Vec::new();
    for (n, tls) in [Tls::Ldaps, Tls::StartTls].into_iter().enumerate() {
        let sam = format!("rp{n}{tag}");
        let source = MemorySource::with_objects([SourceObject::new(format!("rp-{n}-{tag}"), ObjectKind::User)
            .with("uid", sam.clone())
            .with("sn", "Random")
            .with("mail", format!("{sam}@example.test"))]);
        let mut profile = target_fixture(&tag).profile;
        profile.id = ProfileId::new_random();
        let t = LdapTarget::connect(random_password_config(dc, &ou, tls)).await.unwrap();
        reports.push(format!("{t:?}"));
        let engine = Engine::new(
            profile,
            Arc::new(source),
            Arc::new(t),
            Arc::new(MemoryStateStore::new()),
        );
        let report = engine.run(&RunOptions::default()).await.unwrap();
        assert_eq!(report.failures().count(), 0, "{tls:?}: {}", report.to_json());
        let note = report.outcomes[0].note.clone().unwrap_or_default();
        assert!(note.contains("random initial password"), "{tls:?}: {note}");
        let dn = format!("CN={sam},{ou}");
        let (uac, pwd_last_set, kvno) = password_state(dc, &dn).await;
        assert_eq!(
            (uac, pwd_last_set),
            (512, 0),
            "{tls:?}: enabled, must change at next logon"
        );
        assert_eq!(kvno, 2, "{tls:?}: a password was set after the create");
        assert!(engine.run(&RunOptions::default()).await.unwrap().plan.is_empty());
        reports.push(report.to_json());
        reports.push(format!("{report:?}"));
        created.push(dn);
    }

    // A disable and an enable keep that password; an account made by hand
    // without one gets one when it is enabled.
    let t = LdapTarget::new(random_password_config(dc, &ou, Tls::Ldaps));
    let id = id_by_sam(&t, sam_of(&created[0])).await;
    t.apply(&set_enabled(&id, false)).await.unwrap();
    assert_eq!(password_state(dc, &created[0]).await.0, 512 | ACCOUNTDISABLE);
    let enable = t.apply(&set_enabled(&id, true)).await.unwrap();
    assert_eq!(enable.note, None);
    assert_eq!(
        password_state(dc, &created[0]).await,
        (512, 0, 2),
        "the password was not reset"
    );
    let hand = dc.add_users(&ou, 1).await.unwrap().remove(0);
    let hand_id = id_by_sam(&t, sam_of(&hand)).await;
    let enable = t.apply(&set_enabled(&hand_id, true)).await.unwrap();
    assert!(enable.note.unwrap_or_default().contains("random initial password"));
    assert_eq!(password_state(dc, &hand).await, (512, 0, 2));
    created.push(hand);

    // Samba tells a wrong password (data 52e) from the right one that must
    // be changed (data 773): the probe below would see a leaked password.
    let probe = dc.add_users(&ou, 1).await.unwrap().remove(0);
    dc.set_password(&probe, "Probe-Passw0rd!").await.unwrap();
    dc.ldapmodify(&format!(
        "dn: {probe}\nchangetype: modify\nreplace: pwdLastSet\npwdLastSet: 0\n-\nreplace: userAccountControl\nuserAccountControl: 512\n"
    ))
    .await
    .unwrap();
    let right = dc.simple_bind(&probe, "Probe-Passw0rd!").await.unwrap_err();
    assert!(right.stderr_tail.contains("data 773"), "{right}");
    let wrong = dc.simple_bind(&probe, "Probe-Passw0rd?").await.unwrap_err();
    assert!(wrong.stderr_tail.contains("data 52e"), "{wrong}");

    // No string in the logs, reports, Debug output or errors is any of the
    // passwords: each one that could be is tried and refused.
    let leaked = "Ab3!Cd4#Ef5%Gh6*Ij7+Kl8-";
    assert!(password_shaped(&format!("note=\"{leaked}\"")).contains(leaked));
    let channels = [logs.text(), reports.join("\n"), errors];
    let candidates: std::collections::BTreeSet<String> = channels.iter().flat_map(|t| password_shaped(t)).collect();
    for dn in &created {
        let empty = dc.simple_bind(dn, "").await.unwrap_err();
        assert!(empty.stderr_tail.contains("data 52e"), "{dn}: {empty}");
        for candidate in &candidates {
            let answer = dc.simple_bind(dn, candidate).await;
            assert!(
                answer.as_ref().is_err_and(|e| e.stderr_tail.contains("data 52e")),
                "{dn}: a password shows in the logs or reports: {answer:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rename_and_a_move_reach_the_directory() {
    let Some(dc) = samba_dc().await else { return };
    let (ou, other) = (dc.unique_ou("mv").await.unwrap(), dc.unique_ou("mv2").await.unwrap());
    let mut c = config(dc);
    c.default_container = Some(ou.clone());
    let t = LdapTarget::new(c);
    let tag = idsync_testkit::samba::random_tag();
    let link = idsync_core::Link {
        profile: idsync_core::ProfileId::new_random(),
        external: format!("mv-{tag}").into(),
    };
    let fields: Fields = [("cn", format!("a{tag}")), ("sAMAccountName", format!("a{tag}"))]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    use idsync_core::FieldChange;
    let id = t
        .apply(&TargetOp::Create {
            kind: ObjectKind::User,
            link,
            fields,
        })
        .await
        .unwrap()
        .target
        .unwrap();
    let changes = vec![
        FieldChange {
            field: "cn".into(),
            old: Some(format!("a{tag}")),
            new: Some(format!("b{tag}")),
        },
        FieldChange {
            field: "container".into(),
            old: Some(ou.clone()),
            new: Some(other.clone()),
        },
        FieldChange {
            field: "description".into(),
            old: None,
            new: Some("moved".into()),
        },
    ];
    t.apply(&TargetOp::Update {
        target: id,
        kind: ObjectKind::User,
        changes,
    })
    .await
    .unwrap();
    let found = dc
        .search(&other, &format!("(sAMAccountName=a{tag})"), &["cn", "description"])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].first_str("cn").as_deref(), Some(format!("b{tag}").as_str()));
    assert_eq!(found[0].first_str("description").as_deref(), Some("moved"));
}

/// Collects a delta read: changed objects by id, deleted ids, and how it ended.
async fn delta(
    source: &LdapSource,
    scope: &Scope,
    from: &idsync_core::Cursor,
) -> (std::collections::HashMap<String, SourceObject>, Vec<String>, DeltaItem) {
    let mut stream = source.read_delta(scope, from).await.unwrap();
    let (mut changed, mut deleted) = (std::collections::HashMap::new(), Vec::new());
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            DeltaItem::Changed(o) => {
                changed.insert(o.id.0.clone(), o);
            }
            DeltaItem::Deleted(id) => deleted.push(id.0),
            // The present set (uSNChanged) is checked in its own test.
            DeltaItem::Present(_) => {}
            end => return (changed, deleted, end),
        }
    }
    panic!("the delta ended without End or ResyncRequired");
}

async fn full_read_cursor(source: &LdapSource, scope: &Scope) -> (Vec<SourceObject>, idsync_core::Cursor) {
    let mut stream = source.read_full(scope).await.unwrap();
    let mut objects = Vec::new();
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            ReadItem::Object(o) => objects.push(o),
            ReadItem::End { completeness, cursor } => {
                assert!(completeness.is_complete(), "{completeness:?}");
                return (objects, cursor.expect("an AD full read leaves a delta cursor"));
            }
            other => panic!("a case this code does not know: {other:?}"),
        }
    }
    panic!("no End");
}

/// Adds, modifies, moves, renames, deletes and membership changes, seen by
/// a delta read in the given mode.
async fn deltas_see_every_kind_of_change(dc: &SambaDc, mode: AdDelta) {
    let ou = dc.unique_ou("delta").await.unwrap();
    let moved_ou = format!("OU=moved,{ou}");
    dc.ldapadd(&format!("dn: {moved_ou}\nobjectClass: organizationalUnit\n"))
        .await
        .unwrap();
    let users = dc.add_users(&ou, 5).await.unwrap();
    let tag = idsync_testkit::samba::random_tag();
    let group = dc.add_group(&ou, &format!("dg{tag}"), &users[..2]).await.unwrap();
    let mut c = config(dc);
    c.ad_delta = mode;
    let source = LdapSource::new(c);
    let scope = Scope {
        containers: vec![ou.clone()],
        ..Scope::default()
    };
    let (objects, cursor) = full_read_cursor(&source, &scope).await;
    let prefix = if mode == AdDelta::Usn { "ad:usn:" } else { "ad:dirsync:" };
    assert!(cursor.0.starts_with(prefix), "{}", cursor.0);
    let id_of = |dn: &str| {
        objects
            .iter()
            .find(|o| o.first_text("dn").is_some_and(|d| d.eq_ignore_ascii_case(dn)))
            .map(|o| o.id.0.clone())
            .unwrap()
    };
    let ids: Vec<String> = users.iter().map(|u| id_of(u)).collect();
    let group_id = id_of(&group);

    let added = dc.add_users(&ou, 1).await.unwrap().remove(0);
    dc.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nreplace: givenName\ngivenName: Zoë\n",
        users[1]
    ))
    .await
    .unwrap();
    let rdn = |dn: &str| dn.split(',').next().unwrap().to_owned();
    dc.ldapmodify(&format!(
        "dn: {}\nchangetype: moddn\nnewrdn: {}\ndeleteoldrdn: 1\nnewsuperior: {moved_ou}\n",
        users[2],
        rdn(&users[2])
    ))
    .await
    .unwrap();
    dc.ldapmodify(&format!(
        "dn: {}\nchangetype: moddn\nnewrdn: CN=renamed{tag}\ndeleteoldrdn: 1\n",
        users[3]
    ))
    .await
    .unwrap();
    dc.ldapdelete(&users[4]).await.unwrap();
    dc.ldapmodify(&format!(
        "dn: {group}\nchangetype: modify\nadd: member\nmember: CN=renamed{tag},{ou}\n-\ndelete: member\nmember: {}\n",
        users[0]
    ))
    .await
    .unwrap();

    let (changed, deleted, end) = delta(&source, &scope, &cursor).await;
    let DeltaItem::End { cursor: next } = end else {
        panic!("{mode:?}: {end:?}")
    };
    assert!(next.0.starts_with(prefix), "{}", next.0);
    let new = changed
        .values()
        .find(|o| o.first_text("dn").is_some_and(|d| d.eq_ignore_ascii_case(&added)))
        .unwrap_or_else(|| panic!("{mode:?}: the added user is seen"));
    assert_eq!(new.container.to_lowercase(), ou.to_lowercase());
    assert_eq!(changed[&ids[1]].first_text("givenName"), Some("Zoë"), "{mode:?}");
    assert_eq!(
        changed[&ids[2]].container.to_lowercase(),
        moved_ou.to_lowercase(),
        "{mode:?}: the move"
    );
    assert_eq!(
        changed[&ids[3]].first_text("dn").map(str::to_lowercase),
        Some(format!("cn=renamed{tag},{ou}").to_lowercase()),
        "{mode:?}: the rename"
    );
    assert!(deleted.contains(&ids[4]), "{mode:?}: the delete {deleted:?}");
    let mut members: Vec<String> = changed[&group_id].members.iter().map(|m| m.0.clone()).collect();
    members.sort();
    let mut expected = vec![ids[1].clone(), ids[3].clone()];
    expected.sort();
    assert_eq!(
        members, expected,
        "{mode:?}: the group's members after an add and a remove"
    );
    for live in &ids[..4] {
        assert!(!deleted.contains(live), "{mode:?}: {live} is not deleted");
    }

    // Nothing more in this OU since: the next delta from the new cursor is empty here.
    let (changed, deleted, end) = delta(&source, &scope, &next).await;
    assert!(matches!(end, DeltaItem::End { .. }), "{end:?}");
    let ours: Vec<_> = changed
        .values()
        .filter(|o| idsync_core::dn::within(&o.container, &ou))
        .collect();
    assert!(ours.is_empty(), "{mode:?}: {ours:?}");
    assert!(!ids.iter().any(|id| deleted.contains(id)), "{mode:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dirsync_deltas_see_adds_modifies_moves_renames_deletes_and_membership() {
    let Some(dc) = samba_dc().await else { return };
    deltas_see_every_kind_of_change(dc, AdDelta::DirSync).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn usn_deltas_with_show_deleted_see_the_same_changes() {
    let Some(dc) = samba_dc().await else { return };
    deltas_see_every_kind_of_change(dc, AdDelta::Usn).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_from_another_dc_an_expired_one_or_a_foreign_one_asks_for_a_full_read() {
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("resync").await.unwrap();
    dc.add_users(&ou, 1).await.unwrap();
    let source = LdapSource::new(config(dc));
    let scope = Scope {
        containers: vec![ou.clone()],
        ..Scope::default()
    };
    let (_, cursor) = full_read_cursor(&source, &scope).await;
    // ad:<mode>:<invocationId>:<taken>:<position>
    let parts: Vec<&str> = cursor.0.splitn(5, ':').collect();
    let other_dc = format!(
        "ad:{}:00000000-0000-0000-0000-000000000001:{}:{}",
        parts[1], parts[3], parts[4]
    );
    let expired = format!("ad:{}:{}:0:{}", parts[1], parts[2], parts[4]);
    for (from, why) in [
        (other_dc.as_str(), "another domain controller"),
        (expired.as_str(), "tombstone lifetime"),
        ("syncrepl:AAAA", "not an Active Directory cursor"),
    ] {
        let (_, _, end) = delta(&source, &scope, &idsync_core::Cursor(from.into())).await;
        assert!(
            matches!(&end, DeltaItem::ResyncRequired { reason } if reason.contains(why)),
            "{from}: {end:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_runs_ad_deltas_updates_and_deprovisions() {
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("engdelta").await.unwrap();
    let users = dc.add_users(&ou, 3).await.unwrap();
    for u in &users {
        enable(dc, u).await;
    }
    let profile: Profile = serde_json::from_value(serde_json::json!({
        "id": idsync_core::ProfileId::new_random(), "name": "ad deltas",
        "scope": {"containers": [ou], "kinds": ["user"]},
        "mapping": {"users": [{"field": "login", "attribute": "sAMAccountName"}, {"field": "given", "attribute": "givenName"}]}
    }))
    .unwrap();
    let app = MemoryTarget::new();
    let engine = Engine::new(
        profile,
        Arc::new(LdapSource::new(config(dc))),
        Arc::new(app.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    let first = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(first.plan.mode, idsync_core::ReadMode::Full);
    assert_eq!(first.plan.counts.create, 3, "{}", first.plan);
    assert!(first.cursor_saved);
    dc.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nreplace: givenName\ngivenName: Ærin\n",
        users[0]
    ))
    .await
    .unwrap();
    dc.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 546\n",
        users[1]
    ))
    .await
    .unwrap();
    dc.ldapdelete(&users[2]).await.unwrap();
    let second = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(second.plan.mode, idsync_core::ReadMode::Delta, "{}", second.plan);
    let c = second.plan.counts;
    assert_eq!((c.create, c.update, c.disable), (0, 1, 2), "{}", second.plan);
    let accounts = app.accounts();
    assert_eq!(accounts.iter().filter(|a| a.enabled).count(), 1);
    assert!(
        accounts
            .iter()
            .any(|a| a.fields.get("given").map(String::as_str) == Some("Ærin"))
    );
    let third = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(third.plan.mode, idsync_core::ReadMode::Delta);
    assert!(third.plan.is_empty(), "{}", third.plan);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_without_dirsync_rights_falls_back_to_usn_and_still_sees_deletions() {
    let Some(dc) = samba_dc().await else { return };
    let tag = idsync_testkit::samba::random_tag();
    let password = "L0w!Priv-Passw0rd";
    let Some(upn) = dc.add_user_with_password(&format!("low{tag}"), password).await.unwrap() else {
        return; // a DC this module did not start: no local database to add the account with
    };
    let ou = dc.unique_ou("lowpriv").await.unwrap();
    let users = dc.add_users(&ou, 3).await.unwrap();
    let source = LdapSource::new(LdapConfig::new(dc.url(), &upn, password, dc.base_dn(), Flavor::Ad));
    let scope = Scope {
        containers: vec![ou.clone()],
        kinds: vec![ObjectKind::User],
        ..Scope::default()
    };
    let (objects, cursor) = full_read_cursor(&source, &scope).await;
    assert_eq!(objects.len(), 3);
    assert!(
        cursor.0.starts_with("ad:usn:"),
        "DirSync is refused to this account: {}",
        cursor.0
    );
    dc.ldapdelete(&users[0]).await.unwrap();
    let gone = objects
        .iter()
        .find(|o| o.first_text("dn").is_some_and(|d| d.eq_ignore_ascii_case(&users[0])))
        .map(|o| o.id.clone())
        .unwrap();
    let mut stream = source.read_delta(&scope, &cursor).await.unwrap();
    let (mut present, mut end) = (Vec::new(), None);
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            DeltaItem::Present(id) => present.push(id),
            DeltaItem::Deleted(id) => assert_ne!(id, gone, "this account cannot read tombstones"),
            DeltaItem::Changed(_) => {}
            other => end = Some(other),
        }
    }
    assert!(matches!(end, Some(DeltaItem::End { .. })), "{end:?}");
    assert!(
        !present.contains(&gone),
        "the deleted user is missing from the present set"
    );
    for o in objects.iter().filter(|o| o.id != gone) {
        assert!(present.contains(&o.id), "{} is present", o.id);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn assigned_groups_are_pushed_down_with_in_chain_and_nested_members_come_along() {
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("chain").await.unwrap();
    let users = dc.add_users(&ou, 4).await.unwrap();
    let tag = idsync_testkit::samba::random_tag();
    let inner = dc.add_group(&ou, &format!("in{tag}"), &users[1..2]).await.unwrap();
    let deepest = dc.add_group(&ou, &format!("dp{tag}"), &users[2..3]).await.unwrap();
    dc.ldapmodify(&format!(
        "dn: {inner}\nchangetype: modify\nadd: member\nmember: {deepest}\n"
    ))
    .await
    .unwrap();
    let outer = format!("out{tag}");
    dc.add_group(&ou, &outer, &[users[0].clone(), inner.clone()])
        .await
        .unwrap();
    dc.add_group(&ou, &format!("other{tag}"), &users[3..]).await.unwrap();
    let scope = Scope {
        containers: vec![ou.clone()],
        groups: vec![outer.clone()],
        ..Scope::default()
    };
    let (objects, end) = read(&LdapSource::new(config(dc)), &scope).await;
    assert!(end.is_complete(), "{end:?}");
    let mut dns: Vec<String> = objects
        .iter()
        .filter_map(|o| o.first_text("dn").map(str::to_lowercase))
        .collect();
    dns.sort();
    let mut expected: Vec<String> = [
        &users[0],
        &users[1],
        &users[2],
        &inner,
        &deepest,
        &format!("CN={outer},{ou}"),
    ]
    .iter()
    .map(|d| d.to_lowercase())
    .collect();
    expected.sort();
    assert_eq!(
        dns, expected,
        "the outer group, its nested groups and their members at any depth, nothing else"
    );
    // A group named by objectGUID works the same.
    let outer_id = objects
        .iter()
        .find(|o| o.first_text("cn") == Some(outer.as_str()))
        .map(|o| o.id.0.clone())
        .unwrap();
    let by_id = Scope {
        groups: vec![outer_id],
        ..scope
    };
    let (again, _) = read(&LdapSource::new(config(dc)), &by_id).await;
    assert_eq!(again.len(), 6);
}

/// The objectGUIDs of the entries under `ou` matching `filter`, by DN (lower case).
async fn guids(dc: &SambaDc, ou: &str, filter: &str) -> std::collections::BTreeMap<String, String> {
    dc.search(ou, filter, &["objectGUID"])
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            let guid = idsync_core::ad::guid_to_string(&e.get("objectGUID")[0]).unwrap();
            (e.dn.to_lowercase(), guid)
        })
        .collect()
}

/// Issue 15 on AD: 1,000 members go into a group with one modify (their
/// DNs found by 6 searches of up to 200 objectGUIDs); the source reads
/// that group alone with 6 searches (the group, then its member DNs by
/// `distinguishedName` 200 at a time). In a second batch, members already
/// there count as added (AD's 68), a member not there counts as removed
/// (AD's 53), and an account that does not exist fails alone, named.
#[tokio::test(flavor = "multi_thread")]
async fn a_group_of_1000_members_is_filled_with_one_modify_and_read_alone_with_six_searches() {
    use idsync_testkit::proxy::TcpProxy;
    let Some(dc) = samba_dc().await else { return };
    let ou = dc.unique_ou("batch").await.unwrap();
    let dns = dc.add_users(&ou, 1006).await.unwrap();
    let users = guids(dc, &ou, "(objectClass=user)").await;
    let id = |i: usize| TargetId(users[&dns[i].to_lowercase()].clone());
    let proxy = TcpProxy::start(389).await.unwrap();
    let url = format!("ldap://127.0.0.1:{}", proxy.port());
    let mut c = config(dc);
    c.url = url.clone();
    let target = LdapTarget::new(c);
    // The DC is shared between runs: a name and a link of this run's own.
    let tag = idsync_testkit::samba::random_tag();
    let mut fields = group_fields(&tag, 1);
    fields.insert("container".into(), ou.clone());
    let link = Link {
        profile: ProfileId("b2b2b2b2-0000-4000-8000-000000000015".parse().unwrap()),
        external: idsync_core::ExternalId(tag.clone()),
    };
    let group = target
        .apply(&TargetOp::Create {
            kind: ObjectKind::Group,
            link,
            fields,
        })
        .await
        .unwrap()
        .target
        .unwrap();
    let group_dn = format!("CN={tag}g1,{ou}");
    let members = |dc: &'static SambaDc| {
        let group_dn = group_dn.clone();
        async move {
            let entry = dc.entry(&group_dn, &["member"]).await.unwrap().unwrap();
            let mut dns: Vec<String> = entry.strs("member").into_iter().map(|m| m.to_lowercase()).collect();
            dns.sort();
            dns
        }
    };
    let add = |i: usize| TargetOp::AddMember {
        group: group.clone(),
        member: id(i),
    };
    let before = proxy.stats().ldap;
    let results = target.apply_batch(&(0..1000).map(add).collect::<Vec<_>>()).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let sent = proxy.stats().ldap;
    assert_eq!(
        (sent.modify - before.modify, sent.search - before.search),
        (1, 6),
        "{sent:?}"
    );
    let mut expected: Vec<String> = dns[..1000].iter().map(|d| d.to_lowercase()).collect();
    expected.sort();
    assert_eq!(members(dc).await, expected);

    // The source reads the group alone in 6 searches.
    let mut c = config(dc);
    c.url = url;
    let source = LdapSource::new(c);
    let scope = Scope {
        containers: vec![ou.clone()],
        ..Scope::default()
    };
    let before = proxy.stats().ldap;
    let object = source
        .read_one(&scope, &idsync_core::ExternalId(group.0.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(proxy.stats().ldap.search - before.search, 6, "{:?}", proxy.stats().ldap);
    let read: std::collections::BTreeSet<String> = object.members.iter().map(|m| m.0.clone()).collect();
    let wanted: std::collections::BTreeSet<String> = (0..1000).map(|i| id(i).0).collect();
    assert_eq!(read, wanted);

    // Adds of 995–1004 (995–999 are members), of an account that does not
    // exist, then removes of 0 (a member) and 1005 (never one).
    let nobody = TargetId("0badc0de-0000-4000-8000-000000000000".into());
    let mut ops: Vec<TargetOp> = (995..1005).map(add).collect();
    ops.push(TargetOp::AddMember {
        group: group.clone(),
        member: nobody.clone(),
    });
    for i in [0, 1005] {
        ops.push(TargetOp::RemoveMember {
            group: group.clone(),
            member: id(i),
        });
    }
    let results = target.apply_batch(&ops).await;
    let failed: Vec<usize> = (0..ops.len()).filter(|i| results[*i].is_err()).collect();
    assert_eq!(failed, [10], "{results:?}");
    let e = results[10].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains(&nobody.0), "{e}");
    let mut expected: Vec<String> = dns[1..1005].iter().map(|d| d.to_lowercase()).collect();
    expected.sort();
    assert_eq!(members(dc).await, expected);
}
