//! A simulated directory with a change log, so that deltas work.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use crate::error::{Error, ErrorKind, Result};
use crate::model::{ExternalId, SourceObject};
use crate::scope::Scope;
use crate::source::{Completeness, Cursor, DeltaItem, ReadItem, Source, SourceCapabilities};

const NAME: &str = "memory";

/// A directory in memory. Cheap to clone (clones share the directory).
///
/// Every change gets a sequence number; a cursor is
/// `"<instance id>:<sequence>"`, so a cursor from another instance, or one
/// older than [`MemorySource::compact`], asks for a full read.
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    instance: String,
    objects: BTreeMap<ExternalId, SourceObject>,
    /// Sequence number of each object's last change (deletes included).
    changed_at: BTreeMap<ExternalId, u64>,
    seq: u64,
    /// Changes before this sequence are forgotten.
    horizon: u64,
    /// Fault knob: a full read stops (no end) after this many objects.
    interrupt_after: Option<usize>,
    /// Fault knob: these objects cannot be read (an error names them).
    unreadable: BTreeSet<ExternalId>,
}

impl MemorySource {
    /// An empty directory.
    pub fn new() -> Self {
        let source = MemorySource::default();
        if let Ok(mut inner) = source.inner.lock() {
            inner.instance = uuid::Uuid::new_v4().simple().to_string();
        }
        source
    }

    /// A directory holding `objects`.
    pub fn with_objects(objects: impl IntoIterator<Item = SourceObject>) -> Self {
        let source = MemorySource::new();
        for o in objects {
            source.upsert(o);
        }
        source
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means a test panicked while holding it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds or replaces an object.
    pub fn upsert(&self, object: SourceObject) {
        let mut inner = self.lock();
        inner.seq += 1;
        let seq = inner.seq;
        inner.changed_at.insert(object.id.clone(), seq);
        inner.objects.insert(object.id.clone(), object);
    }

    /// Changes an object in place; false when it does not exist.
    pub fn modify(&self, id: &str, change: impl FnOnce(&mut SourceObject)) -> bool {
        let mut inner = self.lock();
        let id = ExternalId::from(id);
        let Some(mut object) = inner.objects.get(&id).cloned() else {
            return false;
        };
        change(&mut object);
        inner.seq += 1;
        let seq = inner.seq;
        inner.changed_at.insert(id.clone(), seq);
        inner.objects.insert(id, object);
        true
    }

    /// Deletes an object.
    pub fn delete(&self, id: &str) {
        let mut inner = self.lock();
        let id = ExternalId::from(id);
        if inner.objects.remove(&id).is_some() {
            inner.seq += 1;
            let seq = inner.seq;
            inner.changed_at.insert(id, seq);
        }
    }

    /// A copy of an object.
    pub fn get(&self, id: &str) -> Option<SourceObject> {
        self.lock().objects.get(&ExternalId::from(id)).cloned()
    }

    /// Forgets the change log: older cursors now ask for a full read.
    pub fn compact(&self) {
        let mut inner = self.lock();
        inner.horizon = inner.seq;
        let horizon = inner.horizon;
        inner.changed_at.retain(|_, s| *s > horizon);
    }

    /// Fault knob: full reads stop without an end after `n` objects (a
    /// connection lost mid-read), or read to the end with `None`.
    pub fn interrupt_after(&self, n: Option<usize>) {
        self.lock().interrupt_after = n;
    }

    /// Fault knob: reading this object fails with an error naming it.
    pub fn make_unreadable(&self, id: &str, unreadable: bool) {
        let mut inner = self.lock();
        let id = ExternalId::from(id);
        if unreadable {
            inner.unreadable.insert(id);
        } else {
            inner.unreadable.remove(&id);
        }
    }

    fn read(inner: &Inner, object: &SourceObject) -> Result<SourceObject> {
        if inner.unreadable.contains(&object.id) {
            return Err(Error::new(ErrorKind::InvalidData, "the entry cannot be decoded")
                .with_backend(NAME)
                .with_op("read")
                .with_object(&object.id)
                .with_field("attributes"));
        }
        Ok(object.clone())
    }
}

#[async_trait]
impl Source for MemorySource {
    fn backend(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::default()
            .with_delta(true)
            .with_read_one(true)
            .with_groups(true)
            // Members are named by id: moves and renames leave groups right.
            .with_stale_members(false)
    }

    async fn read_full(&self, scope: &Scope) -> Result<BoxStream<'_, Result<ReadItem>>> {
        let inner = self.lock();
        let mut items: Vec<Result<ReadItem>> = inner
            .objects
            .values()
            .filter(|o| scope.container_in_scope(&o.container))
            .map(|o| Self::read(&inner, o).map(ReadItem::Object))
            .collect();
        match inner.interrupt_after {
            Some(n) => items.truncate(n),
            None => items.push(Ok(ReadItem::End {
                completeness: Completeness::Complete,
                cursor: Some(Cursor(format!("{}:{}", inner.instance, inner.seq))),
            })),
        }
        Ok(stream::iter(items).boxed())
    }

    async fn read_delta(&self, scope: &Scope, from: &Cursor) -> Result<BoxStream<'_, Result<DeltaItem>>> {
        let inner = self.lock();
        let since = from
            .0
            .split_once(':')
            .filter(|(instance, _)| *instance == inner.instance)
            .and_then(|(_, seq)| seq.parse::<u64>().ok())
            .filter(|seq| *seq >= inner.horizon);
        let Some(since) = since else {
            let item = DeltaItem::ResyncRequired {
                reason: "the cursor is from another directory or too old".into(),
            };
            return Ok(stream::iter(vec![Ok(item)]).boxed());
        };
        let mut items: Vec<Result<DeltaItem>> = Vec::new();
        for (id, _) in inner.changed_at.iter().filter(|(_, s)| **s > since) {
            match inner.objects.get(id) {
                Some(o) if scope.container_in_scope(&o.container) => {
                    items.push(Self::read(&inner, o).map(DeltaItem::Changed))
                }
                // Moved out of the pushed-down scope: it looks deleted to this read.
                Some(_) | None => items.push(Ok(DeltaItem::Deleted(id.clone()))),
            }
        }
        items.push(Ok(DeltaItem::End {
            cursor: Cursor(format!("{}:{}", inner.instance, inner.seq)),
        }));
        Ok(stream::iter(items).boxed())
    }

    async fn read_one(&self, scope: &Scope, id: &ExternalId) -> Result<Option<SourceObject>> {
        let inner = self.lock();
        inner
            .objects
            .get(id)
            .filter(|o| scope.container_in_scope(&o.container))
            .map(|o| Self::read(&inner, o))
            .transpose()
    }
}
