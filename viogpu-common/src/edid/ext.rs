//! EDID extension blocks: CTA-861 (detailed timings and short video descriptors) and DisplayID
//! 1.3 / 2.0 (Type I / Type VII detailed timings, which QEMU uses for sizes beyond 4095).

use super::base::{decode_dtd, DESCRIPTOR_LEN};
use super::tables::{split_svd, vic_timing};
use super::{Collected, DetailedTiming, TimingSource, BLOCK_LEN};
use crate::fallible::try_push;
use crate::{Error, Result};

/// Extension tag of a CTA-861 block.
pub(super) const TAG_CTA: u8 = 0x02;
/// Extension tag of a DisplayID block.
pub(super) const TAG_DISPLAYID: u8 = 0x70;
/// DisplayID 1.3 data block: Type I detailed timings (pixel clock in 10 kHz).
pub(super) const DID_TYPE_I_TIMING: u8 = 0x03;
/// DisplayID 2.0 data block: Type VII detailed timings (pixel clock in 1 kHz).
const DID_TYPE_VII_TIMING: u8 = 0x22;
/// Size of one DisplayID Type I / VII timing.
pub(super) const DID_TIMING_LEN: usize = 20;

/// Parses one checksum-verified extension block; unknown extension types are skipped.
pub(super) fn parse_extension(block: &[u8; BLOCK_LEN], out: &mut Collected) -> Result<()> {
    match block[0] {
        TAG_CTA => parse_cta(block, out),
        TAG_DISPLAYID => parse_displayid(block, out),
        _ => Ok(()),
    }
}

fn parse_cta(block: &[u8; BLOCK_LEN], out: &mut Collected) -> Result<()> {
    // Byte 2 is the offset of the first DTD; 0 means "no DTDs and no data blocks".
    let dtd_offset = usize::from(block[2]);
    if dtd_offset == 0 {
        return Ok(());
    }
    if !(4..BLOCK_LEN).contains(&dtd_offset) {
        return Err(Error::Malformed("CTA-861 DTD offset"));
    }
    // Data block collection (revision 3+; harmlessly empty for older blocks with offset 4).
    let mut data = block.get(4..dtd_offset).unwrap_or(&[]);
    while let Some((&header, rest)) = data.split_first() {
        let len = usize::from(header & 0x1f);
        let payload = rest
            .get(..len)
            .ok_or(Error::Malformed("CTA-861 data block overrun"))?;
        if header >> 5 == 2 {
            for &svd in payload {
                let timing = split_svd(svd).and_then(|(vic, native)| vic_timing(vic, native));
                if let Some(t) = timing {
                    if out.has_room() {
                        try_push(&mut out.cta_svds, t)?;
                    }
                }
            }
        }
        data = rest.get(len..).unwrap_or(&[]);
    }
    // DTDs up to the checksum byte, ending at the first zero pixel clock.
    let dtds = block.get(dtd_offset..BLOCK_LEN - 1).unwrap_or(&[]);
    for chunk in dtds.chunks_exact(DESCRIPTOR_LEN) {
        let Ok(desc) = <&[u8; DESCRIPTOR_LEN]>::try_from(chunk) else {
            break;
        };
        let Some(dtd) = decode_dtd(desc) else { break };
        if let Some(t) = dtd.timing(TimingSource::Detailed) {
            if out.has_room() {
                try_push(&mut out.cta_dtds, t)?;
                try_push(&mut out.detailed, dtd)?;
            }
        }
    }
    Ok(())
}

fn parse_displayid(block: &[u8; BLOCK_LEN], out: &mut Collected) -> Result<()> {
    // The DisplayID section starts at byte 1: version, payload length, product type,
    // extension count, then `length` bytes of data blocks (the section checksum follows;
    // the EDID block checksum already covers it).
    let version = block[1];
    let section_len = usize::from(block[2]);
    let mut data = block
        .get(5..5 + section_len)
        .ok_or(Error::Malformed("DisplayID section longer than its block"))?;
    while let Some((&tag, rest)) = data.split_first() {
        let (Some(&_revision), Some(&len)) = (rest.first(), rest.get(1)) else {
            // Fewer than three bytes left: the rest is padding.
            break;
        };
        let len = usize::from(len);
        let payload = rest
            .get(2..2 + len)
            .ok_or(Error::Malformed("DisplayID data block overrun"))?;
        let clock_unit_khz = match (tag, version >= 0x20) {
            (DID_TYPE_I_TIMING, false) => Some(10),
            (DID_TYPE_VII_TIMING, true) => Some(1),
            _ => None,
        };
        if let Some(unit) = clock_unit_khz {
            for chunk in payload.chunks_exact(DID_TIMING_LEN) {
                if let Ok(d) = <&[u8; DID_TIMING_LEN]>::try_from(chunk) {
                    let (dtd, preferred) = decode_displayid_timing(d, unit);
                    if let Some(t) = dtd.timing(TimingSource::DisplayId) {
                        if out.has_room() {
                            try_push(&mut out.displayid, (t, preferred))?;
                            try_push(&mut out.detailed, dtd)?;
                        }
                    }
                }
            }
        }
        data = rest.get(2 + len..).unwrap_or(&[]);
    }
    Ok(())
}

/// Decodes a 20-byte DisplayID Type I/VII timing: every count is stored minus one (sync
/// fields carry the polarity in bit 15). Returns the timing and its "preferred" flag.
fn decode_displayid_timing(
    d: &[u8; DID_TIMING_LEN],
    clock_unit_khz: u32,
) -> (DetailedTiming, bool) {
    let word = |lo: u8, hi: u8| u32::from(u16::from_le_bytes([lo, hi])) + 1;
    let sync = |lo: u8, hi: u8| u32::from(u16::from_le_bytes([lo, hi & 0x7f])) + 1;
    let clock = u32::from_le_bytes([d[0], d[1], d[2], 0]) + 1;
    let timing = DetailedTiming {
        pixel_clock_khz: clock.saturating_mul(clock_unit_khz),
        h_active: word(d[4], d[5]),
        h_blank: word(d[6], d[7]),
        h_sync_offset: sync(d[8], d[9]),
        h_sync_width: word(d[10], d[11]),
        v_active: word(d[12], d[13]),
        v_blank: word(d[14], d[15]),
        v_sync_offset: sync(d[16], d[17]),
        v_sync_width: word(d[18], d[19]),
        width_mm: 0,
        height_mm: 0,
        interlaced: d[3] & 0x10 != 0,
    };
    (timing, d[3] & 0x80 != 0)
}
