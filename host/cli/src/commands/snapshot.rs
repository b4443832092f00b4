use std::path::PathBuf;

use anyhow::Result;
use spinfer_serve::{Manifest, Sandbox};

#[derive(clap::Args)]
pub struct SnapshotCommand {
    /// The manifest whose file mounts and environment the snapshot is taken with.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
    /// The component (in the manifest) whose mounts and environment to use.
    #[arg(long, default_value = "classifier")]
    component: String,
    /// The plain component to pre-initialise.
    #[arg(long)]
    wasm: PathBuf,
    /// Where the pre-initialised component goes.
    #[arg(long)]
    out: PathBuf,
}

impl SnapshotCommand {
    pub fn run(self) -> Result<()> {
        let manifest = Manifest::load(&self.manifest)?;
        let def = manifest.component(&self.component)?;
        let sandbox = Sandbox::for_snapshot(&manifest, def, &spinfer_app::options())?;
        spinfer_serve::snapshot::snapshot(
            &manifest.resolve(&self.wasm),
            &sandbox,
            &manifest.resolve(&self.out),
        )?;
        Ok(())
    }
}
