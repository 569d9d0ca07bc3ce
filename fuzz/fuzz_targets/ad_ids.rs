//! SID and GUID decoding, DN handling, LDAP entries turned into objects
//! (both flavours) and DirSync control values: no input may panic.
#![no_main]

use std::collections::HashMap;

use idsync_core::{ad, dn};
use libfuzzer_sys::fuzz_target;

/// Attribute names the entry builder picks from (the first byte of a chunk).
const NAMES: [&str; 10] = [
    "objectGUID",
    "objectSid",
    "sIDHistory",
    "userAccountControl",
    "entryUUID",
    "objectClass",
    "member",
    "cn;lang-de",
    "memberOf",
    "disabled",
];

fuzz_target!(|data: &[u8]| {
    if let Some(sid) = ad::sid_to_string(data) {
        assert!(sid.starts_with("S-"), "{sid}");
    }
    match ad::guid_to_string(data) {
        Some(guid) => assert_eq!((data.len(), guid.len()), (16, 36)),
        None => assert_ne!(data.len(), 16),
    }
    let _ = idsync_ldap::fuzzing::dirsync_response(data);

    let text = String::from_utf8_lossy(data);
    let parent = dn::parent(&text);
    assert!(text.ends_with(parent), "the parent is a suffix");
    let _ = dn::within(&text, parent);
    let _ = dn::component_value(&text, "cn");
    assert_eq!(dn::key(&dn::key(&text)), dn::key(&text).to_lowercase());

    // An entry: chunks split on 0xff; the first is the DN, then each chunk
    // is an attribute (name chosen by its first byte) and a value.
    let mut chunks = data.split(|b| *b == 0xff);
    let entry_dn = String::from_utf8_lossy(chunks.next().unwrap_or_default()).into_owned();
    let mut attrs: HashMap<String, Vec<String>> = HashMap::new();
    let mut bin: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    for chunk in chunks {
        let Some((&pick, value)) = chunk.split_first() else {
            continue;
        };
        let name = NAMES[usize::from(pick) % NAMES.len()].to_owned();
        match String::from_utf8(value.to_vec()) {
            Ok(s) if pick & 0x80 == 0 => attrs.entry(name).or_default().push(s),
            _ => bin.entry(name).or_default().push(value.to_vec()),
        }
    }
    for ad in [true, false] {
        match idsync_ldap::fuzzing::entry_to_object(ad, entry_dn.clone(), attrs.clone(), bin.clone()) {
            Ok((object, _members)) => assert!(!object.id.0.is_empty(), "an object without an id"),
            Err(e) => assert!(e.contains(&entry_dn), "the error names the entry: {e}"),
        }
    }
});
