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
    /// The directory refused to add or remove one member of a group.
    #[error("LDAP rc={rc} ({text}) {doing} member {member} of {group}")]
    Member {
        /// The LDAP result code.
        rc: u32,
        /// The server's message.
        text: String,
        /// `adding` or `removing`.
        doing: &'static str,
        /// The member's DN.
        member: String,
        /// The group's DN.
        group: String,
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

/// The kind and transience of an ldap3 client error. Only a lost or silent
/// connection is worth retrying; a filter, URL or scheme that does not
/// parse is a configuration error (it stops the run), and a value that
/// does not decode concerns one record.
pub(crate) fn classify_client(e: &ldap3::LdapError) -> (ErrorKind, bool) {
    use ErrorKind::*;
    use ldap3::LdapError as L;
    match e {
        L::LdapResult { result } => classify(result.rc),
        // The connection failed or went silent. OpSend, ResultRecv,
        // IdScrubSend and MiscSend mean the connection's driver has ended,
        // which it does when the socket fails or closes.
        L::Io { .. }
        | L::Timeout { .. }
        | L::EndOfStream
        | L::OpSend { .. }
        | L::ResultRecv { .. }
        | L::IdScrubSend { .. }
        | L::MiscSend { .. } => (Unavailable, true),
        // Retrying cannot make an untrusted certificate trusted: the server
        // failed to authenticate itself, which stops the run.
        L::NativeTLS { source } if certificate_refused(source) => (Auth, false),
        L::NativeTLS { source } if io_inside(source) => (Unavailable, true),
        L::NativeTLS { .. } => (Protocol, false),
        L::FilterParsing
        | L::UrlParsing { .. }
        | L::UnknownScheme(_)
        | L::EmptyUnixPath
        | L::PortInUnixPath
        | L::InvalidScopeString(_)
        | L::UnrecognizedCriticalExtension(_)
        | L::MismatchedStreamType => (Config, false),
        L::DecodingUTF8 | L::AddNoValues => (InvalidData, false),
        L::AdapterInit(_) => (Internal, false),
        // Variants of ldap3 features idsync does not enable (GSSAPI, NTLM,
        // rustls), should another crate turn them on.
        #[allow(
            unreachable_patterns,
            reason = "reachable only when another crate enables those ldap3 features: expect would fail either way"
        )]
        _ => (Protocol, false),
    }
}

impl LdapError {
    /// Into the core's error, naming the operation.
    pub fn into_core(self, op: &'static str) -> Error {
        self.to_core(op).with_source(self)
    }

    /// The core's error for this one, without it as the source: for an
    /// error that fails several operations at once (a batched look-up, a
    /// modify of many members).
    pub(crate) fn to_core(&self, op: &'static str) -> Error {
        let (kind, transient, object) = match self {
            LdapError::Result { rc, dn, .. } => {
                let (k, t) = classify(*rc);
                (k, t, Some(dn.clone()))
            }
            LdapError::Member { rc, member, .. } => {
                let (k, t) = classify(*rc);
                (k, t, Some(member.clone()))
            }
            LdapError::BadId { dn, .. } => (ErrorKind::InvalidData, false, Some(dn.clone())),
            LdapError::Config(_) => (ErrorKind::Config, false, None),
            LdapError::Client(e) => {
                let (k, t) = classify_client(e);
                (k, t, None)
            }
        };
        let text = match self {
            LdapError::Client(ldap3::LdapError::NativeTLS { source }) if certificate_refused(source) => format!(
                "the directory's TLS certificate was refused (is ca_file its CA, and does the url name the host it was issued for?): {self}"
            ),
            _ => self.to_string(),
        };
        let mut e = Error::new(kind, text).with_backend(crate::NAME).with_op(op);
        if let Some(o) = object {
            e = e.with_object(o);
        }
        if transient { e.transient() } else { e.permanent() }
    }
}

