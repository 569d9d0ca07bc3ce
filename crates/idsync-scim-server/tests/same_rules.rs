//! The SCIM service provider and the sync engine apply one set of rules:
//! each situation below is played twice from the same profile and the same
//! application (a `MemoryTarget`), once by the engine syncing a directory
//! (a `MemorySource`) and once by an identity provider sending the same
//! change as SCIM requests. Both must leave the application in the same
//! state, with the same findings, and those must be the ones expected.
#![expect(clippy::panic, clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::collections::BTreeSet;
use std::sync::Arc;

use idsync_core::memory::{MemorySource, MemoryTarget};
use idsync_core::plan::FindingKind;
use idsync_core::{
    Engine, Fields, MemoryStateStore, ObjectKind, Profile, ProfileId, RunOptions, SourceObject, Target, TargetAccount,
    TargetId, TargetOp,
};
use idsync_scim_server::{MemoryHistory, ScimServer};
use serde_json::{Value, json};

const TOKEN: &str = "same-rules-t0ken";
const PROFILE: &str = "5e0c8a1e-1111-4c55-9a8e-3b2f1d4c5e6a";
const OTHER: &str = "5e0c8a1e-2222-4c55-9a8e-3b2f1d4c5e6a";
const WORK: &str = "emails[type eq \"work\"].value";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const DEPARTMENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";

/// A user, as a directory object and as a SCIM resource.
#[derive(Clone, Copy)]
struct Person {
    external: &'static str,
    user_name: &'static str,
    mail: &'static str,
    department: &'static str,
    enabled: bool,
}

const ANN: Person = Person {
    external: "u-ann",
    user_name: "ann",
    mail: "ann@acme.test",
    department: "Sales",
    enabled: true,
};
const BOB: Person = Person {
    external: "u-bob",
    user_name: "bob",
    mail: "bob@acme.test",
    department: "Sales",
    enabled: true,
};
/// Ann again, under another id (a rehire, or the same person twice).
const ANN_AGAIN: Person = Person {
    external: "u-ann-2",
    user_name: "ann.lee",
    ..ANN
};

impl Person {
    fn object(&self) -> SourceObject {
        SourceObject::new(self.external, ObjectKind::User)
            .with("userName", self.user_name)
            .with(WORK, self.mail)
            .with(DEPARTMENT, self.department)
            .enabled(self.enabled)
    }

    fn resource(&self) -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "externalId": self.external,
            "userName": self.user_name,
            "active": self.enabled,
            "emails": [{"type": "work", "value": self.mail}],
            ENTERPRISE: {"department": self.department},
        })
    }
}

/// A group of people, by external id.
#[derive(Clone, Copy)]
struct Team {
    external: &'static str,
    name: &'static str,
    members: &'static [&'static str],
}

const SALES: Team = Team {
    external: "g-sales",
    name: "sales",
    members: &["u-ann"],
};

