//! Configuration of the generic REST adapter: where the API is, how it
//! authenticates, and for each resource (users, groups) the calls, the JSON
//! pointers and the paging style. Every struct is serde with
//! `deny_unknown_fields`, so a typo is a configuration error.

use std::collections::BTreeMap;
use std::fmt;

use idsync_core::{Error, Result};
use idsync_http::{HttpConfig, Method, Pagination};
use serde::Deserialize;
use url::Url;

use crate::NAME;

/// A whole REST API: base URL, HTTP settings (auth, retry, rate limit,
/// TLS) and the two resources.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RestConfig {
    /// Every path is appended to this URL (`https://acme.halopsa.com/api`).
    pub base_url: Url,
    /// Timeouts, TLS, auth, retries and rate limit (`idsync-http`).
    #[serde(default)]
    pub http: HttpConfig,
    /// User accounts.
    pub users: ResourceConfig,
    /// Groups, when the API has them and they are synced.
    #[serde(default)]
    pub groups: Option<ResourceConfig>,
}

impl RestConfig {
    /// An API at `base_url` managing users as `users` says, with default
    /// HTTP settings (no authentication) and no groups.
    pub fn new(base_url: Url, users: ResourceConfig) -> Self {
        RestConfig {
            base_url,
            http: HttpConfig::default(),
            users,
            groups: None,
        }
    }

    /// Reads a configuration from TOML text.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::config(format!("REST configuration: {e}")).with_backend(NAME))
    }

    /// Reads a configuration from JSON text.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::config(format!("REST configuration: {e}")).with_backend(NAME))
    }

    /// The resource of this kind, if configured.
    pub fn resource(&self, kind: idsync_core::ObjectKind) -> Option<&ResourceConfig> {
        match kind {
            idsync_core::ObjectKind::User => Some(&self.users),
            idsync_core::ObjectKind::Group => self.groups.as_ref(),
        }
    }
}

/// One kind of object of the API (users, contacts, groups, roles): how to
/// list, read and write it, and where its parts sit in its JSON.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ResourceConfig {
    /// JSON pointer to the id in an object (default `/id`). Text and
    /// numbers are both accepted.
    #[serde(default = "default_id")]
    pub id: String,
    /// Source: put before every id read from this resource, to keep user
    /// and group ids apart where both count 1, 2, … (e.g. `"group:"`).
    /// Group members are named with the users' prefix. Targets ignore it.
    #[serde(default)]
    pub id_prefix: String,
    /// Write the id into bodies as a JSON number (APIs with integer ids).
    #[serde(default)]
    pub numeric_id: bool,
    /// Target field (or source attribute) → where it sits in the object.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldSpec>,
    /// Where the link `"<profile id>:<external id>"` is kept in the object
    /// (a custom field, an external reference). Required to use the
    /// resource as a target: an account without it is unmanaged.
    #[serde(default)]
    pub link: Option<String>,
    /// Whether the object is enabled (see [`EnabledSpec`]); without it
    /// every object is enabled.
    #[serde(default)]
    pub enabled: Option<EnabledSpec>,
    /// JSON pointer to the container (site, department path) of a source object.
    #[serde(default)]
    pub container: Option<String>,
    /// Groups: JSON pointer to the members array in a group object.
    #[serde(default)]
    pub members: Option<String>,
    /// Groups: JSON pointer to the member id in an element of the members
    /// array (default: the element itself is the id).
    #[serde(default)]
    pub member_id: String,
    /// The listing.
    pub list: ListConfig,
    /// Reads one object (`GET /users/{id}`); a 404 means "no such object".
    #[serde(default)]
    pub get: Option<OperationConfig>,
    /// Creates an object.
    #[serde(default)]
    pub create: Option<OperationConfig>,
    /// Changes some fields of an object.
    #[serde(default)]
    pub update: Option<OperationConfig>,
    /// Disables an object; without it, `update` with the enabled field set.
    #[serde(default)]
    pub disable: Option<OperationConfig>,
    /// Enables an object; without it, `update` with the enabled field set.
    #[serde(default)]
    pub enable: Option<OperationConfig>,
    /// Deletes an object (used only when a profile opts in).
    #[serde(default)]
    pub delete: Option<OperationConfig>,
    /// Groups: adds a member (`{member}` in the path or body).
    #[serde(default)]
    pub add_member: Option<OperationConfig>,
    /// Groups: removes a member.
    #[serde(default)]
    pub remove_member: Option<OperationConfig>,
    /// Asked before a deprovision; its answer decides (HaloPSA: inactivate
    /// a user only when no tickets exist for them).
    #[serde(default)]
    pub veto: Option<VetoConfig>,
}

