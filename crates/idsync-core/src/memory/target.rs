//! A simulated application: accounts with links, fields, an enabled flag
//! and group members.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use crate::error::{Error, ErrorKind, Result};
use crate::model::{ObjectKind, ProfileId, TargetAccount, TargetId};
use crate::target::{Applied, Lookup, Target, TargetCapabilities, TargetOp, Veto};

const NAME: &str = "memory";

/// An injected failure: the next `times` operations on the account (or the
/// link's external id) `on` fail with `kind`.
#[derive(Clone, Debug)]
pub struct Fault {
    /// A target id or an external id.
    pub on: String,
    /// The error kind (`Unavailable` and `RateLimited` are transient).
    pub kind: ErrorKind,
    /// How many times; `u32::MAX` for always.
    pub times: u32,
    /// Sent as Retry-After with transient kinds.
    pub retry_after: Option<Duration>,
}

/// An application's accounts in memory. Cheap to clone (clones share them).
#[derive(Clone, Debug)]
pub struct MemoryTarget {
    inner: Arc<Mutex<Inner>>,
    capabilities: TargetCapabilities,
}

#[derive(Debug, Default)]
struct Inner {
    accounts: BTreeMap<TargetId, TargetAccount>,
    next_id: u64,
    faults: Vec<Fault>,
    vetoes: HashMap<TargetId, String>,
    /// Every operation applied, in order.
    log: Vec<TargetOp>,
    calls: Calls,
}

/// How often the engine asked a [`MemoryTarget`] for what: the measure of
/// what a run costs a target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Calls {
    /// Listings of the linked accounts.
    pub linked: usize,
    /// Calls to `lookup`, and the lookups they carried.
    pub lookup: usize,
    /// Lookups carried by those calls.
    pub lookups: usize,
    /// The size of each batch given to `apply_batch`.
    pub batches: Vec<usize>,
}

impl Default for MemoryTarget {
    fn default() -> Self {
        MemoryTarget::new()
    }
}

impl MemoryTarget {
    /// A target that can do everything (groups, disable, delete, veto).
    pub fn new() -> Self {
        MemoryTarget::with_capabilities(
            TargetCapabilities::default()
                .with_groups(true)
                .with_disable(true)
                .with_disable_groups(true)
                .with_delete(true)
                .with_veto(true),
        )
    }

