//! `LdapSource`: full reads with paged searches and ranged `member`
//! retrieval, ending Partial when anything was not read.

use std::collections::HashMap;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use idsync_core::{
    Completeness, Cursor, DeltaItem, ExternalId, ReadItem, Result, Scope, Source, SourceCapabilities, SourceObject,
};
use ldap3::adapters::{Adapter, PagedResults};
use ldap3::{Ldap, SearchEntry};
use tokio::sync::mpsc;

use crate::client::connect;
use crate::config::{Flavor, LdapConfig};
use crate::delta::changes::Outcome;
use crate::error::LdapError;
use crate::map::{dn_key, is_group, to_object};
use crate::read::{Listed, all_members, read_object};

/// A directory read as the authoritative source. Never writes to it.
#[derive(Clone, Debug)]
pub struct LdapSource {
    config: LdapConfig,
}

impl LdapSource {
    /// A source; nothing is contacted until a read.
    pub fn new(config: LdapConfig) -> Self {
        LdapSource { config }
    }

    /// A source whose bind has been tried once (wrong credentials fail here).
    pub async fn connect(config: LdapConfig) -> Result<Self> {
        let mut ldap = connect(&config).await.map_err(|e| e.into_core("connect"))?;
        let _ = ldap.unbind().await;
        Ok(LdapSource { config })
    }

    fn attributes(&self) -> Vec<String> {
        let mut attrs = if self.config.attributes.is_empty() {
            vec!["*".to_owned()]
        } else {
            self.config.attributes.clone()
        };
        let extra: &[&str] = match self.config.flavor {
            Flavor::Ad => &[
                "objectGUID",
                "objectSid",
                "sIDHistory",
                "userAccountControl",
                "objectClass",
                "member",
            ],
            Flavor::Generic => &["entryUUID", "objectClass", "member", "uniqueMember"],
        };
        attrs.extend(extra.iter().map(|s| (*s).to_owned()));
        attrs
    }

    /// The search filter of a read: the flavour's (or configured) user and
    /// group filters, and the scope's. A filter that does not parse is a
    /// configuration error, found before anything is read.
    fn filter(&self, scope: &Scope) -> std::result::Result<String, LdapError> {
        let kinds = format!("(|{}{})", self.config.users(), self.config.groups());
        checked(
            match &scope.filter {
                Some(f) => {
                    checked(f.clone(), "scope.filter")?;
                    format!("(&{kinds}{f})")
                }
                None => kinds,
            },
            "user_filter or group_filter",
        )
    }

    fn listed(&self, scope: &Scope) -> std::result::Result<Listed, LdapError> {
        Ok(Listed {
            filter: self.filter(scope)?,
            bases: self.bases(scope),
        })
    }

    fn bases(&self, scope: &Scope) -> Vec<String> {
        if scope.containers.is_empty() {
            vec![self.config.base_dn.clone()]
        } else {
            scope.containers.clone()
        }
    }

    /// AD with assigned groups: the filter pushes the scope down with
    /// LDAP_MATCHING_RULE_IN_CHAIN, so only the groups, their nested groups
    /// and their members (at any depth) are read. The core still resolves
    /// the assigned groups on what comes back.
    async fn in_chain_filter(&self, ldap: &mut Ldap, scope: &Scope) -> std::result::Result<String, LdapError> {
        const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";
        let name_attr = scope.group_name_attribute.as_deref().unwrap_or("cn");
        let mut dns = Vec::new();
        for name in &scope.groups {
            let (base, search_scope, filter) = if crate::map::uuid_like(name) {
                crate::map::by_id(&self.config, name)
            } else {
                let filter = format!("(&{}({name_attr}={}))", self.config.groups(), ldap3::ldap_escape(name));
                (self.config.base_dn.clone(), ldap3::Scope::Subtree, filter)
            };
            let found = ldap
                .with_timeout(self.config.op_timeout())
                .search(&base, search_scope, &filter, vec!["1.1"])
                .await?;
            match found.success() {
                Ok((entries, _)) => dns.extend(
                    entries
                        .into_iter()
                        .filter(|e| !e.is_ref())
                        .map(|e| SearchEntry::construct(e).dn),
                ),
                Err(ldap3::LdapError::LdapResult { result }) if result.rc == 32 => {}
                Err(e) => return Err(e.into()),
            }
        }
        if dns.is_empty() {
            tracing::warn!(groups = ?scope.groups, "none of the assigned groups exists");
        }
        let (mut members, mut groups) = (String::new(), String::new());
        for dn in &dns {
            let dn = ldap3::ldap_escape(dn);
            members.push_str(&format!("(memberOf:{IN_CHAIN}:={dn})"));
            groups.push_str(&format!("(distinguishedName={dn})(memberOf:{IN_CHAIN}:={dn})"));
        }
        let (users, kinds) = (self.config.users(), self.config.groups());
        let chain = format!("(|(&{users}(|{members}))(&{kinds}(|{groups})))");
        match &scope.filter {
            Some(f) => {
                checked(f.clone(), "scope.filter")?;
                checked(format!("(&{chain}{f})"), "user_filter or group_filter")
            }
            None => checked(chain, "user_filter or group_filter"),
        }
    }
}

