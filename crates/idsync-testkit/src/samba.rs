//! Samba AD DC on loopback, shared by every test on the machine.
//!
//! Samba's ports are fixed (389, 636, 88), so there is one DC per address:
//! [`samba()`] returns a process-wide instance, and that instance is shared
//! across processes too, because test binaries run at the same time:
//!
//! - State lives in `$TMPDIR/idsync-samba-<uid>/` (`/tmp/idsync-samba-0` for
//!   root): `lock` (held with an exclusive `flock` while a process checks or
//!   starts the DC), `template/` (a provisioned DC, kept to skip the 4–7 s
//!   provisioning next time), `dc/` (the running DC: `etc/smb.conf`,
//!   `samba.log`, `stdout.log`) and `samba.pid`.
//! - Under the lock, a process first asks `ldap://127.0.0.1` for the naming
//!   context with the Administrator's credentials; if it answers, that DC is
//!   reused (whoever started it). Otherwise it kills a stale DC recorded in
//!   `samba.pid` (only one running from this state dir), copies the
//!   template into a fresh `dc/` (provisioning the template first when there
//!   is none), starts `samba` in its own process group and waits until LDAP
//!   answers (up to 60 s).
//! - The DC is **left running** when the tests end, so the next test
//!   process (or the next `cargo test`) reuses it in milliseconds; nothing
//!   kills it except [`stop_shared_dc`] (e.g. `kill $(cat
//!   /tmp/idsync-samba-0/samba.pid)` from a script) or the end of the
//!   machine session. Tests share it through unique OUs ([`SambaDc::unique_ou`]),
//!   so a reused DC holds earlier runs' OUs, which no test looks at.
//! - `IDSYNC_SAMBA_URL` (with `IDSYNC_SAMBA_PASSWORD`, default
//!   [`ADMIN_PASSWORD`]) names a DC started elsewhere (realm `EXAMPLE.TEST`);
//!   then nothing is started.
//!
//! The DC is provisioned with `--use-rfc2307`, no DNS, `server services =
//! ldap, cldap, kdc, rpc` and `ldap server require strong auth = no` (simple
//! binds without TLS, for tests only).

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::sync::OnceCell;

use crate::gate::{StartError, gate};
use crate::ldif_cli::{self, CommandError, Entry, LdapCli, push_attr};

/// The Administrator's password of a DC this module provisions.
pub const ADMIN_PASSWORD: &str = "Passw0rd!Passw0rd";
/// The realm.
pub const REALM: &str = "EXAMPLE.TEST";
/// The NetBIOS domain.
pub const DOMAIN: &str = "EXAMPLE";
/// The naming context.
pub const BASE_DN: &str = "DC=example,DC=test";
/// The Administrator's UPN, usable as a simple-bind name.
pub const ADMIN_UPN: &str = "Administrator@EXAMPLE.TEST";
/// The Administrator's DN.
pub const ADMIN_DN: &str = "CN=Administrator,CN=Users,DC=example,DC=test";

/// The shared Samba AD DC (see the module docs). Never stopped by this
/// process.
#[derive(Debug, Clone)]
pub struct SambaDc {
    url: String,
    password: String,
    dir: Option<PathBuf>,
    pid: Option<u32>,
}

static DC: OnceCell<Result<SambaDc, String>> = OnceCell::const_new();

/// The shared DC, started (or found running) on first use. An error is
/// remembered, so every later call in this process fails at once with it.
pub async fn samba() -> Result<&'static SambaDc, StartError> {
    DC.get_or_init(|| async { SambaDc::start_shared().await.map_err(|e| e.0) })
        .await
        .as_ref()
        .map_err(|e| StartError(e.clone()))
}

/// The shared DC for a test, or `None` (the test skips) when Samba is not
/// installed and `IDSYNC_REQUIRE_SERVERS` is not `1`.
pub async fn samba_dc() -> Option<&'static SambaDc> {
    gate("samba AD DC", samba().await)
}

