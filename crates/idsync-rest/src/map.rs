//! API JSON ↔ the core's model, through the configured JSON pointers.

use idsync_core::model::{ExternalId, Fields, Link, ObjectKind, ProfileId, SourceObject, TargetAccount, TargetId};
use serde_json::{Map, Number, Value};
use uuid::Uuid;

use crate::config::{FieldType, ResourceConfig};
use crate::error::RestError;

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

/// The words a flag may be written as (any case, trimmed), true first.
const FLAG_WORDS: [(&str, &str); 4] = [("true", "false"), ("yes", "no"), ("y", "n"), ("1", "0")];

/// A word of [`FLAG_WORDS`] as a boolean; `None` for any other text.
fn flag_word(s: &str) -> Option<bool> {
    let s = s.trim();
    FLAG_WORDS.iter().find_map(|(yes, no)| {
        if s.eq_ignore_ascii_case(yes) {
            Some(true)
        } else if s.eq_ignore_ascii_case(no) {
            Some(false)
        } else {
            None
        }
    })
}

/// A flag value as a boolean: a JSON boolean, the number 1 or 0, or a word
/// of [`FLAG_WORDS`]. `Err` says what else the value is.
fn flag(v: &Value) -> Result<bool, String> {
    let parsed = match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_u64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => flag_word(s),
        _ => None,
    };
    parsed.ok_or_else(|| {
        let what = match v {
            Value::Array(_) => "an array".to_owned(),
            Value::Object(_) => "an object".to_owned(),
            scalar => scalar.to_string(),
        };
        let words: Vec<String> = FLAG_WORDS.iter().map(|(yes, no)| format!("{yes}/{no}")).collect();
        format!("{what} is not a boolean ({})", words.join(", "))
    })
}

/// Whether the object is enabled: `true` when no `enabled` is configured or
/// the object has no value (absent or `null`) at its pointer, else the flag
/// there ([`flag`]), inverted when configured. A value that is not a flag is
/// an error naming `object` and the pointer: guessing would disable a user,
/// or keep a leaver enabled.
pub(crate) fn enabled_of(v: &Value, resource: &ResourceConfig, object: &str) -> Result<bool, RestError> {
    let Some(spec) = &resource.enabled else {
        return Ok(true);
    };
    match at(v, &spec.pointer) {
        None | Some(Value::Null) => Ok(true),
        Some(value) => flag(value)
            .map(|on| on != spec.invert)
            .map_err(|message| RestError::BadValue {
                object: object.to_owned(),
                pointer: spec.pointer.clone(),
                message,
            }),
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

/// An API object as a target account; `Ok(None)` without an id, `Err` for
/// an enabled flag that means nothing ([`enabled_of`]).
pub(crate) fn to_account(
    v: &Value,
    kind: ObjectKind,
    resource: &ResourceConfig,
) -> Result<Option<TargetAccount>, RestError> {
    let Some(id) = id_of(v, resource) else {
        return Ok(None);
    };
    let enabled = enabled_of(v, resource, &format!("{kind} {id}"))?;
    let link = resource
        .link
        .as_ref()
        .and_then(|p| at(v, p))
        .and_then(Value::as_str)
        .and_then(parse_link);
    Ok(Some(TargetAccount {
        id: TargetId(id),
        link,
        kind,
        fields: fields_of(v, resource),
        enabled,
        members: members_of(v, resource).into_iter().map(TargetId).collect(),
    }))
}

/// An API object as a source object; `Ok(None)` without an id, `Err` for
/// an enabled flag that means nothing ([`enabled_of`]). Attributes are the
/// configured fields plus every top-level scalar of the object.
pub(crate) fn to_source(
    v: &Value,
    kind: ObjectKind,
    resource: &ResourceConfig,
    member_prefix: &str,
) -> Result<Option<SourceObject>, RestError> {
    let Some(raw) = id_of(v, resource) else {
        return Ok(None);
    };
    let enabled = enabled_of(v, resource, &format!("{kind} {raw}"))?;
    let mut o = SourceObject::new(format!("{}{raw}", resource.id_prefix), kind).enabled(enabled);
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
    Ok(Some(o))
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
        FieldType::Bool => flag_word(value)
            .map(Value::Bool)
            .ok_or_else(|| format!("{value:?} is not a boolean")),
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
        assert_eq!(typed(" N ", FieldType::Bool), Ok(json!(false)));
        assert!(typed("maybe", FieldType::Bool).is_err());
    }
}
