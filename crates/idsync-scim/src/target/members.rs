//! Group membership changes gathered into chunked PATCHes.
//!
//! The core applies one `AddMember` / `RemoveMember` at a time, many at
//! once. Those that arrive for the same group within a short window go out
//! as one PATCH of up to `member_chunk` operations. A chunk the server
//! refuses is retried one operation at a time, so one bad member fails alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use idsync_http::HttpError;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::client::ScimClient;
use crate::map::quote;

/// How long the first change of a group waits for others to join.
const WINDOW: Duration = Duration::from_millis(3);

struct Job {
    add: bool,
    member: String,
    reply: oneshot::Sender<Result<(), HttpError>>,
}

/// Pending membership changes per group.
pub(crate) struct MemberBatcher {
    client: Arc<ScimClient>,
    endpoint: String,
    chunk: usize,
    pending: Arc<Mutex<HashMap<String, Vec<Job>>>>,
}

impl std::fmt::Debug for MemberBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberBatcher").field("chunk", &self.chunk).finish()
    }
}

pub(crate) fn op(add: bool, member: &str) -> Value {
    if add {
        json!({"op": "add", "path": "members", "value": [{"value": member}]})
    } else {
        json!({"op": "remove", "path": format!("members[value eq {}]", quote(member))})
    }
}

impl MemberBatcher {
    pub fn new(client: Arc<ScimClient>, endpoint: String, chunk: usize) -> Self {
        MemberBatcher {
            client,
            endpoint,
            chunk: chunk.max(1),
            pending: Arc::default(),
        }
    }

    /// Adds or removes `member`; `Err` is the server's answer to this change.
    pub async fn change(&self, group: &str, member: &str, add: bool) -> Result<(), HttpError> {
        let (reply, answer) = oneshot::channel();
        let first = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let queue = pending.entry(group.to_owned()).or_default();
            queue.push(Job {
                add,
                member: member.to_owned(),
                reply,
            });
            queue.len() == 1
        };
        if first {
            let (client, endpoint, chunk, pending) = (
                self.client.clone(),
                self.endpoint.clone(),
                self.chunk,
                self.pending.clone(),
            );
            let group = group.to_owned();
            tokio::spawn(async move {
                tokio::time::sleep(WINDOW).await;
                let jobs = pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&group)
                    .unwrap_or_default();
                let mut jobs = jobs.into_iter().peekable();
                while jobs.peek().is_some() {
                    let chunk_jobs: Vec<Job> = jobs.by_ref().take(chunk).collect();
                    send(&client, &endpoint, &group, chunk_jobs).await;
                }
            });
        }
        answer
            .await
            .unwrap_or_else(|_| Err(HttpError::Config("the membership task stopped".into())))
    }
}

async fn send(client: &ScimClient, endpoint: &str, group: &str, jobs: Vec<Job>) {
    if jobs.len() > 1 {
        let ops = jobs.iter().map(|j| op(j.add, &j.member)).collect();
        tracing::debug!(group, changes = jobs.len(), "SCIM membership PATCH");
        if client.patch(&[endpoint, group], ops, None).await.is_ok() {
            for j in jobs {
                let _ = j.reply.send(Ok(()));
            }
            return;
        }
    }
    for j in jobs {
        let r = client.patch(&[endpoint, group], vec![op(j.add, &j.member)], None).await;
        let _ = j.reply.send(r.map(|_| ()));
    }
}
