//! Durations written by people: in the profile file and on the command line.

use std::time::Duration;

/// Parses "30m", "1h 30m", "45s".
pub(crate) fn parse_duration(what: &str, s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{what}: {s:?} is not a duration like \"30m\" or \"1h\": {e}"))
}
