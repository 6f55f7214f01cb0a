//! Pixel copies of the display-only present path: dirty rects and move rects from the
//! desktop image the OS hands to `DxgkDdiPresentDisplayOnly` into the scanout framebuffer,
//! with the present path's rotation applied.
//!
//! Every pixel is 32 bits (B8G8R8X8 in the framebuffer, B8G8R8A8 in the OS source surface; the
//! X/A byte is copied unchanged). Rectangles use Windows `RECT` semantics: `right` and `bottom`
//! are exclusive. A rectangle is checked against both surfaces before a single byte is written,
//! so a rejected call leaves the framebuffer untouched.
//!
//! # Rotation
//!
//! [`Rotation`] follows `D3DKMDT_VIDPN_PRESENT_PATH_ROTATION`: the source surface is in the
//! desktop's orientation, and the framebuffer (what the device scans out) holds the desktop
//! image rotated **counter-clockwise** by the angle. This is what Microsoft's documentation
//! states ("ROTATE90: the rotation angle is 90 degrees counter-clockwise") and what the KMDOD
//! sample's `GetRowStart` computes. Seen the other way round, a monitor physically turned 90
//! degrees clockwise (portrait) shows the desktop upright when the path uses `Rotate90`.
//!
//! For a source of `W` x `H` pixels, source pixel `(x, y)` lands at framebuffer pixel:
//!
//! | rotation    | framebuffer size | framebuffer pixel        |
//! |-------------|------------------|--------------------------|
//! | `Identity`  | `W` x `H`        | `(x, y)`                 |
//! | `Rotate90`  | `H` x `W`        | `(y, W - 1 - x)`         |
//! | `Rotate180` | `W` x `H`        | `(W - 1 - x, H - 1 - y)` |
//! | `Rotate270` | `H` x `W`        | `(H - 1 - y, x)`         |
//!
//! So with `Rotate90` the desktop's top row becomes the framebuffer's left column, read from
//! bottom to top. The framebuffer may be larger than the rotated source (the image then sits in
//! its top-left corner), never smaller where a rectangle lands.
//!
//! # Move rects
//!
//! In display-only present the source surface already holds the complete new desktop image;
//! the move rects only tell which screen areas were scrolled. Copying `DestRect` from the
//! source therefore gives exactly the pixels a screen-to-screen move would give, needs no read
//! of the framebuffer (which may be rotated, or partly stale after a mode change), and cannot
//! go wrong with overlapping source and destination. KMDOD does the same. [`move_rect`] still
//! checks that the rectangle the OS names as the move's source lies inside the surface, so a
//! malformed move descriptor is reported instead of silently accepted.

//!
//! # Vector registers
//!
//! The 90 and 270 degree copies are SIMD transposes. On x86_64 they use SSE2 (XMM registers),
//! part of the x86_64 baseline, unless the caller's [`BlitMode`] carries a [`Simd`] made by
//! [`Simd::avx2_state_saved`]: then, where the processor and the OS support AVX2
//! ([`avx2_usable`]), a tile with YMM
//! registers and half the instructions runs instead. Kernel code may use the XMM registers
//! freely but must save the YMM state around any use (`KeSaveExtendedProcessorState`), which
//! is why the choice is the caller's. Both produce the same pixels.

mod kernels;
#[cfg(test)]
mod tests;

use crate::error::{Error, Result};

/// Bytes per pixel of every surface this module handles.
pub const BYTES_PER_PIXEL: u32 = 4;

/// A rectangle in Windows `RECT` form: `left`/`top` inclusive, `right`/`bottom` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Rect {
    /// First column.
    pub left: i32,
    /// First row.
    pub top: i32,
    /// One past the last column.
    pub right: i32,
    /// One past the last row.
    pub bottom: i32,
}

impl Rect {
    /// The empty rectangle at the origin; what a no-op blit reports as its destination.
    pub const EMPTY: Rect = Rect::new(0, 0, 0, 0);

    /// A rectangle from its four edges.
    pub const fn new(left: i32, top: i32, right: i32, bottom: i32) -> Self {
        Rect {
            left,
            top,
            right,
            bottom,
        }
    }

    /// True when the rectangle covers no pixel (zero or negative width or height).
    pub const fn is_empty(&self) -> bool {
        self.right <= self.left || self.bottom <= self.top
    }

    /// Width in pixels, 0 when empty or inverted.
    pub const fn width(&self) -> u32 {
        if self.right > self.left {
            self.right.abs_diff(self.left)
        } else {
            0
        }
    }

