//! tract-onnx inference for Spinfer models, shared by the wasm component, the native host and
//! the benchmarks: parse and optimise any ONNX model tract can run once, then run it on
//! tensors of the element types and shapes its graph takes.

pub mod cost;
pub mod import;
mod profile;
mod store;

pub use profile::{NodeTime, Profile};
pub use store::ModelStore;

use spinfer_model::{DType, Dim, ModelError, TensorSpec};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

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
    #[error("{0}")]
    Input(String),
    #[error("inference failed: {0}")]
    Run(String),
}

impl From<EngineError> for ModelError {
    fn from(e: EngineError) -> ModelError {
        match e {
            EngineError::Shape { .. } | EngineError::Input(_) => ModelError::InvalidInput(e.to_string()),
            EngineError::Run(_) => ModelError::Failed(e.to_string()),
            _ => ModelError::NotReady(e.to_string()),
        }
    }
}

type Plan = std::sync::Arc<TypedSimplePlan>;

/// The most items one tract run takes; a larger batch runs in chunks, so that the largest batch
/// the API accepts fits an instance's memory (a run's scratch grows with N).
pub const MAX_RUN_BATCH: usize = 64;
/// The most input values one chunked run takes: [`MAX_RUN_BATCH`] digits (28 × 28); a model of
/// larger items runs fewer at a time (one, at least).
pub const MAX_RUN_VALUES: usize = MAX_RUN_BATCH * 784;

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

    fn run(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let idle = || self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let taken = idle().pop();
        let mut state = match taken {
            Some(state) => state,
            None => TypedSimpleState::new(&self.plan)?,
        };
        let outputs = state.run(inputs)?;
        // Only a state whose run finished goes back (a failed one may be half-way).
        idle().push(state);
        Ok(outputs)
    }
}

/// The element type of `dt`, when the API can carry it.
fn dtype_of(dt: DatumType) -> Option<DType> {
    Some(match dt {
        DatumType::Bool => DType::Bool,
        DatumType::U8 => DType::Uint8,
        DatumType::U16 => DType::Uint16,
        DatumType::U32 => DType::Uint32,
        DatumType::U64 => DType::Uint64,
        DatumType::I8 => DType::Int8,
        DatumType::I16 => DType::Int16,
        DatumType::I32 => DType::Int32,
        DatumType::I64 => DType::Int64,
        DatumType::F16 => DType::Float16,
        DatumType::F32 => DType::Float32,
        DatumType::F64 => DType::Float64,
        _ => return None,
    })
}

fn datum_of(dtype: DType) -> DatumType {
    match dtype {
        DType::Bool => DatumType::Bool,
        DType::Uint8 => DatumType::U8,
        DType::Uint16 => DatumType::U16,
        DType::Uint32 => DatumType::U32,
        DType::Uint64 => DatumType::U64,
        DType::Int8 => DatumType::I8,
        DType::Int16 => DatumType::I16,
        DType::Int32 => DatumType::I32,
        DType::Int64 => DatumType::I64,
        DType::Float16 => DatumType::F16,
        DType::Float32 => DatumType::F32,
        DType::Float64 => DatumType::F64,
    }
}

/// A graph input or output as the model has it, after any shapes were pinned.
fn spec(name: String, fact: &TypedFact) -> Result<TensorSpec, EngineError> {
    let dtype = dtype_of(fact.datum_type).ok_or_else(|| {
        EngineError::Load(format!(
            "{name:?} is of type {:?}, which the API cannot carry",
            fact.datum_type
        ))
    })?;
    let shape = fact
        .shape
        .iter()
        .map(|d| match d.as_i64() {
            Some(n) => Dim::Size(n),
            None => Dim::Symbol(d.to_string()),
        })
        .collect();
    Ok(TensorSpec { name, dtype, shape })
}

/// tract's optimisation of `model`. In wasm, Spinfer's own ops (`spinfer-gemm`: stride-1
/// convolutions, softmax over an inner axis) replace tract's between its declutter and its
/// codegen.
fn optimized(model: TypedModel) -> TractResult<TypedModel> {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        let mut model = model.into_decluttered()?;
        spinfer_gemm::patch(&mut model)?;
        model.optimize()?;
        Ok(model)
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    model.into_optimized()
}

