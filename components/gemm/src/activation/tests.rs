//! The SiLU kernel against plain f64 arithmetic and against tract's own kernel, through
//! tract-linalg's registry and element-wise driver (odd lengths, so its tail handling runs too).

use tract_linalg::element_wise::ElementWiseKer;
use tract_linalg::routines::Func;
use tract_linalg::wasm::WasmSilu4;

use super::Silu16;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A 1/64 grid of [-100, 100], and the values where the exponent's clamp (±87) and the
/// polynomial's range (±ln 2 / 2) end.
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
fn the_registry_runs_spinfers_kernel() {
    assert_eq!(registry(Func::Silu, &[0.0]).0, Silu16::name());
}

#[test]
fn silu_matches_plain_arithmetic() {
    let xs = inputs();
    for len in [1, 15, 16, 17, 100, xs.len()] {
        let (_, out) = registry(Func::Silu, &xs[..len]);
        assert_close(&out, |i| xs[i] as f64 * sigmoid(xs[i] as f64), 1e-6, "silu");
    }
    // +∞ stays +∞ and NaN NaN, as with tract's kernel (−∞ gives −∞ here, NaN there).
    let (_, out) = registry(Func::Silu, &[f32::INFINITY, f32::NAN]);
    assert_eq!(out[0], f32::INFINITY);
    assert!(out[1].is_nan());
}

#[test]
fn it_agrees_with_tracts_own_kernel() {
    let xs = inputs();
    let (_, ours) = registry(Func::Silu, &xs);
    let mut tracts = xs.clone();
    WasmSilu4::ew().run(&mut tracts).unwrap();
    assert_close(&ours, |i| tracts[i] as f64, 1e-5, "silu against tract's");
}
