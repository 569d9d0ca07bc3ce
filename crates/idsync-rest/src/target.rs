//! `RestTarget`: any JSON API as the application whose accounts idsync manages.

use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use idsync_core::model::{Fields, Link, ObjectKind, ProfileId, TargetAccount, TargetId};
use idsync_core::target::{Applied, Lookup, TargetCapabilities, TargetOp, Veto};
use idsync_core::{Result, Target};
use serde_json::{Map, Value};

use crate::NAME;
use crate::client::RestClient;
use crate::config::{OperationConfig, ResourceConfig, RestConfig};
use crate::error::RestError;
use crate::map::{self, Vars};

/// Writes users (and groups) of a REST API as configured by [`RestConfig`].
///
/// **The link** of an account is kept at the resource's `link` pointer as
/// `"<profile id>:<external id>"` (the SCIM adapter's `externalId` form), in
/// whatever field the API offers for it (a custom field, an external
/// reference). An object without a parseable link there is unmanaged and
/// never touched unless a profile adopts it. `linked` and `lookup` list the
/// whole resource and filter here: REST APIs rarely search custom fields.
#[derive(Debug, Clone)]
pub struct RestTarget {
    client: RestClient,
}

fn core(op: &'static str) -> impl Fn(RestError) -> idsync_core::Error {
    move |e| e.into_core(op)
}

impl RestTarget {
    /// Builds the target; does no I/O. Fails when a resource lacks its `link` pointer.
    pub fn new(config: RestConfig) -> Result<Self> {
        for r in std::iter::once(&config.users).chain(config.groups.as_ref()) {
            if r.link.is_none() {
                return Err(RestError::Config(
                    "a target resource needs a `link` pointer: the field that keeps \"<profile>:<external id>\"".into(),
                )
                .into_core("new"));
            }
        }
        Ok(RestTarget {
            client: RestClient::new(config).map_err(core("new"))?,
        })
    }

    /// The client (for tests and diagnostics).
    pub fn client(&self) -> &RestClient {
        &self.client
    }

