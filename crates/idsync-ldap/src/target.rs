//! `LdapTarget`: the directory as the application (JumpCloud → AD, seed
//! 003). Accounts are named by their objectGUID / entryUUID; the link is
//! kept in an attribute as `idsync:<profile>:<external id>`. Passwords are
//! never read; on Active Directory an account without a password is never
//! enabled, and with `initial_password = "random"` it gets a random one
//! (over TLS only) that must be changed at the next logon.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use idsync_core::{
    Applied, Error, ErrorKind, ExternalId, Fields, Link, Lookup, ObjectKind, ProfileId, Result, Target, TargetAccount,
    TargetCapabilities, TargetId, TargetOp,
};
use ldap3::adapters::{Adapter, PagedResults};
use ldap3::{Ldap, Mod, SearchEntry, dn_escape, ldap_escape};
use tokio::sync::Mutex;

use crate::client::connect;
use crate::config::{Flavor, InitialPassword, LdapConfig};
use crate::error::{LdapError, check};
use crate::map::{dn_key, id_of, is_group, parent, text};
use crate::read::{Listed, all_members, member_ids};

mod members;

/// Operations of one batch in flight at once (a group's membership
/// changes count as one).
const OPS_AT_ONCE: usize = 8;

/// The mapped field that chooses (and moves) an entry's container.
pub(crate) const CONTAINER_FIELD: &str = "container";

/// LDAP result codes that mean "already a member" / "not a member".
const ALREADY_MEMBER: [u32; 2] = [20, 68];
const NOT_A_MEMBER: [u32; 2] = [16, 53];

/// userAccountControl: the account is disabled.
const ACCOUNTDISABLE: u32 = 0x2;
/// userAccountControl: the account may have an empty password. idsync
/// never sets it, and clears it wherever it writes the flags.
const PASSWD_NOTREQD: u32 = 0x20;
/// userAccountControl: a normal user account.
const NORMAL_ACCOUNT: u32 = 0x200;

/// The note of an AD account left disabled because it has no password.
const NO_PASSWORD: &str = "left disabled: the Active Directory account has no password. Set one and the next run enables it, or set initial_password = \"random\" on this target";
/// The note of an AD account enabled with a random initial password.
const RANDOM_PASSWORD: &str = "enabled with a random initial password that nobody knows and that must be changed at the next logon: the user gets in through a password reset";

/// An AD user's flags, and whether it has a password.
struct AdUser {
    uac: u32,
    has_password: bool,
}

fn uac_mod(uac: u32) -> Mod<Vec<u8>> {
    Mod::Replace(
        b"userAccountControl".to_vec(),
        [uac.to_string().into_bytes()].into_iter().collect(),
    )
}

/// A directory as the target of a sync.
#[derive(Debug)]
pub struct LdapTarget {
    config: LdapConfig,
    ldap: Mutex<Option<Ldap>>,
}

type LdapResult<T> = std::result::Result<T, LdapError>;

fn link_value(link: &Link) -> String {
    format!("idsync:{}:{}", link.profile, link.external)
}

fn parse_link(value: &str) -> Option<Link> {
    let rest = value.strip_prefix("idsync:")?;
    let (profile, external) = rest.split_once(':')?;
    Some(Link {
        profile: ProfileId(profile.parse().ok()?),
        external: ExternalId(external.to_owned()),
    })
}

impl LdapTarget {
    /// A target; the connection is made on first use.
    pub fn new(config: LdapConfig) -> Self {
        LdapTarget {
            config,
            ldap: Mutex::new(None),
        }
    }

    /// A target whose bind has been tried (wrong credentials fail here, as
    /// does an `initial_password` without TLS).
    pub async fn connect(config: LdapConfig) -> Result<Self> {
        config.check_initial_password().map_err(|e| e.into_core("connect"))?;
        let t = LdapTarget::new(config);
        t.handle().await.map_err(|e| e.into_core("connect"))?;
        Ok(t)
    }

    /// The shared connection, made (again) when needed.
    async fn handle(&self) -> LdapResult<Ldap> {
        let mut guard = self.ldap.lock().await;
        if let Some(l) = guard.as_mut()
            && !l.is_closed()
        {
            return Ok(l.clone());
        }
        let l = connect(&self.config).await?;
        *guard = Some(l.clone());
        Ok(l)
    }

