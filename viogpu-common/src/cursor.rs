//! Pointer shapes from `DxgkDdiSetPointerShape` turned into the 64x64 image of a virtio-gpu
//! cursor resource.
//!
//! The cursor resource is `VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM`, 64 x 64 pixels, rows 256 bytes
//! apart, with **straight (non-premultiplied) alpha**: QEMU hands the image to its UI back ends
//! (SDL, GTK, VNC, SPICE) as a 32-bit ARGB cursor, and they all expect straight alpha. The
//! shape sits in the top-left corner; the rest of the image is transparent. The hot spot is
//! passed through unchanged (it goes into `UPDATE_CURSOR`).
//!
//! The three shape kinds of `DXGKARG_SETPOINTERSHAPE` (rows top-down, row 0 first):
//!
//! - **Monochrome**: a 1-bpp AND mask of `height` rows followed by a 1-bpp XOR mask of
//!   `height` rows, each row `pitch` bytes, most significant bit first. (`height` is the
//!   pointer's height; the buffer holds `2 * height` rows. This is the DXGK convention; DXGI
//!   desktop duplication instead reports the doubled height.)
//!   AND 0 / XOR 0 is black, AND 0 / XOR 1 white, AND 1 / XOR 0 transparent, and AND 1 /
//!   XOR 1 inverts the screen, which an ARGB cursor cannot do.
//! - **Color**: 32-bpp B8G8R8A8 with per-pixel alpha. Windows delivers premultiplied alpha;
//!   the image is converted to straight alpha. Data that cannot be premultiplied (a colour
//!   channel above its alpha) is taken as straight already and copied unchanged.
//! - **MaskedColor**: 32 bpp; the alpha byte is a mask, 0 (the RGB value replaces the screen)
//!   or 0xFF (the RGB value is XORed onto the screen). Any other alpha is rejected. XOR with 0
//!   leaves the screen unchanged, i.e. transparent; XOR with anything else is an inversion.
//!
//! Inverting pixels (what text-selection I-beams are made of) become opaque black, and every
//! transparent pixel next to one (left, right, above, below) becomes opaque white. On a light
//! background the pointer then looks like the real inversion; on a dark one the white outline
//! keeps it visible. This is the usual approximation for hosts without XOR cursors.
//!
//! On a rotated present path the framebuffer holds the desktop turned (see [`crate::blit`]),
//! so the pointer image must be turned the same way: [`rotate_cursor`] rotates a converted
//! image and its hot spot with the blit's pixel mapping, keeping the result in the top-left
//! corner so the hot spot still addresses it.

use crate::blit::Rotation;
use crate::error::{Error, Result};

/// Width and height of the cursor image, in pixels.
pub const CURSOR_SIZE: u32 = 64;

/// Size of the cursor image in bytes (64 x 64 B8G8R8A8 pixels).
pub const CURSOR_BYTES: usize = (CURSOR_SIZE * CURSOR_SIZE * 4) as usize;

const SIZE: usize = CURSOR_SIZE as usize;
const OPAQUE_BLACK: [u8; 4] = [0, 0, 0, 0xFF];
const OPAQUE_WHITE: [u8; 4] = [0xFF, 0xFF, 0xFF, 0xFF];
const TRANSPARENT: [u8; 4] = [0, 0, 0, 0];

/// The kind of a pointer shape, from `DXGK_POINTERFLAGS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerKind {
    /// `Monochrome` (bit 0): AND mask followed by XOR mask, 1 bpp each.
    Monochrome,
    /// `Color` (bit 1): 32-bpp ARGB with per-pixel alpha.
    Color,
    /// `MaskedColor` (bit 2): 32-bpp RGB with a 0/0xFF XOR mask in the alpha byte.
    MaskedColor,
}

impl PointerKind {
    /// Decodes `DXGK_POINTERFLAGS.Value`: exactly one of the three kind bits, no other bit.
    pub const fn from_flags(flags: u32) -> Result<Self> {
        match flags {
            1 => Ok(PointerKind::Monochrome),
            2 => Ok(PointerKind::Color),
            4 => Ok(PointerKind::MaskedColor),
            _ => Err(Error::InvalidArgument),
        }
    }
}

