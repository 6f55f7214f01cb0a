//! What the runner draws, defined once so the host tests can compute the pixels they expect:
//! the full-frame test pattern, the pointer shapes of the `cursor` command, and the bitmap of
//! the `bugcheck` command.
//!
//! Colors are `0x00RRGGBB` values. In the runner's source surface (B8G8R8A8, like a Windows
//! desktop) a color is the bytes `[B, G, R, 0xFF]`; QEMU's screendump shows it as `[R, G, B]`.

/// The grid color of the test pattern.
pub const GRID: u32 = 0x00FF_FFFF;
/// Grid lines are this many pixels apart.
pub const GRID_STEP: u32 = 64;

/// The test pattern for a `width` x `height` desktop at `(x, y)`: white grid lines every
/// [`GRID_STEP`] pixels plus a white last row and column (so the exact size shows), and in
/// between a red gradient from left to right, a green gradient from top to bottom, and a
/// blue checkerboard of grid cells. Under any rotation or offset error, pixels differ.
pub fn pattern_pixel(x: u32, y: u32, width: u32, height: u32) -> u32 {
    if x.is_multiple_of(GRID_STEP)
        || y.is_multiple_of(GRID_STEP)
        || x + 1 == width
        || y + 1 == height
    {
        return GRID;
    }
    let red = u64::from(x) * 255 / u64::from(width.saturating_sub(1).max(1));
    let green = u64::from(y) * 255 / u64::from(height.saturating_sub(1).max(1));
    let blue: u64 = if (x / GRID_STEP + y / GRID_STEP).is_multiple_of(2) {
        0x40
    } else {
        0xC0
    };
    ((red.min(255) << 16) | (green.min(255) << 8) | blue) as u32
}

/// The B8G8R8A8 bytes of a color (alpha opaque).
pub fn bgra(color: u32) -> [u8; 4] {
    let [b, g, r, _] = color.to_le_bytes();
    [b, g, r, 0xFF]
}

/// The screendump bytes `[R, G, B]` of a color.
pub fn rgb(color: u32) -> [u8; 3] {
    let [b, g, r, _] = color.to_le_bytes();
    [r, g, b]
}

/// Parses `RRGGBB` (hex, as in the runner's commands).
pub fn parse_color(text: &str) -> Option<u32> {
    if text.len() != 6 {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

/// Width of the bugcheck bitmap.
pub const BUGCHECK_WIDTH: u32 = 256;
/// Height of the bugcheck bitmap.
pub const BUGCHECK_HEIGHT: u32 = 96;
/// Background of the bugcheck bitmap.
pub const BUGCHECK_BLUE: u32 = 0x0000_00AA;
/// Text bars of the bugcheck bitmap.
pub const BUGCHECK_WHITE: u32 = 0x00FF_FFFF;

/// The bugcheck bitmap at `(x, y)`: blue, with three white "text lines" of different lengths.
pub fn bugcheck_pixel(x: u32, y: u32) -> u32 {
    let line = |top: u32, right: u32| (top..top + 8).contains(&y) && (16..right).contains(&x);
    if line(16, 240) || line(40, 160) || line(64, 200) {
        BUGCHECK_WHITE
    } else {
        BUGCHECK_BLUE
    }
}

/// A `width` x `height` B8G8R8A8 image of `pixel(x, y)`, rows `width * 4` bytes apart.
pub fn image(width: u32, height: u32, pixel: impl Fn(u32, u32) -> u32) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(width as usize * height as usize * 4);
    for y in 0..height {
        for x in 0..width {
            bytes.extend_from_slice(&bgra(pixel(x, y)));
        }
    }
    bytes
}

/// The pointer kinds of the `cursor` command, by their command-line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerName {
    /// `mono`: a 32x32 monochrome arrow (AND/XOR masks), hot spot at its tip.
    Mono,
    /// `color`: a 32x32 premultiplied-alpha red disc, hot spot in its middle.
    Color,
    /// `masked`: a 32x32 masked-color green square with a transparent border.
    Masked,
}

impl PointerName {
    /// Parses `mono`, `color` or `masked`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "mono" => Some(Self::Mono),
            "color" => Some(Self::Color),
            "masked" => Some(Self::Masked),
            _ => None,
        }
    }
}

/// A pointer shape in the layout `DXGKARG_SETPOINTERSHAPE` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointerBitmap {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels (of one mask, for monochrome).
    pub height: u32,
    /// Bytes per row.
    pub pitch: u32,
    /// Hot spot column.
    pub hot_x: u32,
    /// Hot spot row.
    pub hot_y: u32,
    /// The bits.
    pub pixels: Vec<u8>,
}

/// Side of every pointer shape the runner builds.
pub const POINTER_SIZE: u32 = 32;

