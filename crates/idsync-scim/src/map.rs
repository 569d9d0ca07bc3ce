//! SCIM attribute paths as target field names, and moving values between
//! them and SCIM resources (RFC 7644 §3.10, §3.5.2).
//!
//! A mapping names a SCIM field by its path:
//! - `userName`, `displayName`, `title`: a top-level attribute;
//! - `name.givenName`: a sub-attribute;
//! - `emails[type eq "work"].value`: a sub-attribute of the element of a
//!   multi-valued attribute whose `type` (or another sub-attribute) has a value;
//! - `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`,
//!   `…:User:manager.value`: an extension attribute.
//!
//! Reading an account lists its fields in exactly these spellings (one
//! space around `eq`, double quotes), so a mapping written that way compares
//! equal and plans no change.

use std::fmt;

use idsync_core::Fields;
use serde_json::{Map, Value};

use crate::json::{add_schema, entry_ci, get_ci, remove_ci};

/// The core User schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The enterprise User extension.
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// PATCH messages.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Bulk requests.
pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// Attributes never listed as fields: identity, link, state and membership
/// are handled apart.
const NOT_FIELDS: &[&str] = &[
    "schemas",
    "id",
    "externalId",
    "meta",
    "active",
    "members",
    "groups",
    "password",
];

