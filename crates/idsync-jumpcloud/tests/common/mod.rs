#![allow(dead_code)]

use idsync_jumpcloud::JumpCloudConfig;
use idsync_testkit::jumpcloud::FakeJumpCloud;

pub async fn fake() -> FakeJumpCloud {
    FakeJumpCloud::start(&"k".repeat(40)).await.unwrap()
}

pub fn config(jc: &FakeJumpCloud) -> JumpCloudConfig {
    let mut c = JumpCloudConfig::new(jc.base_url().parse().unwrap(), jc.api_key().to_owned().into());
    c.retry.base_ms = 10;
    c
}
