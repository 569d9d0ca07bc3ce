//! API JSON ↔ the core's model, through the configured JSON pointers.

use idsync_core::model::{ExternalId, Fields, Link, ObjectKind, ProfileId, SourceObject, TargetAccount, TargetId};
use serde_json::{Map, Number, Value};
use uuid::Uuid;

use crate::config::{FieldType, ResourceConfig};

/// A scalar as text: strings as they are, numbers and booleans printed;
/// `null`, arrays and objects are "not set".
pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The value at `pointer` (`""` is the value itself).
pub(crate) fn at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    v.pointer(pointer)
}

/// The object's id as text.
pub(crate) fn id_of(v: &Value, resource: &ResourceConfig) -> Option<String> {
    at(v, &resource.id).and_then(text).filter(|s| !s.is_empty())
}

/// Truthiness of a flag value: booleans, `"true"`/`"yes"`/`"1"`, non-zero numbers.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "1" | "y"),
        _ => false,
    }
}

/// Whether the object is enabled (no `enabled` configured: always).
pub(crate) fn enabled_of(v: &Value, resource: &ResourceConfig) -> bool {
    match &resource.enabled {
        None => true,
        Some(spec) => match at(v, &spec.pointer) {
            // A missing flag: nothing says the object is disabled.
            None | Some(Value::Null) => true,
            Some(flag) => truthy(flag) != spec.invert,
        },
    }
}

/// `"<profile id>:<external id>"`, as the SCIM adapter keeps it in `externalId`.
pub(crate) fn link_value(link: &Link) -> String {
    format!("{}:{}", link.profile, link.external)
}

/// Parses a link value; `None` for anything else (an unmanaged account).
pub(crate) fn parse_link(s: &str) -> Option<Link> {
    let (p, e) = s.split_once(':')?;
    let profile = ProfileId(Uuid::parse_str(p).ok()?);
    (!e.is_empty()).then(|| Link {
        profile,
        external: ExternalId(e.to_owned()),
    })
}

/// The mapped fields present in the object.
pub(crate) fn fields_of(v: &Value, resource: &ResourceConfig) -> Fields {
    resource
        .fields
        .iter()
        .filter_map(|(name, spec)| Some((name.clone(), at(v, spec.pointer()).and_then(text)?)))
        .collect()
}

/// The ids of a group's members.
pub(crate) fn members_of(v: &Value, resource: &ResourceConfig) -> Vec<String> {
    let Some(pointer) = &resource.members else {
        return Vec::new();
    };
    at(v, pointer)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|m| at(m, &resource.member_id).and_then(text))
                .collect()
        })
        .unwrap_or_default()
}

/// An API object as a target account; `None` without an id.
pub(crate) fn to_account(v: &Value, kind: ObjectKind, resource: &ResourceConfig) -> Option<TargetAccount> {
    let id = id_of(v, resource)?;
    let link = resource
        .link
        .as_ref()
        .and_then(|p| at(v, p))
        .and_then(Value::as_str)
        .and_then(parse_link);
    Some(TargetAccount {
        id: TargetId(id),
        link,
        kind,
        fields: fields_of(v, resource),
        enabled: enabled_of(v, resource),
        members: members_of(v, resource).into_iter().map(TargetId).collect(),
    })
}

/// An API object as a source object; `None` without an id. Attributes
/// are the configured fields plus every top-level scalar of the object.
pub(crate) fn to_source(
    v: &Value,
    kind: ObjectKind,
    resource: &ResourceConfig,
    member_prefix: &str,
) -> Option<SourceObject> {
    let id = format!("{}{}", resource.id_prefix, id_of(v, resource)?);
    let mut o = SourceObject::new(id, kind).enabled(enabled_of(v, resource));
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            if let Some(t) = text(val).filter(|t| !t.is_empty()) {
                o = o.with(k, t);
            }
        }
    }
    for (name, value) in fields_of(v, resource) {
        if !value.is_empty() && !o.attributes.contains_key(&name) {
            o = o.with(&name, value);
        }
    }
    if let Some(c) = resource.container.as_ref().and_then(|p| at(v, p)).and_then(text) {
        o = o.in_container(c);
    }
    o.members = members_of(v, resource)
        .into_iter()
        .map(|m| ExternalId(format!("{member_prefix}{m}")))
        .collect();
    Some(o)
}

/// `value` as JSON of type `kind`; `Err` names what does not parse.
pub(crate) fn typed(value: &str, kind: FieldType) -> Result<Value, String> {
    match kind {
        FieldType::String => Ok(Value::String(value.to_owned())),
        FieldType::Number => {
            let t = value.trim();
            if let Ok(i) = t.parse::<i64>() {
                return Ok(Value::Number(i.into()));
            }
            t.parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("{value:?} is not a number"))
        }
        FieldType::Bool => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!("{value:?} is not a boolean")),
        },
    }
}

