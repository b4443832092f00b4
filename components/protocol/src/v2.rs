//! The Open Inference Protocol v2 (KServe / Triton REST), with the binary tensor data extension.

use std::time::Instant;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::http::{Request, Response, Timing};
use crate::{BINARY_HEADER, MAX_BATCH, MODEL_HEADER, SERVER_TIMING_HEADER};
use spinfer_model::Backend;
use spinfer_model::ModelCard;

pub fn server_metadata() -> Value {
    json!({ "name": "spinfer", "version": env!("CARGO_PKG_VERSION"), "extensions": ["binary_tensor_data"] })
}

fn datatype(dtype: &str) -> &str {
    match dtype {
        "float32" => "FP32",
        other => other,
    }
}

pub fn model_metadata(card: &ModelCard) -> Value {
    json!({
        "name": card.name,
        "versions": [card.version],
        "platform": "onnx",
        "inputs": [{ "name": card.input.name, "datatype": datatype(&card.input.dtype), "shape": card.input.shape }],
        "outputs": [{ "name": card.output.name, "datatype": datatype(&card.output.dtype), "shape": card.output.shape }],
    })
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

fn flatten(value: &Value, out: &mut Vec<f32>) -> Result<(), ApiError> {
    match value {
        Value::Array(items) => items.iter().try_for_each(|item| flatten(item, out)),
        Value::Number(n) => {
            let v = n
                .as_f64()
                .filter(|v| v.is_finite() && v.abs() <= f64::from(f32::MAX));
            out.push(
                v.ok_or_else(|| ApiError::bad_request(format!("{n} is not a finite FP32 value")))? as f32,
            );
            Ok(())
        }
        other => Err(ApiError::bad_request(format!(
            "tensor data must hold numbers, found {other}"
        ))),
    }
}

fn wants_binary(parameters: &Map<String, Value>, key: &str) -> bool {
    parameters.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Checks the one input tensor and returns its values and batch size.
fn input_values(
    card: &ModelCard,
    request: &InferRequest,
    binary: &[u8],
) -> Result<(Vec<f32>, usize), ApiError> {
    let [input] = request.inputs.as_slice() else {
        return Err(ApiError::bad_request(format!(
            "expected exactly one input tensor {:?}, got {}",
            card.input.name,
            request.inputs.len()
        )));
    };
    if input.name != card.input.name {
        return Err(ApiError::bad_request(format!(
            "unknown input {:?}; the model's input is {:?}",
            input.name, card.input.name
        )));
    }
    if input.datatype != datatype(&card.input.dtype) {
        return Err(ApiError::bad_request(format!(
            "input datatype {} is not supported; use {}",
            input.datatype,
            datatype(&card.input.dtype)
        )));
    }
    let expected = &card.input.shape;
    let shape_ok = input.shape.len() == expected.len()
        && input
            .shape
            .iter()
            .zip(expected)
            .all(|(&got, &want)| want == -1 || got == want)
        && input
            .shape
            .first()
            .is_some_and(|&n| (1..=MAX_BATCH as i64).contains(&n));
    if !shape_ok {
        return Err(ApiError::bad_request(format!(
            "input shape {:?} does not match {expected:?} (batch 1 to {MAX_BATCH})",
            input.shape
        )));
    }
    let batch = input.shape[0] as usize;
    let count: usize = input.shape.iter().map(|&d| d as usize).product();
    let values = match (&input.data, input.parameters.get("binary_data_size")) {
        (Some(data), None) => {
            let mut values = Vec::with_capacity(count);
            flatten(data, &mut values)?;
            values
        }
        (None, Some(size)) => {
            let size = size
                .as_u64()
                .ok_or_else(|| ApiError::bad_request("binary_data_size must be a byte count"))?
                as usize;
            if size != count * 4 || binary.len() != size {
                return Err(ApiError::bad_request(format!(
                    "binary input must be {} bytes ({count} FP32 values); binary_data_size is {size}, body carries {}",
                    count * 4,
                    binary.len()
                )));
            }
            let values: Vec<f32> = binary
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(ApiError::bad_request(format!(
                    "binary input value {i} is not finite"
                )));
            }
            values
        }
        _ => {
            return Err(ApiError::bad_request(
                "input needs either \"data\" or a binary_data_size parameter with binary data",
            ));
        }
    };
    if values.len() != count {
        return Err(ApiError::bad_request(format!(
            "input data has {} values; shape {:?} needs {count}",
            values.len(),
            input.shape
        )));
    }
    Ok((values, batch))
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
    if let Some(out) = infer.outputs.iter().find(|o| o.name != card.output.name) {
        return Err(ApiError::bad_request(format!(
            "unknown output {:?}; the model's output is {:?}",
            out.name, card.output.name
        )));
    }
    let (values, batch) = input_values(card, &infer, binary)?;
    let decoded = Instant::now();
    let probs = backend.infer(&card.name, &values, batch)?;
    let timing = Timing::between(started, decoded, Instant::now());

    let classes = probs.len() / batch;
    let binary_out = wants_binary(&infer.parameters, "binary_data_output")
        || infer
            .outputs
            .iter()
            .any(|o| wants_binary(&o.parameters, "binary_data"));
    let mut output = json!({
        "name": card.output.name,
        "datatype": datatype(&card.output.dtype),
        "shape": [batch, classes],
    });
    if binary_out {
        output["parameters"] = json!({ "binary_data_size": probs.len() * 4 });
    } else {
        output["data"] = json!(probs);
    }
    let mut body = json!({ "model_name": card.name, "model_version": card.version, "outputs": [output] });
    if let Some(id) = infer.id {
        body["id"] = json!(id);
    }
    let response = if binary_out {
        let mut bytes = serde_json::to_vec(&body).expect("serialises");
        let header_len = bytes.len();
        bytes.extend(probs.iter().flat_map(|p| p.to_le_bytes()));
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
