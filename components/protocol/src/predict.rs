//! `POST /predict`: Spinfer's own JSON/image API.

use std::time::Instant;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::http::{Request, Response, Timing};
use crate::preprocess::{self, Input};
use crate::{MAX_BATCH, MODEL_HEADER, SERVER_TIMING_HEADER};
use spinfer_model::{Backend, ImageSpec, ModelCard, Tensor};

pub const DEFAULT_TOP_K: usize = 3;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictBody {
    pixels: Option<Vec<f64>>,
    instances: Option<Vec<Vec<f64>>>,
    image: Option<String>,
    #[serde(default)]
    normalized: bool,
}

#[derive(Serialize, Debug, PartialEq)]
pub struct Ranked {
    pub label: usize,
    /// The card's name for the class (the index itself when the card names none).
    pub class: String,
    pub probability: f32,
}

#[derive(Serialize, Debug, PartialEq)]
pub struct Prediction {
    pub label: usize,
    pub class: String,
    pub confidence: f32,
    pub probabilities: Vec<f32>,
    pub top_k: Vec<Ranked>,
}

impl Prediction {
    pub fn new(card: &ModelCard, probabilities: &[f32], top_k: usize) -> Prediction {
        let mut order: Vec<usize> = (0..probabilities.len()).collect();
        // Stable, so ties keep the lower label first.
        order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
        Prediction {
            label: order[0],
            class: card.label(order[0]),
            confidence: probabilities[order[0]],
            probabilities: probabilities.to_vec(),
            top_k: order
                .iter()
                .take(top_k)
                .map(|&label| Ranked {
                    label,
                    class: card.label(label),
                    probability: probabilities[label],
                })
                .collect(),
        }
    }
}

/// The images of a `/predict` request, preprocessed.
#[derive(Debug)]
pub struct Images {
    pub inputs: Vec<Input>,
    /// Sent as `instances`: answered with a `predictions` list.
    pub batch: bool,
}

pub fn decode(spec: &ImageSpec, request: &Request) -> Result<Images, ApiError> {
    let media = request.media_type().unwrap_or_default();
    match media.as_str() {
        "application/json" => decode_json(spec, request.body),
        "image/png" | "image/jpeg" => Ok(Images {
            inputs: vec![preprocess::image_to_input(spec, request.body)?],
            batch: false,
        }),
        _ => Err(ApiError::unsupported_media_type(
            request.content_type.unwrap_or("(none)"),
        )),
    }
}

fn decode_json(spec: &ImageSpec, body: &[u8]) -> Result<Images, ApiError> {
    let body: PredictBody =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let single = |input| Images {
        inputs: vec![input],
        batch: false,
    };
    match (body.pixels, body.instances, body.image) {
        (Some(pixels), None, None) => Ok(single(preprocess::pixels_to_input(
            spec,
            &pixels,
            body.normalized,
        )?)),
        (None, Some(instances), None) => {
            if instances.is_empty() || instances.len() > MAX_BATCH {
                return Err(ApiError::bad_request(format!(
                    "instances must hold 1 to {MAX_BATCH} images, got {}",
                    instances.len()
                )));
            }
            let inputs = instances
                .iter()
                .enumerate()
                .map(|(i, pixels)| {
                    preprocess::pixels_to_input(spec, pixels, body.normalized)
                        .map_err(|e| ApiError::bad_request(format!("instance {i}: {}", e.message)))
                })
                .collect::<Result<_, _>>()?;
            Ok(Images { inputs, batch: true })
        }
        (None, None, Some(image)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(image.trim())
                .map_err(|e| ApiError::bad_request(format!("image is not valid base64: {e}")))?;
            Ok(single(preprocess::image_to_input(spec, &bytes)?))
        }
        _ => Err(ApiError::bad_request(format!(
            "send exactly one of \"pixels\" ({} numbers), \"instances\" (a list of them) or \"image\" (base64 PNG/JPEG)",
            preprocess::values_per_image(spec)
        ))),
    }
}

fn top_k(request: &Request, classes: usize) -> Result<usize, ApiError> {
    match request.query_param("top_k") {
        None => Ok(DEFAULT_TOP_K.min(classes)),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|k| (1..=classes).contains(k))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "top_k must be a whole number from 1 to {classes}, got {raw:?}"
                ))
            }),
    }
}

