//! A request as a one-object plan. The resource becomes a source object
//! whose external id is its link's; the target is asked for the accounts
//! the planner must see (the object's own; for an object without one, the
//! other profiles' accounts of the same id and the accounts sharing its
//! correlation key); and idsync-core's planner decides with every rule of
//! the profile, as it does for a sync: scope, correlation and adoption,
//! overlap, duplicates, deprovisioning, Do Not Disable, the target's veto,
//! the threshold. The server applies the plan as it stands.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use axum::http::StatusCode;
use idsync_core::engine::ask_vetoes;
use idsync_core::mapping::{FieldMap, ValueSource};
use idsync_core::plan::{Action, Plan, PlanInput, ReadMode, plan};
use idsync_core::{
    Applied, Completeness, ExternalId, Link, Lookup, ObjectKind, Profile, SourceObject, TargetAccount, TargetId,
    TargetOp,
};
use idsync_scim::map::flatten;
use idsync_scim::to_object;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::state::{PendingRecord, ServerState};
use crate::store::{Documents, member_values};

impl ServerState {
    /// Plans what the resource `link` of `kind` calls for, applies the
    /// plan (but what it holds back) and records both; returns the plan.
    /// `document`: the resource as the provider sent it, `None` when it
    /// deleted it. `account`: its account, when it has one; an object
    /// without one is planned enabled, as a POST asks for the account
    /// whatever its `active` says (the planner provisions enabled objects
    /// only), and the server plans it again as sent once the account exists.
    pub(crate) async fn provision(
        &self,
        record: &mut PendingRecord,
        kind: ObjectKind,
        link: &Link,
        document: Option<&Map<String, Value>>,
        account: Option<TargetAccount>,
    ) -> Result<Plan, ApiError> {
        let (mut linked, candidates, objects, deleted) = match document {
            Some(doc) => {
                let object = self.object(kind, link, doc, account.as_ref())?;
                let (linked, candidates) = match account.clone() {
                    Some(account) => (vec![account], Vec::new()),
                    None => self.look_up(&object).await?,
                };
                (linked, candidates, vec![object], Vec::new())
            }
            None => (
                account.clone().into_iter().collect(),
                Vec::new(),
                Vec::new(),
                vec![link.external.clone()],
            ),
        };
        let profile = self.profile_for(kind, document, account.as_ref());
        let (gone, linked_total) = {
            let documents = self.store.lock();
            let members = document.map(member_values).unwrap_or_default().into_iter();
            let current = account.iter().flat_map(|a| a.members.iter().map(|m| m.0.clone()));
            linked.extend(member_accounts(&documents, members.chain(current), &linked));
            let gone: BTreeSet<ExternalId> = documents
                .values()
                .filter(|d| d.deleted)
                .map(|d| d.link.external.clone())
                .collect();
            (gone, documents.len())
        };
        let mut plan = plan(PlanInput {
            profile: &profile,
            capabilities: self.target.capabilities(),
            mode: ReadMode::Delta,
            completeness: &Completeness::Complete,
            objects: &objects,
            deleted: &deleted,
            linked: &linked,
            linked_total,
            candidates: &candidates,
            assigned: None,
            unread_groups: &[],
            gone: &gone,
            confirmed: false,
        });
        ask_vetoes(self.target.as_ref(), &mut plan, &linked)
            .await
            .map_err(ApiError::target)?;
        for f in &plan.findings {
            if !record.findings.contains(f) {
                record.findings.push(f.clone());
            }
        }
        let mut created: HashMap<Link, TargetId> = HashMap::new();
        for op in plan.operations.iter().filter(|op| op.held.is_none()) {
            let target_op = op
                .target_op(&created)
                .map_err(|why| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, None, why))?;
            let applied = self.apply(record, target_op).await?;
            if let (Action::Create { .. }, Some(id)) = (&op.action, applied.target) {
                created.insert(op.link.clone(), id);
            }
        }
        Ok(plan)
    }

    /// Applies one operation, recording it (and what the target noted).
    pub(crate) async fn apply(&self, record: &mut PendingRecord, op: TargetOp) -> Result<Applied, ApiError> {
        let applied = self.target.apply(&op).await;
        record.operations.push(op);
        let applied = applied.map_err(ApiError::target)?;
        if let Some(note) = &applied.note {
            record.notes.push(format!("the application noted: {note}"));
        }
        Ok(applied)
    }

    /// The source object a document describes: its attributes those the
    /// SCIM source reads (field paths, `id`, `externalId`), its id the
    /// link's external id, its members the external ids of the members'
    /// documents.
    fn object(
        &self,
        kind: ObjectKind,
        link: &Link,
        doc: &Map<String, Value>,
        account: Option<&TargetAccount>,
    ) -> Result<SourceObject, ApiError> {
        let mut resource = doc.clone();
        let id = account.map_or(link.external.as_str(), |a| a.id.0.as_str());
        resource.insert("id".into(), Value::String(id.to_owned()));
        let mut object = to_object(&Value::Object(resource), kind, "request")
            .map_err(|e| ApiError::bad("invalidValue", e.to_string()))?
            .ok_or_else(|| ApiError::bad("invalidValue", "the resource has no id"))?;
        object.id = link.external.clone();
        if account.is_none() {
            object.attributes.remove("id");
            object.enabled = true;
        }
        let documents = self.store.lock();
        object.members = member_values(doc)
            .iter()
            .filter_map(|m| documents.get(m).map(|d| d.link.external.clone()))
            .collect();
        Ok(object)
    }

    /// For an object without an account: the accounts the target links to
    /// its id (this profile's, or another's: overlap, adoption) and, when
    /// it may be provisioned, those sharing its correlation key (soft-match
    /// candidates, duplicates), as this profile's and the others.
    async fn look_up(&self, object: &SourceObject) -> Result<(Vec<TargetAccount>, Vec<TargetAccount>), ApiError> {
        let mut lookups = vec![Lookup::External {
            kind: object.kind,
            external: object.id.clone(),
        }];
        if object.enabled && self.profile.scope.admits(object) {
            lookups.extend(Lookup::correlation(&self.profile, object));
        }
        let found = self.target.lookup(&lookups).await.map_err(ApiError::target)?;
        Ok(found
            .into_iter()
            .partition(|a| a.link.as_ref().is_some_and(|l| l.profile == self.profile.id)))
    }

    /// The profile, or for a kind it maps no field of, the profile with
    /// every attribute path of the document as a field of the same name
    /// (and the account's fields the document no longer has, to clear).
    fn profile_for(
        &self,
        kind: ObjectKind,
        doc: Option<&Map<String, Value>>,
        account: Option<&TargetAccount>,
    ) -> Cow<'_, Profile> {
        if !self.profile.mapping.for_kind(kind).is_empty() {
            return Cow::Borrowed(&self.profile);
        }
        let mut fields: BTreeSet<String> = doc
            .map(|d| flatten(&Value::Object(d.clone())).into_keys().collect())
            .unwrap_or_default();
        fields.extend(account.into_iter().flat_map(|a| a.fields.keys().cloned()));
        let maps: Vec<FieldMap> = fields
            .into_iter()
            .map(|field| FieldMap {
                from: ValueSource::Attribute(field.clone()),
                field,
                transforms: Vec::new(),
            })
            .collect();
        let mut profile = self.profile.clone();
        match kind {
            ObjectKind::User => profile.mapping.users = maps,
            ObjectKind::Group => profile.mapping.groups = maps,
        }
        Cow::Owned(profile)
    }
}

/// The accounts of the members `ids` (SCIM ids) whose documents the store
/// holds, as the planner needs them to tell managed members from others;
/// those in `known` already are left out.
fn member_accounts(
    documents: &Documents,
    ids: impl Iterator<Item = String>,
    known: &[TargetAccount],
) -> Vec<TargetAccount> {
    let mut seen: HashSet<String> = known.iter().map(|a| a.id.0.clone()).collect();
    ids.filter(|id| seen.insert(id.clone()))
        .filter_map(|id| {
            let d = documents.get(&id)?;
            Some(TargetAccount {
                link: Some(d.link.clone()),
                ..TargetAccount::new(id, d.kind)
            })
        })
        .collect()
}
