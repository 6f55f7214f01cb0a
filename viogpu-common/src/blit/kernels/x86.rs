//! The x86_64 kernels of the rotated copy: the walk over a block of whole tiles with its
//! prefetches, and two tile transposes it can run, SSE2 (4x4 quads in XMM registers, the
//! x86_64 baseline) and AVX2 (8x8 blocks in YMM registers); plus the check of whether AVX2 may
//! run at all on this processor.
//!
//! The AVX2 tile does the same 16x16 transpose with half the instructions: each YMM register
//! holds two 4-pixel runs of source rows four apart, and the same in-lane unpacks that
//! transpose a 4x4 quad in SSE2 transpose two quads at once, giving whole 8-pixel destination
//! runs (16 shuffles per 64 pixels instead of 32, and 32-byte stores). On the full frame that
//! moved the copy from 0.60-0.63 to 0.64-0.70 of `memcpy` on the benchmark machine (see the
//! README).
//! It runs only when the caller asks for it (a `Simd` from
//! [`super::super::Simd::avx2_state_saved`], which in kernel mode means the caller saved the
//! YMM state) and [`avx2_usable`] says the processor and the OS support it; otherwise the SSE2
//! tile runs.

use core::arch::x86_64::{
    __m128i, __m256i, _mm256_castsi128_si256, _mm256_inserti128_si256, _mm256_storeu_si256,
    _mm256_unpackhi_epi32, _mm256_unpackhi_epi64, _mm256_unpacklo_epi32, _mm256_unpacklo_epi64,
    _mm_loadu_si128, _mm_prefetch, _mm_storeu_si128, _mm_unpackhi_epi32, _mm_unpackhi_epi64,
    _mm_unpacklo_epi32, _mm_unpacklo_epi64, _MM_HINT_T0,
};
use core::sync::atomic::{AtomicU8, Ordering};

use super::{tile_source, PX, TILE};

/// How many tile columns ahead [`prefetch_dest`] reaches.
const DEST_AHEAD: usize = 2;

/// How many tiles ahead in the column walk [`prefetch_source`] reaches.
const SOURCE_AHEAD: usize = 2;

/// Blocks at most this many tiles wide (64 destination columns: a 64x64 dirty rect) are
/// walked tile row by tile row; wider ones tile column by tile column.
const ROW_ORDER_MAX_TILES: usize = 4;

/// Transposes the tiles of a block, with the AVX2 tile when `avx2` is set. A wide block (a
/// band of a large rect) is walked tile column by tile column: each reads `TILE` source rows
/// over the band's width and writes a strip of every destination row of the band, with the
/// source rows of the tile two ahead and the destination lines two columns ahead prefetched.
/// A narrow block (a small dirty rect, where a few columns ahead is already past its end) is
/// walked tile row by tile row: each writes `TILE` whole destination rows and prefetches the
/// source of the next tile row. Each order measured best on its own shape and worst on the
/// other's, with either tile.
///
/// # Safety
///
/// With `rows = tiles_h * TILE` and `cols = tiles_w * TILE` (no overflow):
/// `src.len() >= (cols - 1) * src_pitch + rows * 4`, `src_pitch <= isize::MAX`,
/// `dst.len() >= (rows - 1) * dst_pitch + cols * 4`; the processor supports SSE2, and AVX2
/// too when `avx2` is set.
pub(super) unsafe fn transpose_tiles<const ROTATE90: bool>(
    src: &[u8],
    src_pitch: usize,
    dst: &mut [u8],
    dst_pitch: usize,
    tiles: (usize, usize),
    avx2: bool,
) {
    let block = Block {
        src: src.as_ptr(),
        src_pitch,
        dst: dst.as_mut_ptr(),
        dst_pitch,
        tiles,
    };
    if avx2 {
        // SAFETY: `block` describes the caller's slices, and the processor supports AVX2
        // (caller contract).
        unsafe { block.walk::<ROTATE90, true>() }
    } else {
        // SAFETY: as above; SSE2 is part of the x86_64 baseline.
        unsafe { block.walk::<ROTATE90, false>() }
    }
}

/// The block [`transpose_tiles`] works on, as pointers.
struct Block {
    src: *const u8,
    src_pitch: usize,
    dst: *mut u8,
    dst_pitch: usize,
    tiles: (usize, usize),
}

