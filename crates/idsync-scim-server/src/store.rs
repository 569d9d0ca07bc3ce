//! The document store: the full SCIM document of every resource (what the
//! provider sent, including attributes no field holds), in memory, by SCIM
//! id (the target's account id). Loaded from the target's linked accounts
//! on first use, so that after a restart the documents are rebuilt from the
//! target's fields.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use futures::StreamExt;
use idsync_core::{Link, ObjectKind, ProfileId, Target, TargetAccount};
use idsync_scim::json::get_ci;
use idsync_scim::map::{AttrPath, GROUP_SCHEMA, USER_SCHEMA};
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// The prefix of the external ids made up for resources sent without an
/// `externalId`.
pub const GENERATED_PREFIX: &str = "scim:";

/// One resource as the server keeps it.
#[derive(Clone, Debug)]
pub(crate) struct Document {
    pub(crate) kind: ObjectKind,
    pub(crate) link: Link,
    /// The document without `id` and `meta`.
    pub(crate) resource: Map<String, Value>,
    pub(crate) created: String,
    pub(crate) modified: String,
    /// Deprovisioned by a DELETE but kept (disabled or left) in the target.
    pub(crate) deleted: bool,
}

/// The documents by SCIM id.
pub(crate) type Documents = BTreeMap<String, Document>;

/// Every document, loaded once.
#[derive(Default)]
pub(crate) struct DocumentStore {
    loaded: tokio::sync::OnceCell<()>,
    documents: Mutex<Documents>,
}

impl DocumentStore {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Documents> {
        self.documents.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads the accounts linked to `profile` once.
    pub(crate) async fn load(&self, target: &dyn Target, profile: ProfileId) -> Result<(), ApiError> {
        self.loaded
            .get_or_try_init(|| async {
                let mut stream = target.linked(profile).await.map_err(ApiError::target)?;
                let mut accounts = Vec::new();
                while let Some(a) = stream.next().await {
                    accounts.push(a.map_err(ApiError::target)?);
                }
                drop(stream);
                let now = now();
                let mut documents = self.lock();
                for a in accounts {
                    if let Some(link) = a.link.clone() {
                        documents
                            .entry(a.id.0.clone())
                            .or_insert_with(|| Document::rebuild(&a, link, &now));
                    }
                }
                Ok::<(), ApiError>(())
            })
            .await
            .map(|_| ())
    }

    /// The live (not deprovisioned) document `id` of `kind`.
    pub(crate) fn live(&self, kind: ObjectKind, id: &str) -> Result<Document, ApiError> {
        self.lock()
            .get(id)
            .filter(|d| d.kind == kind && !d.deleted)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("no {} with id {id:?}", resource_type(kind))))
    }

    /// The current ETag of a document.
    pub(crate) fn etag(&self, id: &str, document: &Document) -> String {
        etag_of(&body(&self.lock(), id, document))
    }

    /// The full document, with `meta`.
    pub(crate) fn render(&self, id: &str, document: &Document, base: &str) -> Value {
        render(&self.lock(), id, document, base)
    }
}

impl Document {
    /// A document received now.
    pub(crate) fn new(kind: ObjectKind, link: Link, resource: Map<String, Value>) -> Document {
        let now = now();
        Document {
            kind,
            link,
            resource,
            created: now.clone(),
            modified: now,
            deleted: false,
        }
    }

    /// A document rebuilt from an account's fields.
    fn rebuild(account: &TargetAccount, link: Link, now: &str) -> Document {
        let mut resource = Map::new();
        resource.insert("schemas".into(), json!([core_schema(account.kind)]));
        for (field, value) in &account.fields {
            if let Ok(path) = AttrPath::parse(field) {
                path.set(&mut resource, Some(value));
            }
        }
        if !link.external.0.starts_with(GENERATED_PREFIX) {
            resource.insert("externalId".into(), Value::String(link.external.0.clone()));
        }
        match account.kind {
            ObjectKind::User => {
                resource.insert("active".into(), Value::Bool(account.enabled));
            }
            ObjectKind::Group if !account.members.is_empty() => {
                let members = account.members.iter().map(|m| json!({"value": m.0})).collect();
                resource.insert("members".into(), Value::Array(members));
            }
            ObjectKind::Group => {}
        }
        Document {
            kind: account.kind,
            link,
            resource,
            created: now.to_owned(),
            modified: now.to_owned(),
            deleted: false,
        }
    }
}

/// The ETag of a document without `meta`: FNV-1a over its canonical JSON,
/// so it is stable across restarts.
fn etag_of(body: &Map<String, Value>) -> String {
    let text = Value::Object(body.clone()).to_string();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("W/\"{h:016x}\"")
}

/// True when an `If-Match` or `If-None-Match` header lists `etag` (or `*`).
pub(crate) fn etag_listed(header: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").trim_matches('"').to_owned();
    header.split(',').any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

/// A document without `meta`: what is kept, the id, and for users the
/// (read-only) groups they are a direct member of.
fn body(documents: &Documents, id: &str, document: &Document) -> Map<String, Value> {
    let mut r = document.resource.clone();
    r.insert("id".into(), Value::String(id.to_owned()));
    if document.kind == ObjectKind::User {
        let groups: Vec<Value> = documents
            .iter()
            .filter(|(_, g)| g.kind == ObjectKind::Group && !g.deleted && member_values(&g.resource).contains(id))
            .map(|(gid, g)| {
                let mut v = json!({"value": gid, "type": "direct"});
                if let Some(name) = get_ci(&g.resource, "displayName") {
                    v["display"] = name.clone();
                }
                v
            })
            .collect();
        if !groups.is_empty() {
            r.insert("groups".into(), Value::Array(groups));
        }
    }
    r
}

/// The full document of `id`, with `meta`.
pub(crate) fn render(documents: &Documents, id: &str, document: &Document, base: &str) -> Value {
    let mut r = body(documents, id, document);
    let version = etag_of(&r);
    r.insert(
        "meta".into(),
        json!({
            "resourceType": resource_type(document.kind),
            "created": document.created,
            "lastModified": document.modified,
            "location": format!("{base}/{}/{id}", endpoint(document.kind)),
            "version": version,
        }),
    );
    Value::Object(r)
}

/// Now, as SCIM writes times (RFC 3339, UTC).
pub(crate) fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// The core schema of a kind.
pub(crate) fn core_schema(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::User => USER_SCHEMA,
        ObjectKind::Group => GROUP_SCHEMA,
    }
}

fn endpoint(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::User => "Users",
        ObjectKind::Group => "Groups",
    }
}

/// The SCIM resource type of a kind.
pub(crate) fn resource_type(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::User => "User",
        ObjectKind::Group => "Group",
    }
}

/// The `externalId` of a document, when it has a non-empty one.
pub(crate) fn external_id(doc: &Map<String, Value>) -> Option<String> {
    get_ci(doc, "externalId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The SCIM ids a group document lists as members.
pub(crate) fn member_values(doc: &Map<String, Value>) -> BTreeSet<String> {
    get_ci(doc, "members")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
