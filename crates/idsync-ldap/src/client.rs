//! Connecting and binding, with TLS verified by default.

use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use secrecy::ExposeSecret;

use crate::config::LdapConfig;
use crate::error::{LdapError, check};

/// A bound connection; its driver runs on the tokio runtime.
pub(crate) async fn connect(config: &LdapConfig) -> Result<Ldap, LdapError> {
    let timeout = Duration::from_secs(config.timeout_secs.max(1));
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(timeout)
        .set_starttls(config.start_tls);
    if let Some(ca) = &config.ca_file {
        let pem = std::fs::read(ca).map_err(|e| LdapError::Config(format!("ca_file {}: {e}", ca.display())))?;
        let cert = native_tls::Certificate::from_pem(&pem)
            .map_err(|e| LdapError::Config(format!("ca_file {}: not a PEM certificate: {e}", ca.display())))?;
        let connector = native_tls::TlsConnector::builder()
            .add_root_certificate(cert)
            .build()
            .map_err(|e| LdapError::Config(format!("TLS: {e}")))?;
        settings = settings.set_connector(connector);
    }
    if !config.tls_verify {
        tracing::warn!(url = %config.url, "TLS certificate verification is OFF for this directory");
        settings = settings.set_no_tls_verify(true);
    }
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &config.url).await?;
    ldap3::drive!(conn);
    // ldap3 takes a timeout per operation: every call site sets its own, so
    // a link that goes silent fails the operation instead of hanging it.
    let result = ldap
        .with_timeout(timeout)
        .simple_bind(&config.bind_dn, config.password.expose_secret())
        .await?;
    check(result, &config.bind_dn, &[])?;
    Ok(ldap)
}
