//! The CSV source: an HR feed where each row is a person.

use std::fs::File;

use async_trait::async_trait;
use futures::stream::BoxStream;
use idsync_core::{
    AttrValue, Cursor, DeltaItem, Error, ExternalId, ObjectKind, ReadItem, Result, Scope, Source, SourceCapabilities,
    SourceObject,
};
use tokio::sync::mpsc;

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

    fn open(&self) -> std::result::Result<(csv::Reader<File>, Vec<String>), FileError> {
        let path = self.config.path.display().to_string();
        let delimiter = u8::try_from(self.config.delimiter).map_err(|_| FileError::Csv {
            line: 0,
            column: None,
            message: format!("the delimiter {:?} is not one byte", self.config.delimiter),
        })?;
        let file = File::open(&self.config.path).map_err(|e| FileError::Open { path, source: e })?;
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(false)
            .from_reader(file);
        let headers = reader.byte_headers().map_err(|e| csv_error(&e, None))?;
        let headers: Vec<String> = headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                String::from_utf8(h.to_vec())
                    .map(|h| h.trim().trim_start_matches('\u{feff}').to_owned())
                    .map_err(|_| FileError::Csv {
                        line: 1,
                        column: Some(format!("#{}", i + 1)),
                        message: "the header is not valid UTF-8".into(),
                    })
            })
            .collect::<std::result::Result<_, _>>()?;
        for wanted in [
            Some(&self.config.id_column),
            self.config.enabled_column.as_ref(),
            self.config.container_column.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            if !headers.contains(wanted) {
                return Err(FileError::Csv {
                    line: 1,
                    column: Some(wanted.clone()),
                    message: format!("the header has no such column; it has {}", headers.join(", ")),
                });
            }
        }
        Ok((reader, headers))
    }
}

fn csv_error(e: &csv::Error, column: Option<String>) -> FileError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("{len} fields where the header has {expected_len}")
        }
        _ => e.to_string(),
    };
    FileError::Csv { line, column, message }
}

fn to_object(
    config: &CsvConfig,
    headers: &[String],
    row: &csv::ByteRecord,
) -> std::result::Result<SourceObject, FileError> {
    let line = row.position().map(|p| p.line()).unwrap_or(0);
    let mut object = SourceObject::new(String::new(), ObjectKind::User);
    for (header, cell) in headers.iter().zip(row.iter()) {
        let value = std::str::from_utf8(cell)
            .map_err(|_| FileError::Csv {
                line,
                column: Some(header.clone()),
                message: "not valid UTF-8".into(),
            })?
            .trim();
        if header == &config.id_column {
            if value.is_empty() {
                return Err(FileError::Csv {
                    line,
                    column: Some(header.clone()),
                    message: "the id is empty".into(),
                });
            }
            object.id = ExternalId(value.to_owned());
        }
        if config.enabled_column.as_ref() == Some(header) {
            object.enabled = !config.inactive_values.iter().any(|v| v.eq_ignore_ascii_case(value));
        }
        if config.container_column.as_ref() == Some(header) {
            object.container = value.to_owned();
        }
        if !value.is_empty() {
            object
                .attributes
                .insert(header.clone(), vec![AttrValue::Text(value.to_owned())]);
        }
    }
    Ok(object)
}

#[async_trait]
impl Source for CsvSource {
    fn backend(&self) -> &'static str {
        crate::NAME
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities {
            delta: false,
            read_one: true,
            groups: false,
        }
    }

    async fn read_full(&self, scope: &Scope) -> Result<BoxStream<'_, Result<ReadItem>>> {
        let (mut reader, headers) = self.open().map_err(Error::from)?;
        let config = self.config.clone();
        let scope = scope.clone();
        Ok(blocking_stream(move |tx: mpsc::Sender<Result<ReadItem>>| {
            let mut seen = std::collections::HashMap::new();
            let mut row = csv::ByteRecord::new();
            let mut complete = true;
            loop {
                let item = match reader.read_byte_record(&mut row) {
                    Ok(false) => break,
                    Ok(true) => match to_object(&config, &headers, &row) {
                        Ok(o) if !scope.container_in_scope(&o.container) => continue,
                        Ok(o) => {
                            let line = row.position().map(|p| p.line()).unwrap_or(0);
                            match seen.insert(o.id.clone(), line) {
                                Some(first) => Err(FileError::Csv {
                                    line,
                                    column: Some(config.id_column.clone()),
                                    message: format!("id {:?} is already on line {first}; this row is skipped", o.id.0),
                                }
                                .into()),
                                None => Ok(ReadItem::Object(o)),
                            }
                        }
                        Err(e) => Err(e.into()),
                    },
                    Err(e) if e.is_io_error() => {
                        complete = false;
                        let _ = tx.blocking_send(Err(csv_error(&e, None).into()));
                        break;
                    }
                    Err(e) => Err(csv_error(&e, None).into()),
                };
                if tx.blocking_send(item).is_err() {
                    return;
                }
            }
            let _ = tx.blocking_send(Ok(crate::stream::end(complete)));
        }))
    }

    async fn read_delta(&self, _scope: &Scope, _from: &Cursor) -> Result<BoxStream<'_, Result<DeltaItem>>> {
        Err(crate::stream::no_deltas())
    }

    /// Reads the file to find one row (files have no index).
    async fn read_one(&self, id: &ExternalId) -> Result<Option<SourceObject>> {
        crate::stream::find(self, id).await
    }
}
