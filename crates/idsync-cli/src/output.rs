//! What the binary prints: plans and reports as coloured tables (plain when
//! not a terminal), and progress bars on long reads and applies.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

use anstyle::{AnsiColor, Style};
use idsync::plan::{Action, Operation, Plan};
use idsync::{Event, ExternalId, Observer, RunReport};
use indicatif::{ProgressBar, ProgressStyle};

/// Standard output, with colours only on a terminal.
pub(crate) struct Out(anstream::AutoStream<std::io::Stdout>);

const BOLD: Style = Style::new().bold();
const GREEN: Style = AnsiColor::Green.on_default();
const YELLOW: Style = AnsiColor::Yellow.on_default();
const RED: Style = AnsiColor::Red.on_default();
const CYAN: Style = AnsiColor::Cyan.on_default();

impl Out {
    /// Standard output.
    pub(crate) fn new() -> Self {
        Out(anstream::stdout())
    }

    /// A plain line.
    pub(crate) fn line(&mut self, text: &str) {
        let _ = writeln!(self.0, "{text}");
    }

    /// A check that passed.
    pub(crate) fn ok(&mut self, text: &str) {
        let _ = writeln!(self.0, "{GREEN}ok{GREEN:#} {text}");
    }

    /// A plan as a table, its findings and totals; `names` (by external
    /// id) name the objects beside their ids.
    pub(crate) fn plan(&mut self, plan: &Plan, read_errors: &[String], names: &BTreeMap<ExternalId, String>) {
        let read = match &plan.completeness {
            idsync::Completeness::Complete => format!("{:?} read, complete", plan.mode),
            idsync::Completeness::Partial { reason } => {
                format!("{:?} read, {RED}PARTIAL{RED:#}: {reason}", plan.mode)
            }
        };
        let _ = writeln!(self.0, "{BOLD}plan for profile {}{BOLD:#} ({read})", plan.profile);
        for e in read_errors {
            let _ = writeln!(self.0, "  {RED}read error{RED:#} {e}");
        }
        if plan.operations.is_empty() {
            let _ = writeln!(self.0, "  nothing to do");
        } else {
            let _ = writeln!(self.0, "{BOLD}  {HEADER}{BOLD:#}");
        }
        for op in &plan.operations {
            let style = match op.action {
                Action::Create { .. } | Action::Enable | Action::AddMember { .. } => GREEN,
                Action::Update { .. } | Action::Link { .. } => YELLOW,
                Action::Disable | Action::Delete | Action::RemoveMember { .. } => RED,
                _ => YELLOW,
            };
            let _ = writeln!(self.0, "  {style}{}{style:#}", row(op, names));
        }
        for f in &plan.findings {
            let _ = writeln!(self.0, "  {CYAN}! {:?}{CYAN:#}: {} ({})", f.kind, f.message, f.remedy);
        }
        let _ = writeln!(self.0, "  {}", plan.counts);
    }

    /// A run's report: its plan, the failures and the outcome.
    pub(crate) fn report(&mut self, report: &RunReport, names: &BTreeMap<ExternalId, String>) {
        self.plan(&report.plan, &report.read_errors, names);
        for o in report.failures() {
            let _ = writeln!(
                self.0,
                "  {RED}failed{RED:#} #{} {} {}: {:?}",
                o.op, o.action, o.link.external, o.status
            );
        }
        // What the target said of an operation it applied (e.g. an AD
        // account left disabled until it has a password).
        for o in report.outcomes.iter().filter(|o| o.note.is_some()) {
            let note = o.note.as_deref().unwrap_or_default();
            let _ = writeln!(
                self.0,
                "  {YELLOW}note{YELLOW:#} #{} {} {}: {note}",
                o.op, o.action, o.link.external
            );
        }
        // "Succeeded: " only for a complete read: schedulers grep for it.
        let partial = crate::partial_read(report);
        let outcome = match (&report.outcome, partial) {
            (idsync::report::RunOutcome::Succeeded, Some(_)) => "Partial read".to_owned(),
            (outcome, _) => format!("{outcome:?}"),
        };
        let _ = writeln!(
            self.0,
            "{BOLD}{outcome}{BOLD:#}: {} applied, {} failed in {} ms (read {} ms, apply {} ms){}{}",
            report.applied(),
            report.failures().count(),
            report.duration_ms,
            report.read_ms,
            report.apply_ms,
            if report.cursor_saved {
                ""
            } else {
                "; the cursor did not move"
            },
            partial
                .map(|reason| format!("; {RED}the read was partial, deprovisions were spared{RED:#}: {reason}"))
                .unwrap_or_default()
        );
    }
}

/// The column titles of [`row`].
const HEADER: &str = "   #  action        kind   object                                    situation        details";

/// `name (external id)`, or the external id when no name is known.
fn named(id: &ExternalId, names: &BTreeMap<ExternalId, String>) -> String {
    match names.get(id) {
        Some(name) => format!("{name} ({id})"),
        None => id.0.clone(),
    }
}

/// One line of a plan table: id, action, kind, the object (its name and
/// external id; for a membership change, the group), the situation and
/// the details (a create's fields, an update's old -> new, the member
/// added or removed, by name and id).
fn row(op: &Operation, names: &BTreeMap<ExternalId, String>) -> String {
    let detail = match &op.action {
        Action::AddMember { member, .. } | Action::RemoveMember { member, .. } => {
            format!("member {}", named(&member.external, names))
        }
        _ => {
            // The core's row ends with the details: keep its wording.
            let core = op.row();
            let situation = format!("{:?}", op.reason.situation);
            core.split_once(&format!(" {situation:<16} "))
                .map(|(_, d)| d.to_owned())
                .unwrap_or_default()
        }
    };
    let detail = detail.trim_end_matches(" [HELD]");
    let held = if op.held.is_some() { " [HELD]" } else { "" };
    format!(
        "{:>4}  {:<13} {:<5}  {:<40}  {:<16} {detail}{held}",
        op.id,
        op.action.name(),
        op.kind.to_string(),
        named(&op.link.external, names),
        format!("{:?}", op.reason.situation),
    )
}

/// Progress bars on standard error (hidden when it is not a terminal).
pub(crate) struct Progress(Mutex<Option<ProgressBar>>);

impl Progress {
    /// No bar yet.
    pub(crate) fn new() -> Self {
        Progress(Mutex::new(None))
    }

    fn with(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        if let Ok(mut bar) = self.0.lock() {
            f(&mut bar);
        }
    }
}

impl Observer for Progress {
    fn on_event(&self, event: &Event<'_>) {
        match event {
            Event::RunStarted { mode } => self.with(|bar| {
                let b = ProgressBar::new_spinner().with_message(format!("reading the source ({mode:?})"));
                b.enable_steady_tick(std::time::Duration::from_millis(120));
                *bar = Some(b);
            }),
            Event::SourceRead { objects } => self.with(|bar| {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                tracing::info!(objects, "source read");
            }),
            Event::Planned { plan } => self.with(|bar| {
                let b = ProgressBar::new(plan.operations.len() as u64);
                if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} operations {msg}") {
                    b.set_style(style);
                }
                *bar = Some(b);
            }),
            Event::OperationApplied { .. } | Event::OperationFailed { .. } => self.with(|bar| {
                if let Some(b) = bar {
                    b.inc(1);
                }
            }),
            Event::RunFinished { .. } | Event::RunFailed { .. } => self.with(|bar| {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
            }),
            _ => {}
        }
    }
}
