//! LDAP filter and DN injection attempts in attribute values and external
//! ids, written through the LDAP target into a real slapd: each object ends
//! with exactly its literal values, lookups by those values (correlation,
//! links) match nothing they should not, a second run finds nothing to do,
//! and the directory's other entries are not touched.
#![expect(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failure fails the test"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use idsync_core::memory::MemorySource;
use idsync_core::{Engine, MemoryStateStore, ObjectKind, Profile, RunOptions, SourceObject};
use idsync_ldap::{Flavor, LdapConfig, LdapTarget};
use idsync_testkit::slapd::{Slapd, SlapdOptions, slapd};

fn target_config(s: &Slapd) -> LdapConfig {
    let mut c = LdapConfig::new(
        &s.url(),
        &s.admin_dn(),
        s.admin_password(),
        s.base_dn(),
        Flavor::Generic,
    );
    c.default_container = Some(s.people_dn());
    c.disabled_attribute = Some("employeeType".into());
    c
}

fn profile() -> Profile {
    serde_json::from_value(serde_json::json!({
        "id": "a1a1a1a1-0000-4000-8000-00000000001f", "name": "injection",
        "mapping": {"users": [{"field": "cn", "attribute": "cn"}, {"field": "sn", "attribute": "sn"},
                              {"field": "mail", "attribute": "mail"}, {"field": "title", "attribute": "title"}]},
        "rules": {"correlation": {"attribute": "mail", "field": "mail"}}
    }))
    .unwrap()
}

/// (external id, cn, sn, mail, title): the values that would change a
/// filter or a DN if they were not escaped. `u00000*` as a mail would
/// soft-match (and adopt) the fixture's users `u000000@…` unescaped.
const ATTEMPTS: [(&str, &str, &str, &str, &str); 7] = [
    ("inj-star", "*)(uid=*", "*", "*)(uid=*", "*"),
    ("inj-escapes", "\\00 nul", "a\\2ab", "u00000*", "\\00"),
    (
        "inj-dn",
        "cn=x,ou=evil",
        "x,ou=evil",
        "dn@acme.test",
        "cn=admin,dc=acme,dc=test",
    ),
    ("inj-hash", "#hash", "#", "hash@acme.test", "#1"),
    ("inj-space", "  leading and trailing  ", " s ", "space@acme.test", " t "),
    (
        "inj-special",
        "a+uid=b;c<d>e\"f\\g",
        "=",
        "special@acme.test",
        "(|(uid=*))",
    ),
    // The external id itself goes into the link filters.
    ("*)(description=*", "link star", "l", "link@acme.test", "x"),
];

/// The first RDN of a DN (RFC 4514): its attribute and unescaped value
/// (`\\,` and `\\2C` both read as `,`).
fn first_rdn(dn: &str) -> (String, String) {
    let bytes = dn.as_bytes();
    let eq = dn.find('=').expect("an RDN");
    let mut value = Vec::new();
    let mut i = eq + 1;
    while i < bytes.len() && bytes[i] != b',' {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let hex = dn.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    value.push(b);
                    i += 3;
                }
                None => {
                    value.push(bytes[i + 1]);
                    i += 2;
                }
            }
            continue;
        }
        value.push(bytes[i]);
        i += 1;
    }
    (dn[..eq].to_lowercase(), String::from_utf8(value).expect("UTF-8"))
}

type Attrs = BTreeMap<String, Vec<Vec<u8>>>;

