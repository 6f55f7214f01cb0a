//! The copy loops behind [`super::blit_rect`]: straight row copies, reversed rows for 180
//! degrees, and a tiled transpose for 90 and 270 degrees.
//!
//! Callers validate rectangles first; the planes here then see only in-range rows. Every row,
//! edge tile or block of whole tiles is still sliced out with `get`, so a logic error surfaces
//! as [`Error::OutOfBounds`], never as a panic or a stray write. Those checks sit at row, edge
//! tile or band granularity, outside the per-pixel loops. The one unchecked access is the
//! x86_64 SSE2 kernels (a band's tiles, an edge tile's quads), which read and write 16-byte
//! pieces of a block whose slices were length-checked just before (see their `# Safety`
//! sections).
//!
//! # The rotated copy
//!
//! The destination is cut into bands of [`BAND`] rows; the whole 16x16 tiles of a band form one
//! block, sliced out once and handed to the SSE2 kernel (4x4 transposes in registers). Of the
//! tiles at the right and bottom edges that are not whole, the part made of whole 4x4 quads
//! goes through the same transposes (on x86_64) and the rest, at most 3 pixels wide or high,
//! through a checked per-pixel loop. A 64x64 dirty rect is one block of 16 tiles.
//!
//! On an L3-resident frame the kernel is bound by memory, not by its shuffles: with the data
//! in L1/L2 it transposes at memcpy speed. Its reads (16 source rows per tile) and its writes
//! (16 destination rows per tile) each run at 45-60 GB/s alone on the benchmark machine, but
//! without help they take turns: each tile's 64 stores miss, fill the store buffer and hold
//! back the next tiles' loads. Hence the prefetches: in wide blocks the source of the tile two
//! ahead in the walk and the destination lines two tile columns ahead, in narrow ones the
//! source of the next tile row. Wide blocks are walked tile column by tile column, narrow ones
//! (small rects) tile row by tile row; each order measured best on its own shape.
//!
//! Measured on the `present` benchmark (1920x1080, L3-resident, SSE2 only): the unrotated copy
//! runs at memcpy speed, the rotated one at about 0.65 of it on the full frame and 0.5 on 100
//! scattered 64x64 rects; see `benches/present.rs` and the README, which also lists what else
//! was tried (non-temporal stores, other walks, bands and prefetches) and what it measured.

use zerocopy::FromBytes;

use super::{Span, BYTES_PER_PIXEL};
use crate::error::{Error, Result};

/// One 32-bit pixel, copied as an opaque unit.
type Px = [u8; 4];

/// Edge length of the square tiles of the rotated copy, in pixels. 16 pixels are one 64-byte
/// cache line per tile row, so a tile reads 16 whole lines and writes 16 whole lines.
const TILE: usize = 16;

/// Destination rows handled together: in a wide band the tiles are visited column by column,
/// so each source row is entered once per band for `BAND * 4` bytes instead of once per tile
/// row for 64 bytes. Fewer, longer visits keep the TLB and the prefetchers working (32 and 128
/// measured slower on the full frame).
const BAND: usize = 64;

const PX: usize = BYTES_PER_PIXEL as usize;

/// The bytes of a rectangle inside a surface: row `y` of the rectangle starts at `y * pitch`.
pub(super) struct Plane<'a> {
    bytes: &'a [u8],
    pitch: usize,
    w: usize,
    h: usize,
}

/// Writable counterpart of [`Plane`].
pub(super) struct PlaneMut<'a> {
    bytes: &'a mut [u8],
    pitch: usize,
    w: usize,
    h: usize,
}

/// Byte offset of pixel `(x, y)` in a plane with `pitch`.
fn offset(pitch: usize, y: usize, x: usize) -> Result<usize> {
    y.checked_mul(pitch)
        .and_then(|r| r.checked_add(x.checked_mul(PX)?))
        .ok_or(Error::OutOfBounds)
}

/// Byte range of `n` pixels starting at `start`.
fn run(start: usize, n: usize) -> Result<core::ops::Range<usize>> {
    let end = n
        .checked_mul(PX)
        .and_then(|len| start.checked_add(len))
        .ok_or(Error::OutOfBounds)?;
    Ok(start..end)
}

/// Byte range `(start, len)` a rectangle spans inside a surface with `pitch`.
fn region(pitch: u32, span: Span) -> Result<(usize, usize, usize)> {
    let pitch = usize::try_from(pitch).map_err(|_| Error::OutOfBounds)?;
    let start = offset(pitch, span.y, span.x)?;
    let len = (span.h - 1)
        .checked_mul(pitch)
        .and_then(|r| r.checked_add(span.w.checked_mul(PX)?))
        .ok_or(Error::OutOfBounds)?;
    Ok((pitch, start, len))
}

