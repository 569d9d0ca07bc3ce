//! Deltas by modifyTimestamp, for generic LDAP servers without syncrepl
//! (OpenLDAP without the syncprov overlay, 389-DS without its Content
//! Synchronization plugin).
//!
//! The cursor is a time, taken before the read it follows and set back by
//! [`MARGIN`] so that changes made during that read, and clocks a little
//! apart, are seen again rather than lost. A delta names the entries whose
//! modifyTimestamp is at or after it (each then read whole with the
//! profile's filter) and lists every id still in scope (the present set):
//! modifyTimestamp cannot show a deletion, so an id no longer present is
//! gone. Such a delta costs a search of ids over the whole scope, still far
//! less than a full read.

use std::time::{Duration, SystemTime};

use idsync_core::{Cursor, DeltaItem, Result};
use ldap3::Ldap;
use tokio::sync::mpsc;

use crate::config::LdapConfig;
use crate::delta::changes::{self, Changes, Outcome, ids};
use crate::error::LdapError;
use crate::read::Listed;

const PREFIX: &str = "ldap:modifytimestamp:";
/// How far before a read its cursor points.
pub(crate) const MARGIN: Duration = Duration::from_secs(300);

/// A cursor for a read starting now.
pub(crate) fn cursor_now() -> Cursor {
    cursor_at(SystemTime::now())
}

fn cursor_at(read_starts: SystemTime) -> Cursor {
    let at = read_starts.checked_sub(MARGIN).unwrap_or(SystemTime::UNIX_EPOCH);
    // 2026-12-02T01:03:31Z → 20261202010331Z (LDAP's GeneralizedTime).
    let rfc3339 = humantime::format_rfc3339_seconds(at).to_string();
    let generalized: String = rfc3339.chars().filter(|c| c.is_ascii_digit() || *c == 'Z').collect();
    Cursor(format!("{PREFIX}{generalized}"))
}

/// The GeneralizedTime in a cursor, `None` when the cursor is not ours.
pub(crate) fn parse(cursor: &Cursor) -> Option<&str> {
    let t = cursor.0.strip_prefix(PREFIX)?;
    let digits = t.strip_suffix('Z')?;
    (digits.len() == 14 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(t)
}

/// Sends the changes since `since` (a GeneralizedTime) and ends with the
/// cursor for the next delta. `listed` holds the profile's full filter.
pub(crate) async fn delta(
    ldap: &mut Ldap,
    config: &LdapConfig,
    listed: &Listed,
    attrs: Vec<String>,
    since: &str,
    tx: &mpsc::Sender<Result<DeltaItem>>,
) -> std::result::Result<Outcome, LdapError> {
    let next = cursor_now();
    // Loose on purpose: a change that takes an entry out of the profile's
    // filter must be seen; the entry is read again with that filter.
    let loose = format!("(&(modifyTimestamp>={since})(|{}{}))", config.users(), config.groups());
    let changes = Changes {
        changed: ids(ldap, &config.base_dn, &loose, None, config).await?,
        deleted: Vec::new(),
        present: Some(ids(ldap, &config.base_dn, &listed.filter, None, config).await?),
    };
    Ok(if changes::send(ldap, config, listed, &attrs, changes, tx).await {
        Outcome::Next(next)
    } else {
        Outcome::Resync("the reader went away".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_is_the_read_start_less_the_margin_in_generalized_time() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_637_411); // 2025-12-02T01:03:31Z
        let c = cursor_at(start);
        assert_eq!(c.0, "ldap:modifytimestamp:20251202005831Z");
        assert_eq!(parse(&c), Some("20251202005831Z"));
        for foreign in [
            "syncrepl:abc",
            "ldap:modifytimestamp:2025",
            "ldap:modifytimestamp:2025120200583xZ",
        ] {
            assert_eq!(parse(&Cursor(foreign.into())), None, "{foreign}");
        }
    }
}
