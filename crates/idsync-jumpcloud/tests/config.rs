//! Configuration: defaults, typos rejected, the key never shown.

use idsync_jumpcloud::{JumpCloudConfig, MatchColumn};

#[test]
fn defaults_point_at_the_console_and_match_on_employee_identifier() {
    let c: JumpCloudConfig = serde_json::from_str(r#"{"api_key": "sekrit-key-123"}"#).unwrap();
    assert_eq!(c.base_url.as_str(), "https://console.jumpcloud.com/");
    assert_eq!(c.page_size, 100);
    assert_eq!(c.match_column, MatchColumn::EmployeeIdentifier);
    assert_eq!(c.link_attribute, "idsyncLink");
    let debug = format!("{c:?}");
    assert!(!debug.contains("sekrit"), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
}

#[test]
fn a_typo_is_rejected_and_the_match_column_is_chosen_by_name() {
    let err = serde_json::from_str::<JumpCloudConfig>(r#"{"api_key": "k", "page_sise": 10}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `page_sise`"), "{err}");
    let c: JumpCloudConfig = serde_json::from_str(
        r#"{"api_key": "k", "match_column": "email", "org_id": "o1", "base_url": "http://127.0.0.1:1"}"#,
    )
    .unwrap();
    assert_eq!(c.match_column, MatchColumn::Email);
    assert_eq!(c.org_id.as_deref(), Some("o1"));
}

#[test]
fn a_page_size_over_100_is_a_configuration_error() {
    let mut c: JumpCloudConfig = serde_json::from_str(r#"{"api_key": "k"}"#).unwrap();
    c.page_size = 1000;
    let err = idsync_jumpcloud::JumpCloudSource::new(c).unwrap_err();
    assert_eq!(err.kind(), idsync_core::ErrorKind::Config);
    assert!(err.stops_run());
}
