//! Stopping a run from outside it: a lost lease, a SIGTERM.

use std::sync::{Arc, Mutex};

/// A flag that an embedding program raises to stop a run.
///
/// The engine checks it before each batch of operations it applies: the
/// operation in hand finishes, the rest are skipped (and retried next run),
/// the delta cursor stays where it was, and the run ends
/// [stopped](crate::report::RunOutcome::Stopped) with the reason given.
/// Clones share the flag.
///
/// ```
/// use idsync_core::StopSignal;
/// let stop = StopSignal::new();
/// let seen_by_the_engine = stop.clone();
/// stop.stop("the lease was lost");
/// assert_eq!(seen_by_the_engine.reason().as_deref(), Some("the lease was lost"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct StopSignal(Arc<Mutex<Option<String>>>);

impl StopSignal {
    /// A flag not raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the flag. The first reason given is kept.
    pub fn stop(&self, reason: impl Into<String>) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert_with(|| reason.into());
    }

    /// Why the run must stop, once the flag is raised.
    pub fn reason(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// True once the flag is raised.
    pub fn is_stopped(&self) -> bool {
        self.0.lock().map(|s| s.is_some()).unwrap_or(true)
    }
}
