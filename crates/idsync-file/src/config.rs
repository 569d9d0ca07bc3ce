//! Configuration of the file sources.

use std::path::PathBuf;

use serde::Deserialize;

/// An LDIF export (ldifde, slapcat, ldapsearch -LLL) as a source.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LdifConfig {
    /// The file.
    pub path: PathBuf,
    /// The attribute holding the immutable id: `objectGUID` (binary, AD),
    /// `entryUUID` (OpenLDAP), or any text attribute.
    #[serde(default = "default_id")]
    pub id_attribute: String,
    /// Object classes that make an entry a user.
    #[serde(default = "default_user_classes")]
    pub user_classes: Vec<String>,
    /// Object classes that make an entry a group.
    #[serde(default = "default_group_classes")]
    pub group_classes: Vec<String>,
    /// Object classes that exclude an entry (AD computers are users too).
    #[serde(default = "default_exclude_classes")]
    pub exclude_classes: Vec<String>,
    /// Attributes listing a group's members by DN.
    #[serde(default = "default_member_attributes")]
    pub member_attributes: Vec<String>,
}

impl LdifConfig {
    /// Defaults for `path`: objectGUID ids, AD and OpenLDAP object classes.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LdifConfig {
            path: path.into(),
            id_attribute: default_id(),
            user_classes: default_user_classes(),
            group_classes: default_group_classes(),
            exclude_classes: default_exclude_classes(),
            member_attributes: default_member_attributes(),
        }
    }
}

fn default_id() -> String {
    "objectGUID".into()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn default_user_classes() -> Vec<String> {
    strings(&[
        "user",
        "person",
        "inetOrgPerson",
        "organizationalPerson",
        "posixAccount",
    ])
}

fn default_group_classes() -> Vec<String> {
    strings(&["group", "groupOfNames", "groupOfUniqueNames", "posixGroup"])
}

fn default_exclude_classes() -> Vec<String> {
    strings(&["computer"])
}

fn default_member_attributes() -> Vec<String> {
    strings(&["member", "uniqueMember"])
}

/// A CSV file (an HR feed) as a source of users: the header names the
/// attributes, one column holds the id.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CsvConfig {
    /// The file.
    pub path: PathBuf,
    /// The column holding the immutable id (e.g. the employee number).
    pub id_column: String,
    /// A column saying whether the person is active; absent = all active.
    /// An empty cell is active (nothing says the person left); a value in
    /// neither `active_values` nor `inactive_values` is an `InvalidData`
    /// error naming the row's id and the column: the row is not read and
    /// the read is partial, so nobody is disabled or kept on a guess.
    #[serde(default)]
    pub enabled_column: Option<String>,
    /// Values of `enabled_column` that mean active (case-insensitive;
    /// default `true`, `1`, `yes`, `y`, `active`, `enabled`).
    #[serde(default = "default_active")]
    pub active_values: Vec<String>,
    /// Values of `enabled_column` that mean inactive (case-insensitive;
    /// default `false`, `0`, `no`, `n`, `inactive`, `disabled`,
    /// `terminated`, `left`). A value in both lists is inactive.
    #[serde(default = "default_inactive")]
    pub inactive_values: Vec<String>,
    /// A column giving the container (department path, OU).
    #[serde(default)]
    pub container_column: Option<String>,
    /// The field delimiter, one byte; `,` by default.
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
}

impl CsvConfig {
    /// Defaults for `path` with ids in `id_column`.
    pub fn new(path: impl Into<PathBuf>, id_column: &str) -> Self {
        CsvConfig {
            path: path.into(),
            id_column: id_column.to_owned(),
            enabled_column: None,
            active_values: default_active(),
            inactive_values: default_inactive(),
            container_column: None,
            delimiter: default_delimiter(),
        }
    }
}

fn default_active() -> Vec<String> {
    strings(&["true", "1", "yes", "y", "active", "enabled"])
}

fn default_inactive() -> Vec<String> {
    strings(&["false", "0", "no", "n", "inactive", "disabled", "terminated", "left"])
}

fn default_delimiter() -> char {
    ','
}
