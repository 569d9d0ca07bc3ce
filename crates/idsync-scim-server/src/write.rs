//! Writes: POST, PUT, PATCH and DELETE. Each checks what SCIM asks of the
//! request (syntax, required and unique attributes, known members,
//! `If-Match`), then hands the resource to the profile's rules as a
//! one-object plan ([`crate::provision`]) and keeps the document.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::IF_MATCH;
use axum::response::{IntoResponse, Response};
use idsync_core::plan::{Action, Finding};
use idsync_core::{Link, ObjectKind, TargetAccount, TargetOp};
use idsync_scim::json::{bool_of, entry_ci, get_ci, remove_ci};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::patch::PatchRequest;
use crate::schemas;
use crate::state::{PendingRecord, RequestInfo, ServerState};
use crate::store::{Document, GENERATED_PREFIX, core_schema, etag_listed, external_id, member_values, now};

/// Which write a route is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteKind {
    Replace,
    Patch,
    Delete,
}

/// What a PUT, PATCH or DELETE asks, parsed.
enum Change {
    /// The whole resource (PUT).
    Replace(Map<String, Value>),
    /// Operations on the resource (PATCH).
    Patch(PatchRequest),
    /// Deprovision it (DELETE).
    Delete,
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad("invalidSyntax", format!("the body is not JSON: {e}")))
}

/// A resource sent whole.
fn parse_resource(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match parse_body(body)? {
        Value::Object(o) => Ok(o),
        _ => Err(ApiError::bad("invalidSyntax", "a resource is a JSON object")),
    }
}

impl Change {
    fn parse(how: WriteKind, body: &[u8]) -> Result<Change, ApiError> {
        Ok(match how {
            WriteKind::Delete => Change::Delete,
            WriteKind::Replace => Change::Replace(parse_resource(body)?),
            WriteKind::Patch => Change::Patch(
                PatchRequest::from_json(&parse_body(body)?).map_err(|e| ApiError::bad(e.scim_type, e.message))?,
            ),
        })
    }
}

/// Cleans a document received: read-only attributes dropped, passwords
/// dropped (with a note), booleans sent as text made booleans, required
/// attributes checked.
fn sanitize(
    kind: ObjectKind,
    mut doc: Map<String, Value>,
    record: &mut PendingRecord,
) -> Result<Map<String, Value>, ApiError> {
    for k in ["id", "meta"] {
        remove_ci(&mut doc, k);
    }
    if kind == ObjectKind::User {
        remove_ci(&mut doc, "groups");
        if get_ci(&doc, "password").is_some() {
            remove_ci(&mut doc, "password");
            record
                .notes
                .push("password ignored: idsync never stores or writes passwords".into());
        }
        if let Some(v) = get_ci(&doc, "active").cloned() {
            match (v.is_null(), bool_of(&v)) {
                (true, _) => remove_ci(&mut doc, "active"),
                (false, Some(b)) => *entry_ci(&mut doc, "active") = Value::Bool(b),
                (false, None) => return Err(ApiError::bad("invalidValue", "active must be a boolean")),
            }
        }
    }
    // `primary` sent as text
    for v in doc.values_mut() {
        if let Value::Array(items) = v {
            for item in items {
                if let Some(o) = item.as_object_mut()
                    && let Some(p) = get_ci(o, "primary").and_then(|p| p.as_str().and_then(|_| bool_of(p)))
                {
                    *entry_ci(o, "primary") = Value::Bool(p);
                }
            }
        }
    }
    // nulls mean "unassigned"
    doc.retain(|_, v| !v.is_null());
    let schema = core_schema(kind);
    let schemas = entry_ci(&mut doc, "schemas");
    match schemas {
        Value::Array(list) => {
            if !list
                .iter()
                .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(schema)))
            {
                list.insert(0, Value::String(schema.to_owned()));
            }
        }
        other => *other = json!([schema]),
    }
    let required = match kind {
        ObjectKind::User => "userName",
        ObjectKind::Group => "displayName",
    };
    if get_ci(&doc, required)
        .and_then(Value::as_str)
        .is_none_or(|s| s.trim().is_empty())
    {
        return Err(ApiError::bad("invalidValue", format!("{required} is required")));
    }
    if get_ci(&doc, "externalId").is_some_and(|v| !v.is_string()) {
        return Err(ApiError::bad("invalidValue", "externalId must be a string"));
    }
    if let Some(members) = get_ci(&doc, "members") {
        let ok = members
            .as_array()
            .is_some_and(|m| m.iter().all(|m| m.get("value").is_some_and(Value::is_string)));
        if kind == ObjectKind::User || !ok {
            return Err(ApiError::bad("invalidValue", "members is a list of {\"value\": id}"));
        }
    }
    Ok(doc)
}

