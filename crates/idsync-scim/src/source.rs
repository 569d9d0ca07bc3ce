//! The SCIM source: Users and Groups read from a SCIM service, with deltas
//! on `meta.lastModified gt`.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use idsync_core::{
    AttrValue, Completeness, Cursor, DeltaItem, Error, ErrorKind, ExternalId, ObjectKind, ReadItem, Result, Scope,
    Source, SourceCapabilities, SourceObject,
};
use serde_json::Value;

use crate::NAME;
use crate::ScimError;
use crate::client::ScimClient;
use crate::config::ScimConfig;
use crate::map::{flatten, quote};
use crate::target::{active, members};

/// A SCIM 2.0 service read as an idsync source.
///
/// Objects: the SCIM `id` is the external id; attributes are the resource's
/// fields in the path spellings of [`crate::map`] (`userName`,
/// `name.givenName`, `emails[type eq "work"].value`, …) plus `id` and
/// `externalId`; `active` is the enabled flag (a boolean or `"true"`/
/// `"false"`; absent or `null`: enabled; anything else is an `InvalidData`
/// error naming the resource and `active`, and the read is partial); group
/// members are the members' `value`s. There are no containers.
///
/// Deltas list what changed with `meta.lastModified gt "<cursor>"`, the
/// cursor being the latest `lastModified` seen (the server's own clock, so
/// no skew). SCIM keeps no tombstones: deletions show only in full reads,
/// which the engine runs at its configured interval.
#[derive(Debug)]
pub struct ScimSource {
    client: ScimClient,
}

#[derive(Default)]
struct Tracker {
    newest: Option<String>,
    partial: Option<String>,
    /// The kind of the error that cut a listing short.
    kind: Option<ErrorKind>,
}

impl ScimSource {
    /// A source with the dialect's (RFC) defaults, without asking the service.
    pub fn new(config: ScimConfig) -> Result<Self> {
        Ok(ScimSource {
            client: ScimClient::new(&config)?,
        })
    }

    /// A source that first discovers the service (unless `discover = false`).
    pub async fn connect(config: ScimConfig) -> Result<Self> {
        let mut client = ScimClient::new(&config)?;
        if config.discover {
            client.discover().await?;
        }
        Ok(ScimSource { client })
    }

    fn kinds(&self, scope: &Scope) -> Vec<(ObjectKind, String)> {
        let mut out = Vec::new();
        if scope.kind_in_scope(ObjectKind::User) {
            out.push((ObjectKind::User, self.client.sp.users_endpoint.clone()));
        }
        if scope.kind_in_scope(ObjectKind::Group)
            && let Some(g) = &self.client.sp.groups_endpoint
        {
            out.push((ObjectKind::Group, g.clone()));
        }
        out
    }

    /// Objects of every kind in scope matching `filter`, tracking the newest
    /// `lastModified` and whether a listing broke off.
    fn objects<'a>(
        &'a self,
        scope: &Scope,
        filter: Option<String>,
        tracker: Arc<Mutex<Tracker>>,
        op: &'static str,
    ) -> BoxStream<'a, Result<SourceObject>> {
        let filter = match (filter, scope.filter.as_deref().filter(|f| !f.trim().is_empty())) {
            (Some(a), Some(b)) => Some(format!("({a}) and ({b})")),
            (a, b) => a.or_else(|| b.map(str::to_owned)),
        };
        let listings = self.kinds(scope).into_iter().map(move |(kind, endpoint)| {
            let tracker = tracker.clone();
            let filter = filter.clone();
            let endpoint_name = endpoint.clone();
            self.client
                .list_owned(endpoint, filter)
                .enumerate()
                .filter_map(move |(index, item)| {
                    let tracker = tracker.clone();
                    let endpoint = endpoint_name.clone();
                    async move {
                        match item {
                            Ok(v) => {
                                let modified = v["meta"]["lastModified"].as_str().map(str::to_owned);
                                let object = to_object(&v, kind, op);
                                let mut t = tracker.lock().unwrap_or_else(|p| p.into_inner());
                                if let Some(m) = modified
                                    && t.newest.as_ref().is_none_or(|n| m > *n)
                                {
                                    t.newest = Some(m);
                                }
                                Some(object.and_then(|o| o.ok_or_else(|| unreadable(&v, op, &endpoint, index))))
                            }
                            Err(e) => {
                                let e = ScimError::http(e, &format!("listing {endpoint}"), None).into_core(op);
                                let mut t = tracker.lock().unwrap_or_else(|p| p.into_inner());
                                // every listing cut short is named, not only the last
                                t.partial = Some(match t.partial.take() {
                                    Some(earlier) => format!("{earlier}; {e}"),
                                    None => e.to_string(),
                                });
                                t.kind = Some(e.kind());
                                // an error that stops the run is passed on; others make the read Partial
                                e.stops_run().then_some(Err(e))
                            }
                        }
                    }
                })
                .boxed()
        });
        stream::iter(listings).flatten().boxed()
    }
}

