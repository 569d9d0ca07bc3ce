//! Captures everything logged (tracing events at TRACE and `log` records)
//! into memory, for tests that check what is logged and what never is
//! (secrets).
//!
//! The capture is the process's global subscriber, installed on first use:
//! it sees every thread, so the text of concurrent tests is interleaved.
//! Give each test its own secret and assert on that.
//!
//! ```no_run
//! let logs = idsync_testkit::logs::capture();
//! tracing::warn!("hello");
//! assert!(logs.text().contains("hello"));
//! ```

use std::io;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tracing_subscriber::fmt::MakeWriter;

/// The captured log text, shared by every [`capture`] of the process.
#[derive(Clone, Debug, Default)]
pub struct Logs {
    buf: Arc<Mutex<Vec<u8>>>,
}

impl Logs {
    /// Everything logged so far (by every test of this process).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }

    /// Panics, naming the line, when `secret` occurs in the logs.
    pub fn assert_never_contains(&self, secret: &str) {
        let text = self.text();
        if let Some(line) = text.lines().find(|l| l.contains(secret)) {
            panic!("a secret was logged: {line}");
        }
    }
}

/// Panics unless `secret` is absent from every channel, naming the
/// channel and the line: `channels` pairs a name ("report JSON", "error
/// Debug") with the text that channel produced.
pub fn assert_no_secret(secret: &str, channels: &[(&str, String)]) {
    assert!(!secret.is_empty(), "an empty secret proves nothing");
    for (channel, text) in channels {
        if let Some(line) = text.lines().find(|l| l.contains(secret)) {
            panic!("the secret leaks into the {channel}: {line}");
        }
    }
}

impl io::Write for Logs {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

/// Installs (once) a global TRACE-level subscriber that writes into memory
/// and returns its buffer. Panics if another global subscriber was set.
pub fn capture() -> Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let installed = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(logs.clone())
            .try_init();
        if let Err(e) = installed {
            panic!("cannot capture logs: another global subscriber is set: {e}");
        }
        logs
    })
    .clone()
}
