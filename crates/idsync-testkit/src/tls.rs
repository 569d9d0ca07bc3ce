//! A throwaway certificate authority and an HTTPS server for TLS tests.
//!
//! [`TestCa`] makes a CA (P-256, valid three days) and issues server
//! certificates for given names; [`HttpsServer`] serves an axum `Router`
//! over HTTPS on 127.0.0.1 with one of them.
//!
//! ```no_run
//! # async fn example() -> Result<(), idsync_testkit::StartError> {
//! let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
//! let server = idsync_testkit::tls::HttpsServer::start(app).await?;
//! // Trust server.ca_file() and talk to server.url().
//! # Ok(()) }
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509Name, X509NameRef};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::StartError;

fn tls_error(what: &str) -> impl Fn(ErrorStack) -> StartError + '_ {
    move |e| StartError(format!("{what}: {e}"))
}

fn new_key() -> Result<PKey<Private>, ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

fn common_name(cn: &str) -> Result<X509Name, ErrorStack> {
    let mut name = X509Name::builder()?;
    name.append_entry_by_nid(Nid::COMMONNAME, cn)?;
    Ok(name.build())
}

fn random_serial() -> Result<Asn1Integer, ErrorStack> {
    let mut serial = BigNum::new()?;
    serial.rand(120, MsbOption::MAYBE_ZERO, false)?;
    serial.to_asn1_integer()
}

/// A builder with version, serial, subject, issuer, key and three days of validity.
fn builder(subject: &X509NameRef, issuer: &X509NameRef, key: &PKey<Private>) -> Result<X509Builder, ErrorStack> {
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let serial = random_serial()?;
    b.set_serial_number(&serial)?;
    let (not_before, not_after) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(3)?);
    b.set_subject_name(subject)?;
    b.set_issuer_name(issuer)?;
    b.set_pubkey(key)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    Ok(b)
}

/// A throwaway certificate authority; its certificate is written to
/// [`TestCa::ca_file`] in a temporary directory removed on drop.
pub struct TestCa {
    cert: X509,
    key: PKey<Private>,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").field("ca_file", &self.ca_file()).finish()
    }
}

impl TestCa {
    /// A new CA named "idsync test CA".
    pub fn new() -> Result<TestCa, StartError> {
        let make = || -> Result<(X509, PKey<Private>), ErrorStack> {
            let key = new_key()?;
            let name = common_name("idsync test CA")?;
            let mut b = builder(&name, &name, &key)?;
            b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
            b.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build()?)?;
            let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
            b.append_extension(ski)?;
            b.sign(&key, MessageDigest::sha256())?;
            Ok((b.build(), key))
        };
        let (cert, key) = make().map_err(tls_error("cannot make a test CA"))?;
        TestCa::with(cert, key)
    }

    /// A CA from existing PEM files (e.g. the one a test slapd made), to
    /// issue other certificates under it.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<TestCa, StartError> {
        let cert = X509::from_pem(&std::fs::read(cert_file)?).map_err(tls_error("bad CA certificate"))?;
        let key = PKey::private_key_from_pem(&std::fs::read(key_file)?).map_err(tls_error("bad CA key"))?;
        TestCa::with(cert, key)
    }

    fn with(cert: X509, key: PKey<Private>) -> Result<TestCa, StartError> {
        let dir = tempfile::Builder::new().prefix("idsync-ca-").tempdir()?;
        let pem = cert.to_pem().map_err(tls_error("cannot encode the CA"))?;
        std::fs::write(dir.path().join("ca.crt"), pem)?;
        Ok(TestCa { cert, key, dir })
    }

    /// The CA certificate (PEM), to configure as trusted.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// A server certificate for `names` (IP addresses and DNS names, in the
    /// subjectAltName; the first is also the common name).
    pub fn issue(&self, names: &[&str]) -> Result<ServerCert, StartError> {
        let make = || -> Result<ServerCert, ErrorStack> {
            let key = new_key()?;
            let subject = common_name(names.first().copied().unwrap_or("localhost"))?;
            let mut b = builder(&subject, self.cert.subject_name(), &key)?;
            b.append_extension(BasicConstraints::new().critical().build()?)?;
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .key_encipherment()
                    .build()?,
            )?;
            b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
            let mut san = SubjectAlternativeName::new();
            for name in names {
                if name.parse::<IpAddr>().is_ok() {
                    san.ip(name);
                } else {
                    san.dns(name);
                }
            }
            let san = san.build(&b.x509v3_context(Some(&self.cert), None))?;
            b.append_extension(san)?;
            let aki = AuthorityKeyIdentifier::new()
                .keyid(false)
                .build(&b.x509v3_context(Some(&self.cert), None))?;
            b.append_extension(aki)?;
            b.sign(&self.key, MessageDigest::sha256())?;
            Ok(ServerCert {
                cert_pem: b.build().to_pem()?,
                key_pem: key.private_key_to_pem_pkcs8()?,
            })
        };
        make().map_err(tls_error("cannot issue a server certificate"))
    }
}