/// A pointer shape as `DXGKARG_SETPOINTERSHAPE` describes it.
#[derive(Debug, Clone, Copy)]
pub struct PointerShape<'a> {
    /// How `pixels` is laid out.
    pub kind: PointerKind,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels (one mask's height for monochrome shapes).
    pub height: u32,
    /// Bytes from one row to the next.
    pub pitch: u32,
    /// Hot spot column.
    pub hot_x: u32,
    /// Hot spot row.
    pub hot_y: u32,
    /// The bitmap (`pPixels`), at least as long as its rows require.
    pub pixels: &'a [u8],
}

/// The hot spot of a converted cursor, for `VIRTIO_GPU_CMD_UPDATE_CURSOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotSpot {
    /// Column.
    pub x: u32,
    /// Row.
    pub y: u32,
}

/// Converts `shape` into the cursor image `out` and returns its hot spot.
///
/// Fails with [`Error::InvalidArgument`] for a zero or larger-than-64 size, a hot spot outside
/// the shape, a pitch too small for a row, or a masked-colour alpha other than 0 or 0xFF; with
/// [`Error::OutOfBounds`] when `pixels` is shorter than its rows. Nothing is written on failure.
pub fn convert_pointer(shape: &PointerShape<'_>, out: &mut [u8; CURSOR_BYTES]) -> Result<HotSpot> {
    let (w, h) = (shape.width, shape.height);
    if w == 0 || h == 0 || w > CURSOR_SIZE || h > CURSOR_SIZE {
        return Err(Error::InvalidArgument);
    }
    if shape.hot_x >= w || shape.hot_y >= h {
        return Err(Error::InvalidArgument);
    }
    let (w, h, pitch) = (w as usize, h as usize, shape.pitch as usize);
    let (row_bytes, rows) = match shape.kind {
        PointerKind::Monochrome => (w.div_ceil(8), 2 * h),
        PointerKind::Color | PointerKind::MaskedColor => (w * 4, h),
    };
    if pitch < row_bytes {
        return Err(Error::InvalidArgument);
    }
    let needed = pitch
        .checked_mul(rows - 1)
        .and_then(|n| n.checked_add(row_bytes))
        .ok_or(Error::InvalidArgument)?;
    let pixels = shape.pixels.get(..needed).ok_or(Error::OutOfBounds)?;
    // Row `r < rows` ends at or before `needed`, so these offsets cannot overflow.
    let row = |r: usize| pixels.get(r * pitch..r * pitch + row_bytes).unwrap_or(&[]);

    let mut inverted = [0u64; SIZE];
    match shape.kind {
        PointerKind::Monochrome => {
            out.fill(0);
            for (y, inverted_row) in inverted.iter_mut().enumerate().take(h) {
                let (and, xor) = (row(y), row(h + y));
                for x in 0..w {
                    let bit =
                        |mask: &[u8]| mask.get(x / 8).is_some_and(|b| b & (0x80 >> (x % 8)) != 0);
                    let pixel = match (bit(and), bit(xor)) {
                        (false, false) => OPAQUE_BLACK,
                        (false, true) => OPAQUE_WHITE,
                        (true, false) => TRANSPARENT,
                        (true, true) => {
                            *inverted_row |= 1 << x;
                            OPAQUE_BLACK
                        }
                    };
                    put(out, x, y, pixel);
                }
            }
        }
        PointerKind::Color => {
            let premultiplied = (0..h).all(|y| {
                row(y)
                    .chunks_exact(4)
                    .all(|p| p[0].max(p[1]).max(p[2]) <= p[3])
            });
            out.fill(0);
            for y in 0..h {
                for (x, p) in row(y).chunks_exact(4).enumerate() {
                    let pixel = [p[0], p[1], p[2], p[3]];
                    let pixel = if premultiplied {
                        unpremultiply(pixel)
                    } else {
                        pixel
                    };
                    put(out, x, y, pixel);
                }
            }
        }
        PointerKind::MaskedColor => {
            let masks_valid =
                (0..h).all(|y| row(y).chunks_exact(4).all(|p| p[3] == 0 || p[3] == 0xFF));
            if !masks_valid {
                return Err(Error::InvalidArgument);
            }
            out.fill(0);
            for (y, inverted_row) in inverted.iter_mut().enumerate().take(h) {
                for (x, p) in row(y).chunks_exact(4).enumerate() {
                    let pixel = match (p[3], [p[0], p[1], p[2]]) {
                        (0, [b, g, r]) => [b, g, r, 0xFF],
                        (_, [0, 0, 0]) => TRANSPARENT,
                        _ => {
                            *inverted_row |= 1 << x;
                            OPAQUE_BLACK
                        }
                    };
                    put(out, x, y, pixel);
                }
            }
        }
    }
    outline_inverted(out, &inverted);
    Ok(HotSpot {
        x: shape.hot_x,
        y: shape.hot_y,
    })
}

