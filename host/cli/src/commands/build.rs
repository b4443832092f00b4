use std::path::PathBuf;

use anyhow::Result;
use spinfer_serve::Manifest;

#[derive(clap::Args)]
pub struct BuildCommand {
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
}

impl BuildCommand {
    pub fn run(self) -> Result<()> {
        Manifest::load(&self.manifest)?.build()
    }
}
