//! Which source objects a profile manages.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::model::{ExternalId, ObjectKind, SourceObject};

/// The objects a profile manages. An empty list means "no restriction".
/// Sources push down what they can (containers, `filter`); the planner checks
/// every rule again on what comes back.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scope {
    /// Object kinds; empty = users and groups.
    pub kinds: Vec<ObjectKind>,
    /// Containers (base DNs, OUs, folders): an object is in scope when its
    /// container is one of these or below one (case-insensitive).
    pub containers: Vec<String>,
    /// A filter in the source's own language (an LDAP filter), applied by
    /// the source only.
    pub filter: Option<String>,
    /// Attribute predicates on users, all of which must hold (e.g.
    /// department in a list). Groups are scoped by kind, container and
    /// assigned groups.
    pub attributes: Vec<AttributePredicate>,
    /// Assigned groups (seed 002's "only assigned users and groups"): these
    /// groups, their nested groups and all their members are in scope, and
    /// nothing else. A group is named by its external id or by the value of
    /// [`Scope::group_name_attribute`].
    pub groups: Vec<String>,
    /// The attribute that names a group in [`Scope::groups`]; `cn` when unset.
    pub group_name_attribute: Option<String>,
}

/// `attribute` has one of `any_of` (case-insensitive, trimmed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributePredicate {
    /// The source attribute.
    pub attribute: String,
    /// The accepted values.
    pub any_of: Vec<String>,
}

impl Scope {
    /// True when deciding membership needs every object at once (assigned
    /// groups): such a profile always reads in full.
    pub fn needs_full_view(&self) -> bool {
        !self.groups.is_empty()
    }

    /// True when objects of `kind` are in scope.
    pub fn kind_in_scope(&self, kind: ObjectKind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }

    /// True when `container` is inside one of the scope's containers.
    pub fn container_in_scope(&self, container: &str) -> bool {
        self.containers.is_empty() || self.containers.iter().any(|c| crate::dn::within(container, c))
    }

    /// Checks kind, container and (for users) attribute predicates of one
    /// object: everything but assigned groups.
    pub fn admits(&self, object: &SourceObject) -> bool {
        self.kind_in_scope(object.kind)
            && self.container_in_scope(&object.container)
            && (object.kind == ObjectKind::Group || self.attributes.iter().all(|p| p.holds(object)))
    }

    /// Resolves the assigned groups over a full view: the set of ids they
    /// bring into scope, or `None` when the scope has no assigned groups.
    pub fn assigned<'a>(&self, objects: impl IntoIterator<Item = &'a SourceObject>) -> Option<HashSet<ExternalId>> {
        if self.groups.is_empty() {
            return None;
        }
        let name_attr = self.group_name_attribute.as_deref().unwrap_or("cn");
        let groups: HashMap<&ExternalId, &SourceObject> = objects
            .into_iter()
            .filter(|o| o.kind == ObjectKind::Group)
            .map(|o| (&o.id, o))
            .collect();
        let mut pending: Vec<&ExternalId> = groups
            .values()
            .filter(|g| {
                self.groups.iter().any(|name| {
                    g.id.as_str() == name
                        || g.attributes
                            .get(name_attr)
                            .is_some_and(|vs| vs.iter().any(|v| v.as_text() == Some(name)))
                })
            })
            .map(|g| &g.id)
            .collect();
        let mut inside: HashSet<ExternalId> = HashSet::new();
        while let Some(id) = pending.pop() {
            if !inside.insert(id.clone()) {
                continue;
            }
            if let Some(g) = groups.get(id) {
                pending.extend(g.members.iter());
            }
        }
        Some(inside)
    }
}

impl AttributePredicate {
    fn holds(&self, object: &SourceObject) -> bool {
        object.attributes.get(&self.attribute).is_some_and(|values| {
            values.iter().filter_map(|v| v.as_text()).any(|v| {
                self.any_of
                    .iter()
                    .any(|want| want.trim().eq_ignore_ascii_case(v.trim()))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_match_the_dn_suffix_case_insensitively() {
        let scope = Scope {
            containers: vec!["OU=Sales,DC=acme,DC=test".into()],
            ..Scope::default()
        };
        assert!(scope.container_in_scope("ou=sales, dc=acme,dc=test"));
        assert!(scope.container_in_scope("OU=EMEA,OU=Sales,DC=acme,DC=test"));
        assert!(!scope.container_in_scope("OU=PreSales,DC=acme,DC=test"));
        assert!(!scope.container_in_scope("DC=acme,DC=test"));
    }

    #[test]
    fn attribute_predicates_and_kinds_filter() {
        let scope = Scope {
            kinds: vec![ObjectKind::User],
            attributes: vec![AttributePredicate {
                attribute: "department".into(),
                any_of: vec!["Sales".into(), "Support".into()],
            }],
            ..Scope::default()
        };
        let ann = SourceObject::new("1", ObjectKind::User).with("department", " sales ");
        let bob = SourceObject::new("2", ObjectKind::User).with("department", "IT");
        let grp = SourceObject::new("3", ObjectKind::Group).with("department", "Sales");
        assert!(scope.admits(&ann));
        assert!(!scope.admits(&bob));
        assert!(!scope.admits(&grp));
    }

    #[test]
    fn assigned_groups_bring_nested_groups_and_members() {
        let scope = Scope {
            groups: vec!["app-users".into()],
            ..Scope::default()
        };
        let objects = vec![
            SourceObject::new("g1", ObjectKind::Group)
                .with("cn", "app-users")
                .with_member("u1")
                .with_member("g2"),
            SourceObject::new("g2", ObjectKind::Group)
                .with("cn", "nested")
                .with_member("u2"),
            SourceObject::new("g3", ObjectKind::Group)
                .with("cn", "other")
                .with_member("u3"),
            SourceObject::new("u1", ObjectKind::User),
            SourceObject::new("u2", ObjectKind::User),
            SourceObject::new("u3", ObjectKind::User),
        ];
        let inside = scope.assigned(&objects).unwrap();
        let mut ids: Vec<_> = inside.iter().map(|i| i.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["g1", "g2", "u1", "u2"]);
        assert!(Scope::default().assigned(&objects).is_none());
    }
}
