//! The quickstart: no server needed. A small directory (two OUs, groups, a
//! disabled user) is synced into a simulated application; then the
//! directory changes (a rename, a department move, a leaver, a rehire with
//! a new id and the same employee id) and the second plan shows what idsync
//! does about it. Run with `cargo run --example quickstart`.
#![expect(clippy::expect_used, reason = "an example: a failure stops it with its message")]

use std::sync::Arc;

use idsync::memory::{MemorySource, MemoryTarget};
use idsync::{AttrValue, Engine, MemoryStateStore, ObjectKind, Profile, RunOptions, SourceObject};

const SALES: &str = "OU=Sales,DC=acme,DC=test";
const SUPPORT: &str = "OU=Support,DC=acme,DC=test";

fn person(guid: &str, ou: &str, given: &str, sn: &str, dept: &str, employee_id: &str) -> SourceObject {
    SourceObject::new(guid, ObjectKind::User)
        .in_container(ou)
        .with("givenName", given)
        .with("sn", sn)
        .with(
            "mail",
            format!("{}.{}@acme.test", given.to_lowercase(), sn.to_lowercase()),
        )
        .with("department", dept)
        .with("employeeID", employee_id)
}

fn group(guid: &str, cn: &str, members: &[&str]) -> SourceObject {
    members.iter().fold(
        SourceObject::new(guid, ObjectKind::Group)
            .in_container("OU=Groups,DC=acme,DC=test")
            .with("cn", cn),
        |g, m| g.with_member(*m),
    )
}

/// The profile an operator would write in TOML; here as JSON for brevity.
fn profile() -> Profile {
    serde_json::from_value(serde_json::json!({
        "id": "6f1c2a0e-8d7b-4c55-9a8e-3b2f1d4c5e6a",
        "name": "Active Directory to the app",
        "scope": { "attributes": [{ "attribute": "department", "any_of": ["Sales", "Support"] }] },
        "mapping": {
            "users": [
                { "field": "name", "template": "{givenName} {sn}" },
                { "field": "email", "attribute": "mail", "transforms": ["lowercase"] },
                { "field": "department", "attribute": "department" },
                { "field": "employee_id", "attribute": "employeeID" },
                { "field": "site", "container": [
                    { "under": SALES, "value": "Leeds" },
                    { "under": SUPPORT, "value": "Cork" }] }
            ],
            "groups": [{ "field": "name", "attribute": "cn" }]
        },
        "rules": {
            "correlation": { "attribute": "employeeID", "field": "employee_id" },
            "duplicates": "relink"
        }
    }))
    .expect("the quickstart profile is valid")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let directory = MemorySource::with_objects([
        person("7c9e6679-0001", SALES, "Ann", "Lee", "Sales", "E100"),
        person("7c9e6679-0002", SALES, "Bob", "Ray", "Sales", "E101"),
        person("7c9e6679-0003", SALES, "Cem", "Kaya", "Sales", "E102"),
        person("7c9e6679-0004", SUPPORT, "Dee", "Moss", "Support", "E103"),
        person("7c9e6679-0005", SUPPORT, "Eve", "Nash", "Support", "E104"),
        person("7c9e6679-0006", SUPPORT, "Fay", "Ortiz", "Support", "E105").enabled(false),
        person("7c9e6679-0007", "OU=IT,DC=acme,DC=test", "Gus", "Pike", "IT", "E106"),
        group(
            "7c9e6679-0101",
            "sales-team",
            &["7c9e6679-0001", "7c9e6679-0002", "7c9e6679-0003"],
        ),
        group("7c9e6679-0102", "support-team", &["7c9e6679-0004", "7c9e6679-0005"]),
    ]);
    let app = MemoryTarget::new();
    let engine = Engine::new(
        profile(),
        Arc::new(directory.clone()),
        Arc::new(app.clone()),
        Arc::new(MemoryStateStore::new()),
    );

    println!("== First sync: the directory into an empty application\n");
    let report = engine.run(&RunOptions::default()).await?;
    println!("{}", report.plan);
    println!("applied {} operations ({:?})\n", report.applied(), report.outcome);

    println!("== The directory changes: Ann is renamed, Bob moves to Support, Cem leaves,");
    println!("   Eve is rehired under a new objectGUID with the same employee id\n");
    directory.modify("7c9e6679-0001", |o| set(o, "sn", "Lee-Smith"));
    directory.modify("7c9e6679-0002", |o| {
        o.container = SUPPORT.to_owned();
        set(o, "department", "Support");
    });
    directory.delete("7c9e6679-0003");
    directory.modify("7c9e6679-0101", |g| {
        g.members.retain(|m| m.0 != "7c9e6679-0003" && m.0 != "7c9e6679-0002")
    });
    directory.delete("7c9e6679-0005");
    directory.upsert(person("7c9e6679-0995", SUPPORT, "Eve", "Nash", "Support", "E104"));
    directory.modify("7c9e6679-0102", |g| {
        g.members.retain(|m| m.0 != "7c9e6679-0005");
        g.members.extend(["7c9e6679-0002".into(), "7c9e6679-0995".into()]);
    });

    // A full read sees the rehire's old id gone, so the relink rule applies.
    let second = engine
        .run(&RunOptions {
            full: true,
            ..RunOptions::default()
        })
        .await?;
    println!("{}", second.plan);
    println!("applied {} operations ({:?})\n", second.applied(), second.outcome);

    let third = engine.run(&RunOptions::default()).await?;
    println!(
        "== Third run: {}",
        if third.plan.is_empty() {
            "nothing to do, the application mirrors the directory"
        } else {
            "NOT converged"
        }
    );
    println!("\nThe application now holds:");
    for a in app.accounts() {
        let link = a.link.as_ref().map(|l| l.external.0.as_str()).unwrap_or("-");
        let state = if a.enabled { "enabled " } else { "DISABLED" };
        println!(
            "  {:<10} {state} {:<6} linked to {link:<14} {:?}",
            a.id.0,
            a.kind.to_string(),
            a.fields
        );
    }
    if third.plan.is_empty() {
        Ok(())
    } else {
        Err("the third plan is not empty".into())
    }
}

fn set(o: &mut SourceObject, attribute: &str, value: &str) {
    o.attributes
        .insert(attribute.to_owned(), vec![AttrValue::Text(value.to_owned())]);
}
