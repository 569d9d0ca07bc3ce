//! Shared helpers of the REST adapter's tests: a generic JSON API shape for
//! the testkit server and the matching adapter configuration.
#![allow(
    dead_code,
    reason = "each test binary uses part of it: expect would fail in the ones that use all"
)]

use idsync_http::RetryConfig;
use idsync_rest::{AuthConfig, RestConfig};
use idsync_testkit::rest::{Collection, Paging, RestServer, RestShape, ServerAuth};

/// A generic API: `/users` and `/groups` (with `members`), numeric ids,
/// unique emails and group names, `{data, total}` envelope, offset/limit.
pub(crate) fn generic_shape() -> RestShape {
    RestShape {
        collections: vec![
            Collection::new("/users").unique(&["email"]),
            Collection::new("/groups").unique(&["name"]).members("members"),
        ],
        paging: Paging::OffsetLimit {
            offset_param: "offset".into(),
            limit_param: "limit".into(),
        },
        envelope: Some("data".into()),
        total_field: Some("total".into()),
        auth: ServerAuth::Bearer("t0ken".into()),
        ..RestShape::default()
    }
}

pub(crate) const GENERIC: &str = r#"
base_url = "http://127.0.0.1:1"

[http.auth]
type = "bearer"
token = "t0ken"

[users]
id = "/id"
numeric_id = true
link = "/external_ref"
enabled = { pointer = "/active" }
fields = { login = "/login", name = "/name", email = "/email" }
list = { path = "/users", items = "/data", total = "/total", pagination = { style = "offset_limit", limit = 2 } }
get = { method = "GET", path = "/users/{id}" }
create = { method = "POST", path = "/users" }
update = { method = "PATCH", path = "/users/{id}" }
delete = { method = "DELETE", path = "/users/{id}" }

[groups]
numeric_id = true
id_prefix = "group:"
link = "/external_ref"
fields = { name = "/name" }
members = "/members"
list = { path = "/groups", items = "/data", total = "/total", pagination = { style = "offset_limit", limit = 2 } }
get = { method = "GET", path = "/groups/{id}" }
create = { method = "POST", path = "/groups" }
update = { method = "PATCH", path = "/groups/{id}" }
delete = { method = "DELETE", path = "/groups/{id}" }
add_member = { method = "POST", path = "/groups/{id}/members", body = { id = "{member}" }, also_ok = [409] }
remove_member = { method = "DELETE", path = "/groups/{id}/members/{member}", also_ok = [404] }
"#;

/// Fast retries, so fault tests do not wait.
pub(crate) fn fast(mut c: RestConfig) -> RestConfig {
    c.http.retry = RetryConfig::default();
    c.http.retry.max_retries = 4;
    c.http.retry.base_ms = 5;
    c.http.retry.max_backoff_ms = 20;
    c.http.retry.max_retry_after_ms = 5_000;
    c
}

/// `text` (TOML) pointed at `server`.
pub(crate) fn config_for(text: &str, server: &RestServer) -> RestConfig {
    let mut c = RestConfig::from_toml(text).unwrap();
    c.base_url = server.base_url().parse().unwrap();
    fast(c)
}

/// The generic configuration pointed at `server`.
pub(crate) fn generic(server: &RestServer) -> RestConfig {
    config_for(GENERIC, server)
}

/// The bearer auth of the generic shape.
pub(crate) fn bearer() -> AuthConfig {
    AuthConfig::Bearer {
        token: "t0ken".to_owned().into(),
    }
}
