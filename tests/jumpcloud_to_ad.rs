//! End to end in the shape of seed 003: JumpCloud as the HR-driven source
//! (the fake JumpCloud) provisions Active Directory (Samba AD DC). An AD
//! account that already exists is adopted by employeeIdentifier; users are
//! created in the OU of their department from JumpCloud's fields; groups
//! with their members; a department change moves the account; a suspension
//! disables it and its end enables it again; a member removed in JumpCloud
//! leaves the AD group; rate limiting during a run is retried through.
//!
//! The target sets a random initial password over ldaps://
//! (`initial_password = "random"`): every account idsync creates is enabled
//! with a password that must be changed at the next logon, never with
//! PASSWD_NOTREQD, and an empty password does not bind.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::sync::Arc;

use idsync::jumpcloud::{JumpCloudConfig, JumpCloudSource};
use idsync::ldap::{Flavor, InitialPassword, LdapConfig, LdapTarget};
use idsync::{Engine, MemoryStateStore, Profile, RunOptions};
use idsync_testkit::fault::Fault;
use idsync_testkit::jumpcloud::FakeJumpCloud;
use idsync_testkit::samba::SambaDc;
use serde_json::{Value, json};

/// Changes a JumpCloud user through the API, as an HR admin would.
async fn hr_update(jc: &FakeJumpCloud, id: &str, change: Value) {
    let put = reqwest::Client::new()
        .put(format!("{}/api/systemusers/{id}", jc.base_url()))
        .header("x-api-key", jc.api_key())
        .json(&change)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
}

/// One of the test's AD users.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct AdUser {
    sam: String,
    dn: String,
    uac: u32,
    pwd_last_set: i64,
}

const ACCOUNTDISABLE: u32 = 0x2;
const PASSWD_NOTREQD: u32 = 0x20;

/// The test's AD users, by sAMAccountName.
async fn ad_users(dc: &SambaDc, ou: &str, tag: &str) -> Vec<AdUser> {
    let found = dc
        .search(
            ou,
            "(objectClass=user)",
            &["sAMAccountName", "userAccountControl", "pwdLastSet"],
        )
        .await
        .unwrap();
    let mut out: Vec<AdUser> = found
        .iter()
        .filter_map(|u| {
            let sam = u.first_str("sAMAccountName")?;
            let uac = u.first_str("userAccountControl")?.parse().ok()?;
            let pwd_last_set = u.first_str("pwdLastSet")?.parse().ok()?;
            sam.starts_with(tag).then(|| AdUser {
                sam,
                dn: u.dn.clone(),
                uac,
                pwd_last_set,
            })
        })
        .collect();
    out.sort();
    out
}