    fn accounts(&self, kind: ObjectKind) -> BoxStream<'_, Result<TargetAccount, RestError>> {
        let Ok(resource) = self.client.resource(kind) else {
            return futures::stream::empty().boxed();
        };
        self.client
            .list(kind)
            .try_filter_map(move |v| async move {
                let a = map::to_account(&v, kind, resource)?;
                if a.is_none() {
                    tracing::warn!(backend = NAME, %kind, "an object without an id skipped");
                }
                Ok(a)
            })
            .boxed()
    }

    async fn all(&self, kind: ObjectKind, op: &'static str) -> Result<Vec<TargetAccount>> {
        self.accounts(kind).try_collect().await.map_err(core(op))
    }

    fn op<'a>(
        &self,
        resource: &'a Option<OperationConfig>,
        kind: ObjectKind,
        name: &str,
    ) -> Result<&'a OperationConfig, RestError> {
        resource
            .as_ref()
            .ok_or_else(|| RestError::Config(format!("no `{kind}s.{name}` operation is configured")))
    }

    /// The object written for `fields` (and the link), at their pointers.
    fn object(
        resource: &ResourceConfig,
        operation: &'static str,
        what: &str,
        fields: &Fields,
        nulls: &[&str],
        link: Option<&Link>,
    ) -> Result<Value, RestError> {
        let mut obj = Value::Object(Map::new());
        for (name, value) in fields {
            let spec = resource.fields.get(name).ok_or_else(|| {
                RestError::Config(format!(
                    "field {name:?} is mapped but the REST resource has no pointer for it"
                ))
            })?;
            let v = map::typed(value, spec.kind())
                .map_err(|m| RestError::invalid(operation, what, format!("{name}: {m}")))?;
            map::set(&mut obj, spec.pointer(), v).map_err(RestError::Config)?;
        }
        for name in nulls {
            if let Some(spec) = resource.fields.get(*name) {
                map::set(&mut obj, spec.pointer(), Value::Null).map_err(RestError::Config)?;
            }
        }
        if let (Some(link), Some(pointer)) = (link, &resource.link) {
            map::set(&mut obj, pointer, Value::String(map::link_value(link))).map_err(RestError::Config)?;
        }
        Ok(obj)
    }

    /// Sends `op` about `id`, with `obj` as `"{object}"`.
    async fn send(
        &self,
        kind: ObjectKind,
        operation: &'static str,
        op: &OperationConfig,
        id: &str,
        member: Option<&str>,
        obj: Option<Value>,
    ) -> Result<(), RestError> {
        let resource = self.client.resource(kind)?;
        let what = match member {
            Some(m) => format!("{kind} {id} member {m}"),
            None => format!("{kind} {id}"),
        };
        let obj = match obj {
            Some(mut o) if op.include_id => {
                map::set(&mut o, &resource.id, map::id_json(id, resource.numeric_id)).map_err(RestError::Config)?;
                Some(o)
            }
            o => o,
        };
        let vars = Vars {
            id: Some(id),
            member,
            object: obj.as_ref(),
            numeric_id: resource.numeric_id,
        };
        self.client.call(operation, &what, op, &vars, obj.is_some()).await?;
        Ok(())
    }

    async fn create(&self, kind: ObjectKind, link: &Link, fields: &Fields) -> Result<Applied, RestError> {
        let resource = self.client.resource(kind)?;
        let op = self.op(&resource.create, kind, "create")?;
        let what = format!("{kind} {}", link.external);
        let obj = Self::object(resource, "create", &what, fields, &[], Some(link))?;
        let vars = Vars {
            object: Some(&obj),
            numeric_id: resource.numeric_id,
            ..Vars::default()
        };
        match self.client.call("create", &what, op, &vars, true).await {
            Ok(Some(r)) => match self.client.created_id(kind, op, &r) {
                Some(id) => Ok(Applied::to(TargetId(id))),
                None => Err(RestError::invalid(
                    "create",
                    what,
                    format!(
                        "the answer holds no id at {:?}{:?} and no Location header",
                        op.response, resource.id
                    ),
                )),
            },
            // `also_ok` on a create (e.g. 409): the object is there already.
            Ok(None) => self.already_created(kind, link, None).await,
            Err(e) => self.already_created(kind, link, Some(e)).await,
        }
    }

    /// A create refused as a duplicate (400, 409, 422), or counted as done,
    /// succeeds when an object with this very link exists: an earlier create
    /// landed (interrupted run, retried POST). Otherwise the refusal stands.
    async fn already_created(
        &self,
        kind: ObjectKind,
        link: &Link,
        mut e: Option<RestError>,
    ) -> Result<Applied, RestError> {
        if let Some(refused) = e.take_if(|e| !matches!(e.status(), Some(400 | 409 | 422))) {
            return Err(refused);
        }
        let mut all = self.accounts(kind);
        while let Some(a) = all.next().await {
            let a = a?;
            if a.link.as_ref() == Some(link) {
                tracing::info!(backend = NAME, target = %a.id, %link, "create found the object already made with this link");
                return Ok(Applied::to(a.id).with_note("already created with this link"));
            }
        }
        Err(e.unwrap_or_else(|| {
            RestError::invalid(
                "create",
                format!("{kind} {}", link.external),
                "the create counted as done but no object carries the link",
            )
        }))
    }

    async fn set_enabled(&self, target: &TargetId, kind: ObjectKind, enabled: bool) -> Result<(), RestError> {
        let resource = self.client.resource(kind)?;
        let (explicit, name) = if enabled {
            (&resource.enable, "enable")
        } else {
            (&resource.disable, "disable")
        };
        let operation = if enabled { "enable" } else { "disable" };
        if let Some(op) = explicit {
            let obj = op.body.as_ref().map(|_| Value::Object(Map::new()));
            return self.send(kind, operation, op, &target.0, None, obj).await;
        }
        let spec = resource
            .enabled
            .as_ref()
            .ok_or_else(|| RestError::Config(format!("{kind}s have neither `{name}` nor an `enabled` pointer")))?;
        let op = self.op(&resource.update, kind, "update")?;
        let mut obj = Value::Object(Map::new());
        map::set(&mut obj, &spec.pointer, Value::Bool(enabled != spec.invert)).map_err(RestError::Config)?;
        self.send(kind, operation, op, &target.0, None, Some(obj)).await
    }

    async fn apply_op(&self, op: &TargetOp) -> Result<Applied, RestError> {
        match op {
            TargetOp::Create { kind, link, fields } => self.create(*kind, link, fields).await,
            TargetOp::SetLink { target, kind, link } => {
                let resource = self.client.resource(*kind)?;
                let update = self.op(&resource.update, *kind, "update")?;
                let obj = Self::object(resource, "set_link", &target.0, &Fields::new(), &[], Some(link))?;
                self.send(*kind, "set_link", update, &target.0, None, Some(obj)).await?;
                Ok(Applied::to(target.clone()))
            }
            TargetOp::Update { target, kind, changes } => {
                let resource = self.client.resource(*kind)?;
                let update = self.op(&resource.update, *kind, "update")?;
                let fields: Fields = changes
                    .iter()
                    .filter_map(|c| Some((c.field.clone(), c.new.clone()?)))
                    .collect();
                let nulls: Vec<&str> = changes
                    .iter()
                    .filter(|c| c.new.is_none())
                    .map(|c| c.field.as_str())
                    .collect();
                let what = format!("{kind} {target}");
                let obj = Self::object(resource, "update", &what, &fields, &nulls, None)?;
                self.send(*kind, "update", update, &target.0, None, Some(obj)).await?;
                Ok(Applied::to(target.clone()))
            }
            TargetOp::SetEnabled { target, kind, enabled } => {
                self.set_enabled(target, *kind, *enabled).await?;
                Ok(Applied::to(target.clone()))
            }
            TargetOp::Delete { target, kind } => {
                let resource = self.client.resource(*kind)?;
                let delete = self.op(&resource.delete, *kind, "delete")?;
                self.send(*kind, "delete", delete, &target.0, None, None).await?;
                Ok(Applied::to(target.clone()))
            }
            TargetOp::AddMember { group, member } => {
                let resource = self.client.resource(ObjectKind::Group)?;
                let add = self.op(&resource.add_member, ObjectKind::Group, "add_member")?;
                let obj = add.body.as_ref().map(|_| Value::Object(Map::new()));
                self.send(ObjectKind::Group, "add_member", add, &group.0, Some(&member.0), obj)
                    .await?;
                Ok(Applied::to(group.clone()))
            }
            TargetOp::RemoveMember { group, member } => {
                let resource = self.client.resource(ObjectKind::Group)?;
                let remove = self.op(&resource.remove_member, ObjectKind::Group, "remove_member")?;
                let obj = remove.body.as_ref().map(|_| Value::Object(Map::new()));
                self.send(
                    ObjectKind::Group,
                    "remove_member",
                    remove,
                    &group.0,
                    Some(&member.0),
                    obj,
                )
                .await?;
                Ok(Applied::to(group.clone()))
            }
            other => Err(RestError::Config(format!(
                "this REST target does not support {other:?}"
            ))),
        }
    }
}