/// The source object a SCIM resource describes, as [`ScimSource`] reads
/// it: the SCIM `id` as external id; the fields in the paths of
/// [`crate::map`], `id` and `externalId` as attributes; `active` as the
/// enabled flag; the members' `value`s as members. `Ok(None)` without a
/// non-empty string id, an `InvalidData` error (naming the operation `op`)
/// for an `active` that means nothing.
pub fn to_object(v: &Value, kind: ObjectKind, op: &'static str) -> Result<Option<SourceObject>> {
    let Some(id) = v["id"].as_str().filter(|id| !id.is_empty()) else {
        return Ok(None);
    };
    let mut o = SourceObject::new(id, kind).enabled(active(v, op, id)?);
    for (name, value) in flatten(v) {
        o.attributes.insert(name, vec![AttrValue::Text(value)]);
    }
    o.attributes.insert("id".into(), vec![AttrValue::Text(id.to_owned())]);
    if let Some(ext) = v["externalId"].as_str() {
        o.attributes
            .insert("externalId".into(), vec![AttrValue::Text(ext.to_owned())]);
    }
    o.members = members(v).into_iter().map(ExternalId).collect();
    Ok(Some(o))
}

/// The error for a listed resource that is not an object with a string
/// `id`: names it by `userName`, `displayName` or `externalId` when it has
/// one, else by its place in the listing.
fn unreadable(v: &Value, op: &'static str, endpoint: &str, index: usize) -> Error {
    let name = ["userName", "displayName", "externalId"]
        .iter()
        .find_map(|k| v[*k].as_str().map(|s| format!("{k} {s:?}")))
        .unwrap_or_else(|| format!("{endpoint} resource #{}", index + 1));
    let what = if v.is_object() {
        "a resource without a non-empty string id"
    } else {
        "a resource that is not a JSON object"
    };
    ScimError::bad_response(&format!("{what} in {endpoint}"), Some(&name))
        .into_core(op)
        .with_field("id")
}

/// A cursor is a `lastModified` timestamp (RFC 3339).
fn valid_cursor(c: &str) -> bool {
    c.len() >= 10
        && c.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && c.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | ':' | '.' | '+'))
}

/// The cursor of a read that saw no object: every change is newer.
const EPOCH: &str = "1970-01-01T00:00:00Z";

#[async_trait]
impl Source for ScimSource {
    fn backend(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::default()
            .with_delta(true)
            .with_read_one(true)
            .with_groups(self.client.sp.groups_endpoint.is_some())
    }