/// A server certificate and its private key, both PEM.
#[derive(Clone)]
pub struct ServerCert {
    /// The certificate.
    pub cert_pem: Vec<u8>,
    /// The PKCS#8 private key.
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerCert { .. }")
    }
}

impl ServerCert {
    /// Writes the certificate and the key to these files.
    pub fn write(&self, cert_file: &Path, key_file: &Path) -> std::io::Result<()> {
        std::fs::write(cert_file, &self.cert_pem)?;
        std::fs::write(key_file, &self.key_pem)
    }
}

/// Accepts TCP connections and completes the TLS handshake; a failed
/// handshake (a client that refuses the certificate) is skipped.
struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_native_tls::TlsAcceptor,
    connections: Arc<AtomicU64>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_native_tls::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (tcp, addr) = match self.tcp.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::debug!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            self.connections.fetch_add(1, Ordering::SeqCst);
            match tokio::time::timeout(Duration::from_secs(10), self.acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => return (tls, addr),
                Ok(Err(e)) => tracing::debug!(%addr, "TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// An axum `Router` served over HTTPS on a free port of 127.0.0.1, with a
/// certificate from its own [`TestCa`]; stopped on drop.
#[derive(Debug)]
pub struct HttpsServer {
    addr: SocketAddr,
    ca: TestCa,
    connections: Arc<AtomicU64>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl HttpsServer {
    /// Serves `app` with a certificate for `127.0.0.1` and `localhost`.
    pub async fn start(app: axum::Router) -> Result<HttpsServer, StartError> {
        HttpsServer::start_for(app, &["127.0.0.1", "localhost"]).await
    }

    /// Serves `app` with a certificate for `names` only (another name
    /// makes clients refuse it).
    pub async fn start_for(app: axum::Router, names: &[&str]) -> Result<HttpsServer, StartError> {
        let ca = TestCa::new()?;
        let cert = ca.issue(names)?;
        let identity = native_tls::Identity::from_pkcs8(&cert.cert_pem, &cert.key_pem)
            .map_err(|e| StartError(format!("bad server identity: {e}")))?;
        let acceptor = native_tls::TlsAcceptor::new(identity)
            .map_err(|e| StartError(format!("cannot build a TLS acceptor: {e}")))?;
        let tcp = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = tcp.local_addr()?;
        let connections = Arc::new(AtomicU64::new(0));
        let listener = TlsListener {
            tcp,
            acceptor: acceptor.into(),
            connections: connections.clone(),
        };
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!("HTTPS test server stopped: {e}");
            }
        });
        Ok(HttpsServer {
            addr,
            ca,
            connections,
            shutdown: Some(tx),
            task,
        })
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA certificate (PEM) that issued the server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.ca.ca_file()
    }

    /// TCP connections accepted so far, whether or not their TLS handshake
    /// succeeded (a client that refuses the certificate counts too).
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
    }
}