    /// Height in pixels, 0 when empty or inverted.
    pub const fn height(&self) -> u32 {
        if self.bottom > self.top {
            self.bottom.abs_diff(self.top)
        } else {
            0
        }
    }
}

/// A point in surface coordinates (`D3DKMT_MOVE_RECT::SourcePoint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Point {
    /// Column.
    pub x: i32,
    /// Row.
    pub y: i32,
}

/// Rotation of a present path (`D3DKMDT_VIDPN_PRESENT_PATH_ROTATION`); see the module docs for
/// the exact pixel mapping. Angles are counter-clockwise, as in the Windows headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Rotation {
    /// `D3DKMDT_VPPR_IDENTITY`: no rotation.
    #[default]
    Identity,
    /// `D3DKMDT_VPPR_ROTATE90`: the desktop appears rotated 90 degrees counter-clockwise in the
    /// framebuffer.
    Rotate90,
    /// `D3DKMDT_VPPR_ROTATE180`.
    Rotate180,
    /// `D3DKMDT_VPPR_ROTATE270`: 270 degrees counter-clockwise (90 clockwise).
    Rotate270,
}

impl Rotation {
    /// Maps a `D3DKMDT_VIDPN_PRESENT_PATH_ROTATION` value (1 = identity .. 4 = rotate 270).
    /// The Windows 8.1 `*_OFFSET*` values and `UNINITIALIZED`/`UNPINNED`/`NOTSPECIFIED` are
    /// rejected with [`Error::InvalidArgument`]: the driver does not report offset support.
    pub const fn from_vppr(value: u32) -> Result<Self> {
        match value {
            1 => Ok(Rotation::Identity),
            2 => Ok(Rotation::Rotate90),
            3 => Ok(Rotation::Rotate180),
            4 => Ok(Rotation::Rotate270),
            _ => Err(Error::InvalidArgument),
        }
    }

    /// True when the framebuffer's width and height are the source's height and width.
    pub const fn swaps_axes(self) -> bool {
        matches!(self, Rotation::Rotate90 | Rotation::Rotate270)
    }

    /// The framebuffer size `(width, height)` that shows a `src_w` x `src_h` desktop.
    pub const fn framebuffer_size(self, src_w: u32, src_h: u32) -> (u32, u32) {
        if self.swaps_axes() {
            (src_h, src_w)
        } else {
            (src_w, src_h)
        }
    }
}

/// The vector registers a copy may use beyond the x86_64 baseline (see the module docs).
///
/// [`Simd::BASELINE`] is free to use anywhere. A value that allows AVX2 comes only from the
/// unsafe [`Simd::avx2_state_saved`], whose contract is the kernel's rule for YMM registers,
/// so no AVX2 copy can be asked for without an `unsafe` block that answers for the saved
/// state. (The value is `Copy`: keeping it inside the save is that block's promise, which the
/// compiler does not check.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Simd(SimdLevel);

/// What a [`Simd`] allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
enum SimdLevel {
    #[default]
    Baseline,
    Avx2,
}

impl Simd {
    /// The baseline: SSE2 on x86_64 (XMM registers, which kernel code may use at any IRQL
    /// without saving them), portable code elsewhere.
    pub const BASELINE: Simd = Simd(SimdLevel::Baseline);

    /// AVX2 (YMM registers) where [`avx2_usable`] says the processor and the OS support it,
    /// the baseline elsewhere.
    ///
    /// # Safety
    ///
    /// In kernel mode the caller holds a saved AVX state (`KeSaveExtendedProcessorState` with
    /// `XSTATE_MASK_AVX`) on this thread for as long as any copy made with the returned value
    /// runs: without it the copy overwrites the upper halves of the YMM registers of the
    /// thread it interrupted. A user-mode process has nothing to save, and there any caller
    /// meets the contract.
    pub const unsafe fn avx2_state_saved() -> Simd {
        Simd(SimdLevel::Avx2)
    }

    /// Whether copies made with this value may use AVX2 (where [`avx2_usable`]).
    pub const fn allows_avx2(self) -> bool {
        matches!(self.0, SimdLevel::Avx2)
    }
}

/// How a copy goes from the source surface into the framebuffer: the path's rotation and the
/// vector registers the copy may use. A bare [`Rotation`] converts into one with
/// [`Simd::BASELINE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct BlitMode {
    /// The present path's rotation.
    pub rotation: Rotation,
    /// The vector registers allowed.
    pub simd: Simd,
}

impl From<Rotation> for BlitMode {
    fn from(rotation: Rotation) -> Self {
        BlitMode {
            rotation,
            simd: Simd::BASELINE,
        }
    }
}

