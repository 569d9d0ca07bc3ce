//! The CSV source: an HR feed where each row is a person.

use std::fs::File;
use std::io::Read;

use async_trait::async_trait;
use futures::stream::BoxStream;
use idsync_core::{Cursor, DeltaItem, ExternalId, ReadItem, Result, Scope, Source, SourceCapabilities, SourceObject};
use tokio::sync::mpsc;

use super::map::to_object;
use crate::config::CsvConfig;
use crate::error::FileError;
use crate::stream::blocking_stream;

/// A CSV file as a source of users. Every column becomes an attribute named
/// by the header; empty cells are left out.
#[derive(Clone, Debug)]
pub struct CsvSource {
    config: CsvConfig,
}

impl CsvSource {
    /// A source over the configured file (nothing is read yet).
    pub fn new(config: CsvConfig) -> Self {
        CsvSource { config }
    }

    fn open(&self) -> std::result::Result<(csv::Reader<Quotes<File>>, Vec<String>), FileError> {
        let path = self.config.path.display().to_string();
        let builder = builder(&self.config)?;
        let file = File::open(&self.config.path).map_err(|e| FileError::Open { path, source: e })?;
        let mut reader = builder.from_reader(Quotes::new(file));
        let headers = headers(&self.config, &mut reader)?;
        Ok((reader, headers))
    }
}

/// A CSV reader builder for the configuration (delimiter, strict row lengths).
pub(crate) fn builder(config: &CsvConfig) -> std::result::Result<csv::ReaderBuilder, FileError> {
    let delimiter = u8::try_from(config.delimiter).map_err(|_| FileError::Csv {
        line: 0,
        id: None,
        column: None,
        message: format!("the delimiter {:?} is not one byte", config.delimiter),
    })?;
    let mut builder = csv::ReaderBuilder::new();
    // Row lengths are checked by `to_object`, which can name the row's id.
    builder.delimiter(delimiter).flexible(true);
    Ok(builder)
}

/// The header, checked: UTF-8, and holding every configured column.
pub(crate) fn headers<R: Read>(
    config: &CsvConfig,
    reader: &mut csv::Reader<R>,
) -> std::result::Result<Vec<String>, FileError> {
    let headers = reader.byte_headers().map_err(|e| csv_error(&e, None))?;
    let headers: Vec<String> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            String::from_utf8(h.to_vec())
                .map(|h| h.trim().trim_start_matches('\u{feff}').to_owned())
                .map_err(|_| FileError::Csv {
                    line: 1,
                    id: None,
                    column: Some(format!("#{}", i + 1)),
                    message: "the header is not valid UTF-8".into(),
                })
        })
        .collect::<std::result::Result<_, _>>()?;
    for wanted in [
        Some(&config.id_column),
        config.enabled_column.as_ref(),
        config.container_column.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        if !headers.contains(wanted) {
            return Err(FileError::Csv {
                line: 1,
                id: None,
                column: Some(wanted.clone()),
                message: format!("the header has no such column; it has {}", headers.join(", ")),
            });
        }
    }
    Ok(headers)
}

fn csv_error(e: &csv::Error, column: Option<String>) -> FileError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("{len} fields where the header has {expected_len}")
        }
        _ => e.to_string(),
    };
    FileError::Csv {
        line,
        id: None,
        column,
        message,
    }
}

/// A reader that counts the `"` it passes: an odd count at the end means
/// a quoted value never closed, and the csv crate then reads the rest of
/// the file into that value.
#[derive(Debug)]
pub(crate) struct Quotes<R> {
    inner: R,
    count: u64,
}

impl<R> Quotes<R> {
    pub(crate) fn new(inner: R) -> Self {
        Quotes { inner, count: 0 }
    }
}

impl<R: Read> Read for Quotes<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += buf[..n].iter().filter(|b| **b == b'"').count() as u64;
        Ok(n)
    }
}

/// A row read but not yet sent.
struct Held {
    item: Result<ReadItem>,
    line: u64,
    id: Option<String>,
    /// A value of the row spans lines.
    multiline: bool,
}

