//! A small stateful JSON CRUD server on 127.0.0.1 that can be shaped like
//! different REST APIs (HaloPSA, JobTraQ, …) to test the generic REST
//! adapter: resource paths, id field and type, unique fields, paging style,
//! auth style and the envelope around listed items, plus the fault knobs of
//! [`crate::fault`] (429 with `Retry-After`, 5xx).
//!
//! ```no_run
//! # async fn demo() -> Result<(), idsync_testkit::StartError> {
//! use idsync_testkit::fault::Fault;
//! use idsync_testkit::rest::{Collection, Paging, RestServer, RestShape, ServerAuth};
//! let shape = RestShape {
//!     collections: vec![Collection::new("/contacts").unique(&["email"])],
//!     paging: Paging::OffsetLimit { offset_param: "offset".into(), limit_param: "limit".into() },
//!     envelope: Some("data".into()),
//!     total_field: Some("total".into()),
//!     auth: ServerAuth::ApiKeyHeader { header: "x-api-key".into(), key: "k".into() },
//!     ..RestShape::default()
//! };
//! let server = RestServer::start(shape).await?;
//! let id = server.insert("/contacts", serde_json::json!({ "email": "ann@example.org" }));
//! server.faults().fail_next(1, Fault::RateLimited { retry_after: Some(1) });
//! # Ok(()) }
//! ```
//!
//! Behaviour, for every collection `C` (e.g. `/Users`):
//! - `GET C` lists, paged as [`RestShape::paging`] says, filtered by the
//!   query parameters named in [`Collection::filters`] (text equality);
//! - `GET C/{id}` reads one (404 when unknown);
//! - `POST C` creates from an object (201 with the object) or, HaloPSA
//!   style, from an array of objects (200 with the array), where an element
//!   carrying the id of an existing object updates it instead;
//! - `PUT` and `PATCH C/{id}` merge the body into the object (200);
//! - `DELETE C/{id}` removes it (204);
//! - with [`Collection::members`] set to `members`: `POST C/{id}/members`
//!   with `{"id": …}` adds (409 when already there), `DELETE
//!   C/{id}/members/{member}` removes (404 when not there);
//! - a value of a [`Collection::unique`] field already held by another
//!   object (case-insensitive) is a 409;
//! - with [`ServerAuth::OAuth2`], `POST /oauth/token` issues bearer tokens
//!   for the client credentials (HTTP Basic or form body).

mod auth;
mod routes;
mod shape;
mod store;
mod wire;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::StartError;
use crate::fault::Faults;
pub use auth::basic;
pub use shape::{Collection, Paging, RestShape, ServerAuth};
use store::{Store, id_text, scalar, store_create};

/// What the handlers share.
#[derive(Debug)]
struct Shared {
    shape: RestShape,
    addr: SocketAddr,
    store: Mutex<Store>,
    faults: Faults,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn collection(&self, path: &str) -> Option<&Collection> {
        self.shape.collections.iter().find(|c| c.path == path)
    }
}

/// A running server on 127.0.0.1; stopped on drop.
#[derive(Debug)]
pub struct RestServer {
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RestServer {
    /// Starts a server of this shape on a free port of 127.0.0.1.
    pub async fn start(shape: RestShape) -> Result<RestServer, StartError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let mut store = Store::default();
        for c in &shape.collections {
            store.items.insert(c.path.clone(), Vec::new());
        }
        let shared = Arc::new(Shared {
            shape,
            addr,
            store: Mutex::new(store),
            faults: Faults::default(),
        });
        let app = axum::Router::new().fallback(routes::handle).with_state(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!("test REST server stopped: {e}");
            }
        });
        Ok(RestServer {
            shared,
            shutdown: Some(tx),
            task,
        })
    }

    /// `http://127.0.0.1:<port>` (collection paths go below it).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The token endpoint of [`ServerAuth::OAuth2`].
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.base_url())
    }

    /// The fault knobs. Faults are injected before authentication; the
    /// token endpoint is never faulted.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Adds an object to a collection as a `POST` would (its id assigned
    /// unless it has one) and returns the id as text. Panics on an unknown collection.
    pub fn insert(&self, collection: &str, object: Value) -> String {
        let c = self
            .shared
            .collection(collection)
            .unwrap_or_else(|| panic!("no collection {collection}"));
        let mut store = self.shared.store();
        let v = store_create(&mut store, c, object);
        id_text(&v, c)
    }

    /// Every object of a collection, in creation order.
    pub fn items(&self, collection: &str) -> Vec<Value> {
        self.shared.store().items.get(collection).cloned().unwrap_or_default()
    }

    /// One object by id (as text).
    pub fn item(&self, collection: &str, id: &str) -> Option<Value> {
        let c = self.shared.collection(collection)?;
        self.items(collection).into_iter().find(|v| id_text(v, c) == id)
    }

    /// The object of a collection whose `field` is `value` (text equality).
    pub fn find(&self, collection: &str, field: &str, value: &str) -> Option<Value> {
        self.items(collection)
            .into_iter()
            .find(|v| v.get(field).and_then(scalar).as_deref() == Some(value))
    }

    /// How many requests arrived (faulted included), all paths.
    pub fn requests(&self) -> usize {
        self.shared.store().requests.len()
    }

    /// How many `method` requests arrived for this exact path (no query).
    pub fn requests_to(&self, method: &str, path: &str) -> usize {
        self.shared
            .store()
            .requests
            .iter()
            .filter(|(m, p)| m.as_str() == method && p == path)
            .count()
    }
}

impl Drop for RestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
    }
}
