//! SCIM filters (RFC 7644 §3.4.2.2) as types: parsed from text, printed
//! back (`Display` then [`Filter::parse`] gives the same value), and
//! evaluated against a resource's JSON.
//!
//! ```
//! use idsync_scim_server::filter::Filter;
//! let f = Filter::parse(r#"userName eq "ann" and (emails[type eq "work"] or not (title pr))"#).unwrap();
//! let ann = serde_json::json!({"userName": "Ann", "emails": [{"type": "work", "value": "a@x"}]});
//! assert!(f.matches(&ann));
//! assert_eq!(Filter::parse(&f.to_string()).unwrap(), f);
//! ```

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Number, Value};

use idsync_scim::json::get_ci;
use idsync_scim::map::{ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

/// Schemas whose URN is recognised as a prefix of an attribute path. Other
/// URNs are split at their last `:`.
const KNOWN_SCHEMAS: &[&str] = &[USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_SCHEMA];

/// Why a filter or path could not be parsed: the SCIM `scimType` is
/// `invalidFilter` (or `invalidPath` for PATCH paths).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Where in the text (byte offset).
    pub at: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.at)
    }
}

impl std::error::Error for ParseError {}

/// An attribute reference: `[URN ":"] name ["." sub]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AttrRef {
    /// The extension schema URN; `None` for core attributes (a core schema
    /// URN prefix is dropped when parsing).
    pub schema: Option<String>,
    /// The attribute name.
    pub attr: String,
    /// The sub-attribute name.
    pub sub: Option<String>,
}

impl AttrRef {
    /// A core attribute without sub-attribute.
    pub fn new(attr: impl Into<String>) -> Self {
        AttrRef {
            schema: None,
            attr: attr.into(),
            sub: None,
        }
    }

    /// Parses a whole attribute reference.
    pub fn parse(text: &str) -> Result<AttrRef, ParseError> {
        let mut p = Parser::new(text);
        let r = p.attr_ref()?;
        p.end()?;
        Ok(r)
    }

    /// The values at this reference in `resource` (an object), flattened
    /// over multi-valued attributes. A multi-valued complex attribute
    /// without sub-attribute yields its elements' `value`s.
    pub fn values<'a>(&self, resource: &'a Value) -> Vec<&'a Value> {
        let Some(obj) = resource.as_object() else {
            return Vec::new();
        };
        let obj = match &self.schema {
            Some(s) => match get_ci(obj, s).and_then(Value::as_object) {
                Some(o) => o,
                None => return Vec::new(),
            },
            None => obj,
        };
        let Some(v) = get_ci(obj, &self.attr) else {
            return Vec::new();
        };
        let items: Vec<&Value> = match v {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        items
            .into_iter()
            .filter_map(|item| match (&self.sub, item) {
                (Some(sub), Value::Object(o)) => get_ci(o, sub),
                (Some(_), _) => None,
                (None, Value::Object(o)) if v.is_array() => get_ci(o, "value"),
                (None, other) => Some(other),
            })
            .filter(|v| !v.is_null())
            .collect()
    }

    fn case_exact(&self, parent: Option<&str>) -> bool {
        let last = self.sub.as_deref().unwrap_or(&self.attr);
        ["id", "externalId", "version", "$ref"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(last))
            || (last.eq_ignore_ascii_case("value")
                && [Some(self.attr.as_str()), parent]
                    .into_iter()
                    .flatten()
                    .any(|a| a.eq_ignore_ascii_case("members") || a.eq_ignore_ascii_case("groups")))
    }
}

impl fmt::Display for AttrRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.schema {
            write!(f, "{s}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Contains.
    Co,
    /// Starts with.
    Sw,
    /// Ends with.
    Ew,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
}

impl CompareOp {
    const ALL: [(&'static str, CompareOp); 9] = [
        ("eq", CompareOp::Eq),
        ("ne", CompareOp::Ne),
        ("co", CompareOp::Co),
        ("sw", CompareOp::Sw),
        ("ew", CompareOp::Ew),
        ("gt", CompareOp::Gt),
        ("ge", CompareOp::Ge),
        ("lt", CompareOp::Lt),
        ("le", CompareOp::Le),
    ];

    fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, o)| *o == self).map_or("eq", |(n, _)| n)
    }
}

