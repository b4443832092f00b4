//! The direct convolution against plain arithmetic on odd shapes, and the op in a tract model
//! against tract's own convolution of the same graph.

use tract_core::internal::*;
use tract_core::ops::cnn::conv::KernelFormat;
use tract_core::ops::cnn::{Conv, PaddingSpec, PoolSpec};
use tract_core::ops::nn::DataFormat;

use super::direct::{Direct, Pads};
use super::{DirectConv, patch};
use crate::kernel::tests::{assert_close, values};

/// A convolution's shape: channels in and out, image, kernel, padding.
#[derive(Clone, Copy, Debug)]
struct Case {
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    pads: Pads,
}

const fn pads(top: usize, left: usize, bottom: usize, right: usize) -> Pads {
    Pads {
        top,
        left,
        bottom,
        right,
    }
}

const CASES: [Case; 8] = [
    // One channel, one pixel, all padding.
    Case {
        cin: 1,
        cout: 1,
        h: 1,
        w: 1,
        kh: 3,
        kw: 3,
        pads: pads(1, 1, 1, 1),
    },
    // Output channels that fill no whole tile, a width that is no multiple of 8.
    Case {
        cin: 3,
        cout: 5,
        h: 7,
        w: 9,
        kh: 3,
        kw: 3,
        pads: pads(1, 1, 1, 1),
    },
    Case {
        cin: 2,
        cout: 6,
        h: 5,
        w: 11,
        kh: 5,
        kw: 5,
        pads: pads(2, 2, 2, 2),
    },
    // Unequal padding, a kernel taller than wide, no padding at all.
    Case {
        cin: 4,
        cout: 3,
        h: 8,
        w: 8,
        kh: 3,
        kw: 1,
        pads: pads(0, 1, 2, 0),
    },
    Case {
        cin: 7,
        cout: 9,
        h: 13,
        w: 6,
        kh: 2,
        kw: 2,
        pads: pads(0, 0, 0, 0),
    },
    // An image smaller than the kernel, padded up to it.
    Case {
        cin: 5,
        cout: 4,
        h: 2,
        w: 3,
        kh: 3,
        kw: 5,
        pads: pads(1, 1, 0, 1),
    },
    // Deep products: k steps in whole turns of four and with a remainder.
    Case {
        cin: 16,
        cout: 24,
        h: 10,
        w: 10,
        kh: 3,
        kw: 3,
        pads: pads(1, 1, 1, 1),
    },
    Case {
        cin: 33,
        cout: 8,
        h: 6,
        w: 17,
        kh: 3,
        kw: 3,
        pads: pads(1, 1, 1, 1),
    },
];

/// The convolution the plain way: every output the sum over channels and taps, zero outside
/// the image.
fn plain(case: Case, input: &[f32], weights: &[f32], bias: &[f32]) -> (usize, usize, Vec<f32>) {
    let Case {
        cin,
        cout,
        h,
        w,
        kh,
        kw,
        pads,
    } = case;
    let ho = h + pads.top + pads.bottom + 1 - kh;
    let wo = w + pads.left + pads.right + 1 - kw;
    let mut out = vec![0f32; cout * ho * wo];
    for o in 0..cout {
        for y in 0..ho {
            for x in 0..wo {
                let mut sum = bias[o];
                for ci in 0..cin {
                    for dy in 0..kh {
                        for dx in 0..kw {
                            let (iy, ix) = (
                                (y + dy) as isize - pads.top as isize,
                                (x + dx) as isize - pads.left as isize,
                            );
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                sum += weights[((o * cin + ci) * kh + dy) * kw + dx]
                                    * input[(ci * h + iy as usize) * w + ix as usize];
                            }
                        }
                    }
                }
                out[(o * ho + y) * wo + x] = sum;
            }
        }
    }
    (ho, wo, out)
}

#[test]
fn direct_matches_plain_arithmetic() {
    for (seed, case) in CASES.into_iter().enumerate() {
        let Case {
            cin,
            cout,
            h,
            w,
            kh,
            kw,
            pads,
        } = case;
        let input = values(seed as u64, cin * h * w);
        let weights = values(100 + seed as u64, cout * cin * kh * kw);
        let bias = values(200 + seed as u64, cout);
        let (ho, wo, expected) = plain(case, &input, &weights, &bias);
        let direct = Direct::new(&weights, &bias, cout, cin, kh, kw);
        assert_eq!(direct.output_size(h, w, pads), (ho, wo), "{case:?}");
        let mut found = vec![f32::NAN; cout * ho * wo];
        direct.run(&input, h, w, pads, &mut found);
        assert_close(&found, &expected, &format!("{case:?}"));
    }
}