/// What [`rotate_cursor`] made of an image: its hot spot and the box its content occupies
/// (top-left corner of the 64x64 image).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotatedCursor {
    /// The hot spot inside the rotated image.
    pub hot: HotSpot,
    /// Width of the rotated content box.
    pub width: u32,
    /// Height of the rotated content box.
    pub height: u32,
}

/// Rotates `src`, an image from [`convert_pointer`] for a `width` x `height` shape with hot spot
/// `hot`, by `rotation` into `out` (the rest of `out` transparent), for a present path whose
/// framebuffer shows the desktop rotated (see [`crate::blit`]). The content box is rotated
/// with the blit's mapping and stays at the top-left corner: with `Rotate90`, shape pixel
/// `(x, y)` lands at `(y, W - 1 - x)`, and the returned hot spot is where the mapping takes
/// `hot`, so the device, which puts the hot spot on the pointer's position, shows the tip of
/// the rotated image there.
///
/// The box is the shape grown by one column (row) when [`convert_pointer`]'s white outline of
/// an inverting pixel reaches past its right (bottom) edge, so that outline turns with it.
///
/// Fails with [`Error::InvalidArgument`] for a zero or larger-than-64 size or a hot spot
/// outside the shape; `out` is then untouched.
pub fn rotate_cursor(
    src: &[u8; CURSOR_BYTES],
    width: u32,
    height: u32,
    hot: HotSpot,
    rotation: Rotation,
    out: &mut [u8; CURSOR_BYTES],
) -> Result<RotatedCursor> {
    if width == 0 || height == 0 || width > CURSOR_SIZE || height > CURSOR_SIZE {
        return Err(Error::InvalidArgument);
    }
    if hot.x >= width || hot.y >= height {
        return Err(Error::InvalidArgument);
    }
    let (w, h) = (width as usize, height as usize);
    let drawn = |x: usize, y: usize| pixel(src, x, y).is_some_and(|p| p[3] != 0);
    let w = w + usize::from(w < SIZE && (0..h).any(|y| drawn(w, y)));
    let h = h + usize::from(h < SIZE && (0..w).any(|x| drawn(x, h)));
    // Both are at most 64 here, and every mapped coordinate is below them.
    let map = |x: usize, y: usize| match rotation {
        Rotation::Identity => (x, y),
        Rotation::Rotate90 => (y, w - 1 - x),
        Rotation::Rotate180 => (w - 1 - x, h - 1 - y),
        Rotation::Rotate270 => (h - 1 - y, x),
    };
    out.fill(0);
    for y in 0..h {
        for x in 0..w {
            if let Some(p) = pixel(src, x, y) {
                let (dx, dy) = map(x, y);
                put(out, dx, dy, p);
            }
        }
    }
    let (hx, hy) = map(hot.x as usize, hot.y as usize);
    let (rw, rh) = rotation.framebuffer_size(w as u32, h as u32);
    Ok(RotatedCursor {
        hot: HotSpot {
            x: hx as u32,
            y: hy as u32,
        },
        width: rw,
        height: rh,
    })
}

/// Reads one pixel of the cursor image (None outside it).
fn pixel(image: &[u8; CURSOR_BYTES], x: usize, y: usize) -> Option<[u8; 4]> {
    if x >= SIZE {
        return None;
    }
    let o = (y * SIZE + x) * 4;
    image.get(o..o + 4).and_then(|p| p.try_into().ok())
}

