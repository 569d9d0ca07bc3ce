//! LDAP entries → source objects: ids, kinds, containers, attributes,
//! aliases, the enabled flag and member DNs.

use ldap3::SearchEntry;

pub(crate) use idsync_core::dn::{key as dn_key, parent};

use idsync_core::{AttrValue, ExternalId, ObjectKind, SourceObject};

use crate::config::{Flavor, LdapConfig};
use crate::error::LdapError;

/// Attributes that are binary on AD whatever their bytes happen to be.
const BINARY: [&str; 3] = ["objectguid", "objectsid", "sidhistory"];

/// All values of an attribute as bytes, wherever ldap3 put them (it files
/// values that happen to be valid UTF-8 under `attrs`).
pub(crate) fn raw<'a>(e: &'a SearchEntry, name: &str) -> Vec<&'a [u8]> {
    let pick = |k: &String| k.eq_ignore_ascii_case(name);
    let text = e
        .attrs
        .iter()
        .filter(|(k, _)| pick(k))
        .flat_map(|(_, v)| v.iter().map(|s| s.as_bytes()));
    let bin = e
        .bin_attrs
        .iter()
        .filter(|(k, _)| pick(k))
        .flat_map(|(_, v)| v.iter().map(Vec::as_slice));
    text.chain(bin).collect()
}

/// The first text value of an attribute.
pub(crate) fn text<'a>(e: &'a SearchEntry, name: &str) -> Option<&'a str> {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
}

/// The entry's id in the flavour's id attribute.
pub(crate) fn id_of(config: &LdapConfig, e: &SearchEntry) -> Result<ExternalId, LdapError> {
    let bad = || LdapError::BadId {
        dn: e.dn.clone(),
        attribute: config.id_attr().to_owned(),
    };
    match config.flavor {
        Flavor::Ad => {
            let bytes = raw(e, "objectGUID").into_iter().next().ok_or_else(bad)?;
            idsync_core::ad::guid_to_string(bytes).map(ExternalId).ok_or_else(bad)
        }
        Flavor::Generic => text(e, "entryUUID")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| ExternalId(s.to_owned()))
            .ok_or_else(bad),
    }
}

/// Where the entry with this id is searched: (base, scope, filter). AD
/// finds it by `<GUID=…>` as the base, generic LDAP by entryUUID.
pub(crate) fn by_id(config: &LdapConfig, id: &str) -> (String, ldap3::Scope, String) {
    match config.flavor {
        Flavor::Ad => (format!("<GUID={id}>"), ldap3::Scope::Base, "(objectClass=*)".to_owned()),
        Flavor::Generic => (
            config.base_dn.clone(),
            ldap3::Scope::Subtree,
            format!("(entryUUID={})", ldap3::ldap_escape(id)),
        ),
    }
}

/// An id written as a UUID (an objectGUID, an entryUUID).
pub(crate) fn uuid_like(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// An equality assertion that finds the entry with this id among others in
/// one search filter: `(entryUUID=…)`, or on AD `(objectGUID=\xx…)` with
/// the GUID's bytes in AD's order (the first three fields little-endian).
/// `None` for an id that is not a UUID.
pub(crate) fn id_assertion(config: &LdapConfig, id: &str) -> Option<String> {
    if !uuid_like(id) {
        return None;
    }
    match config.flavor {
        Flavor::Generic => Some(format!("(entryUUID={id})")),
        Flavor::Ad => {
            let hex: Vec<u8> = id
                .bytes()
                .filter(|b| *b != b'-')
                .collect::<Vec<u8>>()
                .chunks(2)
                .map(|pair| {
                    std::str::from_utf8(pair)
                        .ok()
                        .and_then(|p| u8::from_str_radix(p, 16).ok())
                })
                .collect::<Option<Vec<u8>>>()?;
            let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
            let mut out = String::from("(objectGUID=");
            for i in order {
                out.push_str(&format!("\\{:02x}", hex.get(i)?));
            }
            out.push(')');
            Some(out)
        }
    }
}

/// Whether the entry is a group.
pub(crate) fn is_group(e: &SearchEntry) -> bool {
    e.attrs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("objectClass"))
        .flat_map(|(_, v)| v.iter())
        .any(|c| {
            ["group", "groupOfNames", "groupOfUniqueNames", "posixGroup"]
                .iter()
                .any(|g| c.eq_ignore_ascii_case(g))
        })
}

