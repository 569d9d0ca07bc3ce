//! A directory → any JSON REST API, by configuration alone (no code per
//! app). Reads a REST adapter configuration (TOML, like
//! `examples/rest/jobtraq.toml` or `examples/rest/halopsa.toml`) and syncs a
//! small in-memory directory into it.
//!
//! With `IDSYNC_REST_CONFIG=path/to/app.toml` it talks to the API that file
//! names. Without it, it starts the testkit's REST server on 127.0.0.1,
//! shaped like JobTraQ's contacts API, and points `examples/rest/jobtraq.toml`
//! at it. Run with `cargo run --example rest_app --features rest`.

use std::sync::Arc;

use idsync::memory::MemorySource;
use idsync::rest::{RestConfig, RestTarget};
use idsync::{Engine, MemoryStateStore, ObjectKind, Profile, RunOptions, SourceObject};
use idsync_testkit::rest::{Paging, RestServer, RestShape, ServerAuth};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (config, server) = match std::env::var("IDSYNC_REST_CONFIG") {
        Ok(path) => (RestConfig::from_toml(&std::fs::read_to_string(path)?)?, None),
        Err(_) => {
            let server = RestServer::start(RestShape::jobtraq(
                Paging::OffsetLimit {
                    offset_param: "offset".into(),
                    limit_param: "limit".into(),
                },
                ServerAuth::ApiKeyHeader {
                    header: "x-api-key".into(),
                    key: "change-me".into(),
                },
            ))
            .await?;
            let mut config = RestConfig::from_toml(include_str!("rest/jobtraq.toml"))?;
            config.base_url = server.base_url().parse()?;
            (config, Some(server))
        }
    };
    let person = |id: &str, given: &str, sn: &str| {
        SourceObject::new(id, ObjectKind::User)
            .with("givenName", given)
            .with("sn", sn)
            .with(
                "mail",
                format!("{}.{}@example.test", given.to_lowercase(), sn.to_lowercase()),
            )
    };
    let directory = MemorySource::with_objects([
        person("e1", "Ann", "Archer"),
        person("e2", "Bob", "Baker"),
        person("e3", "Zoë", "Zimmer"),
    ]);
    let profile: Profile = serde_json::from_value(serde_json::json!({
        "id": "0b5e3c1a-7d4f-4a8e-9c2b-1f6d8e9a0b1c",
        "name": "directory to REST app",
        "mapping": { "users": [
            { "field": "first_name", "attribute": "givenName" },
            { "field": "last_name", "attribute": "sn" },
            { "field": "email", "attribute": "mail" }
        ]}
    }))?;
    let engine = Engine::new(
        profile,
        Arc::new(directory),
        Arc::new(RestTarget::new(config)?),
        Arc::new(MemoryStateStore::new()),
    );
    let report = engine.run(&RunOptions::default()).await?;
    println!("{}", report.plan);
    println!(
        "{} operations applied, {} failed",
        report.applied(),
        report.failures().count()
    );
    if let Some(server) = server {
        for contact in server.items("/contacts") {
            println!("{contact}");
        }
    }
    Ok(())
}
