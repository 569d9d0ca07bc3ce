//! The SCIM service provider against the scim2-cli checker.
