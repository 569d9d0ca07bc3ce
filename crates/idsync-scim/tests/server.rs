//! The SCIM service provider end to end.
