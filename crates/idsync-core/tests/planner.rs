//! One test per situation and rule of the planner (DESIGN.md's table).
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use idsync_core::plan::{Action, FindingKind, Plan, PlanInput, ReadMode, Situation, plan};
use idsync_core::profile::{Correlation, Deprovision, DuplicatePolicy, OutOfScope, Threshold};
use idsync_core::{
    Completeness, ExternalId, FieldChange, Link, ObjectKind, Profile, ProfileId, SourceObject, TargetAccount,
    TargetCapabilities, TargetId,
};

fn profile() -> Profile {
    serde_json::from_value(serde_json::json!({
        "id": "11111111-1111-4111-8111-111111111111",
        "name": "test",
        "mapping": {
            "users": [
                {"field": "name", "template": "{givenName} {sn}"},
                {"field": "email", "attribute": "mail", "transforms": ["lowercase"]},
                {"field": "employee", "attribute": "employeeID"}
            ],
            "groups": [{"field": "name", "attribute": "cn"}]
        }
    }))
    .unwrap()
}

fn all_caps() -> TargetCapabilities {
    TargetCapabilities::default()
        .with_groups(true)
        .with_disable(true)
        .with_disable_groups(true)
        .with_delete(true)
        .with_veto(false)
}

fn user(id: &str, given: &str, sn: &str, employee: &str) -> SourceObject {
    SourceObject::new(id, ObjectKind::User)
        .in_container("OU=Staff,DC=acme,DC=test")
        .with("givenName", given)
        .with("sn", sn)
        .with("mail", format!("{given}.{sn}@Acme.test"))
        .with("employeeID", employee)
}

fn group(id: &str, cn: &str, members: &[&str]) -> SourceObject {
    let mut g = SourceObject::new(id, ObjectKind::Group)
        .in_container("OU=Groups,DC=acme,DC=test")
        .with("cn", cn);
    for m in members {
        g = g.with_member(*m);
    }
    g
}

/// The account a previous run made for `o`.
fn account_for(p: &Profile, target: &str, o: &SourceObject) -> TargetAccount {
    TargetAccount {
        id: TargetId::from(target),
        link: Some(Link {
            profile: p.id,
            external: o.id.clone(),
        }),
        kind: o.kind,
        fields: p.mapping.fields(o),
        enabled: true,
        members: Vec::new(),
    }
}

struct Case<'a> {
    profile: &'a Profile,
    caps: TargetCapabilities,
    mode: ReadMode,
    completeness: Completeness,
    objects: Vec<SourceObject>,
    deleted: Vec<ExternalId>,
    linked: Vec<TargetAccount>,
    candidates: Vec<TargetAccount>,
    confirmed: bool,
}

impl<'a> Case<'a> {
    fn new(profile: &'a Profile) -> Self {
        Case {
            profile,
            caps: all_caps(),
            mode: ReadMode::Full,
            completeness: Completeness::Complete,
            objects: vec![],
            deleted: vec![],
            linked: vec![],
            candidates: vec![],
            confirmed: false,
        }
    }

    fn plan(&self) -> Plan {
        plan(PlanInput {
            profile: self.profile,
            capabilities: self.caps,
            mode: self.mode,
            completeness: &self.completeness,
            objects: &self.objects,
            deleted: &self.deleted,
            linked: &self.linked,
            linked_total: self.linked.len(),
            candidates: &self.candidates,
            assigned: None,
            unread_groups: &[],
            gone: &Default::default(),
            confirmed: self.confirmed,
        })
    }
}

fn actions(plan: &Plan) -> Vec<(String, String, Situation)> {
    plan.operations
        .iter()
        .map(|op| {
            (
                op.action.name().to_owned(),
                op.link.external.0.clone(),
                op.reason.situation,
            )
        })
        .collect()
}

fn act(name: &str, id: &str, s: Situation) -> (String, String, Situation) {
    (name.to_owned(), id.to_owned(), s)
}

