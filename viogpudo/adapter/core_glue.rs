//! Stand-ins for three core-crate modules that are being written on other branches:
//! `viogpu_common::blit` (rectangles, rotation, surfaces), `viogpu_common::present` (blit into
//! the banded framebuffer) and `viogpu_common::cursor` (pointer-shape conversion).
//!
//! TODO(lead): when those modules land, delete this file and replace `core_glue::{blit,
//! present, cursor}` by `viogpu_common::{blit, present, cursor}` in `present.rs`,
//! `pointer.rs`, `bugcheck.rs` and `vidpn_glue.rs`. The names and signatures here follow the
//! planned APIs (blit's are copied from the blit branch's public surface), so the call sites
//! should not need to change. The stub bodies are simple and slow on purpose: per-row copies
//! for the identity rotation, per-pixel otherwise.

/// Subset of the blit branch's `viogpu_common::blit` public API used by the driver.
pub mod blit {
    use viogpu_common::{Error, Result};

    /// Bytes per pixel of every surface.
    pub const BYTES_PER_PIXEL: u32 = 4;

    /// A rectangle in Windows `RECT` form (`right`/`bottom` exclusive).
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
        /// The empty rectangle.
        pub const EMPTY: Rect = Rect::new(0, 0, 0, 0);

        /// A rectangle from its edges.
        pub const fn new(left: i32, top: i32, right: i32, bottom: i32) -> Self {
            Rect {
                left,
                top,
                right,
                bottom,
            }
        }

        /// True when it covers no pixel.
        pub const fn is_empty(&self) -> bool {
            self.right <= self.left || self.bottom <= self.top
        }

        /// Width in pixels (0 when empty).
        pub const fn width(&self) -> u32 {
            if self.right > self.left {
                self.right.abs_diff(self.left)
            } else {
                0
            }
        }