    fn attrs(&self) -> Vec<String> {
        let mut a = vec![
            "*".to_owned(),
            self.config.id_attr().to_owned(),
            self.config.link_attr().to_owned(),
        ];
        if self.config.flavor == Flavor::Ad {
            a.push("userAccountControl".into());
        }
        a
    }

    /// Every entry matching `filter`, paged.
    async fn search_all(&self, filter: &str) -> LdapResult<Vec<SearchEntry>> {
        let mut ldap = self.handle().await?;
        let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![Box::new(PagedResults::new(self.config.page_size.max(1)))];
        let mut stream = ldap
            .with_timeout(self.config.op_timeout())
            .streaming_search_with(
                adapters,
                &self.config.base_dn,
                ldap3::Scope::Subtree,
                filter,
                self.attrs(),
            )
            .await?;
        let mut out = Vec::new();
        while let Some(re) = stream.next().await? {
            if !re.is_ref() && !re.is_intermediate() {
                out.push(SearchEntry::construct(re));
            }
        }
        check(stream.finish().await, &self.config.base_dn, &[])?;
        Ok(out)
    }

    /// The DN of the entry with this id.
    async fn dn_of(&self, id: &TargetId) -> LdapResult<String> {
        let mut ldap = self.handle().await?;
        let (base, scope, filter) = crate::map::by_id(&self.config, &id.0);
        let (entries, _) = ldap
            .with_timeout(self.config.op_timeout())
            .search(&base, scope, &filter, vec!["1.1"])
            .await?
            .success()?;
        entries
            .into_iter()
            .find(|re| !re.is_ref())
            .map(|re| SearchEntry::construct(re).dn)
            .ok_or_else(|| LdapError::Result {
                rc: 32,
                text: "no entry with this id".into(),
                dn: id.0.clone(),
            })
    }