impl Block {
    /// Visits every tile in the order [`transpose_tiles`] describes, with the AVX2 tile when
    /// `AVX2` is set. The walk itself (addresses, prefetches) is baseline code either way.
    ///
    /// # Safety
    ///
    /// As [`transpose_tiles`] with `avx2 = AVX2`.
    #[inline(always)]
    unsafe fn walk<const ROTATE90: bool, const AVX2: bool>(&self) {
        let (tiles_h, tiles_w) = self.tiles;
        if tiles_w <= ROW_ORDER_MAX_TILES {
            for ti in 0..tiles_h {
                for tj in 0..tiles_w {
                    // SAFETY: `ti < tiles_h`, `tj < tiles_w`, and the block describes the
                    // caller's slices (caller contract).
                    unsafe { self.tile::<ROTATE90, true, AVX2>(ti, tj) };
                }
            }
        } else {
            for tj in 0..tiles_w {
                for ti in 0..tiles_h {
                    // SAFETY: as above.
                    unsafe { self.tile::<ROTATE90, false, AVX2>(ti, tj) };
                }
            }
        }
    }

    /// Prefetches for the tiles ahead in the walk (`ROW_ORDER` as in [`transpose_tiles`])
    /// and transposes tile `(ti, tj)`, with the AVX2 tile when `AVX2` is set.
    ///
    /// # Safety
    ///
    /// The block's pointers and sizes meet the contract of [`transpose_tiles`] with
    /// `avx2 = AVX2`; `ti < tiles_h`, `tj < tiles_w`.
    #[inline(always)]
    unsafe fn tile<const ROTATE90: bool, const ROW_ORDER: bool, const AVX2: bool>(
        &self,
        ti: usize,
        tj: usize,
    ) {
        let (r0, c0) = tile_source::<ROTATE90>(self.tiles, (ti, tj));
        // SAFETY: the tile's source rows `r0..r0 + TILE` lie below `tiles_w * TILE` and
        // its columns `c0..c0 + TILE` below `tiles_h * TILE`, so every byte the tile
        // reads at `r * src_pitch + c * 4` from here lies inside the source (contract),
        // and so does the tile's first byte.
        let s = unsafe { self.src.add(r0 * self.src_pitch + c0 * PX) };
        // SAFETY: likewise for destination rows `ti * TILE..` (below `tiles_h * TILE`)
        // and columns `tj * TILE..` (below `tiles_w * TILE`).
        let d = unsafe { self.dst.add(ti * TILE * self.dst_pitch + tj * TILE * PX) };
        if ROW_ORDER {
            prefetch_next_row::<ROTATE90>(s, self.src_pitch);
        } else {
            self.prefetch_source::<ROTATE90>(ti, tj);
            if tj + DEST_AHEAD < self.tiles.1 {
                prefetch_dest(d.wrapping_add(DEST_AHEAD * TILE * PX), self.dst_pitch);
            }
        }
        if AVX2 {
            // SAFETY: `s` and `d` start whole tiles inside the source and destination
            // (above), which the caller's slices cover, the destination uniquely; the
            // processor supports AVX2 (contract).
            unsafe { transpose_tile_avx2::<ROTATE90>(s, self.src_pitch, d, self.dst_pitch) };
        } else {
            // SAFETY: as above.
            unsafe { transpose_tile::<ROTATE90>(s, self.src_pitch, d, self.dst_pitch) };
        }
    }

    /// In the column walk, fetches the source rows of the tile [`SOURCE_AHEAD`] tiles after
    /// `(ti, tj)`: further down the same tile column, or at the top of the next one. Two
    /// tiles ahead (half a column of a 64-row band), with the destination two columns
    /// ahead, measured 5-9% faster on the full frame than the next column's same tile (a
    /// whole column ahead) with the destination three columns ahead; much further ahead
    /// the lines are evicted again before use.
    #[inline]
    fn prefetch_source<const ROTATE90: bool>(&self, ti: usize, tj: usize) {
        let (tiles_h, tiles_w) = self.tiles;
        // Count on through the tile column and into the next ones (no division: this runs
        // once per tile); at most `SOURCE_AHEAD` steps, none for an empty block.
        let (mut ti2, mut tj2) = (ti + SOURCE_AHEAD, tj);
        while ti2 >= tiles_h && tiles_h > 0 {
            ti2 -= tiles_h;
            tj2 += 1;
        }
        if ti2 >= tiles_h || tj2 >= tiles_w {
            return;
        }
        let (r0, c0) = tile_source::<ROTATE90>(self.tiles, (ti2, tj2));
        let tile = self.src.wrapping_add(r0 * self.src_pitch + c0 * PX);
        for r in 0..TILE {
            let p = tile.wrapping_add(r.wrapping_mul(self.src_pitch));
            // SAFETY: a prefetch never faults, whatever the address, and SSE is part of the
            // x86_64 baseline. (Rust 1.91 and earlier declare `_mm_prefetch` unsafe even in
            // SSE code; the block keeps the crate building with them.)
            #[allow(unused_unsafe)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(p.cast())
            };
        }
    }
}