#[test]
fn linked_and_unchanged_is_nothing() {
    let p = profile();
    let ann = user("a1", "Ann", "Lee", "E1");
    let mut case = Case::new(&p);
    case.linked = vec![account_for(&p, "t1", &ann)];
    case.objects = vec![ann];
    let plan = case.plan();
    assert!(plan.is_empty(), "{plan}");
    assert_eq!(
        (plan.counts.unchanged, plan.counts.linked, plan.counts.in_scope),
        (1, 1, 1)
    );
}

#[test]
fn linked_and_changed_updates_only_the_mapped_fields_that_differ() {
    let p = profile();
    let ann = user("a1", "Ann", "Lee", "E1");
    let mut account = account_for(&p, "t1", &ann);
    account.fields.insert("notes".into(), "made by hand".into());
    let mut case = Case::new(&p);
    case.linked = vec![account];
    case.objects = vec![user("a1", "Ann", "Smith", "E1")];
    let plan = case.plan();
    assert_eq!(actions(&plan), vec![act("update", "a1", Situation::Changed)]);
    assert_eq!(
        plan.operations[0].action,
        Action::Update {
            changes: vec![
                FieldChange {
                    field: "name".into(),
                    old: Some("Ann Lee".into()),
                    new: Some("Ann Smith".into())
                },
                FieldChange {
                    field: "email".into(),
                    old: Some("ann.lee@acme.test".into()),
                    new: Some("ann.smith@acme.test".into())
                },
            ]
        }
    );
    assert_eq!(plan.operations[0].target, Some(TargetId::from("t1")));
}

#[test]
fn unmatched_is_created_with_its_mapped_fields() {
    let p = profile();
    let mut case = Case::new(&p);
    case.objects = vec![user("a1", "Ann", "Lee", "E1")];
    let plan = case.plan();
    assert_eq!(actions(&plan), vec![act("create", "a1", Situation::Unmatched)]);
    let Action::Create { fields } = &plan.operations[0].action else {
        panic!()
    };
    assert_eq!(fields.get("name").map(String::as_str), Some("Ann Lee"));
    assert_eq!(fields.get("email").map(String::as_str), Some("ann.lee@acme.test"));
    assert_eq!(
        plan.operations[0].link,
        Link {
            profile: p.id,
            external: "a1".into()
        }
    );
}

#[test]
fn a_disabled_object_without_an_account_is_not_created() {
    let p = profile();
    let mut case = Case::new(&p);
    case.objects = vec![user("a1", "Ann", "Lee", "E1").enabled(false)];
    assert!(case.plan().is_empty());
}

fn with_correlation(mut p: Profile, policy: DuplicatePolicy) -> Profile {
    p.rules.correlation = Some(Correlation::new("employeeID", "employee"));
    p.rules.duplicates = policy;
    p
}

fn unlinked(id: &str, employee: &str) -> TargetAccount {
    let mut a = TargetAccount::new(id, ObjectKind::User);
    a.fields.insert("employee".into(), employee.into());
    a.fields.insert("name".into(), "old name".into());
    a
}

#[test]
fn one_soft_match_candidate_is_linked_then_updated() {
    let p = with_correlation(profile(), DuplicatePolicy::Report);
    let mut case = Case::new(&p);
    case.objects = vec![user("a1", "Ann", "Lee", "e1 ")];
    case.candidates = vec![unlinked("t9", "E1")];
    let plan = case.plan();
    assert_eq!(
        actions(&plan),
        vec![
            act("link", "a1", Situation::SoftMatched),
            act("update", "a1", Situation::SoftMatched)
        ]
    );
    assert_eq!(plan.operations[0].action, Action::Link { previous: None });
    assert_eq!(plan.operations[1].after, vec![plan.operations[0].id]);
}

