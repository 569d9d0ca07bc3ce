//! The LDIF reader and source (records, folding, base64, binary AD ids,
//! members): no input may panic, every object has an id, the read ends.
#![no_main]

use idsync_core::ReadItem;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for entry_uuid in [false, true] {
        let items = idsync_file::fuzzing::ldif(data, entry_uuid);
        assert!(
            matches!(items.last(), Some(Ok(ReadItem::End { .. }))),
            "a read from memory always ends"
        );
        for item in &items {
            match item {
                Ok(ReadItem::Object(o)) => assert!(!o.id.0.is_empty(), "an object without an id"),
                Ok(ReadItem::End { .. }) => {}
                Ok(other) => panic!("an item the LDIF source never sends: {other:?}"),
                Err(e) => assert!(e.to_string().contains("LDIF line"), "{e}"),
            }
        }
    }
});
