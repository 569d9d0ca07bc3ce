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

/// A file has no index: one object is found by reading the file. Not
/// found is `Ok(None)` (the object is gone: a just-in-time sync
/// deprovisions it) only when every record read and the file was read to
/// its end; otherwise the object may be a record that could not be read
/// (a bad status, bad UTF-8), and the answer is an error naming the first.
pub(crate) async fn find(
    source: &dyn idsync_core::Source,
    scope: &idsync_core::Scope,
    id: &idsync_core::ExternalId,
) -> idsync_core::Result<Option<idsync_core::SourceObject>> {
    let mut stream = source.read_full(scope).await?;
    let (mut unread, mut first, mut complete) = (0, None, false);
    while let Some(item) = stream.next().await {
        match item {
            Ok(idsync_core::ReadItem::Object(o)) if &o.id == id => return Ok(Some(o)),
            Ok(idsync_core::ReadItem::End { completeness, .. }) => complete = completeness.is_complete(),
            Ok(_) => {}
            Err(e) => {
                unread += 1;
                first.get_or_insert(e);
            }
        }
    }
    let (kind, reason) = match first {
        Some(e) => (
            idsync_core::ErrorKind::InvalidData,
            format!("{unread} record(s) could not be read and it may be one of them; the first: {e}"),
        ),
        None if complete => return Ok(None),
        None => (
            idsync_core::ErrorKind::Unavailable,
            "the file could not be read to its end".to_owned(),
        ),
    };
    Err(idsync_core::Error::new(kind, format!("not found, but {reason}"))
        .with_backend(crate::NAME)
        .with_op("read_one")
        .with_object(id))
}

/// The answer of a file source asked for a delta.
pub(crate) fn no_deltas() -> idsync_core::Error {
    idsync_core::Error::new(
        idsync_core::ErrorKind::Unsupported,
        "a file has no deltas: each run reads it in full",
    )
    .with_backend(crate::NAME)
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
