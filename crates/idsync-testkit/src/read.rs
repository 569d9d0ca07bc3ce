//! A source's full read, collected for assertions.

use futures::StreamExt as _;
use idsync_core::{Completeness, ReadItem, Scope, Source, SourceObject};

/// What a full read gave.
#[derive(Debug)]
pub struct FullRead {
    /// The objects, in the order read.
    pub objects: Vec<SourceObject>,
    /// The errors of the objects that could not be read.
    pub errors: Vec<String>,
    /// The completeness of the End item; `None` when the stream stopped
    /// without one.
    pub end: Option<Completeness>,
}

impl FullRead {
    /// The objects' external ids.
    pub fn ids(&self) -> Vec<String> {
        self.objects.iter().map(|o| o.id.0.clone()).collect()
    }

    /// Whether the read ended Complete.
    pub fn complete(&self) -> bool {
        self.end.as_ref().is_some_and(Completeness::is_complete)
    }
}

/// Reads `source` in full with the default scope. Panics when the read
/// cannot start.
pub async fn full_read(source: &dyn Source) -> FullRead {
    let mut stream = source.read_full(&Scope::default()).await.expect("read_full starts");
    let mut read = FullRead {
        objects: Vec::new(),
        errors: Vec::new(),
        end: None,
    };
    while let Some(item) = stream.next().await {
        match item {
            Ok(ReadItem::Object(o)) => read.objects.push(o),
            Ok(ReadItem::End { completeness, .. }) => read.end = Some(completeness),
            Ok(other) => read
                .errors
                .push(format!("an item this helper does not know: {other:?}")),
            Err(e) => read.errors.push(e.to_string()),
        }
    }
    read
}