/// An entry as a source object, with its member DNs (groups) kept apart.
/// Takes the entry by value: values are moved, not copied (a full read
/// turns every entry of the directory into an object).
pub(crate) fn to_object(config: &LdapConfig, e: SearchEntry) -> Result<(SourceObject, Vec<String>), LdapError> {
    let kind = if is_group(&e) {
        ObjectKind::Group
    } else {
        ObjectKind::User
    };
    let bad = |attribute: &str| LdapError::BadId {
        dn: e.dn.clone(),
        attribute: attribute.to_owned(),
    };
    let mut object = SourceObject::new(id_of(config, &e)?, kind).in_container(parent(&e.dn));
    for name in ["objectSid", "sIDHistory"] {
        for v in raw(&e, name) {
            object
                .aliases
                .push(ExternalId(idsync_core::ad::sid_to_string(v).ok_or_else(|| bad(name))?));
        }
    }
    object.enabled = match config.flavor {
        Flavor::Ad => match text(&e, "userAccountControl") {
            Some(uac) => uac
                .trim()
                .parse::<u32>()
                .map(|v| v & 0x2 == 0)
                .map_err(|_| bad("userAccountControl"))?,
            None => true,
        },
        Flavor::Generic => config
            .disabled_attribute
            .as_deref()
            .and_then(|a| text(&e, a))
            .is_none_or(|v| !v.eq_ignore_ascii_case("disabled")),
    };
    let SearchEntry { dn, attrs, bin_attrs } = e;
    let mut members = Vec::new();
    for (name, values) in attrs {
        let base = name.split(';').next().unwrap_or(&name);
        let values: Vec<AttrValue> = if base.eq_ignore_ascii_case("member") || base.eq_ignore_ascii_case("uniqueMember")
        {
            members.extend(values);
            continue;
        } else if BINARY.iter().any(|b| base.eq_ignore_ascii_case(b)) {
            // Binary attributes whose bytes happened to be valid UTF-8.
            values.into_iter().map(|v| AttrValue::Binary(v.into_bytes())).collect()
        } else {
            values.into_iter().map(AttrValue::Text).collect()
        };
        object.attributes.entry(name).or_default().extend(values);
    }
    for (name, values) in bin_attrs {
        object
            .attributes
            .entry(name)
            .or_default()
            .extend(values.into_iter().map(AttrValue::Binary));
    }
    object.attributes.insert("dn".into(), vec![AttrValue::Text(dn)]);
    Ok((object, members))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn entry(attrs: &[(&str, &str)], bin: &[(&str, &[u8])]) -> SearchEntry {
        let mut a: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in attrs {
            a.entry((*k).to_owned()).or_default().push((*v).to_owned());
        }
        let mut b: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
        for (k, v) in bin {
            b.entry((*k).to_owned()).or_default().push(v.to_vec());
        }
        SearchEntry {
            dn: "cn=x,dc=acme,dc=test".into(),
            attrs: a,
            bin_attrs: b,
        }
    }

    fn config(flavor: Flavor) -> LdapConfig {
        LdapConfig::new("ldap://127.0.0.1", "cn=admin", "", "dc=acme,dc=test", flavor)
    }

    #[test]
    fn id_assertions_find_entry_uuids_and_ad_guids_in_their_byte_order() {
        let id = "00112233-4455-6677-8899-aabbccddeeff";
        assert_eq!(
            id_assertion(&config(Flavor::Generic), id).as_deref(),
            Some("(entryUUID=00112233-4455-6677-8899-aabbccddeeff)")
        );
        let ad = id_assertion(&config(Flavor::Ad), id).unwrap();
        assert_eq!(ad, r"(objectGUID=\33\22\11\00\55\44\77\66\88\99\aa\bb\cc\dd\ee\ff)");
        let bytes: Vec<u8> = ad[12..ad.len() - 1]
            .split('\\')
            .filter(|b| !b.is_empty())
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        assert_eq!(idsync_core::ad::guid_to_string(&bytes).as_deref(), Some(id));
        for not_an_id in [
            "",
            "nope",
            "00112233-4455-6677-8899-aabbccddeefg",
            "00112233-4455-6677-8899-aabbccddeeff)",
        ] {
            assert_eq!(id_assertion(&config(Flavor::Ad), not_an_id), None, "{not_an_id}");
            assert_eq!(id_assertion(&config(Flavor::Generic), not_an_id), None, "{not_an_id}");
        }
    }

    /// Found by the `ad_ids` fuzz target: an empty entryUUID made an object
    /// with an empty external id.
    #[test]
    fn an_empty_entry_uuid_is_a_bad_id_naming_the_entry() {
        for value in ["", "  "] {
            let e = to_object(&config(Flavor::Generic), entry(&[("entryUUID", value)], &[])).unwrap_err();
            assert_eq!(
                e.to_string(),
                "entryUUID of cn=x,dc=acme,dc=test is missing or malformed"
            );
        }
    }

    #[test]
    fn a_short_guid_or_a_bad_sid_is_a_bad_id_naming_the_entry_and_attribute() {
        let guid = [7u8; 16];
        let e = to_object(&config(Flavor::Ad), entry(&[], &[("objectGUID", &guid[..15])])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "objectGUID of cn=x,dc=acme,dc=test is missing or malformed"
        );
        let e = to_object(
            &config(Flavor::Ad),
            entry(&[], &[("objectGUID", &guid), ("objectSid", &[1, 5, 0])]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "objectSid of cn=x,dc=acme,dc=test is missing or malformed"
        );
    }
}
