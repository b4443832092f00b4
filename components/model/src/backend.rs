//! What the protocol needs from whoever runs the model: tract in wasm, tract natively, or wasi-nn.

use std::time::Duration;

use crate::card::ModelCard;
use crate::error::ModelError;
use crate::tensor::Tensor;

pub trait Backend {
    /// Every model this server can serve, with its card, sorted by name.
    fn cards(&self) -> Vec<&ModelCard>;

    /// The model `/predict` uses when the request names none.
    fn default_model(&self) -> Option<&str>;

    /// Ok when the model is loaded (loading it now if needed); not ready when it cannot be.
    fn ready(&self, model: &str) -> Result<(), ModelError>;

    /// Runs the model on `inputs` (one per graph input, by name) and returns every output of
    /// the graph, in the card's order. Callers check the inputs against the card first; a
    /// backend still refuses what its graph cannot take, as invalid input.
    fn run(&self, model: &str, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, ModelError>;

    /// The error for a model without a card: not found for a name never served; a backend
    /// that knows the model went missing says not ready.
    fn unknown(&self, model: &str) -> ModelError {
        ModelError::unknown(model)
    }

    fn card(&self, model: &str) -> Option<&ModelCard> {
        self.cards().into_iter().find(|c| c.name == model)
    }

    /// The names of the models [`Backend::cards`] lists, in its order; a backend that can name
    /// them without reading every card (`/healthz` asks only for names) says so here.
    fn names(&self) -> Vec<String> {
        self.cards().iter().map(|c| c.name.clone()).collect()
    }

    /// Time spent on the request just answered besides the model's run, as named
    /// `server-timing` spans (a snapshot's check of the mounted files); taken, so that each
    /// request reports its own.
    fn take_spans(&self) -> Vec<(&'static str, Duration)> {
        Vec::new()
    }
}
