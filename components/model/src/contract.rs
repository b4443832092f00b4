//! Where a component finds its models and its settings, and the contract of the digit models
//! trained here (the trainer, the MNIST loader and the exporter use it; the serving path reads
//! every model's contract from its card instead).

/// The side of the square grayscale image a model takes.
pub const SIDE: usize = 28;
/// Values per image: `SIDE × SIDE`, one channel.
pub const PIXELS: usize = SIDE * SIDE;
/// The shape of one item of the input, after the batch dimension: `[1, SIDE, SIDE]` (NCHW).
pub const ITEM_SHAPE: [usize; 3] = [1, SIDE, SIDE];
/// Output classes: the digits 0–9.
pub const CLASSES: usize = 10;

/// The graph's input tensor, float32 `[N, 1, 28, 28]`, pixel/255 in [0, 1].
pub const INPUT_NAME: &str = "input";
/// The graph's output tensor, float32 `[N, 10]`, softmax probabilities.
pub const OUTPUT_NAME: &str = "probs";

/// Where a component finds its models (spin.toml mounts `models/` here, read-only).
pub const MODELS_DIR: &str = "/models";
/// Overrides [`MODELS_DIR`] (tests and local runs).
pub const MODELS_DIR_VAR: &str = "SPINFER_MODELS_DIR";
/// The component environment variable that names the models a snapshot pre-initialises
/// (comma-separated; unset: every model of the folder). The others load on first use.
pub const PRELOAD_VAR: &str = "SPINFER_PRELOAD";
/// The Spin application variable (and component variable) that names the model `/predict`
/// serves when the request names none; without it, the first model by name.
pub const DEFAULT_MODEL_VARIABLE: &str = "default_model";
/// The Spin application variable (and component variable) that lists the origins allowed to call
/// the API from a browser (CORS): comma-separated, `*` for any; empty (the default) for none.
pub const ALLOWED_ORIGINS_VARIABLE: &str = "allowed_origins";
/// The environment variable that sets [`DEFAULT_MODEL_VARIABLE`] in the portable build (which
/// reads its settings from the WASI environment, as every host can give them).
pub const DEFAULT_MODEL_ENV: &str = "SPINFER_DEFAULT_MODEL";
/// The environment variable that sets [`ALLOWED_ORIGINS_VARIABLE`] in the portable build.
pub const ALLOWED_ORIGINS_ENV: &str = "SPINFER_ALLOWED_ORIGINS";
