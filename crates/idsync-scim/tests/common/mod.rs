//! Helpers shared by the scim2-server tests.
#![allow(
    dead_code,
    reason = "each test binary uses part of it: expect would fail in the ones that use all"
)]

use idsync_core::{Fields, Link, ProfileId, Target, TargetOp};
use idsync_http::{AuthConfig, HttpClient, HttpConfig, Method, Request, Url};
use idsync_scim::{ScimConfig, ScimTarget};
use idsync_testkit::scim2::Scim2Server;
use serde_json::Value;

pub(crate) fn config(base: &str, token: &str) -> ScimConfig {
    let mut c = ScimConfig::new(Url::parse(base).unwrap(), token);
    c.http.retry.base_ms = 20;
    c.http.retry.max_backoff_ms = 200;
    c
}

pub(crate) async fn target(server: &Scim2Server) -> ScimTarget {
    ScimTarget::connect(config(&server.base_url(), server.token()))
        .await
        .unwrap()
}

/// A raw client to look at the server's state.
pub(crate) fn raw(server: &Scim2Server) -> Raw {
    let http = HttpClient::new(&HttpConfig::with_auth(AuthConfig::Bearer {
        token: server.token().to_owned().into(),
    }))
    .unwrap();
    Raw {
        http,
        base: server.base_url(),
    }
}

pub(crate) struct Raw {
    pub http: HttpClient,
    pub base: String,
}

impl Raw {
    pub(crate) async fn get(&self, path: &str) -> Value {
        let url = Url::parse(&format!("{}/{path}", self.base)).unwrap();
        self.http.send_json(Request::get(url)).await.unwrap()
    }

    pub(crate) async fn status(&self, path: &str) -> u16 {
        let url = Url::parse(&format!("{}/{path}", self.base)).unwrap();
        match self.http.send(Request::get(url)).await {
            Ok(r) => r.status.as_u16(),
            Err(e) => e.status().map(|s| s.as_u16()).unwrap_or(0),
        }
    }

    pub(crate) async fn patch(&self, path: &str, ops: Value) {
        let url = Url::parse(&format!("{}/{path}", self.base)).unwrap();
        let body = serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        self.http
            .send(
                Request::new(Method::PATCH, url)
                    .json(&body, "application/scim+json")
                    .unwrap(),
            )
            .await
            .unwrap();
    }
}

pub(crate) fn fields(pairs: &[(&str, &str)]) -> Fields {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub(crate) fn link(profile: ProfileId, external: &str) -> Link {
    Link {
        profile,
        external: external.into(),
    }
}

pub(crate) async fn create(t: &ScimTarget, kind: idsync_core::ObjectKind, link: Link, f: Fields) -> String {
    let applied = t.apply(&TargetOp::Create { kind, link, fields: f }).await.unwrap();
    applied.target.unwrap().0
}