/// Every entry under the base (by DN as the server writes it) with its attributes (entryCSN changes on any write).
async fn snapshot(s: &Slapd) -> BTreeMap<String, Attrs> {
    s.search(s.base_dn(), "(objectClass=*)", &["*", "entryCSN"])
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.dn, e.attrs))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn injection_attempts_are_written_literally_and_touch_nothing_else() {
    let Some(s) = slapd(SlapdOptions::with_users(5, 1)).await else {
        return;
    };
    let before = snapshot(&s).await;
    let objects = ATTEMPTS.iter().map(|(id, cn, sn, mail, title)| {
        SourceObject::new(*id, ObjectKind::User)
            .with("cn", *cn)
            .with("sn", *sn)
            .with("mail", *mail)
            .with("title", *title)
    });
    let source = MemorySource::with_objects(objects);
    let profile = profile();
    let engine = Engine::new(
        profile.clone(),
        Arc::new(source),
        Arc::new(LdapTarget::new(target_config(&s))),
        Arc::new(MemoryStateStore::new()),
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(
        report.outcome,
        idsync_core::report::RunOutcome::Succeeded,
        "{}",
        report.to_json()
    );
    assert_eq!(
        report.plan.counts.create,
        ATTEMPTS.len(),
        "nothing adopted: {}",
        report.plan
    );
    assert_eq!(report.plan.counts.link, 0, "{}", report.plan);

    let after = snapshot(&s).await;
    for (dn, attrs) in &before {
        assert_eq!(after.get(dn), Some(attrs), "{dn} was touched");
    }
    let new: Vec<_> = after.iter().filter(|(dn, _)| !before.contains_key(*dn)).collect();
    assert_eq!(
        new.len(),
        ATTEMPTS.len(),
        "one entry per object: {:?}",
        new.iter().map(|(d, _)| d).collect::<Vec<_>>()
    );
    let text = |attrs: &Attrs, name: &str| -> Vec<String> {
        attrs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.iter().map(|b| String::from_utf8(b.clone()).unwrap()))
            .collect()
    };
    let people = s.people_dn();
    for (id, cn, sn, mail, title) in ATTEMPTS {
        let link = format!("idsync:{}:{id}", profile.id);
        let (dn, attrs) = new
            .iter()
            .find(|(_, a)| text(a, "description") == [link.clone()])
            .unwrap_or_else(|| panic!("no entry linked to {id}"));
        assert_eq!(text(attrs, "cn"), [cn], "{dn}");
        assert_eq!(text(attrs, "sn"), [sn], "{dn}");
        assert_eq!(text(attrs, "mail"), [mail], "{dn}");
        assert_eq!(text(attrs, "title"), [title], "{dn}");
        assert!(
            dn.to_lowercase().ends_with(&format!(",{}", people.to_lowercase()))
                && idsync_core::dn::components(dn).len() == people.split(',').count() + 1,
            "one RDN directly under the people OU: {dn}"
        );
        let (attribute, value) = first_rdn(dn);
        assert_eq!(
            (attribute.as_str(), value.as_str()),
            ("cn", cn),
            "the RDN holds the literal cn: {dn}"
        );
    }

    // The values read back are the values written, and every link and
    // lookup filter finds its entry: nothing to do.
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert!(report.plan.is_empty(), "{}", report.plan);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_character_in_a_value_is_written_literally_and_reads_back_the_same() {
    let Some(s) = slapd(SlapdOptions::with_users(2, 0)).await else {
        return;
    };
    let before = snapshot(&s).await;
    let source = MemorySource::with_objects([
        SourceObject::new("nul", ObjectKind::User)
            .with("cn", "Nul Char")
            .with("sn", "N")
            .with("mail", "nul@acme.test")
            .with("title", "a\u{0}b"),
        SourceObject::new("fine", ObjectKind::User)
            .with("cn", "Fine")
            .with("sn", "F")
            .with("mail", "fine@acme.test")
            .with("title", "ok"),
    ]);
    let engine = Engine::new(
        profile(),
        Arc::new(source),
        Arc::new(LdapTarget::new(target_config(&s))),
        Arc::new(MemoryStateStore::new()),
    );
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert_eq!(report.plan.counts.create, 2, "{}", report.plan);
    let after = snapshot(&s).await;
    for (dn, attrs) in &before {
        assert_eq!(after.get(dn), Some(attrs), "{dn} was touched");
    }
    let nul = s
        .search(&s.people_dn(), "(mail=nul@acme.test)", &["title"])
        .await
        .unwrap();
    assert_eq!(nul.len(), 1);
    assert_eq!(nul[0].get("title"), [b"a\0b".to_vec()]);
    let report = engine.run(&RunOptions::default()).await.unwrap();
    assert!(report.plan.is_empty(), "{}", report.plan);
}
