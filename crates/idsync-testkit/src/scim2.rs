//! scim2-server on loopback (being written).
