//! Deltas from Active Directory: DirSync where the account holds the
//! "Replicating Directory Changes" right, uSNChanged with the show-deleted
//! control where it does not.
//!
//! Both name what changed; each changed object is then read whole by
//! `<GUID=…>` with the profile's filter (the core's delta items carry whole
//! objects), which also tells whether it is still in scope: one that no
//! longer matches is reported deleted. Tombstones are reported deleted;
//! with uSNChanged, whose tombstones an account without the right to read
//! them never sees, the ids still in scope are listed as well (the present
//! set), so no deletion is missed.
//!
//! The cursor names the domain controller (its invocationId) and when it
//! was taken. A cursor from another DC, one older than the tombstone
//! lifetime (deletions may have been purged since) or one the server
//! refuses asks for a full read.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use idsync_core::{Cursor, DeltaItem, Result};
use ldap3::controls::RawControl;
use ldap3::{Ldap, SearchEntry};
use tokio::sync::mpsc;

use crate::config::{AdDelta, LdapConfig};
use crate::delta::changes::{self, Changes, Outcome, ids};
use crate::error::LdapError;
use crate::map::{id_of, raw, text};
use crate::read::Listed;

const PREFIX: &str = "ad:";
/// LDAP_SERVER_SHOW_DELETED_OID: tombstones are returned.
const SHOW_DELETED_OID: &str = "1.2.840.113556.1.4.417";
/// A filter no entry matches: DirSync then returns only a fresh cookie.
const NOTHING: &str = "(objectGUID=\\00)";
/// AD's tombstone lifetime when the forest does not set one.
const DEFAULT_TOMBSTONE_DAYS: u64 = 180;

/// Where in the DC's changes a cursor stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Position {
    /// A DirSync cookie.
    DirSync(Vec<u8>),
    /// The highest committed USN seen.
    Usn(u64),
}

/// An AD cursor: which DC, when, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AdCursor {
    invocation: String,
    taken: u64,
    position: Position,
}

impl AdCursor {
    /// As text: `ad:dirsync:<invocationId>:<unix time>:<base64 cookie>` or
    /// `ad:usn:<invocationId>:<unix time>:<usn>`.
    pub(crate) fn to_cursor(&self) -> Cursor {
        let (mode, at) = match &self.position {
            Position::DirSync(c) => ("dirsync", base64::engine::general_purpose::STANDARD.encode(c)),
            Position::Usn(u) => ("usn", u.to_string()),
        };
        Cursor(format!("{PREFIX}{mode}:{}:{}:{at}", self.invocation, self.taken))
    }

    /// The cursor, `None` when it is not an AD cursor.
    pub(crate) fn parse(cursor: &Cursor) -> Option<Self> {
        let mut parts = cursor.0.strip_prefix(PREFIX)?.splitn(4, ':');
        let (mode, invocation, taken, at) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let position = match mode {
            "dirsync" => Position::DirSync(base64::engine::general_purpose::STANDARD.decode(at).ok()?),
            "usn" => Position::Usn(at.parse().ok()?),
            _ => return None,
        };
        Some(AdCursor {
            invocation: invocation.to_owned(),
            taken: taken.parse().ok()?,
            position,
        })
    }
}

