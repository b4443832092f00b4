//! The command line a user sees.

use std::process::Command;

fn spinfer(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_spinfer"))
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn help_lists_every_subcommand() {
    let (ok, text) = spinfer(&["--help"]);
    assert!(ok, "{text}");
    let serving = ["predict", "up", "build", "snapshot", "bench", "stress"];
    for sub in serving {
        assert!(text.contains(sub), "--help lacks {sub}: {text}");
    }
    // The trainer's subcommands come with the `train` feature, and only with it.
    for sub in ["train", "eval", "frontier"] {
        let listed = text.lines().any(|line| line.trim_start().starts_with(sub));
        assert_eq!(listed, cfg!(feature = "train"), "{sub} in --help: {text}");
    }
}

#[test]
fn each_subcommand_has_help() {
    let mut subcommands = vec![
        ("predict", "--idx"),
        ("up", "--listen"),
        ("bench", "--connections"),
    ];
    if cfg!(feature = "train") {
        subcommands.extend([("train", "--arch"), ("eval", "--model")]);
    }
    for (sub, flag) in subcommands {
        let (ok, text) = spinfer(&[sub, "--help"]);
        assert!(ok, "{sub}: {text}");
        assert!(text.contains(flag), "{sub} --help lacks {flag}: {text}");
    }
}

#[test]
#[cfg(feature = "train")]
fn bad_arguments_fail_with_a_message() {
    let (ok, text) = spinfer(&["train", "--arch", "resnet"]);
    assert!(!ok);
    assert!(text.contains("resnet"), "{text}");
    let (ok, text) = spinfer(&["eval", "--model", "/nonexistent.onnx"]);
    assert!(!ok);
    assert!(text.contains("nonexistent"), "{text}");
    let (ok, text) = spinfer(&[
        "eval",
        "--data",
        "/nonexistent-dir",
        "--model",
        "../../models/mnist-seed.onnx",
    ]);
    assert!(!ok, "{text}");
}

#[test]
fn predict_a_test_image() {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/mnist-seed.onnx");
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/mnist");
    let (ok, text) = spinfer(&["predict", "--model", model, "--data", data, "--idx", "0"]);
    assert!(ok, "{text}");
    assert!(text.contains("label 7"), "{text}");
}
