//! `JumpCloudTarget`: system users and user groups as target accounts.

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use idsync_core::model::{Fields, Link, ObjectKind, ProfileId, TargetAccount, TargetId};
use idsync_core::target::{Applied, Lookup, TargetCapabilities, TargetOp};
use idsync_core::{Error, ErrorKind, Result, Target};
use serde_json::{Value, json};

use crate::NAME;
use crate::client::JumpCloudClient;
use crate::config::JumpCloudConfig;
use crate::error::JumpCloudError;
use crate::map::{
    GROUP_LINK_PREFIX, custom_attributes, group_to_account, id_of, link_value, user_body, user_to_account,
};

/// Writes JumpCloud system users (v1) and user groups (v2).
///
/// The link of a user is kept in the custom attribute named by
/// [`JumpCloudConfig::link_attribute`]; the link of a group in its
/// description, as `idsync:<profile>/<external id>`.
#[derive(Debug)]
pub struct JumpCloudTarget {
    client: JumpCloudClient,
    link_attribute: String,
    match_field: &'static str,
}

fn core(op: &'static str) -> impl Fn(JumpCloudError) -> Error {
    move |e| e.into_core(op)
}

impl JumpCloudTarget {
    /// Builds the target; does no I/O.
    pub fn new(config: JumpCloudConfig) -> Result<Self> {
        let client = JumpCloudClient::new(&config).map_err(core("new"))?;
        Ok(JumpCloudTarget {
            client,
            link_attribute: config.link_attribute.clone(),
            match_field: config.match_column.field(),
        })
    }

    /// Every system user with an id; a user whose `suspended` or `state`
    /// means nothing fails the listing (its state would be a guess).
    async fn users(&self, op: &'static str) -> Result<Vec<TargetAccount>> {
        let all = self.client.list_users().await.map_err(core(op))?;
        let mut out = Vec::with_capacity(all.len());
        for v in &all {
            out.extend(user_to_account(v, &self.link_attribute).map_err(core(op))?);
        }
        Ok(out)
    }

    async fn groups(&self, op: &'static str) -> Result<Vec<TargetAccount>> {
        let mut out = Vec::new();
        for g in self.client.list_groups().await.map_err(core(op))? {
            let Some(id) = id_of(&g) else { continue };
            let members = self.client.group_members(id).await.map_err(core(op))?;
            out.extend(group_to_account(&g, &members));
        }
        Ok(out)
    }

    async fn user(&self, id: &TargetId, op: &'static str) -> Result<Value> {
        self.client
            .get_user(&id.0)
            .await
            .map_err(core(op))?
            .ok_or_else(|| not_found(op, "system user", id))
    }

    async fn group(&self, id: &TargetId, op: &'static str) -> Result<Value> {
        self.client
            .get_group(&id.0)
            .await
            .map_err(core(op))?
            .ok_or_else(|| not_found(op, "user group", id))
    }

    async fn set_group(
        &self,
        id: &TargetId,
        name: Option<String>,
        description: Option<String>,
        op: &'static str,
    ) -> Result<()> {
        let current = self.group(id, op).await?;
        let name = name.or_else(|| current.get("name").and_then(Value::as_str).map(str::to_owned));
        let mut body = json!({ "name": name.unwrap_or_default() });
        if let Some(d) = description.or_else(|| current.get("description").and_then(Value::as_str).map(str::to_owned)) {
            body["description"] = Value::String(d);
        }
        self.client.update_group(&id.0, &body).await.map_err(core(op))?;
        Ok(())
    }
}

impl JumpCloudTarget {
    /// A create refused as a duplicate (400 "already exists" or 409) is a
    /// success when the existing object carries this very link: an earlier
    /// create landed (interrupted run, retried POST). Otherwise the refusal stands.
    async fn already_created(&self, kind: ObjectKind, link: &Link, e: JumpCloudError) -> Result<Applied> {
        let duplicate = matches!(&e, JumpCloudError::Http { source, .. }
            if matches!(source.status().map(|s| s.as_u16()), Some(400 | 409)));
        if duplicate {
            let pool = match kind {
                ObjectKind::User => self.users("apply.create").await?,
                ObjectKind::Group => self.groups("apply.create").await?,
            };
            if let Some(a) = pool.into_iter().find(|a| a.link.as_ref() == Some(link)) {
                tracing::info!(backend = NAME, target = %a.id, %link, "create found the object already made with this link");
                return Ok(Applied::to(a.id).with_note("already created with this link"));
            }
        }
        Err(e.into_core("apply.create"))
    }
}

