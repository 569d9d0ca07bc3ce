//! idsync-http against a small axum server on 127.0.0.1: retries,
//! Retry-After, idempotency, rate limit, auth and paging.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use futures::TryStreamExt;
use idsync_core::ErrorKind;
use idsync_http::{
    AuthConfig, ClientAuthMethod, Extracted, HttpClient, HttpConfig, HttpError, Pagination, RateLimitConfig, Request,
    RetryConfig, Url,
};

#[derive(Default)]
struct Script {
    /// Answers given before the normal 200, one per request.
    faults: VecDeque<(u16, Option<String>)>,
    /// (method, path and query, authorization header, x-api-key header) of every request.
    seen: Vec<(String, String, Option<String>, Option<String>)>,
    /// Token endpoint calls.
    tokens: u32,
    /// Tokens the API accepts.
    valid_token: Option<String>,
    /// `expires_in` of the tokens handed out (default 3600).
    lifetime: Option<u64>,
}

type Shared = Arc<Mutex<Script>>;

async fn api(State(s): State<Shared>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if uri.path() == "/moved" {
        return (StatusCode::FOUND, [("location", "http://127.0.0.2:9/elsewhere")]).into_response();
    }
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut s = s.lock().unwrap();
    s.seen
        .push((method.to_string(), uri.to_string(), h("authorization"), h("x-api-key")));
    if let Some(valid) = &s.valid_token
        && h("authorization").as_deref() != Some(&format!("Bearer {valid}"))
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if let Some((status, retry_after)) = s.faults.pop_front() {
        let mut r = (StatusCode::from_u16(status).unwrap(), "fault").into_response();
        if let Some(ra) = retry_after {
            r.headers_mut().insert("retry-after", ra.parse().unwrap());
        }
        return r;
    }
    (StatusCode::OK, "{\"ok\":true}").into_response()
}

async fn items(State(s): State<Shared>, Query(q): Query<std::collections::HashMap<String, String>>) -> Response {
    s.lock()
        .unwrap()
        .seen
        .push(("GET".into(), format!("/items?{q:?}"), None, None));
    let start: usize = q.get("startIndex").and_then(|v| v.parse().ok()).unwrap_or(1);
    let count: usize = q.get("count").and_then(|v| v.parse().ok()).unwrap_or(100);
    let total = 7usize;
    // the server caps pages at 2 whatever the client asks
    let ids: Vec<usize> = (start..=total).take(count.min(2)).collect();
    axum::Json(serde_json::json!({"totalResults": total, "Resources": ids})).into_response()
}

async fn token(State(s): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let mut s = s.lock().unwrap();
    s.tokens += 1;
    let basic = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    // "app:s3cret" in base64, or client_secret_post
    let in_body = body.contains("client_id=app") && body.contains("client_secret=s3cret");
    if (basic != "Basic YXBwOnMzY3JldA==" && !in_body) || !body.contains("grant_type=client_credentials") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let t = format!("tok{}", s.tokens);
    s.valid_token = Some(t.clone());
    let lifetime = s.lifetime.unwrap_or(3600);
    axum::Json(serde_json::json!({"access_token": t, "token_type": "Bearer", "expires_in": lifetime})).into_response()
}

async fn serve() -> (Url, Shared) {
    let shared: Shared = Arc::default();
    let app = Router::new()
        .route("/items", axum::routing::get(items))
        .route("/token", post(token))
        .route("/{*rest}", any(api))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (Url::parse(&format!("http://{addr}/")).unwrap(), shared)
}

fn fast_retries(auth: AuthConfig) -> HttpConfig {
    let mut c = HttpConfig::with_auth(auth);
    c.retry = RetryConfig::default();
    c.retry.max_retries = 3;
    c.retry.base_ms = 10;
    c.retry.max_backoff_ms = 50;
    c.retry.max_retry_after_ms = 5_000;
    c
}

fn bearer() -> AuthConfig {
    AuthConfig::Bearer {
        token: "t0ken".to_owned().into(),
    }
}

fn fault(s: &Shared, faults: &[(u16, Option<&str>)]) {
    s.lock().unwrap().faults = faults.iter().map(|(c, r)| (*c, r.map(str::to_owned))).collect();
}