    /// Accounts from entries. A group's members are the accounts of
    /// `known` (by DN key) its `member` names, or with no `known`, every
    /// entry it names, looked up in batches (see
    /// [`crate::read::member_ids`]): the planner sees the memberships of
    /// the accounts it knows, which a delta finds by other look-ups.
    async fn accounts(
        &self,
        entries: Vec<SearchEntry>,
        known: Option<&HashMap<String, TargetId>>,
    ) -> LdapResult<Vec<TargetAccount>> {
        let everything = Listed {
            filter: "(objectClass=*)".into(),
            bases: vec![self.config.base_dn.clone()],
        };
        let mut looked_up: HashMap<String, ExternalId> = HashMap::new();
        let link_attr = self.config.link_attr();
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let id = TargetId(id_of(&self.config, &e)?.0);
            let kind = if is_group(&e) {
                ObjectKind::Group
            } else {
                ObjectKind::User
            };
            let link = e
                .attrs
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(link_attr))
                .flat_map(|(_, v)| v.iter())
                .find_map(|v| parse_link(v));
            let mut fields = Fields::new();
            for (k, v) in &e.attrs {
                let skip = k.eq_ignore_ascii_case(link_attr)
                    || k.to_lowercase().starts_with("member")
                    || k.eq_ignore_ascii_case("objectClass");
                if !skip && let Some(first) = v.first() {
                    fields.insert(k.clone(), first.clone());
                }
            }
            fields.insert(CONTAINER_FIELD.into(), parent(&e.dn).to_owned());
            let enabled = match self.config.flavor {
                Flavor::Ad => text(&e, "userAccountControl")
                    .and_then(|u| u.parse::<u32>().ok())
                    .is_none_or(|u| u & 2 == 0),
                Flavor::Generic => self
                    .config
                    .disabled_attribute
                    .as_deref()
                    .and_then(|a| text(&e, a))
                    .is_none_or(|v| !v.eq_ignore_ascii_case("disabled")),
            };
            let mut member_dns: Vec<String> = e
                .attrs
                .iter()
                .filter(|(k, _)| {
                    let k = k.to_lowercase();
                    k == "member" || k == "uniquemember" || k.starts_with("member;range=")
                })
                .flat_map(|(_, v)| v.iter().cloned())
                .collect();
            let mut members = Vec::new();
            if kind == ObjectKind::Group {
                let mut ldap = self.handle().await?;
                all_members(&mut ldap, self.config.op_timeout(), &e, &mut member_dns).await?;
                members = match known {
                    Some(ids) => member_dns
                        .iter()
                        .filter_map(|dn| ids.get(&dn_key(dn)).cloned())
                        .collect(),
                    None => member_ids(&mut ldap, &self.config, &everything, member_dns, &mut looked_up)
                        .await?
                        .into_iter()
                        .map(|id| TargetId(id.0))
                        .collect(),
                };
            }
            out.push(TargetAccount {
                id,
                link,
                kind,
                fields,
                enabled,
                members,
            });
        }
        Ok(out)
    }

    fn object_classes(&self, kind: ObjectKind) -> Vec<&'static str> {
        match (self.config.flavor, kind) {
            (Flavor::Ad, ObjectKind::User) => vec!["top", "person", "organizationalPerson", "user"],
            (Flavor::Ad, ObjectKind::Group) => vec!["top", "group"],
            (Flavor::Generic, ObjectKind::User) => vec!["top", "person", "organizationalPerson", "inetOrgPerson"],
            (Flavor::Generic, ObjectKind::Group) => vec!["top", "groupOfNames"],
        }
    }

    async fn create(&self, kind: ObjectKind, link: &Link, fields: &Fields) -> LdapResult<Applied> {
        let value = link_value(link);
        let existing = self
            .search_all(&format!(
                "({}={})",
                self.config.link_attr(),
                ldap_escape(value.as_str())
            ))
            .await?;
        if let Some(e) = existing.first() {
            return Ok(Applied::to(TargetId(id_of(&self.config, e)?.0)).with_note("already existed"));
        }
        let naming = &self.config.naming_attribute;
        let name = fields.get(naming).ok_or_else(|| {
            LdapError::Config(format!(
                "the mapping gives no `{naming}` (the naming attribute) for {link}: map a target field named `{naming}`"
            ))
        })?;
        let container = fields
            .get(CONTAINER_FIELD)
            .or(self.config.default_container.as_ref())
            .unwrap_or(&self.config.base_dn);
        let dn = format!("{naming}={},{container}", dn_escape(name.as_str()));
        let mut attrs: Vec<(String, HashSet<String>)> = vec![
            (
                "objectClass".into(),
                self.object_classes(kind).into_iter().map(str::to_owned).collect(),
            ),
            (self.config.link_attr().to_owned(), [value].into_iter().collect()),
        ];
        let ad_user = self.config.flavor == Flavor::Ad && kind == ObjectKind::User;
        // idsync sets an AD user's flags itself: created disabled, without
        // PASSWD_NOTREQD (AD would set it, 546), until it has a password.
        let own = |k: &str| k == CONTAINER_FIELD || (ad_user && k.eq_ignore_ascii_case("userAccountControl"));
        for (k, v) in fields.iter().filter(|(k, _)| !own(k)) {
            attrs.push((k.clone(), [v.clone()].into_iter().collect()));
        }
        if ad_user {
            attrs.push((
                "userAccountControl".into(),
                [(NORMAL_ACCOUNT | ACCOUNTDISABLE).to_string()].into_iter().collect(),
            ));
        }
        if kind == ObjectKind::Group && self.config.flavor == Flavor::Generic {
            // groupOfNames must have a member: the empty DN until real members come.
            attrs.push(("member".into(), [String::new()].into_iter().collect()));
        }
        let mut ldap = self.handle().await?;
        check(
            ldap.with_timeout(self.config.op_timeout()).add(&dn, attrs).await?,
            &dn,
            &[],
        )?;
        let (entries, _) = ldap
            .with_timeout(self.config.op_timeout())
            .search(&dn, ldap3::Scope::Base, "(objectClass=*)", vec![self.config.id_attr()])
            .await?
            .success()?;
        let entry = entries
            .into_iter()
            .next()
            .map(SearchEntry::construct)
            .ok_or_else(|| LdapError::Result {
                rc: 32,
                text: "the new entry cannot be read back".into(),
                dn: dn.clone(),
            })?;
        let target = Some(TargetId(id_of(&self.config, &entry)?.0));
        let note = if ad_user {
            let user = AdUser {
                uac: NORMAL_ACCOUNT | ACCOUNTDISABLE,
                has_password: false,
            };
            self.enable_ad(&mut ldap, &dn, user).await?
        } else {
            None
        };
        Ok(Applied { target, note })
    }

    /// The flags of the AD user at `dn`, and whether it has a password. An
    /// account that never had one has `pwdLastSet` 0 and
    /// `msDS-KeyVersionNumber` (how many times `unicodePwd` was written,
    /// creation included) at most 1; unreadable values count the same. So
    /// does an account added with its password and `pwdLastSet = 0` in one
    /// operation: it stays disabled, the safe way. (One whose `pwdLastSet`
    /// an admin set to -1 without giving it a password would pass.)
    async fn ad_user(&self, ldap: &mut Ldap, dn: &str) -> LdapResult<AdUser> {
        let (entries, _) = ldap
            .with_timeout(self.config.op_timeout())
            .search(
                dn,
                ldap3::Scope::Base,
                "(objectClass=*)",
                vec!["userAccountControl", "pwdLastSet", "msDS-KeyVersionNumber"],
            )
            .await?
            .success()?;
        let entry = entries.into_iter().next().map(SearchEntry::construct);
        let number = |name: &str| {
            entry
                .as_ref()
                .and_then(|e| text(e, name))
                .and_then(|v| v.parse::<i64>().ok())
        };
        let uac = number("userAccountControl")
            .and_then(|u| u32::try_from(u).ok())
            .unwrap_or(NORMAL_ACCOUNT);
        let has_password =
            number("pwdLastSet").is_some_and(|t| t != 0) || number("msDS-KeyVersionNumber").is_some_and(|k| k > 1);
        Ok(AdUser { uac, has_password })
    }

    /// Enables the AD user at `dn` when it has a password or gets one
    /// (`initial_password = "random"`); otherwise leaves it disabled. Clears
    /// PASSWD_NOTREQD either way. Returns what the report should say.
    async fn enable_ad(&self, ldap: &mut Ldap, dn: &str, user: AdUser) -> LdapResult<Option<String>> {
        let enabled = user.uac & !(ACCOUNTDISABLE | PASSWD_NOTREQD);
        let (mods, note) = match (user.has_password, self.config.initial_password) {
            (true, _) => (vec![uac_mod(enabled)], None),
            (false, InitialPassword::Random) => {
                self.config.check_initial_password()?;
                let password = crate::password::random();
                let mods = vec![
                    Mod::Replace(
                        b"unicodePwd".to_vec(),
                        [crate::password::unicode_pwd(&password)].into_iter().collect(),
                    ),
                    // Must change at the next logon.
                    Mod::Replace(b"pwdLastSet".to_vec(), [b"0".to_vec()].into_iter().collect()),
                    uac_mod(enabled),
                ];
                (mods, Some(RANDOM_PASSWORD))
            }
            (false, InitialPassword::None) => {
                tracing::warn!(dn, "an Active Directory account without a password is left disabled");
                let disabled = (user.uac | ACCOUNTDISABLE) & !PASSWD_NOTREQD;
                let mods = if disabled == user.uac {
                    vec![]
                } else {
                    vec![uac_mod(disabled)]
                };
                (mods, Some(NO_PASSWORD))
            }
        };
        if !mods.is_empty() {
            check(
                ldap.with_timeout(self.config.op_timeout()).modify(dn, mods).await?,
                dn,
                &[],
            )?;
        }
        Ok(note.map(str::to_owned))
    }

    async fn update(&self, target: &TargetId, changes: &[idsync_core::FieldChange]) -> LdapResult<()> {
        let mut dn = self.dn_of(target).await?;
        let mut ldap = self.handle().await?;
        let naming = self.config.naming_attribute.clone();
        let mut mods: Vec<Mod<String>> = Vec::new();
        for c in changes {
            if c.field == CONTAINER_FIELD || c.field.eq_ignore_ascii_case(&naming) {
                let Some(new) = &c.new else { continue };
                let rdn_value = if c.field == CONTAINER_FIELD {
                    None
                } else {
                    Some(format!("{naming}={}", dn_escape(new.as_str())))
                };
                let current_rdn = dn[..dn.len() - parent(&dn).len()].trim_end_matches(',').to_owned();
                let rdn = rdn_value.unwrap_or(current_rdn);
                let superior = if c.field == CONTAINER_FIELD {
                    Some(new.as_str())
                } else {
                    None
                };
                check(
                    ldap.with_timeout(self.config.op_timeout())
                        .modifydn(&dn, &rdn, true, superior)
                        .await?,
                    &dn,
                    &[],
                )?;
                dn = format!("{rdn},{}", superior.unwrap_or(parent(&dn)));
                continue;
            }
            mods.push(match &c.new {
                Some(v) => Mod::Replace(c.field.clone(), [v.clone()].into_iter().collect()),
                None => Mod::Delete(c.field.clone(), HashSet::new()),
            });
        }
        if !mods.is_empty() {
            check(
                ldap.with_timeout(self.config.op_timeout()).modify(&dn, mods).await?,
                &dn,
                &[16],
            )?;
        }
        Ok(())
    }

    /// Disables or enables an account; returns what the report should say.
    async fn set_enabled(&self, target: &TargetId, enabled: bool) -> LdapResult<Option<String>> {
        let dn = self.dn_of(target).await?;
        let mut ldap = self.handle().await?;
        if self.config.flavor == Flavor::Ad {
            let user = self.ad_user(&mut ldap, &dn).await?;
            if enabled {
                return self.enable_ad(&mut ldap, &dn, user).await;
            }
            let disabled = (user.uac | ACCOUNTDISABLE) & !PASSWD_NOTREQD;
            let result = ldap
                .with_timeout(self.config.op_timeout())
                .modify(&dn, vec![uac_mod(disabled)])
                .await?;
            check(result, &dn, &[])?;
            return Ok(None);
        }
        let attr = self.config.disabled_attribute.clone().ok_or_else(|| {
            LdapError::Config("generic LDAP can disable only with `disabled_attribute` configured".into())
        })?;
        let m = if enabled {
            Mod::Delete(attr, HashSet::new())
        } else {
            Mod::Replace(attr, ["disabled".to_owned()].into_iter().collect())
        };
        check(
            ldap.with_timeout(self.config.op_timeout()).modify(&dn, vec![m]).await?,
            &dn,
            &[16],
        )?;
        Ok(None)
    }

    /// Applies one operation other than a membership change.
    async fn apply_one(&self, op: &TargetOp) -> Result<Applied> {
        let done = |t: &TargetId| Applied::to(t.clone());
        let result = match op {
            TargetOp::Create { kind, link, fields } => self.create(*kind, link, fields).await,
            TargetOp::SetLink { target, link, .. } => {
                async {
                    let dn = self.dn_of(target).await?;
                    let mut ldap = self.handle().await?;
                    let m = Mod::Replace(
                        self.config.link_attr().to_owned(),
                        [link_value(link)].into_iter().collect(),
                    );
                    check(
                        ldap.with_timeout(self.config.op_timeout()).modify(&dn, vec![m]).await?,
                        &dn,
                        &[],
                    )?;
                    Ok(done(target))
                }
                .await
            }
            TargetOp::Update { target, changes, .. } => self.update(target, changes).await.map(|()| done(target)),
            TargetOp::SetEnabled { target, enabled, .. } => {
                self.set_enabled(target, *enabled).await.map(|note| Applied {
                    note,
                    ..Applied::to(target.clone())
                })
            }
            TargetOp::Delete { target, .. } => {
                async {
                    let dn = self.dn_of(target).await?;
                    check(
                        self.handle()
                            .await?
                            .with_timeout(self.config.op_timeout())
                            .delete(&dn)
                            .await?,
                        &dn,
                        &[],
                    )?;
                    Ok(done(target))
                }
                .await
            }
            TargetOp::AddMember { .. } | TargetOp::RemoveMember { .. } => {
                return Err(
                    Error::new(ErrorKind::Internal, "a membership change is applied with its group's")
                        .with_backend(crate::NAME),
                );
            }
            other => return Err(idsync_core::unsupported(crate::NAME, &format!("{other:?}"))),
        };
        result.map_err(|e| e.into_core("apply"))
    }
}

