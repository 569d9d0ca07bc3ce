//! `JumpCloudSource`: system users and user groups as source objects.

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use idsync_core::model::{ExternalId, ObjectKind, SourceObject};
use idsync_core::{
    Completeness, Cursor, DeltaItem, Error, ErrorKind, ReadItem, Result, Scope, Source, SourceCapabilities,
};

use crate::NAME;
use crate::client::JumpCloudClient;
use crate::config::JumpCloudConfig;
use crate::map::{group_to_source, user_to_source};

/// Reads JumpCloud system users (v1) and user groups with members (v2).
#[derive(Debug)]
pub struct JumpCloudSource {
    client: JumpCloudClient,
}

enum Step {
    /// A page already read: its users, whether it was the last, where it began.
    Page(Vec<serde_json::Value>, bool, u64),
    Users(u64),
    Groups,
    End,
    Done,
}

impl JumpCloudSource {
    /// A user or group by id, whatever the scope.
    async fn read_object(&self, id: &ExternalId) -> Result<Option<SourceObject>> {
        if let Some(u) = self
            .client
            .get_user(id.as_str())
            .await
            .map_err(|e| e.into_core("read_one"))?
        {
            return user_to_source(&u).map_err(|e| e.into_core("read_one"));
        }
        match self
            .client
            .get_group(id.as_str())
            .await
            .map_err(|e| e.into_core("read_one"))?
        {
            Some(g) => {
                let members = self
                    .client
                    .group_members(id.as_str())
                    .await
                    .map_err(|e| e.into_core("read_one"))?;
                Ok(group_to_source(&g, &members))
            }
            None => Ok(None),
        }
    }

    /// Builds the source; does no I/O.
    pub fn new(config: JumpCloudConfig) -> Result<Self> {
        let client = JumpCloudClient::new(&config).map_err(|e| e.into_core("new"))?;
        Ok(JumpCloudSource { client })
    }

    /// The user groups with their members; a group without an id is an
    /// error in the list (the read is then partial: nothing is deprovisioned).
    async fn groups(&self, scope: &Scope) -> std::result::Result<Vec<Result<SourceObject>>, Error> {
        let mut out = Vec::new();
        let groups = self.client.list_groups().await.map_err(|e| e.into_core("read_full"))?;
        for (i, g) in groups.iter().enumerate() {
            let Some(id) = crate::map::id_of(g) else {
                out.push(Err(without_id("user group", g, i as u64 + 1)));
                continue;
            };
            let members = self
                .client
                .group_members(id)
                .await
                .map_err(|e| e.into_core("read_full"))?;
            if let Some(o) = group_to_source(g, &members).filter(|o| scope.admits(o)) {
                out.push(Ok(o));
            }
        }
        Ok(out)
    }
}

/// The items of one page of system users and the step after it; a user
/// without an id, or whose `suspended` or `state` means nothing, is an
/// error naming it and makes the read Partial.
fn page_items(
    page: &[serde_json::Value],
    last: bool,
    skip: u64,
    scope: &Scope,
    partial: &mut Option<String>,
) -> (Vec<Result<ReadItem>>, Step) {
    let next = if last {
        Step::Groups
    } else {
        Step::Users(skip + page.len() as u64)
    };
    let mut items = Vec::with_capacity(page.len());
    for (i, v) in page.iter().enumerate() {
        let e = match user_to_source(v) {
            Ok(Some(o)) if scope.admits(&o) => {
                items.push(Ok(ReadItem::Object(o)));
                continue;
            }
            Ok(Some(_)) => continue,
            Ok(None) => without_id("system user", v, skip + i as u64 + 1),
            Err(e) => e.into_core("read_full"),
        };
        *partial = Some(e.to_string());
        items.push(Err(e));
    }
    (items, next)
}

