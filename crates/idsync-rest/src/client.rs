//! The wire calls, driven by the configuration: URLs from path templates,
//! bodies from body templates, paged listings through `idsync-http`.

use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt};
use idsync_core::ObjectKind;
use idsync_http::{Extracted, HttpClient, HttpError, Method, Request, Response, StatusCode, Url, header};
use serde_json::Value;

use crate::config::{ListConfig, OperationConfig, ResourceConfig, RestConfig};
use crate::error::RestError;
use crate::map::{self, Vars, at, text};

/// A configured client of one REST API. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RestClient {
    http: HttpClient,
    config: Arc<RestConfig>,
    base: String,
}

const JSON: &str = "application/json";

/// The characters of an id left as they are in a path segment.
fn encode_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl RestClient {
    /// Builds the client (does no I/O). Checks the base URL and pointers.
    pub fn new(config: RestConfig) -> Result<Self, RestError> {
        let http = HttpClient::new(&config.http).map_err(|e| RestError::Config(e.to_string()))?;
        if config.base_url.cannot_be_a_base() {
            return Err(RestError::Config(format!(
                "base_url {} cannot hold paths",
                config.base_url
            )));
        }
        for (kind, r) in [
            (ObjectKind::User, Some(&config.users)),
            (ObjectKind::Group, config.groups.as_ref()),
        ] {
            let Some(r) = r else { continue };
            let mut pointers = vec![("id", r.id.as_str()), ("list.items", r.list.items.as_str())];
            pointers.extend(r.link.as_deref().map(|p| ("link", p)));
            pointers.extend(r.enabled.as_ref().map(|e| ("enabled.pointer", e.pointer.as_str())));
            pointers.extend(r.members.as_deref().map(|p| ("members", p)));
            pointers.extend(r.fields.values().map(|f| ("fields", f.pointer())));
            for (what, p) in pointers {
                if !p.is_empty() && !p.starts_with('/') {
                    return Err(RestError::Config(format!(
                        "{kind}s.{what}: {p:?} is not a JSON pointer (it must start with '/' or be empty)"
                    )));
                }
            }
        }
        let base = config.base_url.as_str().trim_end_matches('/').to_owned();
        Ok(RestClient {
            http,
            config: Arc::new(config),
            base,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RestConfig {
        &self.config
    }

    /// The resource of `kind`, or a configuration error.
    pub(crate) fn resource(&self, kind: ObjectKind) -> Result<&ResourceConfig, RestError> {
        self.config
            .resource(kind)
            .ok_or_else(|| RestError::Config(format!("no {kind}s resource is configured")))
    }

    fn url(&self, template: &str, id: Option<&str>, member: Option<&str>) -> Result<Url, RestError> {
        let path = template
            .replace("{id}", &id.map(encode_segment).unwrap_or_default())
            .replace("{member}", &member.map(encode_segment).unwrap_or_default());
        let sep = if path.starts_with('/') || path.starts_with('?') || path.is_empty() {
            ""
        } else {
            "/"
        };
        Url::parse(&format!("{}{sep}{path}", self.base))
            .map_err(|e| RestError::Config(format!("path {template:?} makes a bad URL: {e}")))
    }

    /// Streams every object of a listing.
    pub(crate) fn list<'a>(&'a self, kind: ObjectKind) -> BoxStream<'a, Result<Value, RestError>> {
        let what = format!("{kind}s");
        let resource = match self.resource(kind) {
            Ok(r) => r,
            Err(e) => return futures::stream::once(async { Err(e) }).boxed(),
        };
        self.list_with(&resource.list, what, None)
    }

    /// Streams every object of `list`, with `{id}` in its path replaced.
    pub(crate) fn list_with<'a>(
        &'a self,
        list: &'a ListConfig,
        what: String,
        id: Option<&str>,
    ) -> BoxStream<'a, Result<Value, RestError>> {
        let url = match self.url(&list.path, id, None) {
            Ok(u) => u,
            Err(e) => return futures::stream::once(async { Err(e) }).boxed(),
        };
        let request = Request::new(list.method.clone(), url)
            .idempotent(true)
            .header(header::ACCEPT, header::HeaderValue::from_static(JSON));
        let what2 = what.clone();
        self.http
            .paginate(request, list.pagination.clone(), move |r: &Response| extract(r, list))
            .map(move |item| item.map_err(|e| RestError::http("list", what2.clone(), e)))
            .boxed()
    }

    /// Sends one configured call. A status in `also_ok` counts as success
    /// (`Ok(None)`); otherwise the answer, when it is a success listed in
    /// `success` (any 2xx when that is empty).
    pub(crate) async fn call(
        &self,
        operation: &'static str,
        object: &str,
        op: &OperationConfig,
        vars: &Vars<'_>,
        default_body: bool,
    ) -> Result<Option<Response>, RestError> {
        let url = self.url(&op.path, vars.id, vars.member)?;
        let mut request =
            Request::new(op.method.clone(), url).header(header::ACCEPT, header::HeaderValue::from_static(JSON));
        let body = match &op.body {
            Some(t) => Some(map::render(t, vars)),
            None if default_body => Some(vars.object.cloned().unwrap_or(Value::Object(Default::default()))),
            None => None,
        };
        if let Some(body) = body {
            request = request
                .json(&body, JSON)
                .map_err(|e| RestError::http(operation, object, e))?;
        }
        match self.http.send(request).await {
            Ok(r) => {
                if !op.success.is_empty() && !op.success.contains(&r.status.as_u16()) {
                    return Err(RestError::UnexpectedStatus {
                        operation,
                        object: object.to_owned(),
                        status: r.status.as_u16(),
                    });
                }
                Ok(Some(r))
            }
            Err(e) if e.status().is_some_and(|s| op.also_ok.contains(&s.as_u16())) => {
                tracing::debug!(backend = crate::NAME, operation, object, status = ?e.status(), "status counted as success");
                Ok(None)
            }
            Err(e) => Err(RestError::http(operation, object, e)),
        }
    }

    /// Reads one object; `None` on 404/410 (or when no `get` is configured
    /// and a listing does not hold it).
    pub(crate) async fn get(&self, kind: ObjectKind, id: &str) -> Result<Option<Value>, RestError> {
        let resource = self.resource(kind)?;
        let object = format!("{kind} {id}");
        let Some(op) = &resource.get else {
            let mut all = self.list(kind);
            while let Some(v) = all.next().await {
                let v = v?;
                if map::id_of(&v, resource).as_deref() == Some(id) {
                    return Ok(Some(v));
                }
            }
            return Ok(None);
        };
        let vars = Vars {
            id: Some(id),
            numeric_id: resource.numeric_id,
            ..Vars::default()
        };
        match self.call("get", &object, op, &vars, false).await {
            Ok(Some(r)) => {
                let v: Value = r.json().map_err(|e| RestError::http("get", object.clone(), e))?;
                Ok(Some(at(&v, &op.response).cloned().unwrap_or(v)))
            }
            Ok(None) => Ok(None),
            Err(e) if matches!(e.status(), Some(404 | 410)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The id of a created object: at `response` + the id pointer in the
    /// answer, or the last segment of its `Location` header.
    pub(crate) fn created_id(&self, kind: ObjectKind, op: &OperationConfig, r: &Response) -> Option<String> {
        let resource = self.resource(kind).ok()?;
        let from_body = serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|v| at(&v, &op.response).and_then(|o| map::id_of(o, resource)));
        from_body.or_else(|| {
            let loc = r.header(header::LOCATION)?;
            let last = loc.trim_end_matches('/').rsplit('/').next()?;
            (!last.is_empty()).then(|| last.to_owned())
        })
    }

    /// A request with an explicit method to an explicit path (the veto call).
    pub(crate) async fn send_raw(
        &self,
        operation: &'static str,
        object: &str,
        method: Method,
        path: &str,
        id: &str,
    ) -> Result<Value, RestError> {
        let url = self.url(path, Some(id), None)?;
        let r = self
            .http
            .send(Request::new(method, url).idempotent(true))
            .await
            .map_err(|e| RestError::http(operation, object, e))?;
        if r.status == StatusCode::NO_CONTENT || r.body.is_empty() {
            return Ok(Value::Null);
        }
        r.json().map_err(|e| RestError::http(operation, object, e))
    }
}

/// The items, total and next cursor of one page.
fn extract(r: &Response, list: &ListConfig) -> Result<Extracted<Value>, HttpError> {
    let page: Value = r.json()?;
    let items = match at(&page, &list.items) {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Null) | None if !list.items.is_empty() => Vec::new(),
        _ => {
            return Err(r.decode_error(format!(
                "no items array at {:?}",
                if list.items.is_empty() {
                    "(the whole body)"
                } else {
                    &list.items
                }
            )));
        }
    };
    let total = list
        .total
        .as_ref()
        .and_then(|p| at(&page, p))
        .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())));
    let next_cursor = list.next_cursor.as_ref().and_then(|p| at(&page, p)).and_then(text);
    Ok(Extracted {
        items,
        total,
        next_cursor,
    })
}