#[test]
fn several_candidates_are_ambiguous_and_nothing_is_done() {
    let p = with_correlation(profile(), DuplicatePolicy::Report);
    let mut case = Case::new(&p);
    case.objects = vec![user("a1", "Ann", "Lee", "E1")];
    case.candidates = vec![unlinked("t8", "E1"), unlinked("t9", "e1")];
    let plan = case.plan();
    assert!(plan.is_empty());
    assert_eq!(plan.findings.len(), 1);
    assert_eq!(plan.findings[0].kind, FindingKind::Ambiguous);
    assert!(
        plan.findings[0].message.contains("t8, t9"),
        "{}",
        plan.findings[0].message
    );
}

#[test]
fn source_disabled_disables_and_back_enabled_enables() {
    let p = profile();
    let ann = user("a1", "Ann", "Lee", "E1");
    let mut case = Case::new(&p);
    case.linked = vec![account_for(&p, "t1", &ann)];
    case.objects = vec![ann.clone().enabled(false)];
    assert_eq!(
        actions(&case.plan()),
        vec![act("disable", "a1", Situation::SourceDisabled)]
    );
    case.linked[0].enabled = false;
    case.objects = vec![ann];
    assert_eq!(actions(&case.plan()), vec![act("enable", "a1", Situation::Reenabled)]);
}

#[test]
fn absent_from_a_complete_read_is_disabled_by_default_deleted_only_by_opt_in() {
    let mut p = profile();
    let ann = user("a1", "Ann", "Lee", "E1");
    let linked = vec![account_for(&p, "t1", &ann)];
    {
        let mut case = Case::new(&p);
        case.linked = linked.clone();
        assert_eq!(actions(&case.plan()), vec![act("disable", "a1", Situation::Absent)]);
    }
    p.rules.deprovision = Deprovision::Delete;
    {
        let mut case = Case::new(&p);
        case.linked = linked.clone();
        assert_eq!(actions(&case.plan()), vec![act("delete", "a1", Situation::Absent)]);
    }
    p.rules.deprovision = Deprovision::Leave;
    let mut case = Case::new(&p);
    case.linked = linked;
    assert!(case.plan().is_empty());
}

#[test]
fn do_not_disable_leaves_the_account_and_says_so() {
    let mut p = profile();
    p.rules.do_not_disable = true;
    let ann = user("a1", "Ann", "Lee", "E1");
    let bob = user("b1", "Bob", "Ray", "E2");
    let mut case = Case::new(&p);
    case.linked = vec![account_for(&p, "t1", &ann), account_for(&p, "t2", &bob)];
    case.objects = vec![bob.enabled(false)];
    let plan = case.plan();
    assert!(plan.is_empty(), "{plan}");
    assert_eq!(plan.findings.len(), 1);
    assert_eq!(plan.findings[0].kind, FindingKind::DoNotDisable);
    assert_eq!(plan.findings[0].objects, vec!["a1".to_owned(), "b1".to_owned()]);
}

#[test]
fn a_partial_read_never_deprovisions() {
    let p = profile();
    let ann = user("a1", "Ann", "Lee", "E1");
    let mut case = Case::new(&p);
    case.completeness = Completeness::Partial {
        reason: "size limit exceeded".into(),
    };
    case.linked = vec![account_for(&p, "t1", &ann)];
    case.objects = vec![user("b1", "Bob", "Ray", "E2")];
    let plan = case.plan();
    assert_eq!(actions(&plan), vec![act("create", "b1", Situation::Unmatched)]);
    assert_eq!(plan.findings[0].kind, FindingKind::PartialRead);
    assert!(plan.findings[0].message.contains("size limit exceeded"));
}

#[test]
fn a_delta_deprovisions_only_what_it_deletes() {
    let p = profile();
    let ann = user("a1", "Ann", "Lee", "E1");
    let bob = user("b1", "Bob", "Ray", "E2");
    let mut case = Case::new(&p);
    case.mode = ReadMode::Delta;
    case.linked = vec![account_for(&p, "t1", &ann), account_for(&p, "t2", &bob)];
    case.deleted = vec!["b1".into()];
    let plan = case.plan();
    assert_eq!(actions(&plan), vec![act("disable", "b1", Situation::Deleted)]);
    assert_eq!(plan.counts.unchanged, 1);
}

