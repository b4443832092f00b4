//! A stride-1 2-D convolution computed straight from the padded input, with no im2col and no
//! packing of it (what tract does for every convolution it does not turn into a plain product).
//!
//! The padded image of one input channel is `Hp × Wp` values in a row. For a pixel at flat
//! position `p = y × Wp + x` of the output grid (taken `Wp` wide), the kernel tap (dy, dx) of
//! channel `ci` reads the value at `ci × Hp × Wp + dy × Wp + dx + p`. So the output is a product
//! of the weights (`Cout × K`, K = Cin × kh × kw) with a matrix whose row k is the padded input
//! shifted by a fixed offset: eight consecutive output pixels read eight consecutive values of
//! every row. A tile of 6 output channels × 8 pixels (twelve accumulators) runs over it, with the
//! weights packed once, when the model is optimised. The last `kw − 1` columns of each row of
//! that grid fall outside the output and are dropped.
//!
//! The tile multiplies and adds with `f32x4.relaxed_madd`, which wasmtime lowers to a fused
//! multiply-add on a host that has one (a multiply and an add elsewhere, so the last bits of a
//! result may differ by host). With twelve independent accumulators the fused form measured
//! faster than the 4 × 8 tile's multiply and add (BENCHMARKS.md); with eight it was not.

use std::arch::wasm32::*;
use std::cell::RefCell;

use crate::kernel::load_row;

/// Output channels in a tile: twelve accumulators, with two vectors of the input and one
/// broadcast weight they fit the 16 vector registers of an x86 host.
const MR: usize = 6;
/// Output pixels in a tile: two f32x4 vectors.
const NR: usize = 8;

/// Padding of the two spatial axes, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pads {
    pub top: usize,
    pub left: usize,
    pub bottom: usize,
    pub right: usize,
}

/// The weights and bias of one convolution, packed for the tile: for each group of [`MR`]
/// output channels, K steps of [`MR`] weights (zeros past the last channel).
#[derive(Clone, Debug)]
pub struct Direct {
    out_channels: usize,
    in_channels: usize,
    kh: usize,
    kw: usize,
    packed: Vec<f32>,
    bias: Vec<f32>,
}

impl PartialEq for Direct {
    fn eq(&self, other: &Self) -> bool {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        (self.out_channels, self.in_channels, self.kh, self.kw)
            == (other.out_channels, other.in_channels, other.kh, other.kw)
            && bits(&self.packed) == bits(&other.packed)
            && bits(&self.bias) == bits(&other.bias)
    }
}

impl Eq for Direct {}

