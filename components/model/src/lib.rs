//! The model vocabulary every Spinfer crate shares, with no HTTP in it: the contract (what a
//! model takes and gives, where a component finds it), the card written beside each model, and
//! the [`Backend`] that runs models, with its own error type. The API (`spinfer-protocol`) maps
//! a [`ModelError`] to its HTTP status.

pub mod backend;
pub mod card;
pub mod contract;
pub mod error;

pub use backend::Backend;
pub use card::{ModelCard, TensorSpec};
pub use error::ModelError;