impl ServerState {
    /// 409 when another live resource has this `userName` (users) or
    /// `externalId`.
    fn check_unique(&self, kind: ObjectKind, doc: &Map<String, Value>, me: Option<&str>) -> Result<(), ApiError> {
        let documents = self.store.lock();
        let others = documents
            .iter()
            .filter(|(id, d)| d.kind == kind && !d.deleted && Some(id.as_str()) != me);
        let user_name = get_ci(doc, "userName").and_then(Value::as_str).map(str::to_lowercase);
        let external = external_id(doc);
        for (_, d) in others {
            if kind == ObjectKind::User
                && let Some(u) = &user_name
                && get_ci(&d.resource, "userName")
                    .and_then(Value::as_str)
                    .is_some_and(|o| o.to_lowercase() == *u)
            {
                return Err(ApiError::taken(format!("userName {u:?} is taken")));
            }
            if external.is_some() && external_id(&d.resource) == external {
                return Err(ApiError::taken("externalId is taken"));
            }
        }
        Ok(())
    }

    /// Every member must be a live resource.
    fn check_members(&self, doc: &Map<String, Value>) -> Result<(), ApiError> {
        let documents = self.store.lock();
        for m in member_values(doc) {
            if documents.get(&m).is_none_or(|d| d.deleted) {
                return Err(ApiError::bad(
                    "invalidValue",
                    format!("member {m:?} is not a known resource"),
                ));
            }
        }
        Ok(())
    }