impl<'a> Plane<'a> {
    pub(super) fn new(surface: &'a [u8], pitch: u32, span: Span) -> Result<Self> {
        let (pitch, start, len) = region(pitch, span)?;
        let end = start.checked_add(len).ok_or(Error::OutOfBounds)?;
        let bytes = surface.get(start..end).ok_or(Error::OutOfBounds)?;
        Ok(Plane {
            bytes,
            pitch,
            w: span.w,
            h: span.h,
        })
    }

    /// `n` pixels of row `y` starting at column `x`.
    fn pixels(&self, y: usize, x: usize, n: usize) -> Result<&'a [Px]> {
        let range = run(offset(self.pitch, y, x)?, n)?;
        let bytes = self.bytes.get(range).ok_or(Error::OutOfBounds)?;
        <[Px]>::ref_from_bytes(bytes).map_err(|_| Error::OutOfBounds)
    }
}

impl<'a> PlaneMut<'a> {
    pub(super) fn new(surface: &'a mut [u8], pitch: u32, span: Span) -> Result<Self> {
        let (pitch, start, len) = region(pitch, span)?;
        let end = start.checked_add(len).ok_or(Error::OutOfBounds)?;
        let bytes = surface.get_mut(start..end).ok_or(Error::OutOfBounds)?;
        Ok(PlaneMut {
            bytes,
            pitch,
            w: span.w,
            h: span.h,
        })
    }

    fn pixels(&mut self, y: usize, x: usize, n: usize) -> Result<&mut [Px]> {
        let range = run(offset(self.pitch, y, x)?, n)?;
        let bytes = self.bytes.get_mut(range).ok_or(Error::OutOfBounds)?;
        <[Px]>::mut_from_bytes(bytes).map_err(|_| Error::OutOfBounds)
    }
}

/// Unrotated copy: one `copy_from_slice` (memcpy) per row.
pub(super) fn copy_identity(dst: &mut PlaneMut<'_>, src: &Plane<'_>) -> Result<()> {
    if dst.w != src.w || dst.h != src.h {
        return Err(Error::InvalidArgument);
    }
    let row_bytes = src.w * PX;
    for (d, s) in dst
        .bytes
        .chunks_mut(dst.pitch)
        .zip(src.bytes.chunks(src.pitch))
    {
        let d = d.get_mut(..row_bytes).ok_or(Error::OutOfBounds)?;
        let s = s.get(..row_bytes).ok_or(Error::OutOfBounds)?;
        d.copy_from_slice(s);
    }
    Ok(())
}

/// 180 degrees: destination row `i` is source row `h - 1 - i` with its pixels reversed.
pub(super) fn copy_rotate180(dst: &mut PlaneMut<'_>, src: &Plane<'_>) -> Result<()> {
    if dst.w != src.w || dst.h != src.h {
        return Err(Error::InvalidArgument);
    }
    let w = src.w;
    for i in 0..src.h {
        let s = src.pixels(src.h - 1 - i, 0, w)?;
        let d = dst.pixels(i, 0, w)?;
        for (d, s) in d.iter_mut().zip(s.iter().rev()) {
            *d = *s;
        }
    }
    Ok(())
}

/// 90 degrees (`ROTATE90 = true`) or 270 degrees: a transpose done tile by tile.
///
/// Destination tile rows `v0..v0+th`, columns `u0..u0+tw` read `tw` source rows, each over one
/// contiguous run of `th` pixels, and write `th` destination rows, each over one contiguous run
/// of `tw` pixels:
/// - 90: destination `(u, v)` is source `(w - 1 - v, u)`: the run of source row `u0 + j`
///   starts at column `w - v0 - th`, and destination row `v0 + i` takes index `th - 1 - i`.
/// - 270: destination `(u, v)` is source `(v, h - 1 - u)`: the run of source row
///   `h - 1 - u0 - j` starts at column `v0`, and destination row `v0 + i` takes index `i`.
pub(super) fn copy_transposed(
    dst: &mut PlaneMut<'_>,
    src: &Plane<'_>,
    rotate90: bool,
) -> Result<()> {
    if rotate90 {
        transpose::<true>(dst, src)
    } else {
        transpose::<false>(dst, src)
    }
}