/// The next tile row reads the same source rows as this tile, `TILE` columns further left
/// for 90 degrees and right for 270; ask for them now. A prefetch is a hint that never
/// faults, so the address may lie outside the block, and `wrapping_offset` computes it
/// without claiming otherwise.
#[inline]
fn prefetch_next_row<const ROTATE90: bool>(tile: *const u8, src_pitch: usize) {
    let side = if ROTATE90 {
        -((TILE * PX) as isize)
    } else {
        (TILE * PX) as isize
    };
    for r in 0..TILE {
        // `src_pitch <= isize::MAX` (caller contract of `transpose_tiles`).
        let p = tile.wrapping_offset(
            (r as isize)
                .wrapping_mul(src_pitch as isize)
                .wrapping_add(side),
        );
        // SAFETY: a prefetch never faults, whatever the address, and SSE is part of the
        // x86_64 baseline. (Rust 1.91 and earlier declare `_mm_prefetch` unsafe even in SSE
        // code; the block keeps the crate building with them.)
        #[allow(unused_unsafe)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p.cast())
        };
    }
}

/// The tile `DEST_AHEAD` tile columns further right writes these destination rows;
/// fetch its lines now. Without it each tile's 64 stores miss the cache, fill the store
/// buffer and stall the loads of the next tiles: reads and writes then take turns instead
/// of overlapping. (One column ahead is too close to help; three measured best with the
/// source prefetched a whole column ahead, two with it two tiles ahead.)
#[inline]
fn prefetch_dest(tile: *mut u8, dst_pitch: usize) {
    for r in 0..TILE {
        let p = tile.wrapping_add(r.wrapping_mul(dst_pitch));
        // SAFETY: a prefetch never faults, whatever the address (see `prefetch_next_row`).
        #[allow(unused_unsafe)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p.cast_const().cast())
        };
    }
}

/// One tile, mapping as in [`tile_source`]: a block of 4x4 quads `TILE` pixels square.
///
/// # Safety
///
/// `src` and `dst` address `TILE` rows of `TILE * 4` readable (`src`) and writable,
/// unaliased (`dst`) bytes, `src_pitch` and `dst_pitch` apart.
#[target_feature(enable = "sse2")]
#[inline]
unsafe fn transpose_tile<const ROTATE90: bool>(
    src: *const u8,
    src_pitch: usize,
    dst: *mut u8,
    dst_pitch: usize,
) {
    // SAFETY: `TILE` is a multiple of 4, and the caller's tile is the block
    // `transpose_quads` asks for with `rows = cols = TILE`.
    unsafe { transpose_quads::<ROTATE90>(src, src_pitch, dst, dst_pitch, (TILE, TILE)) };
}

/// A block of `rows` x `cols` destination pixels (mapping as in the portable
/// `transpose_quads_portable`): 4x4 quads of 32-bit pixels go through SSE2 registers, four
/// 16-byte loads, eight unpacks and four 16-byte stores per 16 pixels.
///
/// # Safety
///
/// `rows` and `cols` are multiples of 4; `src` addresses `cols` rows of `rows * 4` readable
/// bytes, `src_pitch` apart; `dst` addresses `rows` rows of `cols * 4` writable bytes,
/// `dst_pitch` apart, that nothing else refers to.
#[target_feature(enable = "sse2")]
#[inline]
pub(super) unsafe fn transpose_quads<const ROTATE90: bool>(
    src: *const u8,
    src_pitch: usize,
    dst: *mut u8,
    dst_pitch: usize,
    (rows, cols): (usize, usize),
) {
    for bi in 0..rows / 4 {
        // Source columns c0..c0 + 4 become destination rows 4 * bi..4 * bi + 4.
        let c0 = if ROTATE90 { rows - 4 - 4 * bi } else { 4 * bi };
        for bj in 0..cols / 4 {
            let load = |jj: usize| {
                let j = 4 * bj + jj;
                let r = if ROTATE90 { j } else { cols - 1 - j };
                // SAFETY: `r < cols` and `c0 + 4 <= rows`, so the 16 bytes at
                // `r * src_pitch + c0 * 4` lie inside the block (caller contract).
                let p = unsafe { src.add(r * src_pitch + c0 * PX) };
                // SAFETY: `p` addresses 16 readable bytes (above); `loadu` has no
                // alignment requirement.
                unsafe { _mm_loadu_si128(p.cast()) }
            };
            let cols4 = transpose4([load(0), load(1), load(2), load(3)]);
            for ii in 0..4 {
                let i = 4 * bi + ii;
                let m = if ROTATE90 { 3 - ii } else { ii };
                // SAFETY: `i < rows` and `4 * bj + 4 <= cols`, so the 16 bytes at
                // `i * dst_pitch + 4 * bj * 4` lie inside the block (caller contract).
                let p = unsafe { dst.add(i * dst_pitch + 4 * bj * PX) };
                // SAFETY: `p` addresses 16 writable bytes nothing else refers to
                // (above); `storeu` has no alignment requirement.
                unsafe { _mm_storeu_si128(p.cast(), cols4[m]) };
            }
        }
    }
}

