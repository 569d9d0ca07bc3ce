//! Random initial passwords for Active Directory accounts, and their
//! `unicodePwd` encoding. A password lives only in a [`SecretString`] and
//! in the bytes of the one modify that sets it.

use rand::seq::{IndexedRandom, SliceRandom};
use secrecy::{ExposeSecret, SecretString};

/// How many characters a random password has.
const LENGTH: usize = 24;

/// The four character classes of AD's complexity rule; a password takes at
/// least one of each. No quotes, backslashes, spaces or `=`: nothing a log
/// line or an LDIF would escape or split on.
const CLASSES: [&[u8]; 4] = [
    b"ABCDEFGHJKLMNPQRSTUVWXYZ",
    b"abcdefghijkmnopqrstuvwxyz",
    b"23456789",
    b"!#%*+-.:?@^_~",
];

/// A strong random password (24 characters from 70, more than 140 bits,
/// with every class present), from the thread's cryptographically secure
/// generator.
pub(crate) fn random() -> SecretString {
    let mut rng = rand::rng();
    let all: Vec<u8> = CLASSES.concat();
    let mut chars: Vec<u8> = CLASSES
        .iter()
        .filter_map(|class| class.choose(&mut rng).copied())
        .collect();
    while chars.len() < LENGTH {
        if let Some(c) = all.choose(&mut rng) {
            chars.push(*c);
        }
    }
    chars.shuffle(&mut rng);
    SecretString::from(chars.into_iter().map(char::from).collect::<String>())
}

/// The value AD takes for `unicodePwd`: the password in double quotes,
/// UTF-16LE.
pub(crate) fn unicode_pwd(password: &SecretString) -> Vec<u8> {
    format!("\"{}\"", password.expose_secret())
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn random_passwords_are_long_mixed_and_never_repeat() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let p = random();
            let p = p.expose_secret();
            assert_eq!(p.len(), LENGTH);
            for class in CLASSES {
                assert!(p.bytes().any(|c| class.contains(&c)), "{class:?} missing");
            }
            assert!(p.bytes().all(|c| CLASSES.concat().contains(&c)));
            assert!(seen.insert(p.to_owned()), "a password came twice");
        }
    }

    #[test]
    fn unicode_pwd_is_the_quoted_password_in_utf16le() {
        let bytes = unicode_pwd(&SecretString::from("Ab1!".to_owned()));
        assert_eq!(bytes, b"\"\0A\0b\x001\0!\0\"\0");
    }
}