impl ResourceConfig {
    /// A resource listed by `list`, its id at `/id`, with no fields and no
    /// operation besides the listing.
    pub fn new(list: ListConfig) -> Self {
        ResourceConfig {
            id: default_id(),
            id_prefix: String::new(),
            numeric_id: false,
            fields: BTreeMap::new(),
            link: None,
            enabled: None,
            container: None,
            members: None,
            member_id: String::new(),
            list,
            get: None,
            create: None,
            update: None,
            disable: None,
            enable: None,
            delete: None,
            add_member: None,
            remove_member: None,
            veto: None,
        }
    }
}

fn default_id() -> String {
    "/id".into()
}

/// Where a field sits: a JSON pointer, or a pointer and the JSON type to
/// write (`{ pointer = "/site_id", type = "number" }`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum FieldSpec {
    /// A JSON pointer; the value is written as a string.
    Pointer(String),
    /// A pointer and a type.
    Typed {
        /// The JSON pointer.
        pointer: String,
        /// The JSON type to write.
        #[serde(rename = "type", default)]
        kind: FieldType,
    },
}

impl FieldSpec {
    /// The JSON pointer.
    pub fn pointer(&self) -> &str {
        match self {
            FieldSpec::Pointer(p) | FieldSpec::Typed { pointer: p, .. } => p,
        }
    }

    /// The JSON type written.
    pub fn kind(&self) -> FieldType {
        match self {
            FieldSpec::Pointer(_) => FieldType::String,
            FieldSpec::Typed { kind, .. } => *kind,
        }
    }
}

/// The JSON type of a written field. Values that do not parse as the type
/// are an `InvalidData` error for that object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// A string (default).
    #[default]
    String,
    /// A number.
    Number,
    /// `true` or `false`.
    Bool,
}

/// Where the enabled state is: a flag at a pointer, inverted for flags such
/// as `inactive`. A flag is a JSON boolean, the number `1` or `0`, or one of
/// the words `true`/`false`, `yes`/`no`, `y`/`n`, `1`/`0` (any case). An
/// object with no value there (absent or `null`) is enabled; any other value
/// is an `InvalidData` error naming the object and the pointer: the object
/// is not read, and the read is partial (nothing is deprovisioned).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EnabledSpec {
    /// The JSON pointer.
    pub pointer: String,
    /// True when the flag means "disabled" (`inactive`, `suspended`).
    #[serde(default)]
    pub invert: bool,
}

impl EnabledSpec {
    /// The enabled flag at `pointer`, not inverted.
    pub fn new(pointer: impl Into<String>) -> Self {
        EnabledSpec {
            pointer: pointer.into(),
            invert: false,
        }
    }
}

/// A listing: the call, the paging style, and pointers into each page.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ListConfig {
    /// The path (with its own query, if any), e.g. `/Users?includeinactive=true`.
    pub path: String,
    /// The HTTP method (default GET).
    #[serde(default = "get", with = "method")]
    pub method: Method,
    /// The paging style (`idsync-http`'s `Pagination`; default: none).
    #[serde(default = "no_paging")]
    pub pagination: Pagination,
    /// JSON pointer to the items array in a page (default `""`: the page is the array).
    #[serde(default)]
    pub items: String,
    /// JSON pointer to the total count, when the API gives one.
    #[serde(default)]
    pub total: Option<String>,
    /// JSON pointer to the next cursor (cursor paging).
    #[serde(default)]
    pub next_cursor: Option<String>,
}

