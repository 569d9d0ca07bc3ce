//! A scripted HTTP server on 127.0.0.1 for bad-answer tests: every request
//! gets the answer scripted for the longest matching path prefix (or the
//! default answer), whatever it asks, so that a client can be shown any
//! status, header and body: SCIM error bodies, malformed JSON, a bad object
//! among good ones. Requests are remembered. Stopped on drop.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use idsync_testkit::scripted::ScriptedServer;
//! let server = ScriptedServer::start().await?;
//! server.answer(409, &[], r#"{"scimType":"uniqueness","detail":"taken"}"#);
//! server.route("/v2/Users", 200, &[], r#"{"totalResults":0}"#);
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One scripted answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// Extra header lines (`Retry-After: 30`), besides `Content-Type:
    /// application/json` and `Content-Length`.
    pub headers: Vec<String>,
    /// The body, sent as is.
    pub body: String,
}

#[derive(Debug)]
struct Script {
    default: Answer,
    /// (path prefix, answer); the longest matching prefix wins.
    routes: Vec<(String, Answer)>,
    /// `METHOD /path?query` of every request.
    seen: Vec<String>,
}

/// The server. See the module documentation.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(script: &Mutex<Script>) -> MutexGuard<'_, Script> {
    script.lock().unwrap_or_else(|p| p.into_inner())
}

impl ScriptedServer {
    /// Starts a server answering `200 {}` until told otherwise.
    pub async fn start() -> std::io::Result<ScriptedServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let script = Arc::new(Mutex::new(Script {
            default: Answer {
                status: 200,
                headers: Vec::new(),
                body: "{}".into(),
            },
            routes: Vec::new(),
            seen: Vec::new(),
        }));
        let shared = script.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, shared.clone()));
            }
        });
        Ok(ScriptedServer { addr, script, task })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request without a route gets this answer from now on.
    pub fn answer(&self, status: u16, headers: &[&str], body: &str) {
        lock(&self.script).default = Answer {
            status,
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            body: body.to_owned(),
        };
    }

    /// Requests whose path starts with `prefix` get this answer (the
    /// longest matching prefix wins; a later route for the same prefix
    /// replaces the earlier one).
    pub fn route(&self, prefix: &str, status: u16, headers: &[&str], body: &str) {
        let answer = Answer {
            status,
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            body: body.to_owned(),
        };
        let mut s = lock(&self.script);
        s.routes.retain(|(p, _)| p != prefix);
        s.routes.push((prefix.to_owned(), answer));
    }

    /// `METHOD /path?query` of every request so far.
    pub fn seen(&self) -> Vec<String> {
        lock(&self.script).seen.clone()
    }

    /// Forgets the requests seen.
    pub fn clear_seen(&self) {
        lock(&self.script).seen.clear();
    }
}

/// Reads one request (head and `Content-Length` body), answers, closes.
async fn serve(mut conn: TcpStream, script: Arc<Mutex<Script>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let request_line = head.lines().next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or("/"));
    let path = target.split('?').next().unwrap_or(target);
    let answer = {
        let mut s = lock(&script);
        s.seen.push(format!("{method} {target}"));
        s.routes
            .iter()
            .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| s.default.clone())
    };
    let mut response = format!(
        "HTTP/1.1 {} Scripted\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        answer.status,
        answer.body.len()
    );
    for h in &answer.headers {
        response.push_str(h);
        response.push_str("\r\n");
    }
    response.push_str("\r\n");
    response.push_str(&answer.body);
    let _ = conn.write_all(response.as_bytes()).await;
    let _ = conn.shutdown().await;
}
