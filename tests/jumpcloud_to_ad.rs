//! End to end in the shape of seed 003: JumpCloud as the HR-driven source
//! (the fake JumpCloud) provisions Active Directory (Samba AD DC): users are
//! created in an OU from JumpCloud's fields, groups with their members, an
//! HR change reaches AD, a member removed in JumpCloud leaves the AD group.

use std::sync::Arc;

use idsync::jumpcloud::{JumpCloudConfig, JumpCloudSource};
use idsync::ldap::{Flavor, LdapConfig, LdapTarget};
use idsync::{Engine, MemoryStateStore, Profile, RunOptions};
use idsync_testkit::jumpcloud::FakeJumpCloud;
use serde_json::json;

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
    let profile: Profile = serde_json::from_value(json!({
        "id": "d4d4d4d4-0000-4000-8000-000000000003",
        "name": "JumpCloud to AD (seed 003)",
        "mapping": {
            "users": [
                {"field": "cn", "attribute": "username"},
                {"field": "sAMAccountName", "attribute": "username"},
                {"field": "givenName", "attribute": "firstname"},
                {"field": "sn", "attribute": "lastname"},
                {"field": "mail", "attribute": "email"},
                {"field": "department", "attribute": "department"},
                {"field": "employeeID", "attribute": "employeeIdentifier"}
            ],
            "groups": [{"field": "cn", "attribute": "name"}, {"field": "sAMAccountName", "attribute": "name"}]
        }
    }))
    .unwrap();
    let mut source_config = JumpCloudConfig::new(jc.base_url().parse().unwrap(), jc.api_key().to_owned().into());
    source_config.retry.base_ms = 10;
    let mut target_config = LdapConfig::new(dc.url(), dc.admin_upn(), dc.admin_password(), dc.base_dn(), Flavor::Ad);
    target_config.default_container = Some(ou.clone());
    // the fake's ids repeat across runs and the DC is shared: the target looks only into this run's OU
    target_config.base_dn = ou.clone();
    let mut profile = profile;
    profile.id = idsync::ProfileId::new_random(); // the DC is shared across runs
    let engine = Engine::new(
        profile,
        Arc::new(JumpCloudSource::new(source_config).unwrap()),
        Arc::new(LdapTarget::new(target_config)),
        Arc::new(MemoryStateStore::new()),
    );

    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.failures().count(), 0, "{}", report.to_json());
    let users = dc
        .search(
            &ou,
            "(objectClass=user)",
            &["sAMAccountName", "department", "employeeID"],
        )
        .await
        .unwrap();
    let users: Vec<_> = users
        .iter()
        .filter(|u| u.first_str("sAMAccountName").is_some_and(|s| s.starts_with(&tag)))
        .collect();
    assert_eq!(users.len(), 3, "tag {tag}: {}", report.to_json());
    let ann = users
        .iter()
        .find(|u| u.first_str("sAMAccountName").as_deref() == Some(&format!("{tag}u0")))
        .unwrap();
    assert_eq!(ann.first_str("department").as_deref(), Some("Sales"));
    assert_eq!(
        ann.first_str("employeeID").as_deref(),
        Some(format!("E-{tag}-0").as_str())
    );
    let groups = dc.search(&ou, "(objectClass=group)", &["cn", "member"]).await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].strs("member").len(), 2);

    // HR moves Ann to IT and takes Bob out of the group.
    let put = reqwest::Client::new()
        .put(format!("{}/api/systemusers/{}", jc.base_url(), ids[0]))
        .header("x-api-key", jc.api_key())
        .json(&json!({"department": "IT"}))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    jc.insert_user(json!({"username": format!("{tag}new"), "email": format!("{tag}new@example.org")}));
    jc.remove_member(&group, &ids[1]);
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.failures().count(), 0, "{}", report.to_json());
    assert_eq!(report.plan.counts.remove_member, 1, "{}", report.plan);
    assert_eq!(report.plan.counts.create, 1, "{}", report.plan);
    let groups = dc.search(&ou, "(objectClass=group)", &["cn", "member"]).await.unwrap();
    assert_eq!(groups[0].strs("member").len(), 1);
    let moved = dc
        .search(&ou, &format!("(sAMAccountName={tag}u0)"), &["department"])
        .await
        .unwrap();
    assert_eq!(moved[0].first_str("department").as_deref(), Some("IT"));
    // AD creates accounts disabled (idsync never sets passwords): the run
    // after a create enables the new account, the one after plans nothing.
    let third = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(third.plan.counts.enable, third.plan.operations.len(), "{}", third.plan);
    let last = engine.run(&RunOptions::default()).await.unwrap();
    assert!(last.plan.is_empty(), "converged: {}", last.plan);
}
