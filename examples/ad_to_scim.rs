//! Active Directory → an application's SCIM 2.0 endpoint (seed 002: the
//! app gives a tenant URL and a bearer token). Dry run: prints the plan.
//! Needs a directory and a SCIM service: by default the testkit's Samba AD
//! DC on 127.0.0.1 and `IDSYNC_SCIM_URL`/`IDSYNC_SCIM_TOKEN` (a scim2-server
//! started by hand: `target/testkit-venv/bin/scim2-server --port 8000
//! --bearer-token secret`). Run with
//! `cargo run --example ad_to_scim --features ldap,scim`.

use std::sync::Arc;

use idsync::ldap::{Flavor, LdapConfig, LdapSource};
use idsync::scim::{ScimConfig, ScimTarget};
use idsync::{Engine, MemoryStateStore, Profile, RunOptions};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ldap = LdapConfig::new(
        &env("IDSYNC_LDAP_URL", "ldap://127.0.0.1"),
        &env("IDSYNC_LDAP_BIND", "Administrator@EXAMPLE.TEST"),
        &env("IDSYNC_LDAP_PASSWORD", "Passw0rd!Passw0rd"),
        &env("IDSYNC_LDAP_BASE", "DC=example,DC=test"),
        Flavor::Ad,
    );
    let scim = ScimConfig::new(
        env("IDSYNC_SCIM_URL", "http://127.0.0.1:8000/v2").parse()?,
        env("IDSYNC_SCIM_TOKEN", "secret"),
    );
    let profile: Profile = serde_json::from_value(serde_json::json!({
        "id": "d4d4d4d4-0000-4000-8000-000000000002",
        "name": "AD to the SCIM app",
        "scope": {"groups": [env("IDSYNC_ASSIGNED_GROUP", "App Users")]},
        "mapping": {
            "users": [
                {"field": "userName", "attribute": "userPrincipalName"},
                {"field": "displayName", "attribute": "displayName"},
                {"field": "emails[type eq \"work\"].value", "attribute": "mail"}
            ],
            "groups": [{"field": "displayName", "attribute": "cn"}]
        }
    }))?;
    let target = ScimTarget::connect(scim).await?;
    let engine = Engine::new(
        profile,
        Arc::new(LdapSource::new(ldap)),
        Arc::new(target),
        Arc::new(MemoryStateStore::new()),
    );
    let report = engine
        .run(&RunOptions {
            dry_run: true,
            ..RunOptions::default()
        })
        .await?;
    println!("{}", report.plan);
    Ok(())
}
