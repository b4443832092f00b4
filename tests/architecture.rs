//! ARCHITECTURE.md's list of crate dependencies is the workspace's: every edge `cargo metadata`
//! knows (normal and build dependencies between workspace crates) is listed, and nothing else.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use spinfer_tests::root;

/// The path of `dir` relative to the workspace root, with `/` separators.
fn relative(root: &Path, dir: &Path) -> String {
    let path = dir.strip_prefix(root).expect("a workspace path");
    let parts: Vec<_> = path
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// What `cargo <args>` prints, run in the workspace.
fn cargo(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cargo {args:?}: {stderr}");
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn cargo_edges() -> BTreeSet<(String, String)> {
    let metadata = cargo(&["metadata", "--no-deps", "--format-version", "1", "--offline"]);
    let metadata: serde_json::Value = serde_json::from_str(&metadata).expect("JSON");
    let root = Path::new(metadata["workspace_root"].as_str().expect("a root"));
    let mut edges = BTreeSet::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let manifest = Path::new(package["manifest_path"].as_str().expect("a manifest"));
        let from = relative(root, manifest.parent().expect("a folder"));
        for dependency in package["dependencies"].as_array().expect("dependencies") {
            let kind = dependency["kind"].as_str();
            let Some(path) = dependency["path"].as_str() else {
                continue;
            };
            if matches!(kind, None | Some("build")) {
                edges.insert((from.clone(), relative(root, Path::new(path))));
            }
        }
    }
    edges
}

/// The lines `crate → dep, dep` of the fenced block under "## Crate dependencies".
fn documented_edges() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let section = text
        .split("## Crate dependencies")
        .nth(1)
        .expect("ARCHITECTURE.md has a '## Crate dependencies' section");
    let block = section
        .split("```")
        .nth(1)
        .expect("a fenced block in that section");
    let mut edges = BTreeSet::new();
    for line in block.lines().filter(|line| line.contains('→')) {
        let (from, to) = line.split_once('→').expect("an arrow");
        for dep in to.split(',').map(str::trim).filter(|dep| !dep.is_empty()) {
            edges.insert((from.trim().to_string(), dep.to_string()));
        }
    }
    edges
}

#[test]
fn the_documented_crate_dependencies_are_the_workspace_ones() {
    let cargo = cargo_edges();
    let documented = documented_edges();
    let missing: Vec<_> = cargo.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&cargo).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "ARCHITECTURE.md lacks {missing:?} and lists {extra:?}, which cargo does not have"
    );
}

/// The serving binary (`spinfer` without its `train` feature), which `spin build` and the
/// README's serve command compile, links no training crate.
#[test]
fn the_serving_binary_compiles_no_trainer() {
    let tree = cargo(&[
        "tree",
        "-p",
        "spinfer",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--offline",
    ]);
    assert!(tree.lines().any(|line| line.starts_with("wasmtime ")), "{tree}");
    let trainers: Vec<_> = tree
        .lines()
        .filter(|line| {
            ["burn", "plotters", "imageproc", "spinfer-train"]
                .iter()
                .any(|name| line.starts_with(name))
        })
        .collect();
    assert!(trainers.is_empty(), "the serving binary pulls {trainers:?}");
}

#[test]
fn the_runner_depends_on_no_crate_of_the_app() {
    // host/serve is `spin up` as a library: what is Spinfer's is handed in (spinfer-app).
    let app_crates: Vec<_> = cargo_edges()
        .into_iter()
        .filter(|(from, _)| from == "host/serve")
        .collect();
    assert!(app_crates.is_empty(), "host/serve depends on {app_crates:?}");
}
