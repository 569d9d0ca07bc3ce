//! Distinguished names (RFC 4514), the few operations the core and the
//! directory adapters need: components (escapes respected), the parent, a
//! comparable key, "is below", and a component's value.

/// The components of a DN, split on unescaped `,` (or `;`), untrimmed.
pub fn components(dn: &str) -> Vec<&str> {
    let bytes = dn.as_bytes();
    let (mut out, mut start, mut i) = (Vec::new(), 0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b',' | b';' => {
                out.push(&dn[start..i]);
                start = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    if start < dn.len() {
        out.push(&dn[start..]);
    }
    out
}

/// The parent of a DN: everything after its first component ("" for a
/// single component).
pub fn parent(dn: &str) -> &str {
    match components(dn).first() {
        Some(first) if first.len() < dn.len() => dn[first.len() + 1..].trim_start(),
        _ => "",
    }
}

/// A DN in a form to compare: components trimmed and lower case.
pub fn key(dn: &str) -> String {
    components(dn)
        .iter()
        .map(|c| c.trim().to_lowercase())
        .filter(|c| !c.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

/// True when `dn` equals `base` or lies below it (case-insensitive).
pub fn within(dn: &str, base: &str) -> bool {
    let (dn, base) = (key(dn), key(base));
    dn == base || dn.ends_with(&format!(",{base}")) || base.is_empty()
}

/// The unescaped value of the first `kind=value` component of `dn`.
pub fn component_value(dn: &str, kind: &str) -> Option<String> {
    components(dn).iter().find_map(|c| {
        let (k, v) = c.split_once('=')?;
        k.trim().eq_ignore_ascii_case(kind).then(|| unescape(v.trim()))
    })
}

fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_commas_stay_inside_their_component() {
        let dn = "CN=Smith\\, Bob,OU=Sales,DC=acme,DC=test";
        assert_eq!(components(dn), ["CN=Smith\\, Bob", "OU=Sales", "DC=acme", "DC=test"]);
        assert_eq!(parent(dn), "OU=Sales,DC=acme,DC=test");
        assert_eq!(parent("DC=test"), "");
        assert_eq!(component_value(dn, "cn").as_deref(), Some("Smith, Bob"));
        assert_eq!(key("OU=Sales, DC=Acme,DC=test"), "ou=sales,dc=acme,dc=test");
    }

    #[test]
    fn within_compares_whole_components() {
        assert!(within("ou=sales, dc=acme,dc=test", "OU=Sales,DC=acme,DC=test"));
        assert!(within("OU=EMEA,OU=Sales,DC=acme,DC=test", "OU=Sales,DC=acme,DC=test"));
        assert!(!within("OU=PreSales,DC=acme,DC=test", "OU=Sales,DC=acme,DC=test"));
        assert!(!within("DC=acme,DC=test", "OU=Sales,DC=acme,DC=test"));
    }
}
