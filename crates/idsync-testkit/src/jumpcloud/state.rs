//! The fake's data: system users, user groups and direct memberships, with
//! the validation rules JumpCloud documents. No HTTP here.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::error::ApiError;

/// The organization every record belongs to.
pub(crate) const ORG_ID: &str = "5f0c1b2c3d4e5f60718293a4";

/// Fields a client cannot set: the server owns them.
const READ_ONLY_USER_FIELDS: &[&str] = &[
    "_id",
    "id",
    "created",
    "organization",
    "account_locked_date",
    "badLoginAttempts",
    "password_expired",
    "password_expiration_date",
    "password_date",
    "creationSource",
    "mfaEnrollment",
    "totp_enabled",
    "admin",
];

/// Defaults of a new user, for the documented fields the caller left out.
fn user_defaults() -> Value {
    let mut profile = json!({
        "alternateEmail": "", "firstname": "", "middlename": "", "lastname": "",
        "displayname": "", "employeeIdentifier": "", "employeeType": "", "department": "",
        "jobTitle": "", "company": "", "costCenter": "", "location": "", "description": "",
        "manager": "", "managedAppleId": "",
        "attributes": [], "addresses": [], "phoneNumbers": [], "relationships": [], "ssh_keys": [],
    });
    let status = json!({
        "state": "ACTIVATED", "suspended": false, "activated": false,
        "account_locked": false, "account_locked_date": null, "badLoginAttempts": 0,
        "password_expired": false, "password_never_expires": false,
        "password_expiration_date": null, "password_date": null,
        "allow_public_key": true, "enable_managed_uid": false, "enable_user_portal_multifactor": false,
        "externally_managed": false, "ldap_binding_user": false, "samba_service_user": false,
        "sudo": false, "passwordless_sudo": false, "totp_enabled": false,
        "mfa": { "configured": false, "exclusion": false },
        "creationSource": "api", "restrictedFields": [],
        "organization": ORG_ID,
    });
    if let (Value::Object(p), Value::Object(s)) = (&mut profile, status) {
        p.extend(s);
    }
    profile
}

/// Users, groups and memberships.
#[derive(Debug)]
pub(crate) struct Store {
    next_id: u64,
    users: BTreeMap<String, Value>,
    groups: BTreeMap<String, Value>,
    /// group id → user ids (direct members).
    members: BTreeMap<String, BTreeSet<String>>,
    /// Status of a duplicate-user create/update: 400 as documented, or 409.
    pub(crate) duplicate_user_status: StatusCode,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            next_id: 0,
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            members: BTreeMap::new(),
            duplicate_user_status: StatusCode::BAD_REQUEST,
        }
    }
}

