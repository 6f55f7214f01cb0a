//! The base EDID block: identification, descriptors, standard and established timings.

use alloc::string::String;
use alloc::vec::Vec;

use super::tables::{standard_timing, ESTABLISHED};
use super::{checksum_ok, Collected, DetailedTiming, Edid, RangeLimits, TimingSource, BLOCK_LEN};
use crate::fallible::try_push;
use crate::{Error, Result};

/// The fixed 8-byte header of every base block.
pub(super) const HEADER: [u8; 8] = [0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];

/// Length of a detailed timing / display descriptor.
pub(super) const DESCRIPTOR_LEN: usize = 18;

/// Offset of the four descriptors in the base block.
const DESCRIPTORS_AT: usize = 54;

pub(super) fn parse_base(block: &[u8; BLOCK_LEN], out: &mut Collected) -> Result<Edid> {
    if block[..8] != HEADER {
        return Err(Error::Malformed("EDID header"));
    }
    if !checksum_ok(block) {
        return Err(Error::Malformed("EDID base block checksum"));
    }
    let (version, revision) = (block[18], block[19]);
    if version != 1 {
        return Err(Error::Malformed("EDID version is not 1.x"));
    }
    let mut edid = Edid {
        version,
        revision,
        manufacturer: manufacturer(u16::from_be_bytes([block[8], block[9]])),
        product_code: u16::from_le_bytes([block[10], block[11]]),
        serial_number: u32::from_le_bytes([block[12], block[13], block[14], block[15]]),
        screen_size_cm: (block[21], block[22]),
        name: None,
        serial: None,
        range: None,
        preferred: None,
        timings: Vec::new(),
        detailed: Vec::new(),
        extension_count: block[126],
    };

    let descriptors = block
        .get(DESCRIPTORS_AT..DESCRIPTORS_AT + 4 * DESCRIPTOR_LEN)
        .unwrap_or(&[]);
    for chunk in descriptors.chunks_exact(DESCRIPTOR_LEN) {
        let Ok(desc) = <&[u8; DESCRIPTOR_LEN]>::try_from(chunk) else {
            continue;
        };
        match decode_dtd(desc) {
            Some(dtd) => {
                if let Some(t) = dtd.timing(TimingSource::Detailed) {
                    if out.has_room() {
                        try_push(&mut out.base_dtds, t)?;
                        try_push(&mut out.detailed, dtd)?;
                    }
                }
            }
            None => display_descriptor(desc, revision, &mut edid, out)?,
        }
    }

    // Standard timings: eight 2-byte entries at 38.
    if let Some(std) = block.get(38..54) {
        for pair in std.chunks_exact(2) {
            if let (Some(&a), Some(&b)) = (pair.first(), pair.get(1)) {
                if let Some(t) = standard_timing(a, b, revision) {
                    if out.has_room() {
                        try_push(&mut out.standard, t)?;
                    }
                }
            }
        }
    }

    // Established timings I and II (bytes 35, 36) and the one manufacturer bit (37, bit 7).
    let bits = u32::from(block[35]) << 16 | u32::from(block[36]) << 8 | u32::from(block[37]);
    for (i, t) in ESTABLISHED.iter().enumerate() {
        if bits & (1 << (23 - i)) != 0 && out.has_room() {
            try_push(&mut out.established, *t)?;
        }
    }
    Ok(edid)
}

/// Decodes the three 5-bit letters of the PNP id (1 = 'A').
fn manufacturer(raw: u16) -> [u8; 3] {
    let letter = |v: u16| match u8::try_from(v & 0x1f) {
        Ok(n @ 1..=26) => b'A' + n - 1,
        _ => b'?',
    };
    [letter(raw >> 10), letter(raw >> 5), letter(raw)]
}

