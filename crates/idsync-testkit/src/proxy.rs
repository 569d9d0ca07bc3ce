//! A fault-injecting TCP proxy on 127.0.0.1, in front of any server
//! (slapd, Samba AD DC, scim2-server), for reliability tests below the
//! protocol: slow links, refused connections, connections reset in the
//! middle of an answer, and links that go silent.
//!
//! Every knob can be turned while connections are open; [`TcpProxy::stats`]
//! counts connections, bytes and the faults injected, and, in front of an
//! LDAP server spoken to in the clear, the requests by operation
//! ([`LdapRequests`]: how many searches or modifies a call cost). The proxy
//! and every connection through it stop when it is dropped.
//!
//! For HTTP status faults (429 with `Retry-After`, 5xx) use the knobs of
//! [`crate::fault::Faults`] on [`crate::scim2::FaultProxy`], which can sit
//! in front of this one (`FaultProxy::start(tcp_proxy.port())`), or on the
//! fake REST and JumpCloud servers.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use idsync_testkit::proxy::TcpProxy;
//! let proxy = TcpProxy::start(389).await?;
//! // Reset the connection that carries the 100 000th byte from the server,
//! // and the next two connections as soon as the server answers them.
//! proxy.reset_after(100_000, 3);
//! assert_eq!(proxy.stats().resets, 0);
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Counters of a [`TcpProxy`] since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted (dropped ones included).
    pub connections: u64,
    /// Connections closed at once because [`TcpProxy::drop_new`] was on.
    pub dropped: u64,
    /// Connections reset by [`TcpProxy::reset_after`].
    pub resets: u64,
    /// Chunks held back while [`TcpProxy::stall`] was on.
    pub stalled: u64,
    /// Chunks delayed by [`TcpProxy::set_delay`].
    pub delayed: u64,
    /// Bytes forwarded from clients to the server.
    pub bytes_up: u64,
    /// Bytes forwarded from the server to clients.
    pub bytes_down: u64,
    /// LDAP requests forwarded to the server, by operation (meaningful in
    /// front of an LDAP server without TLS).
    pub ldap: LdapRequests,
}

/// LDAP requests (RFC 4511 `LDAPMessage`s from clients) by operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LdapRequests {
    /// Bind requests.
    pub bind: u64,
    /// Search requests (a paged search counts once per page).
    pub search: u64,
    /// Modify requests.
    pub modify: u64,
    /// Add requests.
    pub add: u64,
    /// Delete requests.
    pub delete: u64,
    /// Modify DN (rename, move) requests.
    pub modify_dn: u64,
    /// Any other request (unbind, abandon, extended, compare).
    pub other: u64,
}

/// Splits the bytes a client sends into LDAP messages (BER: a SEQUENCE
/// holding the message id and the operation's tag) and counts them.
#[derive(Debug, Default)]
struct LdapFrames {
    /// The start of the next message, until its operation's tag is in.
    head: Vec<u8>,
    /// Bytes of the current message still to pass.
    skip: u64,
    /// The stream is not LDAP (or is TLS): stop counting.
    lost: bool,
}

/// The operation's tag of a message starting with `h`, the length of the
/// message's content and how much of it `h` holds; `None` until `h` is
/// long enough, `Some(Err(()))` when `h` is not an LDAP message.
fn ldap_head(h: &[u8]) -> Option<Result<(u8, u64, u64), ()>> {
    if *h.first()? != 0x30 {
        return Some(Err(()));
    }
    let first = *h.get(1)?;
    let (len, at) = if first < 0x80 {
        (u64::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 8 {
            return Some(Err(()));
        }
        let bytes = h.get(2..2 + n)?;
        (bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)), 2 + n)
    };
    if *h.get(at)? != 0x02 {
        return Some(Err(()));
    }
    let id_len = usize::from(*h.get(at + 1)?);
    let op = *h.get(at + 2 + id_len)?;
    Some(Ok((op, len, (2 + id_len + 1) as u64)))
}

impl LdapFrames {
    fn feed(&mut self, mut data: &[u8], counters: &LdapCounters) {
        while !data.is_empty() && !self.lost {
            if self.skip > 0 {
                let n = data.len().min(usize::try_from(self.skip).unwrap_or(usize::MAX));
                self.skip -= n as u64;
                data = &data[n..];
                continue;
            }
            self.head.push(data[0]);
            data = &data[1..];
            match ldap_head(&self.head) {
                None if self.head.len() < 32 => {}
                Some(Ok((op, len, held))) if len >= held => {
                    counters.count(op);
                    self.skip = len - held;
                    self.head.clear();
                }
                _ => self.lost = true,
            }
        }
    }
}