/// True when AVX2 instructions can run here: on x86_64, a processor with AVX2 whose OS has
/// enabled the YMM state (asked once with CPUID and XGETBV, then remembered); never elsewhere.
/// Under Miri, which cannot run CPUID, only when the build enables `avx2`. A copy whose
/// [`Simd`] allows AVX2 uses them only then.
pub fn avx2_usable() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        kernels::avx2_usable()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Checks the geometry shared by [`Surface`] and [`SurfaceMut`]; returns the number of bytes
/// the surface spans (`pitch * (height - 1) + width * 4`).
fn check_geometry(len: usize, width: u32, height: u32, pitch: u32) -> Result<usize> {
    if width == 0 || height == 0 || i32::try_from(width).is_err() || i32::try_from(height).is_err()
    {
        return Err(Error::InvalidArgument);
    }
    let row_bytes = width
        .checked_mul(BYTES_PER_PIXEL)
        .ok_or(Error::InvalidArgument)?;
    if pitch < row_bytes {
        return Err(Error::InvalidArgument);
    }
    let span = usize::try_from(pitch)
        .ok()
        .and_then(|p| p.checked_mul(usize::try_from(height - 1).ok()?))
        .and_then(|s| s.checked_add(usize::try_from(row_bytes).ok()?))
        .ok_or(Error::InvalidArgument)?;
    if len < span {
        return Err(Error::OutOfBounds);
    }
    Ok(span)
}

/// A read-only 32-bit surface: `height` rows of `width` pixels, rows `pitch` bytes apart. It
/// may hold only some of its rows ([`Surface::rows`]): the present path reads the OS's surface
/// only where the present's rectangles lie, and a copy that reaches past the rows held fails
/// with [`Error::OutOfBounds`].
#[derive(Debug, Clone, Copy)]
pub struct Surface<'a> {
    /// The rows held, from the first one on.
    bytes: &'a [u8],
    width: u32,
    height: u32,
    pitch: u32,
    /// The first row `bytes` holds.
    first_held: u32,
    /// How many rows `bytes` holds.
    rows_held: u32,
}

impl<'a> Surface<'a> {
    /// Wraps `bytes` as a surface. Fails with [`Error::InvalidArgument`] for a zero size, a
    /// size beyond `i32::MAX`, a pitch below `width * 4` or a span that overflows, and with
    /// [`Error::OutOfBounds`] when `bytes` is shorter than `pitch * (height - 1) + width * 4`
    /// (the last row need not be padded to the full pitch).
    pub fn new(bytes: &'a [u8], width: u32, height: u32, pitch: u32) -> Result<Self> {
        Self::rows(bytes, width, height, pitch, 0..height)
    }

    /// Wraps `bytes` as rows `held` of a `width` x `height` surface: `bytes` starts at the
    /// first of them and holds `pitch * (rows - 1) + width * 4` bytes, nothing for an empty
    /// range. Fails like [`Surface::new`], and with [`Error::InvalidArgument`] when `held`
    /// is inverted or reaches past `height`.
    pub fn rows(
        bytes: &'a [u8],
        width: u32,
        height: u32,
        pitch: u32,
        held: core::ops::Range<u32>,
    ) -> Result<Self> {
        check_geometry(usize::MAX, width, height, pitch)?;
        if held.start > held.end || held.end > height {
            return Err(Error::InvalidArgument);
        }
        if !held.is_empty() {
            check_geometry(bytes.len(), width, held.end - held.start, pitch)?;
        }
        Ok(Surface {
            bytes,
            width,
            height,
            pitch,
            first_held: held.start,
            rows_held: held.end - held.start,
        })
    }

    /// The rows this surface holds.
    pub const fn rows_held(&self) -> core::ops::Range<u32> {
        self.first_held..self.first_held + self.rows_held
    }

    /// Whether every row of `rect` is held (an empty rect reads nothing: true).
    pub fn holds_rows_of(&self, rect: &Rect) -> bool {
        let held = self.rows_held();
        rect.is_empty()
            || (i64::from(rect.top) >= i64::from(held.start)
                && i64::from(rect.bottom) <= i64::from(held.end))
    }

    /// Width in pixels.
    pub const fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub const fn height(&self) -> u32 {
        self.height
    }

    /// Bytes from one row to the next.
    pub const fn pitch(&self) -> u32 {
        self.pitch
    }

    /// The underlying bytes: the rows held, from the first one on.
    pub const fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// A writable 32-bit surface (the framebuffer); same geometry rules as [`Surface`].
#[derive(Debug)]
pub struct SurfaceMut<'a> {
    bytes: &'a mut [u8],
    width: u32,
    height: u32,
    pitch: u32,
}

