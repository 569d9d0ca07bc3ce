//! Builds the source and target a profile file names.

use std::sync::Arc;

use idsync::{Result, Source, Target};

use crate::config::{Config, SourceConfig, TargetConfig};

/// The source, connected.
pub(crate) async fn source(config: &Config) -> Result<Arc<dyn Source>> {
    Ok(match &config.source {
        SourceConfig::Ldif(c) => Arc::new(idsync::file::LdifSource::new(c.clone())),
        SourceConfig::Csv(c) => Arc::new(idsync::file::CsvSource::new(c.clone())),
        SourceConfig::Scim(c) => Arc::new(idsync::scim::ScimSource::connect((**c).clone()).await?),
        SourceConfig::Ldap(c) => Arc::new(idsync::ldap::LdapSource::connect((**c).clone()).await?),
        SourceConfig::Jumpcloud(c) => Arc::new(idsync::jumpcloud::JumpCloudSource::new((**c).clone())?),
        SourceConfig::Rest(c) => Arc::new(idsync::rest::RestSource::new((**c).clone())?),
    })
}

/// The target, connected.
pub(crate) async fn target(config: &Config) -> Result<Arc<dyn Target>> {
    Ok(match &config.target {
        TargetConfig::Scim(c) => Arc::new(idsync::scim::ScimTarget::connect((**c).clone()).await?),
        TargetConfig::Ldap(c) => Arc::new(idsync::ldap::LdapTarget::connect((**c).clone()).await?),
        TargetConfig::Sql(c) => {
            let mut tables = c.tables.clone();
            tables.batch = c.batch.unwrap_or(tables.batch);
            Arc::new(idsync::sql::SqlTarget::connect(c.url.expose(), tables).await?)
        }
        TargetConfig::Jumpcloud(c) => Arc::new(idsync::jumpcloud::JumpCloudTarget::new((**c).clone())?),
        TargetConfig::Rest(c) => Arc::new(idsync::rest::RestTarget::new((**c).clone())?),
    })
}
