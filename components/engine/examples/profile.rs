//! Profiles models node by node through the batch-1 plan, in the build that runs it: natively,
//! or in wasm on the test runner (which mounts the working directory and passes
//! `SPINFER_WASM_GEMM` through). Prints one JSON object per model; `scripts/profile.py` runs
//! both builds and writes the table in BENCHMARKS.md.
//!
//! cargo run --release -p spinfer-engine --example profile -- models/mnist-cnn.onnx
//! cargo build --profile wasm --target wasm32-wasip2 -p spinfer-engine --example profile
//! target/release/wasm-test target/wasm32-wasip2/wasm/examples/profile.wasm models/mnist-cnn.onnx

use spinfer_engine::Model;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut runs = 200;
    let mut models = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().ok_or("--runs needs a number")?.parse()?,
            _ => models.push(arg),
        }
    }
    for path in models {
        let classifier = Model::from_path(path.as_ref())?;
        // A fixed, dense pattern in [0, 1]: the work is the same for every image.
        let item: Vec<f32> = (0..classifier.item_len())
            .map(|i| (i * 37 % 256) as f32 / 255.0)
            .collect();
        let profile = classifier.profile(&item, runs)?;
        let line = serde_json::json!({
            "model": path,
            "build": if cfg!(target_arch = "wasm32") { "wasm" } else { "native" },
            "kernel": if cfg!(target_arch = "wasm32") {
                std::env::var(spinfer_gemm::WASM_GEMM_VAR).unwrap_or_else(|_| "default".into())
            } else {
                "native".into()
            },
            "profile": profile,
        });
        println!("{line}");
    }
    Ok(())
}