/// Reads every row of `reader` (its header already read), passing on one
/// object or one error per row, then the end. A row whose id was seen
/// before is an error, and only the first row with an id becomes an object.
/// A quote never closed swallows the rest of the file into the last row:
/// that row is an error instead and the read is not complete. Stops when
/// `send` returns false (the stream was dropped).
pub(crate) fn read_rows<R: Read>(
    config: &CsvConfig,
    headers: &[String],
    mut reader: csv::Reader<Quotes<R>>,
    scope: &Scope,
    mut send: impl FnMut(Result<ReadItem>) -> bool,
) {
    let mut seen = std::collections::HashMap::new();
    let mut row = csv::ByteRecord::new();
    let mut complete = true;
    // Each row is sent when the next one is read: the last row must wait
    // for the end of the file, to know whether a quote swallowed the rest.
    let mut held: Option<Held> = None;
    loop {
        let line = |row: &csv::ByteRecord| row.position().map(|p| p.line()).unwrap_or(0);
        // The row's id, when it could be read: named if a quote swallowed the rest.
        let mut id = None;
        let item = match reader.read_byte_record(&mut row) {
            Ok(false) => break,
            Ok(true) => match to_object(config, headers, &row) {
                Ok(o) => match seen.get(&o.id) {
                    Some(first) => Err(FileError::Csv {
                        line: line(&row),
                        id: Some(o.id.0.clone()),
                        column: Some(config.id_column.clone()),
                        message: format!("the id is already on line {first}; this row is skipped"),
                    }
                    .into_core("read")),
                    None => {
                        seen.insert(o.id.clone(), line(&row));
                        if !scope.container_in_scope(&o.container) {
                            continue;
                        }
                        id = Some(o.id.0.clone());
                        Ok(ReadItem::Object(o))
                    }
                },
                Err(e) => {
                    if let FileError::Csv { id: Some(i), .. } = &e {
                        id = Some(i.clone());
                    }
                    Err(e.into_core("read"))
                }
            },
            Err(e) if e.is_io_error() => {
                complete = false;
                Err(csv_error(&e, None).into_core("read"))
            }
            Err(e) => Err(csv_error(&e, None).into_core("read")),
        };
        let multiline = row.iter().any(|cell| cell.contains(&b'\n'));
        if let Some(previous) = held.replace(Held {
            item,
            line: line(&row),
            id,
            multiline,
        }) && !send(previous.item)
        {
            return;
        }
        if !complete {
            break;
        }
    }
    // An odd number of quotes and a last row spanning lines: a quote in it
    // was never closed. (A stray quote inside an unquoted value also makes
    // the count odd, but swallows nothing.)
    if let Some(last) = held.as_mut()
        && complete
        && last.multiline
        && reader.get_ref().count % 2 == 1
    {
        complete = false;
        last.item = Err(FileError::Csv {
            line: last.line,
            id: last.id.clone(),
            column: None,
            message: "a '\"' in this row is never closed: the rest of the file reads as one value, so this row and any after it are not read".into(),
        }
        .into_core("read"));
    }
    if let Some(last) = held
        && !send(last.item)
    {
        return;
    }
    send(Ok(crate::stream::end(complete)));
}

#[async_trait]
impl Source for CsvSource {
    fn backend(&self) -> &'static str {
        crate::NAME
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::default()
            .with_delta(false)
            .with_read_one(true)
            .with_groups(false)
    }

    async fn read_full(&self, scope: &Scope) -> Result<BoxStream<'_, Result<ReadItem>>> {
        let (reader, headers) = self.open().map_err(|e| e.into_core("read"))?;
        let config = self.config.clone();
        let scope = scope.clone();
        Ok(blocking_stream(move |tx: mpsc::Sender<Result<ReadItem>>| {
            read_rows(&config, &headers, reader, &scope, |item| tx.blocking_send(item).is_ok());
        }))
    }

    async fn read_delta(&self, _scope: &Scope, _from: &Cursor) -> Result<BoxStream<'_, Result<DeltaItem>>> {
        Err(crate::stream::no_deltas())
    }

    /// Reads the file to find one row (files have no index).
    async fn read_one(&self, scope: &Scope, id: &ExternalId) -> Result<Option<SourceObject>> {
        crate::stream::find(self, scope, id).await
    }
}
