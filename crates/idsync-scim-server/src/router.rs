//! The server: its builder and the routes.

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::middleware;
use axum::routing::{get, post};
use idsync_core::{ObjectKind, Profile, Target};
use secrecy::SecretString;

use crate::auth::auth;
use crate::history::ProvisioningSink;
use crate::query::{
    discovery_resource_type, discovery_resource_types, discovery_schema, discovery_schemas, discovery_spc, get_route,
    list_route, not_found_route, search_route,
};
use crate::state::{RequestInfo, ServerState};
use crate::store::DocumentStore;
use crate::write::{WriteKind, create_route, write_route};

/// Builds a SCIM service provider; [`ScimServer::router`] gives the axum
/// [`Router`] to serve or nest (e.g. under `/scim/v2`).
pub struct ScimServer {
    profile: Profile,
    target: Arc<dyn Target>,
    token: SecretString,
    sink: Option<Arc<dyn ProvisioningSink>>,
    base_url: Option<String>,
    max_results: usize,
}

impl fmt::Debug for ScimServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScimServer")
            .field("profile", &self.profile.id)
            .field("target", &self.target.backend())
            .field("token", &"[redacted]")
            .field("base_url", &self.base_url)
            .field("max_results", &self.max_results)
            .finish()
    }
}

/// The router of a SCIM service provider for `profile` over `target`,
/// accepting `token` as bearer token. See [`ScimServer`] for options.
pub fn scim_router(profile: Profile, target: Arc<dyn Target>, token: SecretString) -> Router {
    ScimServer::new(profile, target, token).router()
}

impl ScimServer {
    /// A server for `profile` over `target`, accepting `token` as bearer token.
    pub fn new(profile: Profile, target: Arc<dyn Target>, token: SecretString) -> Self {
        ScimServer {
            profile,
            target,
            token,
            sink: None,
            base_url: None,
            max_results: 1000,
        }
    }

    /// Hands a record of every request to `sink` (the provisioning history).
    pub fn with_sink(mut self, sink: impl ProvisioningSink) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// The public base URL (`https://app.example/scim/v2`) for
    /// `meta.location`; by default it is made of the `Host` header and the
    /// path the router is nested under, over `http`.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into().trim_end_matches('/').to_owned());
        self
    }

    /// The most resources one list answer holds (default 1000).
    pub fn with_max_results(mut self, max: usize) -> Self {
        self.max_results = max.max(1);
        self
    }

    /// Serves the router on `listener` (at its root) until the task is
    /// dropped or the listener fails.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// The axum router: `/Users`, `/Groups`, `/ServiceProviderConfig`,
    /// `/Schemas`, `/ResourceTypes`, `/.search`, all behind the bearer token.
    pub fn router(self) -> Router {
        let state = Arc::new(ServerState {
            profile: self.profile,
            target: self.target,
            token: self.token,
            sink: self.sink,
            base_url: self.base_url,
            max_results: self.max_results,
            writes: tokio::sync::Mutex::new(()),
            store: DocumentStore::default(),
        });
        type Shared = State<Arc<ServerState>>;
        let mut router = Router::new()
            .route("/ServiceProviderConfig", get(discovery_spc))
            .route("/Schemas", get(discovery_schemas))
            .route("/Schemas/{id}", get(discovery_schema))
            .route("/ResourceTypes", get(discovery_resource_types))
            .route("/ResourceTypes/{id}", get(discovery_resource_type))
            .route(
                "/.search",
                post(|s: Shared, r: RequestInfo, b: Bytes| search_route(s, r, b, None)),
            );
        for (kind, endpoint) in [(ObjectKind::User, "/Users"), (ObjectKind::Group, "/Groups")] {
            router = router
                .route(
                    endpoint,
                    get(move |s: Shared, r: RequestInfo| list_route(s, r, kind))
                        .post(move |s: Shared, r: RequestInfo, b: Bytes| create_route(s, r, b, kind)),
                )
                .route(
                    &format!("{endpoint}/.search"),
                    post(move |s: Shared, r: RequestInfo, b: Bytes| search_route(s, r, b, Some(kind))),
                )
                .route(
                    &format!("{endpoint}/{{id}}"),
                    get(move |s: Shared, r: RequestInfo, p: Path<String>| get_route(s, r, p, kind))
                        .put(move |s: Shared, r: RequestInfo, p: Path<String>, b: Bytes| {
                            write_route(s, r, p, b, kind, WriteKind::Replace)
                        })
                        .patch(move |s: Shared, r: RequestInfo, p: Path<String>, b: Bytes| {
                            write_route(s, r, p, b, kind, WriteKind::Patch)
                        })
                        .delete(move |s: Shared, r: RequestInfo, p: Path<String>| {
                            write_route(s, r, p, Bytes::new(), kind, WriteKind::Delete)
                        }),
                );
        }
        router
            .fallback(not_found_route)
            .layer(middleware::from_fn_with_state(state.clone(), auth))
            .with_state(state)
    }
}
