//! The SCIM target: Users and Groups of a SCIM 2.0 service.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use idsync_core::{
    Applied, Error, ErrorKind, ExternalId, FieldChange, Fields, Link, Lookup, ObjectKind, ProfileId, Result, Status,
    Target, TargetAccount, TargetCapabilities, TargetId, TargetOp,
};
use idsync_http::{HttpError, Response};
use serde_json::{Map, Value, json};

use crate::NAME;
use crate::ScimError;
use crate::client::{ScimClient, ServiceProvider, etag_of};
use crate::config::{LinkStyle, ScimConfig};
use crate::error::parse_error;
use crate::json::bool_of;
use crate::map::{AttrPath, GROUP_SCHEMA, USER_SCHEMA, flatten, patch_ops, quote};

mod bulk;
mod members;

/// The longest filter a lookup query carries (URLs of a few KB pass everywhere).
const MAX_FILTER_LEN: usize = 2_000;
/// Lookup queries in flight at once.
const LOOKUP_CONCURRENCY: usize = 4;

/// A SCIM 2.0 service as an idsync target.
///
/// **The link** is kept in `externalId` as `"<profile id>:<external id>"`
/// (SCIM has no second free attribute every server accepts): the accounts
/// of a profile are listed with `externalId sw "<profile id>:"`, and an
/// account whose `externalId` is not of that form is unmanaged.
///
/// Creates are POSTs, updates PATCH only the changed paths (PUT of the
/// whole resource where the dialect says so, or when the server rejects a
/// filtered path), disabling sets `active: false`, deletes happen only for
/// [`TargetOp::Delete`], group members change by PATCH add/remove. In a
/// batch ([`Target::apply_batch`]), creates, updates, enables and disables
/// go through `/Bulk` when the service supports it (see
/// [`crate::BulkMode`]), and a group's membership changes go out in
/// PATCHes of up to `member_chunk` members. Updates carry `If-Match` (in
/// `/Bulk`: `version`) with the last ETag seen when the service supports
/// ETags: a concurrent change fails as [`ErrorKind::Conflict`].
#[derive(Debug)]
pub struct ScimTarget {
    client: Arc<ScimClient>,
    etags: Mutex<HashMap<String, String>>,
    /// One lock per resource written with If-Match or by GET + PUT, so
    /// concurrent operations on one resource do not overwrite each other.
    put_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

fn etag_key(kind: ObjectKind, id: &str) -> String {
    format!("{kind}/{id}")
}

/// Requests one batch has in flight at once (Bulk requests, single writes,
/// and the membership changes of different groups).
const REQUESTS_AT_ONCE: usize = 4;

/// One operation's result and its position in the batch.
type Done = (usize, Result<Applied>);

/// An operation of a batch that is one write request, alone or in a Bulk.
struct Write<'a> {
    /// Its position in the batch.
    index: usize,
    op: &'a TargetOp,
    kind: ObjectKind,
    endpoint: &'a str,
    request: Request<'a>,
}

/// What a write sends.
enum Request<'a> {
    /// A create: the resource.
    Post(Value),
    /// A change of one resource, with If-Match: the PATCH operations.
    Patch(&'a TargetId, Vec<Value>),
}

impl Write<'_> {
    /// The operation's name, what it does, and the object it concerns (for errors).
    fn describe(&self) -> (&'static str, String, String) {
        let kind = self.kind;
        match self.op {
            TargetOp::Create { link, fields, .. } => {
                ("apply.create", format!("create {kind}"), create_name(link, fields))
            }
            TargetOp::Update { target, .. } => ("apply.update", format!("update {kind}"), target.0.clone()),
            TargetOp::SetEnabled { target, .. } => {
                ("apply.set_enabled", format!("set active of {kind}"), target.0.clone())
            }
            TargetOp::SetLink { target, .. } => {
                ("apply.set_link", format!("set externalId of {kind}"), target.0.clone())
            }
            TargetOp::Delete { target, .. } => ("apply.delete", format!("delete {kind}"), target.0.clone()),
            TargetOp::AddMember { group, .. } | TargetOp::RemoveMember { group, .. } => {
                ("apply.members", "change members".into(), group.0.clone())
            }
            other => ("apply", format!("{other:?}"), String::new()),
        }
    }
}

