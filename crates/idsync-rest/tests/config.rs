//! Configuration: the examples parse, typos are configuration errors, and
//! secrets never show in `Debug`.

use idsync_core::ErrorKind;
use idsync_rest::{AuthConfig, RestConfig, RestTarget};

#[test]
fn the_examples_parse_and_keep_their_secrets_out_of_debug() {
    for text in [
        include_str!("../../../examples/rest/halopsa.toml"),
        include_str!("../../../examples/rest/jobtraq.toml"),
    ] {
        let c = RestConfig::from_toml(text).unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("change-me"), "{debug}");
        assert!(c.users.link.is_some());
        RestTarget::new(c).unwrap();
    }
    let halo = RestConfig::from_toml(include_str!("../../../examples/rest/halopsa.toml")).unwrap();
    assert!(matches!(halo.http.auth, AuthConfig::Oauth2ClientCredentials { .. }));
    assert!(halo.users.veto.is_some());
}

#[test]
fn a_typo_or_a_bad_pointer_is_a_configuration_error() {
    let good = include_str!("../../../examples/rest/jobtraq.toml");
    let typo = good.replace("[users.create]", "[users.creat]");
    let e = RestConfig::from_toml(&typo).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.stops_run());
    assert!(e.to_string().contains("creat"), "{e}");

    let bad_pointer = good.replace("id = \"/contact_id\"", "id = \"contact_id\"");
    let e = RestTarget::new(RestConfig::from_toml(&bad_pointer).unwrap()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("JSON pointer"), "{e}");

    let no_link = good.replace("link = \"/external_ref\"", "");
    let e = RestTarget::new(RestConfig::from_toml(&no_link).unwrap()).unwrap_err();
    assert!(e.to_string().contains("link"), "{e}");
}

#[test]
fn json_configurations_work_too() {
    let c = RestConfig::from_json(
        r#"{"base_url": "http://127.0.0.1:1/api",
            "http": {"auth": {"type": "api_key_query", "param": "api_key", "key": "s3cret"}},
            "users": {"link": "/ref", "list": {"path": "/people"}}}"#,
    )
    .unwrap();
    assert!(!format!("{c:?}").contains("s3cret"));
}
