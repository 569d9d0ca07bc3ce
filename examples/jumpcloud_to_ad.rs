//! JumpCloud → Active Directory (seed 003): JumpCloud is the HR-driven
//! source; AD users are created, updated, disabled and put into groups from
//! it. Set `IDSYNC_JUMPCLOUD_URL` (e.g. the testkit's fake on 127.0.0.1) and
//! `IDSYNC_JUMPCLOUD_API_KEY`; the directory defaults to the testkit's Samba
//! AD DC (`IDSYNC_LDAP_URL`, `IDSYNC_LDAP_BIND`, `IDSYNC_LDAP_PASSWORD`,
//! `IDSYNC_LDAP_BASE`, `IDSYNC_LDAP_OU` point it elsewhere). It plans only
//! (dry run) unless `IDSYNC_APPLY=1`. Run with
//! `cargo run --example jumpcloud_to_ad --features jumpcloud,ldap`.
//!
//! idsync never enables an AD account without a password: new accounts
//! stay disabled until someone sets one, unless the directory is reached
//! over TLS (an `ldaps://` `IDSYNC_LDAP_URL`), where each new account gets a
//! random password that must be changed at the next logon.

use std::sync::Arc;

use idsync::jumpcloud::{JumpCloudConfig, JumpCloudSource};
use idsync::ldap::{Flavor, InitialPassword, LdapConfig, LdapTarget};
use idsync::{Engine, MemoryStateStore, Profile, RunOptions};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("IDSYNC_JUMPCLOUD_URL").map_err(|_| "set IDSYNC_JUMPCLOUD_URL")?;
    let key = std::env::var("IDSYNC_JUMPCLOUD_API_KEY").map_err(|_| "set IDSYNC_JUMPCLOUD_API_KEY")?;
    let source = JumpCloudSource::new(JumpCloudConfig::new(url.parse()?, key.into()))?;
    let base = env("IDSYNC_LDAP_BASE", "DC=example,DC=test");
    let mut ad = LdapConfig::new(
        &env("IDSYNC_LDAP_URL", "ldap://127.0.0.1"),
        &env("IDSYNC_LDAP_BIND", "Administrator@EXAMPLE.TEST"),
        &env("IDSYNC_LDAP_PASSWORD", "Passw0rd!Passw0rd"),
        &base,
        Flavor::Ad,
    );
    ad.default_container = Some(env("IDSYNC_LDAP_OU", &format!("CN=Users,{base}")));
    if ad.url.starts_with("ldaps://") {
        ad.initial_password = InitialPassword::Random;
    }
    let profile: Profile = serde_json::from_value(serde_json::json!({
        "id": "d4d4d4d4-0000-4000-8000-000000000003",
        "name": "JumpCloud to AD",
        "mapping": {
            "users": [
                {"field": "cn", "attribute": "username"},
                {"field": "sAMAccountName", "attribute": "username"},
                {"field": "givenName", "attribute": "firstname"},
                {"field": "sn", "attribute": "lastname"},
                {"field": "mail", "attribute": "email"},
                {"field": "department", "attribute": "department"},
                {"field": "title", "attribute": "jobTitle"},
                {"field": "employeeID", "attribute": "employeeIdentifier"}
            ],
            "groups": [{"field": "cn", "attribute": "name"}, {"field": "sAMAccountName", "attribute": "name"}]
        },
        "rules": {"correlation": {"attribute": "employeeIdentifier", "field": "employeeID"}}
    }))?;
    let engine = Engine::new(
        profile,
        Arc::new(source),
        Arc::new(LdapTarget::new(ad)),
        Arc::new(MemoryStateStore::new()),
    );
    let dry_run = std::env::var("IDSYNC_APPLY").as_deref() != Ok("1");
    let report = engine
        .run(&RunOptions {
            dry_run,
            ..RunOptions::default()
        })
        .await?;
    println!("{}", report.plan);
    Ok(())
}
