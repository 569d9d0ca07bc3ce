//! SCIM PATCH (RFC 7644 §3.5.2): the path grammar as types, the request
//! body parsed, and the operations applied to a resource's JSON.
//!
//! ```
//! use idsync_scim_server::patch::{PatchPath, PatchRequest};
//! let p = PatchPath::parse(r#"emails[type eq "work"].value"#).unwrap();
//! assert_eq!(p.to_string(), r#"emails[type eq "work"].value"#);
//! let req = PatchRequest::from_json(&serde_json::json!({
//!     "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
//!     "Operations": [{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@x"}]
//! })).unwrap();
//! let mut user = serde_json::json!({"emails": [{"type": "work", "value": "b@x"}]});
//! req.apply(user.as_object_mut().unwrap(), &|_| false).unwrap();
//! assert_eq!(user["emails"][0]["value"], "a@x");
//! ```

use std::fmt;

use serde_json::{Map, Value};

use idsync_scim::json::{add_schema, entry_ci, get_ci, remove_ci};
use idsync_scim::map::{ENTERPRISE_SCHEMA, PATCH_OP};

use crate::filter::{AttrRef, CompValue, CompareOp, Filter, Parser};

/// A PATCH failure, with its SCIM `scimType` (`invalidPath`, `invalidValue`,
/// `noTarget`, `invalidSyntax`, `invalidFilter`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchError {
    /// The SCIM error type.
    pub scim_type: &'static str,
    /// What was wrong.
    pub message: String,
}

impl PatchError {
    fn new(scim_type: &'static str, message: impl Into<String>) -> Self {
        PatchError {
            scim_type,
            message: message.into(),
        }
    }
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.scim_type, self.message)
    }
}

impl std::error::Error for PatchError {}

/// A PATCH `path`: `PATH = attrPath / valuePath [subAttr]`, or a whole
/// extension schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatchPath {
    /// A whole extension (`urn:…:enterprise:2.0:User`).
    Extension(String),
    /// `attr`, `attr.sub`, `urn:…:attr[.sub]`.
    Attr(AttrRef),
    /// `attr[filter]` or `attr[filter].sub`: elements of a multi-valued
    /// attribute chosen by a filter.
    Value {
        /// The attribute (no sub-attribute).
        attr: AttrRef,
        /// Which elements.
        filter: Filter,
        /// The sub-attribute of those elements.
        sub: Option<String>,
    },
}

impl PatchPath {
    /// Parses a path; errors are `invalidPath`.
    pub fn parse(text: &str) -> Result<PatchPath, PatchError> {
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case(ENTERPRISE_SCHEMA) {
            return Ok(PatchPath::Extension(ENTERPRISE_SCHEMA.to_owned()));
        }
        let bad = |e: crate::filter::ParseError| PatchError::new("invalidPath", format!("path {text:?}: {e}"));
        let mut p = Parser::new(trimmed);
        let attr = p.attr_ref().map_err(bad)?;
        let path = if p.eat('[') {
            if attr.sub.is_some() {
                return Err(PatchError::new(
                    "invalidPath",
                    format!("path {text:?}: a value filter applies to an attribute"),
                ));
            }
            let filter = Filter::parse_inner(&mut p).map_err(bad)?;
            if !p.eat(']') {
                return Err(bad(p.err("expected ']'")));
            }
            let sub = if p.eat('.') { Some(p.name().map_err(bad)?) } else { None };
            PatchPath::Value { attr, filter, sub }
        } else {
            PatchPath::Attr(attr)
        };
        p.end().map_err(bad)?;
        Ok(path)
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatchPath::Extension(s) => f.write_str(s),
            PatchPath::Attr(a) => write!(f, "{a}"),
            PatchPath::Value { attr, filter, sub } => {
                write!(f, "{attr}[{filter}]")?;
                if let Some(sub) = sub {
                    write!(f, ".{sub}")?;
                }
                Ok(())
            }
        }
    }
}

