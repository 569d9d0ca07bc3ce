//! The LDIF source: reads an export as a directory.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};

use async_trait::async_trait;
use futures::stream::BoxStream;
use idsync_core::dn::key as dn_key;
use idsync_core::{
    Cursor, DeltaItem, ExternalId, ObjectKind, ReadItem, Result, Scope, Source, SourceCapabilities, SourceObject,
};
use tokio::sync::mpsc;

use super::map::to_object;
use crate::config::LdifConfig;
use crate::error::FileError;
use crate::ldif::LdifReader;
use crate::stream::blocking_stream;

/// An LDIF export as a source. Reads stream; groups are held until the end
/// of the file so that member DNs can be turned into ids.
#[derive(Clone, Debug)]
pub struct LdifSource {
    config: LdifConfig,
}

impl LdifSource {
    /// A source over the configured file (nothing is read yet).
    pub fn new(config: LdifConfig) -> Self {
        LdifSource { config }
    }

    fn open(&self) -> std::result::Result<LdifReader<BufReader<File>>, FileError> {
        let file = File::open(&self.config.path).map_err(|e| FileError::Open {
            path: self.config.path.display().to_string(),
            source: e,
        })?;
        Ok(LdifReader::new(BufReader::with_capacity(1 << 16, file)))
    }
}

/// Reads every record of `reader`, passing on objects (groups last, their
/// member DNs turned into ids), one error per bad record, and the end.
/// Stops when `send` returns false (the stream was dropped).
pub(crate) fn read_records<R: BufRead>(
    config: &LdifConfig,
    reader: LdifReader<R>,
    scope: &Scope,
    mut send: impl FnMut(Result<ReadItem>) -> bool,
) {
    let mut ids: HashMap<String, ExternalId> = HashMap::new();
    let mut groups: Vec<(SourceObject, Vec<String>)> = Vec::new();
    let mut complete = true;
    for record in reader {
        let item = match record.and_then(|r| Ok((dn_key(&r.dn), to_object(config, &r)?))) {
            Ok((_, None)) => continue,
            Ok((key, Some((object, members)))) => {
                ids.insert(key, object.id.clone());
                if !scope.container_in_scope(&object.container) {
                    continue;
                }
                if object.kind == ObjectKind::Group {
                    groups.push((object, members));
                    continue;
                }
                Ok(ReadItem::Object(object))
            }
            Err(e) => {
                complete &= !matches!(e, FileError::Io { .. });
                Err(e.into_core("read"))
            }
        };
        if !send(item) {
            return;
        }
    }
    for (mut group, members) in groups {
        group.members = members.iter().filter_map(|dn| ids.get(&dn_key(dn)).cloned()).collect();
        if !send(Ok(ReadItem::Object(group))) {
            return;
        }
    }
    send(Ok(crate::stream::end(complete)));
}

#[async_trait]
impl Source for LdifSource {
    fn backend(&self) -> &'static str {
        crate::NAME
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::default()
            .with_delta(false)
            .with_read_one(true)
            .with_groups(true)
    }

    async fn read_full(&self, scope: &Scope) -> Result<BoxStream<'_, Result<ReadItem>>> {
        let reader = self.open().map_err(|e| e.into_core("read"))?;
        let config = self.config.clone();
        let scope = scope.clone();
        Ok(blocking_stream(move |tx: mpsc::Sender<Result<ReadItem>>| {
            read_records(&config, reader, &scope, |item| tx.blocking_send(item).is_ok());
        }))
    }

    async fn read_delta(&self, _scope: &Scope, _from: &Cursor) -> Result<BoxStream<'_, Result<DeltaItem>>> {
        Err(crate::stream::no_deltas())
    }

    /// Reads the file in full to find one object (files have no index).
    async fn read_one(&self, scope: &Scope, id: &ExternalId) -> Result<Option<SourceObject>> {
        crate::stream::find(self, scope, id).await
    }
}