thread_local! {
    /// The padded input and the output grid, reused from call to call: they grow to the largest
    /// convolution run and are not allocated again for each run.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

impl Direct {
    /// `weights` in OIHW order (`out_channels × in_channels × kh × kw`), `bias` one value per
    /// output channel.
    pub fn new(
        weights: &[f32],
        bias: &[f32],
        out_channels: usize,
        in_channels: usize,
        kh: usize,
        kw: usize,
    ) -> Direct {
        let k = in_channels * kh * kw;
        assert_eq!(
            weights.len(),
            out_channels * k,
            "weights are out_channels × in_channels × kh × kw"
        );
        assert_eq!(bias.len(), out_channels, "one bias per output channel");
        let panels = out_channels.div_ceil(MR);
        let mut packed = vec![0f32; panels * k * MR];
        for o in 0..out_channels {
            let (panel, r) = (o / MR, o % MR);
            for (step, w) in weights[o * k..][..k].iter().enumerate() {
                packed[(panel * k + step) * MR + r] = *w;
            }
        }
        let mut padded_bias = bias.to_vec();
        padded_bias.resize(panels * MR, 0.0);
        Direct {
            out_channels,
            in_channels,
            kh,
            kw,
            packed,
            bias: padded_bias,
        }
    }

    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// The output's height and width for an input of `h × w` padded by `pads`.
    pub fn output_size(&self, h: usize, w: usize, pads: Pads) -> (usize, usize) {
        (
            (h + pads.top + pads.bottom + 1).saturating_sub(self.kh),
            (w + pads.left + pads.right + 1).saturating_sub(self.kw),
        )
    }

    /// Convolves one image: `input` is `in_channels × h × w`, `output` is
    /// `out_channels × ho × wo` as [`Direct::output_size`] gives them.
    pub fn run(&self, input: &[f32], h: usize, w: usize, pads: Pads, output: &mut [f32]) {
        let (hp, wp) = (h + pads.top + pads.bottom, w + pads.left + pads.right);
        let (ho, wo) = self.output_size(h, w, pads);
        assert_eq!(
            input.len(),
            self.in_channels * h * w,
            "input is in_channels × h × w"
        );
        assert_eq!(
            output.len(),
            self.out_channels * ho * wo,
            "output is out_channels × ho × wo"
        );
        if ho == 0 || wo == 0 {
            return;
        }
        let plane = hp * wp;
        // The output grid is `ho` rows of `wp` pixels, in whole tiles.
        let pixels = (ho * wp).div_ceil(NR) * NR;
        // The last tile reads up to `pixels - ho × wp` + `kw - 1` values past the last plane.
        let padded_len = self.in_channels * plane + NR + self.kw;
        let offsets: Vec<usize> = (0..self.in_channels)
            .flat_map(|ci| {
                (0..self.kh).flat_map(move |dy| (0..self.kw).map(move |dx| ci * plane + dy * wp + dx))
            })
            .collect();
        SCRATCH.with_borrow_mut(|(padded, grid)| {
            padded.clear();
            padded.resize(padded_len, 0.0);
            for ci in 0..self.in_channels {
                for y in 0..h {
                    let to = ci * plane + (y + pads.top) * wp + pads.left;
                    padded[to..to + w].copy_from_slice(&input[(ci * h + y) * w..][..w]);
                }
            }
            let k = offsets.len();
            let panels = self.out_channels.div_ceil(MR);
            grid.resize(panels * MR * pixels, 0.0);
            for p in (0..pixels).step_by(NR) {
                for panel in 0..panels {
                    // SAFETY: the offsets read at most `padded_len` values from `padded` (see
                    // above), the panel holds k × MR weights, the bias MR values, and the grid
                    // MR rows of `pixels` from (panel × MR, p).
                    unsafe {
                        tile(
                            self.packed.as_ptr().add(panel * k * MR),
                            padded.as_ptr().add(p),
                            &offsets,
                            self.bias.as_ptr().add(panel * MR),
                            grid.as_mut_ptr().add(panel * MR * pixels + p),
                            pixels,
                        );
                    }
                }
            }
            for o in 0..self.out_channels {
                for y in 0..ho {
                    output[(o * ho + y) * wo..][..wo].copy_from_slice(&grid[o * pixels + y * wp..][..wo]);
                }
            }
        });
    }
}

/// The body of a tile of R output channels × 8 pixels over every step of k, U steps per loop
/// turn, with `$madd(acc, a, b)` as its multiply-add. A macro rather than a function taking the
/// multiply-add: `f32x4.relaxed_madd` is inlined only into a function compiled with
/// `relaxed-simd`, and a closure is not one.
macro_rules! tile_body {
    ($R:expr, $U:expr, $madd:ident, $a:ident, $b:ident, $offsets:ident, $bias:ident, $out:ident, $stride:ident) => {{
        let mut acc = [[f32x4_splat(0.0); 2]; $R];
        for (r, row) in acc.iter_mut().enumerate() {
            let value = v128_load32_splat($bias.add(r) as *const u32);
            *row = [value, value];
        }
        let k = $offsets.len();
        let o = $offsets.as_ptr();
        let mut s = 0;
        while s + $U <= k {
            for u in 0..$U {
                let [b0, b1] = load_row($b.add(*o.add(s + u)));
                let a = $a.add((s + u) * $R);
                for (r, row) in acc.iter_mut().enumerate() {
                    let ar = v128_load32_splat(a.add(r) as *const u32);
                    row[0] = $madd(row[0], ar, b0);
                    row[1] = $madd(row[1], ar, b1);
                }
            }
            s += $U;
        }
        while s < k {
            let [b0, b1] = load_row($b.add(*o.add(s)));
            let a = $a.add(s * $R);
            for (r, row) in acc.iter_mut().enumerate() {
                let ar = v128_load32_splat(a.add(r) as *const u32);
                row[0] = $madd(row[0], ar, b0);
                row[1] = $madd(row[1], ar, b1);
            }
            s += 1;
        }
        for (r, row) in acc.iter().enumerate() {
            let p = $out.add(r * $stride);
            v128_store(p as *mut v128, row[0]);
            v128_store(p.add(4) as *mut v128, row[1]);
        }
    }};
}

/// One tile: [`MR`] output channels × [`NR`] pixels, starting from the bias, over every step of
/// k, three steps per loop turn, with `f32x4.relaxed_madd`.
///
/// # Safety
/// `a` holds `offsets.len()` × [`MR`] weights, `bias` [`MR`] values; `b + offset` has [`NR`]
/// readable values for every offset; `out` has [`NR`] writable values at each of `out`,
/// `out + stride`, …, [`MR`] rows.
#[target_feature(enable = "relaxed-simd")]
unsafe fn tile(
    a: *const f32,
    b: *const f32,
    offsets: &[usize],
    bias: *const f32,
    out: *mut f32,
    stride: usize,
) {
    #[inline]
    #[target_feature(enable = "relaxed-simd")]
    fn fused(acc: v128, a: v128, b: v128) -> v128 {
        f32x4_relaxed_madd(a, b, acc)
    }
    unsafe { tile_body!(MR, 3, fused, a, b, offsets, bias, out, stride) }
}
