//! The activation kernels against plain f64 arithmetic and against tract's own kernels, through
//! tract-linalg's registry and element-wise driver (odd lengths, so its tail handling runs too).

use tract_linalg::element_wise::ElementWiseKer;
use tract_linalg::generic::sigmoid::ssigmoid;
use tract_linalg::routines::Func;
use tract_linalg::wasm::WasmSilu4;

use super::{Sigmoid16, Silu16};

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A 1/64 grid of [-100, 100], the values where the exponent's clamp and the polynomial's range
/// change, and the infinities.
fn inputs() -> Vec<f32> {
    let mut xs: Vec<f32> = (-6400..=6400).map(|i| i as f32 / 64.0).collect();
    xs.extend([
        87.0,
        -87.0,
        87.5,
        -87.5,
        88.0,
        -88.0,
        0.346_573_6,
        -0.346_573_6,
        1e-30,
        -1e-30,
    ]);
    xs.extend([f32::INFINITY, f32::NEG_INFINITY, f32::MAX, f32::MIN]);
    xs
}

fn registry(func: Func, xs: &[f32]) -> (String, Vec<f32>) {
    let kernel = func.ew_f32().unwrap();
    let mut out = xs.to_vec();
    kernel.run(&mut out).unwrap();
    (kernel.name().to_string(), out)
}

fn assert_close(found: &[f32], expected: impl Fn(usize) -> f64, tolerance: f64, what: &str) {
    for (i, f) in found.iter().enumerate() {
        let e = expected(i);
        assert!(
            (*f as f64 - e).abs() <= tolerance * e.abs().max(1.0),
            "{what}: element {i} is {f}, expected {e}"
        );
    }
}

#[test]
fn the_registry_runs_spinfers_kernels() {
    assert_eq!(registry(Func::Sigmoid, &[0.0]).0, Sigmoid16::name());
    assert_eq!(registry(Func::Silu, &[0.0]).0, Silu16::name());
}

#[test]
fn sigmoid_matches_plain_arithmetic() {
    let xs = inputs();
    for len in [1, 15, 16, 17, 100, xs.len()] {
        let (_, out) = registry(Func::Sigmoid, &xs[..len]);
        assert_close(&out, |i| sigmoid(xs[i] as f64), 1e-6, "sigmoid");
    }
    assert!(registry(Func::Sigmoid, &[f32::NAN]).1[0].is_nan());
}

#[test]
fn silu_matches_plain_arithmetic() {
    let xs = inputs();
    let finite: Vec<f32> = xs.iter().copied().filter(|x| x.abs() <= 100.0).collect();
    for len in [1, 15, 16, 17, 100, finite.len()] {
        let (_, out) = registry(Func::Silu, &finite[..len]);
        assert_close(
            &out,
            |i| finite[i] as f64 * sigmoid(finite[i] as f64),
            1e-6,
            "silu",
        );
    }
}

#[test]
fn they_agree_with_tracts_own_kernels() {
    let xs: Vec<f32> = inputs().into_iter().filter(|x| x.abs() <= 100.0).collect();
    let (_, ours) = registry(Func::Sigmoid, &xs);
    assert_close(&ours, |i| ssigmoid(xs[i]) as f64, 1e-5, "sigmoid against tract's");
    let (_, ours) = registry(Func::Silu, &xs);
    let mut tracts = xs.clone();
    WasmSilu4::ew().run(&mut tracts).unwrap();
    assert_close(&ours, |i| tracts[i] as f64, 1e-5, "silu against tract's");
}