#[test]
fn leaving_the_scope_deprovisions_unless_the_profile_says_leave() {
    let mut p = profile();
    p.scope.attributes = vec![idsync_core::scope::AttributePredicate {
        attribute: "department".into(),
        any_of: vec!["Sales".into()],
    }];
    let ann = user("a1", "Ann", "Lee", "E1").with("department", "Sales");
    let moved = user("a1", "Ann", "Lee", "E1").with("department", "IT");
    let mut case = Case::new(&p);
    case.linked = vec![account_for(&p, "t1", &ann)];
    case.objects = vec![moved.clone()];
    assert_eq!(actions(&case.plan()), vec![act("disable", "a1", Situation::OutOfScope)]);
    let mut p2 = p.clone();
    p2.rules.out_of_scope = OutOfScope::Leave;
    let mut case = Case::new(&p2);
    case.linked = vec![account_for(&p2, "t1", &ann)];
    case.objects = vec![moved];
    assert!(case.plan().is_empty());
}

#[test]
fn the_threshold_holds_deprovisions_but_not_creates_until_confirmed() {
    let mut p = profile();
    p.rules.threshold = Threshold::default();
    p.rules.threshold.max_count = Some(2);
    p.rules.threshold.max_percent = None;
    p.rules.threshold.min_count_for_percent = 0;
    let users: Vec<SourceObject> = (0..5)
        .map(|i| user(&format!("u{i}"), "U", &format!("{i}"), &format!("E{i}")))
        .collect();
    let mut case = Case::new(&p);
    case.linked = users
        .iter()
        .enumerate()
        .map(|(i, u)| account_for(&p, &format!("t{i}"), u))
        .collect();
    case.objects = vec![users[0].clone(), user("new", "New", "Hire", "E9")];
    let plan = case.plan();
    assert_eq!(plan.counts.disable, 4);
    assert_eq!(plan.counts.held, 4);
    assert!(
        plan.operations
            .iter()
            .filter(|o| o.action == Action::Disable)
            .all(|o| o.held.is_some())
    );
    assert!(
        plan.operations
            .iter()
            .filter(|o| o.action.name() == "create")
            .all(|o| o.held.is_none())
    );
    assert!(plan.findings.iter().any(|f| f.kind == FindingKind::ThresholdExceeded));
    case.confirmed = true;
    assert_eq!(case.plan().counts.held, 0);
    let mut held = plan.clone();
    held.confirm();
    assert!(held.operations.iter().all(|o| o.held.is_none()));
}

#[test]
fn duplicates_are_reported_and_both_created_under_report() {
    let p = with_correlation(profile(), DuplicatePolicy::Report);
    let mut case = Case::new(&p);
    case.objects = vec![user("a1", "Ann", "Lee", "E1"), user("a2", "Ann", "Lee", "E1")];
    let plan = case.plan();
    assert_eq!(plan.counts.create, 2);
    assert!(plan.findings.iter().all(|f| f.kind == FindingKind::DuplicateIdentity));
    assert_eq!(plan.findings[0].objects, vec!["a1".to_owned(), "a2".to_owned()]);
}

#[test]
fn duplicates_are_not_provisioned_under_skip() {
    let p = with_correlation(profile(), DuplicatePolicy::Skip);
    let old = user("a1", "Ann", "Lee", "E1");
    let mut case = Case::new(&p);
    case.linked = vec![account_for(&p, "t1", &old)];
    case.objects = vec![old, user("a2", "Ann", "Lee", "E1")];
    let plan = case.plan();
    assert!(plan.is_empty(), "{plan}");
    assert_eq!(plan.findings[0].kind, FindingKind::DuplicateIdentity);
}

