//! Deltas from OpenLDAP with RFC 4533 syncrepl in refreshOnly mode.
//!
//! Changed entries arrive marked add or modify (upserted). Deletions
//! arrive as a set of deleted entryUUIDs when the server's session log
//! covers the cookie, or, after a restart or a long gap, as the set of
//! UUIDs still *present*: then the engine treats every linked id neither
//! present nor changed as gone. Both are handled.

use std::collections::HashMap;

use base64::Engine as _;
use idsync_core::{Cursor, DeltaItem, ExternalId, ObjectKind, Result};
use ldap3::controls::{EntryState, RefreshMode, SyncDone, SyncInfo, SyncRequest, SyncState};
use ldap3::{Ldap, SearchEntry};
use tokio::sync::mpsc;

use crate::config::LdapConfig;
use crate::error::LdapError;
use crate::map::to_object;
use crate::read::Listed;

const PREFIX: &str = "syncrepl:";
const SYNC_STATE_OID: &str = "1.3.6.1.4.1.4203.1.9.1.2";
const SYNC_DONE_OID: &str = "1.3.6.1.4.1.4203.1.9.1.3";
/// e-syncRefreshRequired: the cookie is too old, read in full.
const REFRESH_REQUIRED: u32 = 4096;

/// The cookie as a cursor.
pub(crate) fn cursor(cookie: &[u8]) -> Cursor {
    Cursor(format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(cookie)
    ))
}

/// The cookie in a cursor, `None` when the cursor is not ours.
pub(crate) fn cookie(cursor: &Cursor) -> Option<Vec<u8>> {
    let b64 = cursor.0.strip_prefix(PREFIX)?;
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// A 16-byte entryUUID as text.
fn uuid_text(bytes: &[u8]) -> Option<String> {
    if bytes.len() != 16 {
        return None;
    }
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// A refreshOnly search for what `listed` holds, with `cookie` (none for a
/// first cookie). Sends delta items when `tx` is given; returns the final
/// cookie, or `None` when the server asks for a full read.
pub(crate) async fn refresh(
    ldap: &mut Ldap,
    config: &LdapConfig,
    listed: &Listed,
    attrs: Vec<String>,
    cookie: Option<Vec<u8>>,
    tx: Option<&mpsc::Sender<Result<DeltaItem>>>,
) -> std::result::Result<Option<Vec<u8>>, LdapError> {
    let request = SyncRequest {
        mode: RefreshMode::RefreshOnly,
        cookie,
        reload_hint: false,
    };
    let mut stream = ldap
        .with_controls(request)
        .with_timeout(config.op_timeout())
        .streaming_search(&config.base_dn, ldap3::Scope::Subtree, &listed.filter, attrs)
        .await?;
    let mut last_cookie = None;
    let mut groups: Vec<(idsync_core::SourceObject, Vec<String>)> = Vec::new();
    let send = |item: DeltaItem| async move {
        if let Some(tx) = tx {
            let _ = tx.send(Ok(item)).await;
        }
    };
    while let Some(re) = stream.next().await? {
        if re.is_intermediate() {
            match ldap3::controls::parse_syncinfo(re) {
                SyncInfo::NewCookie(c) => last_cookie = Some(c),
                SyncInfo::RefreshDelete { cookie, .. } | SyncInfo::RefreshPresent { cookie, .. } => {
                    if cookie.is_some() {
                        last_cookie = cookie;
                    }
                }
                SyncInfo::SyncIdSet {
                    cookie,
                    refresh_deletes,
                    sync_uuids,
                } => {
                    if cookie.is_some() {
                        last_cookie = cookie;
                    }
                    for u in sync_uuids.iter().filter_map(|u| uuid_text(u)) {
                        send(if refresh_deletes {
                            DeltaItem::Deleted(ExternalId(u))
                        } else {
                            DeltaItem::Present(ExternalId(u))
                        })
                        .await;
                    }
                }
            }
            continue;
        }
        if re.is_ref() {
            continue;
        }
        let state =
            re.1.iter()
                .find(|c| c.1.ctype == SYNC_STATE_OID)
                .map(|c| c.1.parse::<SyncState>());
        let entry = SearchEntry::construct(re);
        let uuid = state.as_ref().and_then(|s| uuid_text(&s.entry_uuid));
        match state.map(|s| s.state) {
            Some(EntryState::Delete) => {
                if let Some(u) = uuid {
                    send(DeltaItem::Deleted(ExternalId(u))).await;
                }
            }
            Some(EntryState::Present) => {
                if let Some(u) = uuid {
                    send(DeltaItem::Present(ExternalId(u))).await;
                }
            }
            _ if tx.is_some() => match to_object(config, entry) {
                Ok((object, members)) if object.kind == ObjectKind::Group => groups.push((object, members)),
                Ok((object, _)) => send(DeltaItem::Changed(object)).await,
                Err(e) => {
                    if let Some(tx) = tx {
                        let _ = tx.send(Err(e.into_core("read_delta"))).await;
                    }
                }
            },
            _ => {}
        }
    }
    let result = stream.finish().await;
    if result.rc == REFRESH_REQUIRED {
        return Ok(None);
    }
    if result.rc != 0 {
        return Err(LdapError::Result {
            rc: result.rc,
            text: result.text,
            dn: config.base_dn.clone(),
        });
    }
    if let Some(done) = result.ctrls.iter().find(|c| c.1.ctype == SYNC_DONE_OID) {
        let done: SyncDone = done.1.parse();
        if done.cookie.is_some() {
            last_cookie = done.cookie;
        }
    }
    // Changed groups name members by DN: look each up for its id.
    let mut ids: HashMap<String, ExternalId> = HashMap::new();
    for (mut group, member_dns) in groups {
        group.members = crate::read::member_ids(ldap, config, listed, member_dns, &mut ids).await?;
        send(DeltaItem::Changed(group)).await;
    }
    Ok(Some(last_cookie.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let c = cursor(b"rid=000,csn=20261125");
        assert_eq!(cookie(&c).as_deref(), Some(&b"rid=000,csn=20261125"[..]));
        assert_eq!(cookie(&Cursor("dirsync:abc".into())), None);
        assert_eq!(
            uuid_text(&[0x11; 16]).as_deref(),
            Some("11111111-1111-1111-1111-111111111111")
        );
    }
}
