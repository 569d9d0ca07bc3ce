//! The objects held, and how a create and an update change them.

use std::collections::{BTreeMap, HashSet};

use axum::http::Method;
use serde_json::{Map, Value, json};

use super::Collection;

#[derive(Debug, Default)]
pub(super) struct Store {
    /// The objects of each collection, in creation order.
    pub(super) items: BTreeMap<String, Vec<Value>>,
    next_id: BTreeMap<String, u64>,
    /// The OAuth2 tokens issued.
    pub(super) tokens: HashSet<String>,
    /// Every request seen: its method and path.
    pub(super) requests: Vec<(Method, String)>,
}

/// A JSON scalar as text.
pub(super) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The id of an object, as text.
pub(super) fn id_text(v: &Value, c: &Collection) -> String {
    v.get(&c.id_field).and_then(scalar).unwrap_or_default()
}

/// Adds an object as a `POST` would, its id assigned unless it has one.
pub(super) fn store_create(store: &mut Store, c: &Collection, mut object: Value) -> Value {
    if !object.is_object() {
        object = Value::Object(Map::new());
    }
    let has_id = object.get(&c.id_field).is_some_and(|v| !v.is_null());
    if !has_id {
        let n = store.next_id.entry(c.path.clone()).or_insert(0);
        *n += 1;
        let id = if c.numeric_ids {
            json!(*n)
        } else {
            json!(format!("c{n}"))
        };
        if let Some(map) = object.as_object_mut() {
            map.insert(c.id_field.clone(), id);
        }
    }
    if let Some(field) = &c.members
        && let Some(map) = object.as_object_mut()
    {
        map.entry(field.clone()).or_insert_with(|| json!([]));
    }
    store.items.entry(c.path.clone()).or_default().push(object.clone());
    object
}

/// Deep-merges `patch` into `target` (objects merge, anything else replaces).
pub(super) fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}