    async fn read_full(&self, scope: &Scope) -> Result<BoxStream<'_, Result<ReadItem>>> {
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let objects = self
            .objects(scope, None, tracker.clone(), "read_full")
            .map(|r| r.map(ReadItem::Object));
        let end = stream::once(async move {
            let t = tracker.lock().unwrap_or_else(|p| p.into_inner());
            let completeness = match &t.partial {
                Some(reason) => Completeness::Partial { reason: reason.clone() },
                None => Completeness::Complete,
            };
            Ok(ReadItem::End {
                completeness,
                cursor: Some(Cursor(t.newest.clone().unwrap_or_else(|| EPOCH.to_owned()))),
            })
        });
        Ok(objects.chain(end).boxed())
    }

    async fn read_delta(&self, scope: &Scope, from: &Cursor) -> Result<BoxStream<'_, Result<DeltaItem>>> {
        if !valid_cursor(&from.0) {
            return Ok(stream::once(async {
                Ok(DeltaItem::ResyncRequired {
                    reason: "the cursor is not a SCIM lastModified timestamp".into(),
                })
            })
            .boxed());
        }
        let tracker = Arc::new(Mutex::new(Tracker {
            newest: Some(from.0.clone()),
            ..Tracker::default()
        }));
        let filter = format!("meta.lastModified gt {}", quote(&from.0));
        let objects = self
            .objects(scope, Some(filter), tracker.clone(), "read_delta")
            .map(|r| r.map(DeltaItem::Changed));
        let end = stream::once(async move {
            let t = tracker.lock().unwrap_or_else(|p| p.into_inner());
            match &t.partial {
                // a server that cannot filter on meta.lastModified: full reads only
                Some(reason) if matches!(t.kind, Some(ErrorKind::Protocol | ErrorKind::InvalidData)) => {
                    Ok(DeltaItem::ResyncRequired {
                        reason: format!("the server refused the meta.lastModified filter: {reason}"),
                    })
                }
                // a delta cut short must not move the cursor
                Some(reason) => Err(Error::new(ErrorKind::Unavailable, reason.clone())
                    .with_backend(NAME)
                    .with_op("read_delta")),
                None => Ok(DeltaItem::End {
                    cursor: Cursor(t.newest.clone().unwrap_or_else(|| EPOCH.to_owned())),
                }),
            }
        });
        Ok(objects.chain(end).boxed())
    }

    /// The server filters: `<attribute> eq "<value>"` (with the scope's
    /// filter) on the Users endpoint.
    async fn find_users(&self, scope: &Scope, attribute: &str, value: &str) -> Result<Vec<SourceObject>> {
        if !scope.kind_in_scope(ObjectKind::User) {
            return Ok(Vec::new());
        }
        let users = Scope {
            kinds: vec![ObjectKind::User],
            ..scope.clone()
        };
        let by_name = format!("{attribute} eq {}", quote(value));
        self.objects(&users, Some(by_name), Arc::default(), "find_users")
            .try_collect()
            .await
    }

    /// With a `scope.filter`, the server applies it: the object is listed
    /// with `id eq "…" and (filter)`. Otherwise it is read by id.
    async fn read_one(&self, scope: &Scope, id: &ExternalId) -> Result<Option<SourceObject>> {
        if scope.filter.as_deref().is_some_and(|f| !f.trim().is_empty()) {
            let by_id = format!("id eq {}", quote(id.as_str()));
            let mut found = self.objects(scope, Some(by_id), Arc::default(), "read_one");
            return found.next().await.transpose();
        }
        for (kind, endpoint) in self.kinds(scope) {
            match self.client.get(&[&endpoint, id.as_str()]).await {
                Ok(r) => {
                    let v: Value = r.json().map_err(|e| {
                        ScimError::http(e, "reading a resource", Some(id.as_str())).into_core("read_one")
                    })?;
                    return to_object(&v, kind, "read_one")?.map(Some).ok_or_else(|| {
                        ScimError::bad_response("a resource without an id", Some(id.as_str())).into_core("read_one")
                    });
                }
                Err(e) if e.status().is_some_and(|s| s.as_u16() == 404) => continue,
                Err(e) => {
                    return Err(
                        ScimError::http(e, &format!("reading {endpoint}"), Some(id.as_str())).into_core("read_one")
                    );
                }
            }
        }
        Ok(None)
    }
}