    async fn create(
        &self,
        record: &mut PendingRecord,
        req: &RequestInfo,
        kind: ObjectKind,
        body: &[u8],
    ) -> Result<Response, ApiError> {
        let doc = parse_resource(body)?;
        let _writing = self.writes.lock().await;
        self.store.load(self.target.as_ref(), self.profile.id).await?;
        let doc = sanitize(kind, doc, record)?;
        self.check_unique(kind, &doc, None)?;
        self.check_members(&doc)?;
        let external = external_id(&doc).unwrap_or_else(|| format!("{GENERATED_PREFIX}{}", uuid::Uuid::new_v4()));
        let link = Link {
            profile: self.profile.id,
            external: external.into(),
        };
        record.link = Some(link.clone());
        let account = match self.linked_account(kind, &link).await? {
            Some(account) => {
                if self.store.lock().get(&account.id.0).is_some_and(|d| !d.deleted) {
                    return Err(ApiError::taken("a resource with this externalId exists"));
                }
                record.notes.push(format!(
                    "the account {} already carries this link: it is taken over",
                    account.id
                ));
                account
            }
            None => {
                let plan = self.provision(record, kind, &link, Some(&doc), None).await?;
                let provisioned = plan
                    .operations
                    .iter()
                    .any(|op| op.link == link && matches!(op.action, Action::Create { .. } | Action::Link { .. }));
                match self.linked_account(kind, &link).await? {
                    Some(account) => account,
                    None if provisioned => {
                        return Err(ApiError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            None,
                            "the application does not find the account it was given by its link",
                        ));
                    }
                    None => {
                        let names = |f: &&Finding| f.objects.contains(&link.external.0);
                        let general = |f: &&Finding| f.objects.is_empty();
                        let finding = plan.findings.iter().find(names).or(plan.findings.iter().find(general));
                        return Err(ApiError::refused(finding));
                    }
                }
            }
        };
        let id = account.id.0.clone();
        self.provision(record, kind, &link, Some(&doc), Some(account)).await?;
        record.resource = Some(id.clone());
        let document = Document::new(kind, link, doc);
        self.store.lock().insert(id.clone(), document.clone());
        Ok(self.resource_response(StatusCode::CREATED, &id, &document, &self.base(req)))
    }

    async fn write(
        &self,
        record: &mut PendingRecord,
        req: &RequestInfo,
        kind: ObjectKind,
        id: &str,
        body: &[u8],
        how: WriteKind,
    ) -> Result<Response, ApiError> {
        let change = Change::parse(how, body)?;
        let _writing = self.writes.lock().await;
        self.store.load(self.target.as_ref(), self.profile.id).await?;
        let mut document = self.store.live(kind, id)?;
        record.link = Some(document.link.clone());
        if let Some(m) = req.headers.get(IF_MATCH).and_then(|v| v.to_str().ok())
            && !etag_listed(m, &self.store.etag(id, &document))
        {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                None,
                format!(
                    "the resource changed: its version is {}",
                    self.store.etag(id, &document)
                ),
            ));
        }
        let mut account = match self.linked_account(kind, &document.link).await? {
            Some(a) if a.id.0 == id => a,
            _ => {
                self.store.lock().remove(id);
                return Err(ApiError::not_found(format!(
                    "the application no longer has the account {id:?}"
                )));
            }
        };
        let doc = match change {
            Change::Delete => {
                self.delete(record, id, &document.link, account).await?;
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            Change::Replace(doc) => sanitize(kind, doc, record)?,
            Change::Patch(patch) => {
                let mut doc = document.resource.clone();
                patch
                    .apply(&mut doc, &schemas::is_multi)
                    .map_err(|e| ApiError::bad(e.scim_type, e.message))?;
                sanitize(kind, doc, record)?
            }
        };
        self.check_unique(kind, &doc, Some(id))?;
        self.check_members(&doc)?;
        let link = self.move_link(record, &mut account, &doc).await?;
        record.link = Some(link.clone());
        self.provision(record, kind, &link, Some(&doc), Some(account)).await?;
        document.link = link;
        document.resource = doc;
        document.modified = now();
        self.store.lock().insert(id.to_owned(), document.clone());
        Ok(self.resource_response(StatusCode::OK, id, &document, &self.base(req)))
    }

    /// A changed `externalId` moves the account's link (when no other
    /// account carries the new one); returns the link.
    async fn move_link(
        &self,
        record: &mut PendingRecord,
        account: &mut TargetAccount,
        doc: &Map<String, Value>,
    ) -> Result<Link, ApiError> {
        let current = account
            .link
            .clone()
            .ok_or_else(|| ApiError::not_found("the account lost its link"))?;
        let Some(external) = external_id(doc).filter(|e| *e != current.external.0) else {
            return Ok(current);
        };
        let link = Link {
            profile: self.profile.id,
            external: external.into(),
        };
        if self.linked_account(account.kind, &link).await?.is_some() {
            return Err(ApiError::taken("another account carries this externalId"));
        }
        let op = TargetOp::SetLink {
            target: account.id.clone(),
            kind: account.kind,
            link: link.clone(),
        };
        self.apply(record, op).await?;
        account.link = Some(link.clone());
        Ok(link)
    }

    /// A DELETE: the profile's deprovision rule, as for an object deleted
    /// in the source. The document is gone for the provider; an account
    /// kept (disabled or left) keeps it, marked deleted.
    async fn delete(
        &self,
        record: &mut PendingRecord,
        id: &str,
        link: &Link,
        account: TargetAccount,
    ) -> Result<(), ApiError> {
        let plan = self.provision(record, account.kind, link, None, Some(account)).await?;
        let removed = plan
            .operations
            .iter()
            .any(|op| op.action == Action::Delete && op.held.is_none());
        let mut documents = self.store.lock();
        if removed {
            documents.remove(id);
            for d in documents.values_mut() {
                if let Some(Value::Array(members)) = d.resource.get_mut("members") {
                    members.retain(|m| m.get("value").and_then(Value::as_str) != Some(id));
                }
            }
        } else if let Some(d) = documents.get_mut(id) {
            d.deleted = true;
            d.modified = now();
        }
        Ok(())
    }
}

pub(crate) async fn create_route(
    State(state): State<Arc<ServerState>>,
    req: RequestInfo,
    body: Bytes,
    kind: ObjectKind,
) -> Response {
    let mut record = state.record(&req, "create", Some(kind));
    let result = state.create(&mut record, &req, kind, &body).await;
    state.finish(record, result)
}

pub(crate) async fn write_route(
    State(state): State<Arc<ServerState>>,
    req: RequestInfo,
    Path(id): Path<String>,
    body: Bytes,
    kind: ObjectKind,
    how: WriteKind,
) -> Response {
    let action = match how {
        WriteKind::Replace => "replace",
        WriteKind::Patch => "patch",
        WriteKind::Delete => "delete",
    };
    let mut record = state.record(&req, action, Some(kind));
    record.resource = Some(id.clone());
    let result = state.write(&mut record, &req, kind, id.as_str(), &body, how).await;
    state.finish(record, result)
}
