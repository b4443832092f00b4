//! An f32 GEMM tile of R rows × 8 columns in wasm SIMD128, R = 4 or 6: 2R accumulators, two
//! vectors of B and one broadcast of A per step of k, so the tile and its operands fit the 16
//! vector registers of an x86 host. It runs every fused operation tract-core hands an f32
//! kernel, since tract asks a kernel whether it can fuse only about `LeakyRelu`.

use std::arch::wasm32::*;

use tract_data::prelude::f16;
use tract_linalg::Scaler;
use tract_linalg::isa::{Arch, Isa, IsaReq};
use tract_linalg::mmm::{DynKernel, FusedKerSpec, MatMatMul, OutputStoreKer};
use tract_linalg::mmm_routines::MmmRoutine;
use tract_linalg::pack::Packing;

use crate::KERNELS;

/// Columns in every tile: two f32x4 vectors.
const NR: usize = 8;

/// The accumulators: row r's columns 0..4 are `tile[r][0]`, 4..8 are `tile[r][1]`.
type Tile<const R: usize> = [[v128; 2]; R];

/// Eight consecutive f32 at `p` (any alignment) as one row of a tile.
#[inline(always)]
pub(crate) unsafe fn load_row(p: *const f32) -> [v128; 2] {
    unsafe { [v128_load(p as *const v128), v128_load(p.add(4) as *const v128)] }
}

/// `acc + a × b`: a fused multiply-add in a `+relaxed-simd` build, a multiply and an add
/// otherwise (the default, so that every host computes the same result).
#[inline(always)]
pub(crate) fn madd(acc: v128, a: v128, b: v128) -> v128 {
    #[cfg(target_feature = "relaxed-simd")]
    {
        f32x4_relaxed_madd(a, b, acc)
    }
    #[cfg(not(target_feature = "relaxed-simd"))]
    {
        f32x4_add(acc, f32x4_mul(a, b))
    }
}

/// `f(accumulator)` for every accumulator.
#[inline(always)]
fn each<const R: usize>(tile: &mut Tile<R>, f: impl Fn(v128) -> v128) {
    for acc in tile.iter_mut().flatten() {
        *acc = f(*acc);
    }
}

/// `f(row's value, accumulator)`, one value per row read from `values`.
#[inline(always)]
unsafe fn per_row<const R: usize>(tile: &mut Tile<R>, values: *const f32, f: impl Fn(v128, v128) -> v128) {
    for (r, row) in tile.iter_mut().enumerate() {
        let value = unsafe { v128_load32_splat(values.add(r) as *const u32) };
        for acc in row.iter_mut() {
            *acc = f(value, *acc);
        }
    }
}

/// `f(column's value, accumulator)`, one value per column read from `values`.
#[inline(always)]
unsafe fn per_col<const R: usize>(tile: &mut Tile<R>, values: *const f32, f: impl Fn(v128, v128) -> v128) {
    let cols = unsafe { load_row(values) };
    for row in tile.iter_mut() {
        for (acc, col) in row.iter_mut().zip(cols) {
            *acc = f(col, *acc);
        }
    }
}

/// One step of k: `tile += a × b` for R values of A and 8 of B.
#[inline(always)]
unsafe fn step<const R: usize>(tile: &mut Tile<R>, a: *const f32, b: *const f32) {
    unsafe {
        let [b0, b1] = load_row(b);
        for (r, row) in tile.iter_mut().enumerate() {
            let ar = v128_load32_splat(a.add(r) as *const u32);
            row[0] = madd(row[0], ar, b0);
            row[1] = madd(row[1], ar, b1);
        }
    }
}

/// `tile += A × B` over `k` steps of packed panels, U steps per turn of the loop (then the
/// remainder one by one). Under epoch interruption, as Spin and `spinfer up` serve, Cranelift
/// checks the epoch at every loop header: one step per turn made mnist-cnn's products 1.28×
/// slower than without the checks, four steps per turn 1.05× (BENCHMARKS.md).
#[inline(always)]
unsafe fn add_mat_mul<const R: usize, const U: usize>(
    tile: &mut Tile<R>,
    k: usize,
    mut a: *const f32,
    mut b: *const f32,
) {
    unsafe {
        for _ in 0..k / U {
            for u in 0..U {
                step(tile, a.add(u * R), b.add(u * NR));
            }
            a = a.add(U * R);
            b = b.add(U * NR);
        }
        for _ in 0..k % U {
            step(tile, a, b);
            a = a.add(R);
            b = b.add(NR);
        }
    }
}

/// The byte address of element (r, c) of a strided output or operand.
#[inline(always)]
unsafe fn at(store: &OutputStoreKer, r: usize, c: usize) -> *mut u8 {
    unsafe {
        store
            .ptr
            .offset(store.row_byte_stride * r as isize + store.col_byte_stride * c as isize)
    }
}