#[derive(Debug, Default)]
struct LdapCounters {
    bind: AtomicU64,
    search: AtomicU64,
    modify: AtomicU64,
    add: AtomicU64,
    delete: AtomicU64,
    modify_dn: AtomicU64,
    other: AtomicU64,
}

impl LdapCounters {
    /// Counts a request by its operation's tag (RFC 4511, [APPLICATION n]).
    fn count(&self, op: u8) {
        let counter = match op {
            0x60 => &self.bind,
            0x63 => &self.search,
            0x66 => &self.modify,
            0x68 => &self.add,
            0x4a => &self.delete,
            0x6c => &self.modify_dn,
            _ => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> LdapRequests {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LdapRequests {
            bind: get(&self.bind),
            search: get(&self.search),
            modify: get(&self.modify),
            add: get(&self.add),
            delete: get(&self.delete),
            modify_dn: get(&self.modify_dn),
            other: get(&self.other),
        }
    }
}

impl ProxyStats {
    /// Faults injected: drops, resets, stalled and delayed chunks.
    pub fn faults(&self) -> u64 {
        self.dropped + self.resets + self.stalled + self.delayed
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Knobs {
    delay: Duration,
    drop_new: bool,
    stall: bool,
}

/// Resets still to do: after `budget` more bytes from upstream, `left` connections.
#[derive(Debug)]
struct ResetPlan {
    budget: u64,
    left: usize,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    dropped: AtomicU64,
    resets: AtomicU64,
    stalled: AtomicU64,
    delayed: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    ldap: LdapCounters,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    knobs: watch::Sender<Knobs>,
    reset: Mutex<Option<ResetPlan>>,
    /// Bytes from upstream still to forward before the link stalls.
    stall_budget: Mutex<Option<u64>>,
    counters: Counters,
}

impl Shared {
    /// For a chunk of `n` bytes from upstream: `Some(k)` when the connection
    /// must be reset after its first `k` bytes.
    fn take_stall(&self, n: usize) -> Option<usize> {
        let mut budget = self.stall_budget.lock().unwrap_or_else(|p| p.into_inner());
        let left = budget.as_mut()?;
        if *left >= n as u64 {
            *left -= n as u64;
            return None;
        }
        let keep = *left as usize;
        *budget = None;
        Some(keep)
    }

    fn take_reset(&self, n: usize) -> Option<usize> {
        let mut plan = self.reset.lock().unwrap_or_else(|p| p.into_inner());
        let p = plan.as_mut()?;
        let n = n as u64;
        if p.budget >= n {
            p.budget -= n;
            return None;
        }
        let keep = p.budget as usize;
        p.budget = 0;
        p.left = p.left.saturating_sub(1);
        if p.left == 0 {
            *plan = None;
        }
        Some(keep)
    }
}

/// A TCP proxy on a free port of 127.0.0.1 forwarding to one upstream port
/// of 127.0.0.1, with fault knobs. Stopped (with its connections) on drop.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        // The accept task owns the connections' JoinSet: aborting it aborts them.
        self.task.abort();
    }
}

impl TcpProxy {
    /// Starts a proxy forwarding to `127.0.0.1:upstream`.
    pub async fn start(upstream: u16) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: SocketAddr::from(([127, 0, 0, 1], upstream)),
            knobs: watch::Sender::new(Knobs::default()),
            reset: Mutex::new(None),
            stall_budget: Mutex::new(None),
            counters: Counters::default(),
        });
        let task = tokio::spawn(accept(listener, shared.clone()));
        tracing::debug!(%addr, upstream, "tcp fault proxy started");
        Ok(TcpProxy { addr, shared, task })
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Waits this long before forwarding each chunk, both ways (zero: off).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.knobs.send_modify(|k| k.delay = delay);
    }

    /// While on, new connections are accepted and closed at once; open
    /// ones go on.
    pub fn drop_new(&self, on: bool) {
        self.shared.knobs.send_modify(|k| k.drop_new = on);
    }

    /// After `bytes` more bytes from the server (counted over every
    /// connection), resets (RST, `SO_LINGER` 0) the connection carrying the
    /// next byte in the middle of its answer, and then the next
    /// `connections - 1` connections as soon as the server sends them
    /// anything. `usize::MAX` keeps resetting until [`TcpProxy::heal`];
    /// 0 cancels.
    pub fn reset_after(&self, bytes: u64, connections: usize) {
        let plan = (connections > 0).then_some(ResetPlan {
            budget: bytes,
            left: connections,
        });
        *self.shared.reset.lock().unwrap_or_else(|p| p.into_inner()) = plan;
    }

    /// While on, nothing is forwarded either way and nothing is closed: the
    /// link goes silent, as behind a dead router. Off forwards what was held.
    pub fn stall(&self, on: bool) {
        self.shared.knobs.send_modify(|k| k.stall = on);
    }

    /// After `bytes` more bytes from the server (counted over every
    /// connection), the link stalls as with [`TcpProxy::stall`], in the
    /// middle of an answer.
    pub fn stall_after(&self, bytes: u64) {
        *self.shared.stall_budget.lock().unwrap_or_else(|p| p.into_inner()) = Some(bytes);
    }

    /// Turns every fault off (held chunks go on).
    pub fn heal(&self) {
        self.reset_after(0, 0);
        *self.shared.stall_budget.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.shared.knobs.send_modify(|k| *k = Knobs::default());
    }

    /// The counters so far.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ProxyStats {
            connections: get(&c.connections),
            dropped: get(&c.dropped),
            resets: get(&c.resets),
            stalled: get(&c.stalled),
            delayed: get(&c.delayed),
            bytes_up: get(&c.bytes_up),
            bytes_down: get(&c.bytes_down),
            ldap: c.ldap.get(),
        }
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    connections.spawn(serve(client, shared.clone()));
                }
                Err(e) => {
                    tracing::warn!("tcp fault proxy: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The reading side closed; the writing side was shut down.
    Eof,
    /// A reset was injected.
    Reset,
    /// Either side failed.
    Failed,
}

async fn serve(mut client: TcpStream, shared: Arc<Shared>) {
    shared.counters.connections.fetch_add(1, Ordering::Relaxed);
    if shared.knobs.borrow().drop_new {
        shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mut upstream = match TcpStream::connect(shared.upstream).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(upstream = %shared.upstream, "tcp fault proxy: upstream refused: {e}");
            return;
        }
    };
    let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
    let end = {
        let (client_read, client_write) = client.split();
        let (upstream_read, upstream_write) = upstream.split();
        let up = pump(client_read, upstream_write, Direction::Up, &shared);
        let down = pump(upstream_read, client_write, Direction::Down, &shared);
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            let end = tokio::select! {
                end = &mut up, if !up_done => { up_done = true; end }
                end = &mut down, if !down_done => { down_done = true; end }
            };
            if end != End::Eof {
                break end;
            }
            if up_done && down_done {
                break End::Eof;
            }
        }
    };
    if end == End::Reset {
        shared.counters.resets.fetch_add(1, Ordering::Relaxed);
        // Dropped with a zero linger, both sockets send RST instead of FIN.
        let _ = (client.set_zero_linger(), upstream.set_zero_linger());
    }
}