/// Writes one pixel of the cursor image; `x` and `y` are below 64 at every call site.
fn put(out: &mut [u8; CURSOR_BYTES], x: usize, y: usize, pixel: [u8; 4]) {
    let o = (y * SIZE + x) * 4;
    if let Some(dst) = out.get_mut(o..o + 4) {
        dst.copy_from_slice(&pixel);
    }
}

/// Straight alpha from premultiplied: each colour channel divided by alpha, rounded.
fn unpremultiply([b, g, r, a]: [u8; 4]) -> [u8; 4] {
    if a == 0 {
        return TRANSPARENT;
    }
    let un = |c: u8| {
        let v = (u32::from(c) * 255 + u32::from(a) / 2) / u32::from(a);
        u8::try_from(v).unwrap_or(u8::MAX)
    };
    [un(b), un(g), un(r), a]
}

/// Turns transparent pixels beside an inverting pixel into opaque white (see module docs).
fn outline_inverted(out: &mut [u8; CURSOR_BYTES], inverted: &[u64; SIZE]) {
    for y in 0..SIZE {
        let above = if y > 0 { inverted[y - 1] } else { 0 };
        let below = inverted.get(y + 1).copied().unwrap_or(0);
        let here = inverted[y];
        let near = above | below | (here << 1) | (here >> 1);
        if near == 0 {
            continue;
        }
        for x in 0..SIZE {
            let o = (y * SIZE + x) * 4;
            if near & (1 << x) != 0 && out.get(o + 3) == Some(&0) {
                put(out, x, y, OPAQUE_WHITE);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn at(out: &[u8; CURSOR_BYTES], x: usize, y: usize) -> [u8; 4] {
        let o = (y * SIZE + x) * 4;
        out[o..o + 4].try_into().unwrap()
    }

    fn convert(shape: PointerShape<'_>) -> Result<Vec<u8>> {
        let mut out = [0xAB; CURSOR_BYTES];
        convert_pointer(&shape, &mut out).map(|_| out.to_vec())
    }

    fn image(shape: PointerShape<'_>) -> [u8; CURSOR_BYTES] {
        let mut out = [0xAB; CURSOR_BYTES];
        convert_pointer(&shape, &mut out).unwrap();
        out
    }

    fn mono(pixels: &[u8], width: u32, height: u32, pitch: u32) -> PointerShape<'_> {
        PointerShape {
            kind: PointerKind::Monochrome,
            width,
            height,
            pitch,
            hot_x: 0,
            hot_y: 0,
            pixels,
        }
    }

    #[test]
    fn flags_decode_to_exactly_one_kind() {
        assert_eq!(PointerKind::from_flags(1), Ok(PointerKind::Monochrome));
        assert_eq!(PointerKind::from_flags(2), Ok(PointerKind::Color));
        assert_eq!(PointerKind::from_flags(4), Ok(PointerKind::MaskedColor));
        for bad in [0, 3, 5, 6, 7, 8, 0x8000_0002] {
            assert_eq!(PointerKind::from_flags(bad), Err(Error::InvalidArgument));
        }
    }

    #[test]
    fn monochrome_truth_table() {
        // 4x1 pointer, pitch 4 (padded rows): pixels AND/XOR = 00, 01, 10, 11.
        let pixels = [
            0b0011_0000,
            0,
            0,
            0, // AND row
            0b0101_0000,
            0,
            0,
            0, // XOR row
        ];
        let out = image(mono(&pixels, 4, 1, 4));
        assert_eq!(at(&out, 0, 0), OPAQUE_BLACK);
        assert_eq!(at(&out, 1, 0), OPAQUE_WHITE);
        // Transparent, but beside the inverting pixel 3: white outline.
        assert_eq!(at(&out, 2, 0), OPAQUE_WHITE);
        assert_eq!(at(&out, 3, 0), OPAQUE_BLACK);
        // Pixel 4 is outside the shape but beside pixel 3: outlined too.
        assert_eq!(at(&out, 4, 0), OPAQUE_WHITE);
        assert_eq!(at(&out, 5, 0), TRANSPARENT);
        assert_eq!(at(&out, 3, 1), OPAQUE_WHITE);
        assert_eq!(at(&out, 2, 1), TRANSPARENT);
        assert_eq!(at(&out, 63, 63), TRANSPARENT);
    }

    #[test]
    fn monochrome_masks_are_height_rows_each_msb_first() {
        // 9x2 pointer (two bytes per row), pitch 2: AND all ones except pixel (8, 1);
        // XOR zero except pixel (8, 1), so only (8, 1) is drawn, in white.
        let pixels = [
            0xFF, 0x80, 0xFF, 0x00, // AND rows 0, 1
            0x00, 0x00, 0x00, 0x80, // XOR rows 0, 1
        ];
        let out = image(mono(&pixels, 9, 2, 2));
        for y in 0..2 {
            for x in 0..9 {
                let expected = if (x, y) == (8, 1) {
                    OPAQUE_WHITE
                } else {
                    TRANSPARENT
                };
                assert_eq!(at(&out, x, y), expected, "({x}, {y})");
            }
        }
    }

    #[test]
    fn color_premultiplied_becomes_straight() {
        // 2x2: opaque red, half-transparent premultiplied white, transparent, 25% blue.
        let pixels = [
            0, 0, 0xFF, 0xFF, 0x80, 0x80, 0x80, 0x80, //
            0, 0, 0, 0, 0x40, 0, 0, 0x40,
        ];
        let out = image(PointerShape {
            kind: PointerKind::Color,
            width: 2,
            height: 2,
            pitch: 8,
            hot_x: 1,
            hot_y: 1,
            pixels: &pixels,
        });
        assert_eq!(at(&out, 0, 0), [0, 0, 0xFF, 0xFF]);
        assert_eq!(at(&out, 1, 0), [0xFF, 0xFF, 0xFF, 0x80]);
        assert_eq!(at(&out, 0, 1), TRANSPARENT);
        assert_eq!(at(&out, 1, 1), [0xFF, 0, 0, 0x40]);
        assert_eq!(at(&out, 2, 0), TRANSPARENT);
    }

    #[test]
    fn color_that_is_not_premultiplied_is_copied() {
        // Green at alpha 0x80 cannot be premultiplied (0xFF > 0x80): taken as straight.
        let pixels = [0, 0xFF, 0, 0x80, 0x10, 0x20, 0x30, 0xFF, 0, 0, 0, 0];
        let mut out = [0; CURSOR_BYTES];
        let hot = convert_pointer(
            &PointerShape {
                kind: PointerKind::Color,
                width: 3,
                height: 1,
                pitch: 12,
                hot_x: 2,
                hot_y: 0,
                pixels: &pixels,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(hot, HotSpot { x: 2, y: 0 });
        assert_eq!(at(&out, 0, 0), [0, 0xFF, 0, 0x80]);
        assert_eq!(at(&out, 1, 0), [0x10, 0x20, 0x30, 0xFF]);
        assert_eq!(at(&out, 2, 0), TRANSPARENT);
    }

    #[test]
    fn masked_color_pixels() {
        // Opaque colour, XOR 0 (transparent), XOR white (inversion), with a padded pitch.
        let pixels = [
            0x11, 0x22, 0x33, 0x00, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xEE, 0xEE,
        ];
        let out = image(PointerShape {
            kind: PointerKind::MaskedColor,
            width: 3,
            height: 1,
            pitch: 14,
            hot_x: 0,
            hot_y: 0,
            pixels: &pixels,
        });
        assert_eq!(at(&out, 0, 0), [0x11, 0x22, 0x33, 0xFF]);
        assert_eq!(at(&out, 1, 0), OPAQUE_WHITE, "outline of the inversion");
        assert_eq!(at(&out, 2, 0), OPAQUE_BLACK);
        assert_eq!(at(&out, 3, 0), OPAQUE_WHITE);
        assert_eq!(at(&out, 2, 1), OPAQUE_WHITE);
        assert_eq!(at(&out, 0, 1), TRANSPARENT);
    }

    #[test]
    fn full_64x64_shape_is_accepted() {
        let pixels = vec![0xFF; 64 * 64 * 4];
        let out = image(PointerShape {
            kind: PointerKind::Color,
            width: 64,
            height: 64,
            pitch: 256,
            hot_x: 63,
            hot_y: 63,
            pixels: &pixels,
        });
        assert!(out.iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn invalid_shapes_are_rejected_and_nothing_is_written() {
        let pixels = vec![0u8; 65 * 65 * 4 * 2];
        let base = PointerShape {
            kind: PointerKind::Color,
            width: 4,
            height: 4,
            pitch: 16,
            hot_x: 0,
            hot_y: 0,
            pixels: &pixels,
        };
        let cases = [
            (PointerShape { width: 0, ..base }, Error::InvalidArgument),
            (PointerShape { height: 0, ..base }, Error::InvalidArgument),
            (
                PointerShape {
                    width: 65,
                    pitch: 260,
                    ..base
                },
                Error::InvalidArgument,
            ),
            (PointerShape { height: 65, ..base }, Error::InvalidArgument),
            (PointerShape { hot_x: 4, ..base }, Error::InvalidArgument),
            (PointerShape { hot_y: 4, ..base }, Error::InvalidArgument),
            (PointerShape { pitch: 15, ..base }, Error::InvalidArgument),
            (
                PointerShape {
                    pixels: &pixels[..16 * 3 + 15],
                    ..base
                },
                Error::OutOfBounds,
            ),
            (
                PointerShape {
                    kind: PointerKind::Monochrome,
                    pitch: 0,
                    ..base
                },
                Error::InvalidArgument,
            ),
            (
                // Two masks of 4 rows at pitch 1 need 8 bytes.
                PointerShape {
                    kind: PointerKind::Monochrome,
                    pitch: 1,
                    pixels: &pixels[..7],
                    ..base
                },
                Error::OutOfBounds,
            ),
        ];
        for (shape, err) in cases {
            assert_eq!(convert(shape), Err(err), "{shape:?}");
        }
        let mut bad_mask = vec![0u8; 16 * 4];
        bad_mask[4 * 5 + 3] = 0x80;
        let mut out = [0xAB; CURSOR_BYTES];
        assert_eq!(
            convert_pointer(
                &PointerShape {
                    kind: PointerKind::MaskedColor,
                    pixels: &bad_mask,
                    ..base
                },
                &mut out
            ),
            Err(Error::InvalidArgument)
        );
        assert!(out.iter().all(|&b| b == 0xAB));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod rotate_tests {
    use super::*;
    use crate::blit::{rotate_rect, Rect};
    use alloc::vec::Vec;
    use proptest::prelude::*;

    const ROTATIONS: [Rotation; 4] = [
        Rotation::Identity,
        Rotation::Rotate90,
        Rotation::Rotate180,
        Rotation::Rotate270,
    ];

    fn at(out: &[u8; CURSOR_BYTES], x: usize, y: usize) -> [u8; 4] {
        pixel(out, x, y).unwrap()
    }

    /// Opaque, distinct colour of shape pixel `(x, y)`.
    fn colour(x: usize, y: usize) -> [u8; 4] {
        [x as u8 + 1, y as u8 + 1, 0x80, 0xFF]
    }

    /// A 3x2 colour shape whose six pixels all differ, hot spot at its top-right pixel.
    fn three_by_two() -> [u8; CURSOR_BYTES] {
        let mut bgra = Vec::new();
        for y in 0..2 {
            for x in 0..3 {
                bgra.extend_from_slice(&colour(x, y));
            }
        }
        let mut out = [0; CURSOR_BYTES];
        let hot = convert_pointer(
            &PointerShape {
                kind: PointerKind::Color,
                width: 3,
                height: 2,
                pitch: 12,
                hot_x: 2,
                hot_y: 0,
                pixels: &bgra,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(hot, HotSpot { x: 2, y: 0 });
        out
    }

    /// (image pixel, the shape pixel it shows).
    type Moved = ((usize, usize), (usize, usize));

    /// Checks `out` holds exactly `expected` ((x, y) -> shape pixel) and nothing else.
    fn assert_image(out: &[u8; CURSOR_BYTES], expected: &[Moved]) {
        for y in 0..SIZE {
            for x in 0..SIZE {
                let want = expected
                    .iter()
                    .find(|(at, _)| *at == (x, y))
                    .map_or(TRANSPARENT, |(_, (sx, sy))| colour(*sx, *sy));
                assert_eq!(at(out, x, y), want, "({x}, {y})");
            }
        }
    }

    #[test]
    fn each_rotation_moves_exact_pixels_and_the_hot_spot() {
        let src = three_by_two();
        let hot = HotSpot { x: 2, y: 0 };
        // (rotation, rotated box, rotated hot spot, [(image pixel, shape pixel)]).
        let cases = [
            (
                Rotation::Identity,
                (3, 2),
                (2, 0),
                [
                    ((0, 0), (0, 0)),
                    ((1, 0), (1, 0)),
                    ((2, 0), (2, 0)),
                    ((0, 1), (0, 1)),
                    ((1, 1), (1, 1)),
                    ((2, 1), (2, 1)),
                ],
            ),
            (
                // (x, y) -> (y, 2 - x): the top row becomes the left column, bottom to top.
                Rotation::Rotate90,
                (2, 3),
                (0, 0),
                [
                    ((0, 0), (2, 0)),
                    ((1, 0), (2, 1)),
                    ((0, 1), (1, 0)),
                    ((1, 1), (1, 1)),
                    ((0, 2), (0, 0)),
                    ((1, 2), (0, 1)),
                ],
            ),
            (
                // (x, y) -> (2 - x, 1 - y).
                Rotation::Rotate180,
                (3, 2),
                (0, 1),
                [
                    ((2, 1), (0, 0)),
                    ((1, 1), (1, 0)),
                    ((0, 1), (2, 0)),
                    ((2, 0), (0, 1)),
                    ((1, 0), (1, 1)),
                    ((0, 0), (2, 1)),
                ],
            ),
            (
                // (x, y) -> (1 - y, x).
                Rotation::Rotate270,
                (2, 3),
                (1, 2),
                [
                    ((1, 0), (0, 0)),
                    ((1, 1), (1, 0)),
                    ((1, 2), (2, 0)),
                    ((0, 0), (0, 1)),
                    ((0, 1), (1, 1)),
                    ((0, 2), (2, 1)),
                ],
            ),
        ];
        for (rotation, size, rotated_hot, pixels) in cases {
            let mut out = [0xAB; CURSOR_BYTES];
            let r = rotate_cursor(&src, 3, 2, hot, rotation, &mut out).unwrap();
            assert_eq!((r.width, r.height), size, "{rotation:?}");
            assert_eq!((r.hot.x, r.hot.y), rotated_hot, "{rotation:?}");
            assert_image(&out, &pixels);
            // The hot spot goes where the present path's blit takes that pixel.
            let moved = rotate_rect(&Rect::new(2, 0, 3, 1), rotation, 3, 2);
            assert_eq!((moved.left as u32, moved.top as u32), rotated_hot);
        }
    }

    #[test]
    fn an_inversion_outline_past_the_shape_turns_with_it() {
        // 2x1 monochrome: pixel 0 black, pixel 1 inverts. The outline goes to (2, 0) and
        // (1, 1), outside the 2x1 shape; the rotated box is 2x3 (3x2 grown, turned).
        let pixels = [0b0100_0000, 0b0100_0000];
        let mut src = [0; CURSOR_BYTES];
        convert_pointer(
            &PointerShape {
                kind: PointerKind::Monochrome,
                width: 2,
                height: 1,
                pitch: 1,
                hot_x: 0,
                hot_y: 0,
                pixels: &pixels,
            },
            &mut src,
        )
        .unwrap();
        assert_eq!(at(&src, 2, 0), OPAQUE_WHITE);
        assert_eq!(at(&src, 1, 1), OPAQUE_WHITE);
        let mut out = [0; CURSOR_BYTES];
        let r = rotate_cursor(
            &src,
            2,
            1,
            HotSpot { x: 0, y: 0 },
            Rotation::Rotate90,
            &mut out,
        )
        .unwrap();
        // Box 3x2 -> (x, y) to (y, 2 - x).
        assert_eq!((r.width, r.height, r.hot), (2, 3, HotSpot { x: 0, y: 2 }));
        assert_eq!(at(&out, 0, 2), OPAQUE_BLACK, "shape pixel (0, 0)");
        assert_eq!(at(&out, 0, 1), OPAQUE_BLACK, "the inverting pixel (1, 0)");
        assert_eq!(at(&out, 0, 0), OPAQUE_WHITE, "outline (2, 0)");
        assert_eq!(at(&out, 1, 1), OPAQUE_WHITE, "outline (1, 1)");
        assert_eq!(at(&out, 1, 2), TRANSPARENT, "(0, 1)");
        assert_eq!(at(&out, 1, 0), TRANSPARENT, "(2, 1)");
    }

    #[test]
    fn bad_sizes_and_hot_spots_are_rejected_untouched() {
        let src = three_by_two();
        let mut out = [0xAB; CURSOR_BYTES];
        let hot = HotSpot { x: 0, y: 0 };
        for (w, h, hot) in [
            (0, 2, hot),
            (3, 0, hot),
            (65, 2, hot),
            (3, 65, hot),
            (3, 2, HotSpot { x: 3, y: 0 }),
            (3, 2, HotSpot { x: 0, y: 2 }),
        ] {
            assert_eq!(
                rotate_cursor(&src, w, h, hot, Rotation::Rotate90, &mut out),
                Err(Error::InvalidArgument)
            );
        }
        assert!(out.iter().all(|&b| b == 0xAB));
    }

    #[test]
    fn a_full_64x64_image_rotates_without_growing() {
        let mut src = [0; CURSOR_BYTES];
        for y in 0..SIZE {
            for x in 0..SIZE {
                put(&mut src, x, y, colour(x, y));
            }
        }
        for rotation in ROTATIONS {
            let mut out = [0; CURSOR_BYTES];
            let hot = HotSpot { x: 63, y: 0 };
            let r = rotate_cursor(&src, 64, 64, hot, rotation, &mut out).unwrap();
            assert_eq!((r.width, r.height), (64, 64));
            let moved = rotate_rect(&Rect::new(63, 0, 64, 1), rotation, 64, 64);
            assert_eq!((r.hot.x, r.hot.y), (moved.left as u32, moved.top as u32));
            assert_eq!(at(&out, r.hot.x as usize, r.hot.y as usize), colour(63, 0));
        }
    }

    proptest! {
        // Under Miri a few cases (see scripts/miri): each one turns four 64x64 images.
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 64 }))]

        #[test]
        fn four_quarter_turns_give_the_original(
            w in 1u32..=64,
            h in 1u32..=64,
            hot in (0u32..64, 0u32..64),
            seed in any::<u64>(),
        ) {
            let hot = HotSpot { x: hot.0 % w, y: hot.1 % h };
            // Straight-alpha colour pixels (alpha never 0, so none is dropped) from `seed`.
            let mut bgra = Vec::new();
            let mut state = seed | 1;
            for _ in 0..w * h {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let [b, g, r, a, ..] = state.to_le_bytes();
                bgra.extend_from_slice(&[b, g, r, a | 1]);
            }
            let mut image = [0; CURSOR_BYTES];
            convert_pointer(
                &PointerShape {
                    kind: PointerKind::Color,
                    width: w,
                    height: h,
                    pitch: w * 4,
                    hot_x: hot.x,
                    hot_y: hot.y,
                    pixels: &bgra,
                },
                &mut image,
            )
            .unwrap();
            let original = image;
            let mut turned = RotatedCursor { hot, width: w, height: h };
            for turns in 1..=4 {
                let mut out = [0xAB; CURSOR_BYTES];
                let before = turned;
                turned = rotate_cursor(
                    &image, before.width, before.height, before.hot, Rotation::Rotate90, &mut out,
                )
                .unwrap();
                prop_assert_eq!((turned.width, turned.height), (before.height, before.width));
                image = out;
                // n quarter turns are one turn by n * 90 degrees.
                let mut direct = [0; CURSOR_BYTES];
                let once = rotate_cursor(
                    &original, w, h, hot, ROTATIONS[turns % 4], &mut direct,
                )
                .unwrap();
                prop_assert_eq!(once, turned);
                prop_assert!(direct == image);
            }
            prop_assert_eq!(turned, RotatedCursor { hot, width: w, height: h });
            prop_assert!(image == original);
        }
    }
}