/// One row's eight values as scalars, and back.
#[inline(always)]
fn lanes(row: [v128; 2]) -> [f32; NR] {
    // SAFETY: two v128 are 32 bytes, eight f32 are 32 bytes, and any bit pattern is an f32.
    unsafe { std::mem::transmute(row) }
}

#[inline(always)]
fn vectors(values: [f32; NR]) -> [v128; 2] {
    // SAFETY: as in `lanes`, the other way round.
    unsafe { std::mem::transmute(values) }
}

/// Reads one element of f16, f32 or f64 as f32; `None` for any other size.
#[inline(always)]
unsafe fn read(ptr: *const u8, item_size: usize) -> Option<f32> {
    unsafe {
        match item_size {
            2 => Some((ptr as *const f16).read_unaligned().to_f32()),
            4 => Some((ptr as *const f32).read_unaligned()),
            8 => Some((ptr as *const f64).read_unaligned() as f32),
            _ => None,
        }
    }
}

/// `tile += other`, element by element. False for an element size it cannot read.
#[inline(always)]
unsafe fn add_unicast<const R: usize>(tile: &mut Tile<R>, other: &OutputStoreKer) -> bool {
    for (r, row) in tile.iter_mut().enumerate() {
        unsafe {
            let addend = if other.item_size == 4 && other.col_byte_stride == 4 {
                let p = at(other, r, 0);
                load_row(p as *const f32)
            } else {
                let mut values = [0f32; NR];
                for (c, value) in values.iter_mut().enumerate() {
                    let Some(v) = read(at(other, r, c), other.item_size) else {
                        return false;
                    };
                    *value = v;
                }
                vectors(values)
            };
            row[0] = f32x4_add(row[0], addend[0]);
            row[1] = f32x4_add(row[1], addend[1]);
        }
    }
    true
}

/// Writes the tile as f32 (two vector stores a row when the row is contiguous), f16 or f64.
/// False for an element size it cannot write.
#[inline(always)]
unsafe fn store<const R: usize>(tile: &Tile<R>, out: &OutputStoreKer) -> bool {
    for (r, row) in tile.iter().enumerate() {
        unsafe {
            if out.item_size == 4 && out.col_byte_stride == 4 {
                let p = at(out, r, 0);
                v128_store(p as *mut v128, row[0]);
                v128_store(p.add(16) as *mut v128, row[1]);
                continue;
            }
            for (c, value) in lanes(*row).into_iter().enumerate() {
                let p = at(out, r, c);
                match out.item_size {
                    2 => (p as *mut f16).write_unaligned(f16::from_f32(value)),
                    4 => (p as *mut f32).write_unaligned(value),
                    8 => (p as *mut f64).write_unaligned(value as f64),
                    _ => return false,
                }
            }
        }
    }
    true
}