        /// Height in pixels (0 when empty).
        pub const fn height(&self) -> u32 {
            if self.bottom > self.top {
                self.bottom.abs_diff(self.top)
            } else {
                0
            }
        }
    }

    /// A point.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
    pub struct Point {
        /// Column.
        pub x: i32,
        /// Row.
        pub y: i32,
    }

    /// Rotation of a present path (counter-clockwise, as `D3DKMDT_VPPR_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
    pub enum Rotation {
        /// No rotation.
        #[default]
        Identity,
        /// 90 degrees.
        Rotate90,
        /// 180 degrees.
        Rotate180,
        /// 270 degrees.
        Rotate270,
    }

    impl Rotation {
        /// Maps a `D3DKMDT_VIDPN_PRESENT_PATH_ROTATION` value (1..=4).
        pub const fn from_vppr(value: u32) -> Result<Self> {
            match value {
                1 => Ok(Rotation::Identity),
                2 => Ok(Rotation::Rotate90),
                3 => Ok(Rotation::Rotate180),
                4 => Ok(Rotation::Rotate270),
                _ => Err(Error::InvalidArgument),
            }
        }

        /// True for 90 and 270 degrees.
        pub const fn swaps_axes(self) -> bool {
            matches!(self, Rotation::Rotate90 | Rotation::Rotate270)
        }

        /// Framebuffer size that shows a `src_w` x `src_h` desktop.
        pub const fn framebuffer_size(self, src_w: u32, src_h: u32) -> (u32, u32) {
            if self.swaps_axes() {
                (src_h, src_w)
            } else {
                (src_w, src_h)
            }
        }
    }

    /// A read-only 32-bit surface.
    #[derive(Debug, Clone, Copy)]
    pub struct Surface<'a> {
        bytes: &'a [u8],
        width: u32,
        height: u32,
        pitch: u32,
    }

    impl<'a> Surface<'a> {
        /// Wraps `bytes`; checks that `pitch * (height - 1) + width * 4` bytes are there.
        pub fn new(bytes: &'a [u8], width: u32, height: u32, pitch: u32) -> Result<Self> {
            if width == 0 || height == 0 {
                return Err(Error::InvalidArgument);
            }
            let row = width
                .checked_mul(BYTES_PER_PIXEL)
                .ok_or(Error::InvalidArgument)?;
            if pitch < row {
                return Err(Error::InvalidArgument);
            }
            let span = u64::from(pitch) * u64::from(height - 1) + u64::from(row);
            if (bytes.len() as u64) < span {
                return Err(Error::OutOfBounds);
            }
            Ok(Surface {
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

        /// The bytes.
        pub const fn bytes(&self) -> &'a [u8] {
            self.bytes
        }
    }
}

/// Stand-in for the lead's `viogpu_common::present`.
pub mod present {
    use alloc::vec::Vec;

    use super::blit::{Point, Rect, Rotation, Surface};
    use viogpu_common::framebuffer::FramebufferBacking;
    use viogpu_common::hal::Hal;
    use viogpu_common::{Error, Result};

    /// Copies the move rects' destinations and the dirty rects from `src` into `backing`,
    /// rotated, and returns the framebuffer rectangles written (for transfer and flush).
    ///
    /// TODO(lead): stub until `viogpu_common::present` lands.
    pub fn present<H: Hal>(
        backing: &mut FramebufferBacking<H>,
        src: &Surface<'_>,
        dirty: &[Rect],
        moves: &[(Point, Rect)],
        rotation: Rotation,
    ) -> Result<Vec<Rect>> {
        let (fb_w, fb_h) = rotation.framebuffer_size(src.width(), src.height());
        if fb_w > backing.width() || fb_h > backing.height() {
            return Err(Error::OutOfBounds);
        }
        let mut out = Vec::new();
        let rects = moves.iter().map(|(_, r)| r).chain(dirty.iter());
        for rect in rects {
            if rect.right < rect.left || rect.bottom < rect.top {
                return Err(Error::InvalidArgument);
            }
            if rect.is_empty() {
                continue;
            }
            if rect.left < 0
                || rect.top < 0
                || rect.right as u32 > src.width()
                || rect.bottom as u32 > src.height()
            {
                return Err(Error::OutOfBounds);
            }
            copy_rect(backing, src, rect, rotation)?;
            out.try_reserve(1).map_err(|_| Error::NoMemory)?;
            out.push(rotate_rect(rect, rotation, src.width(), src.height()));
        }
        Ok(out)
    }

    fn rotate_rect(r: &Rect, rotation: Rotation, w: u32, h: u32) -> Rect {
        let w = i32::try_from(w).unwrap_or(i32::MAX);
        let h = i32::try_from(h).unwrap_or(i32::MAX);
        match rotation {
            Rotation::Identity => *r,
            Rotation::Rotate90 => Rect::new(r.top, w - r.right, r.bottom, w - r.left),
            Rotation::Rotate180 => Rect::new(w - r.right, h - r.bottom, w - r.left, h - r.top),
            Rotation::Rotate270 => Rect::new(h - r.bottom, r.left, h - r.top, r.right),
        }
    }

    fn copy_rect<H: Hal>(
        backing: &mut FramebufferBacking<H>,
        src: &Surface<'_>,
        r: &Rect,
        rotation: Rotation,
    ) -> Result<()> {
        let bytes = src.bytes();
        let pitch = src.pitch() as usize;
        let (w, h) = (src.width(), src.height());
        for y in r.top as u32..r.bottom as u32 {
            let row_start = y as usize * pitch;
            if rotation == Rotation::Identity {
                let from = row_start + r.left as usize * 4;
                let to = row_start + r.right as usize * 4;
                let s = bytes.get(from..to).ok_or(Error::OutOfBounds)?;
                let d = backing
                    .row_mut(y)
                    .and_then(|row| row.get_mut(r.left as usize * 4..r.right as usize * 4))
                    .ok_or(Error::OutOfBounds)?;
                d.copy_from_slice(s);
                continue;
            }
            for x in r.left as u32..r.right as u32 {
                let at = row_start + x as usize * 4;
                let px: [u8; 4] = bytes
                    .get(at..at + 4)
                    .and_then(|p| p.try_into().ok())
                    .ok_or(Error::OutOfBounds)?;
                let (dx, dy) = match rotation {
                    Rotation::Identity => (x, y),
                    Rotation::Rotate90 => (y, w - 1 - x),
                    Rotation::Rotate180 => (w - 1 - x, h - 1 - y),
                    Rotation::Rotate270 => (h - 1 - y, x),
                };
                backing.write_pixel(dx, dy, u32::from_le_bytes(px))?;
            }
        }
        Ok(())
    }
}

/// Stand-in for `viogpu_common::cursor`.
pub mod cursor {
    use viogpu_common::{Error, Result};

    /// Side of the square cursor image the device shows.
    pub const CURSOR_SIZE: u32 = 64;
    /// Bytes of one cursor image (B8G8R8A8).
    pub const CURSOR_BYTES: usize = (CURSOR_SIZE * CURSOR_SIZE * 4) as usize;

    /// The pointer-shape kinds of `DXGK_POINTERFLAGS`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum PointerKind {
        /// 1 bpp AND mask followed by 1 bpp XOR mask (`height` is twice the shape height).
        Monochrome,
        /// 32 bpp ARGB with per-pixel alpha.
        Color,
        /// 32 bpp with the alpha byte as an XOR mask.
        MaskedColor,
    }

    /// A pointer shape as the OS gives it.
    #[derive(Debug, Clone, Copy)]
    pub struct PointerShape<'a> {
        /// The kind.
        pub kind: PointerKind,
        /// Width in pixels.
        pub width: u32,
        /// Height in pixels as the OS reports it (for monochrome: both masks).
        pub height: u32,
        /// Bytes per row.
        pub pitch: u32,
        /// The pixel bytes.
        pub pixels: &'a [u8],
    }

    impl PointerShape<'_> {
        /// Bytes the shape spans (`pitch * height`).
        pub fn span(width: u32, height: u32, pitch: u32) -> Option<usize> {
            let _ = width;
            usize::try_from(u64::from(pitch) * u64::from(height)).ok()
        }
    }

    /// Converts `shape` into a 64x64 B8G8R8A8 image in `out` (`CURSOR_BYTES` long),
    /// transparent outside the shape.
    ///
    /// TODO(lead): stub until `viogpu_common::cursor` lands.
    pub fn convert(shape: &PointerShape<'_>, out: &mut [u8]) -> Result<()> {
        let out = out.get_mut(..CURSOR_BYTES).ok_or(Error::OutOfBounds)?;
        let rows = match shape.kind {
            PointerKind::Monochrome => shape.height / 2,
            _ => shape.height,
        };
        if shape.width == 0 || rows == 0 || shape.width > CURSOR_SIZE || rows > CURSOR_SIZE {
            return Err(Error::InvalidArgument);
        }
        let pitch = shape.pitch as usize;
        out.fill(0);
        for y in 0..rows as usize {
            for x in 0..shape.width as usize {
                let px: [u8; 4] = match shape.kind {
                    PointerKind::Color | PointerKind::MaskedColor => {
                        let at = y * pitch + x * 4;
                        let p: [u8; 4] = shape
                            .pixels
                            .get(at..at + 4)
                            .and_then(|p| p.try_into().ok())
                            .ok_or(Error::OutOfBounds)?;
                        if shape.kind == PointerKind::MaskedColor {
                            // Alpha 0: replace with the colour; 0xFF: XOR, which the host
                            // cannot do; show non-black XOR pixels as opaque black.
                            if p[3] == 0 {
                                [p[0], p[1], p[2], 0xFF]
                            } else if p[0] | p[1] | p[2] != 0 {
                                [0, 0, 0, 0xFF]
                            } else {
                                [0, 0, 0, 0]
                            }
                        } else {
                            p
                        }
                    }
                    PointerKind::Monochrome => {
                        let bit = |row: usize| -> Result<bool> {
                            let b = shape
                                .pixels
                                .get(row * pitch + x / 8)
                                .ok_or(Error::OutOfBounds)?;
                            Ok(b & (0x80 >> (x % 8)) != 0)
                        };
                        match (bit(y)?, bit(y + rows as usize)?) {
                            (true, false) => [0, 0, 0, 0],
                            (false, false) => [0, 0, 0, 0xFF],
                            (false, true) => [0xFF, 0xFF, 0xFF, 0xFF],
                            (true, true) => [0, 0, 0, 0xFF],
                        }
                    }
                };
                let at = (y * CURSOR_SIZE as usize + x) * 4;
                if let Some(d) = out.get_mut(at..at + 4) {
                    d.copy_from_slice(&px);
                }
            }
        }
        Ok(())
    }
}
