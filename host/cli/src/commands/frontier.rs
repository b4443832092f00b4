use std::path::PathBuf;

use anyhow::{Context, Result};
use spinfer_bench::frontier::{self, FrontierConfig};

/// Every model of the app's models folder: cost, accuracy and latency, as a table and a plot.
#[derive(clap::Args)]
pub struct FrontierCommand {
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Seconds of fresh-instance `/predict` load per model.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Also write the table to this markdown file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Draw accuracy against tract-in-wasm latency to this PNG.
    #[arg(long, default_value = "models/frontier.png")]
    plot: PathBuf,
}

impl FrontierCommand {
    pub fn run(self) -> Result<()> {
        let points = frontier::run(&FrontierConfig {
            manifest: self.manifest,
            data: self.data,
            seconds: self.seconds,
        })?;
        let table = frontier::table(&points)
            + &format!(
                "\nCommand: `spinfer frontier --seconds {}`; {} CPUs.\n",
                self.seconds,
                std::thread::available_parallelism().map_or(1, |n| n.get())
            );
        print!("{table}");
        if let Some(path) = self.markdown {
            std::fs::write(&path, &table).with_context(|| format!("writing {}", path.display()))?;
        }
        let plotted: Vec<(String, f64, f64)> = points
            .iter()
            .map(|p| (p.model.clone(), p.accuracy * 100.0, p.wasm_ms))
            .collect();
        spinfer_train::plots::frontier(
            &self.plot,
            "Spinfer models: accuracy against inference time in wasm",
            "tract in wasm, batch 1, ms (log)",
            &plotted,
        )
    }
}
