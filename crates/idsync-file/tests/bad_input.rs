//! Bad input in files: every bad record is an error naming the object and
//! the field (the DN or the row's id, and the attribute or column), and the
//! other records still read. Invalid UTF-8, oversized values, malformed
//! records, duplicate ids, a status in neither list. A record that could
//! not be read is never "gone" to a just-in-time sync.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use std::sync::Arc;

use idsync_core::memory::MemoryTarget;
use idsync_core::plan::{Action, FindingKind};
use idsync_core::{
    Completeness, Engine, ExternalId, MemoryStateStore, Profile, RunOptions, Scope, Source, SourceObject,
};
use idsync_file::{CsvConfig, CsvSource, LdifConfig, LdifSource, MAX_VALUE_BYTES};
use idsync_testkit::read::full_read;

fn file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    f
}

async fn read_all(s: &dyn Source) -> (Vec<SourceObject>, Vec<String>, bool) {
    let r = full_read(s).await;
    let complete = r.complete();
    (r.objects, r.errors, complete)
}

fn ids(objects: &[SourceObject]) -> Vec<&str> {
    objects.iter().map(|o| o.id.as_str()).collect()
}

fn entry_uuid(f: &tempfile::NamedTempFile) -> LdifSource {
    let mut c = LdifConfig::new(f.path());
    c.id_attribute = "entryUUID".into();
    LdifSource::new(c)
}

/// `uid=<name>` users with entryUUID `<name>`, each record given its extra lines.
fn ldif(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, extra) in records {
        out.extend_from_slice(
            format!("dn: uid={name},ou=people,dc=acme,dc=test\nobjectClass: inetOrgPerson\nentryUUID: {name}\n")
                .as_bytes(),
        );
        out.extend_from_slice(extra);
        out.extend_from_slice(b"\n");
    }
    out
}

#[tokio::test]
async fn ldif_invalid_utf8_in_a_value_names_the_entry_and_attribute() {
    let f = file(&ldif(&[
        ("ann", b"cn: Ann\n"),
        ("bob", b"cn: B\xf6b\n"),
        ("cem", b"cn: Cem\n"),
    ]));
    let (objects, errors, _) = read_all(&entry_uuid(&f)).await;
    assert_eq!(ids(&objects), ["ann", "cem"]);
    assert_eq!(
        errors,
        [
            "file read [uid=bob,ou=people,dc=acme,dc=test] field \"cn\": invalid data: LDIF line 9, entry uid=bob,ou=people,dc=acme,dc=test, field cn: the value is not valid UTF-8 (binary values must be base64, written with '::')"
        ]
    );
}

#[tokio::test]
async fn ldif_an_oversized_value_names_the_entry_and_attribute_and_the_next_entries_read() {
    use base64::Engine as _;
    let big = base64::engine::general_purpose::STANDARD.encode(vec![0xffu8; MAX_VALUE_BYTES + 1]);
    let photo = format!("jpegPhoto:: {big}\n");
    // A plain value on one line far longer than any value may be, and the
    // same folded over many lines.
    let long_line = format!("description: {}\n", "x".repeat(2 * MAX_VALUE_BYTES));
    let folded = format!("description: start\n{}", " continued\n".repeat(MAX_VALUE_BYTES / 8));
    let f = file(&ldif(&[
        ("ann", b"cn: Ann\n"),
        ("bob", photo.as_bytes()),
        ("cem", long_line.as_bytes()),
        ("dee", folded.as_bytes()),
        ("eve", b"cn: Eve\n"),
    ]));
    let (objects, errors, complete) = read_all(&entry_uuid(&f)).await;
    assert_eq!(ids(&objects), ["ann", "eve"]);
    assert!(complete, "the file was read to its end");
    assert_eq!(
        errors,
        [
            format!(
                "file read [uid=bob,ou=people,dc=acme,dc=test] field \"jpegPhoto\": invalid data: LDIF line 9, entry uid=bob,ou=people,dc=acme,dc=test, field jpegPhoto: the value ({} bytes) is over the limit of {MAX_VALUE_BYTES} bytes per value",
                MAX_VALUE_BYTES + 1
            ),
            format!(
                "file read [uid=cem,ou=people,dc=acme,dc=test] field \"description\": invalid data: LDIF line 14, entry uid=cem,ou=people,dc=acme,dc=test, field description: the value is over the limit of {MAX_VALUE_BYTES} bytes per value"
            ),
            format!(
                "file read [uid=dee,ou=people,dc=acme,dc=test] field \"description\": invalid data: LDIF line 19, entry uid=dee,ou=people,dc=acme,dc=test, field description: the value ({} bytes) is over the limit of {MAX_VALUE_BYTES} bytes per value",
                "start".len() + "continued".len() * (MAX_VALUE_BYTES / 8)
            ),
        ]
    );
}

