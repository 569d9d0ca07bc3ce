//! What the SCIM client makes of a server's bytes (list pages, resources,
//! error bodies) and what the SCIM server parses (filters, PATCH bodies):
//! no input may panic.
#![no_main]

use idsync_scim::fuzzing;
use idsync_scim_server::filter::{AttrRef, Filter};
use idsync_scim_server::patch::{PatchPath, PatchRequest};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    if let Ok(resources) = fuzzing::list_response(data) {
        for (object, _) in resources {
            if let Some(o) = object {
                assert!(!o.id.0.is_empty(), "an object without an id");
            }
        }
    }
    for status in [400, 401, 404, 409, 429, 500] {
        if let Some(message) = fuzzing::error_body(status, data) {
            assert!(message.starts_with(&format!("HTTP {status}")), "{message}");
            assert!(!message.contains('\n'), "a server cannot forge log lines: {message:?}");
        }
    }
    let sample = json!({
        "id": "1", "userName": "ann", "active": true,
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "emails": [{"type": "work", "value": "ann@acme.test", "primary": true}],
        "members": [{"value": "2"}],
        "meta": {"lastModified": "2024-01-01T00:00:00Z"}
    });
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        let (object, _) = fuzzing::resource(&v);
        // An object is read only when its `active` means something.
        let active = &v["active"];
        let flag = active.is_null()
            || active.is_boolean()
            || active
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false"));
        assert!(object.is_none() || flag, "read with active {active}");
        if let Ok(patch) = PatchRequest::from_json(&v)
            && let Value::Object(mut resource) = sample.clone()
        {
            let _ = patch.apply(&mut resource, &|a: &AttrRef| a.attr.eq_ignore_ascii_case("emails"));
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(filter) = Filter::parse(text) {
            let _ = filter.matches(&sample);
        }
        if let Ok(path) = AttrRef::parse(text) {
            let _ = path.values(&sample);
        }
        if let Ok(path) = PatchPath::parse(text) {
            let _ = format!("{path:?}");
        }
    }
});