/// A comparison value: `false`, `null`, `true`, a number or a string.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CompValue {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A JSON number.
    Number(Number),
    /// A JSON string.
    String(String),
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Number(n) => write!(f, "{n}"),
            CompValue::String(s) => f.write_str(&Value::String(s.clone()).to_string()),
        }
    }
}

/// A parsed SCIM filter.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Filter {
    /// `attr pr`.
    Present(AttrRef),
    /// `attr op value`.
    Compare(AttrRef, CompareOp, CompValue),
    /// `attr[filter]`: some element of a (multi-valued) complex attribute
    /// matches the inner filter, whose paths name sub-attributes.
    ValuePath(AttrRef, Box<Filter>),
    /// `not (filter)`.
    Not(Box<Filter>),
    /// `a and b`.
    And(Box<Filter>, Box<Filter>),
    /// `a or b`.
    Or(Box<Filter>, Box<Filter>),
}

impl Filter {
    /// Parses a filter.
    pub fn parse(text: &str) -> Result<Filter, ParseError> {
        let mut p = Parser::new(text);
        let f = p.or()?;
        p.end()?;
        Ok(f)
    }

    /// Parses a filter up to (not including) the text that cannot continue
    /// it, e.g. the `]` closing a value path.
    pub(crate) fn parse_inner(p: &mut Parser<'_>) -> Result<Filter, ParseError> {
        let f = p.or()?;
        p.ws();
        Ok(f)
    }

    /// True when `resource` matches.
    pub fn matches(&self, resource: &Value) -> bool {
        self.eval(resource, None)
    }

    /// True when `element`, an element of the attribute `parent`, matches.
    pub fn matches_in(&self, element: &Value, parent: &str) -> bool {
        self.eval(element, Some(parent))
    }

    fn eval(&self, resource: &Value, parent: Option<&str>) -> bool {
        match self {
            Filter::Present(path) => path.values(resource).iter().any(|v| match v {
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
                _ => true,
            }),
            Filter::Compare(path, CompareOp::Ne, value) => {
                !Filter::Compare(path.clone(), CompareOp::Eq, value.clone()).eval(resource, parent)
            }
            Filter::Compare(path, _, CompValue::Null) => path.values(resource).is_empty(),
            Filter::Compare(path, op, value) => {
                let exact = path.case_exact(parent);
                path.values(resource).iter().any(|v| compare(v, *op, value, exact))
            }
            Filter::ValuePath(path, inner) => {
                let Some(obj) = resource.as_object() else { return false };
                let obj = match &path.schema {
                    Some(s) => match get_ci(obj, s).and_then(Value::as_object) {
                        Some(o) => o,
                        None => return false,
                    },
                    None => obj,
                };
                match get_ci(obj, &path.attr) {
                    Some(Value::Array(items)) => items.iter().any(|e| inner.eval(e, Some(&path.attr))),
                    Some(v @ Value::Object(_)) => inner.eval(v, Some(&path.attr)),
                    _ => false,
                }
            }
            Filter::Not(f) => !f.eval(resource, parent),
            Filter::And(a, b) => a.eval(resource, parent) && b.eval(resource, parent),
            Filter::Or(a, b) => a.eval(resource, parent) || b.eval(resource, parent),
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            Filter::Or(..) => 0,
            Filter::And(..) => 1,
            _ => 2,
        }
    }
}

fn write_child(f: &mut fmt::Formatter<'_>, child: &Filter, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({child})")
    } else {
        write!(f, "{child}")
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Present(p) => write!(f, "{p} pr"),
            Filter::Compare(p, op, v) => write!(f, "{p} {} {v}", op.name()),
            Filter::ValuePath(p, inner) => write!(f, "{p}[{inner}]"),
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::And(a, b) | Filter::Or(a, b) => {
                let me = self.precedence();
                write_child(f, a, a.precedence() < me)?;
                f.write_str(if me == 0 { " or " } else { " and " })?;
                write_child(f, b, b.precedence() <= me)
            }
        }
    }
}