fn hits(s: &Shared) -> usize {
    s.lock().unwrap().seen.len()
}

#[tokio::test]
async fn idempotent_get_is_retried_through_5xx() {
    let (base, s) = serve().await;
    fault(&s, &[(503, None), (502, None)]);
    let client = HttpClient::new(&fast_retries(bearer())).unwrap();
    let r = client.send(Request::get(base.join("users").unwrap())).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(hits(&s), 3);
    assert_eq!(s.lock().unwrap().seen[0].2.as_deref(), Some("Bearer t0ken"));
}

#[tokio::test]
async fn post_is_not_sent_twice_after_a_5xx() {
    let (base, s) = serve().await;
    fault(&s, &[(500, None)]);
    let client = HttpClient::new(&fast_retries(bearer())).unwrap();
    let req = Request::new(Method::POST, base.join("users").unwrap())
        .json(&serde_json::json!({"userName": "ann"}), "application/json")
        .unwrap();
    let err = client.send(req).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(hits(&s), 1, "a POST that may have landed is never re-sent");
    let core = err.into_core("test", "create ann");
    assert_eq!(core.kind(), ErrorKind::Unavailable);
    assert!(core.is_transient(), "the engine may retry it next run");
}

#[tokio::test]
async fn post_is_retried_after_429_honouring_retry_after_seconds() {
    let (base, s) = serve().await;
    fault(&s, &[(429, Some("1"))]);
    let client = HttpClient::new(&fast_retries(bearer())).unwrap();
    let started = Instant::now();
    let req = Request::new(Method::POST, base.join("users").unwrap());
    client.send(req).await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(hits(&s), 2);
    assert!(
        client.limiter().interval() > Duration::ZERO,
        "a 429 slows the client down"
    );
}

#[tokio::test]
async fn retry_after_as_http_date() {
    let (base, s) = serve().await;
    // Started before the date is taken, so that a slow machine cannot make
    // the wait look shorter than the date asks.
    let started = Instant::now();
    let when = httpdate_in(2);
    fault(&s, &[(503, Some(&when))]);
    let client = HttpClient::new(&fast_retries(bearer())).unwrap();
    client.send(Request::get(base.join("x").unwrap())).await.unwrap();
    // HTTP dates have one-second resolution: the wait is between 1 and 2.3 s
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(3_500),
        "{waited:?}"
    );
    assert_eq!(hits(&s), 2);
}

fn httpdate_in(secs: u64) -> String {
    // formatted by hand (IMF-fixdate) to keep the test free of extra crates
    let t = SystemTime::now() + Duration::from_secs(secs);
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let (days, rem) = (d / 86_400, d % 86_400);
    let (h, m, sec) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // civil from days (Howard Hinnant)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!("{weekday}, {day:02} {mon} {year} {h:02}:{m:02}:{sec:02} GMT")
}

#[tokio::test]
async fn a_retry_after_longer_than_allowed_fails_transient_with_the_hint() {
    let (base, s) = serve().await;
    fault(&s, &[(429, Some("3600"))]);
    let client = HttpClient::new(&fast_retries(bearer())).unwrap();
    let err = client.send(Request::get(base.join("x").unwrap())).await.unwrap_err();
    assert_eq!(hits(&s), 1);
    let core = err.into_core("test", "");
    assert_eq!(core.kind(), ErrorKind::RateLimited);
    assert_eq!(core.retry_after(), Some(Duration::from_secs(3600)));
}

#[tokio::test]
async fn retries_give_up_and_say_so() {
    let (base, s) = serve().await;
    fault(&s, &[(503, None); 10]);
    let client = HttpClient::new(&fast_retries(bearer())).unwrap();
    let err = client.send(Request::get(base.join("x").unwrap())).await.unwrap_err();
    assert_eq!(hits(&s), 4, "one try and 3 retries");
    assert!(
        err.to_string()
            .ends_with("HTTP 503 Service Unavailable (after 3 retries)"),
        "{err}"
    );
    assert_eq!(err.into_core("t", "").status(), idsync_core::Status::Exhausted);
}

