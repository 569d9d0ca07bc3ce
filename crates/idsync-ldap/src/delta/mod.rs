//! Reading what changed since a cursor: syncrepl for OpenLDAP,
//! modifyTimestamp for other generic servers, DirSync or uSNChanged for
//! Active Directory, and what the last three share.

pub(crate) mod ad;
pub(crate) mod changes;
pub(crate) mod dirsync;
pub(crate) mod syncrepl;
pub(crate) mod timestamp;