/// The ONNX graph in `bytes` as tract reads it, refused when it has an op tract lacks.
fn parse(bytes: &[u8]) -> Result<InferenceModel, EngineError> {
    // In wasm, Spinfer's matmul kernels and the rule that picks them (`spinfer-gemm`).
    spinfer_gemm::keep();
    // The graph's own intermediate and output shapes are written for its symbols, which
    // pinned sizes and the single-item plan replace: tract infers them from the inputs.
    let onnx = tract_onnx::onnx()
        .with_ignore_value_info(true)
        .with_ignore_output_shapes(true);
    let parsed = onnx
        .model_for_read(&mut &bytes[..])
        .map_err(|e| EngineError::Load(format!("{e:#}")))?;
    let missing = unsupported(&parsed);
    if !missing.is_empty() {
        return Err(EngineError::Load(format!(
            "tract cannot run {}: the op is not implemented",
            missing.join(", ")
        )));
    }
    Ok(parsed)
}

/// Nodes whose op tract-onnx does not implement, as `node "name" (Op)`.
fn unsupported(model: &InferenceModel) -> Vec<String> {
    model
        .nodes
        .iter()
        .filter_map(|n| {
            let name = n.op.name();
            let op = name.strip_prefix("Unimplemented(")?.strip_suffix(')')?;
            Some(format!("node {:?} ({op})", n.name))
        })
        .collect()
}

/// An optimised model: one plan for the shapes its card gives (a symbolic batch stays
/// symbolic), and, where only the batch is symbolic, one specialised to a single item (no
/// symbol to resolve, shapes known at optimisation), which serves most requests. A graph that
/// tract can only type for a fixed batch (for example, a shape computed from the batch and fed
/// to Expand or Reshape) gets the single-item plan alone, and a batch runs through it item by
/// item.
pub struct Model {
    batch: Runner,
    single: Option<Runner>,
    /// The most items one run of `batch` takes: 1 where its plan is the single-item one.
    run_items: usize,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

/// `model` with the sizes of `pinned` (by input name; symbols there keep the graph's).
fn pin(mut model: InferenceModel, pinned: &[TensorSpec]) -> Result<InferenceModel, EngineError> {
    let load = |e: TractError| EngineError::Load(format!("{e:#}"));
    for spec in pinned {
        let index = model
            .input_outlets()
            .map_err(load)?
            .iter()
            .position(|o| model.node(o.node).name == spec.name)
            .ok_or_else(|| EngineError::Load(format!("the graph has no input {:?}", spec.name)))?;
        let fact = model.input_fact(index).map_err(load)?.clone();
        let rank = fact.shape.rank().concretize();
        if rank.is_some_and(|r| r != spec.shape.len() as i64) {
            return Err(EngineError::Load(format!(
                "input {:?} has rank {}, not {}",
                spec.name,
                rank.unwrap_or_default(),
                spec.shape.len()
            )));
        }
        let graph_dims: Vec<Option<TDim>> = (0..spec.shape.len())
            .map(|i| fact.shape.dims().nth(i).and_then(|d| d.concretize()))
            .collect();
        let mut dims: TVec<TDim> = tvec![];
        for (i, (dim, graph)) in spec.shape.iter().zip(graph_dims).enumerate() {
            dims.push(match (dim.fixed(), graph) {
                (Some(n), _) => n.to_dim(),
                (None, Some(g)) if g.as_i64().is_none() => g,
                (None, _) => model.symbols.sym(&format!("{}_{i}", spec.name)).to_dim(),
            });
        }
        let dt = fact.datum_type.concretize().unwrap_or(datum_of(spec.dtype));
        model = model
            .with_input_fact(index, InferenceFact::dt_shape(dt, dims))
            .map_err(load)?;
    }
    Ok(model)
}

/// The inputs of `model` as parsed (`pin`ned), every dimension tract does not know as a
/// symbol; an input of unknown rank has no shape.
fn declared(model: &InferenceModel) -> Result<Vec<TensorSpec>, EngineError> {
    let load = |e: TractError| EngineError::Load(format!("{e:#}"));
    let outlets = model.input_outlets().map_err(load)?;
    (0..outlets.len())
        .map(|i| {
            let name = model.node(outlets[i].node).name.clone();
            let fact = model.input_fact(i).map_err(load)?;
            let dtype = fact
                .datum_type
                .concretize()
                .and_then(dtype_of)
                .unwrap_or(DType::Float32);
            let shape = match fact.shape.rank().concretize() {
                Some(_) => fact
                    .shape
                    .dims()
                    .enumerate()
                    .map(|(d, dim)| match dim.concretize() {
                        Some(n) if n.as_i64().is_some() => Dim::Size(n.as_i64().unwrap_or_default()),
                        Some(symbol) => Dim::Symbol(symbol.to_string()),
                        None => Dim::Symbol(format!("{name}_{d}")),
                    })
                    .collect(),
                None => Vec::new(),
            };
            Ok(TensorSpec { name, dtype, shape })
        })
        .collect()
}

/// The inputs of `inputs` whose first dimension is free, with it set to `items`; `None` when
/// there is none.
fn with_batch(inputs: &[TensorSpec], items: i64) -> Option<Vec<TensorSpec>> {
    let pinned: Vec<TensorSpec> = inputs
        .iter()
        .filter(|spec| spec.shape.first().is_some_and(|d| d.fixed().is_none()))
        .map(|spec| {
            let mut spec = spec.clone();
            spec.shape[0] = Dim::Size(items);
            spec
        })
        .collect();
    (!pinned.is_empty()).then_some(pinned)
}

impl Model {
    /// Parses, types and optimises an ONNX model as its graph declares it.
    pub fn from_onnx(bytes: &[u8]) -> Result<Model, EngineError> {
        Model::from_onnx_as(bytes, &[])
    }