/// Compares one attribute value with a filter value.
fn compare(have: &Value, op: CompareOp, want: &CompValue, case_exact: bool) -> bool {
    match (have, want) {
        (Value::String(h), CompValue::String(w)) => {
            let (h, w) = if case_exact {
                (h.clone(), w.clone())
            } else {
                (h.to_lowercase(), w.to_lowercase())
            };
            match op {
                CompareOp::Eq => h == w,
                CompareOp::Ne => h != w,
                CompareOp::Co => h.contains(&w),
                CompareOp::Sw => h.starts_with(&w),
                CompareOp::Ew => h.ends_with(&w),
                CompareOp::Gt => h > w,
                CompareOp::Ge => h >= w,
                CompareOp::Lt => h < w,
                CompareOp::Le => h <= w,
            }
        }
        (Value::Number(h), CompValue::Number(w)) => {
            let (Some(h), Some(w)) = (h.as_f64(), w.as_f64()) else {
                return false;
            };
            let ord = h.partial_cmp(&w);
            match op {
                CompareOp::Eq => ord == Some(Ordering::Equal),
                CompareOp::Ne => ord != Some(Ordering::Equal),
                CompareOp::Gt => ord == Some(Ordering::Greater),
                CompareOp::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
                CompareOp::Lt => ord == Some(Ordering::Less),
                CompareOp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                _ => false,
            }
        }
        (Value::Bool(h), CompValue::Bool(w)) => match op {
            CompareOp::Eq => h == w,
            CompareOp::Ne => h != w,
            _ => false,
        },
        // Azure AD and others send booleans as strings now and then.
        (Value::String(h), CompValue::Bool(w)) => match op {
            CompareOp::Eq => h.eq_ignore_ascii_case(&w.to_string()),
            CompareOp::Ne => !h.eq_ignore_ascii_case(&w.to_string()),
            _ => false,
        },
        _ => false,
    }
}

