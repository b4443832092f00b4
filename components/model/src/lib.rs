//! The model vocabulary every Spinfer crate shares, with no HTTP in it: the contract (where a
//! component finds its models), the card written beside each model (every input and output of
//! its graph), tensors of any element type, and the [`Backend`] that runs models, with its own
//! error type. The API (`spinfer-protocol`) maps a [`ModelError`] to its HTTP status.

pub mod backend;
pub mod card;
pub mod contract;
pub mod error;
pub mod tensor;

pub use backend::Backend;
pub use card::{Dim, ImageSpec, ModelCard, TensorSpec};
pub use error::ModelError;
pub use tensor::{DType, Tensor};