fn transpose<const ROTATE90: bool>(dst: &mut PlaneMut<'_>, src: &Plane<'_>) -> Result<()> {
    if dst.w != src.h || dst.h != src.w {
        return Err(Error::InvalidArgument);
    }
    // Destination columns `0..full_w` are covered by whole tiles; the rest is an edge strip.
    let full_w = dst.w - dst.w % TILE;
    let mut band = 0;
    while band < dst.h {
        let band_end = dst.h.min(band + BAND);
        let full_h = (band_end - band) - (band_end - band) % TILE;
        if full_w > 0 && full_h > 0 {
            band_tiles::<ROTATE90>(dst, src, band, full_h, full_w)?;
        }
        let mut u0 = 0;
        while u0 < dst.w {
            let tw = TILE.min(dst.w - u0);
            let mut v0 = band;
            while v0 < band_end {
                let th = TILE.min(band_end - v0);
                let whole = u0 + TILE <= full_w && v0 + TILE <= band + full_h;
                if !whole {
                    partial_tile::<ROTATE90>(dst, src, (v0, th), (u0, tw))?;
                }
                v0 += th;
            }
            u0 += tw;
        }
        band = band_end;
    }
    Ok(())
}

/// The whole tiles of one band: destination rows `band..band + rows`, columns `0..cols`, both
/// multiples of `TILE`. The source bytes those tiles read and the destination bytes they write
/// are sliced out (and thereby bounds-checked) once per band, then handed to the tile kernel.
fn band_tiles<const ROTATE90: bool>(
    dst: &mut PlaneMut<'_>,
    src: &Plane<'_>,
    band: usize,
    rows: usize,
    cols: usize,
) -> Result<()> {
    let dst_pitch = dst.pitch;
    let (src_block, dst_block) = blocks::<ROTATE90>(dst, src, (band, rows), (0, cols))?;
    transpose_tiles::<ROTATE90>(
        src_block,
        src.pitch,
        dst_block,
        dst_pitch,
        (rows / TILE, cols / TILE),
    )
}

/// The source bytes that destination rows `v0..v0 + rows`, columns `u0..u0 + cols` read and
/// the destination bytes they write, sliced out (bounds-checked) as the blocks the kernels
/// take: `cols` source rows of `rows` pixels, and `rows` destination rows of `cols` pixels.
fn blocks<'s, 'd, const ROTATE90: bool>(
    dst: &'d mut PlaneMut<'_>,
    src: &'s Plane<'_>,
    (v0, rows): (usize, usize),
    (u0, cols): (usize, usize),
) -> Result<(&'s [u8], &'d mut [u8])> {
    // Destination row `v` reads source column `w - 1 - v` (90) or `v` (270); destination
    // column `u` reads source row `u` (90) or `h - 1 - u` (270).
    let (first_row, first_col) = if ROTATE90 {
        let end = v0.checked_add(rows).ok_or(Error::OutOfBounds)?;
        (u0, src.w.checked_sub(end).ok_or(Error::OutOfBounds)?)
    } else {
        let end = u0.checked_add(cols).ok_or(Error::OutOfBounds)?;
        (src.h.checked_sub(end).ok_or(Error::OutOfBounds)?, v0)
    };
    let src_range = block_range(src.pitch, (first_row, first_col), (cols, rows))?;
    let dst_range = block_range(dst.pitch, (v0, u0), (rows, cols))?;
    let src_block = src.bytes.get(src_range).ok_or(Error::OutOfBounds)?;
    let dst_block = dst.bytes.get_mut(dst_range).ok_or(Error::OutOfBounds)?;
    Ok((src_block, dst_block))
}

/// A tile at the right or bottom edge, `th` x `tw` pixels (each at most `TILE`, not both
/// `TILE`). On x86_64 its part in whole 4x4 quads goes through the SSE2 quad kernel (the
/// 8-pixel strip at the right of a 1080-pixel-wide framebuffer, a few percent of a full
/// frame's time when copied pixel by pixel); the rest, and everything elsewhere, is copied
/// pixel by pixel.
fn partial_tile<const ROTATE90: bool>(
    dst: &mut PlaneMut<'_>,
    src: &Plane<'_>,
    (v0, th): (usize, usize),
    (u0, tw): (usize, usize),
) -> Result<()> {
    let (qh, qw) = if cfg!(target_arch = "x86_64") {
        (th - th % 4, tw - tw % 4)
    } else {
        (0, 0)
    };
    if qh == 0 || qw == 0 {
        return edge_tile::<ROTATE90>(dst, src, (v0, th), (u0, tw));
    }
    let dst_pitch = dst.pitch;
    let (src_block, dst_block) = blocks::<ROTATE90>(dst, src, (v0, qh), (u0, qw))?;
    transpose_quads::<ROTATE90>(src_block, src.pitch, dst_block, dst_pitch, (qh, qw))?;
    // What the quads left: the columns right of them over the tile's full height, and the
    // rows below them under the quads.
    edge_tile::<ROTATE90>(dst, src, (v0, th), (u0 + qw, tw - qw))?;
    edge_tile::<ROTATE90>(dst, src, (v0 + qh, th - qh), (u0, qw))
}