/// Writes `value` at `pointer` in `target`, making the objects on the way.
/// Array indexes are not created: a pointer through an array that is not
/// there fails.
pub(crate) fn set(target: &mut Value, pointer: &str, value: Value) -> Result<(), String> {
    if pointer.is_empty() {
        *target = value;
        return Ok(());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("{pointer:?} is not a JSON pointer (it must start with '/')"));
    };
    let mut cur = target;
    let parts: Vec<String> = rest
        .split('/')
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
        cur = match cur {
            Value::Object(map) => {
                if last {
                    map.insert(part.clone(), value);
                    return Ok(());
                }
                map.entry(part.clone()).or_insert(Value::Null)
            }
            Value::Array(items) => {
                let idx: usize = part
                    .parse()
                    .map_err(|_| format!("{pointer:?}: {part:?} is not an array index"))?;
                let slot = items
                    .get_mut(idx)
                    .ok_or_else(|| format!("{pointer:?}: no element {idx}"))?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
            _ => return Err(format!("{pointer:?} goes through a value that is not an object")),
        };
    }
    Ok(())
}

/// The id as JSON: a number for `numeric_id` resources when it parses as one.
pub(crate) fn id_json(id: &str, numeric: bool) -> Value {
    if numeric && let Ok(n) = id.parse::<i64>() {
        return Value::Number(n.into());
    }
    Value::String(id.to_owned())
}

/// What a body template may refer to.
#[derive(Debug, Default)]
pub(crate) struct Vars<'a> {
    pub id: Option<&'a str>,
    pub member: Option<&'a str>,
    pub object: Option<&'a Value>,
    pub numeric_id: bool,
}

/// Renders a body template (see [`crate::OperationConfig`]).
pub(crate) fn render(template: &Value, vars: &Vars<'_>) -> Value {
    match template {
        Value::String(s) => match s.as_str() {
            "{object}" => vars.object.cloned().unwrap_or(Value::Object(Map::new())),
            "{id}" => vars.id.map(|i| id_json(i, vars.numeric_id)).unwrap_or(Value::Null),
            "{member}" => vars.member.map(|i| id_json(i, vars.numeric_id)).unwrap_or(Value::Null),
            "{enabled}" => Value::Bool(true),
            "{disabled}" => Value::Bool(false),
            _ => Value::String(
                s.replace("{id}", vars.id.unwrap_or_default())
                    .replace("{member}", vars.member.unwrap_or_default()),
            ),
        },
        Value::Array(items) => Value::Array(items.iter().map(|i| render(i, vars)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), render(v, vars))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_makes_the_objects_on_the_way() {
        let mut v = json!({"a": 1});
        set(&mut v, "/b/c", json!("x")).unwrap();
        set(&mut v, "/a", json!(2)).unwrap();
        assert_eq!(v, json!({"a": 2, "b": {"c": "x"}}));
        let mut arr = json!([{"id": 1}]);
        set(&mut arr, "/0/name", json!("n")).unwrap();
        assert_eq!(arr, json!([{"id": 1, "name": "n"}]));
        assert!(set(&mut v, "/a/b", json!(1)).is_err());
        assert!(set(&mut v, "a", json!(1)).is_err());
    }

    #[test]
    fn links_round_trip_and_junk_is_unmanaged() {
        let l = Link {
            profile: ProfileId(Uuid::nil()),
            external: ExternalId("a:b".into()),
        };
        assert_eq!(parse_link(&link_value(&l)), Some(l));
        assert_eq!(parse_link("hand made"), None);
        assert_eq!(parse_link("00000000-0000-0000-0000-000000000000:"), None);
    }

    #[test]
    fn templates_and_types() {
        let obj = json!({"name": "Ann"});
        let v = render(
            &json!([{"o": "{object}", "id": "{id}", "p": "u/{id}/m/{member}", "n": 3}]),
            &Vars {
                id: Some("42"),
                member: Some("7"),
                object: Some(&obj),
                numeric_id: true,
            },
        );
        assert_eq!(v, json!([{"o": {"name": "Ann"}, "id": 42, "p": "u/42/m/7", "n": 3}]));
        assert_eq!(typed("12", FieldType::Number), Ok(json!(12)));
        assert_eq!(typed("1.5", FieldType::Number), Ok(json!(1.5)));
        assert!(typed("twelve", FieldType::Number).is_err());
        assert_eq!(typed("yes", FieldType::Bool), Ok(json!(true)));
    }
}
