//! Receive provisioning: a SCIM 2.0 service provider that an identity
//! provider (Entra ID, Okta, …) pushes users and groups into, with idsync's
//! rules (a DELETE disables, Do Not Disable honoured, every request in the
//! history). The application's store here is a SQLite database
//! (`scim-app.db`, tables `idsync_users`, `idsync_groups`, `idsync_members`,
//! `idsync_links`) through idsync's SQL target; a vendor puts their own
//! `Target` in its place.
//!
//! ```sh
//! IDSYNC_SCIM_TOKEN=s3cret cargo run --example scim_server --features scim-server,sql -- 8080
//! curl -H 'Authorization: Bearer s3cret' http://127.0.0.1:8080/Users
//! ```
//!
//! The port comes from the first argument, else `IDSYNC_SCIM_PORT`, else
//! 8080; the bearer token from `IDSYNC_SCIM_TOKEN` (required). Listens on
//! 127.0.0.1 only. Each request's record is logged as JSON on stdout.

use std::sync::Arc;

use idsync::Profile;
use idsync::scim_server::{ProvisioningRecord, ScimServer};
use idsync::sql::{SqlTarget, SqlTargetConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token = std::env::var("IDSYNC_SCIM_TOKEN")
        .map_err(|_| "set IDSYNC_SCIM_TOKEN to the bearer token the identity provider will send")?;
    let port: u16 = match std::env::args()
        .nth(1)
        .or_else(|| std::env::var("IDSYNC_SCIM_PORT").ok())
    {
        Some(p) => p.parse().map_err(|_| format!("bad port {p:?}"))?,
        None => 8080,
    };
    let profile: Profile = serde_json::from_value(serde_json::json!({
        "id": "5c1d0e2a-7a51-4f0e-9d4e-2b9b3a3f5e01",
        "name": "identity provider → app (SCIM)",
        "rules": {"deprovision": "disable"},
        // SCIM attributes onto the SQL target's default columns.
        "mapping": {
            "users": [
                {"field": "userName", "attribute": "userName"},
                {"field": "email", "attribute": "emails[type eq \"work\"].value"},
                {"field": "givenName", "attribute": "name.givenName"},
                {"field": "familyName", "attribute": "name.familyName"},
                {"field": "displayName", "attribute": "displayName"}
            ],
            "groups": [{"field": "name", "attribute": "displayName"}]
        }
    }))?;
    let app = SqlTarget::connect("sqlite://scim-app.db?mode=rwc", SqlTargetConfig::default()).await?;
    let server = ScimServer::new(profile, Arc::new(app), token.into()).with_sink(|r: &ProvisioningRecord| {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("SCIM service provider on http://{}", listener.local_addr()?);
    server.serve(listener).await?;
    Ok(())
}
