//! EDID: what a display says about itself, read from untrusted bytes, and a small generator.
//!
//! [`parse`] reads a base EDID 1.x block and its extension blocks (CTA-861 and DisplayID
//! 1.3/2.0 timings; other extension types are skipped) and collects every mode it finds into
//! [`Edid::timings`], preferred first. The bytes come from the device (or a user), so every
//! access is bounds-checked (`clippy::indexing_slicing` is denied here) and every structural
//! defect is an [`Error::Malformed`], never a panic:
//! - shorter than 128 bytes, wrong header, unsupported version (not 1.x), or a block whose
//!   checksum is wrong are errors;
//! - the extension count is trusted only as far as the bytes go: an EDID that announces more
//!   extension blocks than `bytes` holds is an error (bytes beyond the announced blocks, such
//!   as the zero tail of a 1024-byte `RespEdid`, are ignored);
//! - a single descriptor or data block that is nonsense (zero size, zero pixel clock, a data
//!   block running past its area) is an error only when it breaks the block's structure;
//!   a well-framed timing with impossible values is skipped.
//!
//! [`build`] writes a minimal, valid EDID for a given preferred size (see its docs for how sizes
//! beyond the 12-bit DTD fields are encoded).

#![deny(clippy::indexing_slicing)]

mod base;
mod build;
mod ext;
mod tables;

use alloc::string::String;
use alloc::vec::Vec;

use crate::{Error, Result};

pub use build::build;

/// Size of one EDID block.
pub const BLOCK_LEN: usize = 128;

/// At most this many timings are kept in [`Edid::timings`]; an EDID with 255 extension blocks
/// could otherwise list thousands, and no mode list needs more.
pub const MAX_TIMINGS: usize = 256;

/// Where a timing was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimingSource {
    /// A detailed timing descriptor (base block or CTA-861 extension).
    Detailed,
    /// A DisplayID Type I / Type VII detailed timing (used for sizes DTDs cannot encode).
    DisplayId,
    /// A standard timing (base block, or a 0xFA descriptor).
    Standard,
    /// Established timings I/II (the fixed bitmap of VESA modes).
    Established,
    /// A CTA-861 short video descriptor.
    CtaVideo {
        /// The video identification code.
        vic: u8,
        /// The descriptor is marked as the display's native format.
        native: bool,
    },
}

/// One display mode the EDID advertises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Active width in pixels.
    pub width: u32,
    /// Active height in pixels (the frame height for interlaced modes).
    pub height: u32,
    /// Refresh rate in millihertz (60 Hz = 60_000); for interlaced modes the field rate.
    pub refresh_mhz: u32,
    /// An interlaced mode.
    pub interlaced: bool,
    /// Where it was found.
    pub source: TimingSource,
}

impl Timing {
    /// The refresh rate rounded to whole hertz.
    pub fn refresh_hz(&self) -> u32 {
        self.refresh_mhz.saturating_add(500) / 1000
    }

    /// Same size, scan type and refresh rate to the nearest hertz: a DTD at 59.95 Hz and the
    /// established 60 Hz entry of the same size are one mode.
    fn same_mode(&self, other: &Timing) -> bool {
        self.width == other.width
            && self.height == other.height
            && self.refresh_hz() == other.refresh_hz()
            && self.interlaced == other.interlaced
    }
}

/// A detailed timing with its blanking and sync, as in a DTD or a DisplayID timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetailedTiming {
    /// Pixel clock in kHz.
    pub pixel_clock_khz: u32,
    /// Active pixels per line.
    pub h_active: u32,
    /// Blanking pixels per line.
    pub h_blank: u32,
    /// Pixels from the end of active to the start of sync.
    pub h_sync_offset: u32,
    /// Sync pulse width in pixels.
    pub h_sync_width: u32,
    /// Active lines (per field when interlaced).
    pub v_active: u32,
    /// Blanking lines.
    pub v_blank: u32,
    /// Lines from the end of active to the start of sync.
    pub v_sync_offset: u32,
    /// Sync pulse width in lines.
    pub v_sync_width: u32,
    /// Image width in mm (0 if unknown).
    pub width_mm: u32,
    /// Image height in mm (0 if unknown).
    pub height_mm: u32,
    /// An interlaced mode.
    pub interlaced: bool,
}

