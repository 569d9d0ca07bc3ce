//! The ldap-utils command runners and the LDIF reader that [`crate::slapd`]
//! and [`crate::samba`] share.
//!
//! Tests change a directory between sync runs and assert its state through
//! the OpenLDAP command-line tools (`ldapadd`, `ldapmodify`, `ldapdelete`,
//! `ldapsearch`), so that what they check does not depend on the LDAP
//! client under test.

use std::collections::BTreeMap;
use std::fmt;
use std::process::Stdio;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::gate::StartError;

/// A command-line tool failed (could not run, or exited non-zero).
#[derive(Debug, Clone)]
pub struct CommandError {
    /// The command line, with any password replaced by `***`.
    pub command: String,
    /// The exit code (the LDAP result code for ldap-utils), `None` when the
    /// tool could not be run or was killed by a signal.
    pub code: Option<i32>,
    /// The last lines of its standard error (and output, when the error was empty).
    pub stderr_tail: String,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "`{}` exited with {code}: {}", self.command, self.stderr_tail),
            None => write!(f, "`{}` failed: {}", self.command, self.stderr_tail),
        }
    }
}

impl std::error::Error for CommandError {}

impl From<CommandError> for StartError {
    fn from(e: CommandError) -> Self {
        StartError(e.to_string())
    }
}

/// The last `max` bytes of `bytes` as trimmed text (cut on a char boundary).
pub(crate) fn tail(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].trim().to_owned()
}

/// `program args…` for messages, with the argument after `-w` hidden.
fn show(program: &str, args: &[&str]) -> String {
    let mut out = program.to_owned();
    let mut hide = false;
    for a in args {
        out.push(' ');
        if hide {
            out.push_str("***");
        } else if a.is_empty() || a.contains(char::is_whitespace) {
            out.push_str(&format!("'{a}'"));
        } else {
            out.push_str(a);
        }
        hide = *a == "-w";
    }
    out
}

