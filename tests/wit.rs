//! The WIT in `wit/` resolves: every package parses and every world's imports and exports exist.
//! And the built components' own worlds: the portable build imports only WASI 0.2.

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

/// The names of the instances a built component imports and exports (its top level only).
fn world_of(bytes: &[u8]) -> (Vec<String>, Vec<String>) {
    use wasmparser::{Parser, Payload};
    let (mut imports, mut exports, mut depth) = (Vec::new(), Vec::new(), 0usize);
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.expect("a valid component") {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 => {
                imports.extend(section.into_iter().map(|i| i.unwrap().name.name.to_string()));
            }
            Payload::ComponentExportSection(section) if depth == 0 => {
                exports.extend(section.into_iter().map(|e| e.unwrap().name.name.to_string()));
            }
            _ => {}
        }
    }
    (imports, exports)
}

/// A built component's bytes.
fn built(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}: run `spinfer build`", path.display()))
}

/// Whether `bytes` validate with `features`.
fn validates(bytes: &[u8], features: wasmparser::WasmFeatures) -> Result<(), String> {
    wasmparser::Validator::new_with_features(features)
        .validate_all(bytes)
        .map(drop)
        .map_err(|e| e.to_string())
}

#[test]
fn the_portable_build_needs_only_what_a_wasi_http_0_2_host_has() {
    use wasmparser::WasmFeatures;
    // What a host without WASI 0.3 validates with: no component-model async.
    let p2_host = WasmFeatures::default() - WasmFeatures::CM_ASYNC;
    let wasm = root().join("target/wasm32-wasip2/wasm");
    for file in [
        "spinfer_classifier_p2.wasm",
        "spinfer_classifier_p2.snapshot.wasm",
    ] {
        let bytes = built(&wasm.join(file));
        let (imports, exports) = world_of(&bytes);
        assert!(!imports.is_empty(), "{file}: no imports read");
        for import in &imports {
            assert!(
                import.starts_with("wasi:") && import.contains("@0.2."),
                "{file} imports {import}, which a wasi:http 0.2 host may lack: {imports:?}"
            );
        }
        // Spin before 3.1 recognises this export by its exact name.
        assert!(
            exports.iter().any(|e| e == "wasi:http/incoming-handler@0.2.0"),
            "{file}: {exports:?}"
        );
        validates(&bytes, p2_host).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    // The default build is the one with Spin's variables and wasi:http 0.3, which needs the
    // async built-ins.
    let default = built(&wasm.join("spinfer_classifier.wasm"));
    let (imports, exports) = world_of(&default);
    assert!(
        imports.iter().any(|i| i == "spin:variables/variables@3.0.0"),
        "{imports:?}"
    );
    assert!(
        exports.iter().any(|e| e == "wasi:http/handler@0.3.0"),
        "{exports:?}"
    );
    assert!(validates(&default, p2_host).is_err());
}