/// Decodes an 18-byte detailed timing descriptor; `None` when it is a display descriptor
/// (pixel clock 0).
pub(super) fn decode_dtd(d: &[u8; DESCRIPTOR_LEN]) -> Option<DetailedTiming> {
    let clock_10khz = u32::from(u16::from_le_bytes([d[0], d[1]]));
    if clock_10khz == 0 {
        return None;
    }
    let hi = |byte: u8, shift: u32| u32::from(byte >> shift & 0x0f) << 8;
    let two = |byte: u8, shift: u32| u32::from(byte >> shift & 0x03) << 4;
    Some(DetailedTiming {
        pixel_clock_khz: clock_10khz * 10,
        h_active: u32::from(d[2]) | hi(d[4], 4),
        h_blank: u32::from(d[3]) | hi(d[4], 0),
        v_active: u32::from(d[5]) | hi(d[7], 4),
        v_blank: u32::from(d[6]) | hi(d[7], 0),
        h_sync_offset: u32::from(d[8]) | two(d[11], 6) << 4,
        h_sync_width: u32::from(d[9]) | two(d[11], 4) << 4,
        v_sync_offset: u32::from(d[10] >> 4) | two(d[11], 2),
        v_sync_width: u32::from(d[10] & 0x0f) | two(d[11], 0),
        width_mm: u32::from(d[12]) | hi(d[14], 4),
        height_mm: u32::from(d[13]) | hi(d[14], 0),
        interlaced: d[17] & 0x80 != 0,
    })
}

/// Handles a display descriptor (name, serial, range limits, extra standard timings);
/// [`Error::NoMemory`] when the heap is out.
fn display_descriptor(
    d: &[u8; DESCRIPTOR_LEN],
    revision: u8,
    edid: &mut Edid,
    out: &mut Collected,
) -> Result<()> {
    // Bytes 0..3 are zero for a display descriptor, byte 3 is its tag, payload 5..18.
    let payload = d.get(5..).unwrap_or(&[]);
    match d[3] {
        0xfc if edid.name.is_none() => edid.name = Some(descriptor_text(payload)?),
        0xff if edid.serial.is_none() => edid.serial = Some(descriptor_text(payload)?),
        0xfd => {
            // EDID 1.4: byte 4 bits 1:0 (vertical) and 3:2 (horizontal): 0b10 adds 255 to
            // the maximum, 0b11 to both minimum and maximum.
            let flags = if revision >= 4 { d[4] } else { 0 };
            let plus = |cond: bool| if cond { 255 } else { 0 };
            edid.range = Some(RangeLimits {
                min_v_hz: u32::from(d[5]) + plus(flags & 0x03 == 0x03),
                max_v_hz: u32::from(d[6]) + plus(flags & 0x02 != 0),
                min_h_khz: u32::from(d[7]) + plus(flags & 0x0c == 0x0c),
                max_h_khz: u32::from(d[8]) + plus(flags & 0x08 != 0),
                max_pixel_clock_mhz: u32::from(d[9]) * 10,
            });
        }
        0xfa => {
            for pair in payload.chunks_exact(2).take(6) {
                if let (Some(&a), Some(&b)) = (pair.first(), pair.get(1)) {
                    if let Some(t) = standard_timing(a, b, revision) {
                        if out.has_room() {
                            try_push(&mut out.standard, t)?;
                        }
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The text of a 13-byte descriptor payload: up to the first line feed, trailing spaces
/// removed, anything outside printable ASCII replaced by `?`; [`Error::NoMemory`] when the
/// heap is out.
fn descriptor_text(payload: &[u8]) -> Result<String> {
    let chars = payload
        .iter()
        .take(13)
        .take_while(|&&c| c != b'\n' && c != 0)
        .map(|&c| {
            if (0x20..0x7f).contains(&c) {
                char::from(c)
            } else {
                '?'
            }
        });
    // At most 13 one-byte characters: reserved up front, so no push below reallocates.
    let mut text = String::new();
    text.try_reserve_exact(13).map_err(|_| Error::NoMemory)?;
    text.extend(chars);
    text.truncate(text.trim_end().len());
    Ok(text)
}