#[test]
fn a_rehire_keeps_the_old_account_under_relink() {
    let p = with_correlation(profile(), DuplicatePolicy::Relink);
    let old = user("old-guid", "Ann", "Lee", "E1");
    let mut old_account = account_for(&p, "t1", &old);
    old_account.enabled = false; // she left, the account was disabled
    let mut case = Case::new(&p);
    case.linked = vec![old_account];
    case.objects = vec![user("new-guid", "Ann", "Lee-Smith", "E1")]; // the old object is gone
    let plan = case.plan();
    assert_eq!(
        actions(&plan),
        vec![
            act("link", "new-guid", Situation::Relinked),
            act("enable", "new-guid", Situation::Relinked),
            act("update", "new-guid", Situation::Relinked),
        ]
    );
    assert_eq!(
        plan.operations[0].action,
        Action::Link {
            previous: Some(Link {
                profile: p.id,
                external: "old-guid".into()
            })
        }
    );
    assert_eq!(plan.operations[0].target, Some(TargetId::from("t1")));
    assert_eq!(plan.counts.disable + plan.counts.create, 0);
}

#[test]
fn relink_follows_aliases_while_the_old_object_is_still_there() {
    let p = with_correlation(profile(), DuplicatePolicy::Relink);
    let old = user("old-guid", "Ann", "Lee", "E1")
        .enabled(false)
        .with_alias("S-1-5-21-1-1001");
    let new = user("new-guid", "Ann", "Lee", "E1")
        .with_alias("S-1-5-21-1-2002")
        .with_alias("S-1-5-21-1-1001");
    let mut case = Case::new(&p);
    case.linked = vec![account_for(&p, "t1", &old)];
    case.objects = vec![old.clone(), new];
    let plan = case.plan();
    assert_eq!(actions(&plan), vec![act("link", "new-guid", Situation::Relinked)]);
    // Without a shared alias the old object still present blocks the relink.
    let mut case = Case::new(&p);
    case.linked = vec![account_for(&p, "t1", &old)];
    case.objects = vec![old, user("new-guid", "Ann", "Lee", "E1")];
    let plan = case.plan();
    assert!(
        plan.operations
            .iter()
            .all(|o| o.action.name() != "create" && o.action.name() != "link"),
        "{plan}"
    );
    assert!(plan.findings.iter().any(|f| f.kind == FindingKind::DuplicateIdentity));
}

#[test]
fn the_same_object_in_another_profile_is_never_a_second_account() {
    let p = profile();
    let other = ProfileId::new_random();
    let ann = user("a1", "Ann", "Lee", "E1");
    let mut theirs = account_for(&p, "t1", &ann);
    theirs.link = Some(Link {
        profile: other,
        external: "a1".into(),
    });
    let mut case = Case::new(&p);
    case.objects = vec![ann];
    case.candidates = vec![theirs];
    let plan = case.plan();
    assert!(plan.is_empty());
    assert_eq!(plan.findings[0].kind, FindingKind::CrossProfileOverlap);
    assert!(plan.findings[0].remedy.contains("adopt_from"));
}

#[test]
fn a_recreated_profile_adopts_the_retired_profiles_accounts() {
    let mut p = profile();
    let retired = ProfileId::new_random();
    p.rules.adopt_from = vec![retired];
    let ann = user("a1", "Ann", "Lee", "E1");
    let mut old = account_for(&p, "t1", &ann);
    old.link = Some(Link {
        profile: retired,
        external: "a1".into(),
    });
    let mut case = Case::new(&p);
    case.objects = vec![ann];
    case.candidates = vec![old];
    let plan = case.plan();
    assert_eq!(actions(&plan), vec![act("link", "a1", Situation::AdoptedFromProfile)]);
    assert_eq!(
        plan.operations[0].action,
        Action::Link {
            previous: Some(Link {
                profile: retired,
                external: "a1".into()
            })
        }
    );
}