/// Bytes of `rows` rows of `cols` pixels starting at pixel `(x, y)`:
/// `(rows - 1) * pitch + cols * 4` bytes, the last row unpadded.
fn block_range(
    pitch: usize,
    (y, x): (usize, usize),
    (rows, cols): (usize, usize),
) -> Result<core::ops::Range<usize>> {
    let start = offset(pitch, y, x)?;
    let len = block_len(pitch, rows, cols).ok_or(Error::OutOfBounds)?;
    let end = start.checked_add(len).ok_or(Error::OutOfBounds)?;
    Ok(start..end)
}

/// `(rows - 1) * pitch + cols * 4`, or `None` for zero rows or on overflow.
fn block_len(pitch: usize, rows: usize, cols: usize) -> Option<usize> {
    pitch
        .checked_mul(rows.checked_sub(1)?)?
        .checked_add(cols.checked_mul(PX)?)
}

/// Where the tile in tile row `ti`, tile column `tj` of a block of `tiles_h` x `tiles_w`
/// destination tiles reads: the (row, column) of its top-left source pixel, in the source
/// block that [`band_tiles`] slices out (`tiles_w * TILE` rows of `tiles_h * TILE` pixels).
/// With `S(r, c)` the pixel at row `r`, column `c` of the tile's source and `D(i, j)` that of
/// its destination:
/// - 90 degrees: `D(i, j) = S(j, TILE - 1 - i)`;
/// - 270 degrees: `D(i, j) = S(TILE - 1 - j, i)`.
const fn tile_source<const ROTATE90: bool>(
    (tiles_h, tiles_w): (usize, usize),
    (ti, tj): (usize, usize),
) -> (usize, usize) {
    if ROTATE90 {
        (tj * TILE, (tiles_h - 1 - ti) * TILE)
    } else {
        ((tiles_w - 1 - tj) * TILE, ti * TILE)
    }
}

/// Transposes a block of `tiles_h` x `tiles_w` whole destination tiles. `src` holds
/// `tiles_w * TILE` source rows of `tiles_h * TILE` pixels, `src_pitch` apart; `dst` holds
/// `tiles_h * TILE` destination rows of `tiles_w * TILE` pixels. Tile mapping: see
/// [`tile_source`].
#[cfg(any(not(target_arch = "x86_64"), test))]
fn transpose_tiles_portable<const ROTATE90: bool>(
    src: &[u8],
    src_pitch: usize,
    dst: &mut [u8],
    dst_pitch: usize,
    (tiles_h, tiles_w): (usize, usize),
) -> Result<()> {
    for tj in 0..tiles_w {
        for ti in 0..tiles_h {
            let at = tile_source::<ROTATE90>((tiles_h, tiles_w), (ti, tj));
            let s = block_range(src_pitch, at, (TILE, TILE))?;
            let d = block_range(dst_pitch, (ti * TILE, tj * TILE), (TILE, TILE))?;
            let s = src.get(s).ok_or(Error::OutOfBounds)?;
            let d = dst.get_mut(d).ok_or(Error::OutOfBounds)?;
            transpose_tile_portable::<ROTATE90>(s, src_pitch, d, dst_pitch)?;
        }
    }
    Ok(())
}

/// Transposes one tile: `src` holds `TILE` source rows `src_pitch` apart starting at the
/// tile's top-left pixel, `dst` likewise for the destination; mapping as in [`tile_source`].
#[cfg(any(not(target_arch = "x86_64"), test))]
fn transpose_tile_portable<const ROTATE90: bool>(
    src: &[u8],
    src_pitch: usize,
    dst: &mut [u8],
    dst_pitch: usize,
) -> Result<()> {
    let mut runs: [&[Px]; TILE] = [&[]; TILE];
    for (j, run) in runs.iter_mut().enumerate() {
        let r = if ROTATE90 { j } else { TILE - 1 - j };
        let bytes = src
            .get(r * src_pitch..r * src_pitch + TILE * PX)
            .ok_or(Error::OutOfBounds)?;
        *run = <[Px]>::ref_from_bytes(bytes).map_err(|_| Error::OutOfBounds)?;
    }
    for i in 0..TILE {
        let c = if ROTATE90 { TILE - 1 - i } else { i };
        let bytes = dst
            .get_mut(i * dst_pitch..i * dst_pitch + TILE * PX)
            .ok_or(Error::OutOfBounds)?;
        let row = <[Px]>::mut_from_bytes(bytes).map_err(|_| Error::OutOfBounds)?;
        for (d, run) in row.iter_mut().zip(runs.iter()) {
            *d = *run.get(c).ok_or(Error::OutOfBounds)?;
        }
    }
    Ok(())
}

