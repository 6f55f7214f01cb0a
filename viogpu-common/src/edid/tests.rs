#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

/// Sets the last byte of every 128-byte block so its checksum is valid.
fn fix_checksums(bytes: &mut [u8]) {
    for block in bytes.chunks_exact_mut(BLOCK_LEN) {
        block[127] = checksum_for(block);
    }
}

/// `(width, height, refresh_mhz)` of each timing.
fn modes(edid: &Edid) -> Vec<(u32, u32, u32)> {
    edid.timings
        .iter()
        .map(|t| (t.width, t.height, t.refresh_mhz))
        .collect()
}

const DTD_1080P: [u8; 18] = [
    0x02, 0x3a, 0x80, 0x18, 0x71, 0x38, 0x2d, 0x40, 0x58, 0x2c, 0x45, 0x00, 0xfe, 0x1f, 0x11, 0x00,
    0x00, 0x1e,
];
const DTD_720P: [u8; 18] = [
    0x01, 0x1d, 0x00, 0x72, 0x51, 0xd0, 0x1e, 0x20, 0x6e, 0x28, 0x55, 0x00, 0xc4, 0x8e, 0x21, 0x00,
    0x00, 0x1e,
];

/// A typical monitor: 1920x1080 DTD, range limits, a name, established and standard timings,
/// and a CTA-861 block with a video data block and a 720p DTD.
fn monitor_edid() -> Vec<u8> {
    let mut e = vec![0u8; 256];
    e[..8].copy_from_slice(&[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);
    e[8..10].copy_from_slice(&[0x10, 0xac]); // "DEL"
    e[10..12].copy_from_slice(&0xa0c1u16.to_le_bytes());
    e[12..16].copy_from_slice(&0x3032_4c41u32.to_le_bytes());
    e[16] = 12;
    e[17] = 27;
    e[18] = 1;
    e[19] = 3;
    e[20] = 0x80;
    e[21] = 53;
    e[22] = 30;
    e[23] = 0x78;
    e[24] = 0x2a;
    e[35] = 0x21; // 640x480@60, 800x600@60
    e[36] = 0x08; // 1024x768@60
    e[37] = 0x00;
    let std: [u8; 16] = [
        0xd1, 0xc0, // 1920x1080@60 (16:9)
        0x81, 0x80, // 1280x1024@60 (5:4)
        0x81, 0x00, // 1280x800@60 (16:10 in EDID 1.3)
        0x95, 0x00, // 1440x900@60
        0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    ];
    e[38..54].copy_from_slice(&std);
    e[54..72].copy_from_slice(&DTD_1080P);
    // Range limits: 56-76 Hz, 30-83 kHz, 170 MHz.
    e[72..90].copy_from_slice(&[
        0, 0, 0, 0xfd, 0, 56, 76, 30, 83, 17, 0x00, 0x0a, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    ]);
    let mut name = [0u8; 18];
    name[3] = 0xfc;
    name[5..18].copy_from_slice(b"DELL P2414H\n ");
    e[90..108].copy_from_slice(&name);
    let mut serial = [0u8; 18];
    serial[3] = 0xff;
    serial[5..18].copy_from_slice(b"ABC123\n      ");
    e[108..126].copy_from_slice(&serial);
    e[126] = 1;

    // CTA-861 revision 3, DTDs at 4 + 8, one native DTD.
    let cta = &mut e[128..];
    cta[0] = 0x02;
    cta[1] = 0x03;
    cta[2] = 4 + 8;
    cta[3] = 0xf1;
    // Video data block with 6 SVDs: 16 native, 4, 97, 3, 1, 200 (unknown to nobody: 7680x4320p100).
    cta[4] = 2 << 5 | 6;
    cta[5..11].copy_from_slice(&[0x90, 0x04, 0x61, 0x03, 0x01, 200]);
    // An audio data block (ignored), one 3-byte descriptor.
    cta[11] = 1 << 5;
    cta[12..30].copy_from_slice(&DTD_720P);
    fix_checksums(&mut e);
    e
}

#[test]
fn parses_a_typical_monitor() {
    let edid = parse(&monitor_edid()).unwrap();
    assert_eq!((edid.version, edid.revision), (1, 3));
    assert_eq!(edid.manufacturer_str(), "DEL");
    assert_eq!(edid.product_code, 0xa0c1);
    assert_eq!(edid.serial_number, 0x3032_4c41);
    assert_eq!(edid.screen_size_cm, (53, 30));
    assert_eq!(edid.name.as_deref(), Some("DELL P2414H"));
    assert_eq!(edid.serial.as_deref(), Some("ABC123"));
    assert_eq!(
        edid.range,
        Some(RangeLimits {
            min_v_hz: 56,
            max_v_hz: 76,
            min_h_khz: 30,
            max_h_khz: 83,
            max_pixel_clock_mhz: 170
        })
    );
    assert_eq!(edid.extension_count, 1);
    let preferred = edid.preferred.unwrap();
    assert_eq!(
        (preferred.width, preferred.height, preferred.refresh_mhz),
        (1920, 1080, 60_000)
    );
    assert_eq!(preferred.source, TimingSource::Detailed);
    assert_eq!(
        modes(&edid),
        [
            (1920, 1080, 60_000), // base DTD (preferred)
            (1280, 720, 60_000),  // CTA DTD
            // VIC 16 is a duplicate of the DTD; 4 duplicates the CTA DTD.
            (3840, 2160, 60_000),  // VIC 97
            (720, 480, 60_000),    // VIC 3
            (640, 480, 60_000),    // VIC 1
            (7680, 4320, 100_000), // VIC 200
            (1280, 1024, 60_000),  // standard
            (1280, 800, 60_000),
            (1440, 900, 60_000),
            (800, 600, 60_000), // established (640x480@60 is a duplicate of VIC 1)
            (1024, 768, 60_000),
        ]
    );
    assert_eq!(
        edid.timings[2].source,
        TimingSource::CtaVideo {
            vic: 97,
            native: false
        }
    );
    assert_eq!(edid.detailed.len(), 2);
    let dtd = edid.detailed[0];
    assert_eq!(
        (
            dtd.pixel_clock_khz,
            dtd.h_blank,
            dtd.h_sync_offset,
            dtd.h_sync_width
        ),
        (148_500, 280, 88, 44)
    );
    assert_eq!(
        (dtd.v_blank, dtd.v_sync_offset, dtd.v_sync_width),
        (45, 4, 5)
    );
    assert_eq!((dtd.width_mm, dtd.height_mm), (510, 287));
    assert!(!dtd.interlaced);
}

#[test]
fn trailing_bytes_are_ignored() {
    let mut bytes = monitor_edid();
    bytes.resize(1024, 0);
    assert_eq!(parse(&bytes).unwrap(), parse(&monitor_edid()).unwrap());
}

#[test]
fn bad_header_checksum_and_version() {
    let mut bytes = monitor_edid();
    bytes[1] = 0xfe;
    fix_checksums(&mut bytes);
    assert_eq!(parse(&bytes), Err(Error::Malformed("EDID header")));

    let mut bytes = monitor_edid();
    bytes[60] ^= 1;
    assert_eq!(
        parse(&bytes),
        Err(Error::Malformed("EDID base block checksum"))
    );

    let mut bytes = monitor_edid();
    bytes[200] ^= 1;
    assert_eq!(
        parse(&bytes),
        Err(Error::Malformed("EDID extension block checksum"))
    );

    let mut bytes = monitor_edid();
    bytes[18] = 2;
    fix_checksums(&mut bytes);
    assert_eq!(
        parse(&bytes),
        Err(Error::Malformed("EDID version is not 1.x"))
    );
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = monitor_edid();
    for len in 0..bytes.len() {
        assert!(
            matches!(parse(&bytes[..len]), Err(Error::Malformed(_))),
            "length {len} parsed"
        );
    }
    assert!(parse(&bytes).is_ok());
}

#[test]
fn announced_extensions_must_be_present() {
    let mut bytes = monitor_edid();
    bytes[126] = 2;
    fix_checksums(&mut bytes);
    assert_eq!(
        parse(&bytes),
        Err(Error::Malformed("EDID extension blocks missing"))
    );
    // A block of unknown type is skipped.
    bytes.extend_from_slice(&[0x40; 128]);
    fix_checksums(&mut bytes);
    assert_eq!(parse(&bytes).unwrap().extension_count, 2);
}

#[test]
fn malformed_cta_blocks() {
    let mut bytes = monitor_edid();
    bytes[128 + 2] = 3; // DTD offset inside the header
    fix_checksums(&mut bytes);
    assert_eq!(parse(&bytes), Err(Error::Malformed("CTA-861 DTD offset")));

    let mut bytes = monitor_edid();
    bytes[128 + 4] = 2 << 5 | 31; // video block longer than the data block area
    fix_checksums(&mut bytes);
    assert_eq!(
        parse(&bytes),
        Err(Error::Malformed("CTA-861 data block overrun"))
    );

    // Offset 0: no DTDs and no data blocks.
    let mut bytes = monitor_edid();
    bytes[128 + 2] = 0;
    fix_checksums(&mut bytes);
    assert_eq!(parse(&bytes).unwrap().timings.len(), 7);
}

#[test]
fn cta_native_svd_is_preferred_without_dtds() {
    let mut bytes = monitor_edid();
    // Replace the base DTD with a dummy descriptor, and drop the CTA DTD.
    bytes[54..72].copy_from_slice(&[0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    bytes[128 + 12..128 + 30].fill(0);
    fix_checksums(&mut bytes);
    let edid = parse(&bytes).unwrap();
    let p = edid.preferred.unwrap();
    assert_eq!((p.width, p.height), (1920, 1080));
    assert_eq!(
        p.source,
        TimingSource::CtaVideo {
            vic: 16,
            native: true
        }
    );
    assert_eq!(edid.timings[0], p);
}

#[test]
fn standard_timing_aspect_depends_on_revision() {
    // Aspect code 0: 1:1 before EDID 1.3, 16:10 from 1.3 on.
    let t = tables::standard_timing(0x81, 0x00, 2).unwrap();
    assert_eq!((t.width, t.height), (1280, 1280));
    let t = tables::standard_timing(0x81, 0x00, 4).unwrap();
    assert_eq!((t.width, t.height), (1280, 800));
    let t = tables::standard_timing(0x81, 0x40 | 15, 4).unwrap();
    assert_eq!((t.width, t.height, t.refresh_mhz), (1280, 960, 75_000));
    let t = tables::standard_timing(0xd1, 0xc0, 4).unwrap();
    assert_eq!((t.width, t.height), (1920, 1080));
    assert_eq!(tables::standard_timing(0x01, 0x01, 4), None);
    assert_eq!(tables::standard_timing(0x00, 0x00, 4), None);
}

#[test]
fn all_established_timings() {
    let mut bytes = monitor_edid();
    bytes[126] = 0;
    bytes.truncate(128);
    bytes[35] = 0xff;
    bytes[36] = 0xff;
    bytes[37] = 0x80;
    bytes[38..54].fill(1);
    bytes[54..72].fill(0);
    bytes[57] = 0x10;
    fix_checksums(&mut bytes);
    let edid = parse(&bytes).unwrap();
    assert_eq!(edid.preferred, None);
    let found: Vec<_> = edid
        .timings
        .iter()
        .map(|t| (t.width, t.height, t.refresh_mhz / 1000))
        .collect();
    assert_eq!(
        found,
        [
            (720, 400, 70),
            (720, 400, 88),
            (640, 480, 60),
            (640, 480, 67),
            (640, 480, 72),
            (640, 480, 75),
            (800, 600, 56),
            (800, 600, 60),
            (800, 600, 72),
            (800, 600, 75),
            (832, 624, 75),
            (1024, 768, 87),
            (1024, 768, 60),
            (1024, 768, 70),
            (1024, 768, 75),
            (1280, 1024, 75),
            (1152, 870, 75),
        ]
    );
    assert!(edid.timings[11].interlaced);
}

#[test]
fn range_limits_with_edid_1_4_offsets() {
    let mut bytes = monitor_edid();
    bytes[19] = 4;
    bytes[72 + 4] = 0x0f; // both vertical and both horizontal +255
    fix_checksums(&mut bytes);
    let range = parse(&bytes).unwrap().range.unwrap();
    assert_eq!(
        (
            range.min_v_hz,
            range.max_v_hz,
            range.min_h_khz,
            range.max_h_khz
        ),
        (311, 331, 285, 338)
    );
    bytes[72 + 4] = 0x0a; // maxima only
    fix_checksums(&mut bytes);
    let range = parse(&bytes).unwrap().range.unwrap();
    assert_eq!(
        (
            range.min_v_hz,
            range.max_v_hz,
            range.min_h_khz,
            range.max_h_khz
        ),
        (56, 331, 30, 338)
    );
}

#[test]
fn build_round_trips_small_sizes() {
    let bytes = build(1024, 768).unwrap();
    assert_eq!(bytes.len(), 128);
    assert_eq!(&bytes[..8], &[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);
    assert_eq!(bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
    let edid = parse(&bytes).unwrap();
    assert_eq!((edid.version, edid.revision), (1, 4));
    assert_eq!(edid.manufacturer_str(), "RHT");
    assert_eq!(edid.product_code, 0x1234);
    assert_eq!(edid.name.as_deref(), Some("viogpu"));
    let p = edid.preferred.unwrap();
    assert_eq!(
        (p.width, p.height, p.source),
        (1024, 768, TimingSource::Detailed)
    );
    assert!(
        (59_900..=60_100).contains(&p.refresh_mhz),
        "{}",
        p.refresh_mhz
    );
    let sizes: Vec<_> = edid
        .timings
        .iter()
        .skip(1)
        .map(|t| (t.width, t.height))
        .collect();
    // Nothing larger than the preferred size is advertised.
    assert_eq!(sizes, [(640, 480), (800, 600)]);
    let range = edid.range.unwrap();
    assert_eq!(
        (range.max_v_hz, range.max_h_khz, range.max_pixel_clock_mhz),
        (120, 510, 2550)
    );
}

#[test]
fn build_round_trips_full_hd_and_4k_in_a_dtd() {
    let edid = parse(&build(1920, 1200).unwrap()).unwrap();
    let sizes: Vec<_> = edid.timings.iter().map(|t| (t.width, t.height)).collect();
    assert_eq!(
        sizes,
        [
            (1920, 1200),
            (1280, 720),
            (1280, 800),
            (1280, 1024),
            (1440, 900),
            (1600, 900),
            (1680, 1050),
            (1920, 1080),
            (640, 480),
            (800, 600),
            (1024, 768),
        ]
    );
    let bytes = build(3840, 2160).unwrap();
    assert_eq!(bytes.len(), 128);
    let p = parse(&bytes).unwrap().preferred.unwrap();
    assert_eq!(
        (p.width, p.height, p.source),
        (3840, 2160, TimingSource::Detailed)
    );
    assert!((59_900..=60_100).contains(&p.refresh_mhz));
}

#[test]
fn build_uses_displayid_beyond_dtd_limits() {
    for (w, h) in [
        (4096, 2160),
        (5120, 2880),
        (5486, 2818),
        (7680, 4320),
        (16384, 16384),
        (4000, 4000),
    ] {
        let bytes = build(w, h).unwrap();
        assert_eq!(bytes.len(), 256, "{w}x{h}");
        assert_eq!(bytes[128], 0x70);
        let edid = parse(&bytes).unwrap();
        let p = edid.preferred.unwrap();
        assert_eq!(
            (p.width, p.height, p.source),
            (w, h, TimingSource::DisplayId)
        );
        assert!(
            (59_900..=60_100).contains(&p.refresh_mhz),
            "{w}x{h}: {}",
            p.refresh_mhz
        );
        assert_eq!(edid.timings[0], p);
        // The DisplayID section checksum is valid too.
        let section_len = usize::from(bytes[130]);
        let sum = bytes[129..129 + section_len + 5]
            .iter()
            .fold(0u8, |s, b| s.wrapping_add(*b));
        assert_eq!(sum, 0);
    }
}

#[test]
fn build_rejects_bad_sizes() {
    assert_eq!(build(0, 600), Err(Error::InvalidArgument));
    assert_eq!(build(800, 0), Err(Error::InvalidArgument));
    assert_eq!(build(16385, 600), Err(Error::InvalidArgument));
    assert_eq!(build(800, u32::MAX), Err(Error::InvalidArgument));
}

#[test]
fn displayid_2_type_vii_timing() {
    let mut bytes = build(5120, 2880).unwrap();
    // Turn the 1.3 Type I block into a 2.0 Type VII one: clock unit 1 kHz instead of 10 kHz.
    bytes[129] = 0x20;
    bytes[133] = 0x22;
    let clock_10khz = u32::from_le_bytes([bytes[136], bytes[137], bytes[138], 0]) + 1;
    let clock_khz = (clock_10khz * 10 - 1).to_le_bytes();
    bytes[136..139].copy_from_slice(&clock_khz[..3]);
    fix_checksums(&mut bytes);
    let p = parse(&bytes).unwrap().preferred.unwrap();
    assert_eq!((p.width, p.height), (5120, 2880));
    assert!((59_900..=60_100).contains(&p.refresh_mhz));
}

#[test]
fn displayid_overrun_is_malformed() {
    let mut bytes = build(5120, 2880).unwrap();
    bytes[130] = 200;
    fix_checksums(&mut bytes);
    assert_eq!(
        parse(&bytes),
        Err(Error::Malformed("DisplayID section longer than its block"))
    );
    let mut bytes = build(5120, 2880).unwrap();
    bytes[135] = 100; // data block length beyond the section
    fix_checksums(&mut bytes);
    assert_eq!(
        parse(&bytes),
        Err(Error::Malformed("DisplayID data block overrun"))
    );
}

#[test]
fn impossible_dtds_are_skipped() {
    let mut bytes = monitor_edid();
    bytes[56] = 0; // h_active low byte
    bytes[58] &= 0x0f; // h_active high nibble: width 0
    fix_checksums(&mut bytes);
    let edid = parse(&bytes).unwrap();
    let p = edid.preferred.unwrap();
    assert_eq!((p.width, p.height), (1280, 720));
}

#[test]
fn timings_are_bounded() {
    // 255 CTA extension blocks, each with six DTDs of distinct widths: 1530 distinct modes.
    let mut bytes = build(1024, 768).unwrap();
    bytes[126] = 255;
    let mut width = 1000u32;
    for _ in 0..255 {
        let mut cta = [0u8; 128];
        cta[0] = 2;
        cta[1] = 3;
        cta[2] = 4;
        for dtd in cta[4..4 + 6 * 18].chunks_exact_mut(18) {
            dtd.copy_from_slice(&DTD_720P);
            dtd[2] = (width & 0xff) as u8;
            dtd[4] = ((width >> 8) as u8) << 4 | (dtd[4] & 0x0f);
            width += 1;
        }
        bytes.extend_from_slice(&cta);
    }
    fix_checksums(&mut bytes);
    let edid = parse(&bytes).unwrap();
    assert_eq!(edid.extension_count, 255);
    assert_eq!(edid.timings.len(), MAX_TIMINGS);
    assert_eq!((edid.timings[0].width, edid.timings[0].height), (1024, 768));
    assert_eq!(edid.timings[1].width, 1000);
    assert!(edid.detailed.len() <= MAX_TIMINGS);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1100)) {
        let _ = parse(&bytes);
    }

    /// Random edits of a valid EDID, with checksums repaired so the parser goes past them.
    #[test]
    fn mutated_edids_never_panic(
        edits in proptest::collection::vec((0usize..256, any::<u8>()), 0..40),
        displayid in any::<bool>(),
    ) {
        let mut bytes = if displayid { build(5120, 2880).unwrap() } else { monitor_edid() };
        for (at, value) in edits {
            if at < bytes.len() && at != 126 {
                bytes[at] = value;
            }
        }
        fix_checksums(&mut bytes);
        if let Ok(edid) = parse(&bytes) {
            prop_assert!(edid.timings.len() <= MAX_TIMINGS);
            if edid.preferred.is_some() {
                prop_assert_eq!(edid.preferred, edid.timings.first().copied());
            }
            for t in &edid.timings {
                prop_assert!(t.width > 0 && t.height > 0 && t.refresh_mhz > 0);
            }
        }
    }
}