/// Runs one tile's operations, tract's kernel protocol: 0 when done, non-zero for an operation
/// this kernel cannot run (tract reports it as an error).
unsafe fn kernel<const R: usize, const U: usize>(ops: &[FusedKerSpec<f32>]) -> isize {
    let zero = f32x4_splat(0.0);
    let mut tile: Tile<R> = [[zero; 2]; R];
    for op in ops {
        unsafe {
            match *op {
                FusedKerSpec::Done => break,
                FusedKerSpec::Clear => tile = [[zero; 2]; R],
                FusedKerSpec::LoadTile(_col_major, row_major) => {
                    for (r, row) in tile.iter_mut().enumerate() {
                        let p = row_major.add(r * NR);
                        *row = load_row(p);
                    }
                }
                FusedKerSpec::ScalarMin(s) => each(&mut tile, |x| f32x4_min(f32x4_splat(s), x)),
                FusedKerSpec::ScalarMax(s) => each(&mut tile, |x| f32x4_max(f32x4_splat(s), x)),
                FusedKerSpec::ScalarAdd(s) => each(&mut tile, |x| f32x4_add(f32x4_splat(s), x)),
                FusedKerSpec::ScalarMul(s) => each(&mut tile, |x| f32x4_mul(f32x4_splat(s), x)),
                FusedKerSpec::ScalarSub(s) => each(&mut tile, |x| f32x4_sub(f32x4_splat(s), x)),
                FusedKerSpec::ScalarSubF(s) => each(&mut tile, |x| f32x4_sub(x, f32x4_splat(s))),
                FusedKerSpec::LeakyRelu(alpha) => each(&mut tile, |x| {
                    let scaled = f32x4_mul(x, f32x4_splat(alpha));
                    v128_bitselect(x, scaled, f32x4_gt(x, zero))
                }),
                FusedKerSpec::PerRowMin(v) => per_row(&mut tile, v, |v, x| f32x4_min(v, x)),
                FusedKerSpec::PerRowMax(v) => per_row(&mut tile, v, |v, x| f32x4_max(v, x)),
                FusedKerSpec::PerRowAdd(v) => per_row(&mut tile, v, |v, x| f32x4_add(v, x)),
                FusedKerSpec::PerRowMul(v) => per_row(&mut tile, v, |v, x| f32x4_mul(v, x)),
                FusedKerSpec::PerRowSub(v) => per_row(&mut tile, v, |v, x| f32x4_sub(v, x)),
                FusedKerSpec::PerRowSubF(v) => per_row(&mut tile, v, |v, x| f32x4_sub(x, v)),
                FusedKerSpec::PerColMin(v) => per_col(&mut tile, v, |v, x| f32x4_min(v, x)),
                FusedKerSpec::PerColMax(v) => per_col(&mut tile, v, |v, x| f32x4_max(v, x)),
                FusedKerSpec::PerColAdd(v) => per_col(&mut tile, v, |v, x| f32x4_add(v, x)),
                FusedKerSpec::PerColMul(v) => per_col(&mut tile, v, |v, x| f32x4_mul(v, x)),
                FusedKerSpec::PerColSub(v) => per_col(&mut tile, v, |v, x| f32x4_sub(v, x)),
                FusedKerSpec::PerColSubF(v) => per_col(&mut tile, v, |v, x| f32x4_sub(x, v)),
                FusedKerSpec::QScale(shift, policy, mult) => {
                    let scale = f32x4_splat(Scaler::from_fuse_params(shift, policy, mult).scale);
                    each(&mut tile, |x| f32x4_mul(x, scale))
                }
                FusedKerSpec::RoundingShiftRight(shift, _) => {
                    let scale = f32x4_splat(2f32.powi(-(shift as i32)));
                    each(&mut tile, |x| f32x4_mul(x, scale))
                }
                FusedKerSpec::ShiftLeft(shift) => {
                    let scale = f32x4_splat(2f32.powi(shift as i32));
                    each(&mut tile, |x| f32x4_mul(x, scale))
                }
                FusedKerSpec::AddUnicast(other) => {
                    if !add_unicast(&mut tile, &other) {
                        return 1;
                    }
                }
                FusedKerSpec::AddRowColProducts(rows, cols) => {
                    let cols = load_row(cols);
                    for (r, row) in tile.iter_mut().enumerate() {
                        let value = v128_load32_splat(rows.add(r) as *const u32);
                        row[0] = madd(row[0], value, cols[0]);
                        row[1] = madd(row[1], value, cols[1]);
                    }
                }
                FusedKerSpec::Store(out) => {
                    if !store(&tile, &out) {
                        return 1;
                    }
                }
                // One packing is registered (f32 panels), so it is the only one asked for.
                FusedKerSpec::AddMatMul {
                    k,
                    pa,
                    pb,
                    packing: 0,
                } => add_mat_mul::<R, U>(&mut tile, k, pa as *const f32, pb as *const f32),
                FusedKerSpec::AddMatMul { .. } => return 1,
            }
        }
    }
    0
}

/// tract's description of the R-row kernel: f32 panels of R (A) and 8 (B), written for wasm
/// SIMD128 so that dispatch weighs it against tract's own wasm kernels.
fn describe<const R: usize, const U: usize>(name: &str) -> DynKernel<R, NR, f32> {
    let mut described = DynKernel::<R, NR, f32>::new(name, kernel::<R, U>, f32::packing(R), f32::packing(NR))
        .with_isa(IsaReq::ANY.needing(&[Isa::Wasm32Simd128]));
    described.arch = Some(Arch::Wasm32Simd128);
    described
}

/// The default tile: four steps of k per turn.
fn make_4x8() -> Box<dyn MatMatMul> {
    describe::<4, 4>(KERNELS[0].1).mmm()
}

fn make_6x8() -> Box<dyn MatMatMul> {
    describe::<6, 1>(KERNELS[1].1).mmm()
}

/// The 4×8 tile one step per turn, kept to measure what the unrolling buys.
fn make_4x8_rolled() -> Box<dyn MatMatMul> {
    describe::<4, 1>(KERNELS[2].1).mmm()
}

inventory::submit! { MmmRoutine { make: make_4x8 } }
inventory::submit! { MmmRoutine { make: make_6x8 } }
inventory::submit! { MmmRoutine { make: make_4x8_rolled } }

pub(crate) fn keep() {
    std::hint::black_box((
        make_4x8 as *const (),
        make_6x8 as *const (),
        make_4x8_rolled as *const (),
    ));
}

#[cfg(test)]
pub(crate) mod tests;