/// `add`, `remove` or `replace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchOpKind {
    /// Add values (append to multi-valued attributes).
    Add,
    /// Remove values.
    Remove,
    /// Replace values.
    Replace,
}

/// One PATCH operation.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchOperation {
    /// What to do.
    pub op: PatchOpKind,
    /// Where; `None` is the resource itself.
    pub path: Option<PatchPath>,
    /// The value (absent for most removes).
    pub value: Option<Value>,
}

/// A PATCH request body.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchRequest {
    /// The operations, applied in order.
    pub operations: Vec<PatchOperation>,
}

impl PatchRequest {
    /// Reads a `PatchOp` message. `op` names are accepted in any case
    /// (Azure AD sends `Replace`).
    pub fn from_json(body: &Value) -> Result<PatchRequest, PatchError> {
        let obj = body
            .as_object()
            .ok_or_else(|| PatchError::new("invalidSyntax", "the body is not a JSON object"))?;
        if let Some(schemas) = get_ci(obj, "schemas") {
            let ok = schemas.as_array().is_some_and(|s| {
                s.iter()
                    .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP)))
            });
            if !ok {
                return Err(PatchError::new(
                    "invalidSyntax",
                    format!("schemas must list {PATCH_OP}"),
                ));
            }
        }
        let ops = get_ci(obj, "Operations")
            .and_then(Value::as_array)
            .ok_or_else(|| PatchError::new("invalidSyntax", "Operations is missing or not an array"))?;
        let operations = ops
            .iter()
            .map(|op| {
                let o = op
                    .as_object()
                    .ok_or_else(|| PatchError::new("invalidSyntax", "an operation is not an object"))?;
                let kind = match get_ci(o, "op")
                    .and_then(Value::as_str)
                    .map(str::to_ascii_lowercase)
                    .as_deref()
                {
                    Some("add") => PatchOpKind::Add,
                    Some("remove") => PatchOpKind::Remove,
                    Some("replace") => PatchOpKind::Replace,
                    other => {
                        return Err(PatchError::new(
                            "invalidSyntax",
                            format!("op must be add, remove or replace, not {other:?}"),
                        ));
                    }
                };
                let path = match get_ci(o, "path") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) if s.trim().is_empty() => None,
                    Some(Value::String(s)) => Some(PatchPath::parse(s)?),
                    Some(_) => return Err(PatchError::new("invalidPath", "path is not a string")),
                };
                let value = get_ci(o, "value").cloned();
                match (kind, &path, &value) {
                    (PatchOpKind::Remove, None, _) => {
                        return Err(PatchError::new("noTarget", "remove needs a path"));
                    }
                    (PatchOpKind::Add | PatchOpKind::Replace, _, None) => {
                        return Err(PatchError::new("invalidValue", "add and replace need a value"));
                    }
                    (PatchOpKind::Add | PatchOpKind::Replace, None, Some(v)) if !v.is_object() => {
                        return Err(PatchError::new(
                            "invalidValue",
                            "without a path, the value must be an object of attributes",
                        ));
                    }
                    _ => {}
                }
                Ok(PatchOperation { op: kind, path, value })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PatchRequest { operations })
    }

    /// Applies every operation to `resource`. `multi` tells whether an
    /// attribute is multi-valued (from the schema).
    pub fn apply(&self, resource: &mut Map<String, Value>, multi: &dyn Fn(&AttrRef) -> bool) -> Result<(), PatchError> {
        for op in &self.operations {
            op.apply(resource, multi)?;
        }
        Ok(())
    }
}

