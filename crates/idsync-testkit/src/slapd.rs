//! OpenLDAP slapd on loopback, one per test, in a temporary directory.
//!
//! Each [`Slapd`] gets its own `slapd.conf` (mdb with `dbnosync`,
//! `syncprov` with a session log so refreshOnly syncrepl reports deletes),
//! its own free port of 127.0.0.1, initial data bulk-loaded with
//! `slapadd -q`, and is killed (and waited for) on drop. Many can run at
//! once. Optionally it also serves ldaps and StartTLS with a throwaway CA
//! ([`SlapdOptions::tls`], [`Slapd::ca_file`]).
//!
//! The fixture generators ([`users_ldif`], [`groups_ldif`], [`ous_ldif`])
//! are deterministic and fast enough for 100k users.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::gate::{StartError, gate};
use crate::ldif_cli::{self, CommandError, Entry, LdapCli, push_attr};

/// The default suffix.
pub const DEFAULT_SUFFIX: &str = "dc=acme,dc=test";
/// The rootdn's password (every instance).
pub const ADMIN_PASSWORD: &str = "admin-secret";
/// The reader account's password, when [`SlapdOptions::reader`] asks for one.
pub const READER_PASSWORD: &str = "reader-secret";

/// How to start a [`Slapd`].
#[derive(Clone, Debug)]
pub struct SlapdOptions {
    /// The suffix (naming context), `dc=acme,dc=test` by default.
    pub suffix: String,
    /// Add the suffix entry, `ou=people` and `ou=groups` before [`Self::ldif`]
    /// (default true).
    pub base_entries: bool,
    /// LDIF add records loaded with `slapadd` before the server starts.
    pub ldif: String,
    /// A size limit for every bind but the rootdn (`None`: unlimited). A
    /// search by the reader (or anonymously) returning more entries comes
    /// back with result 4, sizeLimitExceeded.
    pub size_limit: Option<usize>,
    /// Add `cn=reader,<suffix>` (password [`READER_PASSWORD`]) that may read
    /// everything, and an ACL that keeps anonymous binds from reading.
    pub reader: bool,
    /// Also serve ldaps on a second port and StartTLS on the ldap port,
    /// with a server certificate for `127.0.0.1`/`localhost` signed by a
    /// throwaway CA ([`Slapd::ca_file`]).
    pub tls: bool,
    /// Serve RFC 4533 syncrepl (the syncprov overlay; default true). Without
    /// it, a generic LDAP source falls back to modifyTimestamp deltas.
    pub syncprov: bool,
    /// More overlays on the database, each as (module, its `slapd.conf`
    /// lines), e.g. `("constraint", "overlay constraint\nconstraint_attribute
    /// member uri ldap:///ou=people,dc=acme,dc=test?entryDN?sub?(objectClass=*)")`
    /// for a server that refuses some `member` values.
    pub overlays: Vec<(String, String)>,
}

impl Default for SlapdOptions {
    fn default() -> Self {
        SlapdOptions {
            suffix: DEFAULT_SUFFIX.to_owned(),
            base_entries: true,
            ldif: String::new(),
            size_limit: None,
            reader: false,
            tls: false,
            syncprov: true,
            overlays: Vec::new(),
        }
    }
}

impl SlapdOptions {
    /// Default options with `users` users under `ou=people` and `groups`
    /// groups under `ou=groups` ([`users_ldif`], [`groups_ldif`]).
    pub fn with_users(users: usize, groups: usize) -> Self {
        let mut ldif = users_ldif(DEFAULT_SUFFIX, users, &[]);
        ldif.push_str(&groups_ldif(DEFAULT_SUFFIX, groups, users, &[]));
        SlapdOptions {
            ldif,
            ..Default::default()
        }
    }
}

/// A running slapd on 127.0.0.1, killed and waited for on drop.
#[derive(Debug)]
pub struct Slapd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
    tls_port: Option<u16>,
    suffix: String,
    reader: bool,
}

