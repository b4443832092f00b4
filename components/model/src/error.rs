//! What running a model can fail with, in the model's own terms.

/// A backend's error; the API answers each kind with its own HTTP status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// No model, or no part of one, by that name is served.
    #[error("{0}")]
    NotFound(String),
    /// The input does not fit the model.
    #[error("{0}")]
    InvalidInput(String),
    /// The model cannot serve now: its files are missing or it cannot be loaded.
    #[error("{0}")]
    NotReady(String),
    /// The backend failed while running the model.
    #[error("{0}")]
    Failed(String),
}

impl ModelError {
    /// A model name that is not served.
    pub fn unknown(name: &str) -> ModelError {
        ModelError::NotFound(format!("unknown model {name:?}"))
    }
}
