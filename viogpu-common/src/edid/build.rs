//! A minimal EDID generator, for tests and for giving Windows an EDID when the device has none.

use alloc::vec::Vec;

use super::base::{DESCRIPTOR_LEN, HEADER};
use super::ext::{DID_TIMING_LEN, DID_TYPE_I_TIMING, TAG_DISPLAYID};
use super::{checksum_for, BLOCK_LEN};
use crate::fallible::try_extend_from_slice;
use crate::modes::MAX_DIMENSION;
use crate::{Error, Result};

/// Refresh rate of the generated preferred timing.
const REFRESH_HZ: u64 = 60;
/// Largest value of a 12-bit DTD size field.
const DTD_MAX_ACTIVE: u32 = 4095;
/// The name in the monitor name descriptor.
const MONITOR_NAME: &[u8] = b"viogpu";

/// Blanking and clock of a generated timing (CVT reduced-blanking-like, 60 Hz).
struct Generated {
    width: u32,
    height: u32,
    h_blank: u32,
    h_front: u32,
    h_sync: u32,
    v_blank: u32,
    v_front: u32,
    v_sync: u32,
    /// Pixel clock in 10 kHz units, rounded.
    clock_10khz: u64,
    width_mm: u32,
    height_mm: u32,
}

impl Generated {
    fn new(width: u32, height: u32) -> Self {
        // Reduced blanking: 160 pixels per line, and enough lines for ~460 us of vertical
        // blanking at 60 Hz (2.84% of the frame), at least 15.
        let (h_blank, h_front, h_sync) = (160, 48, 32);
        let (v_front, v_sync) = (3, 6);
        let v_blank = (height * 284 / 10_000 + 1).max(15);
        let total = u64::from(width + h_blank) * u64::from(height + v_blank);
        let clock_10khz = (total * REFRESH_HZ + 5_000) / 10_000;
        // Physical size at 96 dpi.
        let mm = |px: u32| px * 254 / 960;
        Self {
            width,
            height,
            h_blank,
            h_front,
            h_sync,
            v_blank,
            v_front,
            v_sync,
            clock_10khz,
            width_mm: mm(width),
            height_mm: mm(height),
        }
    }

    /// True when the 12-bit sizes and the 16-bit clock of a base-block DTD can hold it.
    fn fits_dtd(&self) -> bool {
        self.width <= DTD_MAX_ACTIVE && self.height <= DTD_MAX_ACTIVE && self.clock_10khz <= 0xffff
    }

    fn dtd(&self) -> [u8; DESCRIPTOR_LEN] {
        let lo = |v: u32| (v & 0xff) as u8;
        let hi = |v: u32| ((v >> 8) & 0x0f) as u8;
        let clock = u16::try_from(self.clock_10khz)
            .unwrap_or(u16::MAX)
            .to_le_bytes();
        let mut d = [0u8; DESCRIPTOR_LEN];
        d[0] = clock[0];
        d[1] = clock[1];
        d[2] = lo(self.width);
        d[3] = lo(self.h_blank);
        d[4] = hi(self.width) << 4 | hi(self.h_blank);
        d[5] = lo(self.height);
        d[6] = lo(self.v_blank);
        d[7] = hi(self.height) << 4 | hi(self.v_blank);
        d[8] = lo(self.h_front);
        d[9] = lo(self.h_sync);
        d[10] = ((self.v_front & 0x0f) << 4 | (self.v_sync & 0x0f)) as u8;
        d[11] = ((self.h_front >> 8 & 3) << 6
            | (self.h_sync >> 8 & 3) << 4
            | (self.v_front >> 4 & 3) << 2
            | (self.v_sync >> 4 & 3)) as u8;
        d[12] = lo(self.width_mm);
        d[13] = lo(self.height_mm);
        d[14] = hi(self.width_mm) << 4 | hi(self.height_mm);
        // Digital separate sync, +hsync, -vsync (the CVT-RB polarities).
        d[17] = 0x1a;
        d
    }

    /// The DisplayID Type I form: every count minus one in 16 bits, clock minus one in 24.
    fn displayid_timing(&self) -> [u8; DID_TIMING_LEN] {
        let word = |v: u32| {
            u16::try_from(v.saturating_sub(1))
                .unwrap_or(u16::MAX)
                .to_le_bytes()
        };
        let clock = u32::try_from(self.clock_10khz.saturating_sub(1))
            .unwrap_or(0xff_ffff)
            .min(0xff_ffff)
            .to_le_bytes();
        let mut d = [0u8; DID_TIMING_LEN];
        d[0] = clock[0];
        d[1] = clock[1];
        d[2] = clock[2];
        // Preferred timing, aspect ratio undefined.
        d[3] = 0x88;
        let fields = [
            self.width,
            self.h_blank,
            self.h_front,
            self.h_sync,
            self.height,
            self.v_blank,
            self.v_front,
            self.v_sync,
        ];
        for (slot, value) in d[4..].chunks_exact_mut(2).zip(fields) {
            slot.copy_from_slice(&word(value));
        }
        // Positive hsync polarity (bit 15 of the sync offset).
        d[9] |= 0x80;
        d
    }
}