fn op_name(op: &TargetOp) -> &'static str {
    match op {
        TargetOp::Create { .. } => "apply.create",
        TargetOp::SetLink { .. } => "apply.set_link",
        TargetOp::Update { .. } => "apply.update",
        TargetOp::SetEnabled { .. } => "apply.set_enabled",
        TargetOp::Delete { .. } => "apply.delete",
        TargetOp::AddMember { .. } => "apply.add_member",
        TargetOp::RemoveMember { .. } => "apply.remove_member",
        _ => "apply",
    }
}

fn can_disable(r: &ResourceConfig) -> bool {
    (r.disable.is_some() && r.enable.is_some()) || (r.enabled.is_some() && r.update.is_some())
}

#[async_trait]
impl Target for RestTarget {
    fn backend(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> TargetCapabilities {
        let c = self.client.config();
        let groups = c.groups.as_ref();
        TargetCapabilities::default()
            .with_groups(
                groups.is_some_and(|g| g.create.is_some() && g.add_member.is_some() && g.remove_member.is_some()),
            )
            .with_disable(can_disable(&c.users))
            .with_disable_groups(groups.is_some_and(can_disable))
            .with_delete(c.users.delete.is_some())
            .with_veto(c.users.veto.is_some() || groups.is_some_and(|g| g.veto.is_some()))
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = NAME))]
    async fn linked(&self, profile: ProfileId) -> Result<BoxStream<'_, Result<TargetAccount>>> {
        let users = self.accounts(ObjectKind::User);
        let groups = self.accounts(ObjectKind::Group);
        Ok(users
            .chain(groups)
            .map_err(core("linked"))
            .try_filter(move |a| futures::future::ready(a.link.as_ref().is_some_and(|l| l.profile == profile)))
            .boxed())
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = NAME))]
    async fn lookup(&self, lookups: &[Lookup]) -> Result<Vec<TargetAccount>> {
        let mut out: Vec<TargetAccount> = Vec::new();
        for kind in [ObjectKind::User, ObjectKind::Group] {
            let wanted: Vec<&Lookup> = lookups
                .iter()
                .filter(|l| matches!(l, Lookup::Field { kind: k, .. } | Lookup::External { kind: k, .. } if *k == kind))
                .collect();
            if wanted.is_empty() || self.client.resource(kind).is_err() {
                continue;
            }
            for a in self.all(kind, "lookup").await? {
                let hit = wanted.iter().any(|l| match l {
                    Lookup::Field { field, value, .. } => a
                        .fields
                        .get(field)
                        .is_some_and(|v| v.trim().to_lowercase() == value.trim().to_lowercase()),
                    Lookup::External { external, .. } => a.link.as_ref().is_some_and(|l| &l.external == external),
                    _ => false,
                });
                if hit && !out.iter().any(|o| o.id == a.id) {
                    out.push(a);
                }
            }
        }
        Ok(out)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = NAME))]
    async fn apply(&self, op: &TargetOp) -> Result<Applied> {
        self.apply_op(op).await.map_err(core(op_name(op)))
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = NAME))]
    async fn can_deprovision(&self, account: &TargetAccount) -> Result<Veto> {
        let Some(veto) = self.client.resource(account.kind).ok().and_then(|r| r.veto.as_ref()) else {
            return Ok(Veto::Allow);
        };
        let what = format!("{} {}", account.kind, account.id);
        let answer = self
            .client
            .send_raw("veto", &what, veto.method.clone(), &veto.path, &account.id.0)
            .await
            .map_err(core("can_deprovision"))?;
        let count = match (&veto.count, &veto.items) {
            (Some(p), _) => map::at(&answer, p).and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok())),
            (None, Some(p)) => map::at(&answer, p).and_then(Value::as_array).map(|a| a.len() as u64),
            (None, None) => answer.as_array().map(|a| a.len() as u64),
        };
        let Some(count) = count else {
            return Err(RestError::invalid(
                "veto",
                what,
                "the answer holds no count or items array at the configured pointer",
            )
            .into_core("can_deprovision"));
        };
        Ok(if count > 0 {
            Veto::Deny(veto.reason.replace("{count}", &count.to_string()))
        } else {
            Veto::Allow
        })
    }
}