/// 4x4 transpose of 32-bit lanes: output `m` holds lane `m` of each input, in input order.
#[target_feature(enable = "sse2")]
#[inline]
fn transpose4([a, b, c, d]: [__m128i; 4]) -> [__m128i; 4] {
    let ab_lo = _mm_unpacklo_epi32(a, b); // a0 b0 a1 b1
    let cd_lo = _mm_unpacklo_epi32(c, d); // c0 d0 c1 d1
    let ab_hi = _mm_unpackhi_epi32(a, b); // a2 b2 a3 b3
    let cd_hi = _mm_unpackhi_epi32(c, d); // c2 d2 c3 d3
    [
        _mm_unpacklo_epi64(ab_lo, cd_lo),
        _mm_unpackhi_epi64(ab_lo, cd_lo),
        _mm_unpacklo_epi64(ab_hi, cd_hi),
        _mm_unpackhi_epi64(ab_hi, cd_hi),
    ]
}

/// One tile with AVX2, mapping as in [`tile_source`]: four 8x8 blocks. Called once per tile
/// from the baseline walk, never inlined: inlined into a walk compiled for AVX2 the full frame
/// ran 5-7% slower than with the call (three interleaved runs each). For each, the 8 source
/// rows it reads go into four YMM registers per 4-pixel column half, row `k` in the low lane
/// and row `k + 4` in the high lane; the in-lane 4x4 transpose of [`transpose4`] then leaves
/// in each register one whole 8-pixel destination run.
///
/// # Safety
///
/// As [`transpose_tile`]; the processor supports AVX2.
#[target_feature(enable = "avx2")]
#[inline(never)]
unsafe fn transpose_tile_avx2<const ROTATE90: bool>(
    src: *const u8,
    src_pitch: usize,
    dst: *mut u8,
    dst_pitch: usize,
) {
    for bi in 0..TILE / 8 {
        // Source columns c0..c0 + 8 become destination rows 8 * bi..8 * bi + 8.
        let c0 = if ROTATE90 { TILE - 8 - 8 * bi } else { 8 * bi };
        for bj in 0..TILE / 8 {
            // Destination column 8 * bj + jj reads source row `source_row(jj)`.
            let source_row = |jj: usize| {
                let j = 8 * bj + jj;
                if ROTATE90 {
                    j
                } else {
                    TILE - 1 - j
                }
            };
            // Source rows `k` and `k + 4` of the block, 4 pixels from column `c0 + half`.
            let pair = |k: usize, half: usize| {
                let at = |jj: usize| {
                    // SAFETY: `source_row(jj) < TILE` and `c0 + half + 4 <= TILE`, so the 16
                    // bytes at this offset lie inside the tile (caller contract).
                    let p = unsafe { src.add(source_row(jj) * src_pitch + (c0 + half) * PX) };
                    // SAFETY: `p` addresses 16 readable bytes (above); `loadu` has no
                    // alignment requirement.
                    unsafe { _mm_loadu_si128(p.cast()) }
                };
                _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(at(k)), at(k + 4))
            };
            let low = transpose4_lanes([pair(0, 0), pair(1, 0), pair(2, 0), pair(3, 0)]);
            let high = transpose4_lanes([pair(0, 4), pair(1, 4), pair(2, 4), pair(3, 4)]);
            for ii in 0..8 {
                // Destination row 8 * bi + ii is source column c0 + m.
                let m = if ROTATE90 { 7 - ii } else { ii };
                let run = if m < 4 { low[m] } else { high[m - 4] };
                // SAFETY: `8 * bi + ii < TILE` and `8 * bj + 8 <= TILE`, so the 32 bytes at
                // this offset lie inside the tile (caller contract).
                let p = unsafe { dst.add((8 * bi + ii) * dst_pitch + 8 * bj * PX) };
                // SAFETY: `p` addresses 32 writable bytes nothing else refers to (above);
                // `storeu` has no alignment requirement.
                unsafe { _mm256_storeu_si256(p.cast(), run) };
            }
        }
    }
}