/// Forwards one direction until EOF, an error or an injected reset.
async fn pump<R, W>(mut from: R, mut to: W, direction: Direction, shared: &Shared) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut knobs = shared.knobs.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    let c = &shared.counters;
    let mut frames = LdapFrames::default();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => {
                let _ = to.shutdown().await;
                return End::Eof;
            }
            Ok(n) => n,
            Err(_) => return End::Failed,
        };
        let mut start = 0;
        if direction == Direction::Down
            && let Some(keep) = shared.take_stall(n)
        {
            if to.write_all(&buf[..keep]).await.is_err() {
                return End::Failed;
            }
            c.bytes_down.fetch_add(keep as u64, Ordering::Relaxed);
            shared.knobs.send_modify(|k| k.stall = true);
            start = keep;
        }
        if knobs.borrow_and_update().stall {
            c.stalled.fetch_add(1, Ordering::Relaxed);
            if knobs.wait_for(|k| !k.stall).await.is_err() {
                return End::Failed;
            }
        }
        let delay = knobs.borrow().delay;
        if !delay.is_zero() {
            c.delayed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
        }
        let data = &buf[start..n];
        let cut = match direction {
            Direction::Down => shared.take_reset(data.len()),
            Direction::Up => None,
        };
        let chunk = &data[..cut.unwrap_or(data.len())];
        if to.write_all(chunk).await.is_err() {
            return End::Failed;
        }
        let counter = match direction {
            Direction::Up => {
                frames.feed(chunk, &c.ldap);
                &c.bytes_up
            }
            Direction::Down => &c.bytes_down,
        };
        counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        if cut.is_some() {
            let _ = to.flush().await;
            return End::Reset;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo-ish upstream: answers each connection with `size` bytes, then
    /// keeps it open until the client closes.
    async fn upstream(size: usize) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut line = [0u8; 1];
                    if s.read_exact(&mut line).await.is_ok() {
                        let _ = s.write_all(&vec![b'x'; size]).await;
                        let _ = s.shutdown().await;
                    }
                    let mut rest = Vec::new();
                    let _ = s.read_to_end(&mut rest).await;
                });
            }
        });
        port
    }

    async fn fetch(port: u16) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(b"?").await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn forwards_and_counts() {
        let proxy = TcpProxy::start(upstream(100_000).await).await.unwrap();
        assert_eq!(fetch(proxy.port()).await.unwrap().len(), 100_000);
        let s = proxy.stats();
        assert_eq!(
            (s.connections, s.bytes_up, s.bytes_down, s.faults()),
            (1, 1, 100_000, 0)
        );
    }

    #[tokio::test]
    async fn resets_mid_stream_with_rst_then_heals() {
        let proxy = TcpProxy::start(upstream(100_000).await).await.unwrap();
        proxy.reset_after(30_000, 2);
        let e = fetch(proxy.port()).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
        assert_eq!(proxy.stats().bytes_down, 30_000);
        // The second reset comes with the first byte of the next answer.
        let e = fetch(proxy.port()).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
        assert_eq!(fetch(proxy.port()).await.unwrap().len(), 100_000);
        assert_eq!(proxy.stats().resets, 2);
    }

    #[tokio::test]
    async fn drops_new_connections_and_stalls_without_closing() {
        let proxy = TcpProxy::start(upstream(10).await).await.unwrap();
        proxy.drop_new(true);
        assert_eq!(fetch(proxy.port()).await.map(|b| b.len()).unwrap_or(0), 0);
        assert_eq!(proxy.stats().dropped, 1);
        proxy.drop_new(false);
        proxy.stall(true);
        let port = proxy.port();
        let pending = tokio::spawn(fetch(port));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!pending.is_finished(), "a stalled link neither answers nor closes");
        proxy.heal();
        assert_eq!(pending.await.unwrap().unwrap().len(), 10);
        assert!(proxy.stats().stalled >= 1);
        proxy.stall_after(4);
        let pending = tokio::spawn(fetch(port));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!pending.is_finished());
        assert_eq!(proxy.stats().bytes_down, 10 + 4, "stalled after 4 bytes");
        proxy.stall(false);
        assert_eq!(pending.await.unwrap().unwrap().len(), 10);
        proxy.set_delay(Duration::from_millis(200));
        let started = std::time::Instant::now();
        assert_eq!(fetch(port).await.unwrap().len(), 10);
        assert!(started.elapsed() >= Duration::from_millis(400), "delayed both ways");
    }

    #[test]
    fn ldap_requests_are_counted_by_operation_across_chunks() {
        // A search (short length), a modify of 300 bytes (long length, a
        // 2-byte message id) and an unbind, fed one byte at a time and whole.
        let search = [0x30, 0x07, 0x02, 0x01, 0x05, 0x63, 0x02, 0x04, 0x00];
        let mut modify = vec![0x30, 0x82, 0x01, 0x2c, 0x02, 0x02, 0x01, 0x00, 0x66];
        modify.resize(4 + 300, 0x66);
        let unbind = [0x30, 0x05, 0x02, 0x01, 0x07, 0x42, 0x00];
        let stream: Vec<u8> = [&search[..], &modify, &unbind, &modify].concat();
        for step in [1, 5, stream.len()] {
            let counters = LdapCounters::default();
            let mut frames = LdapFrames::default();
            for chunk in stream.chunks(step) {
                frames.feed(chunk, &counters);
            }
            let seen = counters.get();
            assert_eq!((seen.search, seen.modify, seen.other), (1, 2, 1), "step {step}");
            assert!(!frames.lost);
        }
        // Not LDAP: nothing counted.
        let (counters, mut frames) = (LdapCounters::default(), LdapFrames::default());
        frames.feed(b"GET / HTTP/1.1", &counters);
        assert_eq!(counters.get(), LdapRequests::default());
        assert!(frames.lost);
    }

    #[tokio::test]
    async fn stops_on_drop() {
        let proxy = TcpProxy::start(upstream(10).await).await.unwrap();
        let port = proxy.port();
        drop(proxy);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    }
}