/// A parsed attribute path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrPath {
    /// The extension schema URN, when the attribute belongs to one.
    pub schema: Option<String>,
    /// The attribute.
    pub attr: String,
    /// `[name eq "value"]`, selecting an element of a multi-valued attribute.
    pub filter: Option<(String, String)>,
    /// The sub-attribute.
    pub sub: Option<String>,
    /// The SCIM type of the value (`boolean`, `integer`, `decimal`, `string`,
    /// …) from the service's `/Schemas`, when known: text from the mapping
    /// is sent as that JSON type.
    pub value_type: Option<String>,
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.schema {
            write!(f, "{s}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some((name, value)) = &self.filter {
            write!(f, "[{name} eq {}]", quote(value))?;
        }
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// A SCIM string literal (JSON string syntax).
pub fn quote(value: &str) -> String {
    Value::String(value.to_owned()).to_string()
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
}

impl AttrPath {
    /// Parses a field name.
    pub fn parse(field: &str) -> Result<AttrPath, String> {
        let bad = |why: &str| format!("SCIM attribute path {field:?}: {why}");
        let field = field.trim();
        let head_end = field.find('[').unwrap_or(field.len());
        let (schema, rest) = match field[..head_end].rfind(':') {
            Some(i) if field.starts_with("urn:") => (Some(field[..i].to_owned()), &field[i + 1..]),
            Some(_) => return Err(bad("a ':' outside an extension URN")),
            None => (None, field),
        };
        let (attr, filter, after) = match rest.find('[') {
            Some(open) => {
                let close = rest
                    .rfind(']')
                    .filter(|c| *c > open)
                    .ok_or_else(|| bad("'[' is never closed"))?;
                let inner = rest[open + 1..close].trim();
                let (name, value) = inner
                    .split_once(char::is_whitespace)
                    .and_then(|(name, rest)| {
                        let rest = rest.trim_start();
                        let value = rest.strip_prefix("eq").or_else(|| rest.strip_prefix("EQ"))?;
                        Some((name.trim(), value.trim()))
                    })
                    .ok_or_else(|| bad("only [name eq \"value\"] filters are supported"))?;
                let value: String = if value.starts_with('"') {
                    serde_json::from_str(value).map_err(|_| bad("bad string in the filter"))?
                } else {
                    value.to_owned()
                };
                if !is_name(name) {
                    return Err(bad("bad attribute name in the filter"));
                }
                (&rest[..open], Some((name.to_owned(), value)), &rest[close + 1..])
            }
            None => match rest.split_once('.') {
                Some((a, _)) => (a, None, &rest[a.len()..]),
                None => (rest, None, ""),
            },
        };
        let sub = match after {
            "" => None,
            s => Some(
                s.strip_prefix('.')
                    .filter(|s| is_name(s))
                    .ok_or_else(|| bad("bad sub-attribute"))?
                    .to_owned(),
            ),
        };
        if !is_name(attr) {
            return Err(bad("bad attribute name"));
        }
        if filter.is_some() && sub.is_none() {
            return Err(bad(
                "a filtered path needs a sub-attribute, e.g. emails[type eq \"work\"].value",
            ));
        }
        Ok(AttrPath {
            schema,
            attr: attr.to_owned(),
            filter,
            sub,
            value_type: None,
        })
    }

    /// The path of the whole multi-valued element (`emails[type eq "work"]`).
    pub fn element(&self) -> String {
        AttrPath {
            sub: None,
            ..self.clone()
        }
        .to_string()
    }

    /// The multi-valued attribute itself (`emails`, or `urn:…:attr`).
    pub fn attribute(&self) -> String {
        AttrPath {
            sub: None,
            filter: None,
            ..self.clone()
        }
        .to_string()
    }

    /// A SCIM filter matching resources whose value here equals `value`.
    pub fn filter_eq(&self, value: &str) -> String {
        match (&self.filter, &self.sub) {
            (Some((name, fv)), Some(sub)) => format!(
                "{}[{name} eq {} and {sub} eq {}]",
                self.attribute(),
                quote(fv),
                quote(value)
            ),
            _ => format!("{self} eq {}", quote(value)),
        }
    }

    fn container<'a>(&self, resource: &'a Value) -> Option<&'a Map<String, Value>> {
        let obj = resource.as_object()?;
        match &self.schema {
            Some(s) => get_ci(obj, s)?.as_object(),
            None => Some(obj),
        }
    }

    /// The value at this path, as text.
    pub fn get(&self, resource: &Value) -> Option<String> {
        let obj = self.container(resource)?;
        let v = get_ci(obj, &self.attr)?;
        let v = match (&self.filter, &self.sub) {
            (Some((name, want)), Some(sub)) => {
                let elem = v.as_array()?.iter().find(|e| matches_filter(e, name, want))?;
                get_ci(elem.as_object()?, sub)?
            }
            (None, Some(sub)) => match v {
                Value::Array(items) => get_ci(items.first()?.as_object()?, sub)?,
                other => get_ci(other.as_object()?, sub)?,
            },
            _ => v,
        };
        text(v)
    }

    /// Sets (or, for `None`, removes) the value at this path in a resource
    /// being built or replaced; adds an extension's schema to `schemas`.
    pub fn set(&self, resource: &mut Map<String, Value>, value: Option<&str>) {
        if let Some(schema) = &self.schema {
            if value.is_some() {
                add_schema(resource, schema);
            }
            let ext = entry_ci(resource, schema);
            if !ext.is_object() {
                *ext = Value::Object(Map::new());
            }
            if let Value::Object(ext) = ext {
                self.set_in(ext, value);
            }
        } else {
            self.set_in(resource, value);
        }
    }

    /// The JSON value to send for the text `v`.
    pub fn typed(&self, v: &str) -> Value {
        let t = v.trim();
        let parsed = match self.value_type.as_deref() {
            Some("boolean") => match t.to_ascii_lowercase().as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            Some("integer") => t.parse::<i64>().ok().map(Value::from),
            Some("decimal") => t
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number),
            Some(_) => None,
            // not discovered: the one boolean sub-attribute of the core multi-valued attributes
            None if self.sub.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("primary")) => {
                match t.to_ascii_lowercase().as_str() {
                    "true" => Some(Value::Bool(true)),
                    "false" => Some(Value::Bool(false)),
                    _ => None,
                }
            }
            None => None,
        };
        parsed.unwrap_or_else(|| Value::String(v.to_owned()))
    }

    fn set_in(&self, obj: &mut Map<String, Value>, value: Option<&str>) {
        let json = |_sub: &str, v: &str| self.typed(v);
        match (&self.filter, &self.sub) {
            (None, None) => match value {
                Some(v) => {
                    *entry_ci(obj, &self.attr) = self.typed(v);
                }
                None => remove_ci(obj, &self.attr),
            },
            (None, Some(sub)) => {
                let slot = entry_ci(obj, &self.attr);
                if !slot.is_object() {
                    if value.is_none() {
                        return;
                    }
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(inner) = slot {
                    match value {
                        Some(v) => *entry_ci(inner, sub) = json(sub, v),
                        None => remove_ci(inner, sub),
                    }
                    if inner.is_empty() {
                        remove_ci(obj, &self.attr);
                    }
                }
            }
            (Some((name, want)), Some(sub)) => {
                let slot = entry_ci(obj, &self.attr);
                if !slot.is_array() {
                    if value.is_none() {
                        return;
                    }
                    *slot = Value::Array(Vec::new());
                }
                if let Value::Array(items) = slot {
                    match items.iter_mut().position(|e| matches_filter(e, name, want)) {
                        Some(i) => {
                            if let Some(Value::Object(elem)) = items.get_mut(i) {
                                match value {
                                    Some(v) => *entry_ci(elem, sub) = json(sub, v),
                                    None => remove_ci(elem, sub),
                                }
                                if elem.keys().all(|k| k.eq_ignore_ascii_case(name)) {
                                    items.remove(i);
                                }
                            }
                        }
                        None => {
                            if let Some(v) = value {
                                let mut elem = Map::new();
                                elem.insert(name.clone(), Value::String(want.clone()));
                                elem.insert(sub.clone(), json(sub, v));
                                items.push(Value::Object(elem));
                            }
                        }
                    }
                    if items.is_empty() {
                        remove_ci(obj, &self.attr);
                    }
                }
            }
            (Some(_), None) => {}
        }
    }
}

