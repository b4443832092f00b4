//! Softmax over an axis that is not the innermost one, as a tract op of Spinfer's own.
//!
//! tract-core 0.23.9 runs a softmax over the trailing axes with its row kernels, and any other
//! axis one lane at a time: it walks every coordinate of the other axes, collapses a view onto
//! it, and takes `exp` of each value twice in scalar code (YOLOv8's box head, a softmax over 16
//! values at a stride of 8,400, took 14.7 ms of a 122 ms run). Here the tensor is taken as
//! `outer × axis × inner`, with `inner` contiguous, and each pass runs over whole rows of
//! `inner` values, four lanes at a time: the maximum along the axis, `e^(x − max)` and its sum,
//! then the scale by `1 / sum`. `e^y` is the SiLU kernel's ([`crate::activation`]).

use std::arch::wasm32::*;

use tract_core::internal::*;
use tract_core::ops::nn::{Softmax, SoftmaxKind};

use crate::activation::{CLAMP, exp};

/// A softmax of f32 values along `axis`, which is not the last one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AxisSoftmax {
    axis: usize,
}

impl AxisSoftmax {
    /// The op for a tract softmax, or `None` where tract's own row kernels apply (the last axis)
    /// or it is not a plain f32 softmax over one axis.
    pub fn for_softmax(softmax: &Softmax, input: &TypedFact) -> Option<AxisSoftmax> {
        match *softmax.axes {
            [axis]
                if softmax.kind == SoftmaxKind::Softmax
                    && softmax.quant_output_dt.is_none()
                    && input.datum_type == DatumType::F32
                    && axis + 1 < input.rank() =>
            {
                Some(AxisSoftmax { axis })
            }
            _ => None,
        }
    }
}

/// The softmax of an `outer × len × inner` block: `output` from `input`, both that long.
pub fn softmax(input: &[f32], output: &mut [f32], len: usize, inner: usize) {
    assert_eq!(input.len(), output.len(), "as many outputs as inputs");
    let block = len * inner;
    if block == 0 {
        return;
    }
    assert!(input.len().is_multiple_of(block), "whole blocks of len × inner");
    let mut max = vec![0f32; inner];
    let mut sum = vec![0f32; inner];
    let lanes = inner / 4 * 4;
    for (x, y) in input.chunks_exact(block).zip(output.chunks_exact_mut(block)) {
        max.copy_from_slice(&x[..inner]);
        for row in x.chunks_exact(inner).skip(1) {
            for (m, v) in max.iter_mut().zip(row) {
                *m = m.max(*v);
            }
        }
        sum.fill(0.0);
        for (row, out) in x.chunks_exact(inner).zip(y.chunks_exact_mut(inner)) {
            for i in (0..lanes).step_by(4) {
                // SAFETY: i + 4 ≤ lanes ≤ inner, the length of `row`, `out`, `max` and `sum`.
                unsafe {
                    let shifted = f32x4_sub(
                        v128_load(row.as_ptr().add(i) as *const v128),
                        v128_load(max.as_ptr().add(i) as *const v128),
                    );
                    let e = exp(f32x4_max(shifted, f32x4_splat(-CLAMP)));
                    v128_store(out.as_mut_ptr().add(i) as *mut v128, e);
                    let s = sum.as_mut_ptr().add(i) as *mut v128;
                    v128_store(s, f32x4_add(v128_load(s), e));
                }
            }
            for i in lanes..inner {
                let e = (row[i] - max[i]).max(-CLAMP).exp();
                out[i] = e;
                sum[i] += e;
            }
        }
        for s in sum.iter_mut() {
            *s = s.recip();
        }
        for out in y.chunks_exact_mut(inner) {
            for (v, r) in out.iter_mut().zip(&sum) {
                *v *= r;
            }
        }
    }
}

impl Op for AxisSoftmax {
    fn name(&self) -> StaticName {
        "SpinferAxisSoftmax".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("axis: {}", self.axis)])
    }

    op_as_typed_op!();
}

impl EvalOp for AxisSoftmax {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = &inputs[0];
        let shape = input.shape();
        let len = shape[self.axis];
        let inner = shape[self.axis + 1..].iter().product();
        let mut output = Tensor::zero::<f32>(shape)?;
        {
            let source = input.try_as_plain_ram()?;
            let mut target = output.try_as_plain_ram_mut()?;
            softmax(
                source.as_slice::<f32>()?,
                target.as_slice_mut::<f32>()?,
                len,
                inner,
            );
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for AxisSoftmax {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(inputs[0].datum_type.fact(inputs[0].shape.clone())))
    }

    as_op!();
}

/// Replaces every softmax of `model` that [`AxisSoftmax`] runs with it; returns how many.
pub fn patch(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(softmax) = node.op_as::<Softmax>() else {
            continue;
        };
        let Some(op) = AxisSoftmax::for_softmax(softmax, model.outlet_fact(node.inputs[0])?) else {
            continue;
        };
        let patch = TypedModelPatch::replace_single_op(model, node, &node.inputs, op)?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests;
