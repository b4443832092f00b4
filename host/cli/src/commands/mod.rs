//! One file per subcommand: its flags and its `run`.

pub mod bench;
pub mod build;
#[cfg(feature = "train")]
pub mod eval;
#[cfg(feature = "train")]
pub mod frontier;
pub mod import;
pub mod predict;
pub mod snapshot;
pub mod stress;
#[cfg(feature = "train")]
pub mod train;
pub mod up;