#[test]
fn a_run_leaves_nothing_for_the_next() {
    // The scratch buffers are reused: a small image after a large one must not read the large
    // one's values where its own padding is.
    let big = CASES[6];
    let small = CASES[1];
    for case in [big, small, big] {
        let Case {
            cin,
            cout,
            h,
            w,
            kh,
            kw,
            pads,
        } = case;
        let input = values(7, cin * h * w);
        let weights = values(8, cout * cin * kh * kw);
        let bias = values(9, cout);
        let (ho, wo, expected) = plain(case, &input, &weights, &bias);
        let mut found = vec![0f32; cout * ho * wo];
        Direct::new(&weights, &bias, cout, cin, kh, kw).run(&input, h, w, pads, &mut found);
        assert_close(&found, &expected, &format!("{case:?}"));
    }
}

/// A model of one tract `Conv` on an `n × cin × h × w` input.
fn conv_model(case: Case, n: usize, strides: usize, group: usize, bias: Tensor) -> TractResult<TypedModel> {
    let Case {
        cin,
        cout,
        h,
        w,
        kh,
        kw,
        pads,
    } = case;
    let mut model = TypedModel::default();
    let x = model.add_source("x", f32::fact([n, cin, h, w]))?;
    let kernel =
        tensor1(&values(3, cout * cin / group * kh * kw)).into_shape(&[cout, cin / group, kh, kw])?;
    let kernel = model.add_const("kernel", kernel)?;
    let bias = model.add_const("bias", bias)?;
    let conv = Conv {
        pool_spec: PoolSpec {
            data_format: DataFormat::NCHW,
            kernel_shape: tvec![kh, kw],
            padding: PaddingSpec::Explicit(tvec![pads.top, pads.left], tvec![pads.bottom, pads.right]),
            dilations: None,
            strides: Some(tvec![strides, strides]),
            input_channels: cin,
            output_channels: cout,
        },
        kernel_fmt: KernelFormat::OIHW,
        group,
        q_params: None,
    };
    let out = model.wire_node("conv", conv, &[x, kernel, bias])?;
    model.select_output_outlets(&out)?;
    Ok(model)
}

fn run(model: TypedModel, input: &Tensor) -> TractResult<Tensor> {
    let plan = model.into_runnable()?;
    let out = plan.run(tvec!(input.clone().into_tvalue()))?;
    Ok(out[0].clone().into_tensor())
}

fn floats(t: &Tensor) -> Vec<f32> {
    t.try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec()
}

#[test]
fn the_patched_model_matches_tracts_convolution() -> TractResult<()> {
    for (seed, case) in CASES.into_iter().enumerate().skip(1) {
        for (n, bias) in [(1, tensor1(&values(4, case.cout))), (3, tensor0(0.25f32))] {
            let model = conv_model(case, n, 1, 1, bias)?;
            let input = tensor1(&values(seed as u64, n * case.cin * case.h * case.w))
                .into_shape(&[n, case.cin, case.h, case.w])?;
            // tract's own op, evaluated as it is (im2col and a product): tract's codegen
            // turns the kh × 1 case into a `BlockedConv` that refuses its width padding.
            let expected = run(model.clone().into_decluttered()?, &input)?;
            let mut patched = model.into_decluttered()?;
            assert_eq!(patch(&mut patched)?, 1, "{case:?}");
            assert!(patched.nodes().iter().any(|node| node.op_is::<DirectConv>()));
            patched.optimize()?;
            assert!(
                patched.nodes().iter().any(|node| node.op_is::<DirectConv>()),
                "codegen kept the op"
            );
            let found = run(patched, &input)?;
            assert_eq!(found.shape(), expected.shape(), "{case:?}");
            assert_close(
                &floats(&found),
                &floats(&expected),
                &format!("{case:?}, batch {n}"),
            );
        }
    }
    Ok(())
}

#[test]
fn strided_and_grouped_convolutions_stay_tracts() -> TractResult<()> {
    let case = CASES[6];
    for (strides, group) in [(2, 1), (1, 2)] {
        let mut model = conv_model(case, 1, strides, group, tensor0(0f32))?.into_decluttered()?;
        assert_eq!(patch(&mut model)?, 0, "strides {strides}, group {group}");
    }
    Ok(())
}
