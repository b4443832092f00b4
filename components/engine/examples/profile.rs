//! Profiles models node by node through the batch-1 plan, in the build that runs it: natively,
//! or in wasm on the test runner (which mounts the working directory and passes
//! `SPINFER_WASM_GEMM` through). Prints one JSON object per model; `scripts/profile.py` runs
//! both builds and writes the table in BENCHMARKS.md.
//!
//! cargo run --release -p spinfer-engine --example profile -- models/mnist-cnn.onnx
//! cargo build --profile wasm --target wasm32-wasip2 -p spinfer-engine --example profile
//! target/release/wasm-test target/wasm32-wasip2/wasm/examples/profile.wasm models/mnist-cnn.onnx
//!
//! `--shape INPUT=D1,D2,…` pins an input's sizes (as `spinfer import --shape` does) for the
//! models named after it, so that any imported model profiles at the size it is served.

use spinfer_engine::{Model, import::parse_shape};
use tract_onnx::prelude::DatumType;
use tract_onnx::tract_core::tract_linalg::{isa, routines};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut runs = 200;
    let mut models = Vec::new();
    let mut pinned = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().ok_or("--runs needs a number")?.parse()?,
            "--shape" => pinned = vec![parse_shape(&args.next().ok_or("--shape needs INPUT=DIMS")?)?],
            _ => models.push((arg, pinned.clone())),
        }
    }
    for (path, pinned) in models {
        let classifier = Model::from_path_as(path.as_ref(), &pinned)?;
        // A fixed, dense pattern in [0, 1]: the work is the same for every image.
        let item: Vec<f32> = (0..classifier.item_len())
            .map(|i| (i * 37 % 256) as f32 / 255.0)
            .collect();
        let profile = classifier.profile(&item, runs)?;
        let line = serde_json::json!({
            "model": path,
            "shape": classifier.inputs()[0].shape,
            "build": if cfg!(target_arch = "wasm32") { "wasm" } else { "native" },
            "kernel": if cfg!(target_arch = "wasm32") {
                std::env::var(spinfer_gemm::WASM_GEMM_VAR).unwrap_or_else(|_| "default".into())
            } else {
                "native".into()
            },
            "profile": profile,
            "routines": routines(),
        });
        println!("{line}");
    }
    Ok(())
}

/// The f32 kernel this build runs for each of tract-linalg's element-wise, reduction and
/// depthwise functions (its public routine registry), `none` where nothing is declared.
fn routines() -> serde_json::Map<String, serde_json::Value> {
    let here = isa::native();
    routines::Func::ALL
        .iter()
        .map(|func| {
            let kernel = routines::best_for(*func, DatumType::F32, &here).map_or("none", |r| r.name());
            (func.name().to_string(), kernel.into())
        })
        .collect()
}
