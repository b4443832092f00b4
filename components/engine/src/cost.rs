//! What a model costs, counted from its exported ONNX graph: parameters (every initializer's
//! elements) and multiply-adds per image (convolutions and dense layers, walked along the
//! graph's shapes from the 28×28 input). Spinfer's graphs are chains, which is what this walks.

use prost::Message;
use spinfer_model::contract::ITEM_SHAPE;
use tract_onnx::pb::{ModelProto, NodeProto};

#[derive(Debug, thiserror::Error)]
pub enum CostError {
    #[error("not an ONNX model: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("the model has no graph")]
    NoGraph,
    #[error("no initializer {0}")]
    MissingWeight(String),
    #[error("op {0} is not one Spinfer's exporter writes")]
    UnknownOp(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    pub parameters: u64,
    pub multiply_adds: u64,
}

fn ints(node: &NodeProto, name: &str) -> Vec<i64> {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.ints.clone())
        .unwrap_or_default()
}

/// Every initializer's elements.
fn count_parameters(graph: &tract_onnx::pb::GraphProto) -> u64 {
    graph
        .initializer
        .iter()
        .map(|t| t.dims.iter().map(|&d| d as u64).product::<u64>())
        .sum()
}

/// The parameters of any ONNX model: every initializer's elements.
pub fn parameters(onnx: &[u8]) -> Result<u64, CostError> {
    let model = ModelProto::decode(onnx)?;
    Ok(count_parameters(&model.graph.ok_or(CostError::NoGraph)?))
}

/// Parameters and multiply-adds of a model Spinfer's exporter wrote (a chain of the ops it
/// writes, from the 28×28 input).
pub fn cost(onnx: &[u8]) -> Result<Cost, CostError> {
    let model = ModelProto::decode(onnx)?;
    let graph = model.graph.ok_or(CostError::NoGraph)?;
    let dims = |name: &str| {
        graph
            .initializer
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.dims.iter().map(|&d| d as u64).collect::<Vec<u64>>())
            .ok_or_else(|| CostError::MissingWeight(name.to_string()))
    };
    let parameters = count_parameters(&graph);
    let [c, h, w] = ITEM_SHAPE.map(|d| d as u64);
    let (mut c, mut h, mut w) = (c, h, w);
    let mut multiply_adds = 0;
    for node in &graph.node {
        match node.op_type.as_str() {
            "Conv" => {
                let weight = dims(&node.input[1])?;
                let pads = ints(node, "pads");
                let pad = pads.first().copied().unwrap_or(0) as u64;
                h = h + 2 * pad - weight[2] + 1;
                w = w + 2 * pad - weight[3] + 1;
                c = weight[0];
                multiply_adds += weight.iter().product::<u64>() * h * w;
            }
            "MaxPool" => {
                let stride = ints(node, "strides").first().copied().unwrap_or(2) as u64;
                (h, w) = (h / stride, w / stride);
            }
            "GlobalAveragePool" => (h, w) = (1, 1),
            "Flatten" => (c, h, w) = (c * h * w, 1, 1),
            "Gemm" => {
                let weight = dims(&node.input[1])?;
                multiply_adds += weight.iter().product::<u64>();
                c = weight[1];
            }
            "Relu" | "Softmax" => {}
            other => return Err(CostError::UnknownOp(other.to_string())),
        }
    }
    Ok(Cost {
        parameters,
        multiply_adds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed models' costs: the README's figures, counted from the files.
    #[test]
    fn committed_models() {
        let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        let cost = |name: &str| cost(&std::fs::read(models.join(format!("{name}.onnx"))).unwrap()).unwrap();
        // Seed: 32·9·26·26 + 5408·10.
        assert_eq!(
            cost("mnist-seed"),
            Cost {
                parameters: 54_410,
                multiply_adds: 32 * 9 * 26 * 26 + 5408 * 10
            }
        );
        assert_eq!(cost("mnist-cnn").parameters, 467_818);
        assert_eq!(cost("mnist-lean").parameters, 117_434);
        assert!((18_000_000..19_000_000).contains(&cost("mnist-cnn").multiply_adds));
    }
}