impl DetailedTiming {
    /// The refresh (field) rate in millihertz, rounded; `None` when the totals are zero or the
    /// result does not fit.
    pub fn refresh_mhz(&self) -> Option<u32> {
        let h_total = u64::from(self.h_active) + u64::from(self.h_blank);
        let v_total = u64::from(self.v_active) + u64::from(self.v_blank);
        let total = h_total.checked_mul(v_total).filter(|&t| t != 0)?;
        let clock_mhz = u64::from(self.pixel_clock_khz).checked_mul(1_000_000)?;
        u32::try_from(clock_mhz.checked_add(total / 2)? / total).ok()
    }

    /// The mode this timing describes, or `None` when it has no size or no refresh rate.
    pub fn timing(&self, source: TimingSource) -> Option<Timing> {
        let refresh_mhz = self.refresh_mhz().filter(|&r| r != 0)?;
        let height = if self.interlaced {
            self.v_active.checked_mul(2)?
        } else {
            self.v_active
        };
        (self.h_active != 0 && height != 0).then_some(Timing {
            width: self.h_active,
            height,
            refresh_mhz,
            interlaced: self.interlaced,
            source,
        })
    }
}

/// The display range limits descriptor (0xFD), with the EDID 1.4 +255 offsets applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeLimits {
    /// Minimum vertical rate in Hz.
    pub min_v_hz: u32,
    /// Maximum vertical rate in Hz.
    pub max_v_hz: u32,
    /// Minimum horizontal rate in kHz.
    pub min_h_khz: u32,
    /// Maximum horizontal rate in kHz.
    pub max_h_khz: u32,
    /// Maximum pixel clock in MHz (0 if not given).
    pub max_pixel_clock_mhz: u32,
}

/// What [`parse`] found in an EDID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edid {
    /// EDID version (always 1).
    pub version: u8,
    /// EDID revision (3 for 1.3, 4 for 1.4, ...).
    pub revision: u8,
    /// The three-letter PNP manufacturer id; `?` where a letter is out of range.
    pub manufacturer: [u8; 3],
    /// Manufacturer's product code.
    pub product_code: u16,
    /// Serial number (0 if unused).
    pub serial_number: u32,
    /// Maximum image size in cm (0 if unknown or variable).
    pub screen_size_cm: (u8, u8),
    /// The monitor name descriptor (0xFC), trimmed.
    pub name: Option<String>,
    /// The serial number string descriptor (0xFF), trimmed.
    pub serial: Option<String>,
    /// The range limits descriptor (0xFD).
    pub range: Option<RangeLimits>,
    /// The preferred mode: the first detailed timing of the base block, else a DisplayID
    /// timing marked preferred, else the first CTA-861 detailed timing, else the first native
    /// CTA-861 video format, else the first DisplayID timing.
    pub preferred: Option<Timing>,
    /// Every mode found, de-duplicated (same size, scan type and whole-hertz refresh),
    /// preferred first, then in EDID order (base DTDs,
    /// DisplayID, CTA DTDs, CTA video formats, standard, established); at most
    /// [`MAX_TIMINGS`].
    pub timings: Vec<Timing>,
    /// The detailed timings behind the `Detailed` and `DisplayId` entries, in EDID order
    /// (duplicates kept); at most [`MAX_TIMINGS`].
    pub detailed: Vec<DetailedTiming>,
    /// Number of extension blocks (all were checksum-verified).
    pub extension_count: u8,
}

impl Edid {
    /// The manufacturer id as a string slice (`"RHT"`, ...).
    pub fn manufacturer_str(&self) -> &str {
        core::str::from_utf8(&self.manufacturer).unwrap_or("???")
    }
}

