//! Group membership changes of one batch, in few requests.
//!
//! The changes of one group go out in requests of up to `member_chunk`
//! members, one after the other: a PATCH whose consecutive adds are one
//! `add` of many values and whose consecutive removals are `remove`s with
//! `members[value eq "a" or value eq "b"]` paths (RFC 7644 §3.5.2), or one
//! GET + PUT of the group in the PUT dialect. A request the server refuses
//! is split in halves, down to one member, so that the error names the
//! member that caused it. Removing a non-member and adding a member again
//! are successes.

use idsync_core::{Applied, ObjectKind, Result, TargetId};
use serde_json::{Map, Value, json};

use super::{Done, ScimTarget, is_no_target, share, splittable};
use crate::ScimError;
use crate::map::quote;

/// One membership change of a batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Change<'a> {
    /// Its position in the batch.
    pub index: usize,
    pub add: bool,
    pub member: &'a str,
}

/// The PATCH operations for `changes`, in their order: a run of adds is one
/// `add` with many values, a run of removals is `remove`s whose filters name
/// up to `or_terms` members each.
pub(crate) fn patch_ops(changes: &[Change<'_>], or_terms: usize) -> Vec<Value> {
    let mut ops = Vec::new();
    for run in changes.chunk_by(|a, b| a.add == b.add) {
        if run[0].add {
            let values: Vec<Value> = run.iter().map(|c| json!({"value": c.member})).collect();
            ops.push(json!({"op": "add", "path": "members", "value": values}));
            continue;
        }
        for part in run.chunks(or_terms.max(1)) {
            let terms: Vec<String> = part.iter().map(|c| format!("value eq {}", quote(c.member))).collect();
            ops.push(json!({"op": "remove", "path": format!("members[{}]", terms.join(" or "))}));
        }
    }
    ops
}

/// The group resource's `members` after `changes` (the PUT dialect).
fn apply_to(resource: &mut Map<String, Value>, changes: &[Change<'_>]) {
    let list = resource.entry("members").or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(items) = list {
        for c in changes {
            items.retain(|m| m["value"].as_str() != Some(c.member));
            if c.add {
                items.push(json!({"value": c.member}));
            }
        }
    }
}

fn describe(change: &Change<'_>) -> (&'static str, String) {
    if change.add {
        ("apply.add_member", format!("add member {}", change.member))
    } else {
        ("apply.remove_member", format!("remove member {}", change.member))
    }
}

impl ScimTarget {
    /// Applies one group's changes of a batch, in order.
    pub(super) async fn change_members(&self, group: &TargetId, changes: Vec<Change<'_>>) -> Vec<Done> {
        let mut done = Vec::with_capacity(changes.len());
        for chunk in changes.chunks(self.client.dialect.member_chunk.max(1)) {
            // parts still to send, the next one last
            let mut parts = vec![chunk];
            while let Some(part) = parts.pop() {
                match self.write_members(group, part).await {
                    Ok(()) => done.extend(part.iter().map(|c| (c.index, Ok(Applied::default())))),
                    Err(e) if part.len() > 1 && splittable(&e) => {
                        tracing::debug!(group = %group, members = part.len(), error = %e, "membership change refused; splitting it");
                        let (first, second) = part.split_at(part.len() / 2);
                        parts.push(second);
                        parts.push(first);
                    }
                    Err(e) if part.len() == 1 => done.push((part[0].index, Err(e))),
                    Err(e) => done.extend(part.iter().map(|c| {
                        let (op, what) = describe(c);
                        (c.index, Err(share(&e, op, &what, &group.0)))
                    })),
                }
            }
        }
        done
    }

    /// One request for `changes` of `group`; the error of a single change
    /// names its member.
    async fn write_members(&self, group: &TargetId, changes: &[Change<'_>]) -> Result<()> {
        let (op, what) = match changes {
            [one] => describe(one),
            _ => ("apply.members", format!("change {} members", changes.len())),
        };
        if !self.client.use_patch() {
            return self
                .put_update(group, ObjectKind::Group, op, |r| apply_to(r, changes))
                .await
                .map(|_| ())
                .map_err(|e| share(&e, op, &what, &group.0));
        }
        let endpoint = self.endpoint(ObjectKind::Group)?;
        let ops = patch_ops(changes, self.client.dialect.lookup_or_terms);
        tracing::debug!(group = %group, changes = changes.len(), "SCIM membership PATCH");
        let outcome = self.client.patch(&[endpoint, &group.0], ops, None).await;
        // after a membership write, a remembered ETag of the group is stale
        self.remember(ObjectKind::Group, &group.0, None);
        match outcome {
            Ok(_) => Ok(()),
            Err(e) => match changes {
                // removing someone who is not a member: already done
                [one] if !one.add && is_no_target(&e) => Ok(()),
                // adding someone who is a member already: done too
                [one] if one.add && e.status().is_some_and(|s| s.as_u16() == 409) => Ok(()),
                _ => Err(ScimError::http(e, &what, Some(&group.0)).into_core(op)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(index: usize, add: bool, member: &str) -> Change<'_> {
        Change { index, add, member }
    }

    #[test]
    fn runs_of_adds_are_one_operation_and_removals_share_filters_in_order() {
        let changes = [
            c(0, true, "a"),
            c(1, true, "b"),
            c(2, false, "c"),
            c(3, false, "d\"x"),
            c(4, false, "e"),
            c(5, true, "f"),
        ];
        assert_eq!(
            patch_ops(&changes, 2),
            [
                json!({"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "b"}]}),
                json!({"op": "remove", "path": "members[value eq \"c\" or value eq \"d\\\"x\"]"}),
                json!({"op": "remove", "path": "members[value eq \"e\"]"}),
                json!({"op": "add", "path": "members", "value": [{"value": "f"}]}),
            ]
        );
    }

    #[test]
    fn the_put_dialect_edits_the_member_list_in_order() {
        let mut group = Map::new();
        group.insert("members".into(), json!([{"value": "a"}, {"value": "b"}]));
        apply_to(&mut group, &[c(0, false, "a"), c(1, true, "b"), c(2, true, "c")]);
        assert_eq!(group["members"], json!([{"value": "b"}, {"value": "c"}]));
    }
}
