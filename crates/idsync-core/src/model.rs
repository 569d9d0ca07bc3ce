//! The identity model: who an object is (profile id, external id), what the
//! source says of it, and what the target holds.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One sync profile (source + scope + mapping + rules → target): the seeds'
/// "ADID". Part of every link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProfileId(pub Uuid);

impl ProfileId {
    /// A new random profile id.
    pub fn new_random() -> Self {
        ProfileId(Uuid::new_v4())
    }
}

impl fmt::Display for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The source's immutable identity of an object: AD `objectGUID`, LDAP
/// `entryUUID`, SCIM `id`, JumpCloud `_id`. Never a DN or a user name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExternalId(pub String);

impl ExternalId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ExternalId {
    fn from(s: &str) -> Self {
        ExternalId(s.to_owned())
    }
}

impl From<String> for ExternalId {
    fn from(s: String) -> Self {
        ExternalId(s)
    }
}

/// The target's own id of an account (the seeds' "UserUID").
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TargetId(pub String);

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for TargetId {
    fn from(s: &str) -> Self {
        TargetId(s.to_owned())
    }
}

/// The key every managed target account carries: the profile that manages
/// it and the source object it mirrors.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Link {
    /// The managing profile.
    pub profile: ProfileId,
    /// The source object.
    pub external: ExternalId,
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.profile, self.external)
    }
}

/// User or group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A person's account.
    User,
    /// A group (a role in some applications).
    Group,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::User => "user",
            ObjectKind::Group => "group",
        })
    }
}

/// One value of a source attribute: UTF-8 text or raw bytes (objectSid,
/// photos). Binary values are never mapped into text fields as is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttrValue {
    /// UTF-8 text.
    Text(String),
    /// Raw bytes.
    Binary(Vec<u8>),
}

impl AttrValue {
    /// The text, if this value is text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            AttrValue::Text(s) => Some(s),
            AttrValue::Binary(_) => None,
        }
    }
}

/// Multi-valued source attributes, by name. Names are compared as given;
/// adapters store them in the case the directory's schema uses.
pub type Attributes = BTreeMap<String, Vec<AttrValue>>;

/// An object as the source (the authoritative directory) sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceObject {
    /// Immutable identity in the source.
    pub id: ExternalId,
    /// User or group.
    pub kind: ObjectKind,
    /// Where the object lives: a DN's parent (`OU=Sales,DC=acme,DC=test`),
    /// a folder path, or empty where the source has no containers.
    pub container: String,
    /// Its attributes.
    pub attributes: Attributes,
    /// False when the directory disables the account.
    pub enabled: bool,
    /// For groups: the external ids of the members.
    pub members: Vec<ExternalId>,
    /// Other ids that name the same person: AD `objectSid` and `sIDHistory`,
    /// previous GUIDs. A rehire whose new object lists the old id here keeps
    /// the old account.
    pub aliases: Vec<ExternalId>,
}

impl SourceObject {
    /// An enabled object with no attributes.
    pub fn new(id: impl Into<ExternalId>, kind: ObjectKind) -> Self {
        SourceObject {
            id: id.into(),
            kind,
            container: String::new(),
            attributes: Attributes::new(),
            enabled: true,
            members: Vec::new(),
            aliases: Vec::new(),
        }
    }

    /// Builder: sets the container.
    pub fn in_container(mut self, container: impl Into<String>) -> Self {
        self.container = container.into();
        self
    }

    /// Builder: adds a text value to an attribute.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.attributes
            .entry(name.to_owned())
            .or_default()
            .push(AttrValue::Text(value.into()));
        self
    }

    /// Builder: sets the enabled flag.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Builder: adds a member (groups).
    pub fn with_member(mut self, member: impl Into<ExternalId>) -> Self {
        self.members.push(member.into());
        self
    }

    /// Builder: adds an alias.
    pub fn with_alias(mut self, alias: impl Into<ExternalId>) -> Self {
        self.aliases.push(alias.into());
        self
    }

    /// The first text value of an attribute.
    pub fn first_text(&self, name: &str) -> Option<&str> {
        self.attributes.get(name)?.iter().find_map(AttrValue::as_text)
    }
}

/// The mapped fields of a target account: field name → value. Unmapped
/// fields are never listed, compared or written.
pub type Fields = BTreeMap<String, String>;

/// An account (user or group) as the target holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetAccount {
    /// The target's id.
    pub id: TargetId,
    /// The link, when the account is managed by a profile.
    pub link: Option<Link>,
    /// User or group.
    pub kind: ObjectKind,
    /// The account's fields (at least the mapped ones).
    pub fields: Fields,
    /// False when the account is disabled in the target.
    pub enabled: bool,
    /// For groups: the target ids of the members (managed or not).
    pub members: Vec<TargetId>,
}

impl TargetAccount {
    /// An enabled account with no fields.
    pub fn new(id: impl Into<String>, kind: ObjectKind) -> Self {
        TargetAccount {
            id: TargetId(id.into()),
            link: None,
            kind,
            fields: Fields::new(),
            enabled: true,
            members: Vec::new(),
        }
    }
}