#[async_trait]
impl Target for LdapTarget {
    fn backend(&self) -> &'static str {
        crate::NAME
    }

    fn capabilities(&self) -> TargetCapabilities {
        let disable = self.config.flavor == Flavor::Ad || self.config.disabled_attribute.is_some();
        TargetCapabilities::default()
            .with_groups(true)
            .with_disable(disable)
            .with_disable_groups(false)
            .with_delete(true)
            .with_veto(false)
            .with_batch(self.config.members_per_modify.max(1))
    }

    async fn linked(&self, profile: ProfileId) -> Result<BoxStream<'_, Result<TargetAccount>>> {
        let prefix = format!("idsync:{profile}:");
        let filter = format!("({}={}*)", self.config.link_attr(), ldap_escape(prefix.as_str()));
        let entries = self.search_all(&filter).await.map_err(|e| e.into_core("linked"))?;
        let ids: HashMap<String, TargetId> = entries
            .iter()
            .filter_map(|e| Some((dn_key(&e.dn), TargetId(id_of(&self.config, e).ok()?.0))))
            .collect();
        let accounts = self
            .accounts(entries, Some(&ids))
            .await
            .map_err(|e| e.into_core("linked"))?;
        Ok(futures::stream::iter(accounts.into_iter().map(Ok)).boxed())
    }

    async fn lookup(&self, lookups: &[Lookup]) -> Result<Vec<TargetAccount>> {
        let mut found: HashMap<TargetId, TargetAccount> = HashMap::new();
        for l in lookups {
            let filter = match l {
                Lookup::Field { field, value, .. } => {
                    format!("({}={})", ldap_escape(field.as_str()), ldap_escape(value.trim()))
                }
                Lookup::External { external, .. } => {
                    format!(
                        "({}=idsync:*:{})",
                        self.config.link_attr(),
                        ldap_escape(external.0.as_str())
                    )
                }
                other => return Err(idsync_core::unsupported(crate::NAME, &format!("{other:?}"))),
            };
            let entries = self.search_all(&filter).await.map_err(|e| e.into_core("lookup"))?;
            for a in self.accounts(entries, None).await.map_err(|e| e.into_core("lookup"))? {
                let kind_ok = match l {
                    Lookup::Field { kind, .. } | Lookup::External { kind, .. } => a.kind == *kind,
                    _ => false,
                };
                let external_ok = match l {
                    Lookup::External { external, .. } => a.link.as_ref().is_some_and(|k| &k.external == external),
                    _ => true,
                };
                if kind_ok && external_ok {
                    found.insert(a.id.clone(), a);
                }
            }
        }
        Ok(found.into_values().collect())
    }

    async fn apply(&self, op: &TargetOp) -> Result<Applied> {
        self.apply_batch(std::slice::from_ref(op))
            .await
            .pop()
            .unwrap_or_else(|| {
                Err(Error::new(ErrorKind::Internal, "no result for the operation").with_backend(crate::NAME))
            })
    }

    /// A group's membership changes go out together: modifies of up to
    /// `members_per_modify` `member` values, after the DNs of the accounts
    /// they name were found in few searches (see
    /// [`LdapConfig::members_per_modify`]); every other operation alone;
    /// eight groups and operations at once.
    async fn apply_batch(&self, ops: &[TargetOp]) -> Vec<Result<Applied>> {
        // Nothing is written with an initial password that cannot be sent.
        if let Err(e) = self.config.check_initial_password() {
            return ops.iter().map(|_| Err(e.to_core("apply"))).collect();
        }
        let mut groups: BTreeMap<&TargetId, Vec<members::Change<'_>>> = BTreeMap::new();
        let mut others = Vec::new();
        for (index, op) in ops.iter().enumerate() {
            let (group, member, add) = match op {
                TargetOp::AddMember { group, member } => (group, member, true),
                TargetOp::RemoveMember { group, member } => (group, member, false),
                _ => {
                    others.push((index, op));
                    continue;
                }
            };
            groups
                .entry(group)
                .or_default()
                .push(members::Change { index, add, member });
        }
        let ids: BTreeSet<&TargetId> = groups
            .iter()
            .flat_map(|(group, changes)| std::iter::once(*group).chain(changes.iter().map(|c| c.member)))
            .collect();
        let dns = if ids.is_empty() {
            HashMap::new()
        } else {
            self.dns_of(ids).await
        };
        let dns = &dns;
        let mut jobs: Vec<BoxFuture<'_, Vec<members::Done>>> = Vec::new();
        for (group, changes) in groups {
            jobs.push(self.change_members(group, changes, dns).boxed());
        }
        for (index, op) in others {
            jobs.push(async move { vec![(index, self.apply_one(op).await)] }.boxed());
        }
        idsync_core::gather_batch(ops.len(), jobs, OPS_AT_ONCE, crate::NAME).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_round_trip_and_reject_foreign_values() {
        let link = Link {
            profile: ProfileId("6f1c2a0e-8d7b-4c55-9a8e-3b2f1d4c5e6a".parse().unwrap()),
            external: ExternalId("a:b".into()),
        };
        assert_eq!(parse_link(&link_value(&link)), Some(link));
        assert_eq!(parse_link("made by hand"), None);
        assert_eq!(parse_link("idsync:not-a-uuid:x"), None);
    }
}
