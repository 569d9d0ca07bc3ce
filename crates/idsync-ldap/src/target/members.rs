//! A batch's membership changes: the DNs of the accounts they name, found
//! in few searches, and each group's changes sent as modifies of many
//! `member` values, split in halves down to the member the directory
//! refuses.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use idsync_core::{Applied, Result, TargetId};
use ldap3::{Ldap, Mod, SearchEntry};

use super::{ALREADY_MEMBER, LdapTarget, NOT_A_MEMBER};
use crate::error::LdapError;
use crate::map::{id_assertion, id_of};

/// Ids looked up by one search: an OR of this many id assertions (about
/// 60 bytes each), far below any server's request limit, and an answer
/// below the size limits of a non-admin bind (500 on slapd, MaxPageSize
/// 1000 on AD).
const IDS_PER_SEARCH: usize = 200;

/// One membership change of a batch.
pub(super) struct Change<'a> {
    /// Its position in the batch.
    pub(super) index: usize,
    /// Add (else remove).
    pub(super) add: bool,
    /// The member.
    pub(super) member: &'a TargetId,
}

/// An account's DN, or why it could not be found; one error may fail
/// several operations.
type Found = std::result::Result<String, Arc<LdapError>>;

/// One operation's result and its position in the batch.
pub(super) type Done = (usize, Result<Applied>);

