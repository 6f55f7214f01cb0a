//! The copy loops behind [`super::blit_rect`]: straight row copies, reversed rows for 180
//! degrees, and a tiled transpose for 90 and 270 degrees.
//!
//! Callers validate rectangles first; the planes here then see only in-range rows. Every slice
//! is still taken with `get`, so a logic error surfaces as [`Error::OutOfBounds`], never as a
//! panic. Those checks sit at row or tile granularity, outside the per-pixel loops.

use zerocopy::FromBytes;

use super::{Span, BYTES_PER_PIXEL};
use crate::error::{Error, Result};

/// One 32-bit pixel, copied as an opaque unit.
type Px = [u8; 4];

/// Edge length of the square tiles of the rotated copy, in pixels. 16 pixels are one 64-byte
/// cache line per tile row, so a tile reads 16 whole lines and writes 16 whole lines.
const TILE: usize = 16;

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
        let bytes = self
            .bytes
            .get(range)
            .ok_or(Error::OutOfBounds)?;
        <[Px]>::ref_from_bytes(bytes).map_err(|_| Error::OutOfBounds)
    }

    /// [`TILE`] pixels of row `y` starting at column `x`, as a fixed-size array so the tile
    /// loop indexes without checks.
    fn tile_row(&self, y: usize, x: usize) -> Result<&'a [Px; TILE]> {
        let range = run(offset(self.pitch, y, x)?, TILE)?;
        let bytes = self
            .bytes
            .get(range)
            .ok_or(Error::OutOfBounds)?;
        <[Px; TILE]>::ref_from_bytes(bytes).map_err(|_| Error::OutOfBounds)
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
        let bytes = self
            .bytes
            .get_mut(range)
            .ok_or(Error::OutOfBounds)?;
        <[Px]>::mut_from_bytes(bytes).map_err(|_| Error::OutOfBounds)
    }

    fn tile_row(&mut self, y: usize, x: usize) -> Result<&mut [Px; TILE]> {
        let range = run(offset(self.pitch, y, x)?, TILE)?;
        let bytes = self
            .bytes
            .get_mut(range)
            .ok_or(Error::OutOfBounds)?;
        <[Px; TILE]>::mut_from_bytes(bytes).map_err(|_| Error::OutOfBounds)
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
    let mut v0 = 0;
    while v0 < dst.h {
        let th = TILE.min(dst.h - v0);
        let run_start = if ROTATE90 { src.w - v0 - th } else { v0 };
        let mut u0 = 0;
        while u0 < dst.w {
            let tw = TILE.min(dst.w - u0);
            let src_row = |j: usize| if ROTATE90 { u0 + j } else { src.h - 1 - u0 - j };
            if tw == TILE && th == TILE {
                full_tile::<ROTATE90>(dst, src, v0, u0, run_start, src_row)?;
            } else {
                edge_tile::<ROTATE90>(dst, src, (v0, th), (u0, tw), run_start, src_row)?;
            }
            u0 += tw;
        }
        v0 += th;
    }
    Ok(())
}

fn full_tile<const ROTATE90: bool>(
    dst: &mut PlaneMut<'_>,
    src: &Plane<'_>,
    v0: usize,
    u0: usize,
    run_start: usize,
    src_row: impl Fn(usize) -> usize,
) -> Result<()> {
    const ZERO_RUN: [Px; TILE] = [[0; PX]; TILE];
    let mut runs: [&[Px; TILE]; TILE] = [&ZERO_RUN; TILE];
    for (j, run) in runs.iter_mut().enumerate() {
        *run = src.tile_row(src_row(j), run_start)?;
    }
    for i in 0..TILE {
        let k = if ROTATE90 { TILE - 1 - i } else { i };
        let d = dst.tile_row(v0 + i, u0)?;
        for (d, run) in d.iter_mut().zip(runs.iter()) {
            *d = run[k];
        }
    }
    Ok(())
}

fn edge_tile<const ROTATE90: bool>(
    dst: &mut PlaneMut<'_>,
    src: &Plane<'_>,
    (v0, th): (usize, usize),
    (u0, tw): (usize, usize),
    run_start: usize,
    src_row: impl Fn(usize) -> usize,
) -> Result<()> {
    let mut runs: [&[Px]; TILE] = [&[]; TILE];
    for (j, run) in runs.iter_mut().enumerate().take(tw) {
        *run = src.pixels(src_row(j), run_start, th)?;
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