impl<'a> SurfaceMut<'a> {
    /// Wraps `bytes` as a writable surface; fails like [`Surface::new`].
    pub fn new(bytes: &'a mut [u8], width: u32, height: u32, pitch: u32) -> Result<Self> {
        check_geometry(bytes.len(), width, height, pitch)?;
        Ok(SurfaceMut {
            bytes,
            width,
            height,
            pitch,
        })
    }

    /// Width in pixels.
    pub const fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub const fn height(&self) -> u32 {
        self.height
    }

    /// Bytes from one row to the next.
    pub const fn pitch(&self) -> u32 {
        self.pitch
    }

    /// The underlying bytes.
    pub fn bytes(&self) -> &[u8] {
        self.bytes
    }

    /// A read-only view of the same pixels.
    pub fn as_surface(&self) -> Surface<'_> {
        Surface {
            bytes: self.bytes,
            width: self.width,
            height: self.height,
            pitch: self.pitch,
            first_held: 0,
            rows_held: self.height,
        }
    }
}

/// A non-empty rectangle already checked against a surface, in unsigned form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    x: usize,
    y: usize,
    w: usize,
    h: usize,
}

/// Checks `rect` against a `width` x `height` surface: `Ok(None)` when empty,
/// [`Error::InvalidArgument`] when inverted, [`Error::OutOfBounds`] when it sticks out.
fn check_rect(rect: &Rect, width: u32, height: u32) -> Result<Option<Span>> {
    if rect.right < rect.left || rect.bottom < rect.top {
        return Err(Error::InvalidArgument);
    }
    if rect.is_empty() {
        return Ok(None);
    }
    let inside = |lo: i32, hi: i32, limit: u32| -> Option<(usize, usize)> {
        let lo = u32::try_from(lo).ok()?;
        let hi = u32::try_from(hi).ok()?;
        if hi > limit {
            return None;
        }
        Some((usize::try_from(lo).ok()?, usize::try_from(hi - lo).ok()?))
    };
    let (x, w) = inside(rect.left, rect.right, width).ok_or(Error::OutOfBounds)?;
    let (y, h) = inside(rect.top, rect.bottom, height).ok_or(Error::OutOfBounds)?;
    Ok(Some(Span { x, y, w, h }))
}

/// Maps a rectangle in source (desktop) coordinates to framebuffer coordinates for a
/// `src_w` x `src_h` source; see the module docs for the mapping. Arithmetic saturates, so a
/// nonsensical input gives a nonsensical but well-defined output rather than a panic.
pub fn rotate_rect(rect: &Rect, rotation: Rotation, src_w: u32, src_h: u32) -> Rect {
    let w = i32::try_from(src_w).unwrap_or(i32::MAX);
    let h = i32::try_from(src_h).unwrap_or(i32::MAX);
    match rotation {
        Rotation::Identity => *rect,
        Rotation::Rotate90 => Rect::new(
            rect.top,
            w.saturating_sub(rect.right),
            rect.bottom,
            w.saturating_sub(rect.left),
        ),
        Rotation::Rotate180 => Rect::new(
            w.saturating_sub(rect.right),
            h.saturating_sub(rect.bottom),
            w.saturating_sub(rect.left),
            h.saturating_sub(rect.top),
        ),
        Rotation::Rotate270 => Rect::new(
            h.saturating_sub(rect.bottom),
            rect.left,
            h.saturating_sub(rect.top),
            rect.right,
        ),
    }
}

/// Copies `rect` (source coordinates) from `src` into `dst`, rotated by the mode's rotation
/// (a bare [`Rotation`] will do: see [`BlitMode`]), and returns
/// the rectangle it wrote in framebuffer coordinates (the dirty rect for the host transfer).
///
/// An empty rect is a no-op and returns [`Rect::EMPTY`]. An inverted rect fails with
/// [`Error::InvalidArgument`]; a rect outside `src`, or whose rotated image falls outside
/// `dst`, fails with [`Error::OutOfBounds`]. Nothing is written on failure.
pub fn blit_rect(
    dst: &mut SurfaceMut<'_>,
    src: &Surface<'_>,
    rect: &Rect,
    mode: impl Into<BlitMode>,
) -> Result<Rect> {
    let height = dst.height;
    blit_rect_into_band(dst, 0, height, src, rect, mode)
}

