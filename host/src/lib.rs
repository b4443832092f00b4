//! Spinfer's native side: train and export the MNIST model, evaluate it, and run Spin apps on an
//! embedded wasmtime.

pub mod bench;
pub mod metrics;
pub mod mnist;
pub mod model;
pub mod onnx_export;
pub mod pipeline;
pub mod plots;
pub mod serve;
pub mod train;
pub mod verify;