/// The machine-wide state directory, `$TMPDIR/idsync-samba-<uid>`.
pub fn state_dir() -> PathBuf {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().next().map(str::to_owned))
        })
        .unwrap_or_else(|| "unknown".into());
    std::env::temp_dir().join(format!("idsync-samba-{uid}"))
}

/// Stops the DC recorded in [`state_dir`]`/samba.pid` (if it is one this
/// module started), for a script that wants the machine clean. Returns
/// whether one was stopped. Other processes still using it will fail.
pub fn stop_shared_dc() -> bool {
    let state = state_dir();
    let Ok(lock) = lock_state(&state) else {
        return false;
    };
    let stopped = kill_recorded(&state);
    drop(lock);
    stopped
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn lock_state(state: &Path) -> std::io::Result<std::fs::File> {
    std::fs::create_dir_all(state)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state.join("lock"))?;
    file.lock()?;
    Ok(file)
}

/// True when process `pid` exists and is not a zombie.
fn running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit_once(')').and_then(|(_, r)| r.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// True when `pid` runs (not a zombie), is a samba process, and is the one
/// that wrote `<dc>/run/samba.pid` (samba rewrites its command line, so the
/// pid file it keeps in our `pid directory` ties it to `dc`).
fn alive(pid: u32, dc: &Path) -> bool {
    if !running(pid) {
        return false;
    }
    let is_samba = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("samba"))
        .unwrap_or(false);
    let own =
        std::fs::read_to_string(dc.join("run/samba.pid")).is_ok_and(|p| p.trim().parse::<u32>().ok() == Some(pid));
    is_samba && own
}