/// `filter` when it parses as an LDAP filter (RFC 4515), else a
/// configuration error naming the setting it came from.
fn checked(filter: String, setting: &str) -> std::result::Result<String, LdapError> {
    match ldap3::parse_filter(&filter) {
        Ok(_) => Ok(filter),
        Err(()) => Err(LdapError::Config(format!(
            "{setting}: {filter:?} is not a valid LDAP filter (RFC 4515)"
        ))),
    }
}

/// Where a named-change delta starts.
enum Named {
    /// An AD cursor (DirSync or uSNChanged).
    Ad(crate::delta::ad::AdCursor),
    /// A GeneralizedTime (modifyTimestamp).
    Since(String),
}

/// The items a reading task sends, as a stream.
fn received<T: Send + 'static>(rx: mpsc::Receiver<T>) -> BoxStream<'static, T> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).boxed()
}

/// What one read sends to the stream.
type Tx = mpsc::Sender<Result<ReadItem>>;

async fn read(
    mut ldap: Ldap,
    config: LdapConfig,
    attrs: Vec<String>,
    filter: String,
    bases: Vec<String>,
    cursor: Option<Cursor>,
    tx: Tx,
) {
    let mut partial: Vec<String> = Vec::new();
    let mut ids: HashMap<String, ExternalId> = HashMap::new();
    // Groups wait for the end, when their member DNs can be turned into
    // ids; `false` marks a group whose ranged members were not all read.
    let mut groups: Vec<(SourceObject, Vec<String>, bool)> = Vec::new();
    for base in &bases {
        let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![Box::new(PagedResults::new(config.page_size.max(1)))];
        let mut stream = match ldap
            .with_timeout(config.op_timeout())
            .streaming_search_with(adapters, base, ldap3::Scope::Subtree, &filter, attrs.clone())
            .await
        {
            Ok(s) => s,
            Err(e) => {
                partial.push(format!("the search under {base} failed: {e}"));
                continue;
            }
        };
        loop {
            match stream.next().await {
                Ok(Some(re)) if re.is_ref() => partial.push(format!("a referral under {base} was not followed")),
                Ok(Some(re)) if re.is_intermediate() => {}
                Ok(Some(re)) => {
                    let entry = SearchEntry::construct(re);
                    let key = dn_key(&entry.dn);
                    let mut ranged = Vec::new();
                    let mut whole = true;
                    if is_group(&entry)
                        && let Err(e) =
                            all_members(stream.ldap_handle(), config.op_timeout(), &entry, &mut ranged).await
                    {
                        partial.push(format!("the members of {} were not all read: {e}", entry.dn));
                        whole = false;
                    }
                    let item = match to_object(&config, entry) {
                        Ok((object, mut members)) => {
                            ids.insert(key, object.id.clone());
                            if object.kind == idsync_core::ObjectKind::Group {
                                members.extend(ranged);
                                groups.push((object, members, whole));
                                continue;
                            }
                            Ok(ReadItem::Object(object))
                        }
                        Err(e) => Err(e.into_core("read_full")),
                    };
                    if tx.send(item).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    partial.push(format!("the connection failed during the read under {base}: {e}"));
                    break;
                }
            }
        }
        let result = stream.finish().await;
        match result.rc {
            0 => {}
            4 => partial.push(format!("the server's size limit cut the read under {base} short")),
            32 => partial.push(format!("the container {base} cannot be read (no such object)")),
            10 => partial.push(format!("the server referred the read under {base} elsewhere")),
            rc => partial.push(format!("the read under {base} ended with rc={rc} ({})", result.text)),
        }
    }
    // On a read cut short, a member DN under a base that did not resolve may
    // be an entry the read never reached: its group would look as if it had
    // left, so such groups are left out (not read, so nothing is removed).
    let cut_short = !partial.is_empty();
    let mut left_out = 0;
    for (mut group, members, whole) in groups {
        let unread =
            |dn: &String| !ids.contains_key(&dn_key(dn)) && bases.iter().any(|b| idsync_core::dn::within(dn, b));
        if cut_short && (!whole || members.iter().any(unread)) {
            left_out += 1;
            continue;
        }
        group.members = members.iter().filter_map(|dn| ids.get(&dn_key(dn)).cloned()).collect();
        if tx.send(Ok(ReadItem::Object(group))).await.is_err() {
            return;
        }
    }
    if left_out > 0 {
        partial.push(format!(
            "{left_out} group(s) left out: some of their members were not read"
        ));
    }
    let completeness = if partial.is_empty() {
        Completeness::Complete
    } else {
        tracing::warn!(reasons = ?partial, "partial LDAP read");
        Completeness::Partial {
            reason: partial.join("; "),
        }
    };
    let _ = tx.send(Ok(ReadItem::End { completeness, cursor })).await;
    let _ = ldap.unbind().await;
}