/// [`transpose4`] in each 128-bit lane of four YMM registers at once.
#[target_feature(enable = "avx2")]
#[inline]
fn transpose4_lanes([a, b, c, d]: [__m256i; 4]) -> [__m256i; 4] {
    let ab_lo = _mm256_unpacklo_epi32(a, b);
    let cd_lo = _mm256_unpacklo_epi32(c, d);
    let ab_hi = _mm256_unpackhi_epi32(a, b);
    let cd_hi = _mm256_unpackhi_epi32(c, d);
    [
        _mm256_unpacklo_epi64(ab_lo, cd_lo),
        _mm256_unpackhi_epi64(ab_lo, cd_lo),
        _mm256_unpacklo_epi64(ab_hi, cd_hi),
        _mm256_unpackhi_epi64(ab_hi, cd_hi),
    ]
}

/// What [`avx2_usable`] found: not yet asked, no, yes.
static AVX2_STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const NO: u8 = 1;
const YES: u8 = 2;

/// True when AVX2 instructions may run here: the processor has AVX2 (CPUID leaf 7, EBX bit 5)
/// and AVX (leaf 1, ECX bit 28), and the OS saves the YMM state across context switches
/// (leaf 1, ECX bit 27 OSXSAVE, then XCR0 bits 1 and 2). Asked once, then remembered: CPUID
/// is a VM exit under a hypervisor.
pub(crate) fn avx2_usable() -> bool {
    match AVX2_STATE.load(Ordering::Relaxed) {
        YES => true,
        NO => false,
        _ => {
            // Miri cannot run CPUID; there the build's target features answer (a run with
            // `-C target-feature=+avx2` checks the AVX2 tile's memory accesses).
            let usable = if cfg!(miri) {
                cfg!(target_feature = "avx2")
            } else {
                detect_avx2()
            };
            AVX2_STATE.store(if usable { YES } else { NO }, Ordering::Relaxed);
            usable
        }
    }
}

/// The CPUID and XCR0 checks of [`avx2_usable`].
fn detect_avx2() -> bool {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    const OSXSAVE: u32 = 1 << 27;
    const AVX: u32 = 1 << 28;
    const AVX2: u32 = 1 << 5;
    // XCR0 bit 1 (SSE state) and bit 2 (AVX state): the OS enabled XSAVE of the YMM registers.
    const XCR0_SSE_AVX: u64 = 0b110;
    // SAFETY: CPUID is available on every x86_64 processor and only reads; leaf 0 gives the
    // highest leaf. (Older Rust declares these intrinsics unsafe; the block keeps that building.)
    #[allow(unused_unsafe)]
    let max_leaf = unsafe { __cpuid(0) }.eax;
    if max_leaf < 7 {
        return false;
    }
    // SAFETY: as above; leaves 1 and 7 exist (checked).
    #[allow(unused_unsafe)]
    let (leaf1, leaf7) = unsafe { (__cpuid(1), __cpuid_count(7, 0)) };
    if leaf1.ecx & (OSXSAVE | AVX) != OSXSAVE | AVX || leaf7.ebx & AVX2 == 0 {
        return false;
    }
    // SAFETY: OSXSAVE is set, so XGETBV is enabled (CR4.OSXSAVE) and XCR0 readable.
    let xcr0 = unsafe { read_xcr0() };
    xcr0 & XCR0_SSE_AVX == XCR0_SSE_AVX
}

/// XCR0, the OS's mask of enabled XSAVE state components.
///
/// # Safety
///
/// CPUID reported OSXSAVE.
#[target_feature(enable = "xsave")]
unsafe fn read_xcr0() -> u64 {
    // SAFETY: XGETBV with ECX = 0 reads XCR0, which OSXSAVE makes readable (caller contract).
    unsafe { core::arch::x86_64::_xgetbv(0) }
}
