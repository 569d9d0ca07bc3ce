//! The rules of a profile, decided once: what deprovisioning does to an
//! account and what becomes of a duplicate identity. The planner asks
//! these, and so does everything that plans (the SCIM service provider
//! plans each request as a one-object plan), so that no caller keeps a
//! second copy of a rule. Whether a kind can be disabled is
//! [`TargetCapabilities::can_disable`]; whether an object is in scope,
//! [`Scope::admits`](crate::Scope::admits) and
//! [`Scope::kind_in_scope`](crate::Scope::kind_in_scope).

use crate::model::ObjectKind;
use crate::plan::FindingKind;
use crate::profile::{Deprovision, DuplicatePolicy, Rules};
use crate::target::TargetCapabilities;

/// What the rules make of an account that a deprovision (or a disable)
/// concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Disable the account.
    Disable,
    /// Delete the account.
    Delete,
    /// Nothing to do: the rule is `leave`, or the account is disabled already.
    Nothing,
    /// Keep the account as it is, and say why in a finding.
    Keep(Why),
}

/// Why the rules keep an account: the finding to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Why {
    /// The kind of finding.
    pub kind: FindingKind,
    /// What happened, for people.
    pub message: &'static str,
    /// What to do about it.
    pub remedy: &'static str,
}

/// What deprovisioning an account of `kind` (gone from the source, deleted,
/// out of scope) means under `rules` on a target that can do `caps`:
/// disable by default, delete only by opt-in, leave; never under Do Not
/// Disable; never what the target cannot do (a profile that deletes, on a
/// target that cannot, leaves the account and says so).
pub fn deprovision(rules: &Rules, caps: &TargetCapabilities, kind: ObjectKind, enabled: bool) -> Decision {
    match rules.deprovision {
        Deprovision::Leave => Decision::Nothing,
        Deprovision::Disable => disable(rules, caps, kind, enabled),
        Deprovision::Delete if rules.do_not_disable => Decision::Keep(Why {
            kind: FindingKind::DoNotDisable,
            message: "accounts gone from the source are kept because the profile has Do Not Disable",
            remedy: "clear do_not_disable if these accounts should be deprovisioned",
        }),
        Deprovision::Delete if !caps.delete => Decision::Keep(Why {
            kind: FindingKind::Unsupported,
            message: "the profile deletes gone accounts but the target cannot delete; they are left",
            remedy: "use deprovision = \"disable\" for this target",
        }),
        Deprovision::Delete => Decision::Delete,
    }
}

/// What disabling an account of `kind` (its source object is disabled, or
/// the profile deprovisions by disabling) means under `rules` on a target
/// that can do `caps`.
pub fn disable(rules: &Rules, caps: &TargetCapabilities, kind: ObjectKind, enabled: bool) -> Decision {
    if !enabled {
        Decision::Nothing
    } else if rules.do_not_disable {
        Decision::Keep(Why {
            kind: FindingKind::DoNotDisable,
            message: "accounts are kept enabled because the profile has Do Not Disable",
            remedy: "clear do_not_disable if these accounts should be disabled",
        })
    } else if !caps.can_disable(kind) {
        Decision::Keep(Why {
            kind: FindingKind::Unsupported,
            message: "the target cannot disable these accounts; they are left enabled",
            remedy: "use deprovision = \"delete\" (opt-in) or \"leave\" for this target",
        })
    } else {
        Decision::Disable
    }
}

/// Whether a new object whose correlation key other objects share is
/// provisioned. `others_present`: some of them are still in scope (not
/// only gone predecessors, which never stop a new account). The policy
/// `relink` provisions nothing here: its link moves happen before, when
/// the old object is gone or named in the new one's aliases.
pub fn provision_duplicate(policy: DuplicatePolicy, others_present: bool) -> bool {
    !others_present || policy == DuplicatePolicy::Report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(deprovision: Deprovision, do_not_disable: bool) -> Rules {
        Rules {
            deprovision,
            do_not_disable,
            ..Rules::default()
        }
    }

    fn caps(disable: bool, delete: bool) -> TargetCapabilities {
        TargetCapabilities::default().with_disable(disable).with_delete(delete)
    }

    #[test]
    fn deprovisioning_follows_the_rule_the_flag_and_the_target() {
        use Decision::{Delete, Disable, Nothing};
        let kept = |d: Decision| match d {
            Decision::Keep(why) => Some(why.kind),
            _ => None,
        };
        let user = ObjectKind::User;
        assert_eq!(
            deprovision(&rules(Deprovision::Disable, false), &caps(true, true), user, true),
            Disable
        );
        assert_eq!(
            deprovision(&rules(Deprovision::Disable, false), &caps(true, true), user, false),
            Nothing
        );
        assert_eq!(
            deprovision(&rules(Deprovision::Delete, false), &caps(true, true), user, false),
            Delete
        );
        assert_eq!(
            deprovision(&rules(Deprovision::Leave, true), &caps(true, true), user, true),
            Nothing
        );
        for rule in [Deprovision::Disable, Deprovision::Delete] {
            let d = deprovision(&rules(rule, true), &caps(true, true), user, true);
            assert_eq!(kept(d), Some(FindingKind::DoNotDisable), "{rule:?}");
        }
        // a profile that deletes, on a target that cannot delete: left, never disabled instead
        let d = deprovision(&rules(Deprovision::Delete, false), &caps(true, false), user, true);
        assert_eq!(kept(d), Some(FindingKind::Unsupported));
        let d = deprovision(&rules(Deprovision::Disable, false), &caps(false, true), user, true);
        assert_eq!(kept(d), Some(FindingKind::Unsupported));
        let d = deprovision(
            &rules(Deprovision::Disable, false),
            &caps(true, true),
            ObjectKind::Group,
            true,
        );
        assert_eq!(kept(d), Some(FindingKind::Unsupported), "disable_groups is off");
    }

    #[test]
    fn a_duplicate_is_provisioned_when_only_predecessors_share_its_key_or_the_policy_reports() {
        for policy in [DuplicatePolicy::Report, DuplicatePolicy::Skip, DuplicatePolicy::Relink] {
            assert!(provision_duplicate(policy, false));
            assert_eq!(provision_duplicate(policy, true), policy == DuplicatePolicy::Report);
        }
    }
}
