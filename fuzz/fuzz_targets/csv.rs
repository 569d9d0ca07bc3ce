//! The CSV source: no input may panic, every object has an id, ids are
//! unique, the read ends.
#![no_main]

use std::collections::HashSet;

use idsync_core::ReadItem;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for semicolon in [false, true] {
        let items = idsync_file::fuzzing::csv(data, semicolon);
        let mut ids = HashSet::new();
        for item in &items {
            match item {
                Ok(ReadItem::Object(o)) => {
                    assert!(!o.id.0.is_empty(), "an object without an id");
                    assert!(ids.insert(o.id.clone()), "id {} twice", o.id);
                }
                Ok(ReadItem::End { .. }) => {}
                Err(e) => assert!(e.to_string().contains("CSV line"), "{e}"),
            }
        }
        if items.len() > 1 {
            assert!(matches!(items.last(), Some(Ok(ReadItem::End { .. }))));
        }
    }
});