#[test]
fn memberships_are_add_and_remove_deltas_that_leave_unmanaged_members_alone() {
    let p = profile();
    let ann = user("a1", "Ann", "Lee", "E1");
    let bob = user("b1", "Bob", "Ray", "E2");
    let new = user("n1", "Nia", "Lo", "E3");
    let mut g_account = account_for(&p, "g", &group("g1", "sales", &[]));
    g_account.members = vec!["ta".into(), "tb".into(), "hand-made".into()];
    let mut case = Case::new(&p);
    case.linked = vec![account_for(&p, "ta", &ann), account_for(&p, "tb", &bob), g_account];
    case.objects = vec![ann, bob, new, group("g1", "sales", &["a1", "n1", "not-in-scope"])];
    let plan = case.plan();
    assert_eq!(
        actions(&plan),
        vec![
            act("create", "n1", Situation::Unmatched),
            act("add_member", "g1", Situation::Membership),
            act("remove_member", "g1", Situation::Membership),
        ]
    );
    let create_id = plan.operations[0].id;
    assert_eq!(plan.operations[1].after, vec![create_id]);
    assert!(
        matches!(&plan.operations[1].action, Action::AddMember { member, member_target: None } if member.external.0 == "n1")
    );
    assert!(
        matches!(&plan.operations[2].action, Action::RemoveMember { member_target, .. } if member_target.0 == "tb")
    );
}

#[test]
fn a_target_that_cannot_disable_gets_a_finding_not_an_operation() {
    let p = profile();
    let ann = user("a1", "Ann", "Lee", "E1");
    let mut case = Case::new(&p);
    case.caps = TargetCapabilities::default().with_groups(false);
    case.linked = vec![account_for(&p, "t1", &ann)];
    case.objects = vec![group("g1", "sales", &[])];
    let plan = case.plan();
    assert!(plan.is_empty());
    let kinds: Vec<_> = plan.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, vec![FindingKind::Unsupported, FindingKind::Unsupported]);
}

#[test]
fn two_accounts_with_one_link_keep_one_and_report_the_other() {
    let p = profile();
    let ann = user("a1", "Ann", "Lee", "E1");
    let mut case = Case::new(&p);
    case.linked = vec![account_for(&p, "t2", &ann), account_for(&p, "t1", &ann)];
    case.objects = vec![user("a1", "Ann", "Smith", "E1")];
    let plan = case.plan();
    assert_eq!(plan.operations.len(), 1);
    assert_eq!(plan.operations[0].target, Some(TargetId::from("t1")));
    assert_eq!(plan.findings[0].kind, FindingKind::DuplicateLink);
    assert!(plan.findings[0].message.contains("t2"));
}

#[test]
fn a_vetoed_deprovision_becomes_a_finding_with_the_reason() {
    let p = profile();
    let ann = user("a1", "Ann", "Lee", "E1");
    let mut case = Case::new(&p);
    case.linked = vec![account_for(&p, "t1", &ann)];
    let mut plan = case.plan();
    let id = plan.operations[0].id;
    plan.veto(id, "user has 3 open tickets");
    assert!(plan.is_empty());
    assert_eq!(plan.findings[0].kind, FindingKind::Vetoed);
    assert!(plan.findings[0].message.contains("3 open tickets"));
}

#[test]
fn a_plan_round_trips_through_json_and_prints_as_a_table() {
    let p = profile();
    let mut case = Case::new(&p);
    case.objects = vec![user("a1", "Ann", "Lee", "E1")];
    let plan = case.plan();
    let back: Plan = serde_json::from_str(&plan.to_json()).unwrap();
    assert_eq!(back, plan);
    let table = plan.to_string();
    assert!(
        table.contains("create") && table.contains("a1") && table.contains("name=\"Ann Lee\""),
        "{table}"
    );
}
