//! A sync profile: scope, mapping and the rules of reconciliation.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::mapping::Mapping;
use crate::model::{ProfileId, SourceObject};
use crate::scope::Scope;
use crate::target::Lookup;

/// One sync profile: which source objects (scope), how they become target
/// fields (mapping) and the rules. Its id is part of every link.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Profile {
    /// The profile's id (the seeds' ADID). Keep it: a new id means new links.
    pub id: ProfileId,
    /// A name for people.
    pub name: String,
    /// Which objects are managed.
    #[serde(default)]
    pub scope: Scope,
    /// How fields are computed.
    #[serde(default)]
    pub mapping: Mapping,
    /// How situations are resolved.
    #[serde(default)]
    pub rules: Rules,
    /// The source attributes a login name is looked up by, in order, for a
    /// sync at login by name ([`Engine::sync_login`](crate::Engine::sync_login)):
    /// e.g. `["sAMAccountName", "userPrincipalName", "mail"]` on AD, `["uid",
    /// "mail"]` on LDAP. Empty: syncs at login take external ids only.
    #[serde(default)]
    pub login_attributes: Vec<String>,
}

impl Profile {
    /// A profile with this id and name, an empty scope and mapping, and the
    /// default (safe) rules.
    pub fn new(id: ProfileId, name: impl Into<String>) -> Self {
        Profile {
            id,
            name: name.into(),
            scope: Scope::default(),
            mapping: Mapping::default(),
            rules: Rules::default(),
            login_attributes: Vec::new(),
        }
    }
}

impl Profile {
    /// Every source attribute the profile reads: its mapping's, its scope's
    /// predicates and assigned-group names, and the correlation attribute.
    /// The engine keeps only these of the objects it reads.
    pub fn attributes_read(&self) -> BTreeSet<&str> {
        let mut out: BTreeSet<&str> = self.mapping.attributes().collect();
        out.extend(self.scope.attributes.iter().map(|p| p.attribute.as_str()));
        if !self.scope.groups.is_empty() {
            out.insert(self.scope.group_name_attribute.as_deref().unwrap_or("cn"));
        }
        if let Some(c) = &self.rules.correlation {
            out.insert(c.attribute.as_str());
        }
        out
    }
}

/// The reconciliation rules of a profile. Defaults are the safe ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Rules {
    /// What happens to a linked account whose source object is gone.
    pub deprovision: Deprovision,
    /// "Do Not Disable": never disable or delete; gone and disabled source
    /// objects are reported instead.
    pub do_not_disable: bool,
    /// Deprovisions beyond this are held until an operator confirms.
    pub threshold: Threshold,
    /// The soft-match key: adopts unlinked accounts and detects duplicate
    /// identities. Without it, unlinked accounts are never touched.
    pub correlation: Option<Correlation>,
    /// What to do with two source objects sharing a correlation key.
    pub duplicates: DuplicatePolicy,
    /// Retired profiles whose accounts this profile adopts instead of
    /// creating new ones (a recreated profile).
    pub adopt_from: Vec<ProfileId>,
    /// What happens to a linked account whose source object left the scope.
    pub out_of_scope: OutOfScope,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            deprovision: Deprovision::Disable,
            do_not_disable: false,
            threshold: Threshold::default(),
            correlation: None,
            duplicates: DuplicatePolicy::Report,
            adopt_from: Vec::new(),
            out_of_scope: OutOfScope::Deprovision,
        }
    }
}

/// What deprovisioning does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deprovision {
    /// Disable, keeping the account and its history (the default).
    Disable,
    /// Delete: only by explicit opt-in.
    Delete,
    /// Do nothing.
    Leave,
}

/// The deprovision threshold: a run that would disable or delete more than
/// `max_count` accounts, or more than `max_percent` % of the linked ones,
/// holds those operations until an operator confirms.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Threshold {
    /// Most accounts a run may deprovision unconfirmed.
    pub max_count: Option<usize>,
    /// Most share of the linked accounts, in percent.
    pub max_percent: Option<f64>,
    /// The percentage applies only from this many deprovisions up, so that
    /// one leaver in a ten-person directory is not blocked.
    pub min_count_for_percent: usize,
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold {
            max_count: Some(500),
            max_percent: Some(20.0),
            min_count_for_percent: 5,
        }
    }
}

impl Threshold {
    /// True when `count` deprovisions out of `linked` accounts go beyond it.
    pub fn exceeded(&self, count: usize, linked: usize) -> bool {
        let by_count = self.max_count.is_some_and(|max| count > max);
        let by_percent = self.max_percent.is_some_and(|max| {
            count >= self.min_count_for_percent.max(1) && linked > 0 && (count as f64) * 100.0 / (linked as f64) > max
        });
        by_count || by_percent
    }
}

