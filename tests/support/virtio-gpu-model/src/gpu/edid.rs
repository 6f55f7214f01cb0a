//! The EDID the model answers `GET_EDID` with: one 128-byte EDID 1.4 base block whose
//! preferred (first detailed) timing is the scanout's preferred size, like QEMU's
//! `qemu_edid_generate` does with the `xres`/`yres` it is given.
//!
//! A detailed timing descriptor holds at most 4095 pixels per side; larger sizes are clamped
//! to 4095 here (QEMU adds a DisplayID extension for them, which this model does not).

/// Size of an EDID base block.
pub const EDID_BLOCK_LEN: usize = 128;

/// Largest side a detailed timing descriptor can hold (12 bits).
pub const DTD_MAX_SIDE: u32 = 4095;

const HEADER: [u8; 8] = [0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];

/// Horizontal blanking, front porch and sync width (CVT reduced-blanking values).
const H_BLANK: u32 = 160;
const H_FRONT: u32 = 48;
const H_SYNC: u32 = 32;
/// Vertical blanking, front porch and sync width.
const V_BLANK: u32 = 30;
const V_FRONT: u32 = 3;
const V_SYNC: u32 = 6;

/// Millimetres per pixel x 1000 for the reported physical size (about 96 DPI).
const UM_PER_PIXEL: u32 = 264;

/// An EDID base block announcing `width` x `height` at 60 Hz as the preferred mode.
pub fn generate(width: u32, height: u32) -> [u8; EDID_BLOCK_LEN] {
    let width = width.clamp(1, DTD_MAX_SIDE);
    let height = height.clamp(1, DTD_MAX_SIDE);
    let mut e = [0u8; EDID_BLOCK_LEN];
    e[..8].copy_from_slice(&HEADER);
    // Manufacturer "QEM": three 5-bit letters, big-endian.
    let id: u16 =
        (u16::from(b'Q' - b'@') << 10) | (u16::from(b'E' - b'@') << 5) | u16::from(b'M' - b'@');
    e[8..10].copy_from_slice(&id.to_be_bytes());
    e[10..12].copy_from_slice(&0x1234u16.to_le_bytes()); // product code
    e[16] = 1; // week
    e[17] = 34; // 2024
    e[18] = 1; // EDID 1.4
    e[19] = 4;
    e[20] = 0xa5; // digital, 8 bits per colour, DisplayPort
    let width_mm = width * UM_PER_PIXEL / 1000;
    let height_mm = height * UM_PER_PIXEL / 1000;
    e[21] = (width_mm / 10).min(255) as u8;
    e[22] = (height_mm / 10).min(255) as u8;
    e[23] = 120; // gamma 2.2
    e[24] = 0x06; // sRGB default, preferred timing is native
    e[25..35].copy_from_slice(&[0xee, 0x91, 0xa3, 0x54, 0x4c, 0x99, 0x26, 0x0f, 0x50, 0x54]);
    // No established timings (35..38); all eight standard timings unused.
    for slot in e[38..54].chunks_exact_mut(2) {
        slot.copy_from_slice(&[0x01, 0x01]);
    }
    e[54..72].copy_from_slice(&detailed_timing(width, height, width_mm, height_mm));
    e[72..90].copy_from_slice(&text_descriptor(0xfc, b"QEMU Monitor"));
    e[90..108].copy_from_slice(&range_limits());
    e[108..126].copy_from_slice(&text_descriptor(0xff, b"MODEL0001"));
    e[126] = 0; // no extension blocks
    let sum = e[..127].iter().fold(0u8, |acc, b| acc.wrapping_add(*b));
    e[127] = 0u8.wrapping_sub(sum);
    e
}

/// A detailed timing descriptor for `width` x `height`, 60 Hz when the pixel clock fits in
/// the 16-bit field, slower otherwise.
fn detailed_timing(width: u32, height: u32, width_mm: u32, height_mm: u32) -> [u8; 18] {
    let total = u64::from(width + H_BLANK) * u64::from(height + V_BLANK);
    let clock_10khz = (total * 60 / 10_000).clamp(1, u64::from(u16::MAX)) as u16;
    let mut d = [0u8; 18];
    d[0..2].copy_from_slice(&clock_10khz.to_le_bytes());
    d[2] = width as u8;
    d[3] = H_BLANK as u8;
    d[4] = (((width >> 8) & 0xf) << 4) as u8 | ((H_BLANK >> 8) & 0xf) as u8;
    d[5] = height as u8;
    d[6] = V_BLANK as u8;
    d[7] = (((height >> 8) & 0xf) << 4) as u8 | ((V_BLANK >> 8) & 0xf) as u8;
    d[8] = H_FRONT as u8;
    d[9] = H_SYNC as u8;
    d[10] = ((V_FRONT & 0xf) << 4) as u8 | (V_SYNC & 0xf) as u8;
    d[11] = (((H_FRONT >> 8) & 3) << 6) as u8
        | (((H_SYNC >> 8) & 3) << 4) as u8
        | (((V_FRONT >> 4) & 3) << 2) as u8
        | ((V_SYNC >> 4) & 3) as u8;
    d[12] = width_mm as u8;
    d[13] = height_mm as u8;
    d[14] = (((width_mm >> 8) & 0xf) << 4) as u8 | ((height_mm >> 8) & 0xf) as u8;
    d[17] = 0x1e; // digital separate sync, +hsync, +vsync
    d
}

/// A display descriptor carrying up to 13 bytes of text (`0xfc` name, `0xff` serial).
fn text_descriptor(tag: u8, text: &[u8]) -> [u8; 18] {
    let mut d = [0u8; 18];
    d[3] = tag;
    let body = &mut d[5..];
    body.fill(b' ');
    let n = text.len().min(13);
    body[..n].copy_from_slice(&text[..n]);
    if n < 13 {
        body[n] = b'\n';
    }
    d
}

/// A range-limits descriptor: 50-125 Hz vertical, 30-160 kHz horizontal, 600 MHz clock.
fn range_limits() -> [u8; 18] {
    let mut d = [0u8; 18];
    d[3] = 0xfd;
    d[5] = 50;
    d[6] = 125;
    d[7] = 30;
    d[8] = 160;
    d[9] = 60; // max pixel clock / 10 MHz
    d[10] = 0x01; // range limits only, no timing formula
    d[11] = b'\n';
    d[12..18].fill(b' ');
    d
}