    /// A target with only these capabilities.
    pub fn with_capabilities(capabilities: TargetCapabilities) -> Self {
        MemoryTarget {
            inner: Arc::new(Mutex::new(Inner::default())),
            capabilities,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an account as it is (e.g. one made by hand, with no link).
    pub fn insert(&self, account: TargetAccount) {
        let mut inner = self.lock();
        inner.accounts.insert(account.id.clone(), account);
    }

    /// Every account, in id order.
    pub fn accounts(&self) -> Vec<TargetAccount> {
        self.lock().accounts.values().cloned().collect()
    }

    /// One account.
    pub fn account(&self, id: &TargetId) -> Option<TargetAccount> {
        self.lock().accounts.get(id).cloned()
    }

    /// The account linked to `external` by `profile`.
    pub fn linked_to(&self, profile: ProfileId, external: &str) -> Option<TargetAccount> {
        self.lock()
            .accounts
            .values()
            .find(|a| {
                a.link
                    .as_ref()
                    .is_some_and(|l| l.profile == profile && l.external.0 == external)
            })
            .cloned()
    }

    /// Every operation applied so far.
    pub fn log(&self) -> Vec<TargetOp> {
        self.lock().log.clone()
    }

    /// The calls received so far.
    pub fn calls(&self) -> Calls {
        self.lock().calls.clone()
    }

    /// Injects a failure.
    pub fn fail(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Removes every injected failure.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Makes the target refuse to deprovision `id` (HaloPSA's open tickets).
    pub fn veto(&self, id: &TargetId, reason: &str) {
        self.lock().vetoes.insert(id.clone(), reason.to_owned());
    }

    fn injected(inner: &mut Inner, op: &TargetOp) -> Option<Error> {
        let keys: Vec<String> = match op {
            TargetOp::Create { link, .. } => vec![link.external.0.clone()],
            TargetOp::SetLink { target, link, .. } => vec![target.0.clone(), link.external.0.clone()],
            TargetOp::Update { target, .. }
            | TargetOp::SetEnabled { target, .. }
            | TargetOp::Delete { target, .. }
            | TargetOp::AddMember { group: target, .. }
            | TargetOp::RemoveMember { group: target, .. } => {
                let external = inner
                    .accounts
                    .get(target)
                    .and_then(|a| a.link.as_ref())
                    .map(|l| l.external.0.clone());
                std::iter::once(target.0.clone()).chain(external).collect()
            }
        };
        let fault = inner.faults.iter_mut().find(|f| f.times > 0 && keys.contains(&f.on))?;
        if fault.times != u32::MAX {
            fault.times -= 1;
        }
        let mut e = Error::new(fault.kind, "injected failure")
            .with_backend(NAME)
            .with_op("apply")
            .with_object(&fault.on);
        if let Some(after) = fault.retry_after {
            e = e.with_retry_after(after);
        }
        Some(e)
    }

    fn account_mut<'a>(inner: &'a mut Inner, id: &TargetId) -> Result<&'a mut TargetAccount> {
        inner.accounts.get_mut(id).ok_or_else(|| {
            Error::new(ErrorKind::NotFound, "no such account")
                .with_backend(NAME)
                .with_op("apply")
                .with_object(id)
        })
    }
}

#[async_trait]
impl Target for MemoryTarget {
    fn backend(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> TargetCapabilities {
        self.capabilities
    }

    async fn linked(&self, profile: ProfileId) -> Result<BoxStream<'_, Result<TargetAccount>>> {
        let mut inner = self.lock();
        inner.calls.linked += 1;
        let accounts: Vec<Result<TargetAccount>> = inner
            .accounts
            .values()
            .filter(|a| a.link.as_ref().is_some_and(|l| l.profile == profile))
            .cloned()
            .map(Ok)
            .collect();
        Ok(stream::iter(accounts).boxed())
    }

    async fn lookup(&self, lookups: &[Lookup]) -> Result<Vec<TargetAccount>> {
        let mut inner = self.lock();
        inner.calls.lookup += 1;
        inner.calls.lookups += lookups.len();
        let found = inner
            .accounts
            .values()
            .filter(|a| {
                lookups.iter().any(|l| match l {
                    Lookup::Field { kind, field, value } => {
                        a.kind == *kind
                            && a.fields
                                .get(field)
                                .is_some_and(|v| v.trim().to_lowercase() == value.trim().to_lowercase())
                    }
                    Lookup::External { kind, external } => {
                        a.kind == *kind && a.link.as_ref().is_some_and(|l| &l.external == external)
                    }
                })
            })
            .cloned()
            .collect();
        Ok(found)
    }

    async fn apply(&self, op: &TargetOp) -> Result<Applied> {
        let mut inner = self.lock();
        if let Some(e) = Self::injected(&mut inner, op) {
            return Err(e);
        }
        inner.log.push(op.clone());
        let caps = self.capabilities;
        let unsupported = |what: &str| Err(crate::target::unsupported(NAME, what));
        let id = match op {
            TargetOp::Create { kind, link, fields } => {
                if *kind == ObjectKind::Group && !caps.groups {
                    return unsupported("groups");
                }
                // Idempotent through the link.
                if let Some(existing) = inner.accounts.values().find(|a| a.link.as_ref() == Some(link)) {
                    return Ok(Applied::to(existing.id.clone()).with_note("already existed"));
                }
                inner.next_id += 1;
                let id = TargetId(format!("{}-{}", kind, inner.next_id));
                let account = TargetAccount {
                    id: id.clone(),
                    link: Some(link.clone()),
                    kind: *kind,
                    fields: fields.clone(),
                    enabled: true,
                    members: Vec::new(),
                };
                inner.accounts.insert(id.clone(), account);
                id
            }
            TargetOp::SetLink { target, link, .. } => {
                Self::account_mut(&mut inner, target)?.link = Some(link.clone());
                target.clone()
            }
            TargetOp::Update { target, changes, .. } => {
                let account = Self::account_mut(&mut inner, target)?;
                for c in changes {
                    match &c.new {
                        Some(v) => account.fields.insert(c.field.clone(), v.clone()),
                        None => account.fields.remove(&c.field),
                    };
                }
                target.clone()
            }
            TargetOp::SetEnabled { target, kind, enabled } => {
                if !caps.can_disable(*kind) {
                    return unsupported("disabling");
                }
                Self::account_mut(&mut inner, target)?.enabled = *enabled;
                target.clone()
            }
            TargetOp::Delete { target, .. } => {
                if !caps.delete {
                    return unsupported("delete");
                }
                inner.accounts.remove(target);
                for a in inner.accounts.values_mut() {
                    a.members.retain(|m| m != target);
                }
                target.clone()
            }
            TargetOp::AddMember { group, member } => {
                if !inner.accounts.contains_key(member) {
                    return Err(Error::new(ErrorKind::NotFound, "no such member")
                        .with_backend(NAME)
                        .with_op("apply")
                        .with_object(member));
                }
                let g = Self::account_mut(&mut inner, group)?;
                if !g.members.contains(member) {
                    g.members.push(member.clone());
                }
                group.clone()
            }
            TargetOp::RemoveMember { group, member } => {
                Self::account_mut(&mut inner, group)?.members.retain(|m| m != member);
                group.clone()
            }
        };
        Ok(Applied::to(id))
    }

    async fn apply_batch(&self, ops: &[TargetOp]) -> Vec<Result<Applied>> {
        self.lock().calls.batches.push(ops.len());
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(self.apply(op).await);
        }
        results
    }

    async fn can_deprovision(&self, account: &TargetAccount) -> Result<Veto> {
        Ok(match self.lock().vetoes.get(&account.id) {
            Some(reason) => Veto::Deny(reason.clone()),
            None => Veto::Allow,
        })
    }
}
