//! Active Directory → an application's user store. The store here is the
//! in-memory `MemoryTarget`; a vendor puts their own `Target` in its place.
//! Needs a directory: by default the testkit's Samba AD DC on 127.0.0.1
//! (`IDSYNC_LDAP_URL`, `IDSYNC_LDAP_BIND`, `IDSYNC_LDAP_PASSWORD`,
//! `IDSYNC_LDAP_BASE` point it elsewhere). Run with
//! `cargo run --example ad_to_app --features ldap`.

use std::sync::Arc;

use idsync::ldap::{Flavor, LdapConfig, LdapSource};
use idsync::memory::MemoryTarget;
use idsync::{Engine, MemoryStateStore, Profile, RunOptions};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = LdapConfig::new(
        &env("IDSYNC_LDAP_URL", "ldap://127.0.0.1"),
        &env("IDSYNC_LDAP_BIND", "Administrator@EXAMPLE.TEST"),
        &env("IDSYNC_LDAP_PASSWORD", "Passw0rd!Passw0rd"),
        &env("IDSYNC_LDAP_BASE", "DC=example,DC=test"),
        Flavor::Ad,
    );
    let profile: Profile = serde_json::from_value(serde_json::json!({
        "id": "d4d4d4d4-0000-4000-8000-000000000001",
        "name": "AD to the app",
        "scope": {"kinds": ["user"]},
        "mapping": {"users": [
            {"field": "login", "attribute": "sAMAccountName", "transforms": ["lowercase"]},
            {"field": "name", "template": "{givenName} {sn}"},
            {"field": "email", "attribute": "mail"},
            {"field": "site", "attribute": "dn", "transforms": [{"dn_component": "OU"}, {"default": "HQ"}]}
        ]},
        "rules": {"correlation": {"attribute": "employeeID", "field": "employee_id"}, "duplicates": "relink"}
    }))?;
    let app = MemoryTarget::new();
    let engine = Engine::new(
        profile,
        Arc::new(LdapSource::new(config)),
        Arc::new(app.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    let report = engine.run(&RunOptions::default()).await?;
    println!("{}", report.plan);
    println!("{} accounts in the application", app.accounts().len());
    Ok(())
}