#[async_trait]
impl Source for LdapSource {
    fn backend(&self) -> &'static str {
        crate::NAME
    }

    fn capabilities(&self) -> SourceCapabilities {
        // Deltas: syncrepl on generic LDAP, DirSync or uSNChanged on AD.
        // Groups name members by DN. AD keeps `member` right through
        // renames, moves and deletes; OpenLDAP does so only with the
        // refint overlay, which idsync cannot see.
        SourceCapabilities::default()
            .with_delta(true)
            .with_read_one(true)
            .with_groups(true)
            .with_stale_members(self.config.flavor == Flavor::Generic)
    }

    async fn read_full(&self, scope: &Scope) -> Result<BoxStream<'_, Result<ReadItem>>> {
        let bases = self.bases(scope);
        // A filter that does not parse stops the run before anything is read.
        let filter = self.filter(scope).map_err(|e| e.into_core("read_full"))?;
        // Connect first: a directory that cannot be reached fails the read
        // as a whole (the run stops, nothing is planned).
        let mut ldap = connect(&self.config).await.map_err(|e| e.into_core("read_full"))?;
        // Generic LDAP: take a syncrepl cookie before the read, so changes
        // made during it are seen again by the next delta (never lost);
        // without syncrepl, a modifyTimestamp cursor.
        let cursor = match self.config.flavor {
            Flavor::Generic => {
                // The cookie carries the server's change sequence, not the
                // filter: a filter matching nothing gets it without a second pass.
                let nothing = Listed {
                    filter: "(entryUUID=00000000-0000-0000-0000-000000000000)".into(),
                    bases: Vec::new(),
                };
                let first =
                    crate::delta::syncrepl::refresh(&mut ldap, &self.config, &nothing, vec!["1.1".into()], None, None);
                match first.await {
                    Ok(Some(cookie)) if !cookie.is_empty() => Some(crate::delta::syncrepl::cursor(&cookie)),
                    Ok(_) => {
                        tracing::info!("no syncrepl cookie from this server: deltas by modifyTimestamp");
                        Some(crate::delta::timestamp::cursor_now())
                    }
                    Err(e) => {
                        tracing::info!(error = %e, "no syncrepl on this server: deltas by modifyTimestamp");
                        Some(crate::delta::timestamp::cursor_now())
                    }
                }
            }
            Flavor::Ad => match crate::delta::ad::start(&mut ldap, &self.config).await {
                Ok(cursor) => Some(cursor.to_cursor()),
                Err(e) => {
                    tracing::info!(error = %e, "no AD delta cursor: the next run reads in full");
                    None
                }
            },
        };
        let (tx, rx) = mpsc::channel(1024);
        let filter = if self.config.flavor == Flavor::Ad && !scope.groups.is_empty() {
            self.in_chain_filter(&mut ldap, scope)
                .await
                .map_err(|e| e.into_core("read_full"))?
        } else {
            filter
        };
        let (config, attrs) = (self.config.clone(), self.attributes());
        tokio::spawn(read(ldap, config, attrs, filter, bases, cursor, tx));
        Ok(received(rx))
    }

    async fn read_delta(&self, scope: &Scope, from: &Cursor) -> Result<BoxStream<'_, Result<DeltaItem>>> {
        let resync = |reason: &str| {
            let item = DeltaItem::ResyncRequired {
                reason: reason.to_owned(),
            };
            Ok(futures::stream::iter(vec![Ok(item)]).boxed())
        };
        // AD's cursors and modifyTimestamp ones name what changed; the
        // changed objects are then read whole.
        let named = match self.config.flavor {
            Flavor::Ad => match crate::delta::ad::AdCursor::parse(from) {
                Some(from) => Some(Named::Ad(from)),
                None => return resync("the cursor is not an Active Directory cursor"),
            },
            Flavor::Generic => crate::delta::timestamp::parse(from).map(|t| Named::Since(t.to_owned())),
        };
        if let Some(named) = named {
            let listed = self.listed(scope).map_err(|e| e.into_core("read_delta"))?;
            let mut ldap = connect(&self.config).await.map_err(|e| e.into_core("read_delta"))?;
            let (config, attrs) = (self.config.clone(), self.attributes());
            let (tx, rx) = mpsc::channel(1024);
            tokio::spawn(async move {
                let outcome = match named {
                    Named::Ad(from) => crate::delta::ad::delta(&mut ldap, &config, &listed, attrs, from, &tx).await,
                    Named::Since(t) => {
                        crate::delta::timestamp::delta(&mut ldap, &config, &listed, attrs, &t, &tx).await
                    }
                };
                let item = match outcome {
                    Ok(Outcome::Next(cursor)) => Ok(DeltaItem::End { cursor }),
                    Ok(Outcome::Resync(reason)) => Ok(DeltaItem::ResyncRequired { reason }),
                    // No End item: the engine keeps the old cursor and reads again.
                    Err(e) => Err(e.into_core("read_delta")),
                };
                let _ = tx.send(item).await;
                let _ = ldap.unbind().await;
            });
            return Ok(received(rx));
        }
        let Some(cookie) = crate::delta::syncrepl::cookie(from) else {
            return resync("the cursor is neither a syncrepl cookie nor a modifyTimestamp cursor");
        };
        let listed = self.listed(scope).map_err(|e| e.into_core("read_delta"))?;
        let mut ldap = connect(&self.config).await.map_err(|e| e.into_core("read_delta"))?;
        let (config, attrs) = (self.config.clone(), self.attributes());
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            match crate::delta::syncrepl::refresh(&mut ldap, &config, &listed, attrs, Some(cookie), Some(&tx)).await {
                Ok(Some(cookie)) => {
                    let _ = tx
                        .send(Ok(DeltaItem::End {
                            cursor: crate::delta::syncrepl::cursor(&cookie),
                        }))
                        .await;
                }
                Ok(None) => {
                    let reason = "the server no longer has this cookie's changes".to_owned();
                    let _ = tx.send(Ok(DeltaItem::ResyncRequired { reason })).await;
                }
                // No End item: the engine keeps the old cursor and reads again.
                Err(e) => {
                    let _ = tx.send(Err(e.into_core("read_delta"))).await;
                }
            }
            let _ = ldap.unbind().await;
        });
        Ok(received(rx))
    }

    /// Reads the entry by id AND the profile's filter: an entry the filter
    /// leaves out is `None`, as it is absent from a full read.
    async fn read_one(&self, scope: &Scope, id: &ExternalId) -> Result<Option<SourceObject>> {
        let listed = self.listed(scope).map_err(|e| e.into_core("read_one"))?;
        let mut ldap = connect(&self.config).await.map_err(|e| e.into_core("read_one"))?;
        let (base, search_scope, by_id) = crate::map::by_id(&self.config, &id.0);
        let found = read_object(
            &mut ldap,
            &self.config,
            &listed,
            (&base, search_scope, &by_id),
            self.attributes(),
        )
        .await;
        let _ = ldap.unbind().await;
        found.map_err(|e| e.into_core("read_one"))
    }

    /// One search per base for the users whose `attribute` equals `value`
    /// (the server's matching rule, case-insensitive for names and mail),
    /// within the profile's filter and containers.
    async fn find_users(&self, scope: &Scope, attribute: &str, value: &str) -> Result<Vec<SourceObject>> {
        let listed = self.listed(scope).map_err(|e| e.into_core("find_users"))?;
        let filter = format!(
            "(&{}({attribute}={}){})",
            self.config.users(),
            ldap3::ldap_escape(value.trim()),
            listed.filter
        );
        let filter = checked(filter, "login_attributes").map_err(|e| e.into_core("find_users"))?;
        let mut ldap = connect(&self.config).await.map_err(|e| e.into_core("find_users"))?;
        let mut found = Vec::new();
        let mut failed = None;
        for base in &listed.bases {
            let entries = ldap
                .with_timeout(self.config.op_timeout())
                .search(base, ldap3::Scope::Subtree, &filter, self.attributes())
                .await
                .and_then(|r| r.success());
            let entries = match entries {
                Ok((entries, _)) => entries,
                Err(ldap3::LdapError::LdapResult { result }) if result.rc == 32 => continue,
                Err(e) => {
                    failed = Some(LdapError::from(e));
                    break;
                }
            };
            for re in entries.into_iter().filter(|re| !re.is_ref()) {
                match to_object(&self.config, SearchEntry::construct(re)) {
                    Ok((object, _)) if object.kind == idsync_core::ObjectKind::User => found.push(object),
                    Ok(_) => {}
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        let _ = ldap.unbind().await;
        match failed {
            Some(e) => Err(e.into_core("find_users")),
            None => Ok(found),
        }
    }
}
