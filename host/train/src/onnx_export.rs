//! Writes a trained network as an ONNX model with tract-onnx's protobuf messages.
//!
//! Layout: input `input` float32 `[N,1,28,28]` (symbolic `N`), output `probs` float32 `[N,10]`
//! with the softmax inside the graph, weights as initializers. IR 7, opset 13.

use prost::Message;
use tract_onnx::pb::{
    self, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto::AttributeType,
    tensor_proto::DataType, tensor_shape_proto::Dimension, tensor_shape_proto::dimension, type_proto,
};

use spinfer_model::contract::{CLASSES, INPUT_NAME as INPUT, ITEM_SHAPE, OUTPUT_NAME as OUTPUT};

use crate::model::Layer;
pub const IR_VERSION: i64 = 7;
pub const OPSET: i64 = 13;

/// What the exporter records besides the graph.
pub struct ExportInfo<'a> {
    pub name: &'a str,
    pub version: i64,
    pub description: &'a str,
    pub labels: &'a [String],
    pub preprocessing: &'a str,
}

pub fn export(layers: &[Layer], info: &ExportInfo) -> Vec<u8> {
    let mut graph = GraphBuilder::default();
    let mut current = INPUT.to_string();
    for (index, layer) in layers.iter().enumerate() {
        current = graph.layer(index, layer, &current);
    }
    graph.node("Softmax", "softmax", vec![current], OUTPUT, vec![int("axis", 1)]);

    let model = ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "spinfer".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        model_version: info.version,
        doc_string: info.description.into(),
        graph: Some(GraphProto {
            name: info.name.into(),
            node: graph.nodes,
            initializer: graph.initializers,
            input: vec![value_info(
                INPUT,
                &[
                    None,
                    Some(ITEM_SHAPE[0] as i64),
                    Some(ITEM_SHAPE[1] as i64),
                    Some(ITEM_SHAPE[2] as i64),
                ],
            )],
            output: vec![value_info(OUTPUT, &[None, Some(CLASSES as i64)])],
            ..Default::default()
        }),
        metadata_props: vec![
            entry("name", info.name),
            entry(
                "labels",
                &serde_json::to_string(info.labels).expect("labels serialise"),
            ),
            entry("preprocessing", info.preprocessing),
        ],
        ..Default::default()
    };
    model.encode_to_vec()
}

#[derive(Default)]
struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl GraphBuilder {
    /// Adds the nodes of one layer and returns the name of its output.
    fn layer(&mut self, index: usize, layer: &Layer, input: &str) -> String {
        let output = format!("l{index}");
        match layer {
            Layer::Conv {
                weight,
                shape,
                bias,
                pad,
            } => {
                let w = self.initializer(&format!("l{index}.weight"), shape, weight);
                let b = self.initializer(&format!("l{index}.bias"), &[shape[0]], bias);
                let pad = *pad as i64;
                self.node(
                    "Conv",
                    &output,
                    vec![input.into(), w, b],
                    &output,
                    vec![
                        ints("kernel_shape", &[shape[2] as i64, shape[3] as i64]),
                        ints("pads", &[pad; 4]),
                        ints("strides", &[1, 1]),
                    ],
                );
            }
            Layer::Relu => self.node("Relu", &output, vec![input.into()], &output, vec![]),
            Layer::MaxPool => self.node(
                "MaxPool",
                &output,
                vec![input.into()],
                &output,
                vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
            ),
            Layer::GlobalAvgPool => {
                self.node("GlobalAveragePool", &output, vec![input.into()], &output, vec![])
            }
            Layer::Flatten => self.node(
                "Flatten",
                &output,
                vec![input.into()],
                &output,
                vec![int("axis", 1)],
            ),
            Layer::Dense { weight, shape, bias } => {
                // burn keeps Linear weights as [in, out]: Gemm without transposing B.
                let w = self.initializer(&format!("l{index}.weight"), shape, weight);
                let b = self.initializer(&format!("l{index}.bias"), &[shape[1]], bias);
                self.node(
                    "Gemm",
                    &output,
                    vec![input.into(), w, b],
                    &output,
                    vec![int("transB", 0)],
                );
            }
        }
        output
    }

    fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: Vec<String>,
        output: &str,
        attribute: Vec<AttributeProto>,
    ) {
        self.nodes.push(NodeProto {
            op_type: op.into(),
            name: name.into(),
            input: inputs,
            output: vec![output.into()],
            attribute,
            ..Default::default()
        });
    }

    fn initializer(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        assert_eq!(
            dims.iter().product::<usize>(),
            values.len(),
            "{name}: shape and data disagree"
        );
        self.initializers.push(TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float as i32,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name.into()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

fn entry(key: &str, value: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: key.into(),
        value: value.into(),
    }
}

/// A float32 tensor value; `None` dims are the symbolic batch `N`.
fn value_info(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(v) => dimension::Value::DimValue(*v),
                None => dimension::Value::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Reads `metadata_props` back, to check an exported file.
pub fn metadata(bytes: &[u8]) -> Result<Vec<(String, String)>, prost::DecodeError> {
    let model = pb::ModelProto::decode(bytes)?;
    Ok(model
        .metadata_props
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect())
}
