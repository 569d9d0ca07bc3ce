//! HTTPS against an axum server on 127.0.0.1 with a certificate from a
//! throwaway CA: refused by default (and never retried), accepted with
//! `tls.ca_file`, accepted with `tls.verify = false` after a warning, and
//! refused for a certificate that names another host.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use idsync_core::ErrorKind;
use idsync_http::{HttpClient, HttpConfig, HttpError, Request, Url};
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
