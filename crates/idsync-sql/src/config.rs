//! Where the target's accounts live: tables and columns.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::client::check_identifier;
use crate::error::SqlError;

/// The type of a table's id column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdType {
    /// An integer the database assigns (SQLite `INTEGER PRIMARY KEY`,
    /// PostgreSQL identity column).
    #[default]
    Integer,
    /// Text; idsync assigns a random UUID to each new row.
    Text,
}

impl IdType {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            IdType::Integer => "BIGINT",
            IdType::Text => "TEXT",
        }
    }
}

/// A table of accounts (users or groups).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TableConfig {
    /// The table (`name` or `schema.name`).
    pub table: String,
    /// The id column (default `id`).
    #[serde(default = "default_id")]
    pub id_column: String,
    /// The id column's type (default integer).
    #[serde(default)]
    pub id_type: IdType,
    /// Target field name → column. Only these fields are read and written;
    /// every mapped column is read and written as text.
    pub columns: BTreeMap<String, String>,
    /// A boolean column, true when the account is enabled. Without it the
    /// target cannot disable accounts of this table.
    #[serde(default)]
    pub enabled_column: Option<String>,
}

impl TableConfig {
    /// The table `table` with these field-to-column `columns`, its id in an
    /// integer column `id`, and no enabled column.
    pub fn new(table: impl Into<String>, columns: BTreeMap<String, String>) -> Self {
        TableConfig {
            table: table.into(),
            id_column: default_id(),
            id_type: IdType::default(),
            columns,
            enabled_column: None,
        }
    }
}

/// The table of group members: one row per (group, member user).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MembershipConfig {
    /// The table.
    pub table: String,
    /// The column holding the group's id.
    pub group_column: String,
    /// The column holding the member user's id.
    pub member_column: String,
}

impl MembershipConfig {
    /// The membership table `table`, with the group's id in `group_column`
    /// and the member's in `member_column`.
    pub fn new(table: impl Into<String>, group_column: impl Into<String>, member_column: impl Into<String>) -> Self {
        MembershipConfig {
            table: table.into(),
            group_column: group_column.into(),
            member_column: member_column.into(),
        }
    }
}

/// How a [`crate::SqlTarget`] maps accounts to tables. The default is the
/// schema that [`crate::SqlTarget::create_schema`] creates:
/// `idsync_users(id, user_name, email, given_name, family_name,
/// display_name, enabled)`, `idsync_groups(id, name, description,
/// enabled)`, `idsync_members(group_id, member_id)` and `idsync_links`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SqlTargetConfig {
    /// The users table.
    #[serde(default = "default_users")]
    pub users: TableConfig,
    /// The groups table; without it the target has no groups.
    #[serde(default)]
    pub groups: Option<TableConfig>,
    /// The membership table (needed with groups).
    #[serde(default)]
    pub membership: Option<MembershipConfig>,
    /// The links table, kept beside the rows: (profile, external_id) →
    /// (kind, row id), unique both ways. Default `idsync_links`.
    #[serde(default = "default_links")]
    pub links_table: String,
    /// Whether the target may delete rows (default true; profiles delete
    /// only when they opt in).
    #[serde(default = "yes")]
    pub allow_delete: bool,
    /// The most operations applied in one transaction (default 500). A
    /// batch whose transaction fails is applied again one operation per
    /// transaction, so that the error names the row; 1 applies every
    /// operation in its own transaction.
    #[serde(default = "default_batch")]
    pub batch: usize,
}

fn default_id() -> String {
    "id".into()
}

fn default_links() -> String {
    "idsync_links".into()
}

fn yes() -> bool {
    true
}

fn default_batch() -> usize {
    500
}

fn columns(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(f, c)| ((*f).to_owned(), (*c).to_owned())).collect()
}

fn default_users() -> TableConfig {
    TableConfig {
        table: "idsync_users".into(),
        id_column: default_id(),
        id_type: IdType::Integer,
        columns: columns(&[
            ("userName", "user_name"),
            ("email", "email"),
            ("givenName", "given_name"),
            ("familyName", "family_name"),
            ("displayName", "display_name"),
        ]),
        enabled_column: Some("enabled".into()),
    }
}

impl Default for SqlTargetConfig {
    fn default() -> Self {
        SqlTargetConfig {
            users: default_users(),
            groups: Some(TableConfig {
                table: "idsync_groups".into(),
                id_column: default_id(),
                id_type: IdType::Integer,
                columns: columns(&[("name", "name"), ("description", "description")]),
                enabled_column: Some("enabled".into()),
            }),
            membership: Some(MembershipConfig {
                table: "idsync_members".into(),
                group_column: "group_id".into(),
                member_column: "member_id".into(),
            }),
            links_table: default_links(),
            allow_delete: true,
            batch: default_batch(),
        }
    }
}

impl TableConfig {
    fn validate(&self, at: &str) -> Result<(), SqlError> {
        check_identifier(&format!("{at}.table"), &self.table, true)?;
        check_identifier(&format!("{at}.id_column"), &self.id_column, false)?;
        if let Some(c) = &self.enabled_column {
            check_identifier(&format!("{at}.enabled_column"), c, false)?;
        }
        for (field, column) in &self.columns {
            check_identifier(&format!("{at}.columns.{field}"), column, false)?;
            if *column == self.id_column || Some(column) == self.enabled_column.as_ref() {
                return Err(SqlError::config(
                    format!("{at}.columns.{field}"),
                    format!("{column:?} is the id or enabled column"),
                ));
            }
        }
        Ok(())
    }
}

impl SqlTargetConfig {
    /// Checks every identifier (plain SQL identifiers only, so nothing in the
    /// configuration can inject SQL) and that groups come with a membership
    /// table. Errors name the field, e.g. `users.columns.email`.
    pub fn validate(&self) -> Result<(), SqlError> {
        self.users.validate("users")?;
        if let Some(g) = &self.groups {
            g.validate("groups")?;
            let Some(m) = &self.membership else {
                return Err(SqlError::config("membership", "groups need a membership table"));
            };
            check_identifier("membership.table", &m.table, true)?;
            check_identifier("membership.group_column", &m.group_column, false)?;
            check_identifier("membership.member_column", &m.member_column, false)?;
        }
        check_identifier("links_table", &self.links_table, true)?;
        Ok(())
    }
}
