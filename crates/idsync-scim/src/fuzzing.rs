//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): what
//! the client makes of a server's bytes. Not a stable API.

use idsync_core::{ObjectKind, SourceObject, TargetAccount};
use serde_json::Value;

use crate::config::LinkStyle;

/// What a list response page (`bytes`) becomes: each resource as a source
/// object and as a target account (`None` when unreadable), or the error
/// that makes the page unreadable.
#[expect(
    clippy::type_complexity,
    reason = "a fuzzing entry point: the pair is its whole answer"
)]
pub fn list_response(bytes: &[u8]) -> Result<Vec<(Option<SourceObject>, Option<TargetAccount>)>, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let (items, _) = crate::client::list_page(v).map_err(str::to_owned)?;
    Ok(items.iter().map(resource).collect())
}

/// One resource as a user source object and as a user target account.
pub fn resource(v: &Value) -> (Option<SourceObject>, Option<TargetAccount>) {
    let object = crate::source::to_object(v, ObjectKind::User, "fuzz").ok().flatten();
    let account = crate::target::to_account(v, ObjectKind::Group, &LinkStyle::default(), "fuzz")
        .ok()
        .flatten();
    if let Some(name) = v.get("userName").and_then(Value::as_str) {
        let _ = crate::map::AttrPath::parse(name).map(|p| p.get(v));
    }
    (object, account)
}

/// The message a failed request with `status` and error `body` gives.
pub fn error_body(status: u16, body: &[u8]) -> Option<String> {
    crate::error::parse_error_body(status, body).map(|e| e.to_string())
}