/// The output of a finished command.
#[derive(Debug)]
pub struct Output {
    /// The exit code, `None` when killed by a signal.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

/// Runs `program args…`, feeding `stdin` when given, and returns its output
/// whatever its exit code; an error only when it cannot be run at all.
pub async fn run_raw(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Output, CommandError> {
    let failed = |e: std::io::Error| CommandError {
        command: show(program, args),
        code: None,
        stderr_tail: e.to_string(),
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(failed)?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // Write while the output is read, so a large input cannot deadlock.
        let input = input.to_vec();
        let writer = tokio::spawn(async move {
            let r = pipe.write_all(&input).await;
            drop(pipe);
            r
        });
        let out = child.wait_with_output().await.map_err(failed)?;
        // A tool that stops reading early (an error) closes the pipe: its
        // exit code says what happened, so a broken pipe is not reported.
        let _ = writer.await;
        return Ok(Output {
            code: out.status.code(),
            stdout: out.stdout,
            stderr: out.stderr,
        });
    }
    let out = child.wait_with_output().await.map_err(failed)?;
    Ok(Output {
        code: out.status.code(),
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

/// Runs `program args…` and returns its standard output, or a
/// [`CommandError`] with its stderr tail when it exits non-zero.
pub async fn run(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, CommandError> {
    let out = run_raw(program, args, stdin).await?;
    if out.code == Some(0) {
        return Ok(out.stdout);
    }
    Err(error_from(program, args, &out))
}

fn error_from(program: &str, args: &[&str], out: &Output) -> CommandError {
    let mut stderr_tail = tail(&out.stderr, 1200);
    if stderr_tail.is_empty() {
        stderr_tail = tail(&out.stdout, 1200);
    }
    CommandError {
        command: show(program, args),
        code: out.code,
        stderr_tail,
    }
}

/// One entry read back from `ldapsearch`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// The DN, as the server wrote it.
    pub dn: String,
    /// Attribute name (as the server wrote it, options such as
    /// `;range=0-0` included) → values (base64 `::` values decoded).
    pub attrs: BTreeMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    /// The values of `name` (case-insensitive), empty when absent.
    pub fn get(&self, name: &str) -> &[Vec<u8>] {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }

    /// The first value of `name` as text (lossy UTF-8), if any.
    pub fn first_str(&self, name: &str) -> Option<String> {
        self.get(name).first().map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Every value of `name` as text (lossy UTF-8).
    pub fn strs(&self, name: &str) -> Vec<String> {
        self.get(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// True when `name` (case-insensitive) has at least one value.
    pub fn has(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }
}

/// Parses LDIF content records as `ldapsearch -LLL` prints them: folded
/// lines, `#` comments, `attr: value`, `attr:: base64` and `dn::`.
/// Records without a `dn` (search references, `ref:` lines) are skipped;
/// `attr:< URL` values are kept as the URL text.
pub fn parse_ldif(text: &[u8]) -> Vec<Entry> {
    let text = String::from_utf8_lossy(text);
    // Unfold: a line starting with one space continues the previous one.
    let mut lines: Vec<String> = Vec::new();
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(rest) = line.strip_prefix(' ')
            && let Some(last) = lines.last_mut()
            && !last.is_empty()
        {
            last.push_str(rest);
            continue;
        }
        lines.push(line.to_owned());
    }
    let mut entries = Vec::new();
    let mut current: Option<Entry> = None;
    for line in lines {
        if line.is_empty() {
            if let Some(e) = current.take() {
                entries.push(e);
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let value = if let Some(b64) = rest.strip_prefix(':') {
            BASE64
                .decode(b64.trim())
                .unwrap_or_else(|_| b64.trim().as_bytes().to_vec())
        } else if let Some(url) = rest.strip_prefix('<') {
            url.trim().as_bytes().to_vec()
        } else {
            rest.strip_prefix(' ').unwrap_or(rest).as_bytes().to_vec()
        };
        if name.eq_ignore_ascii_case("dn") {
            if let Some(e) = current.take() {
                entries.push(e);
            }
            current = Some(Entry {
                dn: String::from_utf8_lossy(&value).into_owned(),
                attrs: BTreeMap::new(),
            });
        } else if let Some(e) = current.as_mut() {
            e.attrs.entry(name.to_owned()).or_default().push(value);
        }
    }
    if let Some(e) = current.take() {
        entries.push(e);
    }
    entries
}

/// Appends `name: value` to an LDIF record, as `name:: base64` when the
/// value is not a safe LDIF string (non-ASCII, leading space/colon/`<`,
/// trailing space, control characters).
pub fn push_attr(out: &mut String, name: &str, value: &str) {
    let bytes = value.as_bytes();
    let unsafe_value = bytes.iter().any(|&b| b >= 0x80 || b == 0 || b == b'\n' || b == b'\r')
        || matches!(bytes.first(), Some(b' ' | b':' | b'<'))
        || bytes.last() == Some(&b' ');
    out.push_str(name);
    if unsafe_value {
        out.push_str(":: ");
        out.push_str(&BASE64.encode(bytes));
    } else {
        out.push_str(": ");
        out.push_str(value);
    }
    out.push('\n');
}

/// How to reach and bind to a directory with the ldap-utils tools
/// (simple bind, `-x`).
#[derive(Clone, Debug)]
pub struct LdapCli {
    /// The LDAP URL (`ldap://127.0.0.1:PORT`).
    pub url: String,
    /// The bind DN (or UPN for AD).
    pub bind_dn: String,
    /// The bind password.
    pub password: String,
    /// Extra environment for the tools (e.g. `LDAPTLS_CACERT`).
    pub env: Vec<(String, String)>,
}

impl LdapCli {
    fn base_args(&self) -> Vec<&str> {
        vec!["-x", "-H", &self.url, "-D", &self.bind_dn, "-w", &self.password]
    }

    async fn exec(&self, program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Output, CommandError> {
        if self.env.is_empty() {
            return run_raw(program, args, stdin).await;
        }
        // Environment goes through `env` so run_raw stays one code path.
        let pairs: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut full: Vec<&str> = pairs.iter().map(String::as_str).collect();
        full.push(program);
        full.extend_from_slice(args);
        run_raw("env", &full, stdin).await
    }

    async fn checked(&self, program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, CommandError> {
        let out = self.exec(program, args, stdin).await?;
        if out.code == Some(0) {
            Ok(out.stdout)
        } else {
            Err(error_from(program, args, &out))
        }
    }

    /// `ldapadd` of LDIF add records (stops at the first failure).
    pub async fn ldapadd(&self, ldif: &str) -> Result<(), CommandError> {
        let args = self.base_args();
        self.checked("ldapadd", &args, Some(ldif.as_bytes())).await.map(drop)
    }

    /// `ldapmodify` of LDIF change records (`changetype: modify`, `add`,
    /// `delete`, `modrdn`).
    pub async fn ldapmodify(&self, ldif: &str) -> Result<(), CommandError> {
        let args = self.base_args();
        self.checked("ldapmodify", &args, Some(ldif.as_bytes())).await.map(drop)
    }

    /// `ldapwhoami`: a simple bind with these credentials, `Ok` when it
    /// binds; the error's code is the LDAP result code and its tail the
    /// server's message.
    pub async fn whoami(&self) -> Result<(), CommandError> {
        let args = self.base_args();
        self.checked("ldapwhoami", &args, None).await.map(drop)
    }

    /// `ldapdelete` of one entry.
    pub async fn ldapdelete(&self, dn: &str) -> Result<(), CommandError> {
        let mut args = self.base_args();
        args.push(dn);
        self.checked("ldapdelete", &args, None).await.map(drop)
    }

    /// `ldapdelete -r`: an entry and everything below it.
    pub async fn ldapdelete_tree(&self, dn: &str) -> Result<(), CommandError> {
        let mut args = self.base_args();
        args.extend(["-r", dn]);
        self.checked("ldapdelete", &args, None).await.map(drop)
    }

    /// `ldapsearch` (subtree, paged by 1000, no referral chasing) of
    /// `filter` under `base`, returning `attrs` (empty = all user
    /// attributes; `+` for operational ones). A missing base (result 32)
    /// gives an empty list.
    pub async fn search(&self, base: &str, filter: &str, attrs: &[&str]) -> Result<Vec<Entry>, CommandError> {
        self.search_scoped(base, "sub", filter, attrs).await
    }

    /// Like [`LdapCli::search`] with a scope: `base`, `one` or `sub`.
    pub async fn search_scoped(
        &self,
        base: &str,
        scope: &str,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<Entry>, CommandError> {
        let mut args = self.base_args();
        args.extend([
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-E",
            "pr=1000/noprompt",
            "-b",
            base,
            "-s",
            scope,
            filter,
        ]);
        args.extend_from_slice(attrs);
        let out = self.exec("ldapsearch", &args, None).await?;
        match out.code {
            Some(0) => Ok(parse_ldif(&out.stdout)),
            Some(32) => Ok(Vec::new()),
            _ => Err(error_from("ldapsearch", &args, &out)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_folded_and_base64_values() {
        let text = b"# comment\ndn: uid=a,dc=x\ncn: A\n  B\nobjectGUID:: AAECAw==\n\ndn:: dWlkPWIsZGM9eA==\nmember;range=0-0: x\n\nref: ldap://elsewhere\n";
        let e = parse_ldif(text);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].dn, "uid=a,dc=x");
        assert_eq!(e[0].first_str("CN").unwrap(), "A B");
        assert_eq!(e[0].get("objectguid"), &[vec![0u8, 1, 2, 3]]);
        assert_eq!(e[1].dn, "uid=b,dc=x");
        assert!(e[1].has("member;range=0-0"));
    }

    #[test]
    fn unsafe_values_are_base64() {
        let mut s = String::new();
        push_attr(&mut s, "cn", "Zoë");
        push_attr(&mut s, "sn", "plain");
        assert_eq!(s, format!("cn:: {}\nsn: plain\n", BASE64.encode("Zoë".as_bytes())));
    }
}