/// Like [`blit_rect`], for a framebuffer kept as bands of whole rows: `band` holds rows
/// `first_row..first_row + band.height` of a framebuffer `band.width` x `fb_height`. The
/// rotated image of `rect` must lie inside the band, else [`Error::OutOfBounds`]; the result
/// is in whole-framebuffer coordinates.
pub fn blit_rect_into_band(
    band: &mut SurfaceMut<'_>,
    first_row: u32,
    fb_height: u32,
    src: &Surface<'_>,
    rect: &Rect,
    mode: impl Into<BlitMode>,
) -> Result<Rect> {
    let BlitMode { rotation, simd } = mode.into();
    let Some(src_span) = check_rect(rect, src.width, src.height)? else {
        return Ok(Rect::EMPTY);
    };
    let dst_rect = rotate_rect(rect, rotation, src.width, src.height);
    let mut dst_span = check_rect(&dst_rect, band.width, fb_height)?.ok_or(Error::OutOfBounds)?;
    let first = usize::try_from(first_row).map_err(|_| Error::OutOfBounds)?;
    let band_rows = usize::try_from(band.height).map_err(|_| Error::OutOfBounds)?;
    dst_span.y = dst_span.y.checked_sub(first).ok_or(Error::OutOfBounds)?;
    if dst_span.y + dst_span.h > band_rows {
        return Err(Error::OutOfBounds);
    }
    // The source rows are counted from the first row the surface holds.
    let first_held = usize::try_from(src.first_held).map_err(|_| Error::OutOfBounds)?;
    let held_span = Span {
        y: src_span
            .y
            .checked_sub(first_held)
            .ok_or(Error::OutOfBounds)?,
        ..src_span
    };
    let src_plane = kernels::Plane::new(src.bytes, src.pitch, held_span)?;
    let mut dst_plane = kernels::PlaneMut::new(band.bytes, band.pitch, dst_span)?;
    match rotation {
        Rotation::Identity => kernels::copy_identity(&mut dst_plane, &src_plane)?,
        Rotation::Rotate180 => kernels::copy_rotate180(&mut dst_plane, &src_plane)?,
        Rotation::Rotate90 => kernels::copy_transposed(&mut dst_plane, &src_plane, true, simd)?,
        Rotation::Rotate270 => kernels::copy_transposed(&mut dst_plane, &src_plane, false, simd)?,
    }
    Ok(dst_rect)
}

/// Checks that `rect` lies inside a `width` x `height` surface (empty rects pass, inverted
/// ones are [`Error::InvalidArgument`], ones sticking out [`Error::OutOfBounds`]).
pub fn check_inside(rect: &Rect, width: u32, height: u32) -> Result<()> {
    check_rect(rect, width, height).map(|_| ())
}

/// The source rectangle whose rotated image is `fb_rect`, for a source `src_w` x `src_h`:
/// the inverse of [`rotate_rect`].
pub fn unrotate_rect(fb_rect: &Rect, rotation: Rotation, src_w: u32, src_h: u32) -> Rect {
    let (fb_w, fb_h) = rotation.framebuffer_size(src_w, src_h);
    match rotation {
        Rotation::Identity => *fb_rect,
        Rotation::Rotate90 => rotate_rect(fb_rect, Rotation::Rotate270, fb_w, fb_h),
        Rotation::Rotate180 => rotate_rect(fb_rect, Rotation::Rotate180, fb_w, fb_h),
        Rotation::Rotate270 => rotate_rect(fb_rect, Rotation::Rotate90, fb_w, fb_h),
    }
}

/// Carries out one `D3DKMT_MOVE_RECT` of a display-only present: `dest_rect` (source
/// coordinates) is copied from `src`, which already holds the moved pixels (see the module
/// docs). The OS's source rectangle (`src_point` with the size of `dest_rect`) must lie inside
/// `src`, else [`Error::OutOfBounds`]. Returns the framebuffer rectangle written, like
/// [`blit_rect`]; nothing is written on failure.
pub fn move_rect(
    dst: &mut SurfaceMut<'_>,
    src: &Surface<'_>,
    src_point: Point,
    dest_rect: &Rect,
    mode: impl Into<BlitMode>,
) -> Result<Rect> {
    if dest_rect.right < dest_rect.left || dest_rect.bottom < dest_rect.top {
        return Err(Error::InvalidArgument);
    }
    if dest_rect.is_empty() {
        return Ok(Rect::EMPTY);
    }
    let moved_from = Rect::new(
        src_point.x,
        src_point.y,
        src_point
            .x
            .checked_add_unsigned(dest_rect.width())
            .ok_or(Error::OutOfBounds)?,
        src_point
            .y
            .checked_add_unsigned(dest_rect.height())
            .ok_or(Error::OutOfBounds)?,
    );
    check_rect(&moved_from, src.width, src.height)?;
    blit_rect(dst, src, dest_rect, mode)
}
