//! CSV rows -> source objects.

use idsync_core::{AttrValue, ObjectKind, SourceObject};

use crate::config::CsvConfig;
use crate::error::FileError;

/// One row as a user: every non-empty cell an attribute named by its
/// header, the id, container and enabled flag from their columns. A row
/// that cannot be read is an error naming its line, id and column.
pub(crate) fn to_object(
    config: &CsvConfig,
    headers: &[String],
    row: &csv::ByteRecord,
) -> std::result::Result<SourceObject, FileError> {
    let line = row.position().map(|p| p.line()).unwrap_or(0);
    // The id first, so that every other error names the object.
    let id = headers
        .iter()
        .position(|h| h == &config.id_column)
        .and_then(|i| row.get(i))
        .and_then(|cell| std::str::from_utf8(cell).ok())
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= crate::MAX_VALUE_BYTES)
        .map(str::to_owned);
    let err = |column: &str, message: String| FileError::Csv {
        line,
        id: id.clone(),
        column: Some(column.to_owned()),
        message,
    };
    if row.len() != headers.len() {
        return Err(FileError::Csv {
            line,
            id,
            column: None,
            message: format!("{} fields where the header has {}", row.len(), headers.len()),
        });
    }
    let mut object = SourceObject::new(id.clone().unwrap_or_default(), ObjectKind::User);
    for (header, cell) in headers.iter().zip(row.iter()) {
        if cell.len() > crate::MAX_VALUE_BYTES {
            return Err(err(
                header,
                format!(
                    "the value ({} bytes) is over the limit of {} bytes per value",
                    cell.len(),
                    crate::MAX_VALUE_BYTES
                ),
            ));
        }
        let value = std::str::from_utf8(cell)
            .map_err(|_| err(header, "not valid UTF-8".into()))?
            .trim();
        if header == &config.id_column && value.is_empty() {
            return Err(err(header, "the id is empty".into()));
        }
        if config.enabled_column.as_ref() == Some(header) && !value.is_empty() {
            object.enabled = active(config, value).ok_or_else(|| {
                err(
                    header,
                    format!(
                        "{value:?} is neither an active value ({}) nor an inactive one ({})",
                        config.active_values.join(", "),
                        config.inactive_values.join(", ")
                    ),
                )
            })?;
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

/// Whether a non-empty `enabled_column` value means active: `Some(false)`
/// for an inactive value, `Some(true)` for an active one, `None` for any
/// other (case-insensitive; a value in both lists is inactive).
fn active(config: &CsvConfig, value: &str) -> Option<bool> {
    let is = |list: &[String]| list.iter().any(|v| v.eq_ignore_ascii_case(value));
    if is(&config.inactive_values) {
        Some(false)
    } else if is(&config.active_values) {
        Some(true)
    } else {
        None
    }
}
