//! The burn side of Spinfer: the MNIST architectures, the training loop, the ONNX export and
//! its verification against tract, evaluation metrics and plots. `pipeline::run` is
//! `spinfer train`: train → export → verify → write the model, its card and its plots.

pub mod augment;
pub mod metrics;
pub mod model;
pub mod onnx_export;
pub mod pipeline;
pub mod plots;
pub mod train;
pub mod verify;
