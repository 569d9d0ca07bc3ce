//! Wire calls to JumpCloud, all through idsync-http.

use idsync_http::header::{HeaderName, HeaderValue};
use idsync_http::{AuthConfig, HttpClient, HttpConfig, Method, Request, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::config::JumpCloudConfig;
use crate::error::JumpCloudError;

type JumpCloudResult<T> = std::result::Result<T, JumpCloudError>;

/// A JumpCloud API client (v1 system users, v2 user groups).
#[derive(Debug)]
pub struct JumpCloudClient {
    http: HttpClient,
    base: Url,
    org_id: Option<HeaderValue>,
    page_size: u32,
}

#[derive(Deserialize)]
struct V1List {
    /// Required: a page without `results` is not an empty page (read as
    /// one, it would make every user look gone).
    results: Vec<Value>,
}

impl JumpCloudClient {
    /// Builds the client; does no I/O.
    pub fn new(config: &JumpCloudConfig) -> JumpCloudResult<Self> {
        let key = SecretString::from(config.api_key.expose_secret().to_owned());
        let mut http_config = HttpConfig::default();
        http_config.auth = AuthConfig::ApiKey {
            header: "x-api-key".to_owned(),
            key,
        };
        http_config.retry = config.retry.clone();
        http_config.rate_limit = config.rate_limit.clone();
        http_config.tls = config.tls.clone();
        let http = HttpClient::new(&http_config).map_err(|e| JumpCloudError::Config(e.to_string()))?;
        let org_id = match &config.org_id {
            Some(o) => Some(
                HeaderValue::from_str(o).map_err(|_| JumpCloudError::Config("org_id is not a header value".into()))?,
            ),
            None => None,
        };
        if config.page_size == 0 || config.page_size > 100 {
            return Err(JumpCloudError::Config("page_size must be 1..=100".into()));
        }
        Ok(JumpCloudClient {
            http,
            base: config.base_url.clone(),
            org_id,
            page_size: config.page_size,
        })
    }

    fn url(&self, path: &str) -> JumpCloudResult<Url> {
        self.base
            .join(path)
            .map_err(|e| JumpCloudError::Config(format!("base URL: {e}")))
    }

    fn request(&self, method: Method, url: Url) -> Request {
        let mut r = Request::new(method, url).header(
            HeaderName::from_static("accept"),
            HeaderValue::from_static("application/json"),
        );
        if let Some(o) = &self.org_id {
            r = r.header(HeaderName::from_static("x-org-id"), o.clone());
        }
        r
    }

    async fn send_value(&self, object: &str, req: Request) -> JumpCloudResult<Value> {
        let resp = self.http.send(req).await.map_err(|e| JumpCloudError::http(object, e))?;
        if resp.body.is_empty() {
            return Ok(Value::Null);
        }
        resp.json::<Value>().map_err(|e| JumpCloudError::http(object, e))
    }

    fn with_json(&self, req: Request, object: &str, body: &Value) -> JumpCloudResult<Request> {
        req.json(body, "application/json")
            .map_err(|e| JumpCloudError::http(object, e))
    }

    /// All system users, page by page (`skip`/`limit` until a short page).
    pub async fn list_users_page(&self, skip: u64) -> JumpCloudResult<(Vec<Value>, bool)> {
        let mut url = self.url("/api/systemusers")?;
        url.query_pairs_mut()
            .append_pair("skip", &skip.to_string())
            .append_pair("limit", &self.page_size.to_string())
            .append_pair("sort", "_id");
        let v = self.send_value("system users", self.request(Method::GET, url)).await?;
        let list: V1List = serde_json::from_value(v).map_err(|e| JumpCloudError::InvalidData {
            object: "system users".into(),
            message: format!("list envelope: {e}"),
        })?;
        let last = (list.results.len() as u64) < u64::from(self.page_size);
        Ok((list.results, last))
    }

    /// Every system user.
    pub async fn list_users(&self) -> JumpCloudResult<Vec<Value>> {
        let mut all = Vec::new();
        let mut skip = 0u64;
        loop {
            let (page, last) = self.list_users_page(skip).await?;
            skip += page.len() as u64;
            all.extend(page);
            if last {
                return Ok(all);
            }
        }
    }

    async fn list_v2(&self, path: &str, object: &str) -> JumpCloudResult<Vec<Value>> {
        let mut all = Vec::new();
        let mut skip = 0u64;
        loop {
            let mut url = self.url(path)?;
            url.query_pairs_mut()
                .append_pair("skip", &skip.to_string())
                .append_pair("limit", &self.page_size.to_string());
            let v = self.send_value(object, self.request(Method::GET, url)).await?;
            let Value::Array(page) = v else {
                return Err(JumpCloudError::InvalidData {
                    object: object.into(),
                    message: "expected a JSON array".into(),
                });
            };
            let n = page.len();
            skip += n as u64;
            all.extend(page);
            if (n as u64) < u64::from(self.page_size) {
                return Ok(all);
            }
        }
    }

    /// Every user group (v2).
    pub async fn list_groups(&self) -> JumpCloudResult<Vec<Value>> {
        self.list_v2("/api/v2/usergroups", "user groups").await
    }

    /// The direct members of a user group (v2 graph connections).
    pub async fn group_members(&self, group: &str) -> JumpCloudResult<Vec<Value>> {
        self.list_v2(
            &format!("/api/v2/usergroups/{group}/members"),
            &format!("user group {group} members"),
        )
        .await
    }

    /// One system user; `None` when it does not exist.
    pub async fn get_user(&self, id: &str) -> JumpCloudResult<Option<Value>> {
        let url = self.url(&format!("/api/systemusers/{id}"))?;
        match self
            .send_value(&format!("system user {id}"), self.request(Method::GET, url))
            .await
        {
            Ok(Value::Null) => Ok(None),
            Ok(v) if v.as_object().is_some_and(|o| o.is_empty()) => Ok(None),
            Ok(v) => Ok(Some(v)),
            Err(JumpCloudError::Http { source, .. }) if source.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One user group; `None` when it does not exist.
    pub async fn get_group(&self, id: &str) -> JumpCloudResult<Option<Value>> {
        let url = self.url(&format!("/api/v2/usergroups/{id}"))?;
        match self
            .send_value(&format!("user group {id}"), self.request(Method::GET, url))
            .await
        {
            Ok(Value::Null) => Ok(None),
            Ok(v) => Ok(Some(v)),
            Err(JumpCloudError::Http { source, .. }) if source.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /api/systemusers`; not retried blindly (not idempotent).
    pub async fn create_user(&self, body: &Value) -> JumpCloudResult<Value> {
        let object = format!(
            "new system user {}",
            body.get("username").and_then(Value::as_str).unwrap_or("?")
        );
        let req = self.with_json(
            self.request(Method::POST, self.url("/api/systemusers")?)
                .idempotent(false),
            &object,
            body,
        )?;
        self.send_value(&object, req).await
    }

    /// `PUT /api/systemusers/{id}` (partial at top level).
    pub async fn update_user(&self, id: &str, body: &Value) -> JumpCloudResult<Value> {
        let object = format!("system user {id}");
        let req = self.with_json(
            self.request(Method::PUT, self.url(&format!("/api/systemusers/{id}"))?),
            &object,
            body,
        )?;
        self.send_value(&object, req).await
    }

    /// `DELETE /api/systemusers/{id}`.
    pub async fn delete_user(&self, id: &str) -> JumpCloudResult<()> {
        let object = format!("system user {id}");
        self.send_value(
            &object,
            self.request(Method::DELETE, self.url(&format!("/api/systemusers/{id}"))?),
        )
        .await?;
        Ok(())
    }

    /// `POST /api/v2/usergroups`.
    pub async fn create_group(&self, body: &Value) -> JumpCloudResult<Value> {
        let object = format!(
            "new user group {}",
            body.get("name").and_then(Value::as_str).unwrap_or("?")
        );
        let req = self.with_json(
            self.request(Method::POST, self.url("/api/v2/usergroups")?)
                .idempotent(false),
            &object,
            body,
        )?;
        self.send_value(&object, req).await
    }

    /// `PUT /api/v2/usergroups/{id}` (name required).
    pub async fn update_group(&self, id: &str, body: &Value) -> JumpCloudResult<Value> {
        let object = format!("user group {id}");
        let req = self.with_json(
            self.request(Method::PUT, self.url(&format!("/api/v2/usergroups/{id}"))?),
            &object,
            body,
        )?;
        self.send_value(&object, req).await
    }

    /// `DELETE /api/v2/usergroups/{id}`.
    pub async fn delete_group(&self, id: &str) -> JumpCloudResult<()> {
        let object = format!("user group {id}");
        self.send_value(
            &object,
            self.request(Method::DELETE, self.url(&format!("/api/v2/usergroups/{id}"))?),
        )
        .await?;
        Ok(())
    }

    /// Adds (`add`) or removes (`remove`) a user; already-a-member (409) and
    /// not-a-member (404 on remove) count as success.
    pub async fn membership(&self, group: &str, user: &str, add: bool) -> JumpCloudResult<()> {
        let object = format!("user group {group} member {user}");
        let body = serde_json::json!({"op": if add { "add" } else { "remove" }, "type": "user", "id": user});
        let url = self.url(&format!("/api/v2/usergroups/{group}/members"))?;
        let req = self.with_json(self.request(Method::POST, url).idempotent(true), &object, &body)?;
        match self.http.send(req).await {
            Ok(_) => Ok(()),
            Err(e) if add && e.status() == Some(StatusCode::CONFLICT) => Ok(()),
            Err(e) if !add && e.status() == Some(StatusCode::NOT_FOUND) => Ok(()),
            Err(e) => Err(JumpCloudError::http(object, e)),
        }
    }
}
