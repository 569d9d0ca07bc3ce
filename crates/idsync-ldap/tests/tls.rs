//! TLS to the directory, over `ldaps://` and over `ldap://` with StartTLS,
//! against a slapd that serves a certificate from a throwaway CA: refused
//! without that CA, read in full with it, a bad `ca_file` is a
//! configuration error, and a certificate for another name is refused.
#![expect(clippy::expect_used, reason = "test code: a failure fails the test")]

use futures::StreamExt;
use idsync_core::{Error, ErrorKind, ObjectKind, ReadItem, Scope, Source};
use idsync_ldap::{Flavor, LdapConfig, LdapSource};
use idsync_testkit::slapd::{Slapd, SlapdOptions, slapd, user_uid};
use idsync_testkit::tls::TestCa;

const USERS: usize = 3;

async fn tls_slapd() -> Option<Slapd> {
    slapd(SlapdOptions {
        tls: true,
        ..SlapdOptions::with_users(USERS, 0)
    })
    .await
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Ldaps,
    StartTls,
}

const MODES: [Mode; 2] = [Mode::Ldaps, Mode::StartTls];

/// The default configuration (verification on, no CA file) for `mode`.
fn config(s: &Slapd, mode: Mode) -> LdapConfig {
    let url = match mode {
        Mode::Ldaps => s.ldaps_url().expect("started with tls"),
        Mode::StartTls => s.url(),
    };
    let mut c = LdapConfig::new(&url, &s.admin_dn(), s.admin_password(), s.base_dn(), Flavor::Generic);
    c.start_tls = matches!(mode, Mode::StartTls);
    c
}

fn with_ca(s: &Slapd, mode: Mode) -> LdapConfig {
    let mut c = config(s, mode);
    c.ca_file = s.ca_file();
    c
}

/// The uids of the users a full read returns, sorted.
async fn read_uids(c: LdapConfig) -> Result<Vec<String>, Error> {
    let source = LdapSource::new(c);
    let mut stream = source.read_full(&Scope::default()).await?;
    let mut uids = Vec::new();
    while let Some(item) = stream.next().await {
        if let ReadItem::Object(o) = item?
            && o.kind == ObjectKind::User
        {
            uids.push(o.first_text("uid").unwrap_or_default().to_owned());
        }
    }
    uids.sort();
    Ok(uids)
}

fn expected_uids() -> Vec<String> {
    let mut uids: Vec<String> = (0..USERS).map(user_uid).collect();
    uids.sort();
    uids
}

/// An untrusted or mismatched certificate: the server failed to
/// authenticate itself, which stops the run (retrying cannot help), and the
/// message says it is about TLS and the certificate.
fn assert_certificate_refused(e: &Error, mode: Mode) {
    assert_eq!(e.kind(), ErrorKind::Auth, "{mode:?}: {e}");
    assert!(e.stops_run() && !e.is_transient(), "{mode:?}: {e}");
    let text = e.to_string();
    assert!(text.contains("TLS"), "{mode:?}: {text}");
    assert!(text.contains("certificate verify failed"), "{mode:?}: {text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_ca_is_refused_by_default() {
    let Some(s) = tls_slapd().await else {
        return;
    };
    for mode in MODES {
        let e = read_uids(config(&s, mode)).await.unwrap_err();
        assert_certificate_refused(&e, mode);
        let e = LdapSource::connect(config(&s, mode)).await.unwrap_err();
        assert_certificate_refused(&e, mode);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_ca_file_the_read_returns_every_user() {
    let Some(s) = tls_slapd().await else {
        return;
    };
    for mode in MODES {
        assert_eq!(read_uids(with_ca(&s, mode)).await.unwrap(), expected_uids(), "{mode:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verification_off_reads_without_the_ca() {
    let Some(s) = tls_slapd().await else {
        return;
    };
    let logs = idsync_testkit::logs::capture();
    for mode in MODES {
        let mut c = config(&s, mode);
        c.tls_verify = false;
        assert_eq!(read_uids(c).await.unwrap(), expected_uids(), "{mode:?}");
    }
    let warned = logs
        .text()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("TLS certificate verification is OFF"))
        .count();
    assert!(warned >= 2, "one warning per connection:\n{}", logs.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_non_pem_ca_file_is_a_config_error_naming_the_field() {
    let Some(s) = tls_slapd().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").unwrap();
    for mode in MODES {
        for path in [&missing, &not_pem] {
            let mut c = config(&s, mode);
            c.ca_file = Some(path.clone());
            let e = read_uids(c).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{mode:?}: {e}");
            assert!(e.stops_run(), "{e}");
            let text = e.to_string();
            assert!(text.contains("ca_file"), "{mode:?}: {text}");
            assert!(text.contains(&path.display().to_string()), "{mode:?}: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_for_another_host_name_is_refused() {
    let Some(mut s) = tls_slapd().await else {
        return;
    };
    // Same CA, but the server certificate now names another host.
    let ca = TestCa::load(&s.dir().join("ca.crt"), &s.dir().join("ca.key")).unwrap();
    ca.issue(&["ldap.elsewhere.invalid"])
        .unwrap()
        .write(&s.dir().join("server.crt"), &s.dir().join("server.key"))
        .unwrap();
    s.restart().await.unwrap();
    for mode in MODES {
        let e = read_uids(with_ca(&s, mode)).await.unwrap_err();
        assert_certificate_refused(&e, mode);
        assert!(e.to_string().contains("address mismatch"), "{mode:?}: {e}");
    }
}
