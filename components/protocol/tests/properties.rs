//! Property tests of every decoder, through the one entry every server uses
//! (`spinfer_protocol::handle`): arbitrary bytes and near-valid requests never panic, never
//! allocate without bound, and get either an answer or the 4xx they should.
//!
//! CI runs proptest's default 256 cases per property; a long run:
//! `PROPTEST_CASES=20000 cargo test --release -p spinfer-protocol --test properties`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;
use spinfer_model::{Backend, ModelCard, ModelError, Tensor};
use spinfer_protocol::{Request, Response, handle};

/// Values of one digit image (28 × 28), as the committed cards give it.
const PIXELS: usize = 784;

/// Counts this thread's live heap bytes and their peak, so a property can bound what a decoder
/// allocates (proptest runs each property's cases on one thread).
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|live| {
            live.set(live.get() + layout.size());
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
        });
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(layout.size())));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most a request may make the decoders hold at once, beyond its own body: the image
/// decoder's limit (64 MiB) plus room for the decoded batch and the response.
const HEAP_BOUND: usize = 96 << 20;

/// A backend with the committed compact model's card that answers uniform probabilities.
struct Uniform(ModelCard);

impl Backend for Uniform {
    fn cards(&self) -> Vec<&ModelCard> {
        vec![&self.0]
    }
    fn default_model(&self) -> Option<&str> {
        Some(&self.0.name)
    }
    fn ready(&self, _: &str) -> Result<(), ModelError> {
        Ok(())
    }
    fn run(&self, _: &str, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, ModelError> {
        let [input] = inputs.as_slice() else {
            panic!("the decoder passed {} tensors for one input", inputs.len());
        };
        let batch = input.shape[0];
        assert_eq!(input.shape[1..], [1, 28, 28], "the decoder passed a whole batch");
        // The Open Inference Protocol takes any finite FP32 tensor; `/predict` only [0, 1].
        assert!(input.to_f32()?.iter().all(|v| v.is_finite()), "inputs are finite");
        Tensor::from_f32("probs", vec![batch, 10], &vec![0.1; batch * 10]).map(|t| vec![t])
    }
}

fn backend() -> Uniform {
    let card = include_bytes!("../../../models/mnist-compact.json");
    Uniform(ModelCard::from_json(card).expect("the committed card parses"))
}

/// Runs one request and checks what every answer must be: a known status, JSON for errors.
fn answer(
    method: &str,
    path: &str,
    query: &str,
    content_type: Option<&str>,
    binary: Option<&str>,
    body: &[u8],
) -> Response {
    let backend = backend();
    PEAK.with(|peak| peak.set(LIVE.with(Cell::get)));
    let before = LIVE.with(Cell::get);
    let request = Request {
        method,
        path,
        query,
        content_type,
        inference_header_length: binary,
        body,
        ..Default::default()
    };
    let response = handle(&backend, &request);
    let peak = PEAK.with(Cell::get) - before;
    assert!(
        peak <= HEAP_BOUND + 4 * body.len(),
        "{peak} bytes held for a {}-byte body",
        body.len()
    );
    let status = response.status.as_u16();
    assert!(
        [200, 400, 404, 405, 413, 415].contains(&status),
        "status {status} for {method} {path}: {}",
        String::from_utf8_lossy(&response.body)
    );
    if status >= 400 {
        let error: serde_json::Value = serde_json::from_slice(&response.body).expect("errors are JSON");
        assert!(error["error"].as_str().is_some_and(|m| !m.is_empty()));
    }
    response
}

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    prop::sample::select(vec![
        None,
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("image/png"),
        Some("image/jpeg"),
        Some("application/octet-stream"),
        Some("text/plain"),
    ])
}

fn route() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "/predict",
        "/v2/models/mnist-compact/infer",
        "/healthz",
        "/v2/models/x/infer",
    ])
}

