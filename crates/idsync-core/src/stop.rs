//! Stopping a run from outside it: a lost lease, a SIGTERM.

use std::sync::{Arc, Mutex};
use std::time::Instant;

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
pub struct StopSignal(Arc<Mutex<Flag>>);

#[derive(Debug, Default)]
struct Flag {
    /// Raised, and why.
    raised: Option<String>,
    /// Raised by itself at this instant, unless moved on first.
    deadline: Option<(Instant, String)>,
}

impl StopSignal {
    /// A flag not raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the flag. The first reason given is kept.
    pub fn stop(&self, reason: impl Into<String>) {
        let mut flag = self.0.lock().unwrap_or_else(|p| p.into_inner());
        flag.raised.get_or_insert_with(|| reason.into());
    }

    /// Raises the flag at `deadline` unless this is called again with a
    /// later one first: a lease renewed until then. A process frozen past
    /// its deadline (SIGSTOP, a suspended VM) sees the flag raised the
    /// moment it runs again, before any other task of its own could say so.
    pub fn stop_at(&self, deadline: Instant, reason: impl Into<String>) {
        let mut flag = self.0.lock().unwrap_or_else(|p| p.into_inner());
        flag.deadline = Some((deadline, reason.into()));
    }

    /// Why the run must stop, once the flag is raised.
    pub fn reason(&self) -> Option<String> {
        let flag = self.0.lock().unwrap_or_else(|p| p.into_inner());
        flag.raised.clone().or_else(|| {
            flag.deadline
                .as_ref()
                .filter(|(at, _)| Instant::now() >= *at)
                .map(|(_, why)| why.clone())
        })
    }

    /// True once the flag is raised.
    pub fn is_stopped(&self) -> bool {
        self.reason().is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_deadline_raises_the_flag_unless_it_is_moved_on() {
        let stop = StopSignal::new();
        let now = Instant::now();
        stop.stop_at(now + Duration::from_secs(60), "lease expired");
        assert!(!stop.is_stopped());
        stop.stop_at(now, "lease expired");
        assert_eq!(stop.reason().as_deref(), Some("lease expired"));
        stop.stop("lost");
        assert_eq!(stop.reason().as_deref(), Some("lost"), "a raised flag wins");
    }
}