/// Timings gathered while walking the blocks, before ordering.
#[derive(Default)]
struct Collected {
    base_dtds: Vec<Timing>,
    displayid: Vec<(Timing, bool)>,
    cta_dtds: Vec<Timing>,
    cta_svds: Vec<Timing>,
    standard: Vec<Timing>,
    established: Vec<Timing>,
    detailed: Vec<DetailedTiming>,
}

impl Collected {
    /// False once twice [`MAX_TIMINGS`] timings were gathered (duplicates included, so the
    /// de-duplicated list can still fill up); later ones are dropped, which bounds the memory
    /// a hostile EDID can make the parser use.
    fn has_room(&self) -> bool {
        let total = self.base_dtds.len()
            + self.displayid.len()
            + self.cta_dtds.len()
            + self.cta_svds.len()
            + self.standard.len()
            + self.established.len();
        total < 2 * MAX_TIMINGS
    }
}

/// Parses an EDID (base block plus the extension blocks it announces) from untrusted bytes.
/// Every heap allocation is fallible: [`Error::NoMemory`] when the heap is out.
pub fn parse(bytes: &[u8]) -> Result<Edid> {
    let base_block: &[u8; BLOCK_LEN] = bytes
        .get(..BLOCK_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or(Error::Malformed("EDID shorter than one block"))?;
    let mut collected = Collected::default();
    let mut edid = base::parse_base(base_block, &mut collected)?;

    let ext_count = usize::from(edid.extension_count);
    let total = BLOCK_LEN
        .checked_mul(ext_count + 1)
        .ok_or(Error::Malformed("EDID extension count"))?;
    let all = bytes
        .get(..total)
        .ok_or(Error::Malformed("EDID extension blocks missing"))?;
    for chunk in all.chunks_exact(BLOCK_LEN).skip(1) {
        let block: &[u8; BLOCK_LEN] = chunk
            .try_into()
            .map_err(|_| Error::Malformed("EDID extension block"))?;
        if !checksum_ok(block) {
            return Err(Error::Malformed("EDID extension block checksum"));
        }
        ext::parse_extension(block, &mut collected)?;
    }

    let preferred = collected
        .base_dtds
        .first()
        .copied()
        .or_else(|| {
            collected
                .displayid
                .iter()
                .find(|(_, p)| *p)
                .map(|(t, _)| *t)
        })
        .or_else(|| collected.cta_dtds.first().copied())
        .or_else(|| {
            collected
                .cta_svds
                .iter()
                .find(|t| matches!(t.source, TimingSource::CtaVideo { native: true, .. }))
                .copied()
        })
        .or_else(|| collected.displayid.first().map(|(t, _)| *t));

    let mut timings: Vec<Timing> = Vec::new();
    let ordered = preferred
        .into_iter()
        .chain(collected.base_dtds)
        .chain(collected.displayid.into_iter().map(|(t, _)| t))
        .chain(collected.cta_dtds)
        .chain(collected.cta_svds)
        .chain(collected.standard)
        .chain(collected.established);
    for timing in ordered {
        if timings.len() >= MAX_TIMINGS {
            break;
        }
        if !timings.iter().any(|t| t.same_mode(&timing)) {
            crate::fallible::try_push(&mut timings, timing)?;
        }
    }
    edid.preferred = preferred;
    edid.timings = timings;
    edid.detailed = collected.detailed;
    edid.detailed.truncate(MAX_TIMINGS);
    Ok(edid)
}

/// True when the bytes of `block` sum to 0 modulo 256.
fn checksum_ok(block: &[u8; BLOCK_LEN]) -> bool {
    block.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)) == 0
}

/// The checksum byte that makes `block[..127]` plus it sum to 0 modulo 256.
fn checksum_for(block: &[u8]) -> u8 {
    let sum = block
        .iter()
        .take(BLOCK_LEN - 1)
        .fold(0u8, |s, b| s.wrapping_add(*b));
    0u8.wrapping_sub(sum)
}

#[cfg(test)]
mod tests;
