//! HTTPS against an axum server on 127.0.0.1 with a certificate from a
//! throwaway CA: refused by default (and never retried), accepted with
//! `tls.ca_file`, accepted with `tls.verify = false` after a warning, and
//! refused for a certificate that names another host; an OAuth2 token
//! endpoint behind an unknown CA gets no request, so never the secret.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use idsync_core::ErrorKind;
use idsync_http::{AuthConfig, ClientAuthMethod, HttpClient, HttpConfig, HttpError, Request, Url};
use idsync_testkit::tls::HttpsServer;

/// Serves `GET /hello` and counts the requests it answered.
async fn server(names: &[&str]) -> (HttpsServer, Arc<AtomicUsize>) {
    let served = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/hello",
            get(|State(n): State<Arc<AtomicUsize>>| async move {
                n.fetch_add(1, Ordering::SeqCst);
                "hello"
            }),
        )
        .with_state(served.clone());
    (HttpsServer::start_for(app, names).await.unwrap(), served)
}

async fn get_hello(config: &HttpConfig, server: &HttpsServer) -> Result<String, HttpError> {
    let url = Url::parse(&format!("{}/hello", server.url())).unwrap();
    let response = HttpClient::new(config)?.send(Request::get(url)).await?;
    Ok(String::from_utf8_lossy(&response.body).into_owned())
}

fn assert_certificate_refused(e: HttpError, reason: &str) {
    let text = e.to_string();
    assert!(matches!(e, HttpError::Certificate { .. }), "{e:?}");
    assert!(text.contains("TLS certificate was refused"), "{text}");
    assert!(text.contains("certificate verify failed"), "{text}");
    assert!(text.contains(reason), "{text}");
    let e = e.into_core("rest", "");
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(e.stops_run() && !e.is_transient(), "{e}");
}

#[tokio::test]
async fn an_unknown_ca_is_refused_by_default_and_not_retried() {
    let (server, served) = server(&["127.0.0.1", "localhost"]).await;
    let e = get_hello(&HttpConfig::default(), &server).await.unwrap_err();
    assert_certificate_refused(e, "unable to get local issuer certificate");
    assert_eq!(served.load(Ordering::SeqCst), 0);
    assert_eq!(server.connections(), 1, "a refused certificate is not retried");
}

#[tokio::test]
async fn the_ca_file_makes_the_server_trusted() {
    let (server, served) = server(&["127.0.0.1", "localhost"]).await;
    let mut config = HttpConfig::default();
    config.tls.ca_file = Some(server.ca_file());
    assert_eq!(get_hello(&config, &server).await.unwrap(), "hello");
    assert_eq!(served.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn verify_off_accepts_any_certificate_and_logs_a_warning() {
    let logs = idsync_testkit::logs::capture();
    let (server, served) = server(&["elsewhere.invalid"]).await;
    let mut config = HttpConfig::default();
    config.tls.verify = false;
    assert_eq!(get_hello(&config, &server).await.unwrap(), "hello");
    assert_eq!(served.load(Ordering::SeqCst), 1);
    let text = logs.text();
    assert!(
        text.lines()
            .any(|l| l.contains("WARN") && l.contains("TLS certificate verification is turned off")),
        "{text}"
    );
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused_even_from_a_trusted_ca() {
    let (server, served) = server(&["elsewhere.invalid"]).await;
    let mut config = HttpConfig::default();
    config.tls.ca_file = Some(server.ca_file());
    let e = get_hello(&config, &server).await.unwrap_err();
    assert_certificate_refused(e, "IP address mismatch");
    assert_eq!(served.load(Ordering::SeqCst), 0);
}

/// What the OAuth2 server of the next test received.
#[derive(Default)]
struct TokenServer {
    /// The body of every token request.
    token_requests: std::sync::Mutex<Vec<String>>,
    /// The Authorization header of every API request.
    api_requests: std::sync::Mutex<Vec<String>>,
}

#[tokio::test]
async fn an_oauth2_token_endpoint_behind_an_unknown_ca_is_refused_before_the_secret_is_sent() {
    let seen = Arc::new(TokenServer::default());
    let app = Router::new()
        .route(
            "/token",
            post(|State(s): State<Arc<TokenServer>>, body: String| async move {
                s.token_requests.lock().unwrap().push(body);
                axum::Json(serde_json::json!({"access_token": "tok1", "token_type": "Bearer", "expires_in": 3600}))
            }),
        )
        .route(
            "/users",
            get(|State(s): State<Arc<TokenServer>>, headers: HeaderMap| async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                s.api_requests.lock().unwrap().push(auth.to_owned());
                "[]"
            }),
        )
        .with_state(seen.clone());
    let server = HttpsServer::start(app).await.unwrap();
    let base = Url::parse(&server.url()).unwrap();
    let mut config = HttpConfig::with_auth(AuthConfig::Oauth2ClientCredentials {
        token_url: base.join("token").unwrap(),
        client_id: "app".into(),
        client_secret: "s3cret-never-sent".to_owned().into(),
        scope: None,
        // The secret would travel in the first request's body.
        client_auth: ClientAuthMethod::Body,
    });
    let logs = idsync_testkit::logs::capture();

    // Without the CA: the token endpoint's certificate is refused, once.
    let client = HttpClient::new(&config).unwrap();
    let e = client
        .send(Request::get(base.join("users").unwrap()))
        .await
        .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(text.contains(&format!("POST {}token", base)), "{text}");
    assert_certificate_refused(e, "unable to get local issuer certificate");
    assert!(!text.contains("s3cret"), "{text}");
    assert_eq!(server.connections(), 1, "a refused certificate is not retried");
    assert!(seen.token_requests.lock().unwrap().is_empty(), "no token request left");
    assert!(seen.api_requests.lock().unwrap().is_empty());

    // With the CA file: the token is fetched and used.
    config.tls.ca_file = Some(server.ca_file());
    let client = HttpClient::new(&config).unwrap();
    client.send(Request::get(base.join("users").unwrap())).await.unwrap();
    let tokens = seen.token_requests.lock().unwrap().clone();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert!(tokens[0].contains("client_secret=s3cret-never-sent"), "{tokens:?}");
    assert_eq!(*seen.api_requests.lock().unwrap(), ["Bearer tok1"]);
    logs.assert_never_contains("s3cret");
}
