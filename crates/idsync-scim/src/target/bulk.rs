//! Creates batched into `/Bulk` requests (RFC 7644 §3.7).
//!
//! Every concurrent `apply(Create)` hands its POST to one background task,
//! which gathers the burst that arrives together (up to the operation
//! and payload limits) into one Bulk request and answers each caller with
//! its own operation's outcome. A Bulk request that fails as a whole falls
//! back to single POSTs, whose conflicts the caller resolves by the link.

use std::sync::{Arc, OnceLock};

use self::bytes_len::json_len;
use idsync_http::{HttpError, Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::client::ScimClient;

/// What a create produced.
#[derive(Debug)]
pub(crate) struct Created {
    pub id: Option<String>,
    pub etag: Option<String>,
}

struct Job {
    endpoint: String,
    body: Value,
    reply: oneshot::Sender<Result<Created, HttpError>>,
}

/// The handle the target keeps; the task starts with the first create.
pub(crate) struct Batcher {
    client: Arc<ScimClient>,
    limit: usize,
    tx: OnceLock<mpsc::UnboundedSender<Job>>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").field("limit", &self.limit).finish()
    }
}

mod bytes_len {
    /// The serialized size of a JSON value.
    pub fn json_len(v: &serde_json::Value) -> usize {
        serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0)
    }
}

impl Batcher {
    pub fn new(client: Arc<ScimClient>, limit: usize) -> Self {
        Batcher {
            client,
            limit,
            tx: OnceLock::new(),
        }
    }

    fn sender(&self) -> &mpsc::UnboundedSender<Job> {
        self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(self.client.clone(), self.limit, rx));
            tx
        })
    }

    /// POSTs `body` to `endpoint` as part of a Bulk request.
    pub async fn create(&self, endpoint: String, body: Value) -> Result<Created, HttpError> {
        let (reply, answer) = oneshot::channel();
        let job = Job { endpoint, body, reply };
        if let Err(mpsc::error::SendError(job)) = self.sender().send(job) {
            return single(&self.client, job.endpoint, job.body).await;
        }
        match answer.await {
            Ok(r) => r,
            Err(_) => Err(HttpError::Config("the Bulk task stopped".into())),
        }
    }
}

async fn single(client: &ScimClient, endpoint: String, body: Value) -> Result<Created, HttpError> {
    client.post(&endpoint, &body).await.map(|r| Created::from_response(&r))
}

async fn run(client: Arc<ScimClient>, limit: usize, mut rx: mpsc::UnboundedReceiver<Job>) {
    let max_payload = match client.sp.bulk_max_payload {
        0 => usize::MAX,
        n => (n as usize).saturating_sub(1024),
    };
    let mut carry: Option<Job> = None;
    loop {
        let first = match carry.take() {
            Some(j) => j,
            None => match rx.recv().await {
                Some(j) => j,
                None => return,
            },
        };
        let mut size = json_len(&first.body);
        let mut batch = vec![first];
        // Gather the burst of creates that arrived with this one: the engine
        // issues its operations together, so a few yields see them all.
        let mut idle_yields = 0;
        while batch.len() < limit {
            match rx.try_recv() {
                Ok(job) => {
                    idle_yields = 0;
                    let len = json_len(&job.body);
                    if size + len > max_payload {
                        carry = Some(job);
                        break;
                    }
                    size += len;
                    batch.push(job);
                }
                Err(mpsc::error::TryRecvError::Empty) if idle_yields < 8 => {
                    idle_yields += 1;
                    tokio::task::yield_now().await;
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            }
        }
        send(&client, batch).await;
    }
}

async fn send(client: &ScimClient, batch: Vec<Job>) {
    if batch.len() == 1 {
        for job in batch {
            let r = single(client, job.endpoint, job.body).await;
            let _ = job.reply.send(r);
        }
        return;
    }
    let operations: Vec<Value> = batch
        .iter()
        .enumerate()
        .map(|(i, job)| json!({"method": "POST", "bulkId": format!("b{i}"), "path": format!("/{}", job.endpoint), "data": job.body}))
        .collect();
    tracing::debug!(operations = batch.len(), "SCIM Bulk request");
    let answer = match client.bulk(operations).await {
        Ok(r) => r.json::<Value>().ok(),
        Err(e) if may_have_landed(&e) => {
            // Some or all of the creates may be on the server: POSTing them
            // again one by one could make second copies (groups have no
            // unique name to refuse them). Each caller looks its account
            // up by the link instead.
            tracing::info!(error = %e, "SCIM Bulk request failed after it may have reached the server");
            let url = client.url(&["Bulk"]).to_string();
            let status = e.status().unwrap_or(StatusCode::BAD_GATEWAY);
            for (i, job) in batch.into_iter().enumerate() {
                let _ = job.reply.send(Err(HttpError::Status {
                    method: Method::POST,
                    url: format!("{url}#b{i}"),
                    status,
                    retry_after: None,
                    body: format!("the Bulk request failed: {e}").into_bytes().into(),
                    retries: 0,
                }));
            }
            return;
        }
        Err(e) => {
            tracing::info!(error = %e, "SCIM Bulk request failed; creating one by one");
            None
        }
    };
    let results: Vec<Value> = answer
        .as_ref()
        .and_then(|a| a["Operations"].as_array().cloned())
        .unwrap_or_default();
    if results.is_empty() {
        for job in batch {
            let r = single(client, job.endpoint, job.body).await;
            let _ = job.reply.send(r);
        }
        return;
    }
    let url = client.url(&["Bulk"]).to_string();
    for (i, job) in batch.into_iter().enumerate() {
        let bulk_id = format!("b{i}");
        let Some(result) = results.iter().find(|r| r["bulkId"].as_str() == Some(bulk_id.as_str())) else {
            // not answered: do it alone
            let r = single(client, job.endpoint, job.body).await;
            let _ = job.reply.send(r);
            continue;
        };
        let status = match &result["status"] {
            Value::String(s) => s.parse::<u16>().ok(),
            Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            _ => None,
        }
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
        let outcome = if status.is_success() {
            let id = result["response"]["id"].as_str().map(str::to_owned).or_else(|| {
                result["location"]
                    .as_str()
                    .and_then(|l| l.trim_end_matches('/').rsplit('/').next().map(str::to_owned))
            });
            let etag = result["version"]
                .as_str()
                .or_else(|| result["response"]["meta"]["version"].as_str())
                .map(str::to_owned);
            Ok(Created { id, etag })
        } else {
            Err(HttpError::Status {
                method: Method::POST,
                url: format!("{url}#{bulk_id}"),
                status,
                retry_after: None,
                body: serde_json::to_vec(&result["response"]).unwrap_or_default().into(),
                retries: 0,
            })
        };
        let _ = job.reply.send(outcome);
    }
}

/// True when a failed request may still have been carried out: a 5xx, or
/// a connection lost after the request was sent.
pub(crate) fn may_have_landed(e: &HttpError) -> bool {
    e.status().is_some_and(|s| s.is_server_error()) || matches!(e, HttpError::Transport { .. })
}
