//! The copy loops behind [`super::blit_rect`]: straight row copies, reversed rows for 180
//! degrees, and a tiled transpose for 90 and 270 degrees.
//!
//! Callers validate rectangles first; the planes here then see only in-range rows. Every row,
//! edge tile or block of whole tiles is still sliced out with `get`, so a logic error surfaces
//! as [`Error::OutOfBounds`], never as a panic or a stray write. Those checks sit at row, edge
//! tile or band granularity, outside the per-pixel loops. The one unchecked access is the
//! x86_64 SIMD kernels (`x86.rs`: a band's tiles, an edge tile's quads), which read and write
//! 16- and 32-byte pieces of a block whose slices were length-checked just before (see their
//! `# Safety` sections).
//!
//! # The rotated copy
//!
//! The destination is cut into bands of [`BAND`] rows; the whole 16x16 tiles of a band form one
//! block, sliced out once and handed to the tile walk of `x86.rs`, which transposes each tile
//! with SSE2 (4x4 quads) or, when the caller allows it and the processor has it, AVX2 (8x8
//! blocks). Of the tiles at the right and bottom edges that are not whole, the part made of
//! whole 4x4 quads goes through the SSE2 transposes (on x86_64) and the rest, at most 3 pixels
//! wide or high, through a checked per-pixel loop. A 64x64 dirty rect is one block of 16
//! tiles.
//!
//! The copy is bound by how its reads and writes overlap, and by its instructions: with one
//! 64x64 rect copied over and over (all in L1/L2) the SSE2 tile ran at about 25 GB/s, the AVX2
//! tile at 30 and a row-by-row memcpy at 38. On an L3-resident frame each tile's 64 stores miss,
//! fill the store buffer and hold back the next tiles' loads, so reads and writes take turns;
//! hence the prefetches: in wide blocks the source of the tile two ahead in the walk and the
//! destination lines two tile columns ahead, in narrow ones the source of the next tile row.
//! Wide blocks are walked tile column by tile column, narrow ones (small rects) tile row by tile
//! row; each order measured best on its own shape.
//!
//! Measured on the `present` benchmark (1920x1080, L3-resident): the unrotated copy runs at
//! memcpy speed, the rotated one at 0.64-0.70 of it on the full frame with AVX2 (0.60-0.63 with
//! SSE2); on 100 scattered 64x64 rects both rotated and unrotated copies are bound by the
//! rows' scatter (each row a new page). See `benches/present.rs` and the README, which also
//! lists what else was tried (non-temporal stores, other walks, bands and prefetches) and what
//! it measured.

use zerocopy::FromBytes;

use super::{Simd, Span, BYTES_PER_PIXEL};
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
///
/// The whole tiles use AVX2 when `simd` allows it and [`avx2_usable`] says it can run.
pub(super) fn copy_transposed(
    dst: &mut PlaneMut<'_>,
    src: &Plane<'_>,
    rotate90: bool,
    simd: Simd,
) -> Result<()> {
    let avx2 = simd.allows_avx2() && avx2_usable();
    if rotate90 {
        transpose::<true>(dst, src, avx2)
    } else {
        transpose::<false>(dst, src, avx2)
    }
}

/// Whether AVX2 can run here; see [`super::avx2_usable`].
#[cfg(target_arch = "x86_64")]
pub(super) use x86::avx2_usable;

#[cfg(not(target_arch = "x86_64"))]
fn avx2_usable() -> bool {
    false
}

fn transpose<const ROTATE90: bool>(
    dst: &mut PlaneMut<'_>,
    src: &Plane<'_>,
    avx2: bool,
) -> Result<()> {
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
            band_tiles::<ROTATE90>(dst, src, (band, full_h), full_w, avx2)?;
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
    (band, rows): (usize, usize),
    cols: usize,
    avx2: bool,
) -> Result<()> {
    let dst_pitch = dst.pitch;
    let (src_block, dst_block) = blocks::<ROTATE90>(dst, src, (band, rows), (0, cols))?;
    transpose_tiles::<ROTATE90>(
        src_block,
        src.pitch,
        dst_block,
        dst_pitch,
        (rows / TILE, cols / TILE),
        avx2,
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
            // A tile is a block of whole quads, mapped as `tile_source` maps it within one.
            transpose_quads_portable::<ROTATE90>(s, src_pitch, d, dst_pitch, (TILE, TILE))?;
        }
    }
    Ok(())
}

/// Transposes a block of whole tiles; see the portable version for the layout. Off x86_64
/// there is only the portable kernel, and `avx2` is always false.
#[cfg(not(target_arch = "x86_64"))]
fn transpose_tiles<const ROTATE90: bool>(
    src: &[u8],
    src_pitch: usize,
    dst: &mut [u8],
    dst_pitch: usize,
    tiles: (usize, usize),
    _avx2: bool,
) -> Result<()> {
    transpose_tiles_portable::<ROTATE90>(src, src_pitch, dst, dst_pitch, tiles)
}

/// Transposes a block of whole tiles; see the portable version for the layout. x86_64
/// variant: the block's bounds are checked once, then the SSE2 kernel walks its tiles, or
/// the AVX2 one when `avx2` is set (which the caller sets only when [`avx2_usable`]).
#[cfg(target_arch = "x86_64")]
fn transpose_tiles<const ROTATE90: bool>(
    src: &[u8],
    src_pitch: usize,
    dst: &mut [u8],
    dst_pitch: usize,
    (tiles_h, tiles_w): (usize, usize),
    avx2: bool,
) -> Result<()> {
    let rows = tiles_h.checked_mul(TILE).ok_or(Error::OutOfBounds)?;
    let cols = tiles_w.checked_mul(TILE).ok_or(Error::OutOfBounds)?;
    let src_ok = block_len(src_pitch, cols, rows).is_some_and(|need| src.len() >= need);
    let dst_ok = block_len(dst_pitch, rows, cols).is_some_and(|need| dst.len() >= need);
    if !src_ok || !dst_ok || src_pitch > isize::MAX as usize {
        return Err(Error::OutOfBounds);
    }
    // Checked here again rather than trusted: running AVX2 instructions on a processor
    // without them would be an invalid-opcode fault.
    let avx2 = avx2 && avx2_usable();
    // SAFETY: `src` was just checked to hold `tiles_w * TILE` rows of `tiles_h * TILE` pixels
    // at `src_pitch` (which fits an `isize`), and `dst` `tiles_h * TILE` rows of
    // `tiles_w * TILE` pixels at `dst_pitch`: the contract of `x86::transpose_tiles`. SSE2 is
    // part of the x86_64 baseline, and AVX2 is asked for only where `avx2_usable` found it.
    unsafe {
        x86::transpose_tiles::<ROTATE90>(src, src_pitch, dst, dst_pitch, (tiles_h, tiles_w), avx2)
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
    // (the mutable borrow makes it unaliased): the contract of `x86::transpose_quads`. SSE2
    // is part of the x86_64 baseline.
    unsafe {
        x86::transpose_quads::<ROTATE90>(
            src.as_ptr(),
            src_pitch,
            dst.as_mut_ptr(),
            dst_pitch,
            (rows, cols),
        )
    };
    Ok(())
}

#[cfg(target_arch = "x86_64")]
mod x86;

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
mod tests;
