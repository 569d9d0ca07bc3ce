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
