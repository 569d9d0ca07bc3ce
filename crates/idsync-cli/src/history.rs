//! Past run reports, one JSON document per line beside the state: the
//! per-user provisioning history of seed 002.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use idsync_core::{ProfileId, RunReport};

/// The history file of a profile.
pub fn path(state_dir: &Path, profile: ProfileId) -> PathBuf {
    state_dir.join(format!("{profile}.history.jsonl"))
}

/// Appends a report.
pub fn record(state_dir: &Path, report: &RunReport) -> Result<(), String> {
    let path = path(state_dir, report.profile);
    let line = serde_json::to_string(report).map_err(|e| e.to_string())?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(f, "{line}").map_err(|e| format!("{}: {e}", path.display()))
}

/// The reports, oldest first. Lines that do not parse are skipped with a warning.
pub fn read(state_dir: &Path, profile: ProfileId) -> Result<Vec<RunReport>, String> {
    let path = path(state_dir, profile);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        match serde_json::from_str(&line) {
            Ok(r) => out.push(r),
            Err(e) => tracing::warn!(file = %path.display(), line = n + 1, error = %e, "skipping a history line"),
        }
    }
    Ok(out)
}