    /// The inputs an ONNX model declares, each dimension it leaves free as a symbol (an input
    /// of unknown rank with no shape), before anything is pinned or typed.
    pub fn declared_inputs(bytes: &[u8]) -> Result<Vec<TensorSpec>, EngineError> {
        declared(&parse(bytes)?)
    }

    /// Parses, types and optimises an ONNX model with the fixed sizes of `pinned` (by input
    /// name; symbols there keep the graph's) in place of the graph's own. Refuses a model with
    /// an op tract cannot run, naming the node and the op. A graph that tract cannot type with
    /// its batch free but can with one item runs a batch item by item (the card still takes
    /// any batch), when every output's first dimension follows the batch; else its batch is
    /// pinned to 1.
    pub fn from_onnx_as(bytes: &[u8], pinned: &[TensorSpec]) -> Result<Model, EngineError> {
        let load = |e: TractError| EngineError::Load(format!("{e:#}"));
        let parsed = pin(parse(bytes)?, pinned)?;
        let free = match parsed.clone().into_typed() {
            Ok(typed) => return Model::optimise(parsed, typed),
            Err(e) => e,
        };
        let declared = declared(&parsed)?;
        let retyped = |items| -> Option<(InferenceModel, TypedModel)> {
            let one = pin(parsed.clone(), &with_batch(&declared, items)?).ok()?;
            let typed = one.clone().into_typed().ok()?;
            Some((one, typed))
        };
        let Some((one, typed)) = retyped(1) else {
            return Err(load(free));
        };
        let mut model = Model::optimise(one, typed)?;
        model.run_items = 1;
        // The outputs whose first dimension is 1 for one item and 2 for two follow the batch.
        let two = retyped(2).and_then(|(_, typed)| {
            (0..model.outputs.len())
                .map(|i| typed.output_fact(i).ok()?.shape.first()?.as_i64())
                .collect::<Option<Vec<i64>>>()
        });
        let follows = two.is_some_and(|two| {
            two.iter()
                .zip(&model.outputs)
                .all(|(&two, spec)| two == 2 && spec.shape.first() == Some(&Dim::Size(1)))
        });
        if follows {
            let batch = declared
                .iter()
                .zip(&mut model.inputs)
                .filter_map(|(graph, spec)| {
                    let first = graph.shape.first().filter(|d| d.fixed().is_none())?;
                    spec.shape[0] = first.clone();
                    Some(first.clone())
                })
                .next();
            for spec in &mut model.outputs {
                spec.shape[0] = batch.clone().unwrap_or(Dim::Symbol("N".into()));
            }
        }
        Ok(model)
    }