/// Builds a valid EDID 1.4 whose preferred mode is `width` x `height` at 60 Hz.
///
/// The base block holds: manufacturer `RHT`, product `0x1234` (the ids of QEMU's own virtual
/// monitor, so Windows sees the same monitor whether the EDID came from QEMU or from here),
/// the established and standard timings of common modes no larger than the preferred one,
/// and the descriptors: the preferred detailed timing, a range limits descriptor, the monitor
/// name "viogpu", and a dummy.
///
/// A DTD stores sizes in 12 bits and the pixel clock in 16 bits (655.35 MHz), so a mode wider
/// or taller than 4095 pixels, or too fast for that clock, cannot be a DTD. Then (as QEMU does)
/// the base block has no DTD, and a DisplayID 1.3 extension block carries the preferred mode
/// as a Type I timing (16-bit sizes, 24-bit clock); the result is 256 bytes instead of 128.
/// [`parse`](super::parse) reads either form back to the same preferred size.
///
/// `width` and `height` must be in `1..=MAX_DIMENSION`, else [`Error::InvalidArgument`].
pub fn build(width: u32, height: u32) -> Result<Vec<u8>> {
    if !(1..=MAX_DIMENSION).contains(&width) || !(1..=MAX_DIMENSION).contains(&height) {
        return Err(Error::InvalidArgument);
    }
    let timing = Generated::new(width, height);
    let large = !timing.fits_dtd();

    let mut base = [0u8; BLOCK_LEN];
    put(&mut base, 0, &HEADER);
    let vendor: u16 =
        (u16::from(b'R' - b'@') << 10) | (u16::from(b'H' - b'@') << 5) | u16::from(b'T' - b'@');
    put(&mut base, 8, &vendor.to_be_bytes());
    put(&mut base, 10, &0x1234u16.to_le_bytes());
    // Serial 0, week 0, year 2024.
    base[17] = (2024 - 1990) as u8;
    base[18] = 1;
    base[19] = 4;
    // Digital input, 8 bits per colour, DisplayPort.
    base[20] = 0xa5;
    base[21] = u8::try_from(timing.width_mm / 10).unwrap_or(u8::MAX);
    base[22] = u8::try_from(timing.height_mm / 10).unwrap_or(u8::MAX);
    // Gamma 2.2.
    base[23] = 120;
    // sRGB default colour space, preferred timing includes the native format.
    base[24] = 0x06;
    put(&mut base, 25, &srgb_chromaticity());

    let fits = |w: u32, h: u32| w <= width && h <= height;
    // Established: 640x480@60 (byte 35 bit 5), 800x600@60 (35 bit 0), 1024x768@60 (36 bit 3).
    if fits(640, 480) {
        base[35] |= 1 << 5;
    }
    if fits(800, 600) {
        base[35] |= 1;
    }
    if fits(1024, 768) {
        base[36] |= 1 << 3;
    }
    // Standard timings at 60 Hz: (width / 8 - 31, aspect code << 6).
    const STANDARD: [(u32, u32, u8); 8] = [
        (1280, 720, 3),
        (1280, 800, 0),
        (1280, 1024, 2),
        (1440, 900, 0),
        (1600, 900, 3),
        (1680, 1050, 0),
        (1920, 1080, 3),
        (1920, 1200, 0),
    ];
    let mut std_slots = [0x01u8; 16];
    let chosen = STANDARD.iter().filter(|(w, h, _)| fits(*w, *h));
    for (slot, (w, _, aspect)) in std_slots.chunks_exact_mut(2).zip(chosen) {
        slot.copy_from_slice(&[u8::try_from(w / 8 - 31).unwrap_or(1), aspect << 6]);
    }
    put(&mut base, 38, &std_slots);

    // The four descriptor slots, on the stack (no heap): the DTD (unless large), range
    // limits, the name, then dummy descriptors.
    let dummy = display_descriptor(0x10, &[]);
    let mut descriptors = [dummy; 4];
    let firsts = [
        (!large).then(|| timing.dtd()),
        Some(range_limits()),
        Some(name_descriptor()),
    ];
    for (slot, desc) in descriptors.iter_mut().zip(firsts.into_iter().flatten()) {
        *slot = desc;
    }
    for (i, desc) in descriptors.iter().enumerate() {
        put(&mut base, 54 + i * DESCRIPTOR_LEN, desc);
    }

    // The only heap use: the result, reserved at its final size (fallible).
    let mut out = Vec::new();
    out.try_reserve_exact(if large { 2 * BLOCK_LEN } else { BLOCK_LEN })
        .map_err(|_| Error::NoMemory)?;
    if large {
        base[126] = 1;
        base[127] = checksum_for(&base);
        try_extend_from_slice(&mut out, &base)?;
        try_extend_from_slice(&mut out, &displayid_block(&timing))?;
    } else {
        base[127] = checksum_for(&base);
        try_extend_from_slice(&mut out, &base)?;
    }
    Ok(out)
}

