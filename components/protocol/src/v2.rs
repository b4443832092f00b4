//! The Open Inference Protocol v2 (KServe / Triton REST), with the binary tensor data extension.

use std::time::Instant;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::http::{Request, Response, Timing};
use crate::tensors;
use crate::{BINARY_HEADER, MAX_BATCH, MODEL_HEADER, SERVER_TIMING_HEADER};
use spinfer_model::{Backend, ModelCard, Tensor, TensorSpec};

pub fn server_metadata() -> Value {
    json!({ "name": "spinfer", "version": env!("CARGO_PKG_VERSION"), "extensions": ["binary_tensor_data"] })
}

fn tensor_metadata(spec: &TensorSpec) -> Value {
    json!({ "name": spec.name, "datatype": spec.dtype.oip(), "shape": spec.oip_shape() })
}

/// The model's metadata: its inputs and outputs, and, as parameters, what `/predict` uses (its
/// labels and image block) where the card has them.
pub fn model_metadata(card: &ModelCard) -> Value {
    let mut meta = json!({
        "name": card.name,
        "versions": [card.version],
        "platform": "onnx",
        "inputs": card.inputs.iter().map(tensor_metadata).collect::<Vec<_>>(),
        "outputs": card.outputs.iter().map(tensor_metadata).collect::<Vec<_>>(),
    });
    let mut parameters = Map::new();
    if !card.labels.is_empty() {
        parameters.insert("labels".into(), json!(card.labels));
    }
    if let Some(image) = &card.image {
        parameters.insert("image".into(), json!(image));
    }
    if !parameters.is_empty() {
        meta["parameters"] = Value::Object(parameters);
    }
    meta
}

#[derive(Deserialize)]
struct InferRequest {
    id: Option<String>,
    inputs: Vec<InputTensor>,
    #[serde(default)]
    outputs: Vec<RequestedOutput>,
    #[serde(default)]
    parameters: Map<String, Value>,
}

#[derive(Deserialize)]
struct InputTensor {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    data: Option<Value>,
    #[serde(default)]
    parameters: Map<String, Value>,
}

#[derive(Deserialize)]
struct RequestedOutput {
    name: String,
    #[serde(default)]
    parameters: Map<String, Value>,
}

/// Splits a body into its JSON header and the binary tensor section after it.
fn split_body<'a>(request: &Request<'a>) -> Result<(&'a [u8], &'a [u8]), ApiError> {
    match request.inference_header_length {
        None => Ok((request.body, &[])),
        Some(raw) => {
            let len: usize = raw.trim().parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "Inference-Header-Content-Length {raw:?} is not a byte count"
                ))
            })?;
            if len > request.body.len() {
                return Err(ApiError::bad_request(format!(
                    "Inference-Header-Content-Length {len} exceeds the {}-byte body",
                    request.body.len()
                )));
            }
            Ok(request.body.split_at(len))
        }
    }
}

