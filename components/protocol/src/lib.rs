//! Everything a Spinfer server says and hears, independent of where inference runs: routing,
//! request decoding, preprocessing, response encoding and the error type. Shared by every
//! component and by the native host, so no piece of it is written twice. Pure request/response
//! logic: no file system, no environment (the model catalog lives in `spinfer-catalog`, the
//! model vocabulary — contract, card, backend — in `spinfer-model`).
//!
//! The root owns the vocabulary its modules share (the limits and headers below);
//! `http` holds the HTTP plumbing that `predict` and `v2` both use, and those two never import
//! each other.

pub mod cors;
pub mod error;
pub mod http;
pub mod predict;
pub mod preprocess;
pub mod router;
pub mod tensors;
pub mod v2;

pub use cors::AllowedOrigins;
pub use error::ApiError;
pub use http::{Request, Response};
pub use router::handle;

/// Largest request body any Spinfer server accepts by default (hosts may set a lower limit).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Most images one `/predict` batch or one Open Inference Protocol request may carry.
pub const MAX_BATCH: usize = 1024;

/// The header of the Open Inference Protocol's binary tensor extension: the length of the JSON
/// part of a body whose tensors follow in binary.
pub const BINARY_HEADER: &str = "inference-header-content-length";

/// The response header each layer adds its durations to (`name;dur=<ms>`).
pub const SERVER_TIMING_HEADER: &str = "server-timing";

/// The response header that names the model which answered (for logs and metrics).
pub const MODEL_HEADER: &str = "spinfer-model";

/// The request id the runner assigns (or keeps from the client) and sends back; CORS lets a
/// browser send and read it.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
