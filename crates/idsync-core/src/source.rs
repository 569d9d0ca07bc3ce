//! The `Source` trait: the authoritative directory, read and never written.

use std::fmt;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{ExternalId, SourceObject};
use crate::scope::Scope;

/// What a source can do. `Default` means "nothing": a new flag starts off
/// everywhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SourceCapabilities {
    /// Delta reads from a cursor.
    pub delta: bool,
    /// Single-object reads (just-in-time sync at first login).
    pub read_one: bool,
    /// Groups with members.
    pub groups: bool,
    /// A group may go on naming a member after that member was deleted,
    /// moved or renamed, without the group itself changing (LDAP groups
    /// name members by DN; without referential integrity the DN goes
    /// stale). A delta then tells nothing about those groups, so the engine
    /// re-reads the groups that named an object a delta changed. (Groups
    /// that named a deleted object are re-read whatever the source.)
    pub stale_members: bool,
}

/// How a full read ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Completeness {
    /// Every object in scope was read.
    Complete,
    /// Something was not read: the planner never deprovisions on it.
    Partial {
        /// Why: size limit, connection lost, skipped container, bad record.
        reason: String,
    },
}

impl SourceCapabilities {
    /// With delta reads.
    pub fn with_delta(mut self, delta: bool) -> Self {
        self.delta = delta;
        self
    }

    /// With single-object reads.
    pub fn with_read_one(mut self, read_one: bool) -> Self {
        self.read_one = read_one;
        self
    }

    /// With groups.
    pub fn with_groups(mut self, groups: bool) -> Self {
        self.groups = groups;
        self
    }

    /// Member references may go stale.
    pub fn with_stale_members(mut self, stale_members: bool) -> Self {
        self.stale_members = stale_members;
        self
    }
}

impl Completeness {
    /// True for [`Completeness::Complete`].
    pub fn is_complete(&self) -> bool {
        matches!(self, Completeness::Complete)
    }
}

/// An opaque position in the source's change stream (a syncrepl cookie, a
/// DirSync cookie, a USN, a timestamp), as text. Only its source reads it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(pub String);

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({} bytes)", self.0.len())
    }
}

/// One item of a full read.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ReadItem {
    /// An object in scope.
    Object(SourceObject),
    /// The last item: how the read ended, and where a delta read may start.
    End {
        /// Complete or Partial.
        completeness: Completeness,
        /// The cursor for the next delta read, when the source has deltas.
        cursor: Option<Cursor>,
    },
}

/// One item of a delta read.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum DeltaItem {
    /// An object added or changed since the cursor, whole (adapters that
    /// receive only changed attributes read the rest).
    Changed(SourceObject),
    /// An object deleted since the cursor.
    Deleted(ExternalId),
    /// An object still present (syncrepl "present" mode): when a delta lists
    /// present ids, every linked id neither present nor changed is gone.
    Present(ExternalId),
    /// The last item.
    End {
        /// The cursor for the next delta read.
        cursor: Cursor,
    },
    /// The cursor is unknown, expired or from another server: do a full read.
    ResyncRequired {
        /// Why.
        reason: String,
    },
}

/// The authoritative directory.
///
/// Contract: `read_full` yields every object in scope and then exactly one
/// [`ReadItem::End`]; a stream that stops without it counts as Partial. An
/// `Err` item concerns one object (naming it) and the read goes on; an error
/// that [stops the run](crate::Error::stops_run) ends it. `read_delta`
/// yields changes and then exactly one `End` or `ResyncRequired`.
/// A source never modifies the directory.
#[async_trait]
pub trait Source: Send + Sync + fmt::Debug + 'static {
    /// The backend's name (`"ldap"`, `"memory"`, …), used in errors and logs.
    fn backend(&self) -> &'static str;

    /// What this source can do.
    fn capabilities(&self) -> SourceCapabilities;

    /// Reads every object in scope.
    async fn read_full(&self, scope: &Scope) -> Result<BoxStream<'_, Result<ReadItem>>>;

    /// Reads what changed since `from`. Sources without deltas answer
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    async fn read_delta(&self, scope: &Scope, from: &Cursor) -> Result<BoxStream<'_, Result<DeltaItem>>>;

    /// Reads one object by id: `None` when it does not exist (any more) or
    /// when it is outside what the source applies of `scope` itself (a
    /// filter, containers, kinds), so that one object read alone is
    /// admitted exactly when a full read would list it.
    async fn read_one(&self, scope: &Scope, id: &ExternalId) -> Result<Option<SourceObject>>;

    /// The users in scope whose `attribute` equals `value` (compared as the
    /// directory compares it: LDAP and SCIM ignore case), for a sync at
    /// login by name. The default reads in full and compares trimmed,
    /// case-insensitive text; sources that can search override it.
    async fn find_users(&self, scope: &Scope, attribute: &str, value: &str) -> Result<Vec<SourceObject>> {
        use futures::StreamExt;
        let mut found = Vec::new();
        let mut stream = self.read_full(scope).await?;
        while let Some(item) = stream.next().await {
            if let ReadItem::Object(o) = item?
                && o.kind == crate::model::ObjectKind::User
                && o.attributes.get(attribute).is_some_and(|vs| {
                    vs.iter()
                        .filter_map(|v| v.as_text())
                        .any(|v| v.trim().eq_ignore_ascii_case(value.trim()))
                })
            {
                found.push(o);
            }
        }
        Ok(found)
    }
}