/// A valid JSON `/predict` body, an Open Inference Protocol body, a PNG and a JPEG of a digit.
fn valid_bodies() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let pixels: Vec<u8> = (0..PIXELS)
        .map(|i| if (i % 28).abs_diff(14) < 3 { 255 } else { 0 })
        .collect();
    let image = image::GrayImage::from_raw(28, 28, pixels.clone()).unwrap();
    let encode = |format| {
        let mut out = std::io::Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    };
    let floats: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
    vec![
        (
            "/predict",
            "application/json",
            serde_json::to_vec(&serde_json::json!({ "pixels": pixels })).unwrap(),
        ),
        (
            "/v2/models/mnist-compact/infer",
            "application/json",
            serde_json::to_vec(&serde_json::json!({
                "inputs": [{ "name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": floats }]
            }))
            .unwrap(),
        ),
        ("/predict", "image/png", encode(image::ImageFormat::Png)),
        ("/predict", "image/jpeg", encode(image::ImageFormat::Jpeg)),
    ]
}

#[test]
fn the_valid_bodies_are_answered() {
    for (path, content_type, body) in valid_bodies() {
        let response = answer("POST", path, "", Some(content_type), None, &body);
        assert_eq!(
            response.status,
            200,
            "{path} {content_type}: {}",
            String::from_utf8_lossy(&response.body)
        );
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes(
        path in route(),
        content_type in content_type(),
        body in prop::collection::vec(any::<u8>(), 0..4096),
        binary in prop::option::of("[0-9a-z-]{0,8}"),
    ) {
        answer("POST", path, "", content_type, binary.as_deref(), &body);
    }

    #[test]
    fn arbitrary_queries(query in "[a-z_=&%0-9.+-]{0,64}") {
        let (_, _, body) = &valid_bodies()[0];
        answer("POST", "/predict", &query, Some("application/json"), None, body);
    }

    #[test]
    fn mutated_valid_bodies(
        which in 0usize..4,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let (path, content_type, mut body) = valid_bodies().swap_remove(which);
        for (at, byte) in flips {
            let at = at.index(body.len());
            body[at] ^= byte;
        }
        if truncate {
            body.truncate(cut.index(body.len() + 1));
        }
        answer("POST", path, "", Some(content_type), None, &body);
    }

    #[test]
    fn near_valid_pixels(
        values in prop::collection::vec(prop_oneof![0.0f64..=255.0, any::<f64>(), Just(-0.0), Just(1e308)], 0..1000),
        normalized in any::<bool>(),
        batch in 0usize..3,
    ) {
        let body = if batch == 0 {
            serde_json::json!({ "pixels": values, "normalized": normalized })
        } else {
            serde_json::json!({ "instances": vec![values.clone(); batch], "normalized": normalized })
        };
        let body = serde_json::to_vec(&body).unwrap();
        let response = answer("POST", "/predict", "", Some("application/json"), None, &body);
        let max = if normalized { 1.0 } else { 255.0 };
        // (JSON has no NaN or infinity: serde_json writes them as null, which is refused.)
        // `values` of the right length and range must be accepted; anything else refused.
        let valid = !values.is_empty() && values.len() == PIXELS && values.iter().all(|v| (0.0..=max).contains(v));
        prop_assert_eq!(response.status == 200, valid);
    }

    #[test]
    fn near_valid_tensors(
        shape in prop::collection::vec(prop_oneof![-2i64..40, Just(i64::MAX), Just(1 << 40)], 0..6),
        len in 0usize..2000,
        datatype in prop::sample::select(vec!["FP32", "FP64", "INT64", "BYTES", "fp32"]),
    ) {
        let body = serde_json::to_vec(&serde_json::json!({
            "inputs": [{ "name": "input", "shape": shape, "datatype": datatype, "data": vec![0.5f32; len] }]
        })).unwrap();
        let response = answer("POST", "/v2/models/mnist-compact/infer", "", Some("application/json"), None, &body);
        if response.status == 200 {
            let n = shape.iter().product::<i64>();
            prop_assert!(shape.len() == 4 && shape[1..] == [1, 28, 28] && n as usize == len, "{shape:?} {len}");
        }
    }

    #[test]
    fn images_of_any_size(width in 1u32..300, height in 1u32..300, ink in any::<u8>(), jpeg in any::<bool>()) {
        let image = image::GrayImage::from_fn(width, height, |x, y| {
            image::Luma([if (x + y) % 7 == 0 { ink } else { 255 - ink }])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        let format = if jpeg { image::ImageFormat::Jpeg } else { image::ImageFormat::Png };
        image.write_to(&mut out, format).unwrap();
        let content_type = if jpeg { "image/jpeg" } else { "image/png" };
        answer("POST", "/predict", "", Some(content_type), None, &out.into_inner());
    }
}
