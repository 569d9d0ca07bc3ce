//! OpenLDAP slapd on loopback (being written).
