//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): what
//! the adapter makes of a server's entries and control values. Not a stable API.

use std::collections::HashMap;

use idsync_core::SourceObject;
use ldap3::SearchEntry;

use crate::config::{Flavor, LdapConfig};

/// An entry as a source object (AD flavour: `objectGUID` id, `objectSid`
/// and `sIDHistory` aliases, `userAccountControl`; generic: `entryUUID`),
/// or the error text naming the entry and the attribute.
pub fn entry_to_object(
    ad: bool,
    dn: String,
    attrs: HashMap<String, Vec<String>>,
    bin_attrs: HashMap<String, Vec<Vec<u8>>>,
) -> Result<(SourceObject, Vec<String>), String> {
    let flavor = if ad { Flavor::Ad } else { Flavor::Generic };
    let config = LdapConfig::new("ldap://127.0.0.1", "cn=fuzz", "", "dc=fuzz", flavor);
    crate::map::to_object(&config, SearchEntry { dn, attrs, bin_attrs }).map_err(|e| e.to_string())
}

/// A DirSync response control value: whether more waits, and the cookie.
pub fn dirsync_response(value: &[u8]) -> Option<(bool, Vec<u8>)> {
    crate::delta::dirsync::response(value)
}