/// The types of the attributes a service describes in `/Schemas`, by
/// lower-case path: `active`, `emails.primary`, `urn:…:user:manager.value`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttributeTypes(std::collections::BTreeMap<String, String>);

impl AttributeTypes {
    /// Reads the `Resources` of a `/Schemas` answer. Core schemas'
    /// attributes are keyed without their URN, extensions' with it.
    pub fn from_schemas(resources: &[Value]) -> Self {
        let mut map = std::collections::BTreeMap::new();
        for schema in resources {
            let Some(id) = schema["id"].as_str() else { continue };
            let prefix = if id.starts_with("urn:ietf:params:scim:schemas:core:") {
                String::new()
            } else {
                format!("{id}:")
            };
            for attr in schema["attributes"].as_array().into_iter().flatten() {
                let Some(name) = attr["name"].as_str() else { continue };
                let key = format!("{prefix}{name}").to_ascii_lowercase();
                if let Some(t) = attr["type"].as_str() {
                    map.entry(key.clone()).or_insert_with(|| t.to_owned());
                }
                for sub in attr["subAttributes"].as_array().into_iter().flatten() {
                    if let (Some(sub_name), Some(t)) = (sub["name"].as_str(), sub["type"].as_str()) {
                        map.entry(format!("{key}.{}", sub_name.to_ascii_lowercase()))
                            .or_insert_with(|| t.to_owned());
                    }
                }
            }
        }
        AttributeTypes(map)
    }

    /// The type of the value at `path`, when the service described it.
    pub fn type_of(&self, path: &AttrPath) -> Option<&str> {
        let mut key = String::new();
        if let Some(s) = &path.schema {
            key.push_str(s);
            key.push(':');
        }
        key.push_str(&path.attr);
        if let Some(sub) = &path.sub {
            key.push('.');
            key.push_str(sub);
        }
        self.0.get(&key.to_ascii_lowercase()).map(String::as_str)
    }

    /// `path` with its value type filled in.
    pub fn annotate(&self, mut path: AttrPath) -> AttrPath {
        path.value_type = self.type_of(&path).map(str::to_owned);
        path
    }

