//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): the
//! LDIF and CSV sources over bytes in memory. Not a stable API.

use idsync_core::{ReadItem, Result, Scope};

use crate::{CsvConfig, LdifConfig};

/// Everything an LDIF source reads from `bytes` (AD defaults when
/// `entry_uuid` is false, `entryUUID` ids otherwise).
pub fn ldif(bytes: &[u8], entry_uuid: bool) -> Vec<Result<ReadItem>> {
    let mut config = LdifConfig::new("fuzz.ldif");
    if entry_uuid {
        config.id_attribute = "entryUUID".into();
    }
    let mut out = Vec::new();
    let reader = crate::ldif::LdifReader::new(bytes);
    crate::ldif::source::read_records(&config, reader, &Scope::default(), |item| {
        out.push(item);
        true
    });
    out
}

/// Everything a CSV source with ids in `id` and the activity in `status`
/// reads from `bytes` (`;` delimited when `semicolon`).
pub fn csv(bytes: &[u8], semicolon: bool) -> Vec<Result<ReadItem>> {
    let mut config = CsvConfig::new("fuzz.csv", "id");
    config.enabled_column = Some("status".into());
    if semicolon {
        config.delimiter = ';';
    }
    let mut out = Vec::new();
    let headers = crate::csv::source::builder(&config).and_then(|b| {
        let mut reader = b.from_reader(crate::csv::source::Quotes::new(bytes));
        crate::csv::source::headers(&config, &mut reader).map(|h| (reader, h))
    });
    match headers {
        Ok((reader, headers)) => crate::csv::source::read_rows(&config, &headers, reader, &Scope::default(), |item| {
            out.push(item);
            true
        }),
        Err(e) => out.push(Err(e.into_core("read"))),
    }
    out
}