#[tokio::test]
async fn refused_connections_are_retried_even_for_post() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = HttpClient::new(&fast_retries(AuthConfig::None)).unwrap();
    let url = Url::parse(&format!("http://127.0.0.1:{port}/x")).unwrap();
    let err = client.send(Request::new(Method::POST, url)).await.unwrap_err();
    match &err {
        HttpError::Transport { what, retries, .. } => {
            assert_eq!(*what, "connection failed");
            assert_eq!(*retries, 3);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.into_core("t", "").kind(), ErrorKind::Unavailable);
}

#[tokio::test]
async fn rate_limit_spaces_requests() {
    let (base, s) = serve().await;
    let mut c = fast_retries(bearer());
    c.rate_limit = Some(RateLimitConfig::new(20.0));
    let client = HttpClient::new(&c).unwrap();
    let started = Instant::now();
    let url = base.join("x").unwrap();
    let all = (0..11).map(|_| client.send(Request::get(url.clone())));
    for r in futures::future::join_all(all).await {
        r.unwrap();
    }
    let took = started.elapsed();
    // 11 requests at 20/s: the last starts 500 ms after the first
    assert!(took >= Duration::from_millis(480), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(hits(&s), 11);
}

#[tokio::test]
async fn api_key_and_basic_auth_headers() {
    let (base, s) = serve().await;
    let client = HttpClient::new(&fast_retries(AuthConfig::ApiKey {
        header: "x-api-key".into(),
        key: "k3y".to_owned().into(),
    }))
    .unwrap();
    client.send(Request::get(base.join("a").unwrap())).await.unwrap();
    let client = HttpClient::new(&fast_retries(AuthConfig::Basic {
        username: "bob".into(),
        password: "pw".to_owned().into(),
    }))
    .unwrap();
    client.send(Request::get(base.join("b").unwrap())).await.unwrap();
    let seen = s.lock().unwrap().seen.clone();
    assert_eq!(seen[0].3.as_deref(), Some("k3y"));
    assert_eq!(seen[1].2.as_deref(), Some("Basic Ym9iOnB3"));
}

#[tokio::test]
async fn oauth2_token_is_cached_and_refreshed_after_401() {
    let (base, s) = serve().await;
    let auth = AuthConfig::Oauth2ClientCredentials {
        token_url: base.join("token").unwrap(),
        client_id: "app".into(),
        client_secret: "s3cret".to_owned().into(),
        scope: Some("users".into()),
        client_auth: ClientAuthMethod::Basic,
    };
    let config = fast_retries(auth);
    let debug = format!("{config:?}");
    assert!(!debug.contains("s3cret") && debug.contains("[redacted]"), "{debug}");
    let client = HttpClient::new(&config).unwrap();
    let url = base.join("users").unwrap();
    client.send(Request::get(url.clone())).await.unwrap();
    client.send(Request::get(url.clone())).await.unwrap();
    assert_eq!(s.lock().unwrap().tokens, 1, "the token is cached");
    // the server revokes it: the next request gets a 401, fetches a new token, succeeds
    s.lock().unwrap().valid_token = Some("revoked".into());
    client.send(Request::get(url.clone())).await.unwrap();
    assert_eq!(s.lock().unwrap().tokens, 2);
    let seen = s.lock().unwrap().seen.clone();
    assert_eq!(seen.last().unwrap().2.as_deref(), Some("Bearer tok2"));

    let bad = HttpClient::new(&fast_retries(AuthConfig::Oauth2ClientCredentials {
        token_url: base.join("token").unwrap(),
        client_id: "app".into(),
        client_secret: "wrong".to_owned().into(),
        scope: None,
        client_auth: ClientAuthMethod::Basic,
    }))
    .unwrap();
    let err = bad.send(Request::get(url)).await.unwrap_err();
    assert!(err.to_string().contains("invalid_client"), "{err}");
    assert!(!err.to_string().contains("wrong"));
    assert!(err.into_core("rest", "").stops_run());
}

#[tokio::test]
async fn paginate_follows_total_results_past_capped_pages() {
    let (base, s) = serve().await;
    let client = HttpClient::new(&fast_retries(bearer())).unwrap();
    let ids: Vec<u64> = client
        .paginate(Request::get(base.join("items").unwrap()), Pagination::scim(5), |page| {
            let v: serde_json::Value = page.json()?;
            Ok(Extracted {
                items: v["Resources"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
                    .unwrap_or_default(),
                total: v["totalResults"].as_u64(),
                next_cursor: None,
            })
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(hits(&s), 4);
}

#[tokio::test]
async fn requests_are_traced_without_secrets() {
    let (base, s) = serve().await;
    fault(&s, &[(503, None)]);
    // The process-wide capture: a subscriber scoped to this thread can miss
    // events whose interest another test thread cached first.
    let logs = idsync_testkit::logs::capture();
    let client = HttpClient::new(&fast_retries(bearer())).unwrap();
    let url = base.join("users?limit=5&api_key=hunter2").unwrap();
    client.send(Request::get(url)).await.unwrap();
    let log = logs.text();
    let ours: Vec<&str> = log.lines().filter(|l| l.contains("limit=5&api_key=***")).collect();
    assert!(
        ours.iter()
            .any(|l| l.contains("http request") && l.contains("status=503"))
            && ours.iter().any(|l| l.contains("retrying")),
        "{log}"
    );
    logs.assert_never_contains("hunter2");
    logs.assert_never_contains("t0ken");
}

#[tokio::test]
async fn tls_options_are_checked_when_building() {
    let mut c = HttpConfig::default();
    c.tls.ca_file = Some("/nonexistent/ca.pem".into());
    let err = HttpClient::new(&c).unwrap_err();
    assert!(matches!(err, HttpError::Config(_)), "{err:?}");
    assert!(
        err.to_string().contains("cannot read CA file /nonexistent/ca.pem"),
        "{err}"
    );
    assert!(err.into_core("rest", "").stops_run());

    let dir = std::env::temp_dir().join(format!("idsync-http-ca-{}", std::process::id()));
    std::fs::write(&dir, "not a certificate").unwrap();
    c.tls.ca_file = Some(dir.clone());
    let err = HttpClient::new(&c).unwrap_err();
    assert!(
        err.to_string().contains("holds no certificate") || err.to_string().contains("is not PEM"),
        "{err}"
    );
    std::fs::remove_file(dir).unwrap();

    let config: HttpConfig = serde_json::from_value(serde_json::json!({"tls": {"verify": false}})).unwrap();
    assert!(!config.tls.verify);
    HttpClient::new(&config).unwrap();
    let typo = serde_json::from_value::<HttpConfig>(serde_json::json!({"timeout": 5}));
    assert!(typo.is_err(), "unknown fields are refused");
}

#[tokio::test]
async fn oauth2_client_secret_post_and_no_redirects() {
    let (base, s) = serve().await;
    let client = HttpClient::new(&fast_retries(AuthConfig::Oauth2ClientCredentials {
        token_url: base.join("token").unwrap(),
        client_id: "app".into(),
        client_secret: "s3cret".to_owned().into(),
        scope: None,
        client_auth: ClientAuthMethod::Body,
    }))
    .unwrap();
    client.send(Request::get(base.join("users").unwrap())).await.unwrap();
    assert_eq!(s.lock().unwrap().tokens, 1);
    // a redirect is not followed (the credentials stay with the configured host)
    let err = client
        .send(Request::get(base.join("moved").unwrap()))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::FOUND));
    assert_eq!(err.into_core("rest", "").kind(), ErrorKind::Protocol);
}

#[tokio::test]
async fn oauth2_token_about_to_expire_is_fetched_again() {
    let (base, s) = serve().await;
    // tokens living 20 s are within the 30 s margin: each request gets a fresh one
    s.lock().unwrap().lifetime = Some(20);
    let client = HttpClient::new(&fast_retries(AuthConfig::Oauth2ClientCredentials {
        token_url: base.join("token").unwrap(),
        client_id: "app".into(),
        client_secret: "s3cret".to_owned().into(),
        scope: None,
        client_auth: ClientAuthMethod::Basic,
    }))
    .unwrap();
    for _ in 0..3 {
        client.send(Request::get(base.join("users").unwrap())).await.unwrap();
    }
    assert_eq!(s.lock().unwrap().tokens, 3);
    let seen = s.lock().unwrap().seen.clone();
    assert_eq!(seen.last().unwrap().2.as_deref(), Some("Bearer tok3"));
}
