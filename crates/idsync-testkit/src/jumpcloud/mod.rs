//! A stateful fake of JumpCloud's REST API (v1 system users, v2 user
//! groups and their members), written from JumpCloud's public API
//! documentation (`JUMPCLOUD-API.md` in the shared docs), on 127.0.0.1.
//!
//! ```no_run
//! # async fn demo() -> Result<(), idsync_testkit::StartError> {
//! use idsync_testkit::fault::Fault;
//! use idsync_testkit::jumpcloud::FakeJumpCloud;
//! let jc = FakeJumpCloud::start("k".repeat(40).as_str()).await?;
//! let ann = jc.insert_user(serde_json::json!({ "username": "ann", "email": "ann@example.org" }));
//! let finance = jc.insert_group("Finance");
//! jc.add_member(&finance, &ann);
//! jc.faults().fail_next(2, Fault::RateLimited { retry_after: Some(1) });
//! // point the client at jc.base_url() (…/api and …/api/v2 below it)
//! # Ok(()) }
//! ```
//!
//! Behaviour an adapter author can rely on (each follows the docs; where
//! they are silent the choice is marked \[inferred\] at its place):
//! - every request needs `x-api-key` (401 `Error` body otherwise);
//!   `x-org-id` is ignored unless [`FakeJumpCloud::require_org_id`] is set;
//! - `limit` defaults to 10, more than 100 is a 400; v1 lists are
//!   `{ totalCount, results }`, v2 lists bare arrays with `x-total-count`;
//! - v1 create answers 200, v2 create 201, member changes and group
//!   deletes 204; duplicate users 400 (or 409, see
//!   [`FakeJumpCloud::set_duplicate_user_status`]); duplicate member 409;
//!   removing a non-member 404; unknown ids 404.

mod error;
mod query;
mod routes;
mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::StartError;
use crate::fault::Faults;
use state::Store;

/// The organization id of the fake's one organization.
pub const ORG_ID: &str = state::ORG_ID;

/// How many requests arrived, per path.
#[derive(Debug, Default)]
struct Counters {
    total: u64,
    per_path: BTreeMap<String, u64>,
}

/// What the handlers share.
#[derive(Debug)]
struct Shared {
    api_key: String,
    store: Mutex<Store>,
    faults: Faults,
    counters: Mutex<Counters>,
    org_id: Mutex<Option<String>>,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn counters(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn org_id(&self) -> Option<String> {
        self.org_id.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// A running fake JumpCloud on 127.0.0.1; stopped on drop.
#[derive(Debug)]
pub struct FakeJumpCloud {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl FakeJumpCloud {
    /// Starts the fake on a free port of 127.0.0.1, accepting `api_key`.
    pub async fn start(api_key: &str) -> Result<FakeJumpCloud, StartError> {
        let shared = Arc::new(Shared {
            api_key: api_key.to_owned(),
            store: Mutex::new(Store::default()),
            faults: Faults::default(),
            counters: Mutex::new(Counters::default()),
            org_id: Mutex::new(None),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = routes::router(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!("fake JumpCloud stopped: {e}");
            }
        });
        Ok(FakeJumpCloud {
            addr,
            shared,
            shutdown: Some(tx),
            task,
        })
    }

    /// `http://127.0.0.1:<port>`; the v1 API is under `/api`, v2 under
    /// `/api/v2` (like `https://console.jumpcloud.com`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The API key the fake accepts in `x-api-key`.
    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// The fault knobs, settable while the server runs.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Acts as a multi-tenant key: `Some(org)` makes `x-org-id` required
    /// (401 when missing, 400 when not a 24-hex id, 404 when another org);
    /// `None` (the default) accepts and ignores it.
    pub fn require_org_id(&self, org: Option<&str>) {
        *self.shared.org_id.lock().unwrap_or_else(PoisonError::into_inner) = org.map(str::to_owned);
    }

    /// The status of a duplicate-user create or update: 400 as documented
    /// (the default), or 409 to test a client against both.
    pub fn set_duplicate_user_status(&self, status: StatusCode) {
        self.shared.store().duplicate_user_status = status;
    }

    /// How many requests arrived (faulted ones included).
    pub fn requests(&self) -> u64 {
        self.shared.counters().total
    }

    /// How many requests arrived for this exact path (no query string),
    /// e.g. `/api/systemusers`.
    pub fn requests_to(&self, path: &str) -> u64 {
        self.shared.counters().per_path.get(path).copied().unwrap_or(0)
    }

    /// Creates a user as `POST /api/systemusers` would and returns its
    /// `_id`. Panics (test setup error) when the API would reject it.
    pub fn insert_user(&self, user: Value) -> String {
        let created = self.shared.store().create_user(user);
        match created {
            Ok(u) => u["_id"].as_str().unwrap_or_default().to_owned(),
            Err(e) => panic!("insert_user rejected: {}", e.body),
        }
    }

    /// One user as the API returns it.
    pub fn user(&self, id: &str) -> Option<Value> {
        self.shared.store().user(id)
    }

    /// All users, in `_id` (creation) order.
    pub fn users(&self) -> Vec<Value> {
        self.shared.store().users()
    }

    /// Creates a static user group named `name` and returns its `id`.
    /// Panics when the name is taken.
    pub fn insert_group(&self, name: &str) -> String {
        let created = self.shared.store().create_group(json!({ "name": name }));
        match created {
            Ok(g) => g["id"].as_str().unwrap_or_default().to_owned(),
            Err(e) => panic!("insert_group rejected: {}", e.body),
        }
    }

    /// One group as the API returns it.
    pub fn group(&self, id: &str) -> Option<Value> {
        self.shared.store().group(id)
    }

    /// All groups, in `id` (creation) order.
    pub fn groups(&self) -> Vec<Value> {
        self.shared.store().groups()
    }

    /// The user ids directly in a group (empty for an unknown group).
    pub fn group_members(&self, group: &str) -> Vec<String> {
        self.shared.store().members(group).unwrap_or_default()
    }

    /// Adds a user to a group; false when either is unknown or it is
    /// already a member.
    pub fn add_member(&self, group: &str, user: &str) -> bool {
        self.shared.store().add_member(group, user).is_ok()
    }

    /// Removes a user from a group; false when it was not a member.
    pub fn remove_member(&self, group: &str, user: &str) -> bool {
        self.shared.store().remove_member(group, user).is_ok()
    }
}

impl Drop for FakeJumpCloud {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Graceful shutdown waits for open keep-alive connections; the
        // test is over, so do not wait for them.
        self.task.abort();
    }
}