#[tokio::test]
async fn ldif_malformed_records_each_name_their_entry_and_field() {
    let f = file(&ldif(&[
        ("ann", b"cn: Ann\n"),
        ("bad-name", b"c n: spaced\n"),
        ("url", b"jpegPhoto:< file:///etc/passwd\n"),
        ("empty-id-follows", b""),
        ("sid", b"objectSid:: AQUAAA==\n"),
        ("uac", b"userAccountControl: lots\n"),
        ("zed", b"cn: Zed\n"),
    ]));
    let mut text = String::from_utf8(std::fs::read(f.path()).unwrap()).unwrap();
    text = text.replace("entryUUID: empty-id-follows", "entryUUID:");
    text.push_str("cn: no dn first\n\n");
    std::fs::write(f.path(), text).unwrap();
    let (objects, errors, _) = read_all(&entry_uuid(&f)).await;
    assert_eq!(ids(&objects), ["ann", "zed"]);
    assert_eq!(
        errors,
        [
            "file read [uid=bad-name,ou=people,dc=acme,dc=test]: invalid data: LDIF line 9, entry uid=bad-name,ou=people,dc=acme,dc=test: \"c n\" is not an attribute description",
            "file read [uid=url,ou=people,dc=acme,dc=test] field \"jpegPhoto\": invalid data: LDIF line 14, entry uid=url,ou=people,dc=acme,dc=test, field jpegPhoto: URL values (':<') are not read, for safety; inline the value",
            "file read [uid=empty-id-follows,ou=people,dc=acme,dc=test] field \"entryUUID\": invalid data: LDIF line 16, entry uid=empty-id-follows,ou=people,dc=acme,dc=test, field entryUUID: empty: every user and group needs its id",
            "file read [uid=sid,ou=people,dc=acme,dc=test] field \"objectSid\": invalid data: LDIF line 20, entry uid=sid,ou=people,dc=acme,dc=test, field objectSid: not a valid SID",
            "file read [uid=uac,ou=people,dc=acme,dc=test] field \"userAccountControl\": invalid data: LDIF line 25, entry uid=uac,ou=people,dc=acme,dc=test, field userAccountControl: not a number",
            "file read [line 35] field \"cn\": invalid data: LDIF line 35, field cn: a record must start with 'dn:'",
        ]
    );
}