fn not_found(op: &'static str, what: &str, id: &TargetId) -> Error {
    Error::new(ErrorKind::NotFound, format!("{what} {id} not found"))
        .with_backend(NAME)
        .with_op(op)
        .with_object(id)
}

fn unsupported(op: &'static str, what: &str) -> Error {
    Error::new(ErrorKind::Unsupported, what.to_owned())
        .with_backend(NAME)
        .with_op(op)
}

fn created_id(v: &Value, op: &'static str) -> Result<TargetId> {
    id_of(v).map(TargetId::from).ok_or_else(|| {
        Error::new(ErrorKind::Protocol, "create answered without an _id")
            .with_backend(NAME)
            .with_op(op)
    })
}

#[async_trait]
impl Target for JumpCloudTarget {
    fn backend(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> TargetCapabilities {
        TargetCapabilities::default()
            .with_groups(true)
            .with_disable(true)
            .with_disable_groups(false)
            .with_delete(true)
            .with_veto(false)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = NAME))]
    async fn linked(&self, profile: ProfileId) -> Result<BoxStream<'_, Result<TargetAccount>>> {
        let mut all = self.users("linked").await?;
        all.extend(self.groups("linked").await?);
        all.retain(|a| a.link.as_ref().is_some_and(|l| l.profile == profile));
        Ok(stream::iter(all.into_iter().map(Ok)).boxed())
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = NAME))]
    async fn lookup(&self, lookups: &[Lookup]) -> Result<Vec<TargetAccount>> {
        let needs = |k: ObjectKind| {
            lookups
                .iter()
                .any(|l| matches!(l, Lookup::Field { kind, .. } | Lookup::External { kind, .. } if *kind == k))
        };
        let users = if needs(ObjectKind::User) {
            self.users("lookup").await?
        } else {
            Vec::new()
        };
        let groups = if needs(ObjectKind::Group) {
            self.groups("lookup").await?
        } else {
            Vec::new()
        };
        let mut out: Vec<TargetAccount> = Vec::new();
        for l in lookups {
            let (kind, hit): (ObjectKind, Box<dyn Fn(&TargetAccount) -> bool>) = match l {
                Lookup::Field { kind, field, value } => {
                    if *kind == ObjectKind::User && field != self.match_field {
                        tracing::debug!(
                            backend = NAME,
                            field,
                            configured = self.match_field,
                            "lookup on a field that is not the configured match column"
                        );
                    }
                    let (f, v) = (field.clone(), value.to_lowercase());
                    (
                        *kind,
                        Box::new(move |a| a.fields.get(&f).is_some_and(|x| x.to_lowercase() == v)),
                    )
                }
                Lookup::External { kind, external } => {
                    let e = external.clone();
                    (
                        *kind,
                        Box::new(move |a| a.link.as_ref().is_some_and(|l| l.external == e)),
                    )
                }
                other => return Err(unsupported("lookup", &format!("JumpCloud does not support {other:?}"))),
            };
            let pool = if kind == ObjectKind::User { &users } else { &groups };
            for a in pool.iter().filter(|a| hit(a)) {
                if !out.iter().any(|o| o.id == a.id) {
                    out.push(a.clone());
                }
            }
        }
        Ok(out)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(backend = NAME))]
    async fn apply(&self, op: &TargetOp) -> Result<Applied> {
        match op {
            TargetOp::Create {
                kind: ObjectKind::User,
                link,
                fields,
            } => {
                let body = user_body(fields, &[], Some((&self.link_attribute, link)));
                match self.client.create_user(&body).await {
                    Ok(v) => Ok(Applied::to(created_id(&v, "apply.create")?)),
                    Err(e) => self.already_created(ObjectKind::User, link, e).await,
                }
            }
            TargetOp::Create {
                kind: ObjectKind::Group,
                link,
                fields,
            } => {
                let name = fields.get("name").cloned().unwrap_or_default();
                let body = json!({ "name": name, "description": format!("{GROUP_LINK_PREFIX}{}", link_value(link)) });
                match self.client.create_group(&body).await {
                    Ok(v) => Ok(Applied::to(created_id(&v, "apply.create")?)),
                    Err(e) => self.already_created(ObjectKind::Group, link, e).await,
                }
            }
            TargetOp::SetLink {
                target,
                kind: ObjectKind::User,
                link,
            } => {
                let current = self.user(target, "apply.set_link").await?;
                let body = user_body(
                    &Fields::new(),
                    &custom_attributes(&current),
                    Some((&self.link_attribute, link)),
                );
                self.client
                    .update_user(&target.0, &body)
                    .await
                    .map_err(core("apply.set_link"))?;
                Ok(Applied::to(target.clone()))
            }
            TargetOp::SetLink {
                target,
                kind: ObjectKind::Group,
                link,
            } => {
                let d = format!("{GROUP_LINK_PREFIX}{}", link_value(link));
                self.set_group(target, None, Some(d), "apply.set_link").await?;
                Ok(Applied::to(target.clone()))
            }
            TargetOp::Update {
                target,
                kind: ObjectKind::User,
                changes,
            } => {
                let fields: Fields = changes
                    .iter()
                    .map(|c| (c.field.clone(), c.new.clone().unwrap_or_default()))
                    .collect();
                let existing = if fields.keys().any(|k| k.starts_with("attr.")) {
                    custom_attributes(&self.user(target, "apply.update").await?)
                } else {
                    Vec::new()
                };
                let body = user_body(&fields, &existing, None);
                self.client
                    .update_user(&target.0, &body)
                    .await
                    .map_err(core("apply.update"))?;
                Ok(Applied::to(target.clone()))
            }
            TargetOp::Update {
                target,
                kind: ObjectKind::Group,
                changes,
            } => {
                let name = changes.iter().find(|c| c.field == "name").and_then(|c| c.new.clone());
                self.set_group(target, name, None, "apply.update").await?;
                Ok(Applied::to(target.clone()))
            }
            TargetOp::SetEnabled {
                target,
                kind: ObjectKind::User,
                enabled,
            } => {
                let body = json!({ "suspended": !enabled, "state": if *enabled { "ACTIVATED" } else { "SUSPENDED" } });
                self.client
                    .update_user(&target.0, &body)
                    .await
                    .map_err(core("apply.set_enabled"))?;
                Ok(Applied::to(target.clone()))
            }
            TargetOp::SetEnabled {
                kind: ObjectKind::Group,
                ..
            } => Err(unsupported(
                "apply.set_enabled",
                "JumpCloud user groups cannot be disabled",
            )),
            TargetOp::Delete {
                target,
                kind: ObjectKind::User,
            } => {
                self.client.delete_user(&target.0).await.map_err(core("apply.delete"))?;
                Ok(Applied::to(target.clone()))
            }
            TargetOp::Delete {
                target,
                kind: ObjectKind::Group,
            } => {
                self.client
                    .delete_group(&target.0)
                    .await
                    .map_err(core("apply.delete"))?;
                Ok(Applied::to(target.clone()))
            }
            TargetOp::AddMember { group, member } => {
                self.client
                    .membership(&group.0, &member.0, true)
                    .await
                    .map_err(core("apply.add_member"))?;
                Ok(Applied::to(group.clone()))
            }
            TargetOp::RemoveMember { group, member } => {
                self.client
                    .membership(&group.0, &member.0, false)
                    .await
                    .map_err(core("apply.remove_member"))?;
                Ok(Applied::to(group.clone()))
            }
            other => Err(unsupported("apply", &format!("JumpCloud does not support {other:?}"))),
        }
    }
}