impl PatchOperation {
    /// Applies this operation to `resource`.
    pub fn apply(&self, resource: &mut Map<String, Value>, multi: &dyn Fn(&AttrRef) -> bool) -> Result<(), PatchError> {
        let value = self.value.as_ref();
        match (&self.path, self.op) {
            (None, PatchOpKind::Remove) => Err(PatchError::new("noTarget", "remove needs a path")),
            (None, op) => {
                let Some(Value::Object(attrs)) = value else {
                    return Err(PatchError::new("invalidValue", "the value must be an object"));
                };
                for (k, v) in attrs {
                    // Azure AD puts paths (`name.givenName`, `urn:…:department`) in the keys.
                    let path = if k.eq_ignore_ascii_case(ENTERPRISE_SCHEMA) || k.starts_with("urn:") && v.is_object() {
                        PatchPath::Extension(k.clone())
                    } else {
                        PatchPath::parse(k).map_err(|e| PatchError::new("invalidValue", e.message))?
                    };
                    PatchOperation {
                        op,
                        path: Some(path),
                        value: Some(v.clone()),
                    }
                    .apply(resource, multi)?;
                }
                Ok(())
            }
            (Some(PatchPath::Extension(urn)), op) => {
                match op {
                    PatchOpKind::Remove => remove_ci(resource, urn),
                    PatchOpKind::Add | PatchOpKind::Replace => {
                        let Some(Value::Object(attrs)) = value else {
                            return Err(PatchError::new("invalidValue", "an extension's value is an object"));
                        };
                        add_schema(resource, urn);
                        let slot = entry_ci(resource, urn);
                        if op == PatchOpKind::Replace || !slot.is_object() {
                            *slot = Value::Object(Map::new());
                        }
                        if let Value::Object(ext) = slot {
                            for (k, v) in attrs {
                                let r = AttrRef {
                                    schema: Some(urn.clone()),
                                    attr: k.clone(),
                                    sub: None,
                                };
                                set_attr(ext, &k.clone(), v.clone(), op, multi(&r));
                            }
                        }
                    }
                }
                Ok(())
            }
            (Some(PatchPath::Attr(r)), op) => {
                let is_multi = multi(&AttrRef { sub: None, ..r.clone() });
                let container = container(resource, r, op != PatchOpKind::Remove);
                let Some(container) = container else { return Ok(()) };
                match (&r.sub, op) {
                    (None, PatchOpKind::Remove) => match (value, get_ci(container, &r.attr)) {
                        // Azure AD: remove members listed in the value
                        (Some(Value::Array(gone)), Some(Value::Array(_))) => {
                            let gone = gone.clone();
                            if let Value::Array(items) = entry_ci(container, &r.attr) {
                                items.retain(|e| !gone.iter().any(|g| same_element(e, g)));
                                if items.is_empty() {
                                    remove_ci(container, &r.attr);
                                }
                            }
                        }
                        _ => remove_ci(container, &r.attr),
                    },
                    (None, op) => {
                        let v = value.cloned().unwrap_or(Value::Null);
                        set_attr(container, &r.attr, v, op, is_multi);
                    }
                    (Some(sub), op) => {
                        let slot = entry_ci(container, &r.attr);
                        match slot {
                            Value::Array(items) => {
                                for e in items.iter_mut() {
                                    if let Value::Object(e) = e {
                                        set_sub(e, sub, value, op);
                                    }
                                }
                            }
                            Value::Object(inner) => set_sub(inner, sub, value, op),
                            _ if op == PatchOpKind::Remove => {}
                            other => {
                                let mut inner = Map::new();
                                set_sub(&mut inner, sub, value, op);
                                *other = Value::Object(inner);
                            }
                        }
                        clean(container, &r.attr);
                    }
                }
                Ok(())
            }
            (Some(PatchPath::Value { attr, filter, sub }), op) => {
                let path = self.path.as_ref().map(ToString::to_string).unwrap_or_default();
                let Some(container) = container(resource, attr, op != PatchOpKind::Remove) else {
                    return Err(PatchError::new("noTarget", format!("nothing matches {path}")));
                };
                let slot = entry_ci(container, &attr.attr);
                if slot.is_null() {
                    *slot = Value::Array(Vec::new());
                }
                let Value::Array(items) = slot else {
                    return Err(PatchError::new(
                        "invalidPath",
                        format!("{} is not multi-valued", attr.attr),
                    ));
                };
                let hits: Vec<usize> = items
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| filter.matches_in(e, &attr.attr))
                    .map(|(i, _)| i)
                    .collect();
                match (op, sub) {
                    (PatchOpKind::Remove, None) => {
                        for i in hits.iter().rev() {
                            items.remove(*i);
                        }
                    }
                    (_, Some(sub)) if !hits.is_empty() => {
                        for i in &hits {
                            if let Some(Value::Object(e)) = items.get_mut(*i) {
                                set_sub(e, sub, value, op);
                            }
                        }
                    }
                    (PatchOpKind::Remove, Some(_)) => {}
                    (_, None) if !hits.is_empty() => {
                        for i in &hits {
                            if let (Some(slot), Some(v)) = (items.get_mut(*i), value) {
                                match (slot, v) {
                                    (Value::Object(e), Value::Object(new)) => {
                                        for (k, nv) in new {
                                            *entry_ci(e, k) = nv.clone();
                                        }
                                    }
                                    (slot, v) => *slot = v.clone(),
                                }
                            }
                        }
                    }
                    // An add through a filter of equalities creates the element.
                    (PatchOpKind::Add, _) => {
                        let mut elem = Map::new();
                        if !equalities(filter, &mut elem) {
                            return Err(PatchError::new("noTarget", format!("nothing matches {path}")));
                        }
                        match (sub, value) {
                            (Some(sub), Some(v)) => {
                                elem.insert(sub.clone(), v.clone());
                            }
                            (None, Some(Value::Object(o))) => elem.extend(o.clone()),
                            _ => return Err(PatchError::new("invalidValue", "the value must be an object")),
                        }
                        items.push(Value::Object(elem));
                    }
                    _ => return Err(PatchError::new("noTarget", format!("nothing matches {path}"))),
                }
                clean(container, &attr.attr);
                Ok(())
            }
        }
    }
}

