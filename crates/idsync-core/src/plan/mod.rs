//! Plans: what a run will do, each operation with its reason and field diff,
//! plus findings. Pure data: serializable, reviewable, applicable in part.

mod planner;

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

pub use planner::{GroupMembers, PlanInput, ReadMode, plan};

use crate::model::{Fields, Link, ObjectKind, TargetId};
use crate::source::Completeness;
use crate::target::{FieldChange, TargetOp};

/// The index of an operation in its plan.
pub type OpId = u32;

/// What a run will do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The profile planned for.
    pub profile: crate::model::ProfileId,
    /// Full or delta.
    pub mode: ReadMode,
    /// How the source read ended.
    pub completeness: Completeness,
    /// The operations, in the order they are applied.
    pub operations: Vec<Operation>,
    /// Situations that need a person's attention.
    pub findings: Vec<Finding>,
    /// Totals.
    pub counts: Counts,
}

/// One change to one account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// Its index in the plan (stable: the plan is deterministic).
    pub id: OpId,
    /// User or group.
    pub kind: ObjectKind,
    /// The account's link (after the operation, for a relink).
    pub link: Link,
    /// The account, when it exists already.
    pub target: Option<TargetId>,
    /// What to do.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// Operations that must succeed first (a link before its update, a
    /// create before its memberships).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<OpId>,
    /// Set when a safety check holds the operation back (deprovision
    /// threshold): it is not applied until confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

/// What an operation does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum Action {
    /// Create the account with these fields.
    Create {
        /// The mapped fields.
        fields: Fields,
    },
    /// Give an existing account this operation's link.
    Link {
        /// The link it had (another profile's, a predecessor's), if any.
        previous: Option<Link>,
    },
    /// Change mapped fields.
    Update {
        /// old → new, per field.
        changes: Vec<FieldChange>,
    },
    /// Enable the account.
    Enable,
    /// Disable the account.
    Disable,
    /// Delete the account.
    Delete,
    /// Add a member to this group.
    AddMember {
        /// The member's link.
        member: Link,
        /// The member's account, when it exists already.
        member_target: Option<TargetId>,
    },
    /// Remove a member from this group.
    RemoveMember {
        /// The member's link.
        member: Link,
        /// The member's account.
        member_target: TargetId,
    },
}

