//! LDIF records -> source objects.

use idsync_core::dn::parent;
use idsync_core::{AttrValue, ExternalId, ObjectKind, SourceObject};

use crate::config::LdifConfig;
use crate::error::FileError;
use crate::ldif::Record;

/// Attributes that are binary in AD exports, whatever their bytes.
const BINARY: [&str; 4] = ["objectguid", "objectsid", "sidhistory", "thumbnailphoto"];

/// Turns a record into an object; `Ok(None)` for entries that are neither
/// users nor groups (OUs, containers, computers).
pub(crate) fn to_object(
    config: &LdifConfig,
    r: &Record,
) -> std::result::Result<Option<(SourceObject, Vec<String>)>, FileError> {
    let classes: Vec<String> = r
        .values("objectClass")
        .map(|v| String::from_utf8_lossy(v).to_lowercase())
        .collect();
    let has = |list: &[String]| list.iter().any(|c| classes.contains(&c.to_lowercase()));
    if has(&config.exclude_classes) {
        return Ok(None);
    }
    let kind = if has(&config.group_classes) {
        ObjectKind::Group
    } else if has(&config.user_classes) {
        ObjectKind::User
    } else {
        return Ok(None);
    };
    let bad = |field: &str, message: String| FileError::Ldif {
        line: r.line,
        dn: Some(r.dn.clone()),
        field: Some(field.to_owned()),
        message,
    };
    let raw_id = r.values(&config.id_attribute).next().ok_or_else(|| {
        bad(
            &config.id_attribute,
            "missing: every user and group needs its id".into(),
        )
    })?;
    let id = if config.id_attribute.eq_ignore_ascii_case("objectGUID") {
        idsync_core::ad::guid_to_string(raw_id)
            .ok_or_else(|| bad("objectGUID", format!("{} bytes, expected 16", raw_id.len())))?
    } else {
        String::from_utf8(raw_id.to_vec()).map_err(|_| bad(&config.id_attribute, "not valid UTF-8".into()))?
    };
    if id.trim().is_empty() {
        return Err(bad(
            &config.id_attribute,
            "empty: every user and group needs its id".into(),
        ));
    }
    let mut object = SourceObject::new(id, kind).in_container(parent(&r.dn));
    object
        .attributes
        .insert("dn".into(), vec![AttrValue::Text(r.dn.clone())]);
    let mut members = Vec::new();
    for (name, value) in &r.attributes {
        let base = name.split(';').next().unwrap_or(name);
        let lower = base.to_lowercase();
        let v = if BINARY.contains(&lower.as_str()) {
            AttrValue::Binary(value.clone())
        } else {
            match String::from_utf8(value.clone()) {
                Ok(s) => AttrValue::Text(s),
                Err(e) => AttrValue::Binary(e.into_bytes()),
            }
        };
        if kind == ObjectKind::Group && config.member_attributes.iter().any(|m| m.eq_ignore_ascii_case(base)) {
            if let AttrValue::Text(dn) = &v {
                members.push(dn.clone());
            }
            continue;
        }
        if lower == "objectsid" || lower == "sidhistory" {
            let sid = idsync_core::ad::sid_to_string(value).ok_or_else(|| bad(base, "not a valid SID".into()))?;
            object.aliases.push(ExternalId(sid));
        }
        if lower == "useraccountcontrol" {
            let uac: u32 = v
                .as_text()
                .and_then(|t| t.trim().parse().ok())
                .ok_or_else(|| bad(base, "not a number".into()))?;
            object.enabled = uac & 0x2 == 0;
        }
        object.attributes.entry(name.clone()).or_default().push(v);
    }
    Ok(Some((object, members)))
}
