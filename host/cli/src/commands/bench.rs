use std::path::PathBuf;

use anyhow::{Context, Result};
use spinfer_bench::BenchConfig;

#[derive(clap::Args)]
pub struct BenchCommand {
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
    /// Connection counts to measure at.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    connections: Vec<usize>,
    /// Seconds of measurement per point (after one second of warm-up).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Also write the results table to this markdown file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// A Python with onnxruntime, to add the plain Python + ONNX Runtime server as a row.
    #[arg(long)]
    python: Option<PathBuf>,
    /// A scalar (no simd128) build of the component, to measure the SIMD gain.
    #[arg(long)]
    scalar_wasm: Option<PathBuf>,
    /// The wasi-nn variant's manifest, to add its rows (host tract and ONNX Runtime backends).
    #[arg(long)]
    nn_manifest: Option<PathBuf>,
    /// The portable build's manifest (spin-p2.toml), to add its row.
    #[arg(long)]
    p2_manifest: Option<PathBuf>,
    /// The model every server serves (default: the manifest's default model).
    #[arg(long)]
    model: Option<String>,
}

impl BenchCommand {
    pub fn run(self) -> Result<()> {
        let report = spinfer_bench::run(&BenchConfig {
            manifest: self.manifest,
            data: self.data,
            connections: self.connections,
            seconds: self.seconds,
            python: self.python,
            scalar_wasm: self.scalar_wasm,
            nn_manifest: self.nn_manifest,
            p2_manifest: self.p2_manifest,
            model: self.model,
        })?;
        print!("{report}");
        if let Some(path) = self.markdown {
            std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}