impl Store {
    /// A fresh 24-hex ObjectId; ids grow, so id order is creation order.
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("65a1f0c2{:016x}", self.next_id)
    }

    // ---- users ----

    pub(crate) fn users(&self) -> Vec<Value> {
        self.users.values().cloned().collect()
    }

    pub(crate) fn user(&self, id: &str) -> Option<Value> {
        self.users.get(id).cloned()
    }

    /// `POST /api/systemusers`.
    pub(crate) fn create_user(&mut self, body: Value) -> Result<Value, ApiError> {
        let Value::Object(mut input) = body else {
            return Err(ApiError::details(StatusCode::BAD_REQUEST, "body must be a JSON object"));
        };
        for key in ["username", "email"] {
            if !is_text(input.get(key)) {
                return Err(ApiError::details(StatusCode::BAD_REQUEST, format!("{key} is required")));
            }
        }
        if input
            .get("state")
            .is_some_and(|s| !matches!(s.as_str(), Some("STAGED" | "ACTIVATED" | "SUSPENDED")))
        {
            return Err(ApiError::details(
                StatusCode::BAD_REQUEST,
                "state must be STAGED, ACTIVATED or SUSPENDED",
            ));
        }
        let has_password = input.remove("password").is_some();
        for key in READ_ONLY_USER_FIELDS {
            input.remove(*key);
        }
        self.check_unique(&input, None)?;
        let id = self.new_id();
        let mut user = user_defaults();
        let Value::Object(fields) = &mut user else {
            unreachable!("defaults are an object")
        };
        // [official] with a password the user is activated at once, else
        // an activation e-mail goes out and `activated` stays false.
        fields.insert("activated".into(), Value::Bool(has_password));
        // [spec] the state default is an organization setting; this fake's
        // organization creates ACTIVATED users unless told otherwise.
        sync_state(&mut input, "ACTIVATED")?;
        self.assign_sub_ids(&mut input);
        fields.extend(input);
        fields.insert("_id".into(), Value::String(id.clone()));
        fields.insert("id".into(), Value::String(id.clone()));
        fields.insert("created".into(), Value::String(timestamp(self.next_id)));
        self.users.insert(id, user.clone());
        Ok(user)
    }

    /// `PUT /api/systemusers/{id}`: partial at the top level, arrays
    /// replaced whole.
    pub(crate) fn update_user(&mut self, id: &str, body: Value) -> Result<Value, ApiError> {
        let Some(current) = self.users.get(id) else {
            return Err(ApiError::not_found("user", id));
        };
        let current_state = current
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or("ACTIVATED")
            .to_owned();
        let Value::Object(mut input) = body else {
            return Err(ApiError::details(StatusCode::BAD_REQUEST, "body must be a JSON object"));
        };
        if input
            .get("state")
            .is_some_and(|s| !matches!(s.as_str(), Some("ACTIVATED" | "SUSPENDED")))
        {
            return Err(ApiError::details(
                StatusCode::BAD_REQUEST,
                "state may only be ACTIVATED or SUSPENDED on update",
            ));
        }
        for key in ["username", "email"] {
            if input.contains_key(key) && !is_text(input.get(key)) {
                return Err(ApiError::details(
                    StatusCode::BAD_REQUEST,
                    format!("{key} must not be empty"),
                ));
            }
        }
        // [official] a password makes the user activated; it is never stored.
        let has_password = input.remove("password").is_some();
        for key in READ_ONLY_USER_FIELDS
            .iter()
            .chain(&["activated", "passwordless_sudo", "recoveryEmail"])
        {
            input.remove(*key);
        }
        self.check_unique(&input, Some(id))?;
        sync_state(&mut input, &current_state)?;
        self.assign_sub_ids(&mut input);
        let Some(Value::Object(user)) = self.users.get_mut(id) else {
            return Err(ApiError::not_found("user", id));
        };
        user.extend(input);
        if has_password {
            user.insert("activated".into(), Value::Bool(true));
        }
        Ok(Value::Object(user.clone()))
    }

    /// `DELETE /api/systemusers/{id}`. `cascade_manager` clears `manager`
    /// on the user's reports first; without it, deleting someone's manager
    /// is a 409 (\[inferred\] the documented 409 on DELETE).
    pub(crate) fn delete_user(&mut self, id: &str, cascade_manager: bool) -> Result<Value, ApiError> {
        if !self.users.contains_key(id) {
            return Err(ApiError::not_found("user", id));
        }
        let is_manager = |u: &Value| u.get("manager").and_then(Value::as_str) == Some(id);
        if self.users.values().any(is_manager) {
            if !cascade_manager {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "user is the manager of other users; delete with cascade_manager=null",
                ));
            }
            for user in self.users.values_mut().filter(|u| is_manager(u)) {
                user["manager"] = Value::String(String::new());
            }
        }
        for members in self.members.values_mut() {
            members.remove(id);
        }
        self.users.remove(id).ok_or_else(|| ApiError::not_found("user", id))
    }

    /// `POST /api/systemusers/{id}/state/activate`.
    pub(crate) fn activate_user(&mut self, id: &str) -> Result<(), ApiError> {
        let user = self.users.get_mut(id).ok_or_else(|| ApiError::not_found("user", id))?;
        user["state"] = json!("ACTIVATED");
        user["suspended"] = json!(false);
        Ok(())
    }

    /// `POST /api/systemusers/{id}/unlock`.
    pub(crate) fn unlock_user(&mut self, id: &str) -> Result<(), ApiError> {
        let user = self.users.get_mut(id).ok_or_else(|| ApiError::not_found("user", id))?;
        user["account_locked"] = json!(false);
        user["account_locked_date"] = Value::Null;
        Ok(())
    }

    /// `username` and `email` (case-insensitively, \[inferred\]) and a
    /// non-empty `employeeIdentifier` are unique.
    fn check_unique(&self, input: &Map<String, Value>, except: Option<&str>) -> Result<(), ApiError> {
        for key in ["username", "email", "employeeIdentifier"] {
            let Some(wanted) = input.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()) else {
                continue;
            };
            let taken = self.users.iter().any(|(id, u)| {
                Some(id.as_str()) != except
                    && u.get(key)
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.eq_ignore_ascii_case(wanted))
            });
            if taken {
                return Err(ApiError::details(
                    self.duplicate_user_status,
                    format!("User already exists: {key} \"{wanted}\" is taken"),
                ));
            }
        }
        Ok(())
    }

    /// Gives each new address and phone number its read-only `id`.
    fn assign_sub_ids(&mut self, input: &mut Map<String, Value>) {
        for key in ["addresses", "phoneNumbers"] {
            let count = input.get(key).and_then(Value::as_array).map_or(0, Vec::len);
            for i in 0..count {
                let id = self.new_id();
                if let Some(Value::Object(item)) = input.get_mut(key).and_then(|v| v.get_mut(i)) {
                    item.entry("id").or_insert(Value::String(id));
                }
            }
        }
    }

    // ---- groups ----

    pub(crate) fn groups(&self) -> Vec<Value> {
        self.groups.values().cloned().collect()
    }

    pub(crate) fn group(&self, id: &str) -> Option<Value> {
        self.groups.get(id).cloned()
    }

    /// `POST /api/v2/usergroups`.
    pub(crate) fn create_group(&mut self, body: Value) -> Result<Value, ApiError> {
        let input = group_input(body, true)?;
        self.check_group_name(&input, None)?;
        let id = self.new_id();
        let mut group = json!({
            "id": id, "name": "", "type": "user_group", "description": "", "email": "",
            "attributes": {}, "membershipMethod": "STATIC",
            "memberQueryErrorFlags": [], "memberSuggestionsNotify": false,
            "suggestionCounts": { "add": 0, "remove": 0, "total": 0 },
            "organizationObjectId": ORG_ID,
        });
        if let Value::Object(fields) = &mut group {
            fields.extend(input);
        }
        self.groups.insert(id.clone(), group.clone());
        self.members.insert(id, BTreeSet::new());
        Ok(group)
    }

    /// `PUT` (full: `name` required, other writable fields reset) or
    /// `PATCH` (partial) on `/api/v2/usergroups/{id}`.
    pub(crate) fn update_group(&mut self, id: &str, body: Value, full: bool) -> Result<Value, ApiError> {
        if !self.groups.contains_key(id) {
            return Err(ApiError::not_found("user group", id));
        }
        let input = group_input(body, full)?;
        self.check_group_name(&input, Some(id))?;
        let Some(Value::Object(group)) = self.groups.get_mut(id) else {
            return Err(ApiError::not_found("user group", id));
        };
        if full {
            for (key, empty) in [
                ("description", json!("")),
                ("email", json!("")),
                ("attributes", json!({})),
            ] {
                group.insert(key.into(), empty);
            }
        }
        group.extend(input);
        Ok(Value::Object(group.clone()))
    }

    /// `DELETE /api/v2/usergroups/{id}`.
    pub(crate) fn delete_group(&mut self, id: &str) -> Result<Value, ApiError> {
        self.members.remove(id);
        self.groups
            .remove(id)
            .ok_or_else(|| ApiError::not_found("user group", id))
    }

    /// \[inferred\] duplicate group names are 409, as other v2 conflicts.
    fn check_group_name(&self, input: &Map<String, Value>, except: Option<&str>) -> Result<(), ApiError> {
        let Some(name) = input.get("name").and_then(Value::as_str) else {
            return Ok(());
        };
        if self
            .groups
            .iter()
            .any(|(id, g)| Some(id.as_str()) != except && g.get("name").and_then(Value::as_str) == Some(name))
        {
            return Err(ApiError::new(StatusCode::CONFLICT, "Already Exists"));
        }
        Ok(())
    }

    // ---- membership ----

    /// Direct members of a group, in id order.
    pub(crate) fn members(&self, group: &str) -> Result<Vec<String>, ApiError> {
        self.members
            .get(group)
            .map(|m| m.iter().cloned().collect())
            .ok_or_else(|| ApiError::not_found("user group", group))
    }

    /// Groups a user is a direct member of, in id order.
    pub(crate) fn member_of(&self, user: &str) -> Result<Vec<String>, ApiError> {
        if !self.users.contains_key(user) {
            return Err(ApiError::not_found("user", user));
        }
        Ok(self
            .members
            .iter()
            .filter(|(_, m)| m.contains(user))
            .map(|(g, _)| g.clone())
            .collect())
    }

    /// Adds a member: 404 for an unknown group or user (\[inferred\] for the
    /// user: undocumented), 409 `Already Exists` for an existing member
    /// ([official] jc, baton-jumpcloud).
    pub(crate) fn add_member(&mut self, group: &str, user: &str) -> Result<(), ApiError> {
        if !self.users.contains_key(user) {
            return Err(ApiError::not_found("user", user));
        }
        let members = self
            .members
            .get_mut(group)
            .ok_or_else(|| ApiError::not_found("user group", group))?;
        if !members.insert(user.to_owned()) {
            return Err(ApiError::new(StatusCode::CONFLICT, "Already Exists"));
        }
        Ok(())
    }

    /// Removes a member: 404 for an unknown group or a non-member
    /// ([official] jc, baton-jumpcloud).
    pub(crate) fn remove_member(&mut self, group: &str, user: &str) -> Result<(), ApiError> {
        let members = self
            .members
            .get_mut(group)
            .ok_or_else(|| ApiError::not_found("user group", group))?;
        if !members.remove(user) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("user {user} is not a member of {group}"),
            ));
        }
        Ok(())
    }
}