#[tokio::test]
async fn ldif_the_same_guid_twice_is_one_finding_and_never_two_accounts() {
    let export = "\
dn: CN=Ann Lee,OU=Sales,DC=example,DC=test
objectClass: user
sAMAccountName: ann
objectGUID:: MyIRAFVEd2aImaq7zN3u/w==

dn: CN=Ann Copy,OU=Sales,DC=example,DC=test
objectClass: user
sAMAccountName: ann.copy
objectGUID:: MyIRAFVEd2aImaq7zN3u/w==

dn: CN=Bob,OU=Sales,DC=example,DC=test
objectClass: user
sAMAccountName: bob
objectGUID:: RERERERERERERERERERERA==
";
    let f = file(export.as_bytes());
    let profile: Profile = serde_json::from_value(serde_json::json!({
        "id": "66666666-6666-4666-8666-666666666666", "name": "ldif dups",
        "mapping": {"users": [{"field": "login", "attribute": "sAMAccountName"}]}
    }))
    .unwrap();
    let target = MemoryTarget::new();
    let engine = Engine::new(
        profile.clone(),
        Arc::new(LdifSource::new(LdifConfig::new(f.path()))),
        Arc::new(target.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    let logins: Vec<String> = target.accounts().iter().map(|a| a.fields["login"].clone()).collect();
    assert_eq!(logins, ["bob"], "{}", report.plan);
    let finding = report
        .plan
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::DuplicateIdentity)
        .unwrap_or_else(|| panic!("{}", report.plan));
    assert_eq!(finding.objects, ["00112233-4455-6677-8899-aabbccddeeff"]);
}

fn csv_config(f: &tempfile::NamedTempFile) -> CsvConfig {
    let mut c = CsvConfig::new(f.path(), "id");
    c.enabled_column = Some("status".into());
    c
}

#[tokio::test]
async fn csv_an_oversized_cell_names_the_row_and_column_and_the_other_rows_read() {
    let mut feed = b"id,name,status\n1,Ann,active\n2,".to_vec();
    feed.extend(std::iter::repeat_n(b'x', MAX_VALUE_BYTES + 1));
    feed.extend_from_slice(b",active\n3,Cem,active\n");
    let f = file(&feed);
    let (objects, errors, complete) = read_all(&CsvSource::new(csv_config(&f))).await;
    assert_eq!(ids(&objects), ["1", "3"]);
    assert!(complete);
    assert_eq!(
        errors,
        [format!(
            "file read [2] field \"name\": invalid data: CSV line 3, id 2, column name: the value ({} bytes) is over the limit of {MAX_VALUE_BYTES} bytes per value",
            MAX_VALUE_BYTES + 1
        )]
    );
}

#[tokio::test]
async fn csv_invalid_utf8_in_the_id_and_rows_too_long_name_what_they_can() {
    let f = file(b"id,name,status\n1,Ann,active\n\xfe\xff,Bob,active\n3,Cem,active,extra\n4,Dee,active\n");
    let (objects, errors, _) = read_all(&CsvSource::new(csv_config(&f))).await;
    assert_eq!(ids(&objects), ["1", "4"]);
    assert_eq!(
        errors,
        [
            "file read [line 3] field \"id\": invalid data: CSV line 3, column id: not valid UTF-8",
            "file read [3]: invalid data: CSV line 4, id 3: 4 fields where the header has 3",
        ]
    );
}

#[tokio::test]
async fn csv_an_empty_file_is_an_error_never_an_empty_directory() {
    let f = file(b"");
    let e = CsvSource::new(csv_config(&f))
        .read_full(&Scope::default())
        .await
        .err()
        .expect("an empty file must not read as a directory without people");
    assert_eq!(
        e.to_string(),
        "file read [line 1] field \"id\": invalid data: CSV line 1, column id: the header has no such column; it has "
    );
}

#[tokio::test]
async fn csv_an_unterminated_quote_never_swallows_the_rows_after_it_silently() {
    // The quote opens in the last column: the row has its three fields and
    // would read as a person, with rows 3 and 4 lost inside its status.
    let f = file(b"id,name,status\n1,Ann,active\n2,Bob,\"active\n3,Cem,active\n4,Dee,active\n");
    let (objects, errors, complete) = read_all(&CsvSource::new(csv_config(&f))).await;
    assert_eq!(ids(&objects), ["1"]);
    assert!(!complete, "rows may be missing: nothing may be deprovisioned");
    assert_eq!(
        errors,
        [
            "file read [2]: invalid data: CSV line 3, id 2: a '\"' in this row is never closed: the rest of the file reads as one value, so this row and any after it are not read"
        ]
    );
    // A stray quote inside an unquoted value swallows nothing: all read.
    let f = file(b"id,name,status\n1,Ann 5'10\",active\n2,Bob,active\n");
    let (objects, errors, complete) = read_all(&CsvSource::new(csv_config(&f))).await;
    assert_eq!((ids(&objects), errors.len(), complete), (vec!["1", "2"], 0, true));
    assert_eq!(objects[0].first_text("name"), Some("Ann 5'10\""));
}

const WORDS: &str = "an active value (true, 1, yes, y, active, enabled) nor an inactive one (false, 0, no, n, inactive, disabled, terminated, left)";

#[tokio::test]
async fn csv_a_status_in_neither_list_names_the_row_and_column_and_the_other_rows_read() {
    let f = file(b"id,name,status\n1,Ann,active\n2,Bob,maybe\n3,Cem,Terminated\n4,Dee,\n5,Eve,YES\n6,Fay,on leave\n");
    let (objects, errors, _) = read_all(&CsvSource::new(csv_config(&f))).await;
    let enabled: Vec<(&str, bool)> = objects.iter().map(|o| (o.id.as_str(), o.enabled)).collect();
    assert_eq!(
        enabled,
        [("1", true), ("3", false), ("4", true), ("5", true)],
        "the other rows read; an empty status is active"
    );
    assert_eq!(
        errors,
        [
            format!(
                "file read [2] field \"status\": invalid data: CSV line 3, id 2, column status: \"maybe\" is neither {WORDS}"
            ),
            format!(
                "file read [6] field \"status\": invalid data: CSV line 7, id 6, column status: \"on leave\" is neither {WORDS}"
            ),
        ]
    );

    // Configured words replace the defaults.
    let f = file(b"id,name,status\n1,Ann,Employed\n2,Bob,left\n3,Cem,active\n");
    let mut config = csv_config(&f);
    config.active_values = vec!["employed".into(), "on leave".into()];
    config.inactive_values = vec!["left".into()];
    let (objects, errors, _) = read_all(&CsvSource::new(config)).await;
    let enabled: Vec<(&str, bool)> = objects.iter().map(|o| (o.id.as_str(), o.enabled)).collect();
    assert_eq!(enabled, [("1", true), ("2", false)]);
    assert_eq!(
        errors,
        [
            "file read [3] field \"status\": invalid data: CSV line 4, id 3, column status: \"active\" is neither an active value (employed, on leave) nor an inactive one (left)"
        ]
    );
}

#[tokio::test]
async fn read_one_of_a_record_that_could_not_be_read_is_an_error_never_gone() {
    let f = file(b"id,name,status\n1,Ann,active\n2,Bob,maybe\n3,C\xe9m,active\n");
    let source = CsvSource::new(csv_config(&f));
    let found = source
        .read_one(&idsync_core::Scope::default(), &ExternalId("1".into()))
        .await
        .unwrap();
    assert_eq!(found.map(|o| o.id.0), Some("1".to_owned()));
    let e = source
        .read_one(&idsync_core::Scope::default(), &ExternalId("2".into()))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "file read_one [2]: invalid data: not found, but 2 record(s) could not be read and it may be one of them; the first: file read [2] field \"status\": invalid data: CSV line 3, id 2, column status: \"maybe\" is neither {WORDS}"
        )
    );
    let e = source
        .read_one(&idsync_core::Scope::default(), &ExternalId("3".into()))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("file read_one [3]: invalid data: not found, but 2 record(s)"),
        "{e}"
    );

    // LDIF too: an entry whose userAccountControl is not a number.
    let f = file(&ldif(&[("ann", b"cn: Ann\n"), ("bob", b"userAccountControl: lots\n")]));
    let e = entry_uuid(&f)
        .read_one(&idsync_core::Scope::default(), &ExternalId("bob".into()))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "file read_one [bob]: invalid data: not found, but 1 record(s) could not be read and it may be one of them; the first: file read [uid=bob,ou=people,dc=acme,dc=test] field \"userAccountControl\": invalid data: LDIF line 6, entry uid=bob,ou=people,dc=acme,dc=test, field userAccountControl: not a number"
    );

    // A file that read in full: not there is gone.
    let f = file(b"id,name,status\n1,Ann,active\n");
    assert!(
        CsvSource::new(csv_config(&f))
            .read_one(&idsync_core::Scope::default(), &ExternalId("2".into()))
            .await
            .unwrap()
            .is_none()
    );
}

