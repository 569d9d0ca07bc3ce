//! Runs a blocking file reader on a blocking thread and streams its items.

use futures::stream::{BoxStream, StreamExt};
use tokio::sync::mpsc;

/// Items sent at once between the reading thread and the stream.
const BUFFER: usize = 1024;

/// A stream of what `produce` sends, `produce` running on tokio's blocking
/// pool. Dropping the stream stops the reader at its next send.
pub(crate) fn blocking_stream<T: Send + 'static>(
    produce: impl FnOnce(mpsc::Sender<T>) + Send + 'static,
) -> BoxStream<'static, T> {
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::task::spawn_blocking(move || produce(tx));
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).boxed()
}

/// A file has no index: one object is found by reading the file.
pub(crate) async fn find(
    source: &dyn idsync_core::Source,
    scope: &idsync_core::Scope,
    id: &idsync_core::ExternalId,
) -> idsync_core::Result<Option<idsync_core::SourceObject>> {
    let mut stream = source.read_full(scope).await?;
    while let Some(item) = stream.next().await {
        if let Ok(idsync_core::ReadItem::Object(o)) = item
            && &o.id == id
        {
            return Ok(Some(o));
        }
    }
    Ok(None)
}

/// The answer of a file source asked for a delta.
pub(crate) fn no_deltas() -> idsync_core::Error {
    idsync_core::Error::new(
        idsync_core::ErrorKind::Unsupported,
        "a file has no deltas: each run reads it in full",
    )
    .backend(crate::NAME)
}

/// The last item of a file read: Complete only when the file was read to its end.
pub(crate) fn end(read_to_the_end: bool) -> idsync_core::ReadItem {
    let completeness = if read_to_the_end {
        idsync_core::Completeness::Complete
    } else {
        idsync_core::Completeness::Partial {
            reason: "the file could not be read to its end".into(),
        }
    };
    idsync_core::ReadItem::End {
        completeness,
        cursor: None,
    }
}
