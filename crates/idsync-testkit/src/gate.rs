//! Skip-or-fail gating for tests that need a real server.

use std::fmt;

/// Why a test server could not be started.
#[derive(Debug)]
pub struct StartError(pub String);

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

impl From<std::io::Error> for StartError {
    fn from(e: std::io::Error) -> Self {
        StartError(e.to_string())
    }
}

/// True when `IDSYNC_REQUIRE_SERVERS=1`: a missing server is a failure.
pub fn require_servers() -> bool {
    std::env::var("IDSYNC_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

/// Turns a server start into `Some(server)`, or `None` (the test skips)
/// when the server is unavailable, unless servers are required, in which
/// case it panics with the reason.
pub fn gate<T>(what: &str, started: Result<T, StartError>) -> Option<T> {
    match started {
        Ok(server) => Some(server),
        Err(e) if require_servers() => panic!("{what} is required (IDSYNC_REQUIRE_SERVERS=1): {e}"),
        Err(e) => {
            eprintln!("skipping: {what} unavailable: {e}");
            None
        }
    }
}