pub fn handle(backend: &dyn Backend, request: &Request) -> Result<Response, ApiError> {
    let model = match request.query_param("model") {
        Some(name) => name.into_owned(),
        None => backend
            .default_model()
            .ok_or_else(|| ApiError::not_ready("no default model is configured"))?
            .to_string(),
    };
    let card = backend.card(&model).ok_or_else(|| backend.unknown(&model))?;
    let (spec, classes) = card.image_classifier().ok_or_else(|| {
        ApiError::bad_request(format!(
            "model {model:?} is not an image classifier (its card has no image block and [N, classes] output); \
             use POST /v2/models/{model}/infer"
        ))
    })?;
    let top_k = top_k(request, classes)?;

    let started = Instant::now();
    let Images { inputs, batch } = decode(spec, request)?;
    let decoded = Instant::now();
    let probs = run(backend, card, spec, &inputs)?;
    let timing = Timing::between(started, decoded, Instant::now());
    if probs.len() != inputs.len() * classes {
        return Err(ApiError::internal(format!(
            "model returned {} values for {} images of {classes} classes",
            probs.len(),
            inputs.len()
        )));
    }
    let mut predictions: Vec<Prediction> = probs
        .chunks(classes)
        .map(|p| Prediction::new(card, p, top_k))
        .collect();
    let body = if batch {
        serde_json::json!({ "model": model, "model_version": card.version, "predictions": predictions })
    } else {
        let p = predictions.remove(0);
        serde_json::json!({
            "model": model, "model_version": card.version, "label": p.label, "class": p.class,
            "confidence": p.confidence, "probabilities": p.probabilities, "top_k": p.top_k,
        })
    };
    Ok(Response::json(::http::StatusCode::OK, &body)
        .with_header(SERVER_TIMING_HEADER, timing.header())
        .with_header(MODEL_HEADER, model))
}

/// The first output's values for every picture: one run for them all, or one each where the
/// model's batch is fixed.
fn run(
    backend: &dyn Backend,
    card: &ModelCard,
    spec: &ImageSpec,
    inputs: &[Vec<f32>],
) -> Result<Vec<f32>, ApiError> {
    let input = &card.inputs[0];
    let output = &card.outputs[0];
    let shape = spec.shape();
    let fixed_batch = input.shape.first().and_then(|d| d.fixed()).is_some();
    let groups: Vec<&[Vec<f32>]> = if fixed_batch {
        inputs.chunks(1).collect()
    } else {
        vec![inputs]
    };
    let mut probs = Vec::new();
    for group in groups {
        let mut batch_shape = shape.clone();
        batch_shape[0] = group.len();
        let flat: Vec<f32> = group.iter().flatten().copied().collect();
        let tensor = Tensor::from_f32(input.name.clone(), batch_shape, &flat)?;
        let outputs = backend.run(&card.name, vec![tensor])?;
        let values = outputs.iter().find(|t| t.name == output.name).ok_or_else(|| {
            ApiError::internal(format!("model {:?} returned no {:?}", card.name, output.name))
        })?;
        probs.extend(values.to_f32()?);
    }
    Ok(probs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prediction_ranks_probabilities() {
        let card = ModelCard::from_json(
            br#"{"name":"m","version":"1","sha256":"","inputs":[],"outputs":[],"labels":["a","b","c"]}"#,
        )
        .unwrap();
        let p = Prediction::new(&card, &[0.1, 0.6, 0.3], 2);
        assert_eq!(p.class, "b");
        assert_eq!(p.label, 1);
        assert_eq!(p.confidence, 0.6);
        assert_eq!(
            p.top_k,
            vec![
                Ranked {
                    label: 1,
                    class: "b".into(),
                    probability: 0.6
                },
                Ranked {
                    label: 2,
                    class: "c".into(),
                    probability: 0.3
                }
            ]
        );
    }

    #[test]
    fn json_bodies_decode() {
        let spec: ImageSpec = serde_json::from_str(r#"{"height":28,"width":28,"channels":1}"#).unwrap();
        let decode_json = |body: &[u8]| decode_json(&spec, body);
        let pixels = vec![0.0; 784];
        let one = serde_json::to_vec(&serde_json::json!({ "pixels": pixels })).unwrap();
        assert!(!decode_json(&one).unwrap().batch);
        let two = serde_json::to_vec(&serde_json::json!({ "instances": [pixels, pixels] })).unwrap();
        let two = decode_json(&two).unwrap();
        assert!(two.batch);
        assert_eq!(two.inputs.len(), 2);
        let both =
            serde_json::to_vec(&serde_json::json!({ "pixels": pixels, "instances": [pixels] })).unwrap();
        assert_eq!(decode_json(&both).unwrap_err().status, 400);
        assert_eq!(decode_json(b"{\"image\":\"!!!\"}").unwrap_err().status, 400);
        assert_eq!(decode_json(b"{\"pixels\":[1,2").unwrap_err().status, 400);
        assert_eq!(decode_json(b"{\"instances\":[]}").unwrap_err().status, 400);
        let err = decode_json(b"{\"instances\":[[1,2]]}").unwrap_err();
        assert!(err.message.starts_with("instance 0"), "{err}");
    }

    #[test]
    fn top_k_is_bounded() {
        let request = |q| Request {
            query: q,
            ..Default::default()
        };
        assert_eq!(top_k(&request(""), 10).unwrap(), 3);
        assert_eq!(top_k(&request("top_k=10"), 10).unwrap(), 10);
        assert_eq!(top_k(&request("top_k=0"), 10).unwrap_err().status, 400);
        assert_eq!(top_k(&request("top_k=11"), 10).unwrap_err().status, 400);
        assert_eq!(top_k(&request("top_k=x"), 10).unwrap_err().status, 400);
        assert_eq!(top_k(&request("top_k=%35"), 10).unwrap(), 5);
        assert_eq!(top_k(&request("top_k=-1"), 10).unwrap_err().status, 400);
        assert_eq!(
            top_k(&request("top_k=99999999999999999999999"), 10)
                .unwrap_err()
                .status,
            400
        );
    }
}