/// Every user is enabled, none may have an empty password, and an empty
/// password does not bind.
async fn assert_enabled_with_passwords(dc: &SambaDc, users: &[AdUser]) {
    for u in users {
        assert_eq!(u.uac & (ACCOUNTDISABLE | PASSWD_NOTREQD), 0, "{u:?}");
        let empty = dc.simple_bind(&u.dn, "").await.unwrap_err();
        assert!(empty.stderr_tail.contains("data 52e"), "{u:?}: {empty}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn jumpcloud_users_and_groups_are_provisioned_into_ad() {
    let Some(dc) = idsync_testkit::samba::samba_dc().await else {
        return;
    };
    let jc = FakeJumpCloud::start(&"k".repeat(40)).await.unwrap();
    let tag = idsync_testkit::samba::random_tag()[..6].to_owned();
    let mut ids = Vec::new();
    for (n, (first, dept)) in [("Ann", "Sales"), ("Bob", "Sales"), ("Cy", "IT")]
        .into_iter()
        .enumerate()
    {
        ids.push(jc.insert_user(json!({
            "username": format!("{tag}u{n}"), "email": format!("{tag}u{n}@example.org"),
            "firstname": first, "lastname": format!("Tester{n}"), "department": dept,
            "employeeIdentifier": format!("E-{tag}-{n}")
        })));
    }
    let group = jc.insert_group(&format!("{tag}sales"));
    jc.add_member(&group, &ids[0]);
    jc.add_member(&group, &ids[1]);

    let ou = dc.unique_ou("seed003").await.unwrap();
    for dept in ["Sales", "IT"] {
        dc.ldapadd(&format!("dn: OU={dept},{ou}\nobjectClass: organizationalUnit\n"))
            .await
            .unwrap();
    }
    // Cy already has an AD account (made by hand, under another name, with
    // a password): it is adopted, not duplicated.
    let existing = format!("CN={tag}cy-old,OU=IT,{ou}");
    dc.ldapadd(&format!(
        "dn: {existing}\nobjectClass: user\nsAMAccountName: {tag}cy-old\nemployeeID: E-{tag}-2\n"
    ))
    .await
    .unwrap();
    dc.set_password(&existing, "Cy-Hand-Passw0rd!").await.unwrap();
    dc.ldapmodify(&format!(
        "dn: {existing}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 512\n"
    ))
    .await
    .unwrap();

    let profile: Profile = serde_json::from_value(json!({
        "id": idsync::ProfileId::new_random(), // the DC is shared across runs
        "name": "JumpCloud to AD (seed 003)",
        "mapping": {
            "users": [
                {"field": "cn", "attribute": "username"},
                {"field": "sAMAccountName", "attribute": "username"},
                {"field": "givenName", "attribute": "firstname"},
                {"field": "sn", "attribute": "lastname"},
                {"field": "mail", "attribute": "email"},
                {"field": "department", "attribute": "department"},
                {"field": "employeeID", "attribute": "employeeIdentifier"},
                {"field": "container", "template": format!("OU={{department}},{ou}")}
            ],
            "groups": [
                {"field": "cn", "attribute": "name"},
                {"field": "sAMAccountName", "attribute": "name"},
                {"field": "container", "template": ou}
            ]
        },
        "rules": {"correlation": {"attribute": "employeeIdentifier", "field": "employeeID"}}
    }))
    .unwrap();
    let mut source_config = JumpCloudConfig::new(jc.base_url().parse().unwrap(), jc.api_key().to_owned().into());
    source_config.retry.base_ms = 10;
    let ldaps = dc.url().replace("ldap://", "ldaps://");
    let mut target_config = LdapConfig::new(&ldaps, dc.admin_upn(), dc.admin_password(), dc.base_dn(), Flavor::Ad);
    // the fake's ids repeat across runs and the DC is shared: the target looks only into this run's OU
    target_config.base_dn = ou.clone();
    target_config.initial_password = InitialPassword::Random;
    // Samba's own certificate names DC1.example.test, not 127.0.0.1: still encrypted, not verified.
    target_config.tls_verify = false;
    let engine = Engine::new(
        profile,
        Arc::new(JumpCloudSource::new(source_config).unwrap()),
        Arc::new(LdapTarget::new(target_config)),
        Arc::new(MemoryStateStore::new()),
    );

    // JumpCloud rate-limits every third request during the first run.
    jc.faults().fail_every(3, Fault::RateLimited { retry_after: Some(0) });
    let report = engine.run(&RunOptions::default()).await.unwrap();
    jc.faults().clear();
    assert!(jc.faults().faulted() > 0, "the fault knob fired");
    assert_eq!(report.failures().count(), 0, "{}", report.to_json());
    let c = report.plan.counts;
    assert_eq!(
        (c.create, c.link),
        (3, 1),
        "two users and a group created, Cy adopted: {}",
        report.plan
    );
    let users = ad_users(dc, &ou, &tag).await;
    let names: Vec<&str> = users.iter().map(|u| u.sam.as_str()).collect();
    assert_eq!(
        names,
        [format!("{tag}u0"), format!("{tag}u1"), format!("{tag}u2")],
        "Cy's account renamed, not duplicated"
    );
    assert!(
        users[0]
            .dn
            .to_lowercase()
            .ends_with(&format!("ou=sales,{ou}").to_lowercase()),
        "{users:?}"
    );
    assert!(
        users[2]
            .dn
            .to_lowercase()
            .ends_with(&format!("ou=it,{ou}").to_lowercase()),
        "{users:?}"
    );
    // Created enabled, each with a random password to change at the next
    // logon; Cy keeps the password set by hand.
    assert_enabled_with_passwords(dc, &users).await;
    assert_eq!((users[0].pwd_last_set, users[1].pwd_last_set), (0, 0), "{users:?}");
    assert_ne!(users[2].pwd_last_set, 0, "{users:?}");
    let ann = dc
        .search(
            &ou,
            &format!("(sAMAccountName={tag}u0)"),
            &["department", "employeeID", "givenName"],
        )
        .await
        .unwrap();
    assert_eq!(ann[0].first_str("department").as_deref(), Some("Sales"));
    assert_eq!(
        ann[0].first_str("employeeID").as_deref(),
        Some(format!("E-{tag}-0").as_str())
    );
    assert_eq!(ann[0].first_str("givenName").as_deref(), Some("Ann"));
    let groups = dc.search(&ou, "(objectClass=group)", &["cn", "member"]).await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].strs("member").len(), 2);

    let second = engine.run(&RunOptions::default()).await.unwrap();
    assert!(second.plan.is_empty(), "{}", second.plan);

    // HR moves Ann to IT, suspends Bob, hires Dee and takes Bob out of the group.
    hr_update(&jc, &ids[0], json!({"department": "IT"})).await;
    hr_update(&jc, &ids[1], json!({"suspended": true})).await;
    jc.insert_user(
        json!({"username": format!("{tag}u3"), "email": format!("{tag}u3@example.org"), "department": "Sales"}),
    );
    jc.remove_member(&group, &ids[1]);
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.failures().count(), 0, "{}", report.to_json());
    let c = report.plan.counts;
    assert_eq!((c.create, c.disable, c.remove_member), (1, 1, 1), "{}", report.plan);
    let users = ad_users(dc, &ou, &tag).await;
    assert!(
        users[0]
            .dn
            .to_lowercase()
            .ends_with(&format!("ou=it,{ou}").to_lowercase()),
        "Ann moved: {users:?}"
    );
    assert_eq!(users[1].uac, 512 | ACCOUNTDISABLE, "Bob disabled: {users:?}");
    assert_enabled_with_passwords(dc, &users[3..]).await; // Dee
    let groups = dc.search(&ou, "(objectClass=group)", &["cn", "member"]).await.unwrap();
    assert_eq!(groups[0].strs("member").len(), 1);
    let moved = dc
        .search(&ou, &format!("(sAMAccountName={tag}u0)"), &["department"])
        .await
        .unwrap();
    assert_eq!(moved[0].first_str("department").as_deref(), Some("IT"));

    // Bob's suspension ends: enabled again, with the password he had.
    hr_update(&jc, &ids[1], json!({"suspended": false})).await;
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.counts.enable, 1, "{}", report.plan);
    // Applied at once and with nothing to say: no outcome is listed.
    assert_eq!(report.tally.applied, 1, "{}", report.to_json());
    assert!(report.outcomes.is_empty(), "{}", report.to_json());
    assert_enabled_with_passwords(dc, &ad_users(dc, &ou, &tag).await).await;
    let last = engine.run(&RunOptions::default()).await.unwrap();
    assert!(last.plan.is_empty(), "converged: {}", last.plan);
}