/// The correlation key: a source attribute and the target field that holds
/// the same value (employeeID ↔ employee_number, mail ↔ email). Compared
/// trimmed and case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Correlation {
    /// The source attribute.
    pub attribute: String,
    /// The target field.
    pub field: String,
}

impl Correlation {
    /// Correlates the source `attribute` with the target `field`.
    pub fn new(attribute: impl Into<String>, field: impl Into<String>) -> Self {
        Correlation {
            attribute: attribute.into(),
            field: field.into(),
        }
    }
}

impl Lookup {
    /// The soft-match look-up of `object` by `profile`'s correlation key
    /// (accounts whose correlation field holds the object's value); `None`
    /// when the profile has no key or the object no value.
    pub fn correlation(profile: &Profile, object: &SourceObject) -> Option<Lookup> {
        let corr = profile.rules.correlation.as_ref()?;
        let value = object.first_text(&corr.attribute).filter(|v| !v.trim().is_empty())?;
        Some(Lookup::Field {
            kind: object.kind,
            field: corr.field.clone(),
            value: value.to_owned(),
        })
    }
}

/// Policy for duplicate identities (two source objects, one correlation key;
/// or a new object whose key matches an account linked to another id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicatePolicy {
    /// Create both and report it (what Process Director does).
    Report,
    /// Create neither new account and report it.
    Skip,
    /// Move the old account's link to the new id when the old id is gone or
    /// the new object names it in its aliases: a rehire keeps their history.
    Relink,
}

/// Policy for objects that left the scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutOfScope {
    /// As if gone (the default).
    Deprovision,
    /// Leave the account as it is, no longer updated. Only objects the
    /// source still returns can be told apart from deleted ones: a container
    /// or filter the source applies itself hides the object, which then
    /// counts as gone.
    Leave,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_by_count_and_percent() {
        let t = Threshold {
            max_count: Some(10),
            max_percent: Some(20.0),
            min_count_for_percent: 3,
        };
        assert!(!t.exceeded(10, 1000));
        assert!(t.exceeded(11, 1000));
        assert!(
            !t.exceeded(2, 4),
            "below the minimum count the percentage does not apply"
        );
        assert!(t.exceeded(3, 10));
        assert!(!t.exceeded(3, 15));
        let none = Threshold {
            max_count: None,
            max_percent: None,
            min_count_for_percent: 0,
        };
        assert!(!none.exceeded(1_000_000, 1));
    }

    #[test]
    fn the_attributes_read_are_the_mappings_the_scopes_and_the_correlations() {
        let p: Profile = serde_json::from_value(serde_json::json!({
            "id": "6f1c2a0e-8d7b-4c55-9a8e-3b2f1d4c5e6a", "name": "p",
            "scope": {"attributes": [{"attribute": "department", "any_of": ["Sales"]}], "groups": ["Staff"]},
            "mapping": {
                "users": [{"field": "login", "attribute": "uid"},
                          {"field": "name", "template": "{givenName} {sn}"},
                          {"field": "kind", "constant": "staff"}],
                "groups": [{"field": "name", "attribute": "displayName"}]
            },
            "rules": {"correlation": {"attribute": "mail", "field": "email"}}
        }))
        .unwrap();
        let read: Vec<&str> = p.attributes_read().into_iter().collect();
        assert_eq!(
            read,
            ["cn", "department", "displayName", "givenName", "mail", "sn", "uid"]
        );
    }

    #[test]
    fn profile_reads_from_json_with_safe_defaults() {
        let p: Profile = serde_json::from_value(serde_json::json!({
            "id": "7b1f4a4e-5d7e-4b59-8d38-2c7a6f0b1c11",
            "name": "AD to app",
            "mapping": {"users": [{"field": "email", "attribute": "mail"}]}
        }))
        .unwrap();
        assert_eq!(p.rules.deprovision, Deprovision::Disable);
        assert!(!p.rules.do_not_disable);
        assert_eq!(p.rules.correlation, None);
        let typo = serde_json::from_value::<Profile>(serde_json::json!({
            "id": "7b1f4a4e-5d7e-4b59-8d38-2c7a6f0b1c11", "name": "x", "rules": {"deprovison": "delete"}
        }));
        assert!(typo.unwrap_err().to_string().contains("unknown field `deprovison`"));
    }
}