#[cfg(not(target_arch = "x86_64"))]
use transpose_tiles_portable as transpose_tiles;

/// Transposes a block of whole tiles; see the portable version for the layout. x86_64
/// variant: the block's bounds are checked once, then the SSE2 kernel walks its tiles.
#[cfg(target_arch = "x86_64")]
fn transpose_tiles<const ROTATE90: bool>(
    src: &[u8],
    src_pitch: usize,
    dst: &mut [u8],
    dst_pitch: usize,
    (tiles_h, tiles_w): (usize, usize),
) -> Result<()> {
    let rows = tiles_h.checked_mul(TILE).ok_or(Error::OutOfBounds)?;
    let cols = tiles_w.checked_mul(TILE).ok_or(Error::OutOfBounds)?;
    let src_ok = block_len(src_pitch, cols, rows).is_some_and(|need| src.len() >= need);
    let dst_ok = block_len(dst_pitch, rows, cols).is_some_and(|need| dst.len() >= need);
    if !src_ok || !dst_ok || src_pitch > isize::MAX as usize {
        return Err(Error::OutOfBounds);
    }
    // SAFETY: `src` was just checked to hold `tiles_w * TILE` rows of `tiles_h * TILE` pixels
    // at `src_pitch` (which fits an `isize`), and `dst` `tiles_h * TILE` rows of
    // `tiles_w * TILE` pixels at `dst_pitch`: the contract of `sse2::transpose_tiles`. The
    // function needs only SSE2, which every x86_64 processor implements (it is part of the
    // x86_64 baseline).
    unsafe {
        sse2::transpose_tiles::<ROTATE90>(src, src_pitch, dst, dst_pitch, (tiles_h, tiles_w))
    };
    Ok(())
}

/// Transposes a block of `rows` x `cols` destination pixels: `src` holds `cols` source rows
/// of `rows` pixels, `src_pitch` apart; `dst` holds `rows` destination rows of `cols` pixels,
/// `dst_pitch` apart. With `S(r, c)` a source pixel of the block and `D(i, j)` a destination
/// one: `D(i, j) = S(j, rows - 1 - i)` for 90 degrees, `S(cols - 1 - j, i)` for 270 (the
/// mapping of [`tile_source`] within one tile).
#[cfg(any(not(target_arch = "x86_64"), test))]
fn transpose_quads_portable<const ROTATE90: bool>(
    src: &[u8],
    src_pitch: usize,
    dst: &mut [u8],
    dst_pitch: usize,
    (rows, cols): (usize, usize),
) -> Result<()> {
    for i in 0..rows {
        let d = dst
            .get_mut(block_range(dst_pitch, (i, 0), (1, cols))?)
            .ok_or(Error::OutOfBounds)?;
        let d = <[Px]>::mut_from_bytes(d).map_err(|_| Error::OutOfBounds)?;
        for (j, d) in d.iter_mut().enumerate() {
            let at = if ROTATE90 {
                (j, rows - 1 - i)
            } else {
                (cols - 1 - j, i)
            };
            let s = src
                .get(block_range(src_pitch, at, (1, 1))?)
                .ok_or(Error::OutOfBounds)?;
            d.copy_from_slice(s);
        }
    }
    Ok(())
}

#[cfg(not(target_arch = "x86_64"))]
use transpose_quads_portable as transpose_quads;

/// Transposes a block of whole 4x4 quads; see the portable version for the layout. x86_64
/// variant: the block's bounds are checked once, then the SSE2 kernel copies it.
#[cfg(target_arch = "x86_64")]
fn transpose_quads<const ROTATE90: bool>(
    src: &[u8],
    src_pitch: usize,
    dst: &mut [u8],
    dst_pitch: usize,
    (rows, cols): (usize, usize),
) -> Result<()> {
    if rows % 4 != 0 || cols % 4 != 0 {
        return Err(Error::InvalidArgument);
    }
    let src_ok = block_len(src_pitch, cols, rows).is_some_and(|need| src.len() >= need);
    let dst_ok = block_len(dst_pitch, rows, cols).is_some_and(|need| dst.len() >= need);
    if !src_ok || !dst_ok {
        return Err(Error::OutOfBounds);
    }
    // SAFETY: `rows` and `cols` are multiples of 4, `src` was just checked to hold `cols` rows
    // of `rows` pixels at `src_pitch` and `dst` `rows` rows of `cols` pixels at `dst_pitch`
    // (the mutable borrow makes it unaliased): the contract of `sse2::transpose_quads`. SSE2
    // is part of the x86_64 baseline.
    unsafe {
        sse2::transpose_quads::<ROTATE90>(
            src.as_ptr(),
            src_pitch,
            dst.as_mut_ptr(),
            dst_pitch,
            (rows, cols),
        )
    };
    Ok(())
}