/// What changes in the directory, or what the identity provider sends.
#[derive(Clone, Copy)]
enum Change {
    /// A new user (POST).
    Add(Person),
    /// A new group (POST).
    AddTeam(Team),
    /// A user deleted (DELETE).
    Remove(&'static str),
    /// A user disabled (PATCH `active: false`).
    Disable(&'static str),
    /// A user's attributes changed (PUT).
    Replace(Person),
    /// A group's members changed (PUT).
    ReplaceTeam(Team),
}

/// One situation.
struct Case {
    name: &'static str,
    /// Merged into the profile: `rules`, `scope`.
    profile: Value,
    /// Switched off in the target.
    cannot: &'static [&'static str],
    /// In the application before anything happens.
    accounts: Vec<TargetAccount>,
    /// Synced (or pushed) before the situation.
    before: Vec<Change>,
    /// The situation.
    step: Vec<Change>,
    /// After `before`: the application vetoes deprovisioning Ann, or adds
    /// an account the profile does not manage to the sales group.
    veto_ann: bool,
    unmanaged_in_sales: bool,
    /// The findings of the step, expected of both.
    findings: &'static [FindingKind],
}

fn profile(case: &Case) -> Profile {
    let mut p = json!({
        "id": PROFILE,
        "name": "one set of rules",
        "mapping": {
            "users": [
                {"field": "userName", "attribute": "userName"},
                {"field": "email", "attribute": WORK},
                {"field": "department", "attribute": DEPARTMENT}
            ],
            "groups": [{"field": "displayName", "attribute": "displayName"}]
        },
        "rules": {"correlation": {"attribute": WORK, "field": "email"}}
    });
    if let Value::Object(extra) = &case.profile {
        for (k, v) in extra {
            match (p.get_mut(k), v) {
                (Some(Value::Object(base)), Value::Object(more)) => base.extend(more.clone()),
                _ => p[k] = v.clone(),
            }
        }
    }
    serde_json::from_value(p).unwrap()
}

fn app(case: &Case) -> MemoryTarget {
    let mut caps = MemoryTarget::new().capabilities();
    for c in case.cannot {
        match *c {
            "disable" => caps.disable = false,
            "delete" => caps.delete = false,
            other => panic!("no capability {other}"),
        }
    }
    let app = MemoryTarget::with_capabilities(caps);
    for a in &case.accounts {
        app.insert(a.clone());
    }
    app
}

fn profile_id(id: &str) -> ProfileId {
    serde_json::from_value(json!(id)).unwrap()
}

/// An account made in the application by hand (or by another profile).
fn account(id: &str, user_name: &str, mail: &str, linked_to: Option<(&str, &str)>) -> TargetAccount {
    let fields: Fields = [("userName", user_name), ("email", mail)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    TargetAccount {
        fields,
        link: linked_to.map(|(profile, external)| idsync_core::Link {
            profile: profile_id(profile),
            external: external.into(),
        }),
        ..TargetAccount::new(id, ObjectKind::User)
    }
}

fn linked(app: &MemoryTarget, external: &str) -> TargetId {
    app.linked_to(profile_id(PROFILE), external)
        .unwrap_or_else(|| panic!("no account linked to {external}: {:#?}", app.accounts()))
        .id
}

/// What happened to the application, comparable across the two runs:
/// accounts by link (or by id when made by hand), members by link.
#[derive(Debug, PartialEq)]
struct Outcome {
    accounts: Vec<(String, bool, Fields, Vec<String>)>,
    findings: BTreeSet<FindingKind>,
}

fn outcome(app: &MemoryTarget, findings: BTreeSet<FindingKind>) -> Outcome {
    let all = app.accounts();
    let name = |a: &TargetAccount| match &a.link {
        Some(l) if l.profile == profile_id(PROFILE) => format!("linked {}", l.external),
        Some(l) => format!("{} linked by {} to {}", a.id, l.profile, l.external),
        None => format!("{} unlinked", a.id),
    };
    let mut accounts: Vec<(String, bool, Fields, Vec<String>)> = all
        .iter()
        .map(|a| {
            let mut members: Vec<String> = a
                .members
                .iter()
                .map(|m| all.iter().find(|b| &b.id == m).map_or_else(|| m.0.clone(), name))
                .collect();
            members.sort();
            (name(a), a.enabled, a.fields.clone(), members)
        })
        .collect();
    accounts.sort();
    Outcome { accounts, findings }
}

async fn after_before(case: &Case, app: &MemoryTarget) {
    if case.veto_ann {
        app.veto(&linked(app, ANN.external), "open tickets");
    }
    if case.unmanaged_in_sales {
        let op = TargetOp::AddMember {
            group: linked(app, SALES.external),
            member: TargetId::from("hand-made"),
        };
        app.apply(&op).await.unwrap();
    }
}

/// The engine syncs the directory before and after the change.
async fn by_the_engine(case: &Case) -> Outcome {
    let app = app(case);
    let source = MemorySource::new();
    let engine = Engine::new(
        profile(case),
        Arc::new(source.clone()),
        Arc::new(app.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    for (i, changes) in [&case.before, &case.step].into_iter().enumerate() {
        for change in changes {
            match *change {
                Change::Add(p) | Change::Replace(p) => source.upsert(p.object()),
                Change::AddTeam(t) | Change::ReplaceTeam(t) => {
                    let group = t.members.iter().fold(
                        SourceObject::new(t.external, ObjectKind::Group).with("displayName", t.name),
                        |g, m| g.with_member(*m),
                    );
                    source.upsert(group);
                }
                Change::Remove(e) => source.delete(e),
                Change::Disable(e) => {
                    source.modify(e, |o| o.enabled = false);
                }
            }
        }
        let report = engine.run(&RunOptions::default()).await.unwrap();
        assert_eq!(report.failures().count(), 0, "{}: {}", case.name, report.to_json());
        if i == 0 {
            after_before(case, &app).await;
        } else {
            return outcome(&app, report.plan.findings.iter().map(|f| f.kind).collect());
        }
    }
    unreachable!("two runs")
}

/// An identity provider sends the changes to the service provider.
async fn by_the_server(case: &Case) -> Outcome {
    let app = app(case);
    let history = MemoryHistory::new();
    let server =
        ScimServer::new(profile(case), Arc::new(app.clone()), TOKEN.to_owned().into()).with_sink(history.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(server.serve(listener));
    let client = reqwest::Client::new();
    let send = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut req = client
            .request(method, format!("{base}{path}"))
            .header("Authorization", format!("Bearer {TOKEN}"));
        if let Some(b) = body {
            req = req.header("Content-Type", "application/scim+json").body(b.to_string());
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let mut seen = 0;
    for (i, changes) in [&case.before, &case.step].into_iter().enumerate() {
        for change in changes {
            let status = match *change {
                Change::Add(p) => send(reqwest::Method::POST, "/Users".into(), Some(p.resource())).await,
                Change::AddTeam(t) | Change::ReplaceTeam(t) => {
                    let members: Vec<Value> = t.members.iter().map(|m| json!({"value": linked(&app, m).0})).collect();
                    let doc = json!({"externalId": t.external, "displayName": t.name, "members": members});
                    match app.linked_to(profile_id(PROFILE), t.external) {
                        Some(g) => send(reqwest::Method::PUT, format!("/Groups/{}", g.id), Some(doc)).await,
                        None => send(reqwest::Method::POST, "/Groups".into(), Some(doc)).await,
                    }
                }
                Change::Remove(e) => send(reqwest::Method::DELETE, format!("/Users/{}", linked(&app, e)), None).await,
                Change::Disable(e) => {
                    let patch = json!({
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "active", "value": false}]
                    });
                    send(
                        reqwest::Method::PATCH,
                        format!("/Users/{}", linked(&app, e)),
                        Some(patch),
                    )
                    .await
                }
                Change::Replace(p) => {
                    let path = format!("/Users/{}", linked(&app, p.external));
                    send(reqwest::Method::PUT, path, Some(p.resource())).await
                }
            };
            // refusals (409, 403) are answers too; errors of the server are not
            assert!(status < 500, "{}: {status}", case.name);
        }
        let records = history.records();
        if i == 0 {
            after_before(case, &app).await;
            seen = records.len();
        } else {
            task.abort();
            let findings = records[seen..]
                .iter()
                .flat_map(|r| &r.findings)
                .map(|f| f.kind)
                .collect();
            return outcome(&app, findings);
        }
    }
    unreachable!("two rounds")
}

fn cases() -> Vec<Case> {
    use FindingKind::*;
    let case = |name: &'static str| Case {
        name,
        profile: json!({}),
        cannot: &[],
        accounts: Vec::new(),
        before: vec![Change::Add(ANN)],
        step: Vec::new(),
        veto_ann: false,
        unmanaged_in_sales: false,
        findings: &[],
    };
    vec![
        Case {
            before: vec![],
            step: vec![Change::Add(ANN)],
            ..case("a new user is created")
        },
        Case {
            accounts: vec![account("hand-1", "ann.old", "ANN@acme.test ", None)],
            before: vec![],
            step: vec![Change::Add(ANN)],
            ..case("an unlinked account with the same correlation key is adopted")
        },
        Case {
            accounts: vec![
                account("hand-1", "ann.old", "ann@acme.test", None),
                account("hand-2", "ann.older", "ann@acme.test", None),
            ],
            before: vec![],
            step: vec![Change::Add(ANN)],
            findings: &[Ambiguous],
            ..case("two unlinked accounts with the key: ambiguous, nothing is done")
        },
        Case {
            accounts: vec![account("other-1", "ann", "ann@acme.test", Some((OTHER, "u-ann")))],
            before: vec![],
            step: vec![Change::Add(ANN)],
            findings: &[CrossProfileOverlap],
            ..case("another profile manages the same id: no second account")
        },
        Case {
            profile: json!({"rules": {"adopt_from": [OTHER]}}),
            accounts: vec![account("other-1", "ann", "ann@acme.test", Some((OTHER, "u-ann")))],
            before: vec![],
            step: vec![Change::Add(ANN)],
            ..case("a retired profile's account is adopted")
        },
        Case {
            step: vec![Change::Add(ANN_AGAIN)],
            findings: &[DuplicateIdentity],
            ..case("a second object with the key, policy report: created and reported")
        },
        Case {
            profile: json!({"rules": {"duplicates": "skip"}}),
            step: vec![Change::Add(ANN_AGAIN)],
            findings: &[DuplicateIdentity],
            ..case("a second object with the key, policy skip: not created, reported")
        },
        Case {
            profile: json!({"rules": {"duplicates": "relink"}}),
            step: vec![Change::Remove(ANN.external), Change::Add(ANN_AGAIN)],
            ..case("a rehire, policy relink: the old account follows the new id")
        },
        Case {
            step: vec![Change::Remove(ANN.external)],
            ..case("a deleted user is disabled by default")
        },
        Case {
            profile: json!({"rules": {"deprovision": "delete"}}),
            step: vec![Change::Remove(ANN.external)],
            ..case("a deleted user is deleted when the profile opts in")
        },
        Case {
            profile: json!({"rules": {"deprovision": "delete"}}),
            cannot: &["delete"],
            step: vec![Change::Remove(ANN.external)],
            findings: &[Unsupported],
            ..case("the profile deletes, the target cannot: the account is left, not disabled")
        },
        Case {
            cannot: &["disable"],
            step: vec![Change::Remove(ANN.external)],
            findings: &[Unsupported],
            ..case("the target cannot disable: the account is left")
        },
        Case {
            profile: json!({"rules": {"do_not_disable": true}}),
            step: vec![Change::Remove(ANN.external)],
            findings: &[DoNotDisable],
            ..case("Do Not Disable keeps a deleted user")
        },
        Case {
            profile: json!({"rules": {"deprovision": "leave"}}),
            step: vec![Change::Remove(ANN.external)],
            ..case("the rule leave keeps a deleted user, silently")
        },
        Case {
            veto_ann: true,
            step: vec![Change::Remove(ANN.external)],
            findings: &[Vetoed],
            ..case("the target vetoes the deprovision")
        },
        Case {
            profile: json!({"rules": {"threshold": {"max_count": 0}}}),
            step: vec![Change::Remove(ANN.external)],
            findings: &[ThresholdExceeded],
            ..case("a deprovision beyond the threshold is held")
        },
        Case {
            step: vec![Change::Disable(ANN.external)],
            ..case("a user disabled at the source is disabled")
        },
        Case {
            profile: json!({"rules": {"do_not_disable": true}}),
            step: vec![Change::Disable(ANN.external)],
            findings: &[DoNotDisable],
            ..case("Do Not Disable keeps a disabled user enabled")
        },
        Case {
            profile: json!({"scope": {"attributes": [{"attribute": DEPARTMENT, "any_of": ["sales"]}]}}),
            step: vec![Change::Replace(Person {
                department: "IT",
                ..ANN
            })],
            ..case("a user who leaves the scope is deprovisioned")
        },
        Case {
            profile: json!({
                "scope": {"attributes": [{"attribute": DEPARTMENT, "any_of": ["sales"]}]},
                "rules": {"out_of_scope": "leave"}
            }),
            step: vec![Change::Replace(Person {
                department: "IT",
                ..ANN
            })],
            ..case("a user who leaves the scope is left when the profile says so")
        },
        Case {
            profile: json!({"scope": {"attributes": [{"attribute": DEPARTMENT, "any_of": ["sales"]}]}}),
            before: vec![],
            step: vec![Change::Add(Person {
                department: "IT",
                ..BOB
            })],
            ..case("a new user out of scope is not provisioned")
        },
        Case {
            accounts: vec![account("hand-made", "carol", "carol@acme.test", None)],
            before: vec![Change::Add(ANN), Change::Add(BOB), Change::AddTeam(SALES)],
            unmanaged_in_sales: true,
            step: vec![Change::ReplaceTeam(Team {
                members: &["u-bob"],
                ..SALES
            })],
            ..case("a group's members change; a member the profile does not manage stays")
        },
    ]
}

#[tokio::test]
async fn the_server_and_the_engine_reach_the_same_outcome_in_every_situation() {
    let mut failures = Vec::new();
    for case in cases() {
        let engine = by_the_engine(&case).await;
        let server = by_the_server(&case).await;
        let expected: BTreeSet<FindingKind> = case.findings.iter().copied().collect();
        if engine != server || engine.findings != expected {
            failures.push(format!(
                "{}:\n  expected findings {expected:?}\n  engine {engine:#?}\n  server {server:#?}",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
