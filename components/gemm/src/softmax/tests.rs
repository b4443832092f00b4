//! The softmax against plain f64 arithmetic, and the op in a tract model against tract's own.

use tract_core::internal::*;
use tract_core::ops::nn::{Softmax, SoftmaxKind};

use super::{AxisSoftmax, patch, softmax};

/// The products' test values, in [-scale, scale).
fn values(seed: u64, len: usize, scale: f32) -> Vec<f32> {
    crate::kernel::tests::values(seed, len)
        .into_iter()
        .map(|v| v * scale)
        .collect()
}

fn plain(input: &[f32], len: usize, inner: usize) -> Vec<f32> {
    let mut out = vec![0f32; input.len()];
    for o in 0..input.len() / (len * inner) {
        for i in 0..inner {
            let at = |l: usize| (o * len + l) * inner + i;
            let max = (0..len).map(|l| input[at(l)] as f64).fold(f64::MIN, f64::max);
            let sum: f64 = (0..len).map(|l| (input[at(l)] as f64 - max).exp()).sum();
            for l in 0..len {
                out[at(l)] = ((input[at(l)] as f64 - max).exp() / sum) as f32;
            }
        }
    }
    out
}

fn assert_close(found: &[f32], expected: &[f32], what: &str) {
    assert_eq!(found.len(), expected.len(), "{what}");
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        assert!(
            (f - e).abs() <= 1e-6 + 1e-5 * e.abs(),
            "{what}: element {i} is {f}, expected {e}"
        );
    }
}

#[test]
fn matches_plain_arithmetic() {
    // (outer, len, inner): inner lanes in whole vectors, with a tail, and none but the tail;
    // YOLOv8's 16 values at 8,400 apart, shrunk; values far apart, so that most e^(x − max)
    // fall below the clamp.
    for (seed, (outer, len, inner, scale)) in [
        (1, 16, 4, 3.0),
        (3, 5, 7, 3.0),
        (2, 1, 9, 3.0),
        (1, 16, 2100, 8.0),
        (4, 3, 3, 200.0),
        (2, 7, 12, 0.0),
    ]
    .into_iter()
    .enumerate()
    {
        let input = values(seed as u64, outer * len * inner, scale);
        let mut found = vec![f32::NAN; input.len()];
        softmax(&input, &mut found, len, inner);
        assert_close(
            &found,
            &plain(&input, len, inner),
            &format!("{outer} × {len} × {inner}"),
        );
    }
}

fn softmax_model(shape: &[usize], axis: usize) -> TractResult<TypedModel> {
    let mut model = TypedModel::default();
    let x = model.add_source("x", f32::fact(shape))?;
    let out = model.wire_node(
        "softmax",
        Softmax::new(tvec![axis], None, SoftmaxKind::Softmax),
        &[x],
    )?;
    model.select_output_outlets(&out)?;
    model.into_decluttered()
}

fn run(model: TypedModel, input: &Tensor) -> TractResult<Vec<f32>> {
    let out = model.into_runnable()?.run(tvec!(input.clone().into_tvalue()))?;
    Ok(out[0].try_as_plain_ram()?.as_slice::<f32>()?.to_vec())
}

#[test]
fn the_patched_model_matches_tracts_softmax() -> TractResult<()> {
    let shape = [2, 5, 3, 7];
    let input = tensor1(&values(9, shape.iter().product(), 4.0)).into_shape(&shape)?;
    for axis in 0..3 {
        let model = softmax_model(&shape, axis)?;
        let expected = run(model.clone(), &input)?;
        let mut patched = model;
        assert_eq!(patch(&mut patched)?, 1, "axis {axis}");
        patched.optimize()?;
        assert!(
            patched.nodes().iter().any(|node| node.op_is::<AxisSoftmax>()),
            "codegen kept the op"
        );
        assert_close(&run(patched, &input)?, &expected, &format!("axis {axis}"));
    }
    // The last axis stays with tract's row kernels.
    let mut model = softmax_model(&shape, 3)?;
    assert_eq!(patch(&mut model)?, 0);
    Ok(())
}
