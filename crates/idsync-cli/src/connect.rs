//! Builds the source, target and state store a profile file names.

use std::sync::Arc;

use idsync_core::{JsonFileStateStore, Result, Source, StateStore, Target};

use crate::config::{Config, SourceConfig, StateConfig, TargetConfig};

/// The source, connected.
pub async fn source(config: &Config) -> Result<Arc<dyn Source>> {
    Ok(match &config.source {
        SourceConfig::Ldif(c) => Arc::new(idsync_file::LdifSource::new(c.clone())),
        SourceConfig::Csv(c) => Arc::new(idsync_file::CsvSource::new(c.clone())),
        SourceConfig::Scim(c) => Arc::new(idsync_scim::ScimSource::connect((**c).clone()).await?),
        SourceConfig::Ldap(c) => Arc::new(idsync_ldap::LdapSource::connect((**c).clone()).await?),
    })
}

/// The target, connected.
pub async fn target(config: &Config) -> Result<Arc<dyn Target>> {
    Ok(match &config.target {
        TargetConfig::Scim(c) => Arc::new(idsync_scim::ScimTarget::connect((**c).clone()).await?),
        TargetConfig::Ldap(c) => Arc::new(idsync_ldap::LdapTarget::connect((**c).clone()).await?),
    })
}

/// The state store.
pub fn state(config: &Config) -> Result<Arc<dyn StateStore>> {
    Ok(match &config.state {
        StateConfig::Json { path } => Arc::new(JsonFileStateStore::new(path)?),
    })
}