/// Copies `bytes` into `block` at `at`; all callers use constant in-range offsets.
fn put(block: &mut [u8; BLOCK_LEN], at: usize, bytes: &[u8]) {
    if let Some(dst) = at
        .checked_add(bytes.len())
        .and_then(|end| block.get_mut(at..end))
    {
        dst.copy_from_slice(bytes);
    }
}

/// A display descriptor with tag `tag` and up to 13 payload bytes.
fn display_descriptor(tag: u8, payload: &[u8]) -> [u8; DESCRIPTOR_LEN] {
    let mut d = [0u8; DESCRIPTOR_LEN];
    d[3] = tag;
    for (slot, b) in d[5..].iter_mut().zip(payload) {
        *slot = *b;
    }
    d
}

fn name_descriptor() -> [u8; DESCRIPTOR_LEN] {
    // Text, then a line feed, then spaces.
    let mut text = [b' '; 13];
    for (slot, b) in text.iter_mut().zip(MONITOR_NAME.iter().chain(b"\n")) {
        *slot = *b;
    }
    display_descriptor(0xfc, &text)
}

fn range_limits() -> [u8; DESCRIPTOR_LEN] {
    // 24..120 Hz vertical, 1..510 kHz horizontal (EDID 1.4 +255 offset on the maximum, flag
    // 0x08), 2550 MHz pixel clock, "range limits only"; then the line feed and space padding.
    let mut d = display_descriptor(
        0xfd,
        &[
            24, 120, 1, 255, 255, 0x01, b'\n', b' ', b' ', b' ', b' ', b' ', b' ',
        ],
    );
    d[4] = 0x08;
    d
}

/// The sRGB primaries and D65 white point as the ten 10-bit EDID chromaticity bytes.
fn srgb_chromaticity() -> [u8; 10] {
    // Coordinates in 1/10000, converted to 10-bit binary fractions (round to nearest).
    let ten = |v: u32| (v * 1024 + 5_000) / 10_000;
    let [rx, ry, gx, gy, bx, by, wx, wy] = [6400, 3300, 3000, 6000, 1500, 600, 3127, 3290].map(ten);
    let low = |a: u32, b: u32, c: u32, d: u32| {
        ((a & 3) << 6 | (b & 3) << 4 | (c & 3) << 2 | (d & 3)) as u8
    };
    let high = |v: u32| (v >> 2) as u8;
    [
        low(rx, ry, gx, gy),
        low(bx, by, wx, wy),
        high(rx),
        high(ry),
        high(gx),
        high(gy),
        high(bx),
        high(by),
        high(wx),
        high(wy),
    ]
}

/// A DisplayID 1.3 extension block with one Type I timing, the preferred mode.
fn displayid_block(timing: &Generated) -> [u8; BLOCK_LEN] {
    let mut b = [0u8; BLOCK_LEN];
    b[0] = TAG_DISPLAYID;
    // Section: version 1.3, payload length 3 + 20, product type "standalone display", no
    // extensions.
    b[1] = 0x13;
    b[2] = (3 + DID_TIMING_LEN) as u8;
    b[3] = 0x03;
    b[4] = 0;
    b[5] = DID_TYPE_I_TIMING;
    b[6] = 0;
    b[7] = DID_TIMING_LEN as u8;
    put(&mut b, 8, &timing.displayid_timing());
    // Section checksum after the payload, then the EDID block checksum.
    const SECTION_END: usize = 5 + 3 + DID_TIMING_LEN;
    let sum = b
        .get(1..SECTION_END)
        .unwrap_or(&[])
        .iter()
        .fold(0u8, |s, v| s.wrapping_add(*v));
    b[SECTION_END] = 0u8.wrapping_sub(sum);
    b[127] = checksum_for(&b);
    b
}