/// A non-blank string.
fn is_text(value: Option<&Value>) -> bool {
    value.and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty())
}

/// Keeps `state` and `suspended` in agreement ([official]): a
/// contradictory pair is a 400; one of them alone sets the other.
fn sync_state(input: &mut Map<String, Value>, current: &str) -> Result<(), ApiError> {
    let state = input.get("state").and_then(Value::as_str).map(str::to_owned);
    let suspended = match input.get("suspended") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(ApiError::details(
                StatusCode::BAD_REQUEST,
                "suspended must be a boolean",
            ));
        }
    };
    match (state.as_deref(), suspended) {
        (Some(s), Some(b)) if (s == "SUSPENDED") != b => Err(ApiError::details(
            StatusCode::BAD_REQUEST,
            format!("state {s} contradicts suspended={b}"),
        )),
        (Some(s), _) => {
            input.insert("suspended".into(), Value::Bool(s == "SUSPENDED"));
            Ok(())
        }
        (None, Some(b)) => {
            let s = match (b, current) {
                (true, _) => "SUSPENDED",
                (false, "STAGED") => "STAGED",
                (false, _) => "ACTIVATED",
            };
            input.insert("state".into(), Value::String(s.into()));
            Ok(())
        }
        (None, None) => Ok(()),
    }
}

/// Validates a group body; `name` is required when `require_name`.
fn group_input(body: Value, require_name: bool) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(mut input) = body else {
        return Err(ApiError::details(StatusCode::BAD_REQUEST, "body must be a JSON object"));
    };
    match input.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        None if !require_name => {}
        _ => return Err(ApiError::details(StatusCode::BAD_REQUEST, "name is required")),
    }
    for key in [
        "id",
        "type",
        "suggestionCounts",
        "memberQueryErrorFlags",
        "organizationObjectId",
    ] {
        input.remove(key);
    }
    Ok(input)
}

/// A deterministic ISO 8601 timestamp that grows with `n`.
fn timestamp(n: u64) -> String {
    let secs = n % 60;
    let mins = (n / 60) % 60;
    let hours = (n / 3600) % 24;
    format!("2024-01-12T{hours:02}:{mins:02}:{secs:02}.000Z")
}