    /// Whether a batch runs item by item (see [`Model::from_onnx_as`]).
    pub fn runs_item_by_item(&self) -> bool {
        self.run_items == 1 && self.batched()
    }

    /// `parsed` (its inputs pinned) and its typed form as optimised plans, with the specs of
    /// its inputs and outputs.
    fn optimise(parsed: InferenceModel, typed: TypedModel) -> Result<Model, EngineError> {
        let load = |e: TractError| EngineError::Load(format!("{e:#}"));
        let label = |o: OutletId| {
            typed
                .outlet_label(o)
                .map_or_else(|| typed.node(o.node).name.clone(), str::to_string)
        };
        let inputs = typed
            .input_outlets()
            .map_err(load)?
            .iter()
            .enumerate()
            .map(|(i, &o)| {
                spec(
                    typed.node(o.node).name.clone(),
                    typed.input_fact(i).map_err(load)?,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let outputs = typed
            .output_outlets()
            .map_err(load)?
            .iter()
            .enumerate()
            .map(|(i, &o)| spec(label(o), typed.output_fact(i).map_err(load)?))
            .collect::<Result<Vec<_>, _>>()?;
        let single = match single_item(&inputs) {
            Some(shapes) => {
                let mut one = parsed;
                for (i, (shape, input)) in shapes.into_iter().zip(&inputs).enumerate() {
                    one = one
                        .with_input_fact(i, InferenceFact::dt_shape(datum_of(input.dtype), shape))
                        .map_err(load)?;
                }
                let plan = optimized(one.into_typed().map_err(load)?)
                    .map_err(load)?
                    .into_runnable()
                    .map_err(load)?;
                Some(Runner::new(plan))
            }
            None => None,
        };
        let batch = optimized(typed).map_err(load)?.into_runnable().map_err(load)?;
        Ok(Model {
            batch: Runner::new(batch),
            single,
            run_items: MAX_RUN_BATCH,
            inputs,
            outputs,
        })
    }

    pub fn from_path(path: &std::path::Path) -> Result<Model, EngineError> {
        Model::from_path_as(path, &[])
    }

    /// [`Model::from_onnx_as`] on the file at `path`.
    pub fn from_path_as(path: &std::path::Path, pinned: &[TensorSpec]) -> Result<Model, EngineError> {
        let bytes = std::fs::read(path).map_err(|source| EngineError::Read {
            path: path.into(),
            source,
        })?;
        Self::from_onnx_as(&bytes, pinned)
    }

    /// The graph's inputs as optimised (pinned sizes applied), in order.
    pub fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    /// The graph's outputs, in order.
    pub fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    /// Whether every input and output has a symbolic first dimension that a run may split.
    fn batched(&self) -> bool {
        self.inputs
            .iter()
            .chain(&self.outputs)
            .all(|s| s.shape.first().is_some_and(|d| d.fixed().is_none()))
    }

    /// Runs the model on one tensor per graph input (by name, any order), each of the graph's
    /// type and of a shape it accepts, all with the same first dimension where it is the batch;
    /// returns every output in the graph's order. A batch runs in chunks of at most
    /// [`MAX_RUN_BATCH`] items and [`MAX_RUN_VALUES`] input values.
    pub fn run(&self, inputs: Vec<spinfer_model::Tensor>) -> Result<Vec<spinfer_model::Tensor>, EngineError> {
        let ordered = self.order(inputs)?;
        let items = ordered[0].shape.first().copied().unwrap_or(1);
        let per_item: usize = ordered.iter().map(|t| t.elements() / items.max(1)).sum();
        let chunk = (MAX_RUN_VALUES / per_item.max(1)).clamp(1, self.run_items);
        if !self.batched() || items <= chunk {
            return self.run_once(&ordered);
        }
        let mut outputs: Option<Vec<spinfer_model::Tensor>> = None;
        for start in (0..items).step_by(chunk) {
            let end = (start + chunk).min(items);
            let chunk: Vec<_> = ordered.iter().map(|t| rows(t, start, end)).collect();
            let part = self.run_once(&chunk)?;
            match outputs.as_mut() {
                None => outputs = Some(part),
                Some(all) => {
                    for (all, part) in all.iter_mut().zip(part) {
                        all.shape[0] += part.shape[0];
                        all.data.extend(part.data);
                    }
                }
            }
        }
        Ok(outputs.unwrap_or_default())
    }

    /// `inputs` in the graph's order, each checked against its input.
    fn order(
        &self,
        mut inputs: Vec<spinfer_model::Tensor>,
    ) -> Result<Vec<spinfer_model::Tensor>, EngineError> {
        let names = || {
            self.inputs
                .iter()
                .map(|s| format!("{:?}", s.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if inputs.len() != self.inputs.len() {
            return Err(EngineError::Input(format!(
                "the model takes {} input(s) ({}), got {}",
                self.inputs.len(),
                names(),
                inputs.len()
            )));
        }
        let mut ordered = Vec::with_capacity(inputs.len());
        for spec in &self.inputs {
            let at = inputs.iter().position(|t| t.name == spec.name).ok_or_else(|| {
                EngineError::Input(format!(
                    "input {:?} is missing; the model takes {}",
                    spec.name,
                    names()
                ))
            })?;
            let tensor = inputs.swap_remove(at);
            if tensor.dtype != spec.dtype || !spec.accepts(&tensor.shape) {
                return Err(EngineError::Input(format!(
                    "input {:?} is {} {:?}; the model takes {} {:?}",
                    spec.name,
                    tensor.dtype,
                    tensor.shape,
                    spec.dtype,
                    spec.oip_shape()
                )));
            }
            if tensor.dtype == DType::Bool && tensor.data.iter().any(|&b| b > 1) {
                return Err(EngineError::Input(format!(
                    "input {:?}: BOOL values must be 0 or 1",
                    spec.name
                )));
            }
            ordered.push(tensor);
        }
        if self.batched()
            && ordered
                .iter()
                .any(|t| t.shape.first() != ordered[0].shape.first())
        {
            return Err(EngineError::Input(
                "every input must have the same batch size".into(),
            ));
        }
        Ok(ordered)
    }

    fn run_once(&self, inputs: &[spinfer_model::Tensor]) -> Result<Vec<spinfer_model::Tensor>, EngineError> {
        let run = |e: TractError| EngineError::Run(format!("{e:#}"));
        let values = inputs
            .iter()
            .map(|t| {
                let mut tensor = Tensor::zero_dt(datum_of(t.dtype), &t.shape).map_err(run)?;
                tensor.as_bytes_mut().copy_from_slice(&t.data);
                Ok(tensor.into_tvalue())
            })
            .collect::<Result<TVec<TValue>, EngineError>>()?;
        let one = self
            .single
            .as_ref()
            .filter(|_| inputs.iter().all(|t| t.shape.first() == Some(&1)));
        let outputs = one.unwrap_or(&self.batch).run(values).map_err(run)?;
        outputs
            .iter()
            .zip(&self.outputs)
            .map(|(value, spec)| {
                if dtype_of(value.datum_type()) != Some(spec.dtype) {
                    return Err(EngineError::Run(format!(
                        "output {:?} came out as {:?}",
                        spec.name,
                        value.datum_type()
                    )));
                }
                Ok(spinfer_model::Tensor {
                    name: spec.name.clone(),
                    dtype: spec.dtype,
                    shape: value.shape().to_vec(),
                    data: value.as_bytes().to_vec(),
                })
            })
            .collect()
    }

    /// Values per item of the first input (784 for MNIST), when its item shape is fixed.
    pub fn item_len(&self) -> usize {
        self.inputs[0].item_shape().map_or(0, |s| s.iter().product())
    }

    /// Classes of the first output, `[N, classes]`.
    pub fn classes(&self) -> usize {
        self.outputs[0].item_shape().map_or(0, |s| s.iter().product())
    }

    /// For a float32 classifier (one input `[N, item…]`, first output `[N, classes]`): the
    /// first output's values for `input` holding whole items back to back.
    pub fn classify(&self, input: &[f32]) -> Result<Vec<f32>, EngineError> {
        let per_item = self.item_len();
        if per_item == 0 || input.is_empty() || !input.len().is_multiple_of(per_item) {
            return Err(EngineError::Shape {
                got: input.len(),
                per_item,
            });
        }
        let mut shape = vec![input.len() / per_item];
        shape.extend(self.inputs[0].item_shape().unwrap_or_default());
        let tensor = spinfer_model::Tensor::from_f32(self.inputs[0].name.clone(), shape, input)
            .map_err(|e| EngineError::Input(e.to_string()))?;
        let outputs = self.run(vec![tensor])?;
        outputs[0].to_f32().map_err(|e| EngineError::Run(e.to_string()))
    }
}

/// The shapes of a single-item run, when every input's only symbol is its first dimension.
fn single_item(inputs: &[TensorSpec]) -> Option<Vec<Vec<usize>>> {
    inputs
        .iter()
        .map(|spec| {
            let (first, rest) = spec.shape.split_first()?;
            if first.fixed().is_some() {
                return None;
            }
            let rest: Option<Vec<usize>> = rest.iter().map(Dim::fixed).collect();
            Some(std::iter::once(1).chain(rest?).collect())
        })
        .collect()
}

/// Rows `start..end` of the first dimension of `tensor`.
fn rows(tensor: &spinfer_model::Tensor, start: usize, end: usize) -> spinfer_model::Tensor {
    let row = tensor.data.len() / tensor.shape[0].max(1);
    let mut shape = tensor.shape.clone();
    shape[0] = end - start;
    spinfer_model::Tensor {
        name: tensor.name.clone(),
        dtype: tensor.dtype,
        shape,
        data: tensor.data[start * row..end * row].to_vec(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Model {
        Model::from_path(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/mnist-seed.onnx"),
        )
        .unwrap()
    }

    #[test]
    fn a_batch_in_chunks_answers_as_one_item_at_a_time() {
        let model = seed();
        let items = MAX_RUN_BATCH + 3;
        let input: Vec<f32> = (0..items * 784).map(|i| (i % 251) as f32 / 251.0).collect();
        let all = model.classify(&input).unwrap();
        assert_eq!(all.len(), items * 10);
        for item in [0, MAX_RUN_BATCH - 1, MAX_RUN_BATCH, items - 1] {
            let one = model.classify(&input[item * 784..(item + 1) * 784]).unwrap();
            let max = one
                .iter()
                .zip(&all[item * 10..])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(max < 1e-5, "item {item}: {max}");
        }
    }

    #[test]
    fn inputs_are_checked_against_the_graph() {
        let model = seed();
        let wrong_type =
            spinfer_model::Tensor::new("input", DType::Float64, vec![1, 1, 28, 28], vec![0; 784 * 8]);
        let err = model.run(vec![wrong_type.unwrap()]).unwrap_err().to_string();
        assert!(err.contains("float64") && err.contains("float32"), "{err}");
        let wrong_name = spinfer_model::Tensor::from_f32("pixels", vec![1, 1, 28, 28], &[0.0; 784]).unwrap();
        assert!(
            model
                .run(vec![wrong_name])
                .unwrap_err()
                .to_string()
                .contains("missing")
        );
        let wrong_shape = spinfer_model::Tensor::from_f32("input", vec![1, 1, 28, 27], &[0.0; 756]).unwrap();
        assert!(matches!(model.run(vec![wrong_shape]), Err(EngineError::Input(_))));
        assert!(model.run(vec![]).is_err());
    }
}
