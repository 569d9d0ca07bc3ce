//! LDAP errors and their one classification into the core's.

use idsync_core::{Error, ErrorKind};

/// What went wrong talking to the directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LdapError {
    /// The server answered with a result code.
    #[error("LDAP rc={rc} ({text}) at {dn}")]
    Result {
        /// The LDAP result code.
        rc: u32,
        /// The server's message.
        text: String,
        /// The entry concerned.
        dn: String,
    },
    /// An entry lacks a usable id.
    #[error("{attribute} of {dn} is missing or malformed")]
    BadId {
        /// The entry.
        dn: String,
        /// The id attribute.
        attribute: String,
    },
    /// The configuration cannot work.
    #[error("{0}")]
    Config(String),
    /// Transport, TLS, timeout or protocol failure.
    #[error(transparent)]
    Client(#[from] ldap3::LdapError),
}

/// The kind and transience of an LDAP result code.
pub fn classify(rc: u32) -> (ErrorKind, bool) {
    use ErrorKind::*;
    match rc {
        3 | 51 | 52 => (Unavailable, true),
        49 => (Auth, false),
        50 => (PermissionDenied, false),
        32 => (NotFound, false),
        68 => (AlreadyExists, false),
        19 | 21 | 64 | 65 | 67 => (InvalidData, false),
        53 => (PermissionDenied, false),
        _ => (Protocol, false),
    }
}

impl LdapError {
    /// Into the core's error, naming the operation.
    pub fn into_core(self, op: &'static str) -> Error {
        let (kind, transient, object) = match &self {
            LdapError::Result { rc, dn, .. } => {
                let (k, t) = classify(*rc);
                (k, t, Some(dn.clone()))
            }
            LdapError::BadId { dn, .. } => (ErrorKind::InvalidData, false, Some(dn.clone())),
            LdapError::Config(_) => (ErrorKind::Config, false, None),
            LdapError::Client(ldap3::LdapError::LdapResult { result }) => {
                let (k, t) = classify(result.rc);
                (k, t, None)
            }
            // Retrying cannot make an untrusted certificate trusted: the
            // server failed to authenticate itself, which stops the run.
            LdapError::Client(ldap3::LdapError::NativeTLS { source }) if certificate_refused(source) => {
                (ErrorKind::Auth, false, None)
            }
            LdapError::Client(_) => (ErrorKind::Unavailable, true, None),
        };
        let text = match &self {
            LdapError::Client(ldap3::LdapError::NativeTLS { source }) if certificate_refused(source) => format!(
                "the directory's TLS certificate was refused (is ca_file its CA, and does the url name the host it was issued for?): {self}"
            ),
            _ => self.to_string(),
        };
        let mut e = Error::new(kind, text).backend(crate::NAME).op(op);
        if let Some(o) = object {
            e = e.object(o);
        }
        e = if transient { e.transient() } else { e.permanent() };
        e.source(self)
    }
}

/// True when TLS failed because the server's certificate did not verify
/// (unknown CA, wrong host name, expired). native-tls exposes no kinds, so
/// this reads OpenSSL's reason.
fn certificate_refused(e: &native_tls::Error) -> bool {
    e.to_string().contains("certificate verify failed")
}

/// `Err` unless `rc` is 0 (or one of `ok`), naming `dn`.
pub(crate) fn check(result: ldap3::LdapResult, dn: &str, ok: &[u32]) -> Result<(), LdapError> {
    if result.rc == 0 || ok.contains(&result.rc) {
        Ok(())
    } else {
        Err(LdapError::Result {
            rc: result.rc,
            text: result.text,
            dn: dn.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_codes_map_to_kinds() {
        assert_eq!(classify(49), (ErrorKind::Auth, false));
        assert_eq!(classify(52), (ErrorKind::Unavailable, true));
        assert_eq!(classify(68), (ErrorKind::AlreadyExists, false));
        assert_eq!(classify(21), (ErrorKind::InvalidData, false));
        let e = LdapError::Result {
            rc: 49,
            text: "invalid credentials".into(),
            dn: "cn=x".into(),
        }
        .into_core("bind");
        assert!(e.stops_run());
        assert_eq!(
            e.to_string(),
            "ldap bind [cn=x]: authentication failed: LDAP rc=49 (invalid credentials) at cn=x"
        );
    }
}