fn recorded_pid(state: &Path) -> Option<u32> {
    std::fs::read_to_string(state.join("samba.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Kills the DC recorded in `samba.pid` if it runs from `state`; waits up
/// to 10 s for it to go.
fn kill_recorded(state: &Path) -> bool {
    let dc = state.join("dc");
    let Some(pid) = recorded_pid(state).filter(|&p| alive(p, &dc)) else {
        return false;
    };
    for signal in ["-TERM", "-KILL"] {
        let _ = Command::new("kill")
            .args([signal, &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while running(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if !running(pid) {
            break;
        }
    }
    let _ = std::fs::remove_file(state.join("samba.pid"));
    true
}

fn admin_cli(url: &str, password: &str) -> LdapCli {
    LdapCli {
        url: url.to_owned(),
        bind_dn: ADMIN_UPN.to_owned(),
        password: password.to_owned(),
        env: Vec::new(),
    }
}

/// Does a DC answer at `url` for our naming context and credentials?
async fn answers(url: &str, password: &str) -> Result<(), CommandError> {
    let cli = admin_cli(url, password);
    let probe = cli.search_scoped(BASE_DN, "base", "(objectClass=*)", &["1.1"]);
    match tokio::time::timeout(Duration::from_secs(10), probe).await {
        Ok(Ok(entries)) if !entries.is_empty() => Ok(()),
        Ok(Ok(_)) => Err(CommandError {
            command: format!("ldapsearch -H {url} -b {BASE_DN} -s base"),
            code: Some(32),
            stderr_tail: "the naming context is missing".into(),
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(CommandError {
            command: format!("ldapsearch -H {url} -b {BASE_DN} -s base"),
            code: None,
            stderr_tail: "no answer within 10 s".into(),
        }),
    }
}

fn log_tail(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let t = ldif_cli::tail(&bytes, 1500);
    if t.is_empty() { "(no output)".into() } else { t }
}

/// `[global]` edits on a provisioned smb.conf: the services tests need,
/// simple binds without TLS, and private pid/log/ncalrpc folders.
fn edit_smb_conf(conf: &str, dc: &Path) -> String {
    let d = dc.display();
    let mut out = String::with_capacity(conf.len() + 400);
    for line in conf.lines() {
        let key = line.trim().split('=').next().unwrap_or("").trim().to_ascii_lowercase();
        if key == "server services" {
            out.push_str("\tserver services = ldap, cldap, kdc, rpc\n");
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.trim().eq_ignore_ascii_case("[global]") {
            let _ = writeln!(out, "\tldap server require strong auth = no");
            let _ = writeln!(out, "\tpid directory = {d}/run");
            let _ = writeln!(out, "\tlog file = {d}/samba.log");
            let _ = writeln!(out, "\tncalrpc dir = {d}/ncalrpc");
        }
    }
    out
}

/// Provisions a DC into `target` (which must not exist).
async fn provision(target: &Path) -> Result<(), StartError> {
    let tool = find_program("samba-tool")
        .ok_or_else(|| StartError("samba-tool is not installed (run `bash .ci/install`)".into()))?;
    let parent = target.parent().unwrap_or(target);
    let empty = parent.join("empty-smb.conf");
    std::fs::write(&empty, "")?;
    let started = Instant::now();
    let s = empty.to_string_lossy().into_owned();
    let t = format!("--targetdir={}", target.display());
    let adminpass = format!("--adminpass={ADMIN_PASSWORD}");
    let realm = format!("--realm={REALM}");
    let domain = format!("--domain={DOMAIN}");
    #[rustfmt::skip]
    let args = [
        "domain", "provision", "-s", &s, &realm, &domain, "--server-role=dc",
        "--dns-backend=NONE", "--use-rfc2307", &adminpass, &t, "--host-name=dc1",
        "--host-ip=127.0.0.1", "--option=interfaces = lo", "--option=bind interfaces only = yes",
    ];
    let out = ldif_cli::run_raw(&tool.to_string_lossy(), &args, None).await?;
    if out.code != Some(0) {
        let mut tail = ldif_cli::tail(&out.stderr, 1500);
        if tail.is_empty() {
            tail = ldif_cli::tail(&out.stdout, 1500);
        }
        // The password is in the command line: name the command without it.
        return Err(StartError(format!(
            "`samba-tool domain provision --targetdir={}` exited with {:?}: {tail}",
            target.display(),
            out.code
        )));
    }
    tracing::info!(elapsed = ?started.elapsed(), "provisioned a Samba AD DC template");
    Ok(())
}

impl SambaDc {
    async fn start_shared() -> Result<SambaDc, StartError> {
        if let Ok(url) = std::env::var("IDSYNC_SAMBA_URL") {
            let password = std::env::var("IDSYNC_SAMBA_PASSWORD").unwrap_or_else(|_| ADMIN_PASSWORD.into());
            answers(&url, &password)
                .await
                .map_err(|e| StartError(format!("IDSYNC_SAMBA_URL={url} does not answer: {e}")))?;
            return Ok(SambaDc {
                url,
                password,
                dir: None,
                pid: None,
            });
        }
        let samba_bin = find_program("samba")
            .ok_or_else(|| StartError("samba (samba-ad-dc) is not installed (run `bash .ci/install`)".into()))?;
        if find_program("ldapsearch").is_none() {
            return Err(StartError(
                "ldap-utils (ldapsearch) is not installed (run `bash .ci/install`)".into(),
            ));
        }
        let state = state_dir();
        let lock = {
            let dir = state.clone();
            tokio::task::spawn_blocking(move || lock_state(&dir))
                .await
                .map_err(|e| StartError(format!("cannot lock {}: {e}", state.display())))??
        };
        let result = Self::start_locked(&state, &samba_bin).await;
        drop(lock);
        result
    }

    async fn start_locked(state: &Path, samba_bin: &Path) -> Result<SambaDc, StartError> {
        let url = "ldap://127.0.0.1".to_owned();
        let dc = state.join("dc");
        let started = Instant::now();
        if answers(&url, ADMIN_PASSWORD).await.is_ok() {
            let pid = recorded_pid(state).filter(|&p| alive(p, &dc));
            tracing::debug!(?pid, "reusing the Samba AD DC that answers on 127.0.0.1");
            return Ok(SambaDc {
                url,
                password: ADMIN_PASSWORD.into(),
                dir: pid.map(|_| dc),
                pid,
            });
        }
        kill_recorded(state);

        let template = state.join("template");
        if !template.join(".complete").exists() {
            if template.exists() {
                std::fs::remove_dir_all(&template)?;
            }
            provision(&template).await?;
            std::fs::write(template.join(".complete"), "")?;
        }
        if dc.exists() {
            std::fs::remove_dir_all(&dc)?;
        }
        let (t, d) = (template.to_string_lossy(), dc.to_string_lossy());
        ldif_cli::run("cp", &["-a", &t, &d], None).await?;
        let conf_path = dc.join("etc/smb.conf");
        let conf = std::fs::read_to_string(&conf_path)?.replace(t.as_ref(), d.as_ref());
        std::fs::write(&conf_path, edit_smb_conf(&conf, &dc))?;
        std::fs::create_dir_all(dc.join("run"))?;
        std::fs::create_dir_all(dc.join("ncalrpc"))?;

        let log_path = dc.join("stdout.log");
        let log = std::fs::File::create(&log_path)?;
        let mut child = Command::new(samba_bin)
            .args(["-F", "-M", "single", "--debug-stdout", "-s"])
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a Ctrl-C to the tests does not stop
            // the DC other test processes use.
            .process_group(0)
            .spawn()
            .map_err(|e| StartError(format!("cannot run {}: {e}", samba_bin.display())))?;
        let pid = child.id();
        let mut f = std::fs::File::create(state.join("samba.pid"))?;
        writeln!(f, "{pid}")?;
        drop(f);

        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let _ = std::fs::remove_file(state.join("samba.pid"));
                return Err(StartError(format!(
                    "samba exited with {status} (is port 389 or 88 taken on 127.0.0.1 or [::1]?): {}",
                    log_tail(&log_path)
                )));
            }
            match answers(&url, ADMIN_PASSWORD).await {
                Ok(()) => break,
                Err(e) if Instant::now() > deadline => {
                    return Err(StartError(format!(
                        "samba did not answer LDAP within 60 s ({e}): {}",
                        log_tail(&log_path)
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
        tracing::info!(pid, elapsed = ?started.elapsed(), "started the shared Samba AD DC");
        // Dropping a std Child neither kills nor waits: the DC outlives us.
        drop(child);
        Ok(SambaDc {
            url,
            password: ADMIN_PASSWORD.into(),
            dir: Some(dc),
            pid: Some(pid),
        })
    }

    /// `ldap://127.0.0.1` (port 389).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The naming context, `DC=example,DC=test`.
    pub fn base_dn(&self) -> &str {
        BASE_DN
    }

    /// `CN=Administrator,CN=Users,DC=example,DC=test`.
    pub fn admin_dn(&self) -> &str {
        ADMIN_DN
    }

    /// `Administrator@EXAMPLE.TEST` (a simple bind accepts it as the name).
    pub fn admin_upn(&self) -> &str {
        ADMIN_UPN
    }

    /// The Administrator's password.
    pub fn admin_password(&self) -> &str {
        &self.password
    }

    /// The realm, `EXAMPLE.TEST`.
    pub fn realm(&self) -> &str {
        REALM
    }

    /// The DC's folder (smb.conf, samba.log) when this module started it.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The PEM CA of the certificate samba generated for ldaps on
    /// `ldaps://127.0.0.1` (port 636), when this module started the DC. The
    /// certificate names `DC1.example.test` only (no subjectAltName), so a
    /// client connecting to 127.0.0.1 must not check the host name.
    pub fn ca_file(&self) -> Option<PathBuf> {
        let ca = self.dir.as_ref()?.join("private/tls/ca.pem");
        ca.is_file().then_some(ca)
    }

    /// The samba process id when known.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The ldap-utils runner bound as the Administrator.
    pub fn admin_cli(&self) -> LdapCli {
        admin_cli(&self.url, &self.password)
    }

    /// `ldapadd` as the Administrator.
    pub async fn ldapadd(&self, ldif: &str) -> Result<(), CommandError> {
        self.admin_cli().ldapadd(ldif).await
    }

    /// `ldapmodify` as the Administrator (LDIF change records).
    pub async fn ldapmodify(&self, ldif: &str) -> Result<(), CommandError> {
        self.admin_cli().ldapmodify(ldif).await
    }

    /// Sets `password` (as `unicodePwd`) on the account `dn`, as the
    /// Administrator. This DC takes it over plain LDAP; Windows AD wants TLS.
    pub async fn set_password(&self, dn: &str, password: &str) -> Result<(), CommandError> {
        let utf16: Vec<u8> = format!("\"{password}\"")
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let mut ldif = String::new();
        push_attr(&mut ldif, "dn", dn);
        ldif.push_str("changetype: modify\nreplace: unicodePwd\n");
        let _ = writeln!(ldif, "unicodePwd:: {}", BASE64.encode(&utf16));
        self.ldapmodify(&ldif).await
    }

    /// A simple bind as `dn` with `password` (plain LDAP, `ldapwhoami`):
    /// `Ok` when it binds. On failure the code is 49 and the tail says why,
    /// as AD does: `data 52e` a wrong password, `data 773` the right one
    /// that must be changed first, `data 533` a disabled account.
    pub async fn simple_bind(&self, dn: &str, password: &str) -> Result<(), CommandError> {
        let cli = LdapCli {
            url: self.url.clone(),
            bind_dn: dn.to_owned(),
            password: password.to_owned(),
            env: Vec::new(),
        };
        cli.whoami().await
    }

    /// Adds an enabled user `CN=<sam>,CN=Users` with a password (samba-tool
    /// on the DC's own database), for tests that bind as an unprivileged
    /// account, and returns its user principal name. `None` when this
    /// module did not start the DC (`IDSYNC_SAMBA_URL`).
    pub async fn add_user_with_password(&self, sam: &str, password: &str) -> Result<Option<String>, CommandError> {
        let Some(dir) = self.dir.as_deref() else {
            return Ok(None);
        };
        let (db, conf) = (dir.join("private/sam.ldb"), dir.join("etc/smb.conf"));
        let (db, conf) = (db.to_string_lossy(), conf.to_string_lossy());
        let tool = find_program("samba-tool").unwrap_or_else(|| "samba-tool".into());
        let args = ["user", "create", sam, password, "-H", &db, "-s", &conf];
        let out = ldif_cli::run_raw(&tool.to_string_lossy(), &args, None).await?;
        if out.code != Some(0) {
            return Err(CommandError {
                command: format!("samba-tool user create {sam} *** -H {db}"),
                code: out.code,
                stderr_tail: ldif_cli::tail(&out.stderr, 1500),
            });
        }
        Ok(Some(format!("{sam}@{REALM}")))
    }

    /// `ldapdelete` of one entry as the Administrator.
    pub async fn ldapdelete(&self, dn: &str) -> Result<(), CommandError> {
        self.admin_cli().ldapdelete(dn).await
    }

    /// `ldapdelete -r`: an entry (e.g. a test's OU) and everything below it.
    pub async fn delete_tree(&self, dn: &str) -> Result<(), CommandError> {
        self.admin_cli().ldapdelete_tree(dn).await
    }

    /// `ldapsearch` (subtree, paged) as the Administrator; `attrs` empty =
    /// all user attributes. Binary values (`objectGUID`, `objectSid`) come
    /// back decoded from base64. A missing base gives an empty list.
    pub async fn search(&self, base: &str, filter: &str, attrs: &[&str]) -> Result<Vec<Entry>, CommandError> {
        self.admin_cli().search(base, filter, attrs).await
    }

    /// One entry by DN (base search), if it exists.
    pub async fn entry(&self, dn: &str, attrs: &[&str]) -> Result<Option<Entry>, CommandError> {
        let found = self
            .admin_cli()
            .search_scoped(dn, "base", "(objectClass=*)", attrs)
            .await?;
        Ok(found.into_iter().next())
    }

    /// Creates `OU=<prefix>-<8 random hex>,DC=example,DC=test` and returns
    /// its DN, so tests sharing the DC do not collide.
    pub async fn unique_ou(&self, prefix: &str) -> Result<String, CommandError> {
        let name = format!("{prefix}-{}", random_tag());
        let dn = format!("OU={name},{BASE_DN}");
        let mut ldif = String::new();
        push_attr(&mut ldif, "dn", &dn);
        ldif.push_str("objectClass: top\nobjectClass: organizationalUnit\n");
        push_attr(&mut ldif, "ou", &name);
        self.ldapadd(&ldif).await?;
        Ok(dn)
    }

    /// Adds `n` users ([`ad_users_ldif`] with a fresh random tag) to `ou_dn`
    /// with one `ldapadd`, and returns their DNs. No password is set, so
    /// each gets `userAccountControl: 546` (disabled, password not
    /// required). AD adds run at 60–210 users/s: keep `n` to a few thousand.
    pub async fn add_users(&self, ou_dn: &str, n: usize) -> Result<Vec<String>, CommandError> {
        let tag = random_tag();
        self.ldapadd(&ad_users_ldif(ou_dn, &tag, n)).await?;
        Ok((0..n).map(|i| format!("CN={},{ou_dn}", ad_sam(&tag, i))).collect())
    }

    /// Adds a global security group `CN=<name>,<ou_dn>` (`sAMAccountName` =
    /// `name`, at most 20 characters, unique in the domain) with `members`
    /// (DNs), and returns its DN.
    pub async fn add_group(&self, ou_dn: &str, name: &str, members: &[String]) -> Result<String, CommandError> {
        let dn = format!("CN={name},{ou_dn}");
        let mut ldif = String::new();
        push_attr(&mut ldif, "dn", &dn);
        ldif.push_str("objectClass: top\nobjectClass: group\n");
        push_attr(&mut ldif, "sAMAccountName", name);
        push_attr(&mut ldif, "description", &format!("test group {name}"));
        for m in members {
            push_attr(&mut ldif, "member", m);
        }
        self.ldapadd(&ldif).await?;
        Ok(dn)
    }
}

/// 8 random lowercase hex digits.
pub fn random_tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// The `sAMAccountName` (and CN) of AD fixture user `i` with `tag`:
/// `u<tag>-0000`, … (14 characters for an 8-character tag; AD allows 20).
pub fn ad_sam(tag: &str, i: usize) -> String {
    format!("u{tag}-{i:04}")
}

/// `n` AD users `CN=<sam>,<ou_dn>` (objectClass `user`, no password):
/// `sAMAccountName` ([`ad_sam`]), `userPrincipalName` and `mail`
/// (`<sam>@example.test`), `givenName`/`sn`/`displayName` (non-ASCII in
/// some, as [`crate::slapd::user_names`]), `employeeID`, `department`.
pub fn ad_users_ldif(ou_dn: &str, tag: &str, n: usize) -> String {
    const DEPARTMENTS: [&str; 4] = ["Sales", "Engineering", "Support", "Finance"];
    let mut out = String::with_capacity(n * 400);
    for i in 0..n {
        let sam = ad_sam(tag, i);
        let (given, sn) = crate::slapd::user_names(i);
        push_attr(&mut out, "dn", &format!("CN={sam},{ou_dn}"));
        out.push_str("objectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: user\n");
        push_attr(&mut out, "sAMAccountName", &sam);
        push_attr(&mut out, "userPrincipalName", &format!("{sam}@example.test"));
        push_attr(&mut out, "mail", &format!("{sam}@example.test"));
        push_attr(&mut out, "givenName", given);
        push_attr(&mut out, "sn", sn);
        push_attr(&mut out, "displayName", &format!("{given} {sn}"));
        let _ = writeln!(out, "employeeID: {}", 200_000 + i);
        let _ = writeln!(out, "department: {}", DEPARTMENTS[i % DEPARTMENTS.len()]);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smb_conf_edits_replace_services_and_add_folders() {
        let conf = "[global]\n\tserver services = s3fs, rpc, nbt\n\trealm = EXAMPLE.TEST\n[sysvol]\n";
        let out = edit_smb_conf(conf, Path::new("/x/dc"));
        assert!(out.contains("server services = ldap, cldap, kdc, rpc\n"));
        assert!(!out.contains("s3fs"));
        assert!(out.contains("ldap server require strong auth = no"));
        assert!(out.contains("ncalrpc dir = /x/dc/ncalrpc"));
        assert!(out.find("[sysvol]") > out.find("pid directory"));
    }
}
