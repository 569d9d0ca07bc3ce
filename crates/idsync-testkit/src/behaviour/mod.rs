//! The shared behaviour suites: free functions over `&dyn Target` and
//! `&dyn Source` that every adapter's tests call against its real server,
//! and that the in-memory backends pass in plain `cargo test`. Vendors can
//! run them on their own `Target`.
//!
//! Each check runs on its own names (a per-run prefix and profile id), so
//! suites can share one server. Checks a backend's capabilities rule out
//! are listed as skipped, with the reason.

pub mod source;
pub mod target;

use std::fmt;
use std::future::Future;

/// The outcome of a suite: passed, failed and skipped checks.
#[derive(Debug, Default)]
pub struct Report {
    /// The backend tested.
    pub backend: String,
    /// Checks that passed.
    pub passed: Vec<&'static str>,
    /// Checks that failed, with what went wrong.
    pub failed: Vec<(&'static str, String)>,
    /// Checks not run, with why.
    pub skipped: Vec<(&'static str, &'static str)>,
}

impl Report {
    /// An empty report for `backend`.
    pub fn new(backend: &str) -> Self {
        Report {
            backend: backend.to_owned(),
            ..Report::default()
        }
    }

    /// Runs one check.
    pub async fn check(&mut self, name: &'static str, check: impl Future<Output = Result<(), String>>) {
        match check.await {
            Ok(()) => self.passed.push(name),
            Err(e) => self.failed.push((name, e)),
        }
    }

    /// Runs one check when `enabled`, else records it as skipped for `why`.
    pub async fn check_if(
        &mut self,
        enabled: bool,
        why: &'static str,
        name: &'static str,
        check: impl Future<Output = Result<(), String>>,
    ) {
        if enabled {
            self.check(name, check).await;
        } else {
            self.skipped.push((name, why));
        }
    }

    /// Panics with every failure when any check failed.
    pub fn assert_ok(&self) {
        assert!(self.failed.is_empty(), "{self}");
        assert!(!self.passed.is_empty(), "no check ran for {}", self.backend);
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "behaviour of {}: {} passed, {} failed, {} skipped",
            self.backend,
            self.passed.len(),
            self.failed.len(),
            self.skipped.len()
        )?;
        for (name, e) in &self.failed {
            writeln!(f, "  FAILED {name}: {e}")?;
        }
        for (name, why) in &self.skipped {
            writeln!(f, "  skipped {name}: {why}")?;
        }
        Ok(())
    }
}

/// `Err` with a message unless `cond`.
pub(crate) fn ensure(cond: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(message()) }
}

/// Turns an idsync error into a check failure naming the step.
pub(crate) fn step<T>(what: &str, r: idsync_core::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}
