//! The SCIM target: Users and Groups of a SCIM 2.0 service.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use idsync_core::{
    Applied, Error, ErrorKind, ExternalId, FieldChange, Fields, Link, Lookup, ObjectKind, ProfileId, Result, Target,
    TargetAccount, TargetCapabilities, TargetId, TargetOp,
};
use idsync_http::{HttpError, Response};
use serde_json::{Map, Value, json};

use crate::NAME;
use crate::client::{ScimClient, ServiceProvider, etag_of};
use crate::config::{LinkStyle, ScimConfig};
use crate::error::{bad_response, bad_value, http_to_core, parse_error};
use crate::map::{AttrPath, GROUP_SCHEMA, USER_SCHEMA, bool_of, flatten, patch_ops, quote};

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
/// Creates are POSTs (or `/Bulk` batches, see [`crate::BulkMode`]), updates
/// PATCH only the changed paths (PUT of the whole resource where the dialect
/// says so, or when the server rejects a filtered path), disabling sets
/// `active: false`, deletes happen only for [`TargetOp::Delete`], group
/// members change by PATCH add/remove. Updates carry `If-Match` with the
/// last ETag seen when the service supports ETags: a concurrent change
/// fails as [`ErrorKind::Conflict`].
#[derive(Debug)]
pub struct ScimTarget {
    client: Arc<ScimClient>,
    etags: Mutex<HashMap<String, String>>,
    /// One lock per resource written with If-Match or by GET + PUT, so
    /// concurrent operations on one resource do not overwrite each other.
    put_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    bulk: Option<bulk::Batcher>,
    members: Option<members::MemberBatcher>,
}