/// Orders two resources by the first value at `path` (strings compared
/// case-insensitively, numbers numerically); resources without a value
/// come last.
pub fn sort_key_cmp(path: &AttrRef, a: &Value, b: &Value) -> Ordering {
    let first = |r: &Value| path.values(r).first().map(|v| (*v).clone());
    match (first(a), first(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

/// A recursive-descent parser over the filter and path grammars.
pub(crate) struct Parser<'a> {
    text: &'a str,
    pos: usize,
    /// Parentheses, `not` and value paths open around the current position.
    depth: usize,
    /// `and` and `or` read so far.
    operators: usize,
}

/// The deepest nesting of parentheses, `not` and value paths a filter may
/// have. Parsing, evaluating, printing and dropping a filter recurse
/// through its nesting: without a bound, `((((…` from a client would
/// overflow the stack and abort the process.
pub const MAX_NESTING: usize = 32;

/// The most `and`/`or` operators a filter may have (each one nests the
/// filter built so far one level deeper).
pub const MAX_OPERATORS: usize = 1000;

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$'
}

impl<'a> Parser<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Parser {
            text,
            pos: 0,
            depth: 0,
            operators: 0,
        }
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    pub(crate) fn err(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            at: self.pos,
            message: message.into(),
        }
    }

    pub(crate) fn ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(crate) fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), ParseError> {
        self.ws();
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.err(format!("expected '{c}'")))
        }
    }

    pub(crate) fn end(&mut self) -> Result<(), ParseError> {
        self.ws();
        if self.rest().is_empty() {
            Ok(())
        } else {
            Err(self.err(format!("unexpected {:?}", self.rest())))
        }
    }

    /// A keyword, case-insensitively, followed by a space or `(`.
    fn keyword(&mut self, word: &str) -> bool {
        let save = self.pos;
        self.ws();
        let rest = self.rest();
        let matched = rest.len() >= word.len()
            && rest.is_char_boundary(word.len())
            && rest[..word.len()].eq_ignore_ascii_case(word)
            && rest[word.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_whitespace() || c == '(');
        if matched {
            self.pos += word.len();
        } else {
            self.pos = save;
        }
        matched
    }

    /// Counts one more `and`/`or`, refusing more than [`MAX_OPERATORS`].
    fn operator(&mut self) -> Result<(), ParseError> {
        self.operators += 1;
        if self.operators > MAX_OPERATORS {
            return Err(self.err(format!("more than {MAX_OPERATORS} and/or operators")));
        }
        Ok(())
    }

    /// Parses `inner` one nesting level deeper, refusing more than [`MAX_NESTING`].
    fn nested<T>(&mut self, inner: impl FnOnce(&mut Self) -> Result<T, ParseError>) -> Result<T, ParseError> {
        if self.depth >= MAX_NESTING {
            return Err(self.err(format!("nested more than {MAX_NESTING} levels deep")));
        }
        self.depth += 1;
        let out = inner(self);
        self.depth -= 1;
        out
    }

    fn or(&mut self) -> Result<Filter, ParseError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.operator()?;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, ParseError> {
        let mut left = self.not()?;
        while self.keyword("and") {
            self.operator()?;
            let right = self.not()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Filter, ParseError> {
        if self.keyword("not") {
            self.expect('(')?;
            let inner = self.nested(Self::or)?;
            self.expect(')')?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Filter, ParseError> {
        self.ws();
        if self.eat('(') {
            let inner = self.nested(Self::or)?;
            self.expect(')')?;
            return Ok(inner);
        }
        let path = self.attr_ref()?;
        if self.eat('[') {
            if path.sub.is_some() {
                return Err(self.err("a value filter applies to an attribute, not a sub-attribute"));
            }
            let inner = self.nested(Self::or)?;
            self.expect(']')?;
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        let op_at = {
            self.ws();
            self.pos
        };
        let word: String = self.rest().chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        self.pos += word.len();
        if word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let Some(op) = CompareOp::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&word))
            .map(|(_, o)| *o)
        else {
            self.pos = op_at;
            return Err(self.err(format!("expected an operator after {path}")));
        };
        self.ws();
        let value = self.value()?;
        Ok(Filter::Compare(path, op, value))
    }

    fn value(&mut self) -> Result<CompValue, ParseError> {
        let rest = self.rest();
        if rest.starts_with('"') {
            let mut escaped = false;
            let mut end = None;
            for (i, c) in rest.char_indices().skip(1) {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.ok_or_else(|| self.err("a string is never closed"))?;
            let s: String = serde_json::from_str(&rest[..=end]).map_err(|e| self.err(format!("bad string: {e}")))?;
            self.pos += end + 1;
            return Ok(CompValue::String(s));
        }
        let token: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
            .collect();
        let value = match token.to_ascii_lowercase().as_str() {
            "true" => CompValue::Bool(true),
            "false" => CompValue::Bool(false),
            "null" => CompValue::Null,
            "" => return Err(self.err("expected a value")),
            t => CompValue::Number(
                serde_json::from_str::<Number>(t).map_err(|_| self.err(format!("bad value {token:?}")))?,
            ),
        };
        self.pos += token.len();
        Ok(value)
    }

    /// `[URN ":"] name ["." sub]`.
    pub(crate) fn attr_ref(&mut self) -> Result<AttrRef, ParseError> {
        self.ws();
        let start = self.pos;
        let rest = self.rest();
        let mut schema = None;
        if rest.len() >= 4 && rest.is_char_boundary(4) && rest[..4].eq_ignore_ascii_case("urn:") {
            let token_len = rest
                .find(|c: char| c.is_whitespace() || matches!(c, '[' | ']' | '(' | ')'))
                .unwrap_or(rest.len());
            let token = &rest[..token_len];
            let known = KNOWN_SCHEMAS.iter().find(|s| {
                token.len() > s.len()
                    && token.is_char_boundary(s.len())
                    && token[..s.len()].eq_ignore_ascii_case(s)
                    && token[s.len()..].starts_with(':')
            });
            let split = match known {
                Some(s) => s.len(),
                None => token.rfind(':').unwrap_or(0),
            };
            let urn = &token[..split];
            if !urn.eq_ignore_ascii_case(USER_SCHEMA) && !urn.eq_ignore_ascii_case(GROUP_SCHEMA) {
                schema = Some(known.map_or(urn, |s| *s).to_owned());
            }
            self.pos += split + 1;
        }
        let attr = self.name()?;
        let sub = if self.peek() == Some('.') {
            self.pos += 1;
            Some(self.name()?)
        } else {
            None
        };
        if self.peek() == Some('.') {
            self.pos = start;
            return Err(self.err("an attribute path has at most one sub-attribute"));
        }
        Ok(AttrRef { schema, attr, sub })
    }

    /// `ATTRNAME = ALPHA *(nameChar)` (and `$ref`).
    pub(crate) fn name(&mut self) -> Result<String, ParseError> {
        let name: String = self.rest().chars().take_while(|c| name_char(*c)).collect();
        let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '$');
        if !first_ok {
            return Err(self.err("expected an attribute name"));
        }
        self.pos += name.len();
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn p(s: &str) -> Filter {
        Filter::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_the_rfc_examples() {
        for s in [
            r#"userName eq "bjensen""#,
            r#"name.familyName co "O'Malley""#,
            r#"userName sw "J""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            "title pr",
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7""#,
            "active eq true",
            "x eq 1.5e3",
        ] {
            let f = p(s);
            assert_eq!(p(&f.to_string()), f, "{s} → {f}");
        }
        assert_eq!(
            p(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#),
            p(r#"userName sw "J""#)
        );
        let ext = p(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m""#);
        assert_eq!(
            ext,
            Filter::Compare(
                AttrRef {
                    schema: Some(ENTERPRISE_SCHEMA.into()),
                    attr: "manager".into(),
                    sub: Some("value".into())
                },
                CompareOp::Eq,
                CompValue::String("m".into())
            )
        );
        assert_eq!(
            p("a eq 1 or b eq 2 and c eq 3").to_string(),
            "a eq 1 or b eq 2 and c eq 3"
        );
        assert_eq!(
            p("(a eq 1 or b eq 2) and c eq 3").to_string(),
            "(a eq 1 or b eq 2) and c eq 3"
        );
        assert_eq!(p("A EQ 1 AND NOT(b PR)").to_string(), "A eq 1 and not (b pr)");
    }

    #[test]
    fn rejects_bad_filters() {
        for s in [
            "",
            "userName",
            "userName eq",
            "userName xx \"a\"",
            "userName eq \"a",
            "(userName eq \"a\"",
            "userName eq \"a\")",
            "emails[type eq \"work\"",
            "a.b.c eq 1",
            "not userName pr",
            "userName eq \"a\" and",
            "1abc eq 2",
            "a eq bareword",
        ] {
            assert!(Filter::parse(s).is_err(), "{s:?} should not parse");
        }
    }

    /// Found by the `scim` fuzz target: `((((…` overflowed the stack (a
    /// crash of the whole process, as the SCIM server parses filters from
    /// requests). Nesting and operators are bounded now.
    #[test]
    fn deep_nesting_and_endless_operator_chains_are_errors_not_crashes() {
        let deep = format!("{}userName pr{}", "(".repeat(100_000), ")".repeat(100_000));
        let e = Filter::parse(&deep).unwrap_err();
        assert_eq!(e.message, format!("nested more than {MAX_NESTING} levels deep"));
        assert_eq!(e.at, MAX_NESTING + 1, "just after the parenthesis one too many");
        let nots = format!("{}userName pr{}", "not (".repeat(50_000), ")".repeat(50_000));
        assert!(Filter::parse(&nots).is_err());
        let paths = format!("{}x pr{}", "emails[".repeat(50_000), "]".repeat(50_000));
        assert!(Filter::parse(&paths).is_err());
        assert!(crate::patch::PatchPath::parse(&format!("emails[{deep}]")).is_err());
        let ok = format!("{}userName pr{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert!(Filter::parse(&ok).is_ok());

        let chain = vec!["userName pr"; MAX_OPERATORS + 2].join(" and ");
        let e = Filter::parse(&chain).unwrap_err();
        assert_eq!(e.message, format!("more than {MAX_OPERATORS} and/or operators"));
        let ok = vec!["userName pr"; MAX_OPERATORS + 1].join(" or ");
        assert!(Filter::parse(&ok).is_ok());
    }

    #[test]
    fn evaluates() {
        let r = json!({
            "id": "Abc",
            "userName": "Bjensen",
            "title": "",
            "active": true,
            "emails": [{"type": "work", "value": "b@example.com"}, {"type": "home", "value": "b@home.org"}],
            "name": {"familyName": "O'Malley"},
            "meta": {"lastModified": "2020-01-02T00:00:00Z"},
            ENTERPRISE_SCHEMA: {"employeeNumber": "7", "manager": {"value": "m1"}},
            "members": [{"value": "U1"}],
            "n": 5
        });
        let yes = [
            r#"userName eq "bjensen""#,
            r#"username sw "BJ""#,
            r#"userName ew "sen""#,
            r#"name.familyName co "mall""#,
            r#"emails co "example.com""#,
            r#"emails.value ew ".org""#,
            r#"emails[type eq "work" and value co "@example.com"]"#,
            r#"meta.lastModified gt "2019-12-31T00:00:00Z""#,
            r#"meta.lastModified le "2020-01-02T00:00:00Z""#,
            "active eq true",
            r#"id eq "Abc""#,
            r#"id ne "abc""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "M1""#,
            r#"members[value eq "U1"]"#,
            "n gt 4 and n lt 6 and n ge 5 and n le 5",
            "not (title pr)",
            "nickName eq null",
            r#"userName eq "x" or userName eq "bjensen""#,
        ];
        for s in yes {
            assert!(p(s).matches(&r), "{s} should match");
        }
        let no = [
            r#"id eq "abc""#,
            "title pr",
            r#"emails[type eq "work" and value co "@home"]"#,
            r#"members[value eq "u1"]"#,
            "active eq false",
            r#"nickName eq "x""#,
            "n gt 5",
            r#"userName eq "x" and userName eq "bjensen""#,
        ];
        for s in no {
            assert!(!p(s).matches(&r), "{s} should not match");
        }
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z][a-zA-Z0-9_-]{0,6}".prop_filter("not a keyword", |s| {
            !["and", "or", "not", "pr"].contains(&s.to_ascii_lowercase().as_str())
        })
    }

    fn attr_ref() -> impl Strategy<Value = AttrRef> {
        (
            prop_oneof![
                Just(None),
                Just(Some(ENTERPRISE_SCHEMA.to_owned())),
                Just(Some("urn:acme:ext".to_owned()))
            ],
            name(),
            proptest::option::of(name()),
        )
            .prop_map(|(schema, attr, sub)| AttrRef { schema, attr, sub })
    }

    fn value() -> impl Strategy<Value = CompValue> {
        prop_oneof![
            Just(CompValue::Null),
            any::<bool>().prop_map(CompValue::Bool),
            any::<i64>().prop_map(|n| CompValue::Number(n.into())),
            "\\PC{0,10}".prop_map(CompValue::String),
        ]
    }

    fn filter() -> impl Strategy<Value = Filter> {
        let op = proptest::sample::select(CompareOp::ALL.iter().map(|(_, o)| *o).collect::<Vec<_>>());
        let leaf = prop_oneof![
            attr_ref().prop_map(Filter::Present),
            (attr_ref(), op, value()).prop_map(|(p, o, v)| Filter::Compare(p, o, v)),
        ];
        leaf.prop_recursive(4, 24, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
                inner.clone().prop_map(|f| Filter::Not(Box::new(f))),
                (name(), inner).prop_map(|(a, f)| Filter::ValuePath(AttrRef::new(a), Box::new(f))),
            ]
        })
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(f in filter()) {
            let text = f.to_string();
            prop_assert_eq!(Filter::parse(&text), Ok(f), "{}", text);
        }

        #[test]
        fn parse_never_panics(s in "[a-zA-Z:.\\[\\]()\" =0-9]{0,40}") {
            let _ = Filter::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_any_text(prefix in prop_oneof![Just(""), Just("urn:"), Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:")], s in "\\PC{0,30}") {
            let text = format!("{prefix}{s}");
            let _ = Filter::parse(&text);
            let _ = crate::patch::PatchPath::parse(&text);
            let _ = AttrRef::parse(&text);
        }
    }
}
