//! List query parameters: `skip`, `limit`, `sort`, `fields`, `filter`, in
//! their v1 (space-separated, `$eq`) and v2 (comma-separated, `eq`) forms.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::error::ApiError;

/// Default page size, v1 and v2 ([spec]).
const DEFAULT_LIMIT: usize = 10;
/// Largest page size; more is a 400, not a silent clamp ([observed]).
const MAX_LIMIT: usize = 100;

/// Which API's grammar a query uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Api {
    V1,
    V2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    In,
    Search,
}

#[derive(Debug)]
struct Cond {
    path: String,
    op: Op,
    value: String,
}

/// A parsed list query.
#[derive(Debug)]
pub(crate) struct ListQuery {
    pub(crate) skip: usize,
    pub(crate) limit: usize,
    sort: Vec<(String, bool)>,
    fields: Option<Vec<String>>,
    and: Vec<Cond>,
    or: Vec<Cond>,
}

impl ListQuery {
    /// Parses the query pairs. v1 takes `filter`, `filter[n]` (ANDed) and
    /// `filter[or][n]` (ORed); v2 takes repeated `filter` (ANDed).
    pub(crate) fn parse(api: Api, pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut q = ListQuery {
            skip: 0,
            limit: DEFAULT_LIMIT,
            sort: Vec::new(),
            fields: None,
            and: Vec::new(),
            or: Vec::new(),
        };
        let sep = match api {
            Api::V1 => ' ',
            Api::V2 => ',',
        };
        for (key, value) in pairs {
            match key.as_str() {
                "skip" => q.skip = number("skip", value)?,
                "limit" => {
                    q.limit = number("limit", value)?;
                    if q.limit > MAX_LIMIT {
                        return Err(ApiError::bad_request(format!(
                            "Bad Request: request parameter \"limit\" exceeds maximum value of {MAX_LIMIT}"
                        )));
                    }
                }
                "sort" => {
                    for s in value.split(sep).map(str::trim).filter(|s| !s.is_empty()) {
                        match s.strip_prefix('-') {
                            Some(f) => q.sort.push((f.to_owned(), true)),
                            None => q.sort.push((s.to_owned(), false)),
                        }
                    }
                }
                "fields" => {
                    let f: Vec<String> = value
                        .split(sep)
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if !f.is_empty() {
                        q.fields = Some(f);
                    }
                }
                k if k == "filter" || (api == Api::V1 && is_indexed(k, "filter[")) => {
                    q.and.push(cond(api, value)?);
                }
                k if api == Api::V1 && is_indexed(k, "filter[or][") => q.or.push(cond(api, value)?),
                _ => {}
            }
        }
        Ok(q)
    }

    /// Whether a record passes every ANDed filter and one of the ORed ones.
    pub(crate) fn matches(&self, record: &Value) -> bool {
        self.and.iter().all(|c| c.holds(record)) && (self.or.is_empty() || self.or.iter().any(|c| c.holds(record)))
    }

    /// Filters, sorts (then by `id_field` for stability), pages and
    /// projects. Returns the page and the count of matching records.
    pub(crate) fn apply(&self, records: Vec<Value>, id_field: &str) -> (Vec<Value>, usize) {
        let mut hits: Vec<Value> = records.into_iter().filter(|r| self.matches(r)).collect();
        hits.sort_by(|a, b| {
            self.sort
                .iter()
                .map(|(f, desc)| {
                    let o = order(lookup(a, f), lookup(b, f));
                    if *desc { o.reverse() } else { o }
                })
                .find(|o| o.is_ne())
                .unwrap_or_else(|| order(a.get(id_field), b.get(id_field)))
        });
        let total = hits.len();
        let page = hits
            .into_iter()
            .skip(self.skip)
            .take(self.limit)
            .map(|r| self.project(r, id_field))
            .collect();
        (page, total)
    }

    /// Keeps only the requested `fields` (and the id, always returned).
    pub(crate) fn project(&self, record: Value, id_field: &str) -> Value {
        let (Some(fields), Value::Object(map)) = (&self.fields, &record) else {
            return record;
        };
        let kept: Map<String, Value> = map
            .iter()
            .filter(|(k, _)| k.as_str() == id_field || fields.iter().any(|f| f == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Value::Object(kept)
    }
}

fn is_indexed(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|n| n.parse::<usize>().is_ok())
}

fn number(name: &str, value: &str) -> Result<usize, ApiError> {
    value.trim().parse().map_err(|_| {
        ApiError::bad_request(format!(
            "Bad Request: request parameter \"{name}\" must be a non-negative integer"
        ))
    })
}

/// Parses `field:op:value` (the value may itself contain `:`).
fn cond(api: Api, text: &str) -> Result<Cond, ApiError> {
    let bad = || ApiError::bad_request(format!("Bad Request: invalid filter \"{text}\""));
    let mut parts = text.splitn(3, ':');
    let (Some(path), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let op = match (api, op) {
        (Api::V1, "$eq") | (Api::V2, "eq") => Op::Eq,
        (Api::V1, "$ne") | (Api::V2, "ne") => Op::Ne,
        (Api::V1, "$gt") | (Api::V2, "gt") => Op::Gt,
        (Api::V1, "$gte") | (Api::V2, "ge") => Op::Ge,
        (Api::V1, "$lt") | (Api::V2, "lt") => Op::Lt,
        (Api::V1, "$lte") | (Api::V2, "le") => Op::Le,
        (Api::V2, "in") => Op::In,
        (Api::V2, "search") => Op::Search,
        _ => return Err(bad()),
    };
    if path.is_empty() {
        return Err(bad());
    }
    Ok(Cond {
        path: path.to_owned(),
        op,
        value: value.to_owned(),
    })
}

impl Cond {
    fn holds(&self, record: &Value) -> bool {
        let field = lookup(record, &self.path);
        let cmp = |v: &str| field.and_then(|f| compare(f, v));
        match self.op {
            Op::Eq => cmp(&self.value) == Some(Ordering::Equal),
            Op::Ne => cmp(&self.value) != Some(Ordering::Equal),
            Op::Gt => cmp(&self.value) == Some(Ordering::Greater),
            Op::Ge => cmp(&self.value).is_some_and(Ordering::is_ge),
            Op::Lt => cmp(&self.value) == Some(Ordering::Less),
            Op::Le => cmp(&self.value).is_some_and(Ordering::is_le),
            Op::In => self.value.split('|').any(|v| cmp(v) == Some(Ordering::Equal)),
            Op::Search => field
                .and_then(Value::as_str)
                .is_some_and(|s| s.contains(self.value.as_str())),
        }
    }
}

/// A dotted path into a record (`attributes.sudo.enabled`).
pub(crate) fn lookup<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(record, |v, k| v.get(k))
}

/// Compares a record's value with a filter's text (case sensitive).
fn compare(field: &Value, text: &str) -> Option<Ordering> {
    match field {
        Value::String(s) => Some(s.as_str().cmp(text)),
        Value::Bool(b) => text.parse::<bool>().ok().map(|t| b.cmp(&t)),
        Value::Number(n) => n.as_f64()?.partial_cmp(&text.parse::<f64>().ok()?),
        Value::Null => (text == "null").then_some(Ordering::Equal),
        _ => None,
    }
}

/// Sort order of two values: missing and null first, then by type.
fn order(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None | Some(Value::Null) => 0,
            Some(Value::Bool(_)) => 1,
            Some(Value::Number(_)) => 2,
            Some(Value::String(_)) => 3,
            Some(_) => 4,
        }
    }
    match (a, b) {
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}
