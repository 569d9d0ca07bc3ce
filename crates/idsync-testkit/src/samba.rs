//! Samba AD DC on loopback (being written).
