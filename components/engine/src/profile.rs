//! Where one batch-1 run's time goes, node by node: the single-item plan run with a timer around
//! each node's evaluation, in whichever build (native or wasm) calls it, with tract's own count
//! of each node's multiply-adds.

use std::time::{Duration, Instant};

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::Cost;
use tract_onnx::tract_core::ops::matmul::optimized::OptMatMul;
use tract_onnx::tract_core::plan::eval;

use crate::{EngineError, Model};

/// One node of the optimised batch-1 plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeTime {
    pub node: String,
    pub op: String,
    /// Median over the profiled runs, microseconds.
    pub micros: f64,
    /// f32 multiply-adds one run of the node does, by tract's count (0 when it counts none).
    pub multiply_adds: u64,
    /// The matrix kernels a product node runs (tract-linalg's names, as its dispatch chose
    /// them in this build); empty for any other node.
    pub kernel: String,
    /// A product node's `M×K×N` (K where tract can tell it); empty for any other node.
    pub mkn: String,
}

/// A profile: each node in plan order, the median of whole runs timed the same way, and the
/// median of the same item through the serving API ([`Model::classify`], nodes untimed).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Profile {
    pub nodes: Vec<NodeTime>,
    pub run_micros: f64,
    pub api_micros: f64,
}

fn median_micros(times: &mut [Duration]) -> f64 {
    times.sort();
    times.get(times.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// The f32 multiply-adds one run of node `id` does, by tract's count.
fn node_multiply_adds(model: &TypedModel, id: usize) -> TractResult<u64> {
    let facts = model.node_input_facts(id)?;
    Ok(model
        .node(id)
        .op
        .cost(&facts)?
        .iter()
        .filter(|(cost, _)| *cost == Cost::FMA(DatumType::F32))
        .filter_map(|(_, count)| count.to_i64().ok())
        .sum::<i64>() as u64)
}

impl Model {
    /// The f32 multiply-adds of one item, by tract's count over the single-item plan (the
    /// plan itself where every input is fixed); none where symbols are left (a model of
    /// symbolic height and width).
    pub fn multiply_adds(&self) -> Option<u64> {
        let fixed = self
            .inputs
            .iter()
            .all(|s| s.shape.iter().all(|d| d.fixed().is_some()));
        let plan = match &self.single {
            Some(single) => &single.plan,
            None if fixed || self.run_items == 1 => &self.batch.plan,
            None => return None,
        };
        let model = plan.model();
        plan.order_without_consts()
            .iter()
            .map(|&id| node_multiply_adds(model, id).ok())
            .sum()
    }

    /// Runs one item `runs` times through the batch-1 plan (after one warm-up run), timing each
    /// node, then `runs` times through [`Model::classify`] as a whole. The node timers add a
    /// little to each run; `run_micros` includes them, `api_micros` does not.
    pub fn profile(&self, item: &[f32], runs: usize) -> Result<Profile, EngineError> {
        let fail = |e: TractError| EngineError::Run(format!("{e:#}"));
        if item.len() != self.item_len() {
            return Err(EngineError::Shape {
                got: item.len(),
                per_item: self.item_len(),
            });
        }
        let plan = &self.single.as_ref().unwrap_or(&self.batch).plan;
        let model = plan.model();
        let shape: Vec<usize> = std::iter::once(1)
            .chain(self.inputs[0].item_shape().unwrap_or_default())
            .collect();
        let input: TValue = Tensor::from_shape(&shape, item).map_err(fail)?.into();
        let mut state = TypedSimpleState::new(plan).map_err(fail)?;
        let mut node_times: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); model.nodes().len()];
        let mut run_times = Vec::with_capacity(runs);
        for run in 0..=runs {
            let started = Instant::now();
            state
                .run_plan_with_eval(tvec!(input.clone()), |context, op_state, node, inputs| {
                    let started = Instant::now();
                    let outputs = eval(context, op_state, node, inputs);
                    if run > 0 {
                        node_times[node.id].push(started.elapsed());
                    }
                    outputs
                })
                .map_err(fail)?;
            if run > 0 {
                run_times.push(started.elapsed());
            }
        }
        let mut nodes = Vec::new();
        for &id in plan.order_without_consts() {
            let node = model.node(id);
            let multiply_adds = node_multiply_adds(model, id).map_err(fail)?;
            let product = node.op_as::<OptMatMul>();
            let kernel = product.map_or_else(String::new, |op| {
                op.mmm.iter().map(|k| k.name()).collect::<Vec<_>>().join(" / ")
            });
            let mkn = product.map_or_else(String::new, |op| {
                let k = op.guess_k().map_or_else(|| "?".into(), |k| k.to_string());
                format!("{}×{k}×{}", op.m(), op.n())
            });
            nodes.push(NodeTime {
                node: node.name.clone(),
                op: node.op.name().to_string(),
                micros: median_micros(&mut node_times[id]),
                multiply_adds,
                kernel,
                mkn,
            });
        }
        let mut api_times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            self.classify(item)?;
            api_times.push(started.elapsed());
        }
        Ok(Profile {
            nodes,
            run_micros: median_micros(&mut run_times),
            api_micros: median_micros(&mut api_times),
        })
    }
}