fn wants_binary(parameters: &Map<String, Value>, key: &str) -> bool {
    parameters.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The shape the client sent, checked against the graph's input: the same rank, each fixed
/// size equal, every size at least 1, a symbolic first dimension (the batch) at most
/// [`MAX_BATCH`]; returns it with its element count.
fn input_shape(spec: &TensorSpec, sent: &[i64]) -> Result<(Vec<usize>, usize), ApiError> {
    let wrong = || {
        ApiError::bad_request(format!(
            "input {:?} shape {sent:?} does not match {:?} (batch 1 to {MAX_BATCH})",
            spec.name,
            spec.oip_shape()
        ))
    };
    let shape: Vec<usize> = sent
        .iter()
        .map(|&d| usize::try_from(d).ok().filter(|&d| d >= 1))
        .collect::<Option<_>>()
        .ok_or_else(wrong)?;
    let batch_ok = match (spec.shape.first(), shape.first()) {
        (Some(first), Some(&n)) if first.fixed().is_none() => n <= MAX_BATCH,
        _ => true,
    };
    if !spec.accepts(&shape) || !batch_ok {
        return Err(wrong());
    }
    let count = spinfer_model::tensor::elements(&shape).ok_or_else(wrong)?;
    Ok((shape, count))
}

/// Checks each input tensor against the card's and returns them as tensors, in the order sent
/// (a backend takes its inputs by name); the binary section is read in that order too.
fn input_tensors(card: &ModelCard, request: &InferRequest, binary: &[u8]) -> Result<Vec<Tensor>, ApiError> {
    let names = || {
        card.inputs
            .iter()
            .map(|s| format!("{:?}", s.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if request.inputs.len() != card.inputs.len() {
        return Err(ApiError::bad_request(format!(
            "expected {} input tensor(s) ({}), got {}",
            card.inputs.len(),
            names(),
            request.inputs.len()
        )));
    }
    let mut rest = binary;
    let mut tensors = Vec::with_capacity(request.inputs.len());
    for input in &request.inputs {
        let spec = card.inputs.iter().find(|s| s.name == input.name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown input {:?}; the model's inputs are {}",
                input.name,
                names()
            ))
        })?;
        if tensors.iter().any(|t: &Tensor| t.name == input.name) {
            return Err(ApiError::bad_request(format!(
                "input {:?} is sent twice",
                input.name
            )));
        }
        if input.datatype != spec.dtype.oip() {
            return Err(ApiError::bad_request(format!(
                "input {:?} datatype {} is not supported; use {}",
                input.name,
                input.datatype,
                spec.dtype.oip()
            )));
        }
        let (shape, count) = input_shape(spec, &input.shape)?;
        let bytes = count
            .checked_mul(spec.dtype.size())
            .ok_or_else(|| ApiError::bad_request("input too large"))?;
        let data = match (&input.data, input.parameters.get("binary_data_size")) {
            (Some(data), None) => tensors::from_json(spec.dtype, data, count)?,
            (None, Some(size)) => {
                let size = size
                    .as_u64()
                    .ok_or_else(|| ApiError::bad_request("binary_data_size must be a byte count"))?;
                if size != bytes as u64 || rest.len() < bytes {
                    return Err(ApiError::bad_request(format!(
                        "binary input {:?} must be {bytes} bytes ({count} {} values); binary_data_size is {size}, the body has {} left",
                        input.name,
                        spec.dtype.oip(),
                        rest.len()
                    )));
                }
                let (data, after) = rest.split_at(bytes);
                rest = after;
                tensors::check_binary(spec.dtype, &input.name, data)?;
                data.to_vec()
            }
            _ => {
                return Err(ApiError::bad_request(
                    "input needs either \"data\" or a binary_data_size parameter with binary data",
                ));
            }
        };
        if data.len() != bytes {
            return Err(ApiError::bad_request(format!(
                "input {:?} data has {} values; shape {:?} needs {count}",
                input.name,
                data.len() / spec.dtype.size(),
                input.shape
            )));
        }
        tensors.push(Tensor::new(input.name.clone(), spec.dtype, shape, data)?);
    }
    if !rest.is_empty() {
        return Err(ApiError::bad_request(format!(
            "the body carries {} bytes of binary data that no input claims",
            rest.len()
        )));
    }
    Ok(tensors)
}

pub fn infer(backend: &dyn Backend, card: &ModelCard, request: &Request) -> Result<Response, ApiError> {
    if request
        .media_type()
        .is_some_and(|m| m != "application/json" && m != "application/octet-stream")
    {
        return Err(ApiError::unsupported_media_type(
            request.content_type.unwrap_or_default(),
        ));
    }
    let started = Instant::now();
    let (header, binary) = split_body(request)?;
    let infer: InferRequest = serde_json::from_slice(header)
        .map_err(|e| ApiError::bad_request(format!("invalid inference request: {e}")))?;
    if let Some(out) = infer
        .outputs
        .iter()
        .find(|o| !card.outputs.iter().any(|s| s.name == o.name))
    {
        let names: Vec<&str> = card.outputs.iter().map(|s| s.name.as_str()).collect();
        return Err(ApiError::bad_request(format!(
            "unknown output {:?}; the model's outputs are {names:?}",
            out.name
        )));
    }
    let inputs = input_tensors(card, &infer, binary)?;
    let decoded = Instant::now();
    let outputs = backend.run(&card.name, inputs)?;
    let timing = Timing::between(started, decoded, Instant::now());

    // The outputs asked for, in the order asked; all of them, in the graph's order, when none is.
    let chosen: Vec<(&Tensor, bool)> = if infer.outputs.is_empty() {
        let binary = wants_binary(&infer.parameters, "binary_data_output");
        outputs.iter().map(|t| (t, binary)).collect()
    } else {
        infer
            .outputs
            .iter()
            .filter_map(|o| {
                let tensor = outputs.iter().find(|t| t.name == o.name)?;
                let binary = wants_binary(&o.parameters, "binary_data")
                    || wants_binary(&infer.parameters, "binary_data_output");
                Some((tensor, binary))
            })
            .collect()
    };
    let mut tail = Vec::new();
    let described: Vec<Value> = chosen
        .iter()
        .map(|&(tensor, binary)| {
            let mut output =
                json!({ "name": tensor.name, "datatype": tensor.dtype.oip(), "shape": tensor.shape });
            if binary {
                output["parameters"] = json!({ "binary_data_size": tensor.data.len() });
                tail.extend_from_slice(&tensor.data);
            } else {
                output["data"] = tensors::to_json(tensor);
            }
            output
        })
        .collect();
    let mut body = json!({ "model_name": card.name, "model_version": card.version, "outputs": described });
    if let Some(id) = infer.id {
        body["id"] = json!(id);
    }
    let response = if chosen.iter().any(|&(_, binary)| binary) {
        let mut bytes = serde_json::to_vec(&body).expect("serialises");
        let header_len = bytes.len();
        bytes.extend(tail);
        Response {
            status: ::http::StatusCode::OK,
            headers: vec![
                ("content-type".into(), "application/octet-stream".into()),
                (BINARY_HEADER.into(), header_len.to_string()),
            ],
            body: bytes,
        }
    } else {
        Response::json(::http::StatusCode::OK, &body)
    };
    Ok(response
        .with_header(SERVER_TIMING_HEADER, timing.header())
        .with_header(MODEL_HEADER, card.name.clone()))
}