impl ListConfig {
    /// `GET path`, one page, the items being the whole body.
    pub fn new(path: impl Into<String>) -> Self {
        ListConfig {
            path: path.into(),
            method: get(),
            pagination: no_paging(),
            items: String::new(),
            total: None,
            next_cursor: None,
        }
    }
}

fn get() -> Method {
    Method::GET
}

fn no_paging() -> Pagination {
    Pagination::None
}

/// One call: method, path template, body template and the statuses it
/// may answer.
///
/// Templates: in the path, `{id}` and `{member}` are replaced by the
/// (URL-encoded) object id and member id. In the body, a string that is
/// exactly `"{object}"` becomes the object built from the fields written
/// (and the link, on create), `"{id}"` / `"{member}"` the ids (numbers when
/// `numeric_id`), `"{enabled}"` / `"{disabled}"` booleans; other strings
/// have `{id}` and `{member}` replaced in their text.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OperationConfig {
    /// The HTTP method.
    #[serde(with = "method")]
    pub method: Method,
    /// The path template.
    pub path: String,
    /// The body template (none: no body, except for create and update,
    /// which send `"{object}"`).
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// Also write the id into `"{object}"` (APIs that update by POSTing
    /// the object with its id, like HaloPSA).
    #[serde(default)]
    pub include_id: bool,
    /// Statuses that mean success (default: any 2xx).
    #[serde(default)]
    pub success: Vec<u16>,
    /// Error statuses that count as success too: 409 for adding a member
    /// already there, 404 for removing one already gone.
    #[serde(default)]
    pub also_ok: Vec<u16>,
    /// Create: JSON pointer to the created object in the answer (default
    /// `""`, the whole body; `/0` for an answer that is an array). Without
    /// an id there, the last segment of a `Location` header is used.
    #[serde(default)]
    pub response: String,
}

impl OperationConfig {
    /// `method path`, with no body template and any success status.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        OperationConfig {
            method,
            path: path.into(),
            body: None,
            include_id: false,
            success: Vec::new(),
            also_ok: Vec::new(),
            response: String::new(),
        }
    }
}

/// The deprovision veto: a call whose answer decides.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct VetoConfig {
    /// The HTTP method (default GET).
    #[serde(default = "get", with = "method")]
    pub method: Method,
    /// The path template (`/Tickets?user_id={id}&open_only=true`).
    pub path: String,
    /// JSON pointer to a count in the answer; denies when it is above 0.
    #[serde(default)]
    pub count: Option<String>,
    /// JSON pointer to an array in the answer; denies when it is not
    /// empty. (Neither `count` nor `items`: the whole body is the array.)
    #[serde(default)]
    pub items: Option<String>,
    /// The reason given, with `{count}` replaced (default "{count} related records exist").
    #[serde(default = "default_reason")]
    pub reason: String,
}

impl VetoConfig {
    /// `GET path`, with the default reason.
    pub fn new(path: impl Into<String>) -> Self {
        VetoConfig {
            method: get(),
            path: path.into(),
            count: None,
            items: None,
            reason: default_reason(),
        }
    }
}

fn default_reason() -> String {
    "{count} related records exist".into()
}

mod method {
    use idsync_http::Method;
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Method, D::Error> {
        let s = String::deserialize(d)?;
        Method::from_bytes(s.to_ascii_uppercase().as_bytes())
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an HTTP method")))
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FieldType::String => "string",
            FieldType::Number => "number",
            FieldType::Bool => "bool",
        })
    }
}