    /// True when nothing was discovered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn matches_filter(elem: &Value, name: &str, want: &str) -> bool {
    elem.as_object()
        .and_then(|o| get_ci(o, name))
        .and_then(text)
        .is_some_and(|v| v.eq_ignore_ascii_case(want))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Every field of a resource, in the canonical path spellings: scalars,
/// sub-attributes, typed elements of multi-valued attributes (the first
/// untyped element as `attr.sub`), extension attributes. Identity, link,
/// `active` and membership are not fields.
pub fn flatten(resource: &Value) -> Fields {
    let mut out = Fields::new();
    if let Some(obj) = resource.as_object() {
        flatten_into(&mut out, "", obj, true);
    }
    out
}

fn flatten_into(out: &mut Fields, prefix: &str, obj: &Map<String, Value>, top: bool) {
    for (k, v) in obj {
        if top && NOT_FIELDS.iter().any(|n| n.eq_ignore_ascii_case(k)) {
            continue;
        }
        match v {
            Value::Object(inner) if top && k.starts_with("urn:") => flatten_into(out, &format!("{k}:"), inner, false),
            Value::Object(inner) => {
                for (sub, sv) in inner {
                    if let Some(t) = text(sv) {
                        out.insert(format!("{prefix}{k}.{sub}"), t);
                    }
                }
            }
            Value::Array(items) => {
                let mut untyped_done = false;
                for item in items {
                    let Some(elem) = item.as_object() else {
                        continue;
                    };
                    match get_ci(elem, "type").and_then(text) {
                        Some(t) => {
                            for (sub, sv) in elem {
                                if sub.eq_ignore_ascii_case("type") {
                                    continue;
                                }
                                if let Some(val) = text(sv) {
                                    let key = format!("{prefix}{k}[type eq {}].{sub}", quote(&t));
                                    out.entry(key).or_insert(val);
                                }
                            }
                        }
                        None if !untyped_done => {
                            untyped_done = true;
                            for (sub, sv) in elem {
                                if let Some(val) = text(sv) {
                                    out.insert(format!("{prefix}{k}.{sub}"), val);
                                }
                            }
                        }
                        None => {}
                    }
                }
            }
            other => {
                if let Some(t) = text(other) {
                    out.insert(format!("{prefix}{k}"), t);
                }
            }
        }
    }
}

/// The PATCH operations (RFC 7644 §3.5.2) that set or clear `path` whose
/// value is `old` now. A filtered element that does not exist yet is added
/// whole (a `replace` through a filter matching nothing is a `noTarget` error).
pub fn patch_ops(path: &AttrPath, old: Option<&str>, new: Option<&str>) -> Vec<Value> {
    use serde_json::json;
    match (new, &path.filter, &path.sub) {
        (None, Some(_), _) => vec![json!({"op": "remove", "path": path.element()})],
        (None, None, _) => vec![json!({"op": "remove", "path": path.to_string()})],
        (Some(v), Some((name, want)), Some(sub)) if old.is_none() => {
            let mut elem = Map::new();
            elem.insert(name.clone(), Value::String(want.clone()));
            elem.insert(sub.clone(), path.typed(v));
            vec![json!({"op": "add", "path": path.attribute(), "value": [Value::Object(elem)]})]
        }
        (Some(v), _, _) => vec![json!({"op": "replace", "path": path.to_string(), "value": path.typed(v)})],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_prints_paths() {
        for p in [
            "userName",
            "name.givenName",
            "emails[type eq \"work\"].value",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            "phoneNumbers[type eq \"a:b\"].value",
        ] {
            assert_eq!(AttrPath::parse(p).unwrap().to_string(), p);
        }
        let p = AttrPath::parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value").unwrap();
        assert_eq!(p.value_type, None);
        assert_eq!(p.schema.as_deref(), Some(ENTERPRISE_SCHEMA));
        assert_eq!((p.attr.as_str(), p.sub.as_deref()), ("manager", Some("value")));
        assert_eq!(
            AttrPath::parse("emails[type   eq work].value").unwrap().to_string(),
            "emails[type eq \"work\"].value"
        );
        assert!(AttrPath::parse("emails[type eq \"work\"]").is_err());
        assert!(AttrPath::parse("emails[type co \"w\"].value").is_err());
        assert!(AttrPath::parse("a:b").is_err());
        assert!(AttrPath::parse("a]b[c").is_err());
        assert!(AttrPath::parse("emails[type eq \"w\"]]x").is_err());
        assert!(AttrPath::parse("").is_err());
    }

    #[test]
    fn sets_builds_and_reads_back() {
        let mut r = Map::new();
        r.insert("schemas".into(), json!([USER_SCHEMA]));
        let fields = [
            ("userName", "ann"),
            ("name.givenName", "Ann"),
            ("emails[type eq \"work\"].value", "ann@acme.test"),
            ("emails[type eq \"work\"].primary", "true"),
            ("emails[type eq \"home\"].value", "ann@home.test"),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                "Sales",
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                "m1",
            ),
        ];
        for (f, v) in fields {
            AttrPath::parse(f).unwrap().set(&mut r, Some(v));
        }
        let v = Value::Object(r.clone());
        assert_eq!(v["schemas"], json!([USER_SCHEMA, ENTERPRISE_SCHEMA]));
        assert_eq!(
            v["emails"][0],
            json!({"type": "work", "value": "ann@acme.test", "primary": true})
        );
        let flat = flatten(&v);
        let want: Fields = fields.iter().map(|(f, v)| (f.to_string(), v.to_string())).collect();
        assert_eq!(flat, want);
        for (f, val) in fields {
            assert_eq!(AttrPath::parse(f).unwrap().get(&v).as_deref(), Some(val), "{f}");
        }
        // clearing removes what becomes empty
        AttrPath::parse("emails[type eq \"home\"].value")
            .unwrap()
            .set(&mut r, None);
        AttrPath::parse("name.givenName").unwrap().set(&mut r, None);
        let v = Value::Object(r);
        assert_eq!(v["emails"].as_array().unwrap().len(), 1);
        assert!(v.get("name").is_none());
    }

    #[test]
    fn patch_ops_add_missing_elements_and_remove_whole_ones() {
        let p = AttrPath::parse("emails[type eq \"work\"].value").unwrap();
        assert_eq!(
            patch_ops(&p, None, Some("a@x")),
            vec![json!({"op": "add", "path": "emails", "value": [{"type": "work", "value": "a@x"}]})]
        );
        assert_eq!(
            patch_ops(&p, Some("b@x"), Some("a@x")),
            vec![json!({"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@x"})]
        );
        assert_eq!(
            patch_ops(&p, Some("b@x"), None),
            vec![json!({"op": "remove", "path": "emails[type eq \"work\"]"})]
        );
        let p = AttrPath::parse("title").unwrap();
        assert_eq!(
            patch_ops(&p, Some("x"), None),
            vec![json!({"op": "remove", "path": "title"})]
        );
    }

    #[test]
    fn schema_types_turn_text_into_json_types() {
        let schemas = json!([
            {"id": USER_SCHEMA, "attributes": [
                {"name": "userName", "type": "string"},
                {"name": "emails", "type": "complex", "subAttributes": [
                    {"name": "value", "type": "string"}, {"name": "primary", "type": "boolean"}]}]},
            {"id": "urn:acme:params:scim:schemas:extension:app:2.0:User", "attributes": [
                {"name": "seats", "type": "integer"}, {"name": "ratio", "type": "decimal"},
                {"name": "vip", "type": "boolean"}]}
        ]);
        let types = AttributeTypes::from_schemas(schemas.as_array().unwrap());
        let p = |f: &str| types.annotate(AttrPath::parse(f).unwrap());
        assert_eq!(p("emails[type eq \"work\"].primary").typed("TRUE"), json!(true));
        assert_eq!(p("userName").typed("007"), json!("007"));
        let ext = "urn:acme:params:scim:schemas:extension:app:2.0:User";
        assert_eq!(p(&format!("{ext}:seats")).typed(" 12 "), json!(12));
        assert_eq!(p(&format!("{ext}:ratio")).typed("0.5"), json!(0.5));
        assert_eq!(
            p(&format!("{ext}:vip")).typed("yes"),
            json!("yes"),
            "unparseable text goes as is"
        );
        let mut r = Map::new();
        p(&format!("{ext}:vip")).set(&mut r, Some("false"));
        assert_eq!(Value::Object(r)[ext]["vip"], json!(false));
        assert_eq!(
            patch_ops(&p(&format!("{ext}:seats")), Some("1"), Some("2")),
            vec![json!({"op": "replace", "path": format!("{ext}:seats"), "value": 2})]
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(s in "[a-zA-Z:.\\[\\]\" =eq0-9]{0,40}") {
            if let Ok(p) = AttrPath::parse(&s) {
                proptest::prop_assert_eq!(AttrPath::parse(&p.to_string()), Ok(p));
            }
        }

        #[test]
        fn set_then_get_gives_the_value_back(
            attr in "[a-z]{1,8}",
            sub in "[a-z]{1,8}",
            t in "[a-z \"]{1,8}",
            v in "\\PC{0,12}",
        ) {
            proptest::prop_assume!(sub != "type" && !NOT_FIELDS.iter().any(|n| n.eq_ignore_ascii_case(&attr)));
            let field = format!("{attr}[type eq {}].{sub}", quote(&t));
            let p = AttrPath::parse(&field).unwrap();
            let mut r = Map::new();
            p.set(&mut r, Some(&v));
            let r = Value::Object(r);
            proptest::prop_assert_eq!(p.get(&r), Some(v.clone()));
            proptest::prop_assert_eq!(flatten(&r).get(&field).cloned(), Some(v));
        }
    }

    #[test]
    fn filters_for_lookups() {
        assert_eq!(
            AttrPath::parse("userName").unwrap().filter_eq("a\"b"),
            "userName eq \"a\\\"b\""
        );
        assert_eq!(
            AttrPath::parse("emails[type eq \"work\"].value")
                .unwrap()
                .filter_eq("a@x"),
            "emails[type eq \"work\" and value eq \"a@x\"]"
        );
    }
}
