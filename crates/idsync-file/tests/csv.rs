//! The CSV source on an HR feed with quoted fields, non-ASCII, inactive
//! rows and bad rows.
#![expect(clippy::panic, clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::sync::Arc;

use futures::StreamExt;
use idsync_core::memory::MemoryTarget;
use idsync_core::{Engine, MemoryStateStore, Profile, ReadItem, RunOptions, Scope, Source};
use idsync_file::{CsvConfig, CsvSource};

const FEED: &[u8] = "\u{feff}employee_id,first_name,last_name,email,department,status\n\
E1,Ann,Lee,ann@acme.test,Sales,active\n\
E2,\"Zoë, Jr.\",Müller,zoe@acme.test,\"Sales \"\"East\"\"\",active\n\
E3,Cem,Kaya,cem@acme.test,IT,terminated\n\
E4,Dee,Moss,dee@acme.test,IT\n\
,No,Id,noid@acme.test,IT,active\n\
E1,Ann,Again,ann2@acme.test,Sales,active\n\
E6,Eve,Nash,eve@acme.test,HR,active\n"
    .as_bytes();

fn feed(bytes: &[u8]) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    f
}

fn config(f: &tempfile::NamedTempFile) -> CsvConfig {
    let mut c = CsvConfig::new(f.path(), "employee_id");
    c.enabled_column = Some("status".into());
    c
}

async fn read_all(s: &CsvSource) -> (Vec<idsync_core::SourceObject>, Vec<String>) {
    let mut stream = s.read_full(&Scope::default()).await.unwrap();
    let (mut objects, mut errors) = (vec![], vec![]);
    while let Some(item) = stream.next().await {
        match item {
            Ok(ReadItem::Object(o)) => objects.push(o),
            Ok(ReadItem::End { .. }) => {}
            Err(e) => errors.push(e.to_string()),
            Ok(other) => panic!("an item this code does not know: {other:?}"),
        }
    }
    (objects, errors)
}

#[tokio::test]
async fn quoted_fields_non_ascii_inactive_and_bad_rows() {
    let f = feed(FEED);
    let (objects, errors) = read_all(&CsvSource::new(config(&f))).await;
    let ids: Vec<_> = objects.iter().map(|o| o.id.0.as_str()).collect();
    assert_eq!(ids, ["E1", "E2", "E3", "E6"]);
    assert_eq!(objects[1].first_text("first_name"), Some("Zoë, Jr."));
    assert_eq!(objects[1].first_text("department"), Some("Sales \"East\""));
    assert!(!objects[2].enabled, "status terminated is inactive");
    assert_eq!(
        errors,
        vec![
            "file read [E4]: invalid data: CSV line 5, id E4: 5 fields where the header has 6",
            "file read [line 6] field \"employee_id\": invalid data: CSV line 6, column employee_id: the id is empty",
            "file read [E1] field \"employee_id\": invalid data: CSV line 7, id E1, column employee_id: the id is already on line 2; this row is skipped",
        ]
    );
}

#[tokio::test]
async fn invalid_utf8_names_the_row_and_column() {
    let f = feed(b"id,name\n1,ok\n2,\xff\xfe\n3,fine\n");
    let (objects, errors) = read_all(&CsvSource::new(CsvConfig::new(f.path(), "id"))).await;
    assert_eq!(objects.len(), 2);
    assert_eq!(
        errors,
        vec!["file read [2] field \"name\": invalid data: CSV line 3, id 2, column name: not valid UTF-8"]
    );
}

#[tokio::test]
async fn a_missing_id_column_is_a_clear_error() {
    let f = feed(b"id,name\n1,a\n");
    let e = CsvSource::new(CsvConfig::new(f.path(), "employee_id"))
        .read_full(&Scope::default())
        .await
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "file read [line 1] field \"employee_id\": invalid data: CSV line 1, column employee_id: the header has no such column; it has id, name"
    );
}

#[tokio::test]
async fn an_hr_feed_syncs_into_the_app_and_a_leaver_is_disabled() {
    let profile: Profile = serde_json::from_value(serde_json::json!({
        "id": "99999999-9999-4999-8999-999999999999", "name": "hr feed",
        "mapping": {"users": [
            {"field": "name", "template": "{first_name} {last_name}"},
            {"field": "email", "attribute": "email"}]}
    }))
    .unwrap();
    let good: Vec<u8> = FEED
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(i, _)| ![4, 5, 6].contains(i))
        .map(|(_, l)| l)
        .collect::<Vec<_>>()
        .join(&b'\n');
    let f = feed(&good);
    let target = MemoryTarget::new();
    let engine = Engine::new(
        profile.clone(),
        Arc::new(CsvSource::new(config(&f))),
        Arc::new(target.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert!(report.read_errors.is_empty(), "{:?}", report.read_errors);
    assert_eq!(report.plan.counts.create, 3, "{}", report.plan);
    assert_eq!(
        target.linked_to(profile.id, "E2").unwrap().fields["name"],
        "Zoë, Jr. Müller"
    );
    // E6 leaves the feed.
    let without_e6: Vec<u8> = String::from_utf8(good)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("E6"))
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes();
    std::fs::write(f.path(), without_e6).unwrap();
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.counts.disable, 1, "{}", report.plan);
    assert!(!target.linked_to(profile.id, "E6").unwrap().enabled);
}
