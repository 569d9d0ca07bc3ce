//! The discovery documents (RFC 7643 §5–7, §8.7): `/ServiceProviderConfig`,
//! `/ResourceTypes` and `/Schemas` of the core User (with the enterprise
//! extension) and Group.

use serde_json::{Value, json};

use idsync_scim::map::{ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

use crate::filter::AttrRef;

/// `ServiceProviderConfig` schema.
pub(crate) const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
/// `ResourceType` schema.
pub(crate) const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// `Schema` schema.
pub(crate) const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// `ListResponse` messages.
pub(crate) const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// `SearchRequest` messages.
pub(crate) const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// `Error` messages.
pub(crate) const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

#[derive(Clone, Copy)]
struct AttrSpec {
    name: &'static str,
    ty: &'static str,
    multi: bool,
    required: bool,
    mutability: &'static str,
    returned: &'static str,
    uniqueness: &'static str,
    case_exact: bool,
}

const fn attr(name: &'static str, ty: &'static str) -> AttrSpec {
    AttrSpec {
        name,
        ty,
        multi: false,
        required: false,
        mutability: "readWrite",
        returned: "default",
        uniqueness: "none",
        case_exact: false,
    }
}

impl AttrSpec {
    const fn multi(mut self) -> Self {
        self.multi = true;
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn mutability(mut self, m: &'static str) -> Self {
        self.mutability = m;
        self
    }
    const fn returned(mut self, r: &'static str) -> Self {
        self.returned = r;
        self
    }
    const fn unique(mut self) -> Self {
        self.uniqueness = "server";
        self
    }
    const fn exact(mut self) -> Self {
        self.case_exact = true;
        self
    }

    fn json(self, subs: Option<Vec<Value>>, refs: Option<&[&str]>, canonical: Option<&[&str]>) -> Value {
        let mut v = json!({
            "name": self.name,
            "type": self.ty,
            "multiValued": self.multi,
            "description": self.name,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        });
        if let Some(subs) = subs {
            v["subAttributes"] = Value::Array(subs);
        }
        if let Some(refs) = refs {
            v["referenceTypes"] = json!(refs);
        }
        if let Some(c) = canonical {
            v["canonicalValues"] = json!(c);
        }
        v
    }

    fn plain(self) -> Value {
        self.json(None, None, None)
    }
}

fn complex(spec: AttrSpec, subs: Vec<Value>) -> Value {
    spec.json(Some(subs), None, None)
}

/// `value`, `display`, `type`, `primary`: the sub-attributes of most
/// multi-valued attributes.
fn multi_valued(name: &'static str, value_type: &'static str, types: &[&str], refs: Option<&[&str]>) -> Value {
    complex(
        attr(name, "complex").multi(),
        vec![
            attr("value", value_type).json(None, refs, None),
            attr("display", "string").plain(),
            attr("type", "string").json(None, None, Some(types)),
            attr("primary", "boolean").plain(),
        ],
    )
}

fn user_attributes() -> Vec<Value> {
    let s = |n| attr(n, "string").plain();
    vec![
        attr("userName", "string").required().unique().plain(),
        complex(
            attr("name", "complex"),
            vec![
                s("formatted"),
                s("familyName"),
                s("givenName"),
                s("middleName"),
                s("honorificPrefix"),
                s("honorificSuffix"),
            ],
        ),
        s("displayName"),
        s("nickName"),
        attr("profileUrl", "reference").json(None, Some(&["external"]), None),
        s("title"),
        s("userType"),
        s("preferredLanguage"),
        s("locale"),
        s("timezone"),
        attr("active", "boolean").plain(),
        attr("password", "string")
            .mutability("writeOnly")
            .returned("never")
            .exact()
            .plain(),
        multi_valued("emails", "string", &["work", "home", "other"], None),
        multi_valued(
            "phoneNumbers",
            "string",
            &["work", "home", "mobile", "fax", "pager", "other"],
            None,
        ),
        multi_valued(
            "ims",
            "string",
            &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
            None,
        ),
        multi_valued("photos", "reference", &["photo", "thumbnail"], Some(&["external"])),
        complex(
            attr("addresses", "complex").multi(),
            vec![
                s("formatted"),
                s("streetAddress"),
                s("locality"),
                s("region"),
                s("postalCode"),
                s("country"),
                attr("type", "string").json(None, None, Some(&["work", "home", "other"])),
                attr("primary", "boolean").plain(),
            ],
        ),
        complex(
            attr("groups", "complex").multi().mutability("readOnly"),
            vec![
                attr("value", "string").mutability("readOnly").plain(),
                attr("$ref", "reference")
                    .mutability("readOnly")
                    .json(None, Some(&["User", "Group"]), None),
                attr("display", "string").mutability("readOnly").plain(),
                attr("type", "string")
                    .mutability("readOnly")
                    .json(None, None, Some(&["direct", "indirect"])),
            ],
        ),
        multi_valued("entitlements", "string", &[], None),
        multi_valued("roles", "string", &[], None),
        multi_valued("x509Certificates", "binary", &[], None),
    ]
}

fn enterprise_attributes() -> Vec<Value> {
    let s = |n| attr(n, "string").plain();
    vec![
        s("employeeNumber"),
        s("costCenter"),
        s("organization"),
        s("division"),
        s("department"),
        complex(
            attr("manager", "complex"),
            vec![
                attr("value", "string").plain(),
                attr("$ref", "reference").json(None, Some(&["User"]), None),
                attr("displayName", "string").mutability("readOnly").plain(),
            ],
        ),
    ]
}

fn group_attributes() -> Vec<Value> {
    vec![
        attr("displayName", "string").required().plain(),
        complex(
            attr("members", "complex").multi(),
            vec![
                attr("value", "string").mutability("immutable").exact().plain(),
                attr("$ref", "reference")
                    .mutability("immutable")
                    .json(None, Some(&["User", "Group"]), None),
                attr("display", "string").mutability("readOnly").plain(),
                attr("type", "string")
                    .mutability("immutable")
                    .json(None, None, Some(&["User", "Group"])),
            ],
        ),
    ]
}

fn schema(id: &str, name: &str, attributes: Vec<Value>, base: &str) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": id,
        "name": name,
        "description": name,
        "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
    })
}

/// Every schema, with locations under `base`.
pub(crate) fn schemas(base: &str) -> Vec<Value> {
    vec![
        schema(USER_SCHEMA, "User", user_attributes(), base),
        schema(ENTERPRISE_SCHEMA, "EnterpriseUser", enterprise_attributes(), base),
        schema(GROUP_SCHEMA, "Group", group_attributes(), base),
    ]
}

/// The resource types, with locations under `base`.
pub(crate) fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User accounts",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": ENTERPRISE_SCHEMA, "required": false}],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")},
        }),
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Groups",
            "schema": GROUP_SCHEMA,
            "schemaExtensions": [],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group")},
        }),
    ]
}

/// The service provider configuration.
pub(crate) fn service_provider_config(base: &str, max_results: usize) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": max_results},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token (RFC 6750)",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
    })
}

/// Whether an attribute is multi-valued in the schemas served.
pub(crate) fn is_multi(r: &AttrRef) -> bool {
    if r.sub.is_some() {
        return false;
    }
    const MULTI: &[&str] = &[
        "emails",
        "phoneNumbers",
        "ims",
        "photos",
        "addresses",
        "groups",
        "entitlements",
        "roles",
        "x509Certificates",
        "members",
        "schemas",
    ];
    r.schema.is_none() && MULTI.iter().any(|m| m.eq_ignore_ascii_case(&r.attr))
}
