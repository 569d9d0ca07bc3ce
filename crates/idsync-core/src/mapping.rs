//! Mapping: how each target field is computed from a source object. Only
//! the fields listed are ever compared or written.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::{Fields, ObjectKind, SourceObject};
use crate::target::FieldChange;

/// The field maps of a profile, per object kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mapping {
    /// Fields of user accounts.
    pub users: Vec<FieldMap>,
    /// Fields of groups.
    pub groups: Vec<FieldMap>,
}

impl Mapping {
    /// Every source attribute the field maps of both kinds read.
    pub fn attributes(&self) -> impl Iterator<Item = &str> {
        self.users
            .iter()
            .chain(&self.groups)
            .flat_map(|f| -> Box<dyn Iterator<Item = &str> + '_> {
                match &f.from {
                    ValueSource::Attribute(a) => Box::new(std::iter::once(a.as_str())),
                    ValueSource::Template(t) => Box::new(t.attributes()),
                    ValueSource::Constant(_) | ValueSource::Container(_) => Box::new(std::iter::empty()),
                }
            })
    }
}

/// One target field and where its value comes from.
///
/// In TOML: `{ field = "email", attribute = "mail", transforms = ["lowercase"] }`,
/// `{ field = "name", template = "{givenName} {sn}" }`,
/// `{ field = "site", container = [{ under = "OU=Leeds,DC=acme,DC=test", value = "Leeds" }] }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldMap {
    /// The target field.
    pub field: String,
    /// Where the value comes from.
    #[serde(flatten)]
    pub from: ValueSource,
    /// Applied in order to the value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<Transform>,
}

/// Where a field's value comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueSource {
    /// The first text value of a source attribute.
    Attribute(String),
    /// A fixed value.
    Constant(String),
    /// A template such as `"{givenName} {sn}"` (`{{` and `}}` for braces);
    /// a missing attribute counts as empty, and an all-empty result as unset.
    Template(Template),
    /// The value of the most specific matching container (HaloPSA: OU → site).
    Container(Vec<ContainerValue>),
}

/// A container and the value it maps to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerValue {
    /// The container (DN); objects in it or below it match.
    pub under: String,
    /// The value.
    pub value: String,
}

/// A change applied to a value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Lower case.
    Lowercase,
    /// Upper case.
    Uppercase,
    /// Trims white space.
    Trim,
    /// Used when the value is unset or empty.
    Default(String),
    /// The value of the first component of this type in a DN value:
    /// `dn_component = "CN"` turns a manager's DN into their name.
    DnComponent(String),
    /// Replaces the value by its entry in a table; values not in the table
    /// become unset unless `default` is given.
    Lookup {
        /// value → replacement.
        table: BTreeMap<String, String>,
        /// For values not in the table.
        #[serde(default)]
        default: Option<String>,
    },
}

/// A parsed template: literal text and attribute names.
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Attribute(String),
}

impl Template {
    /// Parses `"{givenName} {sn}"`.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ';') => name.push(c),
                            Some(c) => {
                                return Err(format!("template {text:?}: {c:?} is not allowed in an attribute name"));
                            }
                            None => return Err(format!("template {text:?}: '{{' is never closed")),
                        }
                    }
                    if name.is_empty() {
                        return Err(format!("template {text:?}: empty '{{}}'"));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Attribute(name));
                }
                '}' => return Err(format!("template {text:?}: '}}' without '{{' (write '}}}}')")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template {
            text: text.to_owned(),
            parts,
        })
    }

    /// The attributes the template reads.
    pub fn attributes(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Attribute(a) => Some(a.as_str()),
            Part::Literal(_) => None,
        })
    }

    fn render(&self, object: &SourceObject) -> Option<String> {
        let mut out = String::new();
        let mut any = false;
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Attribute(a) => {
                    if let Some(v) = object.first_text(a) {
                        any |= !v.is_empty();
                        out.push_str(v);
                    }
                }
            }
        }
        (any || self.attributes().next().is_none()).then_some(out)
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({:?})", self.text)
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Template::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Mapping {
    /// The field maps for one kind.
    pub fn for_kind(&self, kind: ObjectKind) -> &[FieldMap] {
        match kind {
            ObjectKind::User => &self.users,
            ObjectKind::Group => &self.groups,
        }
    }

    /// Every mapped field of `object`, for a create. Unset fields are left out.
    pub fn fields(&self, object: &SourceObject) -> Fields {
        self.for_kind(object.kind)
            .iter()
            .filter_map(|m| Some((m.field.clone(), m.value(object)?.into_owned())))
            .collect()
    }

    /// The mapped fields of `object` that differ from `current`, in field order.
    pub fn diff(&self, object: &SourceObject, current: &Fields) -> Vec<FieldChange> {
        let mut changes = Vec::new();
        for m in self.for_kind(object.kind) {
            let want = m.value(object);
            let have = current.get(&m.field);
            if want.as_deref() != have.map(String::as_str) {
                changes.push(FieldChange {
                    field: m.field.clone(),
                    old: have.cloned(),
                    new: want.map(Cow::into_owned),
                });
            }
        }
        changes
    }
}