impl LdapTarget {
    /// The DNs of `ids`: found by searches of [`IDS_PER_SEARCH`] id
    /// assertions each under the base DN; an id those do not find is
    /// looked up alone (by `<GUID=…>` on AD, which also finds an account
    /// outside the base DN), which alone says it does not exist. When a
    /// search fails for the connection, the ids not found yet fail with it.
    pub(super) async fn dns_of<'a>(&self, ids: BTreeSet<&'a TargetId>) -> HashMap<&'a TargetId, Found> {
        let mut found: HashMap<String, String> = HashMap::new();
        let mut failed: Option<Arc<LdapError>> = None;
        let assertions: Vec<String> = ids.iter().filter_map(|id| id_assertion(&self.config, &id.0)).collect();
        for chunk in assertions.chunks(IDS_PER_SEARCH) {
            let filter = format!("(|{})", chunk.concat());
            let answer = match self.handle().await {
                Ok(mut ldap) => ldap
                    .with_timeout(self.config.op_timeout())
                    .search(
                        &self.config.base_dn,
                        ldap3::Scope::Subtree,
                        &filter,
                        vec![self.config.id_attr()],
                    )
                    .await
                    .map_err(LdapError::from),
                Err(e) => Err(e),
            };
            match answer {
                Ok(ldap3::SearchResult(entries, result)) => {
                    for re in entries.into_iter().filter(|re| !re.is_ref()) {
                        let entry = SearchEntry::construct(re);
                        if let Ok(id) = id_of(&self.config, &entry) {
                            found.insert(id.0.to_lowercase(), entry.dn);
                        }
                    }
                    if result.rc != 0 {
                        tracing::debug!(rc = result.rc, text = %result.text, "a batched id look-up fell short");
                    }
                }
                Err(e) => {
                    failed = Some(Arc::new(e));
                    break;
                }
            }
        }
        let mut out = HashMap::with_capacity(ids.len());
        for id in ids {
            let dn = match (found.remove(&id.0.to_lowercase()), &failed) {
                (Some(dn), _) => Ok(dn),
                (None, Some(e)) => Err(e.clone()),
                (None, None) => self.dn_of(id).await.map_err(Arc::new),
            };
            out.insert(id, dn);
        }
        out
    }

    /// Applies one group's changes, in order: each run of adds (or
    /// removes) as modifies of up to `members_per_modify` values. A change
    /// whose group or member has no DN fails alone with that error.
    pub(super) async fn change_members(
        &self,
        group: &TargetId,
        changes: Vec<Change<'_>>,
        dns: &HashMap<&TargetId, Found>,
    ) -> Vec<Done> {
        let missing = |id: &TargetId| -> Arc<LdapError> {
            Arc::new(LdapError::Result {
                rc: 32,
                text: "no entry with this id".into(),
                dn: id.0.clone(),
            })
        };
        let group_dn = match dns.get(group) {
            Some(Ok(dn)) => dn.clone(),
            Some(Err(e)) => return failed_all(changes.iter().map(|c| c.index), e),
            None => return failed_all(changes.iter().map(|c| c.index), &missing(group)),
        };
        let mut out = Vec::with_capacity(changes.len());
        let mut runs: Vec<(bool, Vec<(usize, String)>)> = Vec::new();
        for c in changes {
            let dn = match dns.get(c.member) {
                Some(Ok(dn)) => dn.clone(),
                Some(Err(e)) => {
                    out.push((c.index, Err(e.to_core("apply"))));
                    continue;
                }
                None => {
                    out.push((c.index, Err(missing(c.member).to_core("apply"))));
                    continue;
                }
            };
            match runs.last_mut() {
                Some((add, values)) if *add == c.add => values.push((c.index, dn)),
                _ => runs.push((c.add, vec![(c.index, dn)])),
            }
        }
        let ldap = match self.handle().await {
            Ok(ldap) => ldap,
            Err(e) => {
                let indexes = runs.iter().flat_map(|(_, values)| values.iter().map(|(i, _)| *i));
                out.extend(failed_all(indexes, &Arc::new(e)));
                return out;
            }
        };
        let per_modify = self.config.members_per_modify.max(1);
        for (add, values) in runs {
            for chunk in values.chunks(per_modify) {
                for (index, result) in self.modify_members(ldap.clone(), &group_dn, add, chunk).await {
                    out.push((index, result.map(|()| Applied::to(group.clone()))));
                }
            }
        }
        out
    }

    /// One modify adding (or removing) every member DN of `values` to the
    /// group. Refused as a whole, it is sent again in halves, down to single
    /// values: then "already a member" on an add and "not a member" on a
    /// remove count as done, and any other refusal fails that member alone,
    /// naming it. A transient failure (the connection, a busy server) fails
    /// every value of the request, to be retried.
    fn modify_members<'a>(
        &'a self,
        mut ldap: Ldap,
        group_dn: &'a str,
        add: bool,
        values: &'a [(usize, String)],
    ) -> BoxFuture<'a, Vec<(usize, Result<()>)>> {
        async move {
            let set: HashSet<String> = values.iter().map(|(_, dn)| dn.clone()).collect();
            let m = if add {
                Mod::Add("member".to_owned(), set)
            } else {
                Mod::Delete("member".to_owned(), set)
            };
            let answer = ldap
                .with_timeout(self.config.op_timeout())
                .modify(group_dn, vec![m])
                .await;
            let result = match answer {
                Ok(result) => result,
                Err(e) => return failed_values(values, &Arc::new(e.into())),
            };
            let done = if add { &ALREADY_MEMBER[..] } else { &NOT_A_MEMBER[..] };
            match values {
                _ if result.rc == 0 => values.iter().map(|(i, _)| (*i, Ok(()))).collect(),
                [(index, member)] if done.contains(&result.rc) => {
                    tracing::debug!(group = group_dn, member, add, rc = result.rc, "already done");
                    vec![(*index, Ok(()))]
                }
                [(index, member)] => {
                    let e = LdapError::Member {
                        rc: result.rc,
                        text: result.text,
                        doing: if add { "adding" } else { "removing" },
                        member: member.clone(),
                        group: group_dn.to_owned(),
                    };
                    vec![(*index, Err(e.into_core("apply")))]
                }
                _ if crate::error::classify(result.rc).1 => {
                    let e = LdapError::Result {
                        rc: result.rc,
                        text: result.text,
                        dn: group_dn.to_owned(),
                    };
                    failed_values(values, &Arc::new(e))
                }
                _ => {
                    tracing::debug!(
                        group = group_dn,
                        values = values.len(),
                        rc = result.rc,
                        "a modify of many members was refused: sending it in halves"
                    );
                    let (first, second) = values.split_at(values.len() / 2);
                    let mut out = self.modify_members(ldap.clone(), group_dn, add, first).await;
                    out.extend(self.modify_members(ldap, group_dn, add, second).await);
                    out
                }
            }
        }
        .boxed()
    }
}

/// Every operation at `indexes` failed with `e`.
fn failed_all(indexes: impl Iterator<Item = usize>, e: &Arc<LdapError>) -> Vec<Done> {
    indexes.map(|i| (i, Err(e.to_core("apply")))).collect()
}

fn failed_values(values: &[(usize, String)], e: &Arc<LdapError>) -> Vec<(usize, Result<()>)> {
    values.iter().map(|(i, _)| (*i, Err(e.to_core("apply")))).collect()
}
