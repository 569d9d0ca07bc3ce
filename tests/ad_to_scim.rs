//! End to end in the shape of seed 002: a directory (Samba AD DC) provisions
//! an application's SCIM 2.0 endpoint (scim2-server), "only assigned users
//! and groups", all members of an assigned group included. Users become the
//! app's users, groups its roles; a member leaving the assigned group is
//! deprovisioned (active = false) and leaves the role.

use std::collections::BTreeMap;
use std::sync::Arc;

use idsync::ldap::{Flavor, LdapConfig, LdapSource};
use idsync::scim::{ScimConfig, ScimTarget};
use idsync::{Engine, MemoryStateStore, Profile, RunOptions};
use idsync_testkit::scim2::Holdings;

#[tokio::test(flavor = "multi_thread")]
async fn assigned_groups_and_their_members_are_provisioned_into_the_scim_app() {
    let Some(dc) = idsync_testkit::samba::samba_dc().await else {
        return;
    };
    let Some(app) = idsync_testkit::scim2::scim2_server().await else {
        return;
    };
    let ou = dc.unique_ou("seed002").await.unwrap();
    let users = dc.add_users(&ou, 6).await.unwrap();
    for u in &users {
        dc.ldapmodify(&format!(
            "dn: {u}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 544\n"
        ))
        .await
        .unwrap();
    }
    let tag = idsync_testkit::samba::random_tag();
    let assigned = format!("app-{tag}");
    let assigned_dn = dc.add_group(&ou, &assigned, &users[..3]).await.unwrap();
    dc.add_group(&ou, &format!("other-{tag}"), &users[3..]).await.unwrap();

    let profile: Profile = serde_json::from_value(serde_json::json!({
        "id": "c3c3c3c3-0000-4000-8000-000000000002",
        "name": "AD to the SCIM app (only assigned users and groups)",
        "scope": {"containers": [ou], "groups": [assigned]},
        "mapping": {
            "users": [
                {"field": "userName", "attribute": "sAMAccountName"},
                {"field": "displayName", "attribute": "displayName"},
                {"field": "emails[type eq \"work\"].value", "attribute": "mail"}
            ],
            "groups": [{"field": "displayName", "attribute": "cn"}]
        }
    }))
    .unwrap();
    let source = LdapSource::new(LdapConfig::new(
        dc.url(),
        dc.admin_upn(),
        dc.admin_password(),
        dc.base_dn(),
        Flavor::Ad,
    ));
    let target = ScimTarget::connect(ScimConfig::new(app.base_url().parse().unwrap(), app.token()))
        .await
        .unwrap();
    let engine = Engine::new(
        profile,
        Arc::new(source),
        Arc::new(target),
        Arc::new(MemoryStateStore::new()),
    );

    // The app's state when the first `active` of the assigned group's three
    // users are active and the others inactive, the role holding the active.
    let sam = |dn: &String| {
        dn.split(',')
            .next()
            .unwrap_or_default()
            .trim_start_matches("CN=")
            .to_owned()
    };
    let expected = |active: usize| -> Holdings {
        let app_users = users[..3].iter().enumerate().map(|(i, u)| (sam(u), i < active));
        let members = users[..active].iter().map(sam).collect();
        (app_users.collect(), BTreeMap::from([(assigned.clone(), members)]))
    };

    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.failures().count(), 0, "{}", report.to_json());
    // Only the members of the assigned group, and only that group.
    assert_eq!(app.holdings().await, expected(3));

    // The third user leaves the assigned group.
    dc.ldapmodify(&format!(
        "dn: {assigned_dn}\nchangetype: modify\ndelete: member\nmember: {}\n",
        users[2]
    ))
    .await
    .unwrap();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.failures().count(), 0, "{}", report.to_json());
    let counts = report.plan.counts;
    assert_eq!((counts.disable, counts.remove_member), (1, 1), "{}", report.plan);
    // The third user is disabled (not deleted) and out of the role.
    assert_eq!(app.holdings().await, expected(2));
    assert!(
        engine.run(&RunOptions::default()).await.unwrap().plan.is_empty(),
        "converged"
    );
}
