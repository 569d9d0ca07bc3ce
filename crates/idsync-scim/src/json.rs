//! SCIM JSON with case-insensitive attribute names (RFC 7643 §2.1): the
//! helpers the client's field paths and the service provider's filter and
//! PATCH grammars (`idsync-scim-server`) share.

use serde_json::{Map, Value};

/// The value of attribute `name`, in any case.
pub fn get_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name)
        .or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// The slot of attribute `name`, under the spelling it has already, else
/// under `name`, holding `null` when new.
pub fn entry_ci<'a>(obj: &'a mut Map<String, Value>, name: &str) -> &'a mut Value {
    let key = obj
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_owned());
    obj.entry(key).or_insert(Value::Null)
}

/// Removes attribute `name`, in any case.
pub fn remove_ci(obj: &mut Map<String, Value>, name: &str) {
    if let Some(key) = obj.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned() {
        obj.remove(&key);
    }
}

/// Lists `schema` in the resource's `schemas`, once.
pub fn add_schema(resource: &mut Map<String, Value>, schema: &str) {
    let schemas = entry_ci(resource, "schemas");
    if !schemas.is_array() {
        *schemas = Value::Array(Vec::new());
    }
    if let Value::Array(list) = schemas
        && !list
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(schema)))
    {
        list.push(Value::String(schema.to_owned()));
    }
}

/// A SCIM boolean: `true`/`false`, or the same as a string in any case
/// (services that send `"True"`); `None` for anything else.
pub fn bool_of(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_match_in_any_case_and_keep_their_spelling() {
        let mut o = json!({"userName": "ann", "Schemas": ["a"]})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(get_ci(&o, "USERNAME"), Some(&json!("ann")));
        *entry_ci(&mut o, "username") = json!("bob");
        add_schema(&mut o, "b");
        add_schema(&mut o, "B");
        assert_eq!(
            Value::Object(o.clone()),
            json!({"userName": "bob", "Schemas": ["a", "b"]})
        );
        remove_ci(&mut o, "SCHEMAS");
        assert_eq!(Value::Object(o), json!({"userName": "bob"}));
        assert_eq!(
            [json!(true), json!("False"), json!("no"), json!(1)].map(|v| bool_of(&v)),
            [Some(true), Some(false), None, None]
        );
    }
}
