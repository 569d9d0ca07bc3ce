//! The mapping template language and transforms: parsing any text and
//! rendering against any attributes never panics, and a parsed template
//! serializes back to itself.
#![no_main]

use idsync_core::mapping::{FieldMap, Mapping, Template, Transform, ValueSource};
use idsync_core::model::{Fields, ObjectKind, SourceObject};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line is the template; the others are `name=value` attributes
    // (`container=` sets the container).
    let mut lines = text.split('\n');
    let template = lines.next().unwrap_or_default();
    let mut object = SourceObject::new("fuzz", ObjectKind::User);
    for line in lines {
        let (name, value) = line.split_once('=').unwrap_or((line, ""));
        object = if name == "container" {
            object.in_container(value)
        } else {
            object.with(name, value)
        };
    }
    if let Ok(parsed) = Template::parse(template) {
        let json = serde_json::to_string(&parsed).expect("a template serializes");
        let again: Template = serde_json::from_str(&json).expect("a serialized template parses");
        assert_eq!(again, parsed);
        let attribute = parsed.attributes().next().unwrap_or("cn").to_owned();
        for transforms in [
            vec![],
            vec![Transform::Trim, Transform::Lowercase],
            vec![Transform::Uppercase, Transform::Default("x".into())],
            vec![Transform::DnComponent("cn".into())],
            vec![Transform::DnComponent(attribute.clone())],
        ] {
            let map = FieldMap {
                field: "f".into(),
                from: ValueSource::Template(parsed.clone()),
                transforms,
            };
            let _ = map.value(&object);
        }
        let container = FieldMap {
            field: "c".into(),
            from: ValueSource::Container(vec![idsync_core::mapping::ContainerValue {
                under: template.to_owned(),
                value: "v".into(),
            }]),
            transforms: vec![],
        };
        let _ = container.value(&object);
    }
    // The whole input as a mapping in JSON (what a profile file holds).
    if let Ok(mapping) = serde_json::from_str::<Mapping>(text) {
        let fields = mapping.fields(&object);
        let names: std::collections::HashSet<_> = mapping.users.iter().map(|m| &m.field).collect();
        if names.len() == mapping.users.len() {
            assert!(
                mapping.diff(&object, &fields).is_empty(),
                "a create's fields diff to nothing"
            );
        }
        let _ = mapping.diff(&object, &Fields::new());
    }
});
