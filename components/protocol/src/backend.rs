//! What the protocol needs from whoever runs the model: tract in wasm, tract natively, or wasi-nn.

use crate::card::ModelCard;
use crate::error::ApiError;

pub trait Backend {
    /// Every model this server can serve, with its card, sorted by name.
    fn cards(&self) -> Vec<&ModelCard>;

    /// The model `/predict` uses when the request names none.
    fn default_model(&self) -> Option<&str>;

    /// Ok when the model is loaded (loading it now if needed); 503 when it cannot be.
    fn ready(&self, model: &str) -> Result<(), ApiError>;

    /// Probabilities, `classes` per item, for `batch` items of `input` laid back to back.
    fn infer(&self, model: &str, input: &[f32], batch: usize) -> Result<Vec<f32>, ApiError>;

    /// The error for a model without a card: 404 for a name never served; a backend that knows
    /// the model went missing says 503.
    fn unknown(&self, model: &str) -> ApiError {
        ApiError::unknown_model(model)
    }

    fn card(&self, model: &str) -> Option<&ModelCard> {
        self.cards().into_iter().find(|c| c.name == model)
    }

    /// The names of the models [`Backend::cards`] lists, in its order; a backend that can name
    /// them without reading every card (`/healthz` asks only for names) says so here.
    fn names(&self) -> Vec<String> {
        self.cards().iter().map(|c| c.name.clone()).collect()
    }
}