/// The engine over the CSV source: bob's status turns to "maybe" and cem
/// leaves the feed. A full run disables neither (the read is partial), and
/// a just-in-time sync of bob fails rather than take him for gone.
#[tokio::test]
async fn csv_a_person_whose_status_reads_maybe_is_neither_disabled_nor_deprovisioned() {
    let f = file(b"id,name,status\n1,ann,active\n2,bob,active\n3,cem,active\n");
    let profile: Profile = serde_json::from_value(serde_json::json!({
        "id": "55555555-5555-4555-8555-555555555558", "name": "csv status",
        "mapping": {"users": [{"field": "login", "attribute": "name"}]}
    }))
    .unwrap();
    let app = MemoryTarget::new();
    let engine = Engine::new(
        profile,
        Arc::new(CsvSource::new(csv_config(&f))),
        Arc::new(app.clone()),
        Arc::new(MemoryStateStore::new()),
    );
    let first = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(first.applied(), 3, "{}", first.plan);

    std::fs::write(f.path(), b"id,name,status\n1,ann,active\n2,bob,maybe\n").unwrap();
    let second = engine.run(&RunOptions::default()).await.unwrap();
    let jit = engine.sync_one(&ExternalId("2".into()), &RunOptions::default()).await;
    let mut states: Vec<(String, bool)> = app
        .accounts()
        .iter()
        .map(|a| (a.fields["login"].clone(), a.enabled))
        .collect();
    states.sort();
    assert_eq!(
        states,
        [
            ("ann".to_owned(), true),
            ("bob".to_owned(), true),
            ("cem".to_owned(), true)
        ],
        "{}\n{jit:?}",
        second.plan
    );
    assert!(
        !second
            .plan
            .operations
            .iter()
            .any(|op| matches!(op.action, Action::Disable | Action::Delete)),
        "{}",
        second.plan
    );
    assert!(
        matches!(second.plan.completeness, Completeness::Partial { .. }),
        "{:?}",
        second.plan.completeness
    );
    assert_eq!(
        second.read_errors,
        [format!(
            "file read [2] field \"status\": invalid data: CSV line 3, id 2, column status: \"maybe\" is neither {WORDS}"
        )]
    );
    let e = jit.expect_err("bob cannot be read: he is not gone");
    assert!(
        e.to_string()
            .starts_with("file read_one [2]: invalid data: not found, but 1 record(s)"),
        "{e}"
    );
}