/// Builds the pointer shape `name`.
pub fn pointer(name: PointerName) -> PointerBitmap {
    let n = POINTER_SIZE;
    match name {
        PointerName::Mono => {
            // AND mask then XOR mask, 1 bpp, MSB first: the triangle x <= y is opaque, with a
            // black outline (AND 0, XOR 0) and a white inside (AND 0, XOR 1).
            let pitch = n / 8;
            let mut pixels = vec![0u8; (pitch * n * 2) as usize];
            for y in 0..n {
                for x in 0..n {
                    let inside = x <= y;
                    let edge = x == 0 || x == y || y == n - 1;
                    let byte = (y * pitch + x / 8) as usize;
                    let bit = 0x80u8 >> (x % 8);
                    if !inside {
                        pixels[byte] |= bit;
                    } else if !edge {
                        pixels[byte + (pitch * n) as usize] |= bit;
                    }
                }
            }
            PointerBitmap {
                width: n,
                height: n,
                pitch,
                hot_x: 0,
                hot_y: 0,
                pixels,
            }
        }
        PointerName::Color => {
            // Opaque red inside the disc, fully transparent (all zero) outside: valid
            // premultiplied alpha.
            let c = n as i32 / 2;
            let mut pixels = vec![0u8; (n * n * 4) as usize];
            for (i, px) in pixels.chunks_exact_mut(4).enumerate() {
                let (dx, dy) = ((i as u32 % n) as i32 - c, (i as u32 / n) as i32 - c);
                if dx * dx + dy * dy < c * c {
                    px.copy_from_slice(&[0x00, 0x00, 0xFF, 0xFF]);
                }
            }
            PointerBitmap {
                width: n,
                height: n,
                pitch: n * 4,
                hot_x: n / 2,
                hot_y: n / 2,
                pixels,
            }
        }
        PointerName::Masked => {
            let mut pixels = vec![0u8; (n * n * 4) as usize];
            for (i, px) in pixels.chunks_exact_mut(4).enumerate() {
                let (x, y) = (i as u32 % n, i as u32 / n);
                let inner = (8..24).contains(&x) && (8..24).contains(&y);
                // Alpha 0: the RGB value replaces the screen; 0xFF with RGB 0: transparent.
                px.copy_from_slice(if inner {
                    &[0x00, 0xC0, 0x00, 0x00]
                } else {
                    &[0, 0, 0, 0xFF]
                });
            }
            PointerBitmap {
                width: n,
                height: n,
                pitch: n * 4,
                hot_x: 8,
                hot_y: 8,
                pixels,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_marks_grid_edges_and_gradients() {
        let (w, h) = (1280, 800);
        assert_eq!(pattern_pixel(0, 5, w, h), GRID);
        assert_eq!(pattern_pixel(64, 5, w, h), GRID);
        assert_eq!(pattern_pixel(w - 1, 5, w, h), GRID);
        assert_eq!(pattern_pixel(5, h - 1, w, h), GRID);
        assert_eq!(pattern_pixel(1, 1, w, h), 0x0000_0040);
        assert_eq!(pattern_pixel(65, 1, w, h) & 0xFF, 0xC0);
        assert_eq!(pattern_pixel(w - 2, h - 2, w, h) >> 8, 0xFEFE);
    }

    #[test]
    fn colors_convert_between_forms() {
        assert_eq!(parse_color("FF8000"), Some(0x00FF_8000));
        assert_eq!(parse_color("FF80"), None);
        assert_eq!(parse_color("GG8000"), None);
        assert_eq!(bgra(0x00FF_8000), [0x00, 0x80, 0xFF, 0xFF]);
        assert_eq!(rgb(0x00FF_8000), [0xFF, 0x80, 0x00]);
    }

    #[test]
    fn pointer_shapes_have_consistent_sizes() {
        for name in [PointerName::Mono, PointerName::Color, PointerName::Masked] {
            let p = pointer(name);
            let rows = if name == PointerName::Mono {
                2 * p.height
            } else {
                p.height
            };
            assert_eq!(p.pixels.len(), (p.pitch * rows) as usize, "{name:?}");
            assert!(p.hot_x < p.width && p.hot_y < p.height);
        }
        assert_eq!(PointerName::parse("masked"), Some(PointerName::Masked));
        assert_eq!(PointerName::parse("arrow"), None);
    }

    #[test]
    fn bugcheck_bitmap_is_blue_with_white_lines() {
        assert_eq!(bugcheck_pixel(0, 0), BUGCHECK_BLUE);
        assert_eq!(bugcheck_pixel(16, 16), BUGCHECK_WHITE);
        assert_eq!(bugcheck_pixel(239, 23), BUGCHECK_WHITE);
        assert_eq!(bugcheck_pixel(240, 16), BUGCHECK_BLUE);
        assert_eq!(bugcheck_pixel(200, 40), BUGCHECK_BLUE);
    }
}
