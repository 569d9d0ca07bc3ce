#![allow(
    dead_code,
    reason = "each test binary uses part of it: expect would fail in the ones that use all"
)]

use idsync_jumpcloud::JumpCloudConfig;
use idsync_testkit::jumpcloud::FakeJumpCloud;

pub(crate) async fn fake() -> FakeJumpCloud {
    FakeJumpCloud::start(&"k".repeat(40)).await.unwrap()
}

pub(crate) fn config(jc: &FakeJumpCloud) -> JumpCloudConfig {
    let mut c = JumpCloudConfig::new(jc.base_url().parse().unwrap(), jc.api_key().to_owned().into());
    c.retry.base_ms = 10;
    c
}