/// What became of a write's request.
enum Outcome {
    /// The server's answer to it.
    Answered(std::result::Result<Wrote, HttpError>),
    /// The request carrying it failed as a whole; `landed`: it may have been
    /// carried out all the same.
    Lost { error: Error, landed: bool },
}

/// What a successful write answered.
#[derive(Debug)]
struct Wrote {
    id: Option<String>,
    etag: Option<String>,
}

impl Wrote {
    fn from_response(r: &Response) -> Self {
        let body: Option<Value> = if r.body.is_empty() { None } else { r.json().ok() };
        let id = body
            .as_ref()
            .and_then(|b| b["id"].as_str().map(str::to_owned))
            .or_else(|| r.header(idsync_http::header::LOCATION).and_then(bulk::last_segment));
        Wrote {
            id,
            etag: etag_of(r, body.as_ref()),
        }
    }
}

/// `e` again for another operation of the same failed request: same kind
/// and retry status, named after that operation's object.
fn share(e: &Error, op: &'static str, what: &str, object: &str) -> Error {
    let copy = Error::new(e.kind(), format!("{what}: {}", e.message()))
        .with_backend(NAME)
        .with_op(op)
        .with_object(object);
    match e.status() {
        Status::Transient {
            retry_after: Some(after),
        } => copy.with_retry_after(after),
        Status::Transient { retry_after: None } => copy.transient(),
        Status::Permanent => copy.permanent(),
        Status::Exhausted => copy.transient().exhausted(),
    }
}

/// True when a request of several changes was refused for what one of them
/// holds (rather than an outage, a login or a missing resource): sent in
/// halves, the culprit fails alone.
fn splittable(e: &Error) -> bool {
    !e.is_transient()
        && !e.stops_run()
        && matches!(
            e.kind(),
            ErrorKind::InvalidData | ErrorKind::AlreadyExists | ErrorKind::Protocol
        )
}

/// The account a SCIM resource describes; `Ok(None)` without an id, `Err`
/// (naming `op`) for an `active` that means nothing ([`active`]).
pub(crate) fn to_account(
    v: &Value,
    kind: ObjectKind,
    links: &LinkStyle,
    op: &'static str,
) -> Result<Option<TargetAccount>> {
    let Some(id) = v["id"].as_str() else {
        return Ok(None);
    };
    let mut account = TargetAccount::new(id, kind);
    account.link = v["externalId"].as_str().and_then(|e| links.decode(e));
    account.fields = flatten(v);
    account.enabled = active(v, op, id)?;
    account.members = members(v).into_iter().map(TargetId).collect();
    Ok(Some(account))
}

/// Whether the resource `id` is enabled: its `active`, a boolean or the
/// string `"true"`/`"false"` in any case (services that send strings).
/// Absent or `null` is enabled (RFC 7643 §4.1.1 makes `active` optional;
/// groups have none). Any other value is an error naming the resource and
/// `active`: guessing would disable a user, or keep a leaver enabled.
pub(crate) fn active(v: &Value, op: &'static str, id: &str) -> Result<bool> {
    let value = &v["active"];
    if value.is_null() {
        return Ok(true);
    }
    bool_of(value).ok_or_else(|| {
        let shown = match value {
            Value::Array(_) => "an array".to_owned(),
            Value::Object(_) => "an object".to_owned(),
            scalar => scalar.to_string(),
        };
        ScimError::bad_value(id, "active", format!("{shown} is not a boolean")).into_core(op)
    })
}

