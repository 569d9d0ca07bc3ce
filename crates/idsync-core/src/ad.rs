//! Active Directory value formats that more than one adapter reads (the
//! LDAP source, LDIF exports from ldifde): `objectGUID` and binary SIDs.
//! Pure decoding, no I/O.

/// An `objectGUID` (16 bytes, little-endian fields) as the usual UUID text,
/// or `None` when it is not 16 bytes.
pub fn guid_to_string(bytes: &[u8]) -> Option<String> {
    let bytes: [u8; 16] = bytes.try_into().ok()?;
    Some(uuid::Uuid::from_bytes_le(bytes).to_string())
}

/// A binary SID (`objectSid`, `sIDHistory`) as `S-1-5-21-…`, or `None` when
/// the bytes are not a well-formed SID.
pub fn sid_to_string(bytes: &[u8]) -> Option<String> {
    let (&revision, rest) = bytes.split_first()?;
    let (&count, rest) = rest.split_first()?;
    let authority = rest.get(..6)?;
    let subs = rest.get(6..)?;
    if subs.len() != usize::from(count) * 4 {
        return None;
    }
    let authority = authority.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let mut out = format!("S-{revision}-{authority}");
    for chunk in subs.chunks_exact(4) {
        let sub = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        out.push_str(&format!("-{sub}"));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_bytes_are_little_endian_fields() {
        let bytes = [
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
        ];
        assert_eq!(
            guid_to_string(&bytes).as_deref(),
            Some("00112233-4455-6677-8899-aabbccddeeff")
        );
        assert_eq!(guid_to_string(&bytes[..15]), None);
    }

    #[test]
    fn sids_decode_and_malformed_ones_do_not() {
        // S-1-5-21-3623811015-3361044348-30300820-1013
        let sid = [
            1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0xc7, 0xf7, 0xfe, 0xd7, 0x7c, 0x77, 0x55, 0xc8, 0x94, 0x5a, 0xce,
            0x01, 0xf5, 0x03, 0, 0,
        ];
        assert_eq!(
            sid_to_string(&sid).as_deref(),
            Some("S-1-5-21-3623811015-3361044348-30300820-1013")
        );
        assert_eq!(sid_to_string(&sid[..27]), None);
        assert_eq!(sid_to_string(&[1]), None);
        assert_eq!(sid_to_string(&[1, 0, 0, 0, 0, 0, 0, 5]).as_deref(), Some("S-1-5"));
    }
}