/// The `attr eq value` pairs of a filter made only of equalities joined by
/// `and`, put into `elem`.
fn equalities(filter: &Filter, elem: &mut Map<String, Value>) -> bool {
    match filter {
        Filter::Compare(r, CompareOp::Eq, v) if r.schema.is_none() && r.sub.is_none() => {
            let v = match v {
                CompValue::Null => return false,
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::String(s) => Value::String(s.clone()),
            };
            elem.insert(r.attr.clone(), v);
            true
        }
        Filter::And(a, b) => equalities(a, elem) && equalities(b, elem),
        _ => false,
    }
}

fn same_element(a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn container<'a>(
    resource: &'a mut Map<String, Value>,
    r: &AttrRef,
    create: bool,
) -> Option<&'a mut Map<String, Value>> {
    match &r.schema {
        None => Some(resource),
        Some(urn) => {
            if get_ci(resource, urn).is_none() && !create {
                return None;
            }
            if create {
                add_schema(resource, urn);
            }
            let slot = entry_ci(resource, urn);
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            slot.as_object_mut()
        }
    }
}

fn set_attr(container: &mut Map<String, Value>, attr: &str, v: Value, op: PatchOpKind, multi: bool) {
    let slot = entry_ci(container, attr);
    match (op, &mut *slot, v) {
        (PatchOpKind::Add, Value::Array(items), new) if multi || new.is_array() => {
            let new = match new {
                Value::Array(n) => n,
                other => vec![other],
            };
            for n in new {
                if !items.iter().any(|e| same_element(e, &n)) {
                    items.push(n);
                }
            }
        }
        (_, Value::Object(old), Value::Object(new)) if !multi => {
            for (k, nv) in new {
                *entry_ci(old, &k) = nv;
            }
        }
        (_, slot, new) => {
            *slot = match new {
                Value::Array(n) => Value::Array(n),
                other if multi => Value::Array(vec![other]),
                other => other,
            };
        }
    }
    clean(container, attr);
}

fn set_sub(elem: &mut Map<String, Value>, sub: &str, value: Option<&Value>, op: PatchOpKind) {
    match (op, value) {
        (PatchOpKind::Remove, _) | (_, None) => remove_ci(elem, sub),
        (_, Some(v)) => *entry_ci(elem, sub) = v.clone(),
    }
}

