//! Reading entries the way a full read lists them, shared by the full read,
//! the deltas and the target: the scope ([`Listed`]), whole objects and the
//! ids of group members.

use std::collections::{HashMap, HashSet};

use futures::StreamExt;
use idsync_core::{ExternalId, SourceObject};
use ldap3::{Ldap, SearchEntry};

use crate::config::{Flavor, LdapConfig};
use crate::error::LdapError;
use crate::map::{dn_key, id_of, is_group, to_object};

/// What a full read lists: the entries under `bases` (the scope's
/// containers, else the base DN) that match `filter` (the kinds and the
/// scope's filter). A group read alone names only such members, as a full
/// read resolves only the member DNs it has read.
#[derive(Clone, Debug)]
pub(crate) struct Listed {
    pub(crate) filter: String,
    pub(crate) bases: Vec<String>,
}

impl Listed {
    fn holds_dn(&self, dn: &str) -> bool {
        self.bases.iter().any(|b| idsync_core::dn::within(dn, b))
    }
}

/// Reads `member;range=…` to its end for an AD group whose members come in
/// ranges (more than 1500).
pub(crate) async fn all_members(
    ldap: &mut Ldap,
    timeout: std::time::Duration,
    e: &SearchEntry,
    members: &mut Vec<String>,
) -> std::result::Result<(), LdapError> {
    let mut next = e
        .attrs
        .keys()
        .find_map(|k| k.strip_prefix("member;range="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(_, end)| if end == "*" { None } else { end.parse::<u64>().ok() });
    while let Some(end) = next {
        let attr = format!("member;range={}-*", end + 1);
        let (entries, result) = ldap
            .with_timeout(timeout)
            .search(&e.dn, ldap3::Scope::Base, "(objectClass=*)", vec![attr.as_str()])
            .await?
            .success()?;
        let _ = result;
        next = None;
        for re in entries {
            let entry = SearchEntry::construct(re);
            for (k, v) in &entry.attrs {
                if let Some(range) = k.strip_prefix("member;range=") {
                    members.extend(v.iter().cloned());
                    next = range.split_once('-').and_then(|(_, end)| end.parse::<u64>().ok());
                }
            }
        }
    }
    Ok(())
}

/// Member DNs looked up by one search: an OR of this many DN equality
/// assertions. A few hundred keep the filter near 20 KB, far below the
/// request limits of slapd (4 MiB) and AD (MaxReceiveBuffer, 10 MB), and
/// the answer below the size limits of a non-admin bind (500 by default on
/// slapd, MaxPageSize 1000 on AD).
const DNS_PER_SEARCH: usize = 200;

/// Batched member look-ups in flight at once.
const SEARCHES_AT_ONCE: usize = 4;

/// The ids of the entries named by `dns` (group members); `ids` caches
/// what is known. Unknown DNs are looked up in batches: one search per
/// scope container and [`DNS_PER_SEARCH`] DNs, `(&<filter>(|(entryDN=…)…))`
/// (`distinguishedName` on AD), [`SEARCHES_AT_ONCE`] at a time, so a group
/// of 30,000 members costs 150 searches, not 30,000. A DN that search does not return is then looked
/// up alone, by a base search with the filter: only that one decides that
/// a full read would not list it (deleted, moved, outside `listed`, not
/// readable), and it is left out, as a full read leaves it out. A look-up
/// that fails (the connection, a busy server) is an error: the group would
/// otherwise look as if those members had left it.
pub(crate) async fn member_ids(
    ldap: &mut Ldap,
    config: &LdapConfig,
    listed: &Listed,
    dns: Vec<String>,
    ids: &mut HashMap<String, ExternalId>,
) -> std::result::Result<Vec<ExternalId>, LdapError> {
    let dns: Vec<(String, String)> = dns
        .into_iter()
        .filter(|dn| listed.holds_dn(dn))
        .map(|dn| (dn_key(&dn), dn))
        .collect();
    let mut wanted: Vec<Vec<&str>> = vec![Vec::new(); listed.bases.len()];
    let mut asked: HashSet<&str> = HashSet::new();
    for (key, dn) in &dns {
        if ids.contains_key(key) || !asked.insert(key) {
            continue;
        }
        if let Some(i) = listed.bases.iter().position(|b| idsync_core::dn::within(dn, b)) {
            wanted[i].push(dn);
        }
    }
    let attr = match config.flavor {
        Flavor::Ad => "distinguishedName",
        Flavor::Generic => "entryDN",
    };
    let mut searches = Vec::new();
    for (base, dns) in listed.bases.iter().zip(&wanted) {
        for chunk in dns.chunks(DNS_PER_SEARCH) {
            let mut filter = format!("(&{}(|", listed.filter);
            for dn in chunk {
                filter.push_str(&format!("({attr}={})", ldap3::ldap_escape(*dn)));
            }
            filter.push_str("))");
            let mut ldap = ldap.clone();
            searches.push(async move {
                ldap.with_timeout(config.op_timeout())
                    .search(base, ldap3::Scope::Subtree, &filter, vec![config.id_attr()])
                    .await
            });
        }
    }
    let mut answers = futures::stream::iter(searches).buffer_unordered(SEARCHES_AT_ONCE);
    while let Some(answer) = answers.next().await {
        let ldap3::SearchResult(entries, result) = answer?;
        for re in entries.into_iter().filter(|re| !re.is_ref()) {
            let entry = SearchEntry::construct(re);
            if let Ok(id) = id_of(config, &entry) {
                ids.insert(dn_key(&entry.dn), id);
            }
        }
        if result.rc != 0 {
            // A size limit, or a server without this DN attribute: what
            // is missing is looked up alone below.
            tracing::debug!(rc = result.rc, text = %result.text, "a batched member look-up fell short");
        }
    }
    for dn in wanted.iter().flatten() {
        let key = dn_key(dn);
        if ids.contains_key(&key) {
            continue;
        }
        let found = ldap
            .with_timeout(config.op_timeout())
            .search(dn, ldap3::Scope::Base, &listed.filter, vec![config.id_attr()])
            .await
            .and_then(|r| r.success());
        let entries = match found {
            Ok((entries, _)) => entries,
            Err(ldap3::LdapError::LdapResult { result }) if !crate::error::classify(result.rc).1 => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        if let Some(e) = entries.into_iter().next()
            && let Ok(id) = id_of(config, &SearchEntry::construct(e))
        {
            ids.insert(key, id);
        }
    }
    Ok(dns.iter().filter_map(|(key, _)| ids.get(key).cloned()).collect())
}

/// Reads one object whole (a group with all its members, by id), `None`
/// when the search for `by_id` and the scope's filter finds nothing.
pub(crate) async fn read_object(
    ldap: &mut Ldap,
    config: &LdapConfig,
    listed: &Listed,
    (base, scope, by_id): (&str, ldap3::Scope, &str),
    attrs: Vec<String>,
) -> std::result::Result<Option<SourceObject>, LdapError> {
    let filter = format!("(&{by_id}{})", listed.filter);
    let found = ldap
        .with_timeout(config.op_timeout())
        .search(base, scope, &filter, attrs)
        .await?;
    let entries = match found.success() {
        Ok((entries, _)) => entries,
        Err(ldap3::LdapError::LdapResult { result }) if result.rc == 32 => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(re) = entries.into_iter().find(|re| !re.is_ref()) else {
        return Ok(None);
    };
    let entry = SearchEntry::construct(re);
    let mut ranged = Vec::new();
    if is_group(&entry) {
        all_members(ldap, config.op_timeout(), &entry, &mut ranged).await?;
    }
    let (mut object, mut members) = to_object(config, entry)?;
    if object.kind == idsync_core::ObjectKind::Group {
        members.extend(ranged);
        object.members = member_ids(ldap, config, listed, members, &mut HashMap::new()).await?;
    }
    Ok(Some(object))
}
