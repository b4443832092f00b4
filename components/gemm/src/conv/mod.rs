//! Spinfer's own convolution op for tract in wasm, and the model patch that puts it in place of
//! tract's.
//!
//! tract runs a k × k convolution as an im2col that it packs panel by panel while the product
//! runs (`LazyIm2col`), then its matrix kernel. For a stride-1 convolution the im2col is not
//! needed: [`direct::Direct`] reads the padded input in place. [`patch`] replaces each
//! decluttered `Conv` it can run (f32, stride 1, no dilation, one group, a kernel larger than
//! 1 × 1, constant weights and bias) with [`DirectConv`], before tract's codegen; the rest stay
//! tract's. `SPINFER_WASM_CONV=tract` leaves every convolution to tract, to compare.

pub mod direct;

use tract_core::internal::*;
use tract_core::ops::cnn::conv::KernelFormat;
use tract_core::ops::cnn::{Conv, PoolSpec};
use tract_core::ops::nn::DataFormat;

use direct::{Direct, Pads};

/// A stride-1 convolution of f32 NCHW (or CHW) images through [`Direct`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectConv {
    /// tract's description of the convolution: its padding rule, for each input size.
    pool_spec: PoolSpec,
    direct: Direct,
}

impl DirectConv {
    /// The op for a convolution, or `None` where it is not one [`Direct`] runs.
    pub fn for_conv(
        conv: &Conv,
        input: &TypedFact,
        kernel: &TypedFact,
        bias: &TypedFact,
    ) -> TractResult<Option<DirectConv>> {
        let spec = &conv.pool_spec;
        let plain = conv.q_params.is_none()
            && conv.group == 1
            && conv.kernel_fmt == KernelFormat::OIHW
            && matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
            && spec.rank() == 2
            && spec.strides().iter().all(|&s| s == 1)
            && spec.dilations().iter().all(|&d| d == 1)
            && spec.kernel_shape.iter().product::<usize>() > 1
            && input.datum_type == DatumType::F32;
        let (Some(weights), Some(bias)) = (&kernel.konst, &bias.konst) else {
            return Ok(None);
        };
        if !plain || weights.datum_type() != DatumType::F32 || bias.datum_type() != DatumType::F32 {
            return Ok(None);
        }
        let &[out_channels, in_channels, kh, kw] = weights.shape() else {
            return Ok(None);
        };
        let weights = weights.try_as_plain_ram()?;
        let bias = bias.try_as_plain_ram()?;
        let bias = match bias.as_slice::<f32>()? {
            [one] => vec![*one; out_channels],
            all if all.len() == out_channels => all.to_vec(),
            _ => return Ok(None),
        };
        let direct = Direct::new(
            weights.as_slice::<f32>()?,
            &bias,
            out_channels,
            in_channels,
            kh,
            kw,
        );
        Ok(Some(DirectConv {
            pool_spec: spec.clone(),
            direct,
        }))
    }

    fn pads(&self, h: usize, w: usize) -> Pads {
        let computed = self.pool_spec.computed_padding(&[h, w]);
        Pads {
            top: computed[0].pad_before,
            left: computed[1].pad_before,
            bottom: computed[0].pad_after,
            right: computed[1].pad_after,
        }
    }

    fn has_batch_axis(&self) -> bool {
        self.pool_spec.data_format == DataFormat::NCHW
    }
}

impl Op for DirectConv {
    fn name(&self) -> StaticName {
        "SpinferDirectConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{:?}", self.pool_spec)])
    }

    op_as_typed_op!();
}

impl EvalOp for DirectConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = &inputs[0];
        let shape = input.shape();
        let (n, chw) = if self.has_batch_axis() {
            (shape[0], &shape[1..])
        } else {
            (1, shape)
        };
        let &[c, h, w] = chw else {
            bail!("SpinferDirectConv: input of shape {shape:?}")
        };
        let pads = self.pads(h, w);
        let (ho, wo) = self.direct.output_size(h, w, pads);
        let cout = self.direct.out_channels();
        let out_shape: TVec<usize> = if self.has_batch_axis() {
            tvec![n, cout, ho, wo]
        } else {
            tvec![cout, ho, wo]
        };
        let mut output = Tensor::zero::<f32>(&out_shape)?;
        {
            let source = input.try_as_plain_ram()?;
            let source = source.as_slice::<f32>()?;
            let mut target = output.try_as_plain_ram_mut()?;
            let target = target.as_slice_mut::<f32>()?;
            let (item_in, item_out) = (c * h * w, cout * ho * wo);
            for i in 0..n {
                self.direct.run(
                    &source[i * item_in..][..item_in],
                    h,
                    w,
                    pads,
                    &mut target[i * item_out..][..item_out],
                );
            }
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for DirectConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        self.pool_spec.output_facts(inputs)
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let output = self.pool_spec.output_shape(&inputs[0].shape)?;
        let per_output =
            (self.pool_spec.input_channels * self.pool_spec.kernel_shape.iter().product::<usize>()).to_dim();
        let outputs: TDim = output.shape.iter().product();
        Ok(tvec!((Cost::FMA(DatumType::F32), outputs * per_output)))
    }

    as_op!();
}

/// Replaces every convolution of `model` (decluttered, not yet optimised) that [`DirectConv`]
/// runs with it; returns how many.
pub fn patch(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(conv) = node.op_as::<Conv>() else {
            continue;
        };
        if node.inputs.len() != 3 {
            continue;
        }
        let patch = {
            let facts: TVec<&TypedFact> = node
                .inputs
                .iter()
                .map(|&o| model.outlet_fact(o))
                .collect::<TractResult<_>>()?;
            let Some(op) = DirectConv::for_conv(conv, facts[0], facts[1], facts[2])? else {
                continue;
            };
            TypedModelPatch::replace_single_op(model, node, &node.inputs[..1], op)?
        };
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests;