/// The SSE2 tile transpose.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use core::arch::x86_64::{
        __m128i, _mm_loadu_si128, _mm_prefetch, _mm_storeu_si128, _mm_unpackhi_epi32,
        _mm_unpackhi_epi64, _mm_unpacklo_epi32, _mm_unpacklo_epi64, _MM_HINT_T0,
    };

    use super::{tile_source, PX, TILE};

    /// How many tile columns ahead [`prefetch_dest`] reaches.
    const DEST_AHEAD: usize = 2;

    /// How many tiles ahead in the column walk [`prefetch_source`] reaches.
    const SOURCE_AHEAD: usize = 2;

    /// Blocks at most this many tiles wide (64 destination columns: a 64x64 dirty rect) are
    /// walked tile row by tile row; wider ones tile column by tile column.
    const ROW_ORDER_MAX_TILES: usize = 4;

    /// Transposes the tiles of a block. A wide block (a band of a large rect) is walked tile
    /// column by tile column: each reads `TILE` source rows over the band's width and writes a
    /// strip of every destination row of the band, with the source rows of the tile two ahead
    /// and the destination lines two columns ahead prefetched. A narrow block (a small dirty
    /// rect, where a few columns ahead is already past its end) is walked tile row by tile
    /// row: each writes `TILE` whole destination rows and prefetches the source of the next
    /// tile row. Each order measured best on its own shape and worst on the other's.
    ///
    /// # Safety
    ///
    /// With `rows = tiles_h * TILE` and `cols = tiles_w * TILE` (no overflow):
    /// `src.len() >= (cols - 1) * src_pitch + rows * 4`, `src_pitch <= isize::MAX`,
    /// `dst.len() >= (rows - 1) * dst_pitch + cols * 4`; the processor supports SSE2.
    #[target_feature(enable = "sse2")]
    pub(super) unsafe fn transpose_tiles<const ROTATE90: bool>(
        src: &[u8],
        src_pitch: usize,
        dst: &mut [u8],
        dst_pitch: usize,
        tiles: (usize, usize),
    ) {
        let (tiles_h, tiles_w) = tiles;
        let src = src.as_ptr();
        let dst = dst.as_mut_ptr();
        let block = Block {
            src,
            src_pitch,
            dst,
            dst_pitch,
            tiles,
        };
        if tiles_w <= ROW_ORDER_MAX_TILES {
            for ti in 0..tiles_h {
                for tj in 0..tiles_w {
                    // SAFETY: `ti < tiles_h`, `tj < tiles_w`, and `block` describes the
                    // caller's slices (caller contract).
                    unsafe { block.tile::<ROTATE90, true>(ti, tj) };
                }
            }
        } else {
            for tj in 0..tiles_w {
                for ti in 0..tiles_h {
                    // SAFETY: as above.
                    unsafe { block.tile::<ROTATE90, false>(ti, tj) };
                }
            }
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
        /// Prefetches for the tiles ahead in the walk (`ROW_ORDER` as in [`transpose_tiles`])
        /// and transposes tile `(ti, tj)`.
        ///
        /// # Safety
        ///
        /// The block's pointers and sizes meet the contract of [`transpose_tiles`];
        /// `ti < tiles_h`, `tj < tiles_w`.
        #[target_feature(enable = "sse2")]
        #[inline]
        unsafe fn tile<const ROTATE90: bool, const ROW_ORDER: bool>(&self, ti: usize, tj: usize) {
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
            // SAFETY: `s` and `d` start whole tiles inside the source and destination
            // (above), which the caller's slices cover, the destination uniquely.
            unsafe { transpose_tile::<ROTATE90>(s, self.src_pitch, d, self.dst_pitch) };
        }

        /// In the column walk, fetches the source rows of the tile [`SOURCE_AHEAD`] tiles after
        /// `(ti, tj)`: further down the same tile column, or at the top of the next one. Two
        /// tiles ahead (half a column of a 64-row band), with the destination two columns
        /// ahead, measured 5-9% faster on the full frame than the next column's same tile (a
        /// whole column ahead) with the destination three columns ahead; much further ahead
        /// the lines are evicted again before use.
        #[target_feature(enable = "sse2")]
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
                // SAFETY: a prefetch never faults, whatever the address. (Rust 1.91 and
                // earlier declare `_mm_prefetch` unsafe; the block keeps the crate building
                // with them, down to its `rust-version`.)
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
    #[target_feature(enable = "sse2")]
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
            // SAFETY: a prefetch never faults, whatever the address. (Rust 1.91 and earlier
            // declare `_mm_prefetch` unsafe; the block keeps the crate building with them, down
            // to its `rust-version`.)
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
    #[target_feature(enable = "sse2")]
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
}

/// Copies destination rows `v0..v0 + th`, columns `u0..u0 + tw` (each at most `TILE`; either
/// may be zero) pixel by pixel, every row and run checked.
fn edge_tile<const ROTATE90: bool>(
    dst: &mut PlaneMut<'_>,
    src: &Plane<'_>,
    (v0, th): (usize, usize),
    (u0, tw): (usize, usize),
) -> Result<()> {
    if th == 0 || tw == 0 {
        return Ok(());
    }
    // Destination column `u0 + j` reads one run of `th` pixels of source row `u0 + j` (90) or
    // `h - 1 - u0 - j` (270), starting at column `w - v0 - th` (90) or `v0` (270).
    let oob = || Error::OutOfBounds;
    let run_start = if ROTATE90 {
        src.w.checked_sub(v0 + th).ok_or_else(oob)?
    } else {
        v0
    };
    let mut runs: [&[Px]; TILE] = [&[]; TILE];
    for (j, run) in runs.iter_mut().enumerate().take(tw) {
        let row = if ROTATE90 {
            u0 + j
        } else {
            src.h.checked_sub(1 + u0 + j).ok_or_else(oob)?
        };
        *run = src.pixels(row, run_start, th)?;
    }
    for i in 0..th {
        let k = if ROTATE90 { th - 1 - i } else { i };
        let d = dst.pixels(v0 + i, u0, tw)?;
        for (d, run) in d.iter_mut().zip(runs.iter()) {
            *d = *run.get(k).ok_or(Error::OutOfBounds)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// The portable block kernel (used off x86_64) and the one this build uses agree, on
    /// blocks narrow and wide enough for both walk orders of the SSE2 kernel, with pitches
    /// that are not multiples of 64 and a last row without padding.
    #[test]
    fn portable_and_native_tile_transposes_agree() {
        for (tiles_h, tiles_w) in [(1, 1), (1, 3), (3, 1), (2, 3), (3, 4), (2, 5), (1, 7)] {
            let (rows, cols) = (tiles_h * TILE, tiles_w * TILE);
            let (sp, dp) = (rows * PX + 12, cols * PX + 4);
            let src_len = block_len(sp, cols, rows).unwrap();
            let dst_len = block_len(dp, rows, cols).unwrap();
            let src: Vec<u8> = (0..src_len).map(|i| (i * 13 + 7) as u8).collect();
            for rotate90 in [false, true] {
                let mut native = vec![0u8; dst_len];
                let mut portable = vec![0u8; dst_len];
                let tiles = (tiles_h, tiles_w);
                if rotate90 {
                    transpose_tiles::<true>(&src, sp, &mut native, dp, tiles).unwrap();
                    transpose_tiles_portable::<true>(&src, sp, &mut portable, dp, tiles).unwrap();
                } else {
                    transpose_tiles::<false>(&src, sp, &mut native, dp, tiles).unwrap();
                    transpose_tiles_portable::<false>(&src, sp, &mut portable, dp, tiles).unwrap();
                }
                assert_eq!(native, portable);
                // D(0, 1) is S(1, rows - 1) for 90 degrees and S(cols - 2, 0) for 270.
                let (r, c) = if rotate90 {
                    (1, rows - 1)
                } else {
                    (cols - 2, 0)
                };
                assert_eq!(
                    native[PX..2 * PX],
                    src[r * sp + c * PX..r * sp + c * PX + PX]
                );
            }
        }
    }

    /// The quad kernel that copies the whole-quad part of edge tiles (SSE2 on x86_64) agrees
    /// with the per-pixel version on blocks of every quad shape an edge tile can have, with
    /// pitches that are not multiples of 16 and a last row without padding, and puts a known
    /// pixel where the rotation says.
    #[test]
    fn quad_kernel_matches_the_per_pixel_transpose() {
        for rows in [4, 8, 12, 16] {
            for cols in [4, 8, 12, 16] {
                let (sp, dp) = (rows * PX + 12, cols * PX + 8);
                let src_len = block_len(sp, cols, rows).unwrap();
                let dst_len = block_len(dp, rows, cols).unwrap();
                let src: Vec<u8> = (0..src_len).map(|i| (i * 29 + 3) as u8).collect();
                for rotate90 in [false, true] {
                    let mut native = vec![0u8; dst_len];
                    let mut portable = vec![0u8; dst_len];
                    let shape = (rows, cols);
                    if rotate90 {
                        transpose_quads::<true>(&src, sp, &mut native, dp, shape).unwrap();
                        transpose_quads_portable::<true>(&src, sp, &mut portable, dp, shape)
                            .unwrap();
                    } else {
                        transpose_quads::<false>(&src, sp, &mut native, dp, shape).unwrap();
                        transpose_quads_portable::<false>(&src, sp, &mut portable, dp, shape)
                            .unwrap();
                    }
                    assert_eq!(native, portable, "{rows}x{cols} rotate90 {rotate90}");
                    // D(1, 2) is S(2, rows - 2) for 90 degrees and S(cols - 3, 1) for 270.
                    let (r, c) = if rotate90 {
                        (2, rows - 2)
                    } else {
                        (cols - 3, 1)
                    };
                    let d = dp + 2 * PX;
                    let s = r * sp + c * PX;
                    assert_eq!(native[d..d + PX], src[s..s + PX]);
                }
            }
        }
    }

    /// A 16x16 quad block is a tile: the quad kernels and the tile kernels agree on it.
    #[test]
    fn a_tile_sized_quad_block_is_transposed_like_a_tile() {
        let (sp, dp) = (TILE * PX + 20, TILE * PX + 36);
        let src: Vec<u8> = (0..block_len(sp, TILE, TILE).unwrap())
            .map(|i| (i * 7 + 1) as u8)
            .collect();
        let dst_len = block_len(dp, TILE, TILE).unwrap();
        let (mut quads, mut tiles) = (vec![0u8; dst_len], vec![0u8; dst_len]);
        transpose_quads::<true>(&src, sp, &mut quads, dp, (TILE, TILE)).unwrap();
        transpose_tiles_portable::<true>(&src, sp, &mut tiles, dp, (1, 1)).unwrap();
        assert_eq!(quads, tiles);
        transpose_quads::<false>(&src, sp, &mut quads, dp, (TILE, TILE)).unwrap();
        transpose_tiles_portable::<false>(&src, sp, &mut tiles, dp, (1, 1)).unwrap();
        assert_eq!(quads, tiles);
    }

    #[test]
    fn quad_kernels_reject_short_slices_and_partial_quads() {
        let pitch = 8 * PX;
        let need = block_len(pitch, 8, 8).unwrap();
        let (src, mut dst) = (vec![0u8; need], vec![0u8; need]);
        let (short_src, mut short_dst) = (vec![0u8; need - 1], vec![0u8; need - 1]);
        assert_eq!(
            transpose_quads::<true>(&short_src, pitch, &mut dst, pitch, (8, 8)),
            Err(Error::OutOfBounds)
        );
        assert_eq!(
            transpose_quads::<false>(&src, pitch, &mut short_dst, pitch, (8, 8)),
            Err(Error::OutOfBounds)
        );
        assert_eq!(
            transpose_quads_portable::<true>(&short_src, pitch, &mut dst, pitch, (8, 8)),
            Err(Error::OutOfBounds)
        );
        assert_eq!(
            transpose_quads_portable::<false>(&src, pitch, &mut short_dst, pitch, (8, 8)),
            Err(Error::OutOfBounds)
        );
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            transpose_quads::<true>(&src, pitch, &mut dst, pitch, (8, 6)),
            Err(Error::InvalidArgument)
        );
    }

    #[test]
    fn tile_kernels_reject_short_slices() {
        let pitch = 2 * TILE * PX;
        let need = block_len(pitch, 2 * TILE, 2 * TILE).unwrap();
        let src = vec![0u8; need - 1];
        let mut dst = vec![0u8; need];
        assert_eq!(
            transpose_tiles::<true>(&src, pitch, &mut dst, pitch, (2, 2)),
            Err(Error::OutOfBounds)
        );
        assert_eq!(
            transpose_tiles_portable::<true>(&src, pitch, &mut dst, pitch, (2, 2)),
            Err(Error::OutOfBounds)
        );
        let src = vec![0u8; need];
        let mut dst = vec![0u8; need - 1];
        assert_eq!(
            transpose_tiles::<false>(&src, pitch, &mut dst, pitch, (2, 2)),
            Err(Error::OutOfBounds)
        );
        assert_eq!(
            transpose_tiles_portable::<false>(&src, pitch, &mut dst, pitch, (2, 2)),
            Err(Error::OutOfBounds)
        );
    }
}
