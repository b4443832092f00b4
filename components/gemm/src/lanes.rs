//! What the element-wise kernels (`activation`, `binary`) share: four vectors (sixteen f32) per
//! loop turn, so that under Spin's engine, which checks the epoch at every loop header, each
//! check pays for four independent vectors of work; and how they rank in tract-linalg's routine
//! registry.

use std::arch::wasm32::*;

use tract_linalg::isa::{Isa, IsaReq};

/// Values per loop turn: four vectors.
pub(crate) const NR: usize = 16;

/// Items of alignment the kernels ask tract-linalg's drivers for: one vector.
pub(crate) const ALIGNMENT_ITEMS: usize = 4;

pub(crate) const SIMD128: IsaReq = IsaReq {
    needs: &[Isa::Wasm32Simd128],
};

/// Above tract's kernels for the same functions, which declare 0 at the same level (a tie
/// tract-linalg breaks by name, which tract's names would win).
pub(crate) const BOOST: isize = 1;

/// # Safety
/// `p` points at [`NR`] readable f32.
#[inline(always)]
unsafe fn load(p: *const f32) -> [v128; 4] {
    let p = p as *const v128;
    // SAFETY: the caller's NR values are these four vectors.
    [0, 1, 2, 3].map(|j| unsafe { p.add(j).read_unaligned() })
}

/// # Safety
/// `p` points at [`NR`] writable f32.
#[inline(always)]
unsafe fn store(p: *mut f32, v: [v128; 4]) {
    let p = p as *mut v128;
    for (j, v) in v.into_iter().enumerate() {
        // SAFETY: the caller's NR values are these four vectors.
        unsafe { p.add(j).write_unaligned(v) };
    }
}

/// `buf[i] = f(buf[i])`, four vectors per loop turn; `buf` holds a multiple of [`NR`] values
/// (tract-linalg's drivers guarantee it from the kernel's `nr`).
#[inline(always)]
pub(crate) fn map(buf: &mut [f32], f: impl Fn(v128) -> v128) {
    debug_assert!(buf.len().is_multiple_of(NR));
    for chunk in buf.chunks_exact_mut(NR) {
        // SAFETY: `chunk` is NR values.
        unsafe { store(chunk.as_mut_ptr(), load(chunk.as_ptr()).map(&f)) };
    }
}

/// `a[i] = f(a[i], b[i])`, four vectors per loop turn; both hold the same multiple of [`NR`]
/// values.
#[inline(always)]
pub(crate) fn zip_map(a: &mut [f32], b: &[f32], f: impl Fn(v128, v128) -> v128) {
    debug_assert!(a.len() == b.len() && a.len().is_multiple_of(NR));
    for (a, b) in a.chunks_exact_mut(NR).zip(b.chunks_exact(NR)) {
        // SAFETY: both chunks are NR values.
        unsafe {
            let (x, y) = (load(a.as_ptr()), load(b.as_ptr()));
            store(a.as_mut_ptr(), [0, 1, 2, 3].map(|j| f(x[j], y[j])));
        }
    }
}
