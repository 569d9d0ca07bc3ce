//! A source that reads one external id more than once: identical copies
//! count once, differing copies are held and reported, the other objects
//! still sync, and never two accounts for one id.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use idsync_core::memory::MemoryTarget;
use idsync_core::plan::FindingKind;
use idsync_core::{
    Completeness, Cursor, DeltaItem, Engine, Error, ExternalId, MemoryStateStore, ObjectKind, Profile, ReadItem,
    Result, RunOptions, Scope, Source, SourceCapabilities, SourceObject,
};

/// A source that returns exactly the objects it holds, duplicates included.
#[derive(Debug, Default)]
struct Verbatim(Mutex<Vec<SourceObject>>);

impl Verbatim {
    fn set(&self, objects: Vec<SourceObject>) {
        *self.0.lock().unwrap() = objects;
    }
}

#[async_trait]
impl Source for Verbatim {
    fn backend(&self) -> &'static str {
        "verbatim"
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::default()
            .with_delta(false)
            .with_read_one(false)
            .with_groups(false)
    }

    async fn read_full(&self, _scope: &Scope) -> Result<BoxStream<'_, Result<ReadItem>>> {
        let mut items: Vec<Result<ReadItem>> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .map(|o| Ok(ReadItem::Object(o)))
            .collect();
        items.push(Ok(ReadItem::End {
            completeness: Completeness::Complete,
            cursor: None,
        }));
        Ok(stream::iter(items).boxed())
    }

    async fn read_delta(&self, _scope: &Scope, _from: &Cursor) -> Result<BoxStream<'_, Result<DeltaItem>>> {
        Err(Error::new(idsync_core::ErrorKind::Unsupported, "no deltas"))
    }

    async fn read_one(&self, _scope: &Scope, _id: &ExternalId) -> Result<Option<SourceObject>> {
        Ok(None)
    }
}

fn profile() -> Profile {
    serde_json::from_value(serde_json::json!({
        "id": "77777777-7777-4777-8777-777777777777", "name": "dups",
        "mapping": {"users": [{"field": "email", "attribute": "mail"}]}
    }))
    .unwrap()
}

fn user(id: &str, mail: &str) -> SourceObject {
    SourceObject::new(id, ObjectKind::User).with("mail", mail)
}

#[tokio::test]
async fn differing_copies_of_one_id_are_held_and_reported_and_the_others_sync() {
    let profile = profile();
    let source = Arc::new(Verbatim::default());
    source.set(vec![
        user("u1", "ann@acme.test"),
        user("u2", "bob@acme.test"),
        user("u1", "someone.else@acme.test"),
        user("u3", "cem@acme.test"),
        user("u3", "cem@acme.test"),
    ]);
    let target = MemoryTarget::new();
    let engine = Engine::new(
        profile.clone(),
        source.clone(),
        Arc::new(target.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    let dup = report
        .plan
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::DuplicateIdentity)
        .unwrap_or_else(|| panic!("no duplicate finding: {}", report.plan));
    assert_eq!(dup.objects, ["u1"], "identical copies (u3) are not a finding");
    assert_eq!(
        dup.message,
        "the source has several different objects with this external id; none of them is synced, and its account is left as it is"
    );
    let mut emails: Vec<String> = target.accounts().iter().map(|a| a.fields["email"].clone()).collect();
    emails.sort();
    assert_eq!(
        emails,
        ["bob@acme.test", "cem@acme.test"],
        "u2 and u3 (once) synced, u1 held"
    );
    assert!(target.linked_to(profile.id, "u1").is_none());

    // u1 is fixed at the source and gets its account; then its copies
    // differ again: the account is neither updated nor disabled.
    source.set(vec![
        user("u1", "ann@acme.test"),
        user("u2", "bob@acme.test"),
        user("u3", "cem@acme.test"),
    ]);
    engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(
        target.linked_to(profile.id, "u1").unwrap().fields["email"],
        "ann@acme.test"
    );
    source.set(vec![
        user("u1", "ann.new@acme.test"),
        user("u1", "ann@acme.test"),
        user("u2", "bob.new@acme.test"),
        user("u3", "cem@acme.test"),
    ]);
    let report = engine.run(&RunOptions::default()).await.unwrap();
    let u1 = target.linked_to(profile.id, "u1").unwrap();
    assert_eq!(
        (u1.fields["email"].as_str(), u1.enabled),
        ("ann@acme.test", true),
        "{}",
        report.plan
    );
    assert_eq!(
        target.linked_to(profile.id, "u2").unwrap().fields["email"],
        "bob.new@acme.test"
    );
    assert_eq!(target.accounts().len(), 3, "never a second account for one id");
}
