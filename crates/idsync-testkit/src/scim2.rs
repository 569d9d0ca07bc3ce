//! scim2-server (PyPI) on loopback, and a fault-injecting proxy in front of
//! it for retry tests.
//!
//! The binary is found on `PATH` or at `<workspace>/target/testkit-venv/bin/scim2-server`
//! (which `.ci/install` creates). Each [`Scim2Server`] runs on its own free
//! port of 127.0.0.1 with its own bearer token, in memory, and is killed on drop.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::fault::{Fault, Faults};
use crate::gate::{StartError, gate};

/// A running scim2-server, killed on drop.
#[derive(Debug)]
pub struct Scim2Server {
    child: Child,
    port: u16,
    token: String,
    dir: tempfile::TempDir,
}

/// What a SCIM server holds ([`Scim2Server::holdings`]): users by
/// `userName` (true when active), groups by `displayName` with their
/// members' `userName`s.
pub type Holdings = (BTreeMap<String, bool>, BTreeMap<String, BTreeSet<String>>);

/// Starts a scim2-server for a test, or `None` (the test skips) when it is
/// not installed and `IDSYNC_REQUIRE_SERVERS` is not `1`.
pub async fn scim2_server() -> Option<Scim2Server> {
    gate("scim2-server", Scim2Server::start().await)
}

