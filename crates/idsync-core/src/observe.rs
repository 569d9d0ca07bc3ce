//! Observers: progress, notifications and metrics hook into a run here.

use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::plan::{Operation, Plan, ReadMode};
use crate::report::RunReport;

/// Something that happened during a run.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A run started.
    RunStarted {
        /// Full or delta.
        mode: ReadMode,
    },
    /// The source read ended with this many objects.
    SourceRead {
        /// Objects read.
        objects: usize,
    },
    /// The plan is ready.
    Planned {
        /// The plan.
        plan: &'a Plan,
    },
    /// An operation was applied.
    OperationApplied {
        /// The operation.
        op: &'a Operation,
        /// What the target said.
        note: Option<&'a str>,
    },
    /// An operation failed (after its retries).
    OperationFailed {
        /// The operation.
        op: &'a Operation,
        /// The error.
        error: &'a Error,
    },
    /// The run finished (perhaps with failed operations).
    RunFinished {
        /// The report.
        report: &'a RunReport,
    },
    /// The run failed before or while applying.
    RunFailed {
        /// The error.
        error: &'a Error,
    },
}

/// Receives events. Called inline: keep it quick, hand long work off.
pub trait Observer: Send + Sync {
    /// One event.
    fn on_event(&self, event: &Event<'_>);
}

/// The observers of an engine.
#[derive(Clone, Default)]
pub(crate) struct Observers(pub(crate) Vec<Arc<dyn Observer>>);

impl Observers {
    pub(crate) fn emit(&self, event: &Event<'_>) {
        for o in &self.0 {
            o.on_event(event);
        }
    }
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} observer(s)", self.0.len())
    }
}
