//! Fixed mode tables of the EDID and CTA-861 standards: established timings, standard-timing
//! decoding, and the common CTA-861 video identification codes (VICs).

use super::{Timing, TimingSource};

const fn est(width: u32, height: u32, hz: u32, interlaced: bool) -> Timing {
    Timing {
        width,
        height,
        refresh_mhz: hz * 1000,
        interlaced,
        source: TimingSource::Established,
    }
}

/// Established timings I (byte 35, bit 7 first), II (byte 36) and the manufacturer bit
/// (byte 37 bit 7), in bit order: entry `i` is bit `23 - i` of bytes 35..38 read big-endian.
pub(super) const ESTABLISHED: [Timing; 17] = [
    est(720, 400, 70, false),
    est(720, 400, 88, false),
    est(640, 480, 60, false),
    est(640, 480, 67, false),
    est(640, 480, 72, false),
    est(640, 480, 75, false),
    est(800, 600, 56, false),
    est(800, 600, 60, false),
    est(800, 600, 72, false),
    est(800, 600, 75, false),
    est(832, 624, 75, false),
    est(1024, 768, 87, true),
    est(1024, 768, 60, false),
    est(1024, 768, 70, false),
    est(1024, 768, 75, false),
    est(1280, 1024, 75, false),
    est(1152, 870, 75, false),
];

/// Decodes a 2-byte standard timing; `None` for the unused markers (`01 01`, `00 xx`).
///
/// The aspect code 0 means 16:10 from EDID 1.3 on, 1:1 before it.
pub(super) fn standard_timing(a: u8, b: u8, revision: u8) -> Option<Timing> {
    if a == 0 || (a == 1 && b == 1) {
        return None;
    }
    let width = (u32::from(a) + 31) * 8;
    let height = match b >> 6 {
        0 if revision < 3 => width,
        0 => width * 10 / 16,
        1 => width * 3 / 4,
        2 => width * 4 / 5,
        _ => width * 9 / 16,
    };
    Some(Timing {
        width,
        height,
        refresh_mhz: (u32::from(b & 0x3f) + 60) * 1000,
        interlaced: false,
        source: TimingSource::Standard,
    })
}

/// `(vic, width, height, refresh Hz, interlaced)` for the VICs a PC display mode list can use.
/// Pixel-repeated SD formats (720(1440)x480i, 240p, 288p, ...) are left out: no desktop mode
/// comes from them. 59.94 Hz variants are listed at their nominal integer rate.
const VICS: [(u8, u16, u16, u16, bool); 76] = [
    (1, 640, 480, 60, false),
    (2, 720, 480, 60, false),
    (3, 720, 480, 60, false),
    (4, 1280, 720, 60, false),
    (5, 1920, 1080, 60, true),
    (14, 1440, 480, 60, false),
    (15, 1440, 480, 60, false),
    (16, 1920, 1080, 60, false),
    (17, 720, 576, 50, false),
    (18, 720, 576, 50, false),
    (19, 1280, 720, 50, false),
    (20, 1920, 1080, 50, true),
    (29, 1440, 576, 50, false),
    (30, 1440, 576, 50, false),
    (31, 1920, 1080, 50, false),
    (32, 1920, 1080, 24, false),
    (33, 1920, 1080, 25, false),
    (34, 1920, 1080, 30, false),
    (35, 2880, 480, 60, false),
    (36, 2880, 480, 60, false),
    (37, 2880, 576, 50, false),
    (38, 2880, 576, 50, false),
    (39, 1920, 1080, 50, true),
    (40, 1920, 1080, 100, true),
    (41, 1280, 720, 100, false),
    (42, 720, 576, 100, false),
    (43, 720, 576, 100, false),
    (46, 1920, 1080, 120, true),
    (47, 1280, 720, 120, false),
    (48, 720, 480, 120, false),
    (49, 720, 480, 120, false),
    (52, 720, 576, 200, false),
    (53, 720, 576, 200, false),
    (56, 720, 480, 240, false),
    (57, 720, 480, 240, false),
    (60, 1280, 720, 24, false),
    (61, 1280, 720, 25, false),
    (62, 1280, 720, 30, false),
    (63, 1920, 1080, 120, false),
    (64, 1920, 1080, 100, false),
    (86, 2560, 1080, 24, false),
    (87, 2560, 1080, 25, false),
    (88, 2560, 1080, 30, false),
    (89, 2560, 1080, 50, false),
    (90, 2560, 1080, 60, false),
    (91, 2560, 1080, 100, false),
    (92, 2560, 1080, 120, false),
    (93, 3840, 2160, 24, false),
    (94, 3840, 2160, 25, false),
    (95, 3840, 2160, 30, false),
    (96, 3840, 2160, 50, false),
    (97, 3840, 2160, 60, false),
    (98, 4096, 2160, 24, false),
    (99, 4096, 2160, 25, false),
    (100, 4096, 2160, 30, false),
    (101, 4096, 2160, 50, false),
    (102, 4096, 2160, 60, false),
    (117, 3840, 2160, 100, false),
    (118, 3840, 2160, 120, false),
    (121, 5120, 2160, 24, false),
    (122, 5120, 2160, 25, false),
    (123, 5120, 2160, 30, false),
    (124, 5120, 2160, 48, false),
    (125, 5120, 2160, 50, false),
    (126, 5120, 2160, 60, false),
    (127, 5120, 2160, 100, false),
    (194, 7680, 4320, 24, false),
    (195, 7680, 4320, 25, false),
    (196, 7680, 4320, 30, false),
    (197, 7680, 4320, 48, false),
    (198, 7680, 4320, 50, false),
    (199, 7680, 4320, 60, false),
    (200, 7680, 4320, 100, false),
    (201, 7680, 4320, 120, false),
    (218, 4096, 2160, 100, false),
    (219, 4096, 2160, 120, false),
];

/// The mode of a VIC, if it is in the table.
pub(super) fn vic_timing(vic: u8, native: bool) -> Option<Timing> {
    VICS.iter()
        .find(|e| e.0 == vic)
        .map(|&(vic, w, h, hz, interlaced)| Timing {
            width: u32::from(w),
            height: u32::from(h),
            refresh_mhz: u32::from(hz) * 1000,
            interlaced,
            source: TimingSource::CtaVideo { vic, native },
        })
}

/// Splits a short video descriptor byte into `(vic, native)` (CTA-861-F: bit 7 is the native
/// flag only for VICs 1..=64; 0, 128, 254, 255 are reserved).
pub(super) fn split_svd(svd: u8) -> Option<(u8, bool)> {
    match svd {
        0 | 128 | 254 | 255 => None,
        129..=192 => Some((svd & 0x7f, true)),
        _ => Some((svd, false)),
    }
}
