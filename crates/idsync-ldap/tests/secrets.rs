//! The bind password never shows: not in logs at TRACE of a full read over
//! StartTLS, not in the run report (JSON and Debug), the plan, the Debug of
//! the configuration, source and target, nor in the errors of a failed bind
//! (Display and Debug).
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::sync::Arc;

use idsync_core::memory::MemoryTarget;
use idsync_core::{Engine, ErrorKind, MemoryStateStore, Profile, RunOptions};
use idsync_ldap::{Flavor, LdapConfig, LdapSource, LdapTarget};
use idsync_testkit::logs::{self, assert_no_secret};
use idsync_testkit::slapd::{ADMIN_PASSWORD, Slapd, SlapdOptions, slapd};

const WRONG: &str = "wrong-bind-pw-Vb6rQ2";

fn config(s: &Slapd, password: &str) -> LdapConfig {
    let mut c = LdapConfig::new(&s.url(), &s.admin_dn(), password, s.base_dn(), Flavor::Generic);
    c.start_tls = true;
    c.ca_file = s.ca_file();
    c
}

fn engine(source: LdapSource, app: &MemoryTarget) -> Engine {
    let profile: Profile = serde_json::from_value(serde_json::json!({
        "id": "a1a1a1a1-0000-4000-8000-0000000000a5", "name": "slapd to app",
        "mapping": {"users": [{"field": "login", "attribute": "uid"}], "groups": [{"field": "name", "attribute": "cn"}]}
    }))
    .unwrap();
    Engine::new(
        profile,
        Arc::new(source),
        Arc::new(app.clone()),
        Arc::new(MemoryStateStore::new()),
    )
}

async fn tls_slapd() -> Option<Slapd> {
    slapd(SlapdOptions {
        tls: true,
        ..SlapdOptions::with_users(3, 1)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bind_password_stays_out_of_logs_reports_plans_and_debug() {
    let logs = logs::capture();
    let Some(s) = tls_slapd().await else {
        return;
    };
    let c = config(&s, ADMIN_PASSWORD);
    let source = LdapSource::new(c.clone());
    let (config_debug, source_debug) = (format!("{c:?}"), format!("{source:?}"));
    let target_debug = format!("{:?}", LdapTarget::new(c));
    let app = MemoryTarget::new();
    let report = engine(source, &app).run(&RunOptions::default()).await.unwrap();
    assert_eq!(app.accounts().len(), 4, "the read ran: {}", report.to_json());
    assert!(logs.text().contains("planned operations"), "the capture sees the run");
    assert_no_secret(
        ADMIN_PASSWORD,
        &[
            ("logs", logs.text()),
            ("report JSON", report.to_json()),
            ("report Debug", format!("{report:?}")),
            ("plan", report.plan.to_string()),
            ("plan JSON", report.plan.to_json()),
            ("config Debug", config_debug),
            ("source Debug", source_debug),
            ("target Debug", target_debug),
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_bind_is_an_auth_error_that_shows_no_password() {
    let logs = logs::capture();
    let Some(s) = tls_slapd().await else {
        return;
    };
    let connect = LdapSource::connect(config(&s, WRONG)).await.unwrap_err();
    assert_eq!(connect.kind(), ErrorKind::Auth, "{connect}");
    let target = LdapTarget::connect(config(&s, WRONG)).await.unwrap_err();
    assert_eq!(target.kind(), ErrorKind::Auth, "{target}");
    let app = MemoryTarget::new();
    let run = engine(LdapSource::new(config(&s, WRONG)), &app)
        .run(&RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(run.kind(), ErrorKind::Auth, "{run}");
    assert!(app.accounts().is_empty());
    for secret in [WRONG, ADMIN_PASSWORD] {
        assert_no_secret(
            secret,
            &[
                ("logs", logs.text()),
                ("source error Display", connect.to_string()),
                ("source error Debug", format!("{connect:?}")),
                ("target error Display", target.to_string()),
                ("target error Debug", format!("{target:?}")),
                ("run error Display", run.to_string()),
                ("run error Debug", format!("{run:?}")),
            ],
        );
    }
}