/// Where the scim2-server binary is: on `PATH`, else in the workspace's venv.
pub fn scim2_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("scim2-server");
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/testkit-venv/bin/scim2-server");
    venv.is_file().then_some(venv)
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Scim2Server {
    /// Starts a server on a free port of 127.0.0.1 and waits until it
    /// answers an authenticated request (up to 20 s).
    pub async fn start() -> Result<Scim2Server, StartError> {
        let binary = scim2_binary().ok_or_else(|| {
            StartError("scim2-server is not on PATH nor in target/testkit-venv (run `bash .ci/install`)".into())
        })?;
        let mut last = StartError("not started".into());
        for _ in 0..3 {
            match Self::start_once(&binary).await {
                Ok(server) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn start_once(binary: &PathBuf) -> Result<Scim2Server, StartError> {
        let dir = tempfile::Builder::new().prefix("idsync-scim2-").tempdir()?;
        let port = free_port()?;
        let token = format!("test-{}", uuid::Uuid::new_v4().simple());
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let child = Command::new(binary)
            .args([
                "--hostname",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--bearer-token",
                &token,
            ])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| StartError(format!("cannot run {}: {e}", binary.display())))?;
        let mut server = Scim2Server {
            child,
            port,
            token,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(StartError(format!(
                    "scim2-server exited with {status}: {}",
                    server.log_tail()
                )));
            }
            if let Ok(200) = probe(port, &server.token).await {
                tracing::debug!(port, "scim2-server is up");
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(StartError(format!(
                    "scim2-server did not answer within 20 s: {}",
                    server.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let start = text.len().saturating_sub(800);
        text.get(start..).unwrap_or_default().trim().to_owned()
    }

    /// The SCIM base URL, `http://127.0.0.1:PORT/v2`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bearer token the server accepts.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Every resource of `kind` (`Users`, `Groups`) the server holds, read
    /// with its token.
    pub async fn resources(&self, kind: &str) -> Vec<serde_json::Value> {
        let body: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/{kind}?count=100000", self.base_url()))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("list resources")
            .json()
            .await
            .expect("a list response");
        body["Resources"].as_array().cloned().unwrap_or_default()
    }

    /// What the server holds: each user's `userName` and whether it is
    /// active, and each group's `displayName` with its members'
    /// `userName`s (`unknown <member>` for a member that is no user). A
    /// name held twice panics (a duplicate).
    pub async fn holdings(&self) -> Holdings {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        let (mut users, mut names) = (BTreeMap::new(), BTreeMap::new());
        for u in self.resources("Users").await {
            let name = text(&u["userName"]);
            names.insert(text(&u["id"]), name.clone());
            assert!(
                users.insert(name, u["active"] != false).is_none(),
                "duplicate user: {u}"
            );
        }
        let mut groups = BTreeMap::new();
        for g in self.resources("Groups").await {
            let members = g["members"].as_array().cloned().unwrap_or_default();
            let members = members
                .iter()
                .map(|m| names.get(&text(&m["value"])).cloned().unwrap_or(format!("unknown {m}")))
                .collect();
            assert!(
                groups.insert(text(&g["displayName"]), members).is_none(),
                "duplicate group: {g}"
            );
        }
        (users, groups)
    }

    /// Starts a [`FaultProxy`] in front of this server.
    pub async fn fault_proxy(&self) -> std::io::Result<FaultProxy> {
        FaultProxy::start(self.port).await
    }
}

/// The HTTP status of `GET /v2/ServiceProviderConfig`.
async fn probe(port: u16, token: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    let req = format!(
        "GET /v2/ServiceProviderConfig HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("timed out"))??;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))
}

/// A request the proxy saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// True when the proxy answered with an injected fault.
    pub faulted: bool,
}

#[derive(Debug, Default)]
struct ProxyState {
    /// (needle, status, scimType): requests whose body holds the needle are refused.
    refusals: Vec<(String, u16, String)>,
    seen: Vec<Seen>,
}

struct Proxy {
    upstream: u16,
    state: Mutex<ProxyState>,
    faults: Faults,
}

/// An axum HTTP proxy on 127.0.0.1 in front of a scim2-server that answers
/// the injected faults of [`FaultProxy::faults`] (429 with Retry-After, 5xx)
/// with SCIM errors and forwards the rest. Stopped on drop.
pub struct FaultProxy {
    addr: SocketAddr,
    proxy: Arc<Proxy>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy").field("addr", &self.addr).finish()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy forwarding to `127.0.0.1:upstream`.
    pub async fn start(upstream: u16) -> std::io::Result<FaultProxy> {
        let proxy = Arc::new(Proxy {
            upstream,
            state: Mutex::new(ProxyState::default()),
            faults: Faults::default(),
        });
        let app = axum::Router::new().fallback(handle).with_state(proxy.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!("fault proxy stopped: {e}");
            }
        });
        Ok(FaultProxy { addr, proxy, task })
    }

    /// The SCIM base URL through the proxy, `http://127.0.0.1:PORT/v2`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v2", self.addr)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ProxyState> {
        self.proxy.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fault knobs, settable while the proxy runs.
    pub fn faults(&self) -> &Faults {
        &self.proxy.faults
    }

    /// From now on, every request whose body contains `needle` is answered
    /// `status` with a SCIM error of `scim_type` naming it, without reaching
    /// the server (a server that refuses one value, e.g. an unknown member).
    pub fn refuse_bodies_containing(&self, needle: &str, status: u16, scim_type: &str) {
        self.state()
            .refusals
            .push((needle.to_owned(), status, scim_type.to_owned()));
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }

    /// Forgets the requests seen.
    pub fn clear_seen(&self) {
        self.state().seen.clear();
    }
}

async fn handle(State(proxy): State<Arc<Proxy>>, request: Request<Body>) -> Response<Body> {
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
    let refusal = proxy
        .state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .refusals
        .iter()
        .find(|(needle, _, _)| body.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .cloned();
    let fault = match refusal {
        Some(refusal) => Some(Err(refusal)),
        None => proxy.faults.intercept(&method).await.map(Ok),
    };
    let response = match fault {
        Some(Ok(f)) => fault_response(f),
        Some(Err((needle, status, scim_type))) => refusal_response(&needle, status, &scim_type),
        None => match forward(proxy.upstream, parts, body, &path).await {
            Ok(r) => r,
            Err(e) => {
                let mut r = Response::new(Body::from(format!("proxy: upstream failed: {e}")));
                *r.status_mut() = StatusCode::BAD_GATEWAY;
                r
            }
        },
    };
    let seen = Seen {
        method,
        path,
        status: response.status().as_u16(),
        faulted: response.headers().contains_key("x-injected-fault"),
    };
    proxy.state.lock().unwrap_or_else(|p| p.into_inner()).seen.push(seen);
    response
}

fn refusal_response(needle: &str, status: u16, scim_type: &str) -> Response<Body> {
    let body = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": status.to_string(),
        "scimType": scim_type,
        "detail": format!("refused: {needle}"),
    });
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/scim+json"));
    h.insert("x-injected-fault", HeaderValue::from_static("1"));
    r
}

fn fault_response(f: Fault) -> Response<Body> {
    let body = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": f.status().as_u16().to_string(),
        "detail": "injected fault",
    });
    let mut r = f.respond(body.to_string());
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/scim+json"));
    h.insert("x-injected-fault", HeaderValue::from_static("1"));
    r
}

/// Forwards one request to the HTTP/1.0 upstream and reads the answer to EOF.
async fn forward(
    upstream: u16,
    parts: axum::http::request::Parts,
    body: axum::body::Bytes,
    path: &str,
) -> std::io::Result<Response<Body>> {
    let mut head = format!("{} {} HTTP/1.0\r\nHost: 127.0.0.1:{upstream}\r\n", parts.method, path);
    for (name, value) in &parts.headers {
        if matches!(
            name.as_str(),
            "host" | "connection" | "keep-alive" | "transfer-encoding" | "content-length" | "te" | "upgrade"
        ) {
            continue;
        }
        if let Ok(v) = value.to_str() {
            head.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut s = TcpStream::connect(("127.0.0.1", upstream)).await?;
    s.write_all(head.as_bytes()).await?;
    s.write_all(&body).await?;
    let mut buf = Vec::new();
    // As long as the clients' own timeouts allow (the benches wait 600 s):
    // scim2-server takes minutes over a PATCH of many members of a group of
    // 30,000; the proxy must not cut it shorter than its client would.
    tokio::time::timeout(Duration::from_secs(600), s.read_to_end(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("upstream timed out"))??;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let body = buf[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).map_err(|e| std::io::Error::other(e.to_string()))?;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "connection" | "content-length" | "transfer-encoding" | "keep-alive"
        ) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) {
            response.headers_mut().append(n, v);
        }
    }
    Ok(response)
}
