use std::path::PathBuf;

use anyhow::{Context, Result};
use spinfer_bench::stress::{self, StressConfig};

#[derive(clap::Args)]
pub struct StressCommand {
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
    /// Connection counts, each against its own fresh `spinfer up`.
    #[arg(long, value_delimiter = ',', default_value = "1,64,256")]
    connections: Vec<usize>,
    /// Seconds of measurement per point, after --warmup.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Also write the results table to this markdown file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Flags for the `spinfer up` under test (after `--`).
    #[arg(last = true)]
    up_args: Vec<String>,
}

impl StressCommand {
    pub fn run(self) -> Result<()> {
        let results = stress::run(&StressConfig {
            exe: std::env::current_exe().context("finding the spinfer binary")?,
            manifest: self.manifest,
            data: self.data,
            up_args: self.up_args,
            connections: self.connections,
            warmup: std::time::Duration::from_secs_f64(self.warmup),
            duration: std::time::Duration::from_secs_f64(self.seconds),
        })?;
        let report = stress::table(&results);
        print!("{report}");
        if let Some(path) = self.markdown {
            std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}
