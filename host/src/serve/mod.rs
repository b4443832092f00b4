//! `spinfer up`: run a Spin app's HTTP components on an embedded wasmtime.

pub mod app;
pub mod engine;
pub mod instance;
pub mod manifest;
pub mod nn;
mod ort;
pub mod server;
pub mod snapshot;

pub use app::{App, AppOptions};
pub use instance::ReusePolicy;
pub use manifest::Manifest;
