//! The writes of one batch in `/Bulk` requests (RFC 7644 §3.7).
//!
//! Creates, updates, enables and disables of a batch go out in Bulk
//! requests of up to the smaller of `bulk_max_operations` and the server's
//! `bulk.maxOperations` operations, under its `maxPayloadSize`; each
//! operation's status in the answer is that operation's result. PATCHes
//! carry the last ETag seen as `version`. A Bulk request refused as a whole
//! for what it holds (400, 409, 413, 422) is split in halves, down to single requests; one
//! that may have reached the server (5xx, connection lost) is never sent
//! again blindly: its creates are looked up by their links.

use std::sync::Arc;

use idsync_core::ErrorKind;
use idsync_http::{HttpError, Method, StatusCode};
use serde_json::{Value, json};

use super::{Done, Outcome, Request, ScimTarget, Write, Wrote, share, splittable};
use crate::ScimError;

/// Room left in `maxPayloadSize` for the request's envelope and versions.
const ENVELOPE: usize = 1024;

/// The serialized size of a JSON value.
fn json_len(v: &Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0)
}

/// Splits `writes` into Bulk requests of at most `limit` operations and
/// `max_payload` bytes (0: no limit); a write alone over the limit is a
/// request of its own.
pub(crate) fn pack(writes: Vec<Write<'_>>, limit: usize, max_payload: u64) -> Vec<Vec<Write<'_>>> {
    let max_payload = match max_payload {
        0 => usize::MAX,
        n => usize::try_from(n).unwrap_or(usize::MAX).saturating_sub(ENVELOPE),
    };
    let mut parts: Vec<(usize, Vec<Write<'_>>)> = Vec::new();
    for w in writes {
        let len = w.payload_len();
        match parts.last_mut() {
            Some((size, part)) if part.len() < limit.max(1) && *size + len <= max_payload => {
                *size += len;
                part.push(w);
            }
            _ => parts.push((len, vec![w])),
        }
    }
    parts.into_iter().map(|(_, part)| part).collect()
}

impl Write<'_> {
    /// About what this write adds to a Bulk request.
    fn payload_len(&self) -> usize {
        let body = match &self.request {
            Request::Post(body) => json_len(body),
            Request::Patch(_, ops) => ops.iter().map(json_len).sum(),
        };
        body + self.endpoint.len() + 160
    }
}

/// The status of one operation of a Bulk answer.
fn status_of(result: &Value) -> StatusCode {
    match &result["status"] {
        Value::String(s) => s.parse::<u16>().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        _ => None,
    }
    .and_then(|s| StatusCode::from_u16(s).ok())
    .unwrap_or(StatusCode::BAD_GATEWAY)
}

/// The last segment of a location URL.
pub(crate) fn last_segment(location: &str) -> Option<String> {
    location.trim_end_matches('/').rsplit('/').next().map(str::to_owned)
}

/// True when a failed request may still have been carried out: a 5xx, or
/// a connection lost after the request was sent.
pub(crate) fn may_have_landed(e: &HttpError) -> bool {
    e.status().is_some_and(|s| s.is_server_error()) || matches!(e, HttpError::Transport { .. })
}

impl ScimTarget {
    /// Applies `writes` (one Bulk request's worth, see [`pack`]).
    pub(super) async fn bulk(&self, writes: Vec<Write<'_>>) -> Vec<Done> {
        let mut done = Vec::with_capacity(writes.len());
        // parts still to send, the next one last
        let mut parts = vec![writes];
        while let Some(mut part) = parts.pop() {
            if part.len() < 2 {
                for w in part {
                    let outcome = self.send_one(&w).await;
                    done.extend(self.finish(vec![(w, outcome)]).await);
                }
                continue;
            }
            let e = match self.send_bulk(&part).await {
                Ok(outcomes) => {
                    done.extend(self.finish(part.into_iter().zip(outcomes).collect()).await);
                    continue;
                }
                Err(e) => e,
            };
            let landed = may_have_landed(&e);
            let what = format!("a Bulk request of {} operations", part.len());
            let error = ScimError::http(e, &what, None).into_core("apply");
            if splittable(&error) {
                tracing::debug!(operations = part.len(), %error, "SCIM Bulk request refused; splitting it");
                let second = part.split_off(part.len() / 2);
                parts.push(second);
                parts.push(part);
            } else if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::Unsupported) {
                // no Bulk here after all: one request each
                tracing::info!(%error, "SCIM Bulk request not served; writing one by one");
                parts.extend(part.into_iter().rev().map(|w| vec![w]));
            } else {
                // Some or all of it may be on the server when it may have
                // landed: creates are looked up by their links, never POSTed
                // again blindly (groups have no unique name to refuse a
                // second copy).
                tracing::info!(%error, landed, "SCIM Bulk request failed");
                let outcomes: Vec<Outcome> = part
                    .iter()
                    .map(|w| {
                        let (op, what, object) = w.describe();
                        Outcome::Lost {
                            error: share(&error, op, &what, &object),
                            landed,
                        }
                    })
                    .collect();
                done.extend(self.finish(part.into_iter().zip(outcomes).collect()).await);
            }
        }
        done
    }

    /// One Bulk request for `part`, with If-Match versions; an outcome per
    /// write, or the request's own failure.
    async fn send_bulk(&self, part: &[Write<'_>]) -> Result<Vec<Outcome>, HttpError> {
        let mut keys: Vec<(idsync_core::ObjectKind, &str)> = part
            .iter()
            .filter_map(|w| match &w.request {
                Request::Patch(target, _) => Some((w.kind, target.0.as_str())),
                Request::Post(_) => None,
            })
            .collect();
        keys.sort();
        keys.dedup();
        // in one order everywhere, so two requests never wait on each other
        let mut held = Vec::with_capacity(keys.len());
        for (kind, id) in keys {
            let lock = self.resource_lock(kind, id);
            let guard = Arc::clone(&lock).lock_owned().await;
            held.push((kind, id, lock, guard));
        }
        let operations: Vec<Value> = part
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let (method, path, data) = match &w.request {
                    Request::Post(body) => ("POST", self.client.bulk_path(&[w.endpoint]), body.clone()),
                    Request::Patch(target, ops) => (
                        "PATCH",
                        self.client.bulk_path(&[w.endpoint, &target.0]),
                        json!({"schemas": [crate::map::PATCH_OP], "Operations": ops}),
                    ),
                };
                let mut op = json!({"method": method, "bulkId": format!("b{i}"), "path": path, "data": data});
                if let Request::Patch(target, _) = &w.request
                    && let Some(version) = self.etag_for(w.kind, &target.0)
                {
                    op["version"] = Value::String(version);
                }
                op
            })
            .collect();
        tracing::debug!(operations = part.len(), "SCIM Bulk request");
        let answer = self.client.bulk(operations).await;
        let outcomes = answer.map(|r| {
            let answer: Option<Value> = r.json().ok();
            let results = answer
                .as_ref()
                .and_then(|a| a["Operations"].as_array())
                .map(Vec::as_slice)
                .unwrap_or_default();
            let url = self.client.url(&["Bulk"]).to_string();
            part.iter()
                .enumerate()
                .map(|(i, w)| {
                    let outcome = self.outcome_of(w, &format!("b{i}"), results, &url);
                    self.settle(w, &outcome);
                    outcome
                })
                .collect()
        });
        for (kind, id, lock, guard) in held {
            drop(guard);
            self.release_lock(kind, id, lock);
        }
        outcomes
    }

    /// What the Bulk answer's `results` say of `w`, sent as `bulk_id`.
    fn outcome_of(&self, w: &Write<'_>, bulk_id: &str, results: &[Value], url: &str) -> Outcome {
        let found = results
            .iter()
            .find(|r| r["bulkId"].as_str() == Some(bulk_id))
            .or_else(|| {
                // a server may leave bulkId out of a PATCH's result: its location names it
                let Request::Patch(target, _) = &w.request else {
                    return None;
                };
                results.iter().find(|r| {
                    r["bulkId"].is_null()
                        && r["method"].as_str().is_some_and(|m| m.eq_ignore_ascii_case("PATCH"))
                        && r["location"].as_str().and_then(last_segment).as_deref() == Some(target.0.as_str())
                })
            });
        let Some(result) = found else {
            // the server said nothing of it: it may or may not have run
            let (op, what, object) = w.describe();
            let error =
                ScimError::bad_response(&format!("{what}: the Bulk answer has no result for it"), Some(&object))
                    .into_core(op);
            return Outcome::Lost { error, landed: true };
        };
        let status = status_of(result);
        if !status.is_success() {
            let method = match &w.request {
                Request::Post(_) => Method::POST,
                Request::Patch(..) => Method::PATCH,
            };
            return Outcome::Answered(Err(HttpError::Status {
                method,
                url: format!("{url}#{bulk_id}"),
                status,
                retry_after: None,
                body: serde_json::to_vec(&result["response"]).unwrap_or_default().into(),
                retries: 0,
            }));
        }
        let id = result["response"]["id"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| result["location"].as_str().and_then(last_segment));
        let etag = result["version"]
            .as_str()
            .or_else(|| result["response"]["meta"]["version"].as_str())
            .map(str::to_owned);
        Outcome::Answered(Ok(Wrote { id, etag }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idsync_core::{ObjectKind, TargetId, TargetOp};

    #[test]
    fn packing_keeps_to_the_operation_and_payload_limits() {
        let op = TargetOp::Delete {
            target: TargetId("x".into()),
            kind: ObjectKind::User,
        };
        let write = |n: usize| Write {
            index: n,
            op: &op,
            kind: ObjectKind::User,
            endpoint: "Users",
            request: Request::Post(json!({"userName": "u".repeat(n)})),
        };
        let sizes = |parts: Vec<Vec<Write<'_>>>| parts.iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(sizes(pack((0..7).map(|_| write(10)).collect(), 3, 0)), [3, 3, 1]);
        // each write is about 200 bytes: four fit in 1024 + 900
        assert_eq!(sizes(pack((0..7).map(|_| write(10)).collect(), 100, 1924)), [4, 3]);
        // one too large alone goes alone
        let writes = vec![write(10), write(5000), write(10)];
        assert_eq!(sizes(pack(writes, 100, 2048)), [1, 1, 1]);
    }
}