/// The error for a listed object without an `_id`: names it by `username`,
/// `email` or `name` when it has one, else by its place in the listing.
fn without_id(what: &str, v: &serde_json::Value, position: u64) -> Error {
    let object = ["username", "email", "name"]
        .iter()
        .find_map(|k| {
            v.get(*k)
                .and_then(serde_json::Value::as_str)
                .map(|n| format!("{what} {k} {n:?}"))
        })
        .unwrap_or_else(|| format!("{what} #{position} of the listing"));
    let message = if v.is_object() {
        format!("a {what} without an _id")
    } else {
        format!("a {what} that is not a JSON object")
    };
    Error::new(ErrorKind::InvalidData, message)
        .with_backend(NAME)
        .with_op("read_full")
        .with_object(object)
        .with_field("_id")
}

#[async_trait]
impl Source for JumpCloudSource {
    fn backend(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::default()
            .with_delta(false)
            .with_read_one(true)
            .with_groups(true)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = NAME))]
    async fn read_full(&self, scope: &Scope) -> Result<BoxStream<'_, Result<ReadItem>>> {
        let scope = scope.clone();
        // The first page is read before the stream is returned: a JumpCloud
        // that cannot be reached or refuses the key fails the read as a
        // whole (the run stops, nothing is planned).
        let first = if scope.kind_in_scope(ObjectKind::User) {
            let (page, last) = self
                .client
                .list_users_page(0)
                .await
                .map_err(|e| e.into_core("read_full"))?;
            Step::Page(page, last, 0)
        } else {
            Step::Groups
        };
        let s = stream::unfold((first, None::<String>), move |(step, mut partial)| {
            let scope = scope.clone();
            async move {
                match step {
                    Step::Page(page, last, skip) => {
                        let (items, next) = page_items(&page, last, skip, &scope, &mut partial);
                        Some((items, (next, partial)))
                    }
                    Step::Users(skip) => match self.client.list_users_page(skip).await {
                        Ok((page, last)) => {
                            let (items, next) = page_items(&page, last, skip, &scope, &mut partial);
                            Some((items, (next, partial)))
                        }
                        Err(e) => {
                            let e = e.into_core("read_full");
                            if e.stops_run() {
                                return Some((vec![Err(e)], (Step::Done, partial)));
                            }
                            tracing::warn!(backend = NAME, error = %e, "system user listing broke off");
                            Some((vec![], (Step::End, Some(e.to_string()))))
                        }
                    },
                    Step::Groups if scope.kind_in_scope(ObjectKind::Group) => match self.groups(&scope).await {
                        Ok(gs) => {
                            let items: Vec<Result<ReadItem>> =
                                gs.into_iter().map(|g| g.map(ReadItem::Object)).collect();
                            if let Some(Err(e)) = items.iter().find(|i| i.is_err()) {
                                partial = Some(e.to_string());
                            }
                            Some((items, (Step::End, partial)))
                        }
                        Err(e) if e.stops_run() => Some((vec![Err(e)], (Step::Done, partial))),
                        Err(e) => {
                            tracing::warn!(backend = NAME, error = %e, "user group listing broke off");
                            Some((vec![], (Step::End, Some(e.to_string()))))
                        }
                    },
                    Step::Groups => Some((vec![], (Step::End, partial))),
                    Step::End => {
                        let completeness = match partial.take() {
                            Some(reason) => Completeness::Partial { reason },
                            None => Completeness::Complete,
                        };
                        Some((
                            vec![Ok(ReadItem::End {
                                completeness,
                                cursor: None,
                            })],
                            (Step::Done, None),
                        ))
                    }
                    Step::Done => None,
                }
            }
        });
        Ok(s.flat_map(stream::iter).boxed())
    }

    async fn read_delta(&self, _scope: &Scope, _from: &Cursor) -> Result<BoxStream<'_, Result<DeltaItem>>> {
        Err(Error::new(
            ErrorKind::Unsupported,
            "JumpCloud documents no change feed; use full reads",
        )
        .with_backend(NAME)
        .with_op("read_delta"))
    }

    /// Applies of `scope` what a full read applies: [`Scope::admits`].
    #[tracing::instrument(level = "debug", skip(self, scope), fields(backend = NAME))]
    async fn read_one(&self, scope: &Scope, id: &ExternalId) -> Result<Option<SourceObject>> {
        let object = self.read_object(id).await?;
        Ok(object.filter(|o| scope.admits(o)))
    }
}
