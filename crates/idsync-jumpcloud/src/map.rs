//! System user and user group JSON ↔ the core's model.

use idsync_core::model::{ExternalId, Fields, Link, ObjectKind, ProfileId, SourceObject, TargetAccount};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::JumpCloudError;

/// Plain text fields of a system user read as source attributes and written as target fields.
pub(crate) const USER_FIELDS: &[&str] = &[
    "username",
    "email",
    "firstname",
    "lastname",
    "middlename",
    "displayname",
    "employeeIdentifier",
    "department",
    "jobTitle",
    "manager",
    "company",
    "costCenter",
    "location",
    "employeeType",
    "description",
    "alternateEmail",
    "recoveryEmail",
    "state",
    "created",
    "creationSource",
    "external_dn",
    "external_source_type",
];

/// Boolean flags read as `"true"`/`"false"` attributes (never written back).
const USER_FLAGS: &[&str] = &[
    "activated",
    "account_locked",
    "suspended",
    "password_expired",
    "externally_managed",
];

/// The user's id: `_id`, or `id` when only that is served.
pub(crate) fn id_of(v: &Value) -> Option<&str> {
    v.get("_id")
        .or_else(|| v.get("id"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The values of a system user's `state` (JUMPCLOUD-API.md "The state model").
const STATES: [&str; 3] = ["STAGED", "ACTIVATED", "SUSPENDED"];

/// A value for an error message: scalars as JSON, containers by their kind.
fn shown(v: &Value) -> String {
    match v {
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
        scalar => scalar.to_string(),
    }
}

/// Whether the system user `v` (id `id`) is enabled. Disabled is
/// `state == "SUSPENDED"` or `suspended == true` (JUMPCLOUD-API.md "The
/// state model"); an absent or `null` field says nothing (enabled, as
/// before `state` existed). A `suspended` that is not a boolean, or a
/// `state` that is not one of [`STATES`], is an error naming the user and
/// the field: guessing would disable a user, or keep a leaver enabled.
pub(crate) fn user_enabled(v: &Value, id: &str) -> Result<bool, JumpCloudError> {
    let bad = |field: &str, message: String| JumpCloudError::BadValue {
        object: format!("system user {id}"),
        field: field.to_owned(),
        message,
    };
    let suspended = match v.get("suspended") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(bad("suspended", format!("{} is not a boolean", shown(other)))),
    };
    let state_suspended = match v.get("state") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if STATES.contains(&s.as_str()) => s == "SUSPENDED",
        Some(other) => {
            let message = format!("{} is not one of {}", shown(other), STATES.join(", "));
            return Err(bad("state", message));
        }
    };
    Ok(!(suspended || state_suspended))
}

/// Custom attributes `[{name, value}]` as (name, value) pairs.
pub(crate) fn custom_attributes(v: &Value) -> Vec<(String, String)> {
    v.get("attributes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| Some((x.get("name")?.as_str()?.to_owned(), x.get("value").and_then(text)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// A system user as a source object; `Ok(None)` without an id, `Err` for a
/// state that means nothing ([`user_enabled`]).
pub(crate) fn user_to_source(v: &Value) -> Result<Option<SourceObject>, JumpCloudError> {
    let Some(id) = id_of(v) else {
        return Ok(None);
    };
    let mut o = SourceObject::new(id, ObjectKind::User).enabled(user_enabled(v, id)?);
    if let Some(n) = v.get("username").and_then(Value::as_str) {
        o = o.with("name", n);
    }
    for f in USER_FIELDS.iter().chain(USER_FLAGS) {
        if let Some(t) = v.get(*f).and_then(text).filter(|t| !t.is_empty()) {
            o = o.with(f, t);
        }
    }
    if let Some(m) = v
        .get("manager")
        .and_then(|m| m.get("_id").or_else(|| m.get("id")))
        .and_then(Value::as_str)
    {
        o = o.with("manager", m);
    }
    for p in v.get("phoneNumbers").and_then(Value::as_array).into_iter().flatten() {
        if let Some(n) = p.get("number").and_then(text) {
            let kind = p.get("type").and_then(Value::as_str).unwrap_or("other");
            o = o
                .with("phoneNumbers", n.clone())
                .with(&format!("phoneNumbers.{kind}"), n);
        }
    }
    for a in v.get("addresses").and_then(Value::as_array).into_iter().flatten() {
        let kind = a.get("type").and_then(Value::as_str).unwrap_or("other");
        if let Some(obj) = a.as_object() {
            for (k, val) in obj {
                if k == "type" || k == "id" {
                    continue;
                }
                if let Some(t) = text(val).filter(|t| !t.is_empty()) {
                    o = o.with(&format!("addresses.{kind}.{k}"), t);
                }
            }
        }
    }
    for (name, value) in custom_attributes(v) {
        o = o.with(&format!("attr.{name}"), value);
    }
    Ok(Some(o))
}

/// A user group as a source object with its member ids.
pub(crate) fn group_to_source(v: &Value, members: &[Value]) -> Option<SourceObject> {
    let mut o = SourceObject::new(id_of(v)?, ObjectKind::Group);
    for f in ["name", "description", "email", "type"] {
        if let Some(t) = v.get(f).and_then(text).filter(|t| !t.is_empty()) {
            o = o.with(f, t);
        }
    }
    for m in members {
        let to = m.get("to").unwrap_or(m);
        if to.get("type").and_then(Value::as_str).unwrap_or("user") == "user"
            && let Some(id) = to.get("id").and_then(Value::as_str)
        {
            o = o.with_member(id);
        }
    }
    Some(o)
}

/// `"<profile uuid>/<external id>"`.
pub(crate) fn link_value(link: &Link) -> String {
    format!("{}/{}", link.profile, link.external)
}

/// Parses a link value; `None` for anything else.
pub(crate) fn parse_link(s: &str) -> Option<Link> {
    let (p, e) = s.split_once('/')?;
    let profile = ProfileId(Uuid::parse_str(p).ok()?);
    (!e.is_empty()).then(|| Link {
        profile,
        external: ExternalId(e.to_owned()),
    })
}

/// Marker in a user group's description that carries the link (groups have no custom attributes in v2 writes).
pub(crate) const GROUP_LINK_PREFIX: &str = "idsync:";

/// A system user as a target account (fields are the plain text fields);
/// `Ok(None)` without an id, `Err` for a state that means nothing
/// ([`user_enabled`]).
pub(crate) fn user_to_account(v: &Value, link_attribute: &str) -> Result<Option<TargetAccount>, JumpCloudError> {
    let Some(id) = id_of(v) else {
        return Ok(None);
    };
    let mut a = TargetAccount::new(id, ObjectKind::User);
    a.enabled = user_enabled(v, id)?;
    for f in USER_FIELDS {
        if let Some(t) = v.get(*f).and_then(text) {
            a.fields.insert((*f).to_owned(), t);
        }
    }
    for (name, value) in custom_attributes(v) {
        if name == link_attribute {
            a.link = parse_link(&value);
        } else {
            a.fields.insert(format!("attr.{name}"), value);
        }
    }
    Ok(Some(a))
}

/// A user group as a target account; the link lives in its description.
pub(crate) fn group_to_account(v: &Value, members: &[Value]) -> Option<TargetAccount> {
    let mut a = TargetAccount::new(id_of(v)?, ObjectKind::Group);
    if let Some(n) = v.get("name").and_then(text) {
        a.fields.insert("name".into(), n);
    }
    if let Some(d) = v.get("description").and_then(Value::as_str) {
        match d.strip_prefix(GROUP_LINK_PREFIX) {
            Some(l) => a.link = parse_link(l),
            None => {
                a.fields.insert("description".into(), d.to_owned());
            }
        }
    }
    for m in members {
        if let Some(id) = m.get("to").and_then(|t| t.get("id")).and_then(Value::as_str) {
            a.members.push(id.into());
        }
    }
    Some(a)
}

/// The JSON body for a create or update of a system user from target fields.
/// `attr.<name>` fields become custom attributes, merged with `existing` ones
/// (the API replaces arrays as a whole).
pub(crate) fn user_body(fields: &Fields, existing: &[(String, String)], link: Option<(&str, &Link)>) -> Value {
    let mut body = Map::new();
    let mut attrs: Vec<(String, String)> = existing.to_vec();
    let mut attrs_changed = false;
    let mut set_attr = |name: &str, value: String| {
        attrs.retain(|(n, _)| n != name);
        attrs.push((name.to_owned(), value));
    };
    for (k, val) in fields {
        if let Some(name) = k.strip_prefix("attr.") {
            set_attr(name, val.clone());
            attrs_changed = true;
        } else if k != "state" && k != "created" && k != "creationSource" {
            body.insert(k.clone(), Value::String(val.clone()));
        }
    }
    if let Some((name, link)) = link {
        set_attr(name, link_value(link));
        attrs_changed = true;
    }
    if attrs_changed {
        let list = attrs
            .into_iter()
            .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
            .collect();
        body.insert("attributes".into(), Value::Array(list));
    }
    Value::Object(body)
}