impl Action {
    /// A short name: `create`, `link`, `update`, …
    pub fn name(&self) -> &'static str {
        match self {
            Action::Create { .. } => "create",
            Action::Link { .. } => "link",
            Action::Update { .. } => "update",
            Action::Enable => "enable",
            Action::Disable => "disable",
            Action::Delete => "delete",
            Action::AddMember { .. } => "add_member",
            Action::RemoveMember { .. } => "remove_member",
        }
    }

    /// The fields the action writes, with their new values: every field
    /// of a create, the changed fields of an update (a field an update
    /// clears has no new value and is left out); none for other actions.
    pub fn written_fields(&self) -> Vec<(&String, &String)> {
        match self {
            Action::Create { fields } => fields.iter().collect(),
            Action::Update { changes } => changes
                .iter()
                .filter_map(|c| Some((&c.field, c.new.as_ref()?)))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// For people: the fields of a create (`field="value" …`) or the
    /// changes of an update (`field: "old" -> "new"; …`); `None` for other
    /// actions.
    pub fn field_detail(&self) -> Option<String> {
        match self {
            Action::Create { fields } => Some(
                fields
                    .iter()
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            Action::Update { changes } => Some(
                changes
                    .iter()
                    .map(|c| {
                        format!(
                            "{}: {:?} -> {:?}",
                            c.field,
                            c.old.as_deref().unwrap_or(""),
                            c.new.as_deref().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            _ => None,
        }
    }

    /// True for disable and delete.
    pub fn is_deprovision(&self) -> bool {
        matches!(self, Action::Disable | Action::Delete)
    }

    /// The phase the executor applies it in: links and creates, then
    /// updates and enables, then memberships, then deprovisions.
    pub fn phase(&self) -> u8 {
        match self {
            Action::Link { .. } | Action::Create { .. } => 0,
            Action::Update { .. } | Action::Enable => 1,
            Action::AddMember { .. } | Action::RemoveMember { .. } => 2,
            Action::Disable | Action::Delete => 3,
        }
    }
}

/// Why an operation is planned: the situation, named midPoint-style.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Situation {
    /// Linked, and the source changed.
    Changed,
    /// In the source with no account: created.
    Unmatched,
    /// In the source, unlinked, one soft-match candidate: adopted.
    SoftMatched,
    /// The account belonged to a retired profile named in `adopt_from`.
    AdoptedFromProfile,
    /// A rehire or re-created object: the old account follows the new id.
    Relinked,
    /// Linked, and the source disabled the object.
    SourceDisabled,
    /// Linked and disabled, and the source has it enabled.
    Reenabled,
    /// Linked, and absent from a complete read.
    Absent,
    /// Linked, and deleted in a delta.
    Deleted,
    /// Linked, and the object left the scope.
    OutOfScope,
    /// A group's members differ.
    Membership,
}

/// The reason of an operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The situation.
    pub situation: Situation,
    /// Details for people.
    pub detail: String,
}

/// A situation that needs a person: nothing (or less) was done, and why.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    /// What kind.
    pub kind: FindingKind,
    /// The source objects concerned.
    pub objects: Vec<String>,
    /// What happened.
    pub message: String,
    /// What to do about it.
    pub remedy: String,
}

/// The kinds of finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FindingKind {
    /// Several unlinked accounts match one source object.
    Ambiguous,
    /// Several source objects share a correlation key, or a new object's key
    /// matches an account linked to another id, or the source has several
    /// different objects with one external id.
    DuplicateIdentity,
    /// The object is already managed by another profile on this target.
    CrossProfileOverlap,
    /// Do Not Disable kept an account enabled.
    DoNotDisable,
    /// The target refused a deprovision.
    Vetoed,
    /// The deprovision threshold holds operations back.
    ThresholdExceeded,
    /// The read was partial: nothing is deprovisioned.
    PartialRead,
    /// The target cannot do what the rules ask (disable groups, delete).
    Unsupported,
    /// Two accounts carry the same link.
    DuplicateLink,
}

/// Totals of a plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Source objects in scope.
    pub in_scope: usize,
    /// Accounts linked to the profile before the run.
    pub linked: usize,
    /// Linked and unchanged.
    pub unchanged: usize,
    /// Creates.
    pub create: usize,
    /// Links (adoptions, relinks).
    pub link: usize,
    /// Updates.
    pub update: usize,
    /// Enables.
    pub enable: usize,
    /// Disables.
    pub disable: usize,
    /// Deletes.
    pub delete: usize,
    /// Member adds.
    pub add_member: usize,
    /// Member removes.
    pub remove_member: usize,
    /// Operations held back.
    pub held: usize,
}

impl Counts {
    fn of(operations: &[Operation], in_scope: usize, linked: usize, unchanged: usize) -> Counts {
        let mut c = Counts {
            in_scope,
            linked,
            unchanged,
            ..Counts::default()
        };
        for op in operations {
            let n = match op.action {
                Action::Create { .. } => &mut c.create,
                Action::Link { .. } => &mut c.link,
                Action::Update { .. } => &mut c.update,
                Action::Enable => &mut c.enable,
                Action::Disable => &mut c.disable,
                Action::Delete => &mut c.delete,
                Action::AddMember { .. } => &mut c.add_member,
                Action::RemoveMember { .. } => &mut c.remove_member,
            };
            *n += 1;
            if op.held.is_some() {
                c.held += 1;
            }
        }
        c
    }
}

impl Operation {
    /// The target operation that carries this one out, with the accounts
    /// created earlier in the same apply (by link) filled in; or why it
    /// cannot be carried out (an account it needs does not exist).
    pub fn target_op(&self, created: &HashMap<Link, TargetId>) -> Result<TargetOp, String> {
        let this = || {
            self.target
                .clone()
                .or_else(|| created.get(&self.link).cloned())
                .ok_or_else(|| format!("the account of {} does not exist", self.link))
        };
        Ok(match &self.action {
            Action::Create { fields } => TargetOp::Create {
                kind: self.kind,
                link: self.link.clone(),
                fields: fields.clone(),
            },
            Action::Link { .. } => TargetOp::SetLink {
                target: this()?,
                kind: self.kind,
                link: self.link.clone(),
            },
            Action::Update { changes } => TargetOp::Update {
                target: this()?,
                kind: self.kind,
                changes: changes.clone(),
            },
            Action::Enable => TargetOp::SetEnabled {
                target: this()?,
                kind: self.kind,
                enabled: true,
            },
            Action::Disable => TargetOp::SetEnabled {
                target: this()?,
                kind: self.kind,
                enabled: false,
            },
            Action::Delete => TargetOp::Delete {
                target: this()?,
                kind: self.kind,
            },
            Action::AddMember { member, member_target } => TargetOp::AddMember {
                group: this()?,
                member: member_target
                    .clone()
                    .or_else(|| created.get(member).cloned())
                    .ok_or_else(|| format!("the account of member {member} does not exist"))?,
            },
            Action::RemoveMember { member_target, .. } => TargetOp::RemoveMember {
                group: this()?,
                member: member_target.clone(),
            },
        })
    }

    /// The column titles matching [`Operation::row`].
    pub const HEADER: &'static str =
        "   #  action        kind   external id                             situation        details";

    /// One line for a table: id, action, kind, external id, situation and
    /// the details (fields of a create, old -> new of an update).
    pub fn row(&self) -> String {
        let target = self.target.as_ref().map_or("?", |t| t.0.as_str());
        let detail = match &self.action {
            Action::Create { .. } | Action::Update { .. } => self.action.field_detail().unwrap_or_default(),
            Action::Link { previous: Some(p) } => format!("account {target} moves from {p}"),
            Action::Link { previous: None } => format!("adopts account {target}"),
            Action::AddMember { member, .. } | Action::RemoveMember { member, .. } => {
                format!("member {}", member.external)
            }
            _ => self.reason.detail.clone(),
        };
        let held = if self.held.is_some() { " [HELD]" } else { "" };
        format!(
            "{:>4}  {:<13} {:<5}  {:<38}  {:<16} {detail}{held}",
            self.id,
            self.action.name(),
            self.kind.to_string(),
            self.link.external.0,
            format!("{:?}", self.reason.situation),
        )
    }
}

impl Plan {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// The plan reduced to the chosen operations (an operator approving part
    /// of a reviewed plan). An operation whose prerequisite is not chosen
    /// stays, and the executor skips it, saying why.
    pub fn select(&self, ids: &BTreeSet<OpId>) -> Plan {
        let mut plan = self.clone();
        plan.operations.retain(|op| ids.contains(&op.id));
        plan.counts = Counts::of(
            &plan.operations,
            self.counts.in_scope,
            self.counts.linked,
            self.counts.unchanged,
        );
        plan
    }

    /// Releases the operations held by the threshold (an operator confirmed).
    pub fn confirm(&mut self) {
        for op in &mut self.operations {
            op.held = None;
        }
        self.counts.held = 0;
    }

    /// Drops a deprovision the target vetoed, recording the reason.
    pub fn veto(&mut self, id: OpId, reason: &str) {
        if let Some(pos) = self.operations.iter().position(|op| op.id == id) {
            let op = self.operations.remove(pos);
            self.findings.push(Finding {
                kind: FindingKind::Vetoed,
                objects: vec![op.link.external.0.clone()],
                message: format!(
                    "the target refused to {} {} {}: {reason}",
                    op.action.name(),
                    op.kind,
                    op.target.as_ref().map(|t| t.0.as_str()).unwrap_or("?")
                ),
                remedy:
                    "resolve the target's reason (e.g. close or reassign the user's tickets); the next run tries again"
                        .into(),
            });
            self.findings.sort();
            self.counts = Counts::of(
                &self.operations,
                self.counts.in_scope,
                self.counts.linked,
                self.counts.unchanged,
            );
        }
    }

    /// The plan as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

impl fmt::Display for Plan {
    /// A readable table: one line per operation, then the findings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "plan for profile {} ({:?} read, {})",
            self.profile,
            self.mode,
            match &self.completeness {
                Completeness::Complete => "complete".to_owned(),
                Completeness::Partial { reason } => format!("PARTIAL: {reason}"),
            }
        )?;
        if self.operations.is_empty() {
            writeln!(f, "  nothing to do")?;
        } else {
            writeln!(f, "  {}", Operation::HEADER)?;
        }
        for op in &self.operations {
            writeln!(f, "  {}", op.row())?;
        }
        for finding in &self.findings {
            writeln!(f, "  ! {:?}: {} ({})", finding.kind, finding.message, finding.remedy)?;
        }
        writeln!(f, "  {}", self.counts)
    }
}

impl fmt::Display for Counts {
    /// One line: in scope, linked, unchanged, then each kind of operation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self;
        write!(
            f,
            "{} in scope, {} linked, {} unchanged: {} create, {} link, {} update, {} enable, {} disable, {} delete, {} member add, {} member remove, {} held",
            c.in_scope,
            c.linked,
            c.unchanged,
            c.create,
            c.link,
            c.update,
            c.enable,
            c.disable,
            c.delete,
            c.add_member,
            c.remove_member,
            c.held
        )
    }
}