/// Starts a slapd with default options for a test, or `None` (the test
/// skips) when slapd is not installed and `IDSYNC_REQUIRE_SERVERS` is not `1`.
pub async fn slapd(opts: SlapdOptions) -> Option<Slapd> {
    gate("slapd", Slapd::start(opts).await)
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The entry for the suffix itself (`dc=`, `o=` or `ou=` first RDN).
fn suffix_entry(suffix: &str) -> String {
    let first = suffix.split(',').next().unwrap_or(suffix);
    let (attr, value) = first.split_once('=').unwrap_or(("dc", first));
    let value = value.trim();
    let mut out = String::new();
    push_attr(&mut out, "dn", suffix);
    match attr.trim().to_ascii_lowercase().as_str() {
        "o" => {
            out.push_str("objectClass: top\nobjectClass: organization\n");
            push_attr(&mut out, "o", value);
        }
        "ou" => {
            out.push_str("objectClass: top\nobjectClass: organizationalUnit\n");
            push_attr(&mut out, "ou", value);
        }
        _ => {
            out.push_str("objectClass: top\nobjectClass: dcObject\nobjectClass: organization\n");
            push_attr(&mut out, "dc", value);
            push_attr(&mut out, "o", value);
        }
    }
    out.push('\n');
    out
}

async fn run_checked(program: &Path, args: &[&str]) -> Result<(), StartError> {
    let program = program.to_string_lossy();
    ldif_cli::run(&program, args, None)
        .await
        .map(drop)
        .map_err(StartError::from)
}

/// Writes a throwaway CA and a server certificate for 127.0.0.1 into `dir`.
async fn make_certs(dir: &Path) -> Result<(), StartError> {
    let openssl = find_program("openssl").ok_or_else(|| StartError("openssl is not installed".into()))?;
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let (ca_key, ca_crt, key, csr, crt, ext) = (
        p("ca.key"),
        p("ca.crt"),
        p("server.key"),
        p("server.csr"),
        p("server.crt"),
        p("server.ext"),
    );
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )?;
    #[rustfmt::skip]
    run_checked(&openssl, &[
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", &ca_key, "-out", &ca_crt, "-days", "3", "-subj", "/CN=idsync test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ]).await?;
    #[rustfmt::skip]
    run_checked(&openssl, &[
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1",
    ]).await?;
    #[rustfmt::skip]
    run_checked(&openssl, &[
        "x509", "-req", "-in", &csr, "-CA", &ca_crt, "-CAkey", &ca_key, "-CAcreateserial",
        "-out", &crt, "-days", "3", "-extfile", &ext,
    ]).await?;
    Ok(())
}

impl Slapd {
    /// Writes the configuration, loads `opts.ldif` with `slapadd -q`, starts
    /// slapd on a free port of 127.0.0.1 (retrying on a port collision) and
    /// waits until it answers a search (up to 10 s).
    pub async fn start(opts: SlapdOptions) -> Result<Slapd, StartError> {
        let started = Instant::now();
        let slapd_bin = find_program("slapd")
            .ok_or_else(|| StartError("slapd is not installed (run `bash .ci/install`)".into()))?;
        let slapadd = find_program("slapadd")
            .ok_or_else(|| StartError("slapadd is not installed (run `bash .ci/install`)".into()))?;
        if find_program("ldapsearch").is_none() {
            return Err(StartError(
                "ldap-utils (ldapsearch) is not installed (run `bash .ci/install`)".into(),
            ));
        }
        let dir = tempfile::Builder::new().prefix("idsync-slapd-").tempdir()?;
        let d = dir.path();
        std::fs::create_dir(d.join("db"))?;
        if opts.tls {
            make_certs(d).await?;
        }
        std::fs::write(d.join("slapd.conf"), config(d, &opts))?;

        let mut data = String::new();
        if opts.base_entries {
            data.push_str(&suffix_entry(&opts.suffix));
            data.push_str(&ous_ldif(&opts.suffix, &["people", "groups"]));
        }
        if opts.reader {
            let mut r = String::new();
            push_attr(&mut r, "dn", &format!("cn=reader,{}", opts.suffix));
            r.push_str("objectClass: simpleSecurityObject\nobjectClass: organizationalRole\ncn: reader\n");
            push_attr(&mut r, "userPassword", READER_PASSWORD);
            r.push('\n');
            data.push_str(&r);
        }
        data.push_str(&opts.ldif);
        if !data.trim().is_empty() {
            let ldif_path = d.join("data.ldif");
            std::fs::write(&ldif_path, &data)?;
            let conf = d.join("slapd.conf").to_string_lossy().into_owned();
            let ldif = ldif_path.to_string_lossy().into_owned();
            run_checked(&slapadd, &["-q", "-f", &conf, "-l", &ldif]).await?;
            let _ = std::fs::remove_file(&ldif_path);
        }
        let loaded = started.elapsed();

        let mut server = Slapd {
            dir,
            child: None,
            port: 0,
            tls_port: None,
            suffix: opts.suffix.clone(),
            reader: opts.reader,
        };
        let mut last = StartError("slapd not started".into());
        for _ in 0..5 {
            server.port = free_port()?;
            server.tls_port = if opts.tls { Some(free_port()?) } else { None };
            match server.spawn(&slapd_bin).await {
                Ok(()) => {
                    tracing::debug!(port = server.port, ?loaded, total = ?started.elapsed(), "slapd is up");
                    return Ok(server);
                }
                Err(e) => {
                    tracing::debug!(port = server.port, "slapd did not start, retrying on another port: {e}");
                    last = e;
                    server.kill();
                }
            }
        }
        Err(last)
    }

