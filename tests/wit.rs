//! The WIT in `wit/` resolves: every package parses and every world's imports and exports exist.

use spinfer_tests::root;

#[test]
fn wit_packages_resolve() {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_dir(root().join("wit")).expect("wit/ resolves");
    let name = &resolve.packages[package].name;
    assert_eq!(name.to_string(), "spinfer:inference@0.1.0");
    let world = resolve
        .select_world(&[package], Some("http-classifier"))
        .expect("http-classifier world");
    let exports: Vec<String> = resolve.worlds[world]
        .exports
        .keys()
        .map(|key| resolve.name_world_key(key))
        .collect();
    assert!(
        exports.iter().any(|e| e == "wasi:http/handler@0.3.0"),
        "{exports:?}"
    );
}