/// Removes `attr` when it became null, an empty list or an empty object.
fn clean(container: &mut Map<String, Value>, attr: &str) {
    let empty = match get_ci(container, attr) {
        Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        _ => false,
    };
    if empty {
        remove_ci(container, attr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn multi(r: &AttrRef) -> bool {
        ["emails", "members", "phoneNumbers"]
            .iter()
            .any(|m| m.eq_ignore_ascii_case(&r.attr))
    }

    fn patch(resource: Value, ops: Value) -> Result<Value, PatchError> {
        let req = PatchRequest::from_json(&json!({"schemas": [PATCH_OP], "Operations": ops}))?;
        let mut r = resource.as_object().cloned().unwrap_or_default();
        req.apply(&mut r, &multi)?;
        Ok(Value::Object(r))
    }

    #[test]
    fn paths_parse_and_print() {
        for s in [
            "userName",
            "name.givenName",
            r#"members[value eq "x"]"#,
            r#"emails[type eq "work"].value"#,
            r#"emails[type eq "work" and primary eq true].value"#,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ] {
            let p = PatchPath::parse(s).unwrap();
            assert_eq!(p.to_string(), s);
            assert_eq!(PatchPath::parse(&p.to_string()).unwrap(), p);
        }
        for s in [
            "",
            "a.b.c",
            "emails[type eq",
            "emails[type eq \"w\"]x",
            "name.givenName[x eq 1]",
            "1a",
        ] {
            let e = PatchPath::parse(s).unwrap_err();
            assert_eq!(e.scim_type, "invalidPath", "{s}");
        }
    }

    #[test]
    fn add_remove_replace() {
        let r = json!({"userName": "a", "emails": [{"type": "work", "value": "a@w"}], "members": [{"value": "1"}]});
        let out = patch(
            r.clone(),
            json!([
                {"op": "add", "path": "members", "value": [{"value": "2"}, {"value": "1"}]},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "b@w"},
                {"op": "add", "path": "emails[type eq \"home\"].value", "value": "h@h"},
                {"op": "replace", "value": {"displayName": "A", "name.givenName": "G", "active": false}},
                {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "D"},
            ]),
        )
        .unwrap();
        assert_eq!(out["members"], json!([{"value": "1"}, {"value": "2"}]));
        assert_eq!(
            out["emails"],
            json!([{"type": "work", "value": "b@w"}, {"type": "home", "value": "h@h"}])
        );
        assert_eq!(
            (out["displayName"].clone(), out["name"]["givenName"].clone()),
            (json!("A"), json!("G"))
        );
        assert_eq!(out["active"], json!(false));
        assert_eq!(out[ENTERPRISE_SCHEMA]["department"], json!("D"));
        assert!(out["schemas"].as_array().unwrap().contains(&json!(ENTERPRISE_SCHEMA)));

        let out = patch(
            out,
            json!([
                {"op": "remove", "path": "members[value eq \"1\"]"},
                {"op": "remove", "path": "emails[type eq \"home\"]"},
                {"op": "remove", "path": "name.givenName"},
                {"op": "remove", "path": "members", "value": [{"value": "2"}]},
            ]),
        )
        .unwrap();
        assert!(out.get("members").is_none());
        assert!(out.get("name").is_none());
        assert_eq!(out["emails"], json!([{"type": "work", "value": "b@w"}]));

        let e = patch(
            r.clone(),
            json!([{"op": "replace", "path": "emails[type eq \"x\"].value", "value": "v"}]),
        )
        .unwrap_err();
        assert_eq!(e.scim_type, "noTarget");
        let e = patch(r.clone(), json!([{"op": "remove"}])).unwrap_err();
        assert_eq!(e.scim_type, "noTarget");
        let e = patch(r.clone(), json!([{"op": "move", "path": "a"}])).unwrap_err();
        assert_eq!(e.scim_type, "invalidSyntax");
        let e = patch(r, json!([{"op": "add", "path": "a[b eq", "value": 1}])).unwrap_err();
        assert_eq!(e.scim_type, "invalidPath");
    }
}