/// What the DC says about itself.
struct Dc {
    naming_context: String,
    invocation: String,
    highest_usn: u64,
    tombstone_days: u64,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

async fn base_entry(
    ldap: &mut Ldap,
    timeout: Duration,
    dn: &str,
    attrs: Vec<&str>,
) -> std::result::Result<SearchEntry, LdapError> {
    let (entries, _) = ldap
        .with_timeout(timeout)
        .search(dn, ldap3::Scope::Base, "(objectClass=*)", attrs)
        .await?
        .success()?;
    entries
        .into_iter()
        .next()
        .map(SearchEntry::construct)
        .ok_or_else(|| LdapError::Result {
            rc: 32,
            text: "not found".into(),
            dn: dn.to_owned(),
        })
}

/// Reads the rootDSE, the DC's invocationId and the tombstone lifetime.
async fn dc(ldap: &mut Ldap, timeout: Duration) -> std::result::Result<Dc, LdapError> {
    let attrs = vec![
        "defaultNamingContext",
        "configurationNamingContext",
        "dsServiceName",
        "highestCommittedUSN",
    ];
    let root = base_entry(ldap, timeout, "", attrs).await?;
    let missing = |attribute: &str| LdapError::BadId {
        dn: "rootDSE".into(),
        attribute: attribute.to_owned(),
    };
    let naming_context = text(&root, "defaultNamingContext").ok_or_else(|| missing("defaultNamingContext"))?;
    let service = text(&root, "dsServiceName").ok_or_else(|| missing("dsServiceName"))?;
    let highest_usn = text(&root, "highestCommittedUSN")
        .and_then(|u| u.parse().ok())
        .ok_or_else(|| missing("highestCommittedUSN"))?;
    let ntds = base_entry(ldap, timeout, service, vec!["invocationId"]).await?;
    let invocation = raw(&ntds, "invocationId")
        .first()
        .and_then(|b| idsync_core::ad::guid_to_string(b))
        .ok_or_else(|| LdapError::BadId {
            dn: service.to_owned(),
            attribute: "invocationId".into(),
        })?;
    let tombstone_days = match text(&root, "configurationNamingContext") {
        Some(config) => {
            let dn = format!("CN=Directory Service,CN=Windows NT,CN=Services,{config}");
            base_entry(ldap, timeout, &dn, vec!["tombstoneLifetime"])
                .await
                .ok()
                .and_then(|e| text(&e, "tombstoneLifetime").and_then(|t| t.parse().ok()))
                .unwrap_or(DEFAULT_TOMBSTONE_DAYS)
        }
        None => DEFAULT_TOMBSTONE_DAYS,
    };
    Ok(Dc {
        naming_context: naming_context.to_owned(),
        invocation,
        highest_usn,
        tombstone_days,
    })
}

/// One DirSync search to its end (the server says when more waits): the
/// entries and the last cookie.
async fn dirsync(
    ldap: &mut Ldap,
    timeout: Duration,
    naming_context: &str,
    filter: &str,
    attrs: &[String],
    mut cookie: Vec<u8>,
) -> std::result::Result<(Vec<SearchEntry>, Vec<u8>), LdapError> {
    let mut all = Vec::new();
    loop {
        let (entries, result) = ldap
            .with_controls(crate::delta::dirsync::request(&cookie))
            .with_timeout(timeout)
            .search(naming_context, ldap3::Scope::Subtree, filter, attrs.to_vec())
            .await?
            .success()?;
        all.extend(entries.into_iter().filter(|e| !e.is_ref()).map(SearchEntry::construct));
        let response = result
            .ctrls
            .iter()
            .find(|c| c.1.ctype == crate::delta::dirsync::OID)
            .and_then(|c| c.1.val.as_deref())
            .and_then(crate::delta::dirsync::response);
        let Some((more, next)) = response else {
            return Err(LdapError::Result {
                rc: 2,
                text: "the DirSync response control is missing or malformed".into(),
                dn: naming_context.to_owned(),
            });
        };
        cookie = next;
        if !more {
            return Ok((all, cookie));
        }
    }
}

/// Whether a DirSync failure means "not allowed or not offered here".
fn refused(e: &LdapError) -> bool {
    let rc = match e {
        LdapError::Result { rc, .. } => *rc,
        LdapError::Client(ldap3::LdapError::LdapResult { result }) => result.rc,
        _ => return false,
    };
    // insufficientAccessRights, unavailableCriticalExtension, unwillingToPerform
    matches!(rc, 50 | 12 | 53)
}

/// The cursor to take before a full read, so that changes made during it
/// are seen again by the next delta.
pub(crate) async fn start(ldap: &mut Ldap, config: &LdapConfig) -> std::result::Result<AdCursor, LdapError> {
    let dc = dc(ldap, config.op_timeout()).await?;
    let usn = Position::Usn(dc.highest_usn);
    let position = match config.ad_delta {
        AdDelta::Usn => usn,
        AdDelta::DirSync | AdDelta::Auto => {
            let guid = ["objectGUID".to_owned()];
            match dirsync(
                ldap,
                config.op_timeout(),
                &dc.naming_context,
                NOTHING,
                &guid,
                Vec::new(),
            )
            .await
            {
                Ok((_, cookie)) => Position::DirSync(cookie),
                Err(e) if config.ad_delta == AdDelta::Auto && refused(&e) => {
                    tracing::info!(error = %e, "DirSync refused: deltas by uSNChanged");
                    usn
                }
                Err(e) => return Err(e),
            }
        }
    };
    Ok(AdCursor {
        invocation: dc.invocation,
        taken: now(),
        position,
    })
}

async fn dirsync_changes(
    ldap: &mut Ldap,
    config: &LdapConfig,
    dc: &Dc,
    attrs: &[String],
    cookie: Vec<u8>,
) -> std::result::Result<(Changes, Vec<u8>), LdapError> {
    // Loose on purpose: a change that takes an object out of the profile's
    // filter must be seen; the object is read again with that filter.
    let filter = format!("(|{}{}(isDeleted=TRUE))", config.users(), config.groups());
    let mut attrs = attrs.to_vec();
    attrs.extend(["isDeleted".to_owned(), "name".to_owned()]);
    let (entries, cookie) = dirsync(ldap, config.op_timeout(), &dc.naming_context, &filter, &attrs, cookie).await?;
    let mut changes = Changes::default();
    for e in entries {
        let id = id_of(config, &e)?;
        if text(&e, "isDeleted").is_some_and(|v| v.eq_ignore_ascii_case("TRUE")) {
            changes.deleted.push(id);
        } else {
            changes.changed.push(id);
        }
    }
    Ok((changes, cookie))
}

/// Changes by uSNChanged. Tombstones are read with the show-deleted
/// control where the account may; as an account without that right sees
/// none, the ids still in scope are listed too (the present set), so a
/// deletion is never missed.
async fn usn_changes(
    ldap: &mut Ldap,
    config: &LdapConfig,
    dc: &Dc,
    usn: u64,
    scope_filter: &str,
) -> std::result::Result<Changes, LdapError> {
    let next = usn.saturating_add(1);
    let filter = format!("(&(uSNChanged>={next})(|{}{}))", config.users(), config.groups());
    let changed = ids(ldap, &config.base_dn, &filter, None, config).await?;
    let show_deleted = RawControl {
        ctype: SHOW_DELETED_OID.to_owned(),
        crit: true,
        val: None,
    };
    let filter = format!("(&(isDeleted=TRUE)(uSNChanged>={next}))");
    let deleted = ids(ldap, &dc.naming_context, &filter, Some(show_deleted), config).await?;
    let present = Some(ids(ldap, &config.base_dn, scope_filter, None, config).await?);
    Ok(Changes {
        changed,
        deleted,
        present,
    })
}

/// Reads the changes since `from` and sends them, each changed object
/// whole. `listed` holds the profile's full filter; `attrs` what to read.
pub(crate) async fn delta(
    ldap: &mut Ldap,
    config: &LdapConfig,
    listed: &Listed,
    attrs: Vec<String>,
    from: AdCursor,
    tx: &mpsc::Sender<Result<DeltaItem>>,
) -> std::result::Result<Outcome, LdapError> {
    let dc = dc(ldap, config.op_timeout()).await?;
    if dc.invocation != from.invocation {
        return Ok(Outcome::Resync(format!(
            "the cursor comes from another domain controller (invocationId {}, this one is {})",
            from.invocation, dc.invocation
        )));
    }
    let age_days = now().saturating_sub(from.taken) / 86_400;
    if age_days >= dc.tombstone_days {
        return Ok(Outcome::Resync(format!(
            "the cursor is {age_days} days old, past the tombstone lifetime of {} days: deletions may be lost",
            dc.tombstone_days
        )));
    }
    let (changes, position) = match from.position {
        Position::DirSync(cookie) => match dirsync_changes(ldap, config, &dc, &attrs, cookie).await {
            Ok((changes, cookie)) => (changes, Position::DirSync(cookie)),
            Err(e) if refused(&e) => return Ok(Outcome::Resync(format!("the server refused the DirSync cookie: {e}"))),
            Err(e) => return Err(e),
        },
        Position::Usn(usn) => (
            usn_changes(ldap, config, &dc, usn, &listed.filter).await?,
            Position::Usn(dc.highest_usn),
        ),
    };
    if !changes::send(ldap, config, listed, &attrs, changes, tx).await {
        return Ok(Outcome::Resync("the reader went away".into()));
    }
    Ok(Outcome::Next(
        AdCursor {
            invocation: dc.invocation,
            taken: now(),
            position,
        }
        .to_cursor(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        for position in [Position::DirSync(b"MSDS\x03\0:x".to_vec()), Position::Usn(4000)] {
            let c = AdCursor {
                invocation: "05b5a3b7-5baf-4dcb-94cd-cbd223f68eff".into(),
                taken: 1_764_000_000,
                position,
            };
            assert_eq!(AdCursor::parse(&c.to_cursor()), Some(c));
        }
        assert_eq!(
            AdCursor::parse(&Cursor("ad:usn:x:1:4000".into())).map(|c| c.position),
            Some(Position::Usn(4000))
        );
        for foreign in [
            "syncrepl:abc",
            "ad:usn:x:1:many",
            "ad:dirsync:x:1:!!",
            "ad:other:x:1:2",
            "ad:usn:x",
        ] {
            assert_eq!(AdCursor::parse(&Cursor(foreign.into())), None, "{foreign}");
        }
    }
}
