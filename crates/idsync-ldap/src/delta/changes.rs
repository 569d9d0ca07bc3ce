//! Deltas that name what changed (AD's DirSync and uSNChanged, generic
//! LDAP's modifyTimestamp) rather than carry it: each changed object is
//! read whole with the profile's filter (the core's delta items carry whole
//! objects), which also tells whether it is still in scope.

use std::collections::HashSet;

use idsync_core::{Cursor, DeltaItem, ExternalId, Result};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::controls::RawControl;
use ldap3::{Ldap, SearchEntry};
use tokio::sync::mpsc;

use crate::config::LdapConfig;
use crate::error::LdapError;
use crate::map::id_of;
use crate::read::Listed;

/// What a named-change delta read ends with.
pub(crate) enum Outcome {
    /// The cursor for the next delta.
    Next(Cursor),
    /// Read in full, for this reason.
    Resync(String),
}

/// What changed since a cursor: ids changed, ids deleted, and, where
/// deletions may go unseen, every id still in scope (the present set).
#[derive(Default)]
pub(crate) struct Changes {
    pub(crate) changed: Vec<ExternalId>,
    pub(crate) deleted: Vec<ExternalId>,
    pub(crate) present: Option<Vec<ExternalId>>,
}

/// The ids of the entries under `base` matching `filter` (paged), with
/// `control` on the search.
pub(crate) async fn ids(
    ldap: &mut Ldap,
    base: &str,
    filter: &str,
    control: Option<RawControl>,
    config: &LdapConfig,
) -> std::result::Result<Vec<ExternalId>, LdapError> {
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(config.page_size.max(1))),
    ];
    if let Some(c) = control {
        ldap.with_controls(c);
    }
    let mut stream = ldap
        .with_timeout(config.op_timeout())
        .streaming_search_with(adapters, base, ldap3::Scope::Subtree, filter, vec![config.id_attr()])
        .await?;
    let mut out = Vec::new();
    while let Some(re) = stream.next().await? {
        out.push(id_of(config, &SearchEntry::construct(re))?);
    }
    let result = stream.finish().await;
    crate::error::check(result, base, &[])?;
    Ok(out)
}

/// Sends the deleted and present ids, then each changed object read whole
/// with the filter of `listed` (one that no longer matches is sent
/// deleted). False when the reader went away.
pub(crate) async fn send(
    ldap: &mut Ldap,
    config: &LdapConfig,
    listed: &Listed,
    attrs: &[String],
    changes: Changes,
    tx: &mpsc::Sender<Result<DeltaItem>>,
) -> bool {
    let send = |item| async move { tx.send(Ok(item)).await.is_ok() };
    let Changes {
        changed,
        deleted,
        present,
    } = changes;
    let gone = deleted.iter().cloned().map(DeltaItem::Deleted);
    let here = present.into_iter().flatten().map(DeltaItem::Present);
    for item in gone.chain(here) {
        if !send(item).await {
            return false;
        }
    }
    let mut seen: HashSet<&ExternalId> = deleted.iter().collect();
    for id in &changed {
        if !seen.insert(id) {
            continue;
        }
        let (base, scope, by_id) = crate::map::by_id(config, &id.0);
        let found = crate::read::read_object(ldap, config, listed, (&base, scope, &by_id), attrs.to_vec()).await;
        let item = match found {
            Ok(Some(object)) => DeltaItem::Changed(object),
            // Out of the profile's filter now.
            Ok(None) => DeltaItem::Deleted(id.clone()),
            Err(e) => {
                if tx
                    .send(Err(e.into_core("read_delta").with_object(id.0.clone())))
                    .await
                    .is_err()
                {
                    return false;
                }
                continue;
            }
        };
        if !send(item).await {
            return false;
        }
    }
    true
}
