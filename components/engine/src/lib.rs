//! tract-onnx inference for Spinfer models, shared by the wasm component, the native host and
//! the benchmarks: parse and optimise an ONNX classifier once, then run batches of images.

pub mod cost;
mod profile;
mod store;

pub use profile::{NodeTime, Profile};
pub use store::ModelStore;

use tract_onnx::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot read model {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load model: {0}")]
    Load(String),
    #[error(transparent)]
    Catalog(#[from] spinfer_catalog::CatalogError),
    #[error("input has {got} values, not a whole number of {per_item}-value items")]
    Shape { got: usize, per_item: usize },
    #[error("inference failed: {0}")]
    Run(String),
}

type Plan = std::sync::Arc<TypedSimplePlan>;

/// The most items one tract run takes; a larger batch runs in chunks of this size, so that the
/// largest batch the API accepts fits an instance's memory (a run's scratch grows with N).
pub const MAX_RUN_BATCH: usize = 64;

/// A plan and the run states kept for it: tract's per-run set-up (the state, its buffers, the
/// resolved symbols) is paid once per concurrent caller, not on every request. In a component
/// there is one caller, so one state; a native host running several at once keeps one each.
struct Runner {
    plan: Plan,
    idle: std::sync::Mutex<Vec<TypedSimpleState>>,
}

impl Runner {
    fn new(plan: Plan) -> Runner {
        Runner {
            plan,
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn run(&self, input: TValue) -> TractResult<TVec<TValue>> {
        let idle = || self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let taken = idle().pop();
        let mut state = match taken {
            Some(state) => state,
            None => TypedSimpleState::new(&self.plan)?,
        };
        let outputs = state.run(tvec!(input))?;
        // Only a state whose run finished goes back (a failed one may be half-way).
        idle().push(state);
        Ok(outputs)
    }
}

/// An optimised classifier with input `[N, C, H, W]` and output `[N, classes]`: one plan for a
/// symbolic batch, and one specialised to a single item (no symbol to resolve, shapes known at
/// optimisation), which serves most requests.
pub struct Classifier {
    batch: Runner,
    single: Runner,
    item_shape: Vec<usize>,
    classes: usize,
}

impl Classifier {
    /// Parses, types and optimises an ONNX model whose first input has a symbolic batch.
    pub fn from_onnx(bytes: &[u8]) -> Result<Classifier, EngineError> {
        // In wasm, Spinfer's matmul kernels and the rule that picks them (`spinfer-gemm`).
        spinfer_gemm::keep();
        let load = |e: TractError| EngineError::Load(format!("{e:#}"));
        let parsed = tract_onnx::onnx().model_for_read(&mut &bytes[..]).map_err(load)?;
        let model = parsed.clone().into_typed().map_err(load)?;
        let input = model.input_fact(0).map_err(load)?.clone();
        let output = model.output_fact(0).map_err(load)?.clone();
        let item_shape = concrete_tail(&input.shape).ok_or_else(|| {
            EngineError::Load(format!(
                "input shape {:?} must be [N, ...] with fixed item dims",
                input.shape
            ))
        })?;
        let classes = concrete_tail(&output.shape)
            .and_then(|dims| (dims.len() == 1).then_some(dims[0]))
            .ok_or_else(|| {
                EngineError::Load(format!("output shape {:?} must be [N, classes]", output.shape))
            })?;
        let batch = model
            .into_optimized()
            .map_err(load)?
            .into_runnable()
            .map_err(load)?;
        let one: Vec<usize> = std::iter::once(1).chain(item_shape.iter().copied()).collect();
        let single = parsed
            .with_input_fact(0, InferenceFact::dt_shape(input.datum_type, one))
            .map_err(load)?
            .into_optimized()
            .map_err(load)?
            .into_runnable()
            .map_err(load)?;
        Ok(Classifier {
            batch: Runner::new(batch),
            single: Runner::new(single),
            item_shape,
            classes,
        })
    }

    pub fn from_path(path: &std::path::Path) -> Result<Classifier, EngineError> {
        let bytes = std::fs::read(path).map_err(|source| EngineError::Read {
            path: path.into(),
            source,
        })?;
        Self::from_onnx(&bytes)
    }

    /// Values per item (784 for MNIST).
    pub fn item_len(&self) -> usize {
        self.item_shape.iter().product()
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Probabilities, `classes` per item, for `input` holding whole items back to back.
    pub fn run(&self, input: &[f32]) -> Result<Vec<f32>, EngineError> {
        let per_item = self.item_len();
        if input.is_empty() || !input.len().is_multiple_of(per_item) {
            return Err(EngineError::Shape {
                got: input.len(),
                per_item,
            });
        }
        let mut probs = Vec::with_capacity(input.len() / per_item * self.classes);
        for chunk in input.chunks(MAX_RUN_BATCH * per_item) {
            probs.extend(self.run_batch(chunk)?);
        }
        Ok(probs)
    }

    /// One tract run over whole items (the single-item plan for one).
    fn run_batch(&self, input: &[f32]) -> Result<Vec<f32>, EngineError> {
        let items = input.len() / self.item_len();
        let mut shape = vec![items];
        shape.extend_from_slice(&self.item_shape);
        let run = |e: TractError| EngineError::Run(format!("{e:#}"));
        let tensor = tract_ndarray::ArrayD::from_shape_vec(shape, input.to_vec())
            .map_err(|e| EngineError::Run(e.to_string()))?;
        let runner = if items == 1 { &self.single } else { &self.batch };
        let outputs = runner.run(Tensor::from(tensor).into()).map_err(run)?;
        let probs = outputs[0].to_plain_array_view::<f32>().map_err(run)?;
        Ok(probs.iter().copied().collect())
    }
}

/// The dims after the batch dimension, when they are all concrete.
fn concrete_tail(shape: &ShapeFact) -> Option<Vec<usize>> {
    shape
        .iter()
        .skip(1)
        .map(|d| d.as_i64().and_then(|v| usize::try_from(v).ok()))
        .collect::<Option<Vec<_>>>()
        .filter(|dims| !dims.is_empty())
}

/// Index of the largest value.
pub fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |best, (i, &v)| if v > best.1 { (i, v) } else { best },
        )
        .0
}