impl FieldMap {
    /// The field's value for `object`, `None` when unset.
    pub fn value<'a>(&'a self, object: &'a SourceObject) -> Option<Cow<'a, str>> {
        let raw: Option<Cow<'a, str>> = match &self.from {
            ValueSource::Attribute(a) => object.first_text(a).map(Cow::Borrowed),
            ValueSource::Constant(c) => Some(Cow::Borrowed(c)),
            ValueSource::Template(t) => t.render(object).map(Cow::Owned),
            ValueSource::Container(rules) => rules
                .iter()
                .filter(|r| crate::dn::within(&object.container, &r.under))
                .max_by_key(|r| r.under.split(',').count())
                .map(|r| Cow::Borrowed(r.value.as_str())),
        };
        self.transforms.iter().fold(raw, |v, t| t.apply(v))
    }
}

impl Transform {
    fn apply<'a>(&'a self, value: Option<Cow<'a, str>>) -> Option<Cow<'a, str>> {
        match self {
            Transform::Lowercase => value.map(|v| {
                if v.chars().any(char::is_uppercase) {
                    Cow::Owned(v.to_lowercase())
                } else {
                    v
                }
            }),
            Transform::Uppercase => value.map(|v| {
                if v.chars().any(char::is_lowercase) {
                    Cow::Owned(v.to_uppercase())
                } else {
                    v
                }
            }),
            Transform::Trim => value.map(|v| match v {
                Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
                Cow::Owned(s) if s.trim().len() == s.len() => Cow::Owned(s),
                Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
            }),
            Transform::Default(d) => match value {
                Some(v) if !v.is_empty() => Some(v),
                _ => Some(Cow::Borrowed(d)),
            },
            Transform::DnComponent(kind) => value.and_then(|v| crate::dn::component_value(&v, kind).map(Cow::Owned)),
            Transform::Lookup { table, default } => match value {
                Some(v) => table
                    .get(v.as_ref())
                    .or(default.as_ref())
                    .map(|s| Cow::Borrowed(s.as_str())),
                None => default.as_deref().map(Cow::Borrowed),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann() -> SourceObject {
        SourceObject::new("1", ObjectKind::User)
            .in_container("OU=EMEA,OU=Sales,DC=acme,DC=test")
            .with("givenName", "Ann")
            .with("sn", "Lee")
            .with("mail", " Ann.Lee@Acme.Test ")
            .with("manager", "CN=Smith\\, Bob,OU=Sales,DC=acme,DC=test")
    }

    fn map(toml_like: serde_json::Value) -> FieldMap {
        serde_json::from_value(toml_like).unwrap()
    }

    #[test]
    fn attribute_with_transforms() {
        let m = map(serde_json::json!({"field": "email", "attribute": "mail", "transforms": ["trim", "lowercase"]}));
        assert_eq!(m.value(&ann()).as_deref(), Some("ann.lee@acme.test"));
    }

    #[test]
    fn template_renders_and_unset_when_all_missing() {
        let m = map(serde_json::json!({"field": "name", "template": "{givenName} {sn} {{x}}"}));
        assert_eq!(m.value(&ann()).as_deref(), Some("Ann Lee {x}"));
        let empty = SourceObject::new("2", ObjectKind::User);
        assert_eq!(m.value(&empty), None);
    }

    #[test]
    fn template_errors_are_clear() {
        let e = serde_json::from_value::<FieldMap>(serde_json::json!({"field": "n", "template": "{givenName"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'{' is never closed"), "{e}");
    }

    #[test]
    fn container_picks_the_most_specific_and_default_fills_in() {
        let m = map(serde_json::json!({"field": "site", "container": [
            {"under": "OU=Sales,DC=acme,DC=test", "value": "Sales"},
            {"under": "OU=EMEA,OU=Sales,DC=acme,DC=test", "value": "Sales EMEA"}],
            "transforms": [{"default": "HQ"}]}));
        assert_eq!(m.value(&ann()).as_deref(), Some("Sales EMEA"));
        let elsewhere = SourceObject::new("2", ObjectKind::User).in_container("OU=IT,DC=acme,DC=test");
        assert_eq!(m.value(&elsewhere).as_deref(), Some("HQ"));
    }

    #[test]
    fn dn_component_and_lookup() {
        let m = map(
            serde_json::json!({"field": "manager", "attribute": "manager", "transforms": [{"dn_component": "cn"}]}),
        );
        assert_eq!(m.value(&ann()).as_deref(), Some("Smith, Bob"));
        let m = map(serde_json::json!({"field": "region", "attribute": "givenName",
            "transforms": [{"lookup": {"table": {"Ann": "North"}, "default": "South"}}]}));
        assert_eq!(m.value(&ann()).as_deref(), Some("North"));
    }

    #[test]
    fn diff_lists_only_mapped_fields_that_differ() {
        let mapping = Mapping {
            users: vec![
                map(serde_json::json!({"field": "first", "attribute": "givenName"})),
                map(serde_json::json!({"field": "last", "attribute": "sn"})),
                map(serde_json::json!({"field": "phone", "attribute": "telephoneNumber"})),
            ],
            groups: vec![],
        };
        let mut current = Fields::new();
        current.insert("first".into(), "Ann".into());
        current.insert("last".into(), "Li".into());
        current.insert("phone".into(), "123".into());
        current.insert("notes".into(), "kept".into());
        let changes = mapping.diff(&ann(), &current);
        assert_eq!(
            changes,
            vec![
                FieldChange {
                    field: "last".into(),
                    old: Some("Li".into()),
                    new: Some("Lee".into())
                },
                FieldChange {
                    field: "phone".into(),
                    old: Some("123".into()),
                    new: None
                },
            ]
        );
    }
}
