//! `RestSource`: any JSON API as the authoritative directory.

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use idsync_core::model::{ExternalId, ObjectKind, SourceObject};
use idsync_core::{
    Completeness, Cursor, DeltaItem, Error, ErrorKind, ReadItem, Result, Scope, Source, SourceCapabilities,
};
use serde_json::Value;

use crate::NAME;
use crate::client::RestClient;
use crate::config::RestConfig;
use crate::error::RestError;
use crate::map;

/// Reads users (and groups, with members) of a REST API as configured by
/// [`RestConfig`]. Attributes are the configured `fields` plus every
/// top-level scalar of an object; groups name their members by the ids
/// found at `members`/`member_id`.
#[derive(Debug, Clone)]
pub struct RestSource {
    client: RestClient,
}

impl RestSource {
    /// Builds the source; does no I/O.
    pub fn new(config: RestConfig) -> Result<Self> {
        Ok(RestSource {
            client: RestClient::new(config).map_err(|e| e.into_core("new"))?,
        })
    }

    /// The source object `v` describes; `Ok(None)` without an id.
    fn object(&self, kind: ObjectKind, v: &Value) -> std::result::Result<Option<SourceObject>, RestError> {
        let users = &self.client.config().users.id_prefix;
        map::to_source(v, kind, self.client.resource(kind)?, users)
    }

    /// The error for a listed object without an id at the configured
    /// pointer: names it by its first configured field that has a value
    /// (or says it is not a JSON object), and names the id pointer.
    fn without_id(&self, kind: ObjectKind, v: &Value) -> Error {
        let resource = self.client.resource(kind).ok();
        let pointer = resource.map_or("", |r| r.id.as_str());
        let name = resource
            .and_then(|r| map::fields_of(v, r).into_iter().find(|(_, value)| !value.is_empty()))
            .map(|(field, value)| format!("{kind} with {field} {value:?}"));
        let (object, what) = match (name, v.is_object()) {
            (Some(name), _) => (name, format!("no id at {pointer}")),
            (None, true) => (format!("a {kind}"), format!("no id at {pointer}")),
            (None, false) => (format!("a {kind}"), "not a JSON object".to_owned()),
        };
        Error::new(ErrorKind::InvalidData, format!("a listed {kind} is unusable: {what}"))
            .with_backend(NAME)
            .with_op("read_full")
            .with_object(object)
            .with_field(pointer.to_owned())
    }
}

struct State<'a> {
    inner: BoxStream<'a, (ObjectKind, std::result::Result<Value, RestError>)>,
    partial: Option<String>,
    ended: bool,
}

#[async_trait]
impl Source for RestSource {
    fn backend(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::default()
            .with_delta(false)
            .with_read_one(true)
            .with_groups(self.client.config().groups.is_some())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = NAME))]
    async fn read_full(&self, scope: &Scope) -> Result<BoxStream<'_, Result<ReadItem>>> {
        let scope = scope.clone();
        let mut parts: Vec<BoxStream<'_, (ObjectKind, std::result::Result<Value, RestError>)>> = Vec::new();
        for kind in [ObjectKind::User, ObjectKind::Group] {
            if scope.kind_in_scope(kind) && self.client.config().resource(kind).is_some() {
                parts.push(self.client.list(kind).map(move |r| (kind, r)).boxed());
            }
        }
        let state = State {
            inner: stream::iter(parts).flatten().boxed(),
            partial: None,
            ended: false,
        };
        let s = stream::unfold(state, move |mut st| {
            let scope = scope.clone();
            async move {
                if st.ended {
                    return None;
                }
                loop {
                    match st.inner.next().await {
                        Some((kind, Ok(v))) => match self.object(kind, &v) {
                            Ok(Some(o)) if scope.admits(&o) => return Some((Ok(ReadItem::Object(o)), st)),
                            Ok(Some(_)) => {}
                            Ok(None) => {
                                let e = self.without_id(kind, &v);
                                st.partial = Some(e.to_string());
                                return Some((Err(e), st));
                            }
                            Err(e) => {
                                let e = e.into_core("read_full");
                                st.partial = Some(e.to_string());
                                return Some((Err(e), st));
                            }
                        },
                        Some((kind, Err(e))) => {
                            let e = e.into_core("read_full");
                            st.ended = true;
                            if e.stops_run() {
                                return Some((Err(e), st));
                            }
                            tracing::warn!(backend = NAME, %kind, error = %e, "listing broke off: the read is partial");
                            let end = ReadItem::End {
                                completeness: Completeness::Partial { reason: e.to_string() },
                                cursor: None,
                            };
                            return Some((Ok(end), st));
                        }
                        None => {
                            st.ended = true;
                            let completeness = match st.partial.take() {
                                Some(reason) => Completeness::Partial { reason },
                                None => Completeness::Complete,
                            };
                            return Some((
                                Ok(ReadItem::End {
                                    completeness,
                                    cursor: None,
                                }),
                                st,
                            ));
                        }
                    }
                }
            }
        });
        Ok(s.boxed())
    }

    async fn read_delta(&self, _scope: &Scope, _from: &Cursor) -> Result<BoxStream<'_, Result<DeltaItem>>> {
        Err(Error::new(
            ErrorKind::Unsupported,
            "the generic REST source has no change feed; use full reads",
        )
        .with_backend(NAME)
        .with_op("read_delta"))
    }

    /// Applies of `scope` what a full read applies: kinds and
    /// [`Scope::admits`].
    #[tracing::instrument(level = "debug", skip(self, scope), fields(backend = NAME))]
    async fn read_one(&self, scope: &Scope, id: &ExternalId) -> Result<Option<SourceObject>> {
        for kind in [ObjectKind::User, ObjectKind::Group] {
            if !scope.kind_in_scope(kind) {
                continue;
            }
            let Some(resource) = self.client.config().resource(kind) else {
                continue;
            };
            let Some(raw) = id.as_str().strip_prefix(resource.id_prefix.as_str()) else {
                continue;
            };
            let found = self.client.get(kind, raw).await.map_err(|e| e.into_core("read_one"))?;
            if let Some(v) = found {
                return Ok(self
                    .object(kind, &v)
                    .map_err(|e| e.into_core("read_one"))?
                    .filter(|o| scope.admits(o)));
            }
        }
        Ok(None)
    }
}