    fn urls(&self) -> String {
        match self.tls_port {
            Some(t) => format!("ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{t}/", self.port),
            None => format!("ldap://127.0.0.1:{}/", self.port),
        }
    }

    /// Starts the slapd process on `self.port` and waits until it answers.
    async fn spawn(&mut self, slapd_bin: &Path) -> Result<(), StartError> {
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("slapd.log"))?;
        let conf = d.join("slapd.conf");
        let child = Command::new(slapd_bin)
            .arg("-f")
            .arg(&conf)
            .args(["-h", &self.urls(), "-d", "0"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| StartError(format!("cannot run {}: {e}", slapd_bin.display())))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                // `-d 0` logs nothing: ask slaptest what is wrong with the
                // configuration, else the port was probably taken.
                let conf_path = conf.to_string_lossy();
                let why = match ldif_cli::run("slaptest", &["-u", "-f", &conf_path], None).await {
                    Ok(_) => format!("configuration is valid, so port {} was probably taken", self.port),
                    Err(e) => e.to_string(),
                };
                return Err(StartError(format!(
                    "slapd exited with {status} on port {}: {why}; log: {}",
                    self.port,
                    self.log_tail()
                )));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                match self
                    .admin_cli()
                    .search_scoped(&self.suffix, "base", "(objectClass=*)", &["1.1"])
                    .await
                {
                    Ok(_) => return Ok(()),
                    Err(e) if Instant::now() > deadline => return Err(e.into()),
                    Err(_) => {}
                }
            }
            if Instant::now() > deadline {
                return Err(StartError(format!(
                    "slapd did not answer on port {} within 10 s: {}",
                    self.port,
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log_tail(&self) -> String {
        let bytes = std::fs::read(self.dir.path().join("slapd.log")).unwrap_or_default();
        let t = ldif_cli::tail(&bytes, 800);
        if t.is_empty() { "(no output)".into() } else { t }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops slapd gracefully (SIGTERM, so syncprov writes its checkpoint;
    /// SIGKILL after 10 s). The data stay; [`Slapd::restart`] serves them
    /// again on the same port. The syncprov session log is lost, so the
    /// next syncrepl refresh with an old cookie answers in present mode.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id().to_string();
        let _ = Command::new("kill")
            .args(["-TERM", &pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() > deadline => {
                    tracing::warn!(port = self.port, "slapd ignored SIGTERM for 10 s; killing it");
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Stops slapd (if running) and starts it again on the same port with
    /// the same data, waiting until it answers.
    pub async fn restart(&mut self) -> Result<(), StartError> {
        self.stop().await;
        let slapd_bin = find_program("slapd").ok_or_else(|| StartError("slapd is not installed".into()))?;
        let mut last = StartError("slapd not restarted".into());
        // The port was ours a moment ago; retry briefly in case a client
        // connection still holds it.
        for _ in 0..5 {
            match self.spawn(&slapd_bin).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    last = e;
                    self.kill();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        Err(last)
    }

    /// Kills slapd at once (SIGKILL), as a crash would. The data stay
    /// (committed transactions survive a process crash), but the syncprov
    /// checkpoint may be older than the last change; [`Slapd::restart`]
    /// serves the data again.
    pub fn crash(&mut self) {
        self.kill();
    }

    /// True while the slapd process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// `ldap://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `ldaps://127.0.0.1:TLS_PORT` when started with [`SlapdOptions::tls`].
    pub fn ldaps_url(&self) -> Option<String> {
        self.tls_port.map(|p| format!("ldaps://127.0.0.1:{p}"))
    }

    /// The PEM file of the CA that signed the server certificate, when
    /// started with [`SlapdOptions::tls`] (StartTLS on [`Slapd::url`],
    /// ldaps on [`Slapd::ldaps_url`]; the certificate names `127.0.0.1`
    /// and `localhost`).
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.tls_port.map(|_| self.dir.path().join("ca.crt"))
    }

    /// The port of [`Slapd::url`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The suffix, e.g. `dc=acme,dc=test`.
    pub fn base_dn(&self) -> &str {
        &self.suffix
    }

    /// `ou=people,<suffix>`.
    pub fn people_dn(&self) -> String {
        format!("ou=people,{}", self.suffix)
    }

    /// `ou=groups,<suffix>`.
    pub fn groups_dn(&self) -> String {
        format!("ou=groups,{}", self.suffix)
    }

    /// The rootdn, `cn=admin,<suffix>` (no size limit, no ACL).
    pub fn admin_dn(&self) -> String {
        format!("cn=admin,{}", self.suffix)
    }

    /// The rootdn's password.
    pub fn admin_password(&self) -> &str {
        ADMIN_PASSWORD
    }

    /// `cn=reader,<suffix>` when started with [`SlapdOptions::reader`].
    pub fn reader_dn(&self) -> Option<String> {
        self.reader.then(|| format!("cn=reader,{}", self.suffix))
    }

    /// The reader's password.
    pub fn reader_password(&self) -> &str {
        READER_PASSWORD
    }

    /// The temporary directory (slapd.conf, db/, slapd.log, certificates).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The ldap-utils runner bound as the rootdn.
    pub fn admin_cli(&self) -> LdapCli {
        LdapCli {
            url: self.url(),
            bind_dn: self.admin_dn(),
            password: ADMIN_PASSWORD.to_owned(),
            env: Vec::new(),
        }
    }

    /// `ldapadd` as the rootdn.
    pub async fn ldapadd(&self, ldif: &str) -> Result<(), CommandError> {
        self.admin_cli().ldapadd(ldif).await
    }

    /// `ldapmodify` as the rootdn (LDIF change records).
    pub async fn ldapmodify(&self, ldif: &str) -> Result<(), CommandError> {
        self.admin_cli().ldapmodify(ldif).await
    }

    /// `ldapdelete` of one entry as the rootdn.
    pub async fn ldapdelete(&self, dn: &str) -> Result<(), CommandError> {
        self.admin_cli().ldapdelete(dn).await
    }

    /// `ldapsearch` (subtree, paged) as the rootdn; `attrs` empty = all
    /// user attributes, `+` = operational ones (`entryUUID`, `entryCSN`).
    pub async fn search(&self, base: &str, filter: &str, attrs: &[&str]) -> Result<Vec<Entry>, CommandError> {
        self.admin_cli().search(base, filter, attrs).await
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn config(dir: &Path, opts: &SlapdOptions) -> String {
    let d = dir.display();
    let mut c = String::new();
    for schema in ["core", "cosine", "inetorgperson", "nis"] {
        let _ = writeln!(c, "include /etc/ldap/schema/{schema}.schema");
    }
    let _ = writeln!(c, "modulepath /usr/lib/ldap");
    let _ = writeln!(c, "moduleload back_mdb");
    let _ = writeln!(c, "moduleload syncprov");
    for (module, _) in &opts.overlays {
        let _ = writeln!(c, "moduleload {module}");
    }
    let _ = writeln!(c, "pidfile {d}/slapd.pid");
    let _ = writeln!(c, "argsfile {d}/slapd.args");
    match opts.size_limit {
        Some(n) => {
            let _ = writeln!(c, "sizelimit {n}");
        }
        None => {
            let _ = writeln!(c, "sizelimit unlimited");
        }
    }
    if opts.tls {
        let _ = writeln!(c, "TLSCACertificateFile {d}/ca.crt");
        let _ = writeln!(c, "TLSCertificateFile {d}/server.crt");
        let _ = writeln!(c, "TLSCertificateKeyFile {d}/server.key");
    }
    let _ = writeln!(c, "database mdb");
    let _ = writeln!(c, "maxsize 4294967296");
    let _ = writeln!(c, "suffix \"{}\"", opts.suffix);
    let _ = writeln!(c, "rootdn \"cn=admin,{}\"", opts.suffix);
    let _ = writeln!(c, "rootpw {ADMIN_PASSWORD}");
    let _ = writeln!(c, "directory {d}/db");
    let _ = writeln!(c, "dbnosync");
    let _ = writeln!(c, "index objectClass,entryUUID,entryCSN eq");
    let _ = writeln!(c, "index uid,cn,mail,member eq");
    if let Some(n) = opts.size_limit {
        // Also on paged searches: the limit counts the whole result.
        let _ = writeln!(c, "limits users size.soft={n} size.hard={n} size.prtotal={n}");
        let _ = writeln!(c, "limits anonymous size.soft={n} size.hard={n} size.prtotal={n}");
    }
    if opts.reader {
        let _ = writeln!(
            c,
            "access to attrs=userPassword by self write by anonymous auth by * none"
        );
        let _ = writeln!(c, "access to * by users read by anonymous auth by * none");
    }
    if opts.syncprov {
        let _ = writeln!(c, "overlay syncprov");
        let _ = writeln!(c, "syncprov-checkpoint 100 10");
        let _ = writeln!(c, "syncprov-sessionlog 100000");
    }
    for (_, lines) in &opts.overlays {
        let _ = writeln!(c, "{lines}");
    }
    c
}

const GIVEN: [&str; 16] = [
    "Alice", "Bob", "Zoë", "Chloé", "José", "Łukasz", "Søren", "Ana", "Björn", "Mei", "Ravi", "Fatima", "Jürgen",
    "Noël", "Olga", "Kenji",
];
const SURNAMES: [&str; 13] = [
    "Smith",
    "Müller",
    "García",
    "Nguyen",
    "Ødegård",
    "Kowalski",
    "Dubois",
    "Tanaka",
    "O'Brien",
    "Jones",
    "Brontë",
    "Öztürk",
    "Rossi",
];
const DEPARTMENTS: [&str; 7] = [
    "Sales",
    "Engineering",
    "Support",
    "Finance",
    "Legal",
    "Marketing",
    "Operations",
];

/// The mail domain for a suffix: its `dc=` values joined with dots
/// (`dc=acme,dc=test` → `acme.test`), else `example.test`.
fn mail_domain(base: &str) -> String {
    let parts: Vec<&str> = base
        .split(',')
        .filter_map(|rdn| rdn.trim().split_once('='))
        .filter(|(a, _)| a.trim().eq_ignore_ascii_case("dc"))
        .map(|(_, v)| v.trim())
        .collect();
    if parts.is_empty() {
        "example.test".into()
    } else {
        parts.join(".")
    }
}

/// The `uid` of fixture user `i`: `u000000`, `u000001`, …
pub fn user_uid(i: usize) -> String {
    format!("u{i:06}")
}

/// The OU (RDN value) of fixture user `i`: `ous[i % ous.len()]`, or
/// `people` when `ous` is empty.
fn user_ou<'a>(i: usize, ous: &[&'a str]) -> &'a str {
    if ous.is_empty() { "people" } else { ous[i % ous.len()] }
}

/// The DN of fixture user `i`: `uid=u00000i,ou=<its OU>,<base>`.
pub fn user_dn(base: &str, i: usize, ous: &[&str]) -> String {
    format!("uid={},ou={},{base}", user_uid(i), user_ou(i, ous))
}

/// The `cn` of fixture group `g`: `g0000`, `g0001`, …
pub fn group_cn(g: usize) -> String {
    format!("g{g:04}")
}

/// The DN of fixture group `g`: `cn=g000g,ou=groups,<base>`.
pub fn group_dn(base: &str, g: usize) -> String {
    format!("cn={},ou=groups,{base}", group_cn(g))
}

/// The given name and surname of fixture user `i` (every few users has
/// non-ASCII letters, e.g. `Zoë Müller`).
pub fn user_names(i: usize) -> (&'static str, &'static str) {
    (GIVEN[i % GIVEN.len()], SURNAMES[(i / GIVEN.len()) % SURNAMES.len()])
}

/// `organizationalUnit` entries `ou=<name>,<base>` for each of `ous`.
/// (With [`SlapdOptions::base_entries`], `people` and `groups` exist already.)
pub fn ous_ldif(base: &str, ous: &[&str]) -> String {
    let mut out = String::new();
    for ou in ous {
        push_attr(&mut out, "dn", &format!("ou={ou},{base}"));
        out.push_str("objectClass: top\nobjectClass: organizationalUnit\n");
        push_attr(&mut out, "ou", ou);
        out.push('\n');
    }
    out
}

/// One fixture user (an `inetOrgPerson` add record) of [`users_ldif`].
pub fn user_ldif(base: &str, i: usize, ous: &[&str]) -> String {
    let mut out = String::with_capacity(400);
    push_user(&mut out, base, i, ous, &mail_domain(base));
    out
}

fn push_user(out: &mut String, base: &str, i: usize, ous: &[&str], domain: &str) {
    let uid = user_uid(i);
    let (given, sn) = user_names(i);
    let _ = writeln!(out, "dn: uid={uid},ou={},{base}", user_ou(i, ous));
    out.push_str(
        "objectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: inetOrgPerson\n",
    );
    let _ = writeln!(out, "uid: {uid}");
    push_attr(out, "cn", &format!("{given} {sn}"));
    push_attr(out, "sn", sn);
    push_attr(out, "givenName", given);
    push_attr(out, "displayName", &format!("{given} {sn} ({uid})"));
    let _ = writeln!(out, "mail: {uid}@{domain}");
    let _ = writeln!(out, "employeeNumber: {}", 100_000 + i);
    let _ = writeln!(out, "departmentNumber: {}", DEPARTMENTS[i % DEPARTMENTS.len()]);
    out.push('\n');
}

/// `n` deterministic `inetOrgPerson` users `uid=u000000…` spread
/// round-robin over the OUs `ous` under `base` (`ou=people` when empty):
/// `uid`, `cn`, `sn`, `givenName`, `displayName`, `mail`
/// (`uid@<dc.parts>`), `employeeNumber` (100000 + i), `departmentNumber`.
/// Non-ASCII values are base64 in the LDIF. The OUs must exist
/// ([`ous_ldif`]). 100k users take well under a second.
pub fn users_ldif(base: &str, n: usize, ous: &[&str]) -> String {
    let domain = mail_domain(base);
    let mut out = String::with_capacity(n * 420);
    for i in 0..n {
        push_user(&mut out, base, i, ous, &domain);
    }
    out
}

/// The indexes of the fixture users in group `g` of `groups`, out of
/// `users`: every user `i` with `i % groups == g` (user 0 for a group that
/// would be empty).
pub fn group_members(g: usize, groups: usize, users: usize) -> Vec<usize> {
    let mut members: Vec<usize> = (g..users).step_by(groups.max(1)).collect();
    if members.is_empty() && users > 0 {
        members.push(0);
    }
    members
}

/// `groups` deterministic `groupOfNames` groups `cn=g0000…,ou=groups,<base>`
/// whose members are the users of [`group_members`] (DNs as in
/// [`users_ldif`] with the same `ous`). With no users at all, each group
/// has the placeholder member `cn=nobody,<base>` (groupOfNames needs one).
pub fn groups_ldif(base: &str, groups: usize, users: usize, ous: &[&str]) -> String {
    let mut out = String::with_capacity(groups * 200 + users * 40);
    for g in 0..groups {
        let cn = group_cn(g);
        let _ = writeln!(out, "dn: cn={cn},ou=groups,{base}");
        out.push_str("objectClass: top\nobjectClass: groupOfNames\n");
        let _ = writeln!(out, "cn: {cn}");
        let _ = writeln!(out, "description: fixture group {g}");
        let members = group_members(g, groups, users);
        if members.is_empty() {
            let _ = writeln!(out, "member: cn=nobody,{base}");
        }
        for i in members {
            let _ = writeln!(out, "member: {}", user_dn(base, i, ous));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_are_deterministic_and_parse() {
        let a = users_ldif(DEFAULT_SUFFIX, 50, &["sales", "eng"]);
        assert_eq!(a, users_ldif(DEFAULT_SUFFIX, 50, &["sales", "eng"]));
        let entries = ldif_cli::parse_ldif(a.as_bytes());
        assert_eq!(entries.len(), 50);
        assert_eq!(entries[1].dn, "uid=u000001,ou=eng,dc=acme,dc=test");
        assert_eq!(entries[2].first_str("givenName").unwrap(), "Zoë");
        assert_eq!(entries[0].first_str("mail").unwrap(), "u000000@acme.test");
        let g = ldif_cli::parse_ldif(groups_ldif(DEFAULT_SUFFIX, 3, 10, &[]).as_bytes());
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].get("member").len(), 4);
    }
}
