//! Screen images read back from QEMU: [`RgbImage`] (8-bit RGB, row-major), parsed from the
//! binary PPM (`P6`) files that QMP `screendump` writes, and saved as PNG for a human to look
//! at when a test fails.

use std::path::Path;

/// An 8-bit RGB image, rows top to bottom, 3 bytes per pixel.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbImage {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl std::fmt::Debug for RgbImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RgbImage")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl RgbImage {
    /// An image from raw RGB bytes, or `None` if the length does not match.
    pub fn from_rgb(width: u32, height: u32, pixels: Vec<u8>) -> Option<Self> {
        let expected = (width as usize)
            .checked_mul(height as usize)?
            .checked_mul(3)?;
        (pixels.len() == expected).then_some(Self {
            width,
            height,
            pixels,
        })
    }

    /// Parses a binary PPM (`P6`, maxval 255) as QEMU writes it.
    pub fn from_ppm(data: &[u8]) -> Result<Self, String> {
        let mut at = 0;
        let mut fields = Vec::with_capacity(4);
        // Magic, width, height, maxval: whitespace-separated, `#` comments to end of line.
        while fields.len() < 4 {
            while let Some(&b) = data.get(at) {
                if b == b'#' {
                    while data.get(at).is_some_and(|&b| b != b'\n') {
                        at += 1;
                    }
                } else if b.is_ascii_whitespace() {
                    at += 1;
                } else {
                    break;
                }
            }
            let start = at;
            while data.get(at).is_some_and(|b| !b.is_ascii_whitespace()) {
                at += 1;
            }
            if start == at {
                return Err("PPM header truncated".into());
            }
            fields.push(String::from_utf8_lossy(&data[start..at]).into_owned());
        }
        // Exactly one whitespace byte separates the header from the pixels.
        at += 1;
        if fields[0] != "P6" {
            return Err(format!("not a binary PPM (magic {:?})", fields[0]));
        }
        let number = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| format!("bad PPM number {s:?}"))
        };
        let (width, height, maxval) = (
            number(&fields[1])?,
            number(&fields[2])?,
            number(&fields[3])?,
        );
        if maxval != 255 {
            return Err(format!("PPM maxval {maxval} (only 255 is supported)"));
        }
        let body = data.get(at..).unwrap_or_default();
        let got = body.len();
        let bad_length = || format!("PPM {width}x{height} has {got} pixel bytes");
        let row = width as usize * 3;
        // QEMU 7.2's ppm_save writes each row at the pixman stride of its line buffer, which
        // is rounded up to 4 bytes: for widths like 1366 every row carries padding.
        let padded_row = row.next_multiple_of(4);
        let pixels = if got == row * height as usize {
            body.to_vec()
        } else if got == padded_row * height as usize && padded_row != row {
            let mut pixels = Vec::with_capacity(row * height as usize);
            for padded in body.chunks_exact(padded_row) {
                pixels.extend_from_slice(&padded[..row]);
            }
            pixels
        } else {
            return Err(bad_length());
        };
        Self::from_rgb(width, height, pixels).ok_or_else(bad_length)
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// `(width, height)`.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The raw RGB bytes.
    pub fn as_rgb(&self) -> &[u8] {
        &self.pixels
    }

    /// The pixel at `(x, y)`, or `None` outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (y as usize * self.width as usize + x as usize) * 3;
        let p = self.pixels.get(at..at + 3)?;
        Some([p[0], p[1], p[2]])
    }

    /// How many pixels have exactly this color.
    pub fn count_color(&self, rgb: [u8; 3]) -> usize {
        self.pixels.chunks_exact(3).filter(|p| *p == rgb).count()
    }

    /// Writes the image as an RGB PNG.
    pub fn save_png(&self, path: &Path) -> Result<(), String> {
        let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&self.pixels)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_ppm_with_comment_and_reads_pixels() {
        let mut ppm = b"P6\n# made by hand\n2 1\n255\n".to_vec();
        ppm.extend_from_slice(&[1, 2, 3, 250, 128, 0]);
        let img = RgbImage::from_ppm(&ppm).unwrap();
        assert_eq!(img.size(), (2, 1));
        assert_eq!(img.pixel(0, 0), Some([1, 2, 3]));
        assert_eq!(img.pixel(1, 0), Some([250, 128, 0]));
        assert_eq!(img.pixel(2, 0), None);
        assert_eq!(img.count_color([250, 128, 0]), 1);
    }

    #[test]
    fn strips_the_row_padding_qemu_writes_for_odd_widths() {
        // 3 pixels = 9 bytes per row, written as 12 (pixman stride).
        let mut ppm = b"P6\n3 2\n255\n".to_vec();
        ppm.extend_from_slice(&[1, 1, 1, 2, 2, 2, 3, 3, 3, 0xEE, 0xEE, 0xEE]);
        ppm.extend_from_slice(&[4, 4, 4, 5, 5, 5, 6, 6, 6, 0xEE, 0xEE, 0xEE]);
        let img = RgbImage::from_ppm(&ppm).unwrap();
        assert_eq!(img.size(), (3, 2));
        assert_eq!(img.pixel(2, 0), Some([3, 3, 3]));
        assert_eq!(img.pixel(0, 1), Some([4, 4, 4]));
        assert_eq!(img.count_color([0xEE, 0xEE, 0xEE]), 0);
    }

    #[test]
    fn rejects_wrong_magic_maxval_and_length() {
        assert!(RgbImage::from_ppm(b"P3\n1 1\n255\n\x00\x00\x00").is_err());
        assert!(RgbImage::from_ppm(b"P6\n1 1\n65535\n\x00\x00\x00").is_err());
        assert!(RgbImage::from_ppm(b"P6\n2 1\n255\n\x00\x00\x00").is_err());
        assert!(RgbImage::from_ppm(b"P6\n2").is_err());
    }
}
