//! The LDIF source: reads an export as a directory.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};

use async_trait::async_trait;
use futures::stream::BoxStream;
use idsync_core::dn::{key as dn_key, parent};
use idsync_core::{
    AttrValue, Cursor, DeltaItem, ExternalId, ObjectKind, ReadItem, Result, Scope, Source, SourceCapabilities,
    SourceObject,
};
use tokio::sync::mpsc;

use crate::config::LdifConfig;
use crate::error::FileError;
use crate::ldif::{LdifReader, Record};
use crate::stream::blocking_stream;

/// Attributes that are binary in AD exports, whatever their bytes.
const BINARY: [&str; 4] = ["objectguid", "objectsid", "sidhistory", "thumbnailphoto"];

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

/// Turns a record into an object; `Ok(None)` for entries that are neither
/// users nor groups (OUs, containers, computers).
fn to_object(config: &LdifConfig, r: &Record) -> std::result::Result<Option<(SourceObject, Vec<String>)>, FileError> {
    let classes: Vec<String> = r
        .values("objectClass")
        .map(|v| String::from_utf8_lossy(v).to_lowercase())
        .collect();
    let has = |list: &[String]| list.iter().any(|c| classes.contains(&c.to_lowercase()));
    if has(&config.exclude_classes) {
        return Ok(None);
    }
    let kind = if has(&config.group_classes) {
        ObjectKind::Group
    } else if has(&config.user_classes) {
        ObjectKind::User
    } else {
        return Ok(None);
    };
    let bad = |field: &str, message: String| FileError::Ldif {
        line: r.line,
        dn: Some(r.dn.clone()),
        field: Some(field.to_owned()),
        message,
    };
    let raw_id = r.values(&config.id_attribute).next().ok_or_else(|| {
        bad(
            &config.id_attribute,
            "missing: every user and group needs its id".into(),
        )
    })?;
    let id = if config.id_attribute.eq_ignore_ascii_case("objectGUID") {
        idsync_core::ad::guid_to_string(raw_id)
            .ok_or_else(|| bad("objectGUID", format!("{} bytes, expected 16", raw_id.len())))?
    } else {
        String::from_utf8(raw_id.to_vec()).map_err(|_| bad(&config.id_attribute, "not valid UTF-8".into()))?
    };
    if id.trim().is_empty() {
        return Err(bad(
            &config.id_attribute,
            "empty: every user and group needs its id".into(),
        ));
    }
    let mut object = SourceObject::new(id, kind).in_container(parent(&r.dn));
    object
        .attributes
        .insert("dn".into(), vec![AttrValue::Text(r.dn.clone())]);
    let mut members = Vec::new();
    for (name, value) in &r.attributes {
        let base = name.split(';').next().unwrap_or(name);
        let lower = base.to_lowercase();
        let v = if BINARY.contains(&lower.as_str()) {
            AttrValue::Binary(value.clone())
        } else {
            match String::from_utf8(value.clone()) {
                Ok(s) => AttrValue::Text(s),
                Err(e) => AttrValue::Binary(e.into_bytes()),
            }
        };
        if kind == ObjectKind::Group && config.member_attributes.iter().any(|m| m.eq_ignore_ascii_case(base)) {
            if let AttrValue::Text(dn) = &v {
                members.push(dn.clone());
            }
            continue;
        }
        if lower == "objectsid" || lower == "sidhistory" {
            let sid = idsync_core::ad::sid_to_string(value).ok_or_else(|| bad(base, "not a valid SID".into()))?;
            object.aliases.push(ExternalId(sid));
        }
        if lower == "useraccountcontrol" {
            let uac: u32 = v
                .as_text()
                .and_then(|t| t.trim().parse().ok())
                .ok_or_else(|| bad(base, "not a number".into()))?;
            object.enabled = uac & 0x2 == 0;
        }
        object.attributes.entry(name.clone()).or_default().push(v);
    }
    Ok(Some((object, members)))
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