pub(crate) fn members(v: &Value) -> Vec<String> {
    v["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["value"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What names an object in errors: its link and userName or displayName.
fn create_name(link: &Link, fields: &Fields) -> String {
    match fields.get("userName").or_else(|| fields.get("displayName")) {
        Some(name) => format!("{link} ({name})"),
        None => link.to_string(),
    }
}

impl ScimTarget {
    /// A target with the dialect's (RFC) defaults, without asking the service.
    pub fn new(config: ScimConfig) -> Result<Self> {
        Self::from_client(ScimClient::new(&config)?)
    }

    /// A target that first reads the service's `/ServiceProviderConfig`,
    /// `/ResourceTypes` and `/Schemas` (unless `discover = false`).
    pub async fn connect(config: ScimConfig) -> Result<Self> {
        let mut client = ScimClient::new(&config)?;
        if config.discover {
            client.discover().await?;
        }
        Self::from_client(client)
    }

    fn from_client(client: ScimClient) -> Result<Self> {
        Ok(ScimTarget {
            client: Arc::new(client),
            etags: Mutex::new(HashMap::new()),
            put_locks: Mutex::new(HashMap::new()),
        })
    }

    /// What the service said of itself.
    pub fn service_provider(&self) -> &ServiceProvider {
        &self.client.sp
    }

    /// True when the writes of a batch go through `/Bulk`.
    pub fn uses_bulk(&self) -> bool {
        self.client.bulk_limit().is_some()
    }

    fn endpoint(&self, kind: ObjectKind) -> Result<&str> {
        match kind {
            ObjectKind::User => Ok(&self.client.sp.users_endpoint),
            ObjectKind::Group => self.client.sp.groups_endpoint.as_deref().ok_or_else(|| {
                Error::new(ErrorKind::Unsupported, "the service has no Groups endpoint").with_backend(NAME)
            }),
        }
    }

    fn etags(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.etags.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, kind: ObjectKind, id: &str, etag: Option<String>) {
        let etag = etag.filter(|_| self.client.use_etag());
        let key = etag_key(kind, id);
        match etag {
            Some(e) => self.etags().insert(key, e),
            None => self.etags().remove(&key),
        };
    }

    fn etag_for(&self, kind: ObjectKind, id: &str) -> Option<String> {
        if !self.client.use_etag() {
            return None;
        }
        self.etags().get(&etag_key(kind, id)).cloned()
    }

    fn remember_listed(&self, kind: ObjectKind, v: &Value) {
        if !self.client.use_etag() {
            return;
        }
        if let (Some(id), Some(version)) = (v["id"].as_str(), v["meta"]["version"].as_str()) {
            self.etags().insert(etag_key(kind, id), version.to_owned());
        }
    }

    fn list_accounts(&self, kind: ObjectKind, filter: String) -> BoxStream<'_, Result<TargetAccount>> {
        let endpoint = match self.endpoint(kind) {
            Ok(e) => e,
            Err(e) => return stream::once(async move { Err(e) }).boxed(),
        };
        self.client
            .list(endpoint, Some(&filter))
            .map(move |item| {
                let v =
                    item.map_err(|e| ScimError::http(e, &format!("listing {endpoint}"), None).into_core("linked"))?;
                self.remember_listed(kind, &v);
                to_account(&v, kind, &self.client.link, "linked")?
                    .ok_or_else(|| ScimError::bad_response("a resource without an id", None).into_core("linked"))
            })
            .boxed()
    }

    /// The one request `op` is (a POST, or a PATCH when the service takes
    /// PATCH), or `None` when it is not one request.
    fn write_for<'a>(&'a self, index: usize, op: &'a TargetOp) -> Result<Option<Write<'a>>> {
        let (kind, request) = match op {
            TargetOp::Create { kind, link, fields } => {
                let name = create_name(link, fields);
                let body = self
                    .create_body(*kind, link, fields)
                    .map_err(|e| e.with_op("apply.create").with_object(&name))?;
                (*kind, Request::Post(body))
            }
            TargetOp::Update { target, kind, changes } if !changes.is_empty() => {
                let parsed = self.parse_changes(target, changes)?;
                let filtered = parsed.iter().any(|(p, _)| p.filter.is_some());
                if !self.client.use_patch() || (filtered && !self.client.dialect.patch_value_filters) {
                    return Ok(None);
                }
                let ops = parsed
                    .iter()
                    .flat_map(|(p, c)| patch_ops(p, c.old.as_deref(), c.new.as_deref()))
                    .collect();
                (*kind, Request::Patch(target, ops))
            }
            TargetOp::SetEnabled {
                target,
                kind: ObjectKind::User,
                enabled,
            } if self.client.use_patch() => (
                ObjectKind::User,
                Request::Patch(
                    target,
                    vec![json!({"op": "replace", "path": "active", "value": enabled})],
                ),
            ),
            TargetOp::SetLink { target, kind, link } if self.client.use_patch() => {
                let external_id = self.encode_link(link, target)?;
                (
                    *kind,
                    Request::Patch(
                        target,
                        vec![json!({"op": "replace", "path": "externalId", "value": external_id})],
                    ),
                )
            }
            _ => return Ok(None),
        };
        Ok(Some(Write {
            index,
            op,
            kind,
            endpoint: self.endpoint(kind)?,
            request,
        }))
    }

    fn encode_link(&self, link: &Link, target: &TargetId) -> Result<String> {
        self.client.link.encode(link).map_err(|m| {
            Error::config(m)
                .with_backend(NAME)
                .with_op("apply.set_link")
                .with_object(target)
        })
    }

    fn parse_changes<'c>(
        &self,
        target: &TargetId,
        changes: &'c [FieldChange],
    ) -> Result<Vec<(AttrPath, &'c FieldChange)>> {
        changes
            .iter()
            .map(|c| {
                let path = AttrPath::parse(&c.field).map_err(|m| {
                    Error::new(ErrorKind::InvalidData, m)
                        .with_backend(NAME)
                        .with_op("apply.update")
                        .with_object(target)
                        .with_field(c.field.clone())
                })?;
                Ok((self.client.sp.attribute_types.annotate(path), c))
            })
            .collect()
    }

    /// Sends one write alone: a POST, or a PATCH with If-Match under the
    /// resource's lock.
    async fn send_one(&self, w: &Write<'_>) -> Outcome {
        match &w.request {
            Request::Post(body) => {
                let answer = self.client.post(w.endpoint, body).await;
                let outcome = Outcome::Answered(answer.map(|r| Wrote::from_response(&r)));
                self.settle(w, &outcome);
                outcome
            }
            Request::Patch(target, ops) => {
                let lock = self.resource_lock(w.kind, &target.0);
                let guard = lock.lock().await;
                let etag = self.etag_for(w.kind, &target.0);
                let answer = self
                    .client
                    .patch(&[w.endpoint, &target.0], ops.clone(), etag.as_deref())
                    .await;
                let outcome = Outcome::Answered(answer.map(|r| Wrote::from_response(&r)));
                self.settle(w, &outcome);
                drop(guard);
                self.release_lock(w.kind, &target.0, lock);
                outcome
            }
        }
    }

    /// Remembers the ETag a write's answer gave (and forgets a stale one).
    fn settle(&self, w: &Write<'_>, outcome: &Outcome) {
        let target = match &w.request {
            Request::Patch(target, _) => Some(target.0.as_str()),
            Request::Post(_) => None,
        };
        match outcome {
            Outcome::Answered(Ok(wrote)) => {
                if let Some(id) = target.or(wrote.id.as_deref()) {
                    self.remember(w.kind, id, wrote.etag.clone());
                }
            }
            Outcome::Answered(Err(e)) if e.status().is_some_and(|s| s.as_u16() == 412) => {
                if let Some(id) = target {
                    self.remember(w.kind, id, None);
                }
            }
            _ => {}
        }
    }

    /// The results of writes from their outcomes: a create that failed
    /// after which the account may exist is looked up by its link, an
    /// update whose PATCH path the server rejected is done by GET + PUT.
    async fn finish(&self, items: Vec<(Write<'_>, Outcome)>) -> Vec<Done> {
        let mut done = Vec::with_capacity(items.len());
        let mut recover = Vec::new();
        let mut puts = Vec::new();
        for (w, outcome) in items {
            let (op, what, object) = w.describe();
            match (w.op, outcome) {
                (TargetOp::Create { .. }, Outcome::Answered(Ok(Wrote { id: Some(id), .. }))) => {
                    done.push((w.index, Ok(Applied::to(TargetId(id)))))
                }
                (TargetOp::Create { .. }, Outcome::Answered(Ok(_))) => {
                    done.push((
                        w.index,
                        Err(ScimError::bad_response("the created resource has no id", Some(&object)).into_core(op)),
                    ));
                }
                // A uniqueness conflict, or a failure after which the POST may
                // have landed: the link tells whether the account exists.
                (TargetOp::Create { kind, link, .. }, Outcome::Answered(Err(e)))
                    if e.status().is_some_and(|s| s.as_u16() == 409) || bulk::may_have_landed(&e) =>
                {
                    let landed = bulk::may_have_landed(&e);
                    recover.push((
                        w.index,
                        *kind,
                        link,
                        ScimError::http(e, &what, Some(&object)).into_core(op),
                        landed,
                    ));
                }
                (TargetOp::Create { kind, link, .. }, Outcome::Lost { error, landed: true }) => {
                    recover.push((w.index, *kind, link, error, true));
                }
                (TargetOp::Update { target, kind, changes }, Outcome::Answered(Err(e))) if is_path_problem(&e) => {
                    tracing::debug!(target = %target, "PATCH path rejected; updating by PUT");
                    puts.push((w.index, target, *kind, changes));
                }
                (_, Outcome::Answered(Ok(_))) => done.push((w.index, Ok(Applied::default()))),
                (_, Outcome::Answered(Err(e))) => {
                    done.push((w.index, Err(ScimError::http(e, &what, Some(&object)).into_core(op))))
                }
                (_, Outcome::Lost { error, .. }) => done.push((w.index, Err(error))),
            }
        }
        done.extend(self.recover_creates(recover).await);
        // rare (a server that takes PATCH but not a path): one after the other
        for (index, target, kind, changes) in puts {
            done.push((index, self.put_changes(target, kind, changes).await));
        }
        done
    }

    /// Creates whose account may exist after all (`(index, kind, link,
    /// error, landed)`): one look-up for all their links. Found: the create
    /// is done. Not found: its error stands. When the look-up fails too
    /// after a request that may have landed, a second POST could make a
    /// second account: the error is permanent, so this run does not retry
    /// it; the next one lists the linked accounts and sees whether it landed.
    async fn recover_creates(&self, items: Vec<(usize, ObjectKind, &Link, Error, bool)>) -> Vec<Done> {
        if items.is_empty() {
            return Vec::new();
        }
        let lookups: Vec<Lookup> = items
            .iter()
            .map(|(_, kind, link, _, _)| Lookup::External {
                kind: *kind,
                external: link.external.clone(),
            })
            .collect();
        let found = self.lookup(&lookups).await;
        items
            .into_iter()
            .map(|(index, kind, link, error, landed)| {
                let result = match &found {
                    Ok(accounts) => match accounts
                        .iter()
                        .find(|a| a.kind == kind && a.link.as_ref() == Some(link))
                    {
                        Some(existing) => {
                            Ok(Applied::to(existing.id.clone()).with_note("already existed with this link"))
                        }
                        None => Err(error),
                    },
                    Err(lookup) if landed => {
                        let object = error.object().map(|o| o.0.clone()).unwrap_or_default();
                        let what = format!("outcome unknown (the look-up failed too: {lookup})");
                        Err(share(&error, "apply.create", &what, &object).permanent())
                    }
                    Err(_) => Err(error),
                };
                (index, result)
            })
            .collect()
    }

    /// An operation that is not one write request: updates by GET + PUT,
    /// the PUT dialect's enable, disable and link, deletes.
    async fn apply_other(&self, op: &TargetOp) -> Result<Applied> {
        match op {
            TargetOp::Update { changes, .. } if changes.is_empty() => Ok(Applied::default()),
            TargetOp::Update { target, kind, changes } => self.put_changes(target, *kind, changes).await,
            TargetOp::SetEnabled {
                target,
                kind: ObjectKind::Group,
                ..
            } => Err(Error::new(ErrorKind::Unsupported, "SCIM groups cannot be disabled")
                .with_backend(NAME)
                .with_op("apply.set_enabled")
                .with_object(target)),
            TargetOp::SetEnabled { target, kind, enabled } => {
                let enabled = *enabled;
                self.put_update(target, *kind, "apply.set_enabled", move |r| {
                    r.insert("active".into(), Value::Bool(enabled));
                })
                .await
            }
            TargetOp::SetLink { target, kind, link } => {
                let external_id = self.encode_link(link, target)?;
                self.put_update(target, *kind, "apply.set_link", move |r| {
                    r.insert("externalId".into(), Value::String(external_id));
                })
                .await
            }
            TargetOp::Delete { target, kind } => {
                let endpoint = self.endpoint(*kind)?;
                match self.client.delete(&[endpoint, &target.0]).await {
                    Ok(_) => {
                        self.remember(*kind, &target.0, None);
                        Ok(Applied::default())
                    }
                    Err(e) if e.status().is_some_and(|s| s.as_u16() == 404) => {
                        Ok(Applied::default().with_note("already gone"))
                    }
                    Err(e) => {
                        Err(ScimError::http(e, &format!("delete {kind}"), Some(&target.0)).into_core("apply.delete"))
                    }
                }
            }
            TargetOp::Create { .. } | TargetOp::AddMember { .. } | TargetOp::RemoveMember { .. } => Err(Error::new(
                ErrorKind::Internal,
                "creates and membership changes are applied as writes",
            )
            .with_backend(NAME)),
            other => Err(idsync_core::unsupported(NAME, &format!("{other:?}"))),
        }
    }

    /// An update by GET + PUT of the whole resource.
    async fn put_changes(&self, target: &TargetId, kind: ObjectKind, changes: &[FieldChange]) -> Result<Applied> {
        let parsed = self.parse_changes(target, changes)?;
        self.put_update(target, kind, "apply.update", |resource| {
            for (path, c) in &parsed {
                path.set(resource, c.new.as_deref());
            }
        })
        .await
    }

    fn create_body(&self, kind: ObjectKind, link: &Link, fields: &Fields) -> Result<Value> {
        let mut body = Map::new();
        let schema = match kind {
            ObjectKind::User => USER_SCHEMA,
            ObjectKind::Group => GROUP_SCHEMA,
        };
        body.insert("schemas".into(), json!([schema]));
        let external_id = self
            .client
            .link
            .encode(link)
            .map_err(|m| Error::config(m).with_backend(NAME))?;
        body.insert("externalId".into(), Value::String(external_id));
        if kind == ObjectKind::User {
            body.insert("active".into(), Value::Bool(true));
        }
        for (field, value) in fields {
            let path = AttrPath::parse(field).map_err(|m| {
                Error::new(ErrorKind::InvalidData, m)
                    .with_backend(NAME)
                    .with_field(field.clone())
            })?;
            self.client
                .sp
                .attribute_types
                .annotate(path)
                .set(&mut body, Some(value));
        }
        Ok(Value::Object(body))
    }

    /// GET, change, PUT with If-Match of the ETag just read.
    async fn put_update(
        &self,
        target: &TargetId,
        kind: ObjectKind,
        op: &'static str,
        change: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<Applied> {
        let endpoint = self.endpoint(kind)?;
        let lock = self.resource_lock(kind, &target.0);
        let guard = lock.lock().await;
        let result = self.put_update_locked(target, kind, endpoint, op, change).await;
        drop(guard);
        self.release_lock(kind, &target.0, lock);
        result
    }

    /// The lock of one resource: writes that depend on its current state
    /// (If-Match, GET + PUT) run one at a time, so two operations of one
    /// run on the same account (an update and an enable) never race.
    fn resource_lock(&self, kind: ObjectKind, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.put_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(etag_key(kind, id))
            .or_default()
            .clone()
    }

    fn release_lock(&self, kind: ObjectKind, id: &str, lock: Arc<tokio::sync::Mutex<()>>) {
        let key = etag_key(kind, id);
        let mut locks = self.put_locks.lock().unwrap_or_else(|p| p.into_inner());
        // the map's reference and ours: nobody else waits
        if locks.get(&key).is_some_and(|l| Arc::strong_count(l) <= 2) {
            locks.remove(&key);
        }
        drop(lock);
    }

    async fn put_update_locked(
        &self,
        target: &TargetId,
        kind: ObjectKind,
        endpoint: &str,
        op: &'static str,
        change: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<Applied> {
        let what = format!("update {kind} by PUT");
        let r = self
            .client
            .get(&[endpoint, &target.0])
            .await
            .map_err(|e| ScimError::http(e, &what, Some(&target.0)).into_core(op))?;
        let current: Value = r
            .json()
            .map_err(|e| ScimError::http(e, &what, Some(&target.0)).into_core(op))?;
        let etag = if self.client.use_etag() {
            etag_of(&r, Some(&current))
        } else {
            None
        };
        let Value::Object(mut resource) = current else {
            return Err(ScimError::bad_response("the resource is not a JSON object", Some(&target.0)).into_core(op));
        };
        resource.remove("meta");
        change(&mut resource);
        let r = self
            .client
            .put(&[endpoint, &target.0], &Value::Object(resource), etag.as_deref())
            .await
            .map_err(|e| ScimError::http(e, &what, Some(&target.0)).into_core(op))?;
        let body: Option<Value> = if r.body.is_empty() { None } else { r.json().ok() };
        self.remember(kind, &target.0, etag_of(&r, body.as_ref()));
        Ok(Applied::default())
    }
}

fn is_no_target(e: &HttpError) -> bool {
    matches!(parse_error(e), Some(crate::ScimError::Scim { scim_type: Some(t), .. }) if t == "noTarget")
}

/// A PATCH the server could not apply to its paths (rather than refused).
fn is_path_problem(e: &HttpError) -> bool {
    matches!(
        parse_error(e),
        Some(crate::ScimError::Scim { status: 400, scim_type: Some(t), .. }) if t == "noTarget" || t == "invalidPath"
    ) || e.status().is_some_and(|s| s.as_u16() == 501 || s.as_u16() == 405)
}

#[async_trait]
impl Target for ScimTarget {
    fn backend(&self) -> &'static str {
        NAME
    }

    /// `batch`: the larger of `member_chunk` and the operations of one Bulk
    /// request, so that a batch is one request's worth of work: one PATCH
    /// of a group's members, or one Bulk request.
    fn capabilities(&self) -> TargetCapabilities {
        TargetCapabilities::default()
            .with_groups(self.client.sp.groups_endpoint.is_some())
            .with_disable(true)
            .with_disable_groups(false)
            .with_delete(true)
            .with_veto(false)
            .with_batch(
                self.client
                    .dialect
                    .member_chunk
                    .max(self.client.bulk_limit().unwrap_or(1))
                    .max(1),
            )
    }

    async fn linked(&self, profile: ProfileId) -> Result<BoxStream<'_, Result<TargetAccount>>> {
        let filter = match &self.client.link {
            LinkStyle::Prefixed => format!(
                "externalId {} {}",
                self.client.dialect.prefix_operator,
                quote(&format!("{profile}:"))
            ),
            LinkStyle::Plain { profile: only } if *only == profile => "externalId pr".to_owned(),
            // another profile has no accounts here
            LinkStyle::Plain { .. } => return Ok(stream::empty().boxed()),
        };
        let users = self.list_accounts(ObjectKind::User, filter.clone());
        let groups = if self.client.sp.groups_endpoint.is_some() {
            self.list_accounts(ObjectKind::Group, filter)
        } else {
            stream::empty().boxed()
        };
        Ok(users
            .chain(groups)
            .try_filter(move |a| futures::future::ready(a.link.as_ref().is_some_and(|l| l.profile == profile)))
            .boxed())
    }

    async fn lookup(&self, lookups: &[Lookup]) -> Result<Vec<TargetAccount>> {
        // One filter term per lookup, joined with `or` into few queries
        // (the engine asks for one External lookup per unlinked object).
        let mut terms: Vec<(ObjectKind, bool, String)> = Vec::with_capacity(lookups.len());
        let mut externals: HashSet<(ObjectKind, &ExternalId)> = HashSet::new();
        for lookup in lookups {
            match lookup {
                Lookup::Field { kind, field, value } => {
                    let path = AttrPath::parse(field).map_err(|m| {
                        Error::new(ErrorKind::Config, m)
                            .with_backend(NAME)
                            .with_op("lookup")
                            .with_field(field.clone())
                    })?;
                    terms.push((*kind, false, path.filter_eq(value.trim())));
                }
                Lookup::External { kind, external } => {
                    externals.insert((*kind, external));
                    let term = match &self.client.link {
                        LinkStyle::Prefixed => format!("externalId ew {}", quote(&format!(":{external}"))),
                        LinkStyle::Plain { .. } => format!("externalId eq {}", quote(external.as_str())),
                    };
                    terms.push((*kind, true, term));
                }
                other => return Err(idsync_core::unsupported(NAME, &format!("{other:?}"))),
            }
        }
        terms.retain(|(kind, _, _)| *kind == ObjectKind::User || self.client.sp.groups_endpoint.is_some());
        terms.sort();
        terms.dedup();
        let per_query = self.client.dialect.lookup_or_terms.max(1);
        let mut queries: Vec<(ObjectKind, bool, String)> = Vec::new();
        for (kind, external, term) in terms {
            match queries.last_mut() {
                Some((k, e, filter))
                    if *k == kind
                        && *e == external
                        && filter.matches(" or ").count() + 1 < per_query
                        && filter.len() + term.len() < MAX_FILTER_LEN =>
                {
                    filter.push_str(" or ");
                    filter.push_str(&term);
                }
                _ => queries.push((kind, external, term)),
            }
        }
        let answers: Vec<(bool, Result<Vec<TargetAccount>>)> = stream::iter(queries)
            .map(|(kind, external, filter)| async move {
                let accounts = self
                    .list_accounts(kind, filter)
                    .map_err(|e| e.with_op("lookup"))
                    .try_collect()
                    .await;
                (external, accounts)
            })
            .buffer_unordered(LOOKUP_CONCURRENCY)
            .collect()
            .await;
        let mut found: BTreeMap<(ObjectKind, TargetId), TargetAccount> = BTreeMap::new();
        for (external, accounts) in answers {
            for a in accounts? {
                // `ew ":x"` also matches ids ending in ":x": keep exact links only
                if external
                    && !a
                        .link
                        .as_ref()
                        .is_some_and(|l| externals.contains(&(a.kind, &l.external)))
                {
                    continue;
                }
                found.insert((a.kind, a.id.clone()), a);
            }
        }
        Ok(found.into_values().collect())
    }

    async fn apply(&self, op: &TargetOp) -> Result<Applied> {
        self.apply_batch(std::slice::from_ref(op))
            .await
            .pop()
            .unwrap_or_else(|| Err(Error::new(ErrorKind::Internal, "no result for the operation").with_backend(NAME)))
    }

    /// The batch's membership changes go out per group in PATCHes of up to
    /// `member_chunk` members; its creates, updates, enables, disables and
    /// links in `/Bulk` requests when the service takes them (else one
    /// request each); the rest one request each; at most four requests at
    /// once.
    async fn apply_batch(&self, ops: &[TargetOp]) -> Vec<Result<Applied>> {
        let mut refused = Vec::new();
        let mut groups: BTreeMap<&TargetId, Vec<members::Change<'_>>> = BTreeMap::new();
        let mut writes = Vec::new();
        let mut others = Vec::new();
        for (index, op) in ops.iter().enumerate() {
            let (group, member, add) = match op {
                TargetOp::AddMember { group, member } => (group, member, true),
                TargetOp::RemoveMember { group, member } => (group, member, false),
                _ => {
                    match self.write_for(index, op) {
                        Ok(Some(w)) => writes.push(w),
                        Ok(None) => others.push((index, op)),
                        Err(e) => refused.push((index, Err(e))),
                    }
                    continue;
                }
            };
            groups.entry(group).or_default().push(members::Change {
                index,
                add,
                member: &member.0,
            });
        }
        let mut jobs: Vec<BoxFuture<'_, Vec<Done>>> = vec![async move { refused }.boxed()];
        for (group, changes) in groups {
            jobs.push(self.change_members(group, changes).boxed());
        }
        match self.client.bulk_limit() {
            Some(limit) if writes.len() > 1 => {
                for part in bulk::pack(writes, limit, self.client.sp.bulk_max_payload) {
                    jobs.push(self.bulk(part).boxed());
                }
            }
            _ => {
                for w in writes {
                    jobs.push(
                        async move {
                            let outcome = self.send_one(&w).await;
                            self.finish(vec![(w, outcome)]).await
                        }
                        .boxed(),
                    );
                }
            }
        }
        for (index, op) in others {
            jobs.push(async move { vec![(index, self.apply_other(op).await)] }.boxed());
        }
        idsync_core::gather_batch(ops.len(), jobs, REQUESTS_AT_ONCE, NAME).await
    }
}
