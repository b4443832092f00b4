//! One file per subcommand: its flags and its `run`.

pub mod bench;
pub mod build;
pub mod eval;
pub mod frontier;
pub mod predict;
pub mod snapshot;
pub mod stress;
pub mod train;
pub mod up;
