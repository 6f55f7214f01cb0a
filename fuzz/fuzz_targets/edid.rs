//! Fuzzes `viogpu_common::edid::parse` with device-supplied bytes, and `edid::build` with
//! sizes read from the input, checking what a parse result promises rather than only that
//! nothing panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use viogpu_common::edid::{self, Edid, Timing, BLOCK_LEN, MAX_TIMINGS};
use viogpu_common::modes::MAX_DIMENSION;

fuzz_target!(|data: &[u8]| {
    check_parse(data);
    check_build(data);
});

/// The properties of a successful parse, and that the result depends only on the blocks the
/// EDID announces.
fn check_parse(data: &[u8]) {
    let Ok(parsed) = edid::parse(data) else {
        return;
    };
    // Every announced block is present and checksummed.
    let used = BLOCK_LEN * (usize::from(parsed.extension_count) + 1);
    assert!(used <= data.len());
    for block in data[..used].chunks_exact(BLOCK_LEN) {
        assert_eq!(block.iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
    }
    assert_eq!(&data[..8], &[0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0]);
    assert_eq!(parsed.version, 1);
    assert_eq!(parsed.extension_count, data[126]);
    check_timings(&parsed);
    // Bytes after the announced blocks are ignored.
    assert_eq!(edid::parse(&data[..used]).as_ref(), Ok(&parsed));
}

fn check_timings(parsed: &Edid) {
    assert!(parsed.timings.len() <= MAX_TIMINGS);
    assert!(parsed.detailed.len() <= MAX_TIMINGS);
    for t in &parsed.timings {
        assert!(t.width > 0 && t.height > 0 && t.refresh_mhz > 0, "{t:?}");
    }
    for (i, a) in parsed.timings.iter().enumerate() {
        for b in &parsed.timings[i + 1..] {
            assert!(!same_mode(a, b), "duplicate modes {a:?} {b:?}");
        }
    }
    match parsed.preferred {
        Some(p) => assert_eq!(parsed.timings.first(), Some(&p)),
        None => assert!(parsed.timings.iter().all(|t| !matches!(
            t.source,
            edid::TimingSource::Detailed | edid::TimingSource::DisplayId
        ) && !matches!(
            t.source,
            edid::TimingSource::CtaVideo { native: true, .. }
        ))),
    }
    for d in &parsed.detailed {
        assert!(d.h_active > 0 && d.v_active > 0, "{d:?}");
    }
    for c in parsed.manufacturer {
        assert!(c == b'?' || c.is_ascii_uppercase(), "manufacturer {c}");
    }
}

fn same_mode(a: &Timing, b: &Timing) -> bool {
    a.width == b.width
        && a.height == b.height
        && a.refresh_hz() == b.refresh_hz()
        && a.interlaced == b.interlaced
}

/// `build` of any size in range gives an EDID that parses back to that preferred size.
fn check_build(data: &[u8]) {
    let Some(size) = data.get(..8) else {
        return;
    };
    let width = u32::from_le_bytes([size[0], size[1], size[2], size[3]]);
    let height = u32::from_le_bytes([size[4], size[5], size[6], size[7]]);
    // Fold into a range where about half the sizes are valid.
    let (width, height) = (width % (2 * MAX_DIMENSION), height % (2 * MAX_DIMENSION));
    let valid = (1..=MAX_DIMENSION).contains(&width) && (1..=MAX_DIMENSION).contains(&height);
    match edid::build(width, height) {
        Ok(bytes) => {
            assert!(valid, "{width}x{height} built");
            let parsed = edid::parse(&bytes).expect("a built EDID parses");
            let preferred = parsed.preferred.expect("a built EDID has a preferred mode");
            assert_eq!((preferred.width, preferred.height), (width, height));
            check_timings(&parsed);
        }
        Err(_) => assert!(!valid, "{width}x{height} refused"),
    }
}
