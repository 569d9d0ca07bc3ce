//! No REST credential ever shows: bearer token, Basic password, API key in
//! a header or in the query, OAuth2 client secret. For each auth style a
//! push and a read run against the testkit REST server, then a wrong
//! credential is refused; the secret must be absent from logs at TRACE,
//! run reports (JSON and Debug), plans, errors (Display and Debug) and the
//! Debug of the configuration, source and target.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

mod common;

use std::sync::Arc;

use idsync_core::memory::{MemorySource, MemoryTarget};
use idsync_core::{Engine, ErrorKind, MemoryStateStore, ObjectKind, Profile, RunOptions, RunReport, SourceObject};
use idsync_http::ClientAuthMethod;
use idsync_rest::{AuthConfig, RestConfig, RestSource, RestTarget};
use idsync_testkit::logs::{self, assert_no_secret};
use idsync_testkit::rest::{RestServer, ServerAuth, basic};

/// One auth style: what the server demands, and the adapter's auth with a
/// given secret.
struct Style {
    name: &'static str,
    secret: &'static str,
    server: fn(&str) -> ServerAuth,
    client: fn(&RestServer, &str) -> AuthConfig,
    /// Texts derived from the secret that must not show either (Basic's header).
    derived: fn(&str) -> Vec<String>,
}

fn none(_: &str) -> Vec<String> {
    Vec::new()
}

const STYLES: [Style; 5] = [
    Style {
        name: "bearer",
        secret: "rest-bearer-Hx4kP9mQ",
        server: |s| ServerAuth::Bearer(s.into()),
        client: |_, s| AuthConfig::Bearer { token: s.into() },
        derived: none,
    },
    Style {
        name: "basic",
        secret: "rest-basic-pw-Jn3vT8",
        server: |s| ServerAuth::Basic {
            username: "svc".into(),
            password: s.into(),
        },
        client: |_, s| AuthConfig::Basic {
            username: "svc".into(),
            password: s.into(),
        },
        derived: |s| vec![basic("svc", s)],
    },
    Style {
        name: "api key header",
        secret: "rest-hdr-key-Wq7zL2",
        server: |s| ServerAuth::ApiKeyHeader {
            header: "x-api-key".into(),
            key: s.into(),
        },
        client: |_, s| AuthConfig::ApiKey {
            header: "x-api-key".into(),
            key: s.into(),
        },
        derived: none,
    },
    Style {
        name: "api key query",
        secret: "rest-query-key-Rb5yN6",
        server: |s| ServerAuth::ApiKeyQuery {
            param: "api_key".into(),
            key: s.into(),
        },
        client: |_, s| AuthConfig::ApiKeyQuery {
            param: "api_key".into(),
            key: s.into(),
        },
        derived: none,
    },
    Style {
        name: "oauth2 client credentials",
        secret: "rest-oauth-secret-Cd8uF1",
        server: |s| ServerAuth::OAuth2 {
            client_id: "idsync".into(),
            client_secret: s.into(),
        },
        client: |server, s| AuthConfig::Oauth2ClientCredentials {
            token_url: server.token_url().parse().unwrap(),
            client_id: "idsync".into(),
            client_secret: s.into(),
            scope: None,
            client_auth: ClientAuthMethod::Basic,
        },
        derived: |s| vec![basic("idsync", s)],
    },
];

async fn server(style: &Style) -> RestServer {
    let mut shape = common::generic_shape();
    shape.auth = (style.server)(style.secret);
    RestServer::start(shape).await.unwrap()
}

fn config(style: &Style, server: &RestServer, secret: &str) -> RestConfig {
    let mut c = common::generic(server);
    c.http.auth = (style.client)(server, secret);
    c
}

fn profile(id: &str) -> Profile {
    serde_json::from_value(serde_json::json!({
        "id": id, "name": "rest",
        "mapping": {"users": [{"field": "login", "attribute": "login"}, {"field": "email", "attribute": "email"},
                              {"field": "name", "attribute": "name"}]}
    }))
    .unwrap()
}

/// A directory → the REST app.
async fn push(target: RestTarget) -> idsync_core::Result<RunReport> {
    let directory = MemorySource::with_objects([SourceObject::new("guid-1", ObjectKind::User)
        .with("login", "ann")
        .with("email", "ann@example.org")
        .with("name", "Ann Lee")]);
    Engine::new(
        profile("88888888-8888-4888-8888-888888888881"),
        Arc::new(directory),
        Arc::new(target),
        Arc::new(MemoryStateStore::new()),
    )
    .run(&RunOptions::default())
    .await
}

/// The REST app → another app.
async fn read_into(source: RestSource, app: &MemoryTarget) -> idsync_core::Result<RunReport> {
    Engine::new(
        profile("88888888-8888-4888-8888-888888888882"),
        Arc::new(source),
        Arc::new(app.clone()),
        Arc::new(MemoryStateStore::new()),
    )
    .run(&RunOptions::default())
    .await
}

fn secrets(style: &Style, secret: &str) -> Vec<String> {
    let mut all = vec![secret.to_owned()];
    all.extend((style.derived)(secret));
    all
}

#[tokio::test]
async fn no_credential_shows_in_logs_reports_plans_or_debug() {
    let logs = logs::capture();
    for style in &STYLES {
        let server = server(style).await;
        let c = config(style, &server, style.secret);
        let target = RestTarget::new(c.clone()).unwrap();
        let source = RestSource::new(c.clone()).unwrap();
        let debugs = [
            ("config Debug", format!("{c:?}")),
            ("target Debug", format!("{target:?}")),
            ("source Debug", format!("{source:?}")),
        ];
        let pushed = push(target).await.unwrap();
        assert_eq!(pushed.failures().count(), 0, "{}: {}", style.name, pushed.to_json());
        let app = MemoryTarget::new();
        let read = read_into(source, &app).await.unwrap();
        assert_eq!(app.accounts().len(), 1, "{}: {}", style.name, read.to_json());

        let mut channels = vec![("logs", logs.text())];
        channels.extend(debugs);
        for report in [&pushed, &read] {
            channels.extend([
                ("report JSON", report.to_json()),
                ("report Debug", format!("{report:?}")),
                ("plan", report.plan.to_string()),
            ]);
        }
        for secret in secrets(style, style.secret) {
            assert_no_secret(&secret, &channels);
        }
    }
    assert!(logs.text().contains("http request"), "requests are traced");
}

#[tokio::test]
async fn a_refused_credential_is_an_auth_error_that_shows_no_secret() {
    let logs = logs::capture();
    for style in &STYLES {
        let server = server(style).await;
        let wrong = format!("{}-wrong", style.secret);
        let c = config(style, &server, &wrong);
        let pushed = push(RestTarget::new(c.clone()).unwrap()).await.unwrap_err();
        assert_eq!(pushed.kind(), ErrorKind::Auth, "{}: {pushed}", style.name);
        let app = MemoryTarget::new();
        let read = read_into(RestSource::new(c).unwrap(), &app).await.unwrap_err();
        assert_eq!(read.kind(), ErrorKind::Auth, "{}: {read}", style.name);
        assert!(app.accounts().is_empty());
        for secret in secrets(style, style.secret).into_iter().chain(secrets(style, &wrong)) {
            assert_no_secret(
                &secret,
                &[
                    ("logs", logs.text()),
                    ("push error Display", pushed.to_string()),
                    ("push error Debug", format!("{pushed:?}")),
                    ("read error Display", read.to_string()),
                    ("read error Debug", format!("{read:?}")),
                ],
            );
        }
    }
}
