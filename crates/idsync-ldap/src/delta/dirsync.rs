//! The DirSync control of Active Directory (MS-ADTS 3.1.1.3.4.1.3):
//! request and response values.

use bytes::BytesMut;
use ldap3::asn1::{ASNTag, Integer, OctetString, Sequence, Tag, parse_tag, write};
use ldap3::controls::RawControl;

/// LDAP_SERVER_DIRSYNC_OID.
pub(crate) const OID: &str = "1.2.840.113556.1.4.841";

/// LDAP_DIRSYNC_INCREMENTAL_VALUES (0x80000000 as the signed 32-bit value
/// AD reads): membership changes come as the values added (`member;range=1-1`)
/// and removed (`member;range=0-0`) instead of the whole list.
const INCREMENTAL_VALUES: i64 = -0x8000_0000;

/// The request control: incremental values, the server's default size,
/// and the cookie of the last read (empty for a first read).
pub(crate) fn request(cookie: &[u8]) -> RawControl {
    let value = Tag::Sequence(Sequence {
        inner: vec![
            Tag::Integer(Integer {
                inner: INCREMENTAL_VALUES,
                ..Default::default()
            }),
            Tag::Integer(Integer {
                inner: 0,
                ..Default::default()
            }),
            Tag::OctetString(OctetString {
                inner: cookie.to_vec(),
                ..Default::default()
            }),
        ],
        ..Default::default()
    })
    .into_structure();
    let mut buf = BytesMut::with_capacity(cookie.len() + 16);
    // Encoding into a growable buffer cannot fail.
    let _ = write::encode_into(&mut buf, value);
    RawControl {
        ctype: OID.to_owned(),
        crit: true,
        val: Some(buf.to_vec()),
    }
}

/// The response control's value: whether more results wait, and the new
/// cookie. `None` when the value is not a DirSync response.
pub(crate) fn response(value: &[u8]) -> Option<(bool, Vec<u8>)> {
    let (_, tag) = parse_tag(value).ok()?;
    let mut parts = tag.expect_constructed()?.into_iter();
    let more = parts.next()?.expect_primitive()?;
    let _unused = parts.next()?;
    let cookie = parts.next()?.expect_primitive()?;
    Some((more.iter().any(|b| *b != 0), cookie))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_the_ber_sequence_ad_expects() {
        let c = request(b"ck");
        assert_eq!(c.ctype, OID);
        assert!(c.crit);
        assert_eq!(
            c.val.as_deref(),
            Some(
                &[
                    0x30, 0x0d, 0x02, 0x04, 0x80, 0, 0, 0, 0x02, 0x01, 0x00, 0x04, 0x02, b'c', b'k'
                ][..]
            )
        );
    }

    #[test]
    fn responses_parse_and_garbage_is_refused() {
        // SEQUENCE { INTEGER 1, INTEGER 0, OCTET STRING "ab" }
        let value = [0x30, 0x0a, 0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x04, 0x02, b'a', b'b'];
        assert_eq!(response(&value), Some((true, b"ab".to_vec())));
        assert_eq!(response(&[0x04, 0x01]), None);
        assert_eq!(response(&[]), None);
        assert_eq!(response(&[0x30, 0x03, 0x02, 0x01, 0x00]), None);
    }
}
