//! The CSV source: no input may panic, every object has an id, ids are
//! unique, a status is one of the known values, the read ends.
#![no_main]

use std::collections::HashSet;

use idsync_core::ReadItem;
use libfuzzer_sys::fuzz_target;

/// The default active and inactive values: any other status is an error.
const STATUS_WORDS: [&str; 14] = [
    "true",
    "1",
    "yes",
    "y",
    "active",
    "enabled",
    "false",
    "0",
    "no",
    "n",
    "inactive",
    "disabled",
    "terminated",
    "left",
];

fuzz_target!(|data: &[u8]| {
    for semicolon in [false, true] {
        let items = idsync_file::fuzzing::csv(data, semicolon);
        let mut ids = HashSet::new();
        for item in &items {
            match item {
                Ok(ReadItem::Object(o)) => {
                    assert!(!o.id.0.is_empty(), "an object without an id");
                    if let Some(status) = o.first_text("status") {
                        assert!(
                            STATUS_WORDS.iter().any(|w| w.eq_ignore_ascii_case(status)),
                            "read with status {status:?}"
                        );
                    }
                    assert!(ids.insert(o.id.clone()), "id {} twice", o.id);
                }
                Ok(ReadItem::End { .. }) => {}
                Ok(other) => panic!("an item the CSV source never sends: {other:?}"),
                Err(e) => assert!(e.to_string().contains("CSV line"), "{e}"),
            }
        }
        if items.len() > 1 {
            assert!(matches!(items.last(), Some(Ok(ReadItem::End { .. }))));
        }
    }
});