/// True when an I/O error lies under a TLS error (the connection failed
/// during the handshake).
fn io_inside(e: &native_tls::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(cause) = next {
        if cause.is::<std::io::Error>() {
            return true;
        }
        next = cause.source();
    }
    false
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

    /// An ldap3 error as the client meets it: `(conn, ldap)` to a listener
    /// on 127.0.0.1 that accepts, reads the first request and closes.
    async fn closed_connection() -> (ldap3::LdapConnAsync, ldap3::Ldap) {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ldap://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 64];
            let _ = socket.read(&mut buf).await;
        });
        ldap3::LdapConnAsync::new(&url).await.unwrap()
    }

    /// Every ldap3 client error idsync can meet, with the kind it becomes,
    /// whether it is retried and whether it stops the run.
    #[tokio::test]
    async fn client_errors_map_to_kinds_and_only_a_lost_connection_is_retried() {
        use ErrorKind::*;
        use ldap3::LdapError as L;

        // The connection's driver gone before a request (OpSend) and while
        // one waits for its answer (ResultRecv).
        let (conn, mut ldap) = closed_connection().await;
        drop(conn);
        let op_send = ldap.simple_bind("cn=x", "").await.unwrap_err();
        assert!(matches!(op_send, L::OpSend { .. }), "{op_send:?}");
        let (conn, mut ldap) = closed_connection().await;
        tokio::spawn(async move { conn.drive().await });
        let result_recv = ldap.simple_bind("cn=x", "").await.unwrap_err();
        assert!(matches!(result_recv, L::ResultRecv { .. }), "{result_recv:?}");
        let elapsed = tokio::time::timeout(std::time::Duration::ZERO, std::future::pending::<()>())
            .await
            .unwrap_err();
        let Err(not_pem) = native_tls::Certificate::from_pem(b"not a certificate") else {
            panic!("junk read as a certificate")
        };
        let filter = ldap
            .search("dc=x", ldap3::Scope::Base, "(uid=x", vec!["1.1"])
            .await
            .unwrap_err();
        assert!(matches!(filter, L::FilterParsing), "{filter:?}");
        let refused = |url: &'static str| async move {
            match ldap3::LdapConnAsync::new(url).await {
                Ok(_) => panic!("{url} connected"),
                Err(e) => e,
            }
        };
        let url = refused("ldap://127.0.0.1:notaport").await;
        assert!(matches!(url, L::UrlParsing { .. }), "{url:?}");
        let scheme = refused("ldapx://127.0.0.1").await;
        assert!(matches!(scheme, L::UnknownScheme(_)), "{scheme:?}");
        let result = |rc| L::LdapResult {
            result: ldap3::LdapResult {
                rc,
                matched: String::new(),
                text: String::new(),
                refs: vec![],
                ctrls: vec![],
            },
        };
        #[rustfmt::skip]
        let table: Vec<(L, ErrorKind, bool)> = vec![
            (L::Io { source: std::io::Error::from(std::io::ErrorKind::ConnectionReset) }, Unavailable, true),
            (L::Timeout { elapsed }, Unavailable, true),
            (L::EndOfStream, Unavailable, true),
            (op_send, Unavailable, true),
            (result_recv, Unavailable, true),
            (L::IdScrubSend { source: tokio::sync::mpsc::error::SendError(7) }, Unavailable, true),
            (filter, Config, false),
            (url, Config, false),
            (scheme, Config, false),
            (L::EmptyUnixPath, Config, false),
            (L::PortInUnixPath, Config, false),
            (L::InvalidScopeString("subtre".into()), Config, false),
            (L::UnrecognizedCriticalExtension("x-y".into()), Config, false),
            (L::MismatchedStreamType, Config, false),
            (L::DecodingUTF8, InvalidData, false),
            (L::AddNoValues, InvalidData, false),
            (L::AdapterInit("found Paged Results control in op set".into()), Internal, false),
            (L::NativeTLS { source: not_pem }, Protocol, false),
            (result(49), Auth, false),
            (result(52), Unavailable, true),
            (result(19), InvalidData, false),
        ];
        for (e, kind, transient) in table {
            let what = format!("{e:?}");
            assert_eq!(classify_client(&e), (kind, transient), "{what}");
            let core = LdapError::Client(e).into_core("read_full");
            assert_eq!(core.kind(), kind, "{what}");
            assert_eq!(core.is_transient(), transient, "{what}");
            assert_eq!(core.stops_run(), matches!(kind, Config | Auth), "{what}");
        }
    }
}