fn etag_key(kind: ObjectKind, id: &str) -> String {
    format!("{kind}/{id}")
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
        bad_value(op, id, "active", format!("{shown} is not a boolean"))
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
        let client = Arc::new(client);
        let bulk = client
            .bulk_limit()
            .map(|limit| bulk::Batcher::new(client.clone(), limit));
        let member_batcher = client.sp.groups_endpoint.clone().map(|endpoint| {
            let chunk = client.dialect.member_chunk;
            members::MemberBatcher::new(client.clone(), endpoint, chunk)
        });
        Ok(ScimTarget {
            client,
            etags: Mutex::new(HashMap::new()),
            put_locks: Mutex::new(HashMap::new()),
            bulk,
            members: member_batcher,
        })
    }

    /// What the service said of itself.
    pub fn service_provider(&self) -> &ServiceProvider {
        &self.client.sp
    }

    /// True when creates go through `/Bulk`.
    pub fn uses_bulk(&self) -> bool {
        self.bulk.is_some()
    }

    fn endpoint(&self, kind: ObjectKind) -> Result<&str> {
        match kind {
            ObjectKind::User => Ok(&self.client.sp.users_endpoint),
            ObjectKind::Group => {
                self.client.sp.groups_endpoint.as_deref().ok_or_else(|| {
                    Error::new(ErrorKind::Unsupported, "the service has no Groups endpoint").backend(NAME)
                })
            }
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
                let v = item.map_err(|e| http_to_core(e, "linked", &format!("listing {endpoint}"), None))?;
                self.remember_listed(kind, &v);
                to_account(&v, kind, &self.client.link, "linked")?
                    .ok_or_else(|| bad_response("linked", "a resource without an id", None))
            })
            .boxed()
    }

    async fn create(&self, kind: ObjectKind, link: &Link, fields: &Fields) -> Result<Applied> {
        let op = "apply.create";
        let name = create_name(link, fields);
        let endpoint = self.endpoint(kind)?;
        let body = self
            .create_body(kind, link, fields)
            .map_err(|e| e.op(op).object(&name))?;
        let outcome = match &self.bulk {
            Some(b) => b.create(endpoint.to_owned(), body).await,
            None => self
                .client
                .post(endpoint, &body)
                .await
                .map(|r| bulk::Created::from_response(&r)),
        };
        match outcome {
            Ok(created) => {
                let Some(id) = created.id else {
                    return Err(bad_response(op, "the created resource has no id", Some(&name)));
                };
                self.remember(kind, &id, created.etag);
                Ok(Applied {
                    target: Some(TargetId(id)),
                    note: None,
                })
            }
            Err(e) => {
                // A uniqueness conflict, or a failure after which the POST may
                // have landed: the link tells whether the account exists.
                let maybe_there = e.status().is_some_and(|s| s.as_u16() == 409) || bulk::may_have_landed(&e);
                if maybe_there {
                    match self.find_by_link(kind, link).await {
                        Ok(Some(existing)) => {
                            return Ok(Applied {
                                target: Some(existing.id),
                                note: Some("already existed with this link".into()),
                            });
                        }
                        Ok(None) => {}
                        // Neither the answer nor the look-up came back: a
                        // second POST could make a second account. Not retried
                        // in this run; the next one lists the linked accounts
                        // and sees whether it landed.
                        Err(lookup) if bulk::may_have_landed(&e) => {
                            let what = format!("create {kind}, outcome unknown (the look-up failed too: {lookup})");
                            return Err(http_to_core(e, op, &what, Some(&name)).permanent());
                        }
                        Err(_) => {}
                    }
                }
                Err(http_to_core(e, op, &format!("create {kind}"), Some(&name)))
            }
        }
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
            .map_err(|m| Error::config(m).backend(NAME))?;
        body.insert("externalId".into(), Value::String(external_id));
        if kind == ObjectKind::User {
            body.insert("active".into(), Value::Bool(true));
        }
        for (field, value) in fields {
            let path = AttrPath::parse(field)
                .map_err(|m| Error::new(ErrorKind::InvalidData, m).backend(NAME).field(field.clone()))?;
            self.client
                .sp
                .attribute_types
                .annotate(path)
                .set(&mut body, Some(value));
        }
        Ok(Value::Object(body))
    }

    async fn find_by_link(&self, kind: ObjectKind, link: &Link) -> Result<Option<TargetAccount>> {
        let Ok(external_id) = self.client.link.encode(link) else {
            return Ok(None);
        };
        let filter = format!("externalId eq {}", quote(&external_id));
        let found: Vec<TargetAccount> = self.list_accounts(kind, filter).try_collect().await?;
        Ok(found.into_iter().find(|a| a.link.as_ref() == Some(link)))
    }

    async fn update(&self, target: &TargetId, kind: ObjectKind, changes: &[FieldChange]) -> Result<Applied> {
        let op = "apply.update";
        if changes.is_empty() {
            return Ok(Applied::default());
        }
        let mut parsed = Vec::with_capacity(changes.len());
        for c in changes {
            let path = AttrPath::parse(&c.field).map_err(|m| {
                Error::new(ErrorKind::InvalidData, m)
                    .backend(NAME)
                    .op(op)
                    .object(target)
                    .field(c.field.clone())
            })?;
            parsed.push((self.client.sp.attribute_types.annotate(path), c));
        }
        let filtered = parsed.iter().any(|(p, _)| p.filter.is_some());
        if self.client.use_patch() && (self.client.dialect.patch_value_filters || !filtered) {
            let ops: Vec<Value> = parsed
                .iter()
                .flat_map(|(p, c)| patch_ops(p, c.old.as_deref(), c.new.as_deref()))
                .collect();
            match self.patch(kind, target, ops, true).await {
                Ok(()) => return Ok(Applied::default()),
                Err(e) if is_path_problem(&e) => {
                    tracing::debug!(target = %target, "PATCH path rejected; updating by PUT");
                }
                Err(e) => return Err(http_to_core(e, op, &format!("update {kind}"), Some(&target.0))),
            }
        }
        self.put_update(target, kind, op, |resource| {
            for (path, c) in &parsed {
                path.set(resource, c.new.as_deref());
            }
        })
        .await
    }

    /// PATCH with If-Match (when `conditional` and an ETag is known), and
    /// the new ETag remembered.
    async fn patch(
        &self,
        kind: ObjectKind,
        target: &TargetId,
        ops: Vec<Value>,
        conditional: bool,
    ) -> std::result::Result<(), HttpError> {
        let endpoint = self.endpoint(kind).map_err(|e| HttpError::Config(e.to_string()))?;
        if !conditional {
            return self.patch_locked(kind, endpoint, target, ops, false).await;
        }
        let lock = self.resource_lock(kind, &target.0);
        let guard = lock.lock().await;
        let result = self.patch_locked(kind, endpoint, target, ops, true).await;
        drop(guard);
        self.release_lock(kind, &target.0, lock);
        result
    }

    async fn patch_locked(
        &self,
        kind: ObjectKind,
        endpoint: &str,
        target: &TargetId,
        ops: Vec<Value>,
        conditional: bool,
    ) -> std::result::Result<(), HttpError> {
        let etag = if conditional {
            self.etag_for(kind, &target.0)
        } else {
            None
        };
        match self.client.patch(&[endpoint, &target.0], ops, etag.as_deref()).await {
            Ok(r) => {
                let body: Option<Value> = if r.body.is_empty() { None } else { r.json().ok() };
                // After an unconditional write (members), a remembered ETag is stale.
                let etag = if conditional { etag_of(&r, body.as_ref()) } else { None };
                self.remember(kind, &target.0, etag);
                Ok(())
            }
            Err(e) => {
                if e.status().is_some_and(|s| s.as_u16() == 412) {
                    self.remember(kind, &target.0, None);
                }
                Err(e)
            }
        }
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
            .map_err(|e| http_to_core(e, op, &what, Some(&target.0)))?;
        let current: Value = r.json().map_err(|e| http_to_core(e, op, &what, Some(&target.0)))?;
        let etag = if self.client.use_etag() {
            etag_of(&r, Some(&current))
        } else {
            None
        };
        let Value::Object(mut resource) = current else {
            return Err(bad_response(op, "the resource is not a JSON object", Some(&target.0)));
        };
        resource.remove("meta");
        change(&mut resource);
        let r = self
            .client
            .put(&[endpoint, &target.0], &Value::Object(resource), etag.as_deref())
            .await
            .map_err(|e| http_to_core(e, op, &what, Some(&target.0)))?;
        let body: Option<Value> = if r.body.is_empty() { None } else { r.json().ok() };
        self.remember(kind, &target.0, etag_of(&r, body.as_ref()));
        Ok(Applied::default())
    }

    async fn set_attribute(
        &self,
        target: &TargetId,
        kind: ObjectKind,
        op: &'static str,
        attr: &'static str,
        value: Value,
    ) -> Result<Applied> {
        if self.client.use_patch() {
            let ops = vec![json!({"op": "replace", "path": attr, "value": value})];
            return self
                .patch(kind, target, ops, true)
                .await
                .map(|()| Applied::default())
                .map_err(|e| http_to_core(e, op, &format!("set {attr} of {kind}"), Some(&target.0)));
        }
        self.put_update(target, kind, op, |r| {
            r.insert(attr.to_owned(), value);
        })
        .await
    }

    async fn members(&self, group: &TargetId, member: &TargetId, add: bool) -> Result<Applied> {
        let (op, what) = if add {
            ("apply.add_member", "add member")
        } else {
            ("apply.remove_member", "remove member")
        };
        if !self.client.use_patch() {
            let member = member.0.clone();
            return self
                .put_update(group, ObjectKind::Group, op, move |r| {
                    let list = r.entry("members").or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(items) = list {
                        items.retain(|m| m["value"].as_str() != Some(member.as_str()));
                        if add {
                            items.push(json!({"value": member}));
                        }
                    }
                })
                .await;
        }
        let outcome = match &self.members {
            Some(batcher) => batcher.change(&group.0, &member.0, add).await,
            None => {
                self.patch(ObjectKind::Group, group, vec![members::op(add, &member.0)], false)
                    .await
            }
        };
        // after a membership write, a remembered ETag of the group is stale
        self.remember(ObjectKind::Group, &group.0, None);
        match outcome {
            Ok(()) => Ok(Applied::default()),
            // removing someone who is not a member: already done
            Err(e) if !add && is_no_target(&e) => Ok(Applied::default()),
            Err(e) => Err(http_to_core(e, op, &format!("{what} {member}"), Some(&group.0))),
        }
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

    fn capabilities(&self) -> TargetCapabilities {
        TargetCapabilities {
            groups: self.client.sp.groups_endpoint.is_some(),
            disable: true,
            disable_groups: false,
            delete: true,
            veto: false,
            ..TargetCapabilities::default()
        }
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
                            .backend(NAME)
                            .op("lookup")
                            .field(field.clone())
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
                    .map_err(|e| e.op("lookup"))
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
        match op {
            TargetOp::Create { kind, link, fields } => self.create(*kind, link, fields).await,
            TargetOp::Update { target, kind, changes } => self.update(target, *kind, changes).await,
            TargetOp::SetEnabled { target, kind, enabled } => {
                if *kind == ObjectKind::Group {
                    return Err(Error::new(ErrorKind::Unsupported, "SCIM groups cannot be disabled")
                        .backend(NAME)
                        .op("apply.set_enabled")
                        .object(target));
                }
                self.set_attribute(target, *kind, "apply.set_enabled", "active", Value::Bool(*enabled))
                    .await
            }
            TargetOp::SetLink { target, kind, link } => {
                self.set_attribute(
                    target,
                    *kind,
                    "apply.set_link",
                    "externalId",
                    Value::String(
                        self.client
                            .link
                            .encode(link)
                            .map_err(|m| Error::config(m).backend(NAME).op("apply.set_link").object(target))?,
                    ),
                )
                .await
            }
            TargetOp::Delete { target, kind } => {
                let endpoint = self.endpoint(*kind)?;
                match self.client.delete(&[endpoint, &target.0]).await {
                    Ok(_) => {
                        self.remember(*kind, &target.0, None);
                        Ok(Applied::default())
                    }
                    Err(e) if e.status().is_some_and(|s| s.as_u16() == 404) => Ok(Applied {
                        target: None,
                        note: Some("already gone".into()),
                    }),
                    Err(e) => Err(http_to_core(
                        e,
                        "apply.delete",
                        &format!("delete {kind}"),
                        Some(&target.0),
                    )),
                }
            }
            TargetOp::AddMember { group, member } => self.members(group, member, true).await,
            TargetOp::RemoveMember { group, member } => self.members(group, member, false).await,
        }
    }
}

impl bulk::Created {
    pub(crate) fn from_response(r: &Response) -> Self {
        let body: Option<Value> = if r.body.is_empty() { None } else { r.json().ok() };
        let id = body
            .as_ref()
            .and_then(|b| b["id"].as_str().map(str::to_owned))
            .or_else(|| {
                r.header(idsync_http::header::LOCATION)
                    .and_then(|l| l.trim_end_matches('/').rsplit('/').next().map(str::to_owned))
            });
        bulk::Created {
            id,
            etag: etag_of(r, body.as_ref()),
        }
    }
}
