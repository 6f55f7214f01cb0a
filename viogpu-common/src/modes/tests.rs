#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use alloc::vec::Vec;

use super::*;
use crate::edid;

fn sizes(list: &ModeList) -> Vec<(u32, u32)> {
    list.iter().map(|m| (m.width, m.height)).collect()
}

/// The built-in sizes that fit `max` bytes, sorted, without `skip`.
fn built_in_without(skip: &[(u32, u32)], max: u64) -> Vec<(u32, u32)> {
    let mut v: Vec<_> = BUILT_IN
        .iter()
        .copied()
        .filter(|s| !skip.contains(s) && u64::from(s.0) * u64::from(s.1) * 4 <= max)
        .collect();
    v.sort();
    v
}

const ALL: u64 = u64::MAX;

#[test]
fn default_list_without_any_source() {
    let list = ModeList::build(None, None, ALL);
    assert_eq!(list.preferred(), Some(Mode::new(1024, 768)));
    let mut expected = alloc::vec![(1024, 768)];
    expected.extend(built_in_without(&[(1024, 768)], ALL));
    assert_eq!(sizes(&list), expected);
    assert_eq!(list.len(), 27);
    assert_eq!(
        sizes(&list)[..6],
        [
            (1024, 768),
            (640, 480),
            (800, 600),
            (1152, 864),
            (1280, 720),
            (1280, 768)
        ]
    );
    assert_eq!(sizes(&list)[26], (7680, 4320));
}

#[test]
fn device_preferred_size_comes_first() {
    let list = ModeList::build(Some((1280, 800)), None, ALL);
    let mut expected = alloc::vec![(1280, 800)];
    expected.extend(built_in_without(&[(1280, 800)], ALL));
    assert_eq!(sizes(&list), expected);

    // An odd host window size is offered as is.
    let list = ModeList::build(Some((1917, 1041)), None, ALL);
    assert_eq!(list.preferred(), Some(Mode::new(1917, 1041)));
    assert_eq!(list.len(), 28);
    assert!(list.contains(1917, 1041) && list.contains(7680, 4320));
}

#[test]
fn framebuffer_limit_bounds_every_entry() {
    let max = 1920 * 1080 * 4;
    let list = ModeList::build(Some((2560, 1440)), None, max);
    assert_eq!(
        sizes(&list),
        [
            (1024, 768), // device size too large: default
            (640, 480),
            (800, 600),
            (1152, 864),
            (1280, 720),
            (1280, 768),
            (1280, 800),
            (1280, 960),
            (1280, 1024),
            (1360, 768),
            (1366, 768),
            (1400, 1050),
            (1440, 900),
            (1600, 900),
            (1600, 1200),
            (1680, 1050),
            (1920, 1080),
        ]
    );
    assert!(list.iter().all(|m| m.framebuffer_bytes() <= max));
    assert_eq!(list.max_framebuffer_bytes(), max);
}

#[test]
fn tiny_limits() {
    // Only 640x480 and 800x600 fit: the largest becomes preferred.
    let list = ModeList::build(None, None, 800 * 600 * 4);
    assert_eq!(sizes(&list), [(800, 600), (640, 480)]);
    let list = ModeList::build(None, None, 640 * 480 * 4 - 1);
    assert!(list.is_empty());
    assert_eq!(list.preferred(), None);
    assert_eq!(list.iter().count(), 0);
}

#[test]
fn absurd_device_sizes_are_ignored() {
    for bad in [
        (0, 0),
        (0, 768),
        (100, 100),
        (639, 480),
        (640, 479),
        (16385, 1000),
        (u32::MAX, u32::MAX),
    ] {
        let list = ModeList::build(Some(bad), None, ALL);
        assert_eq!(list.preferred(), Some(DEFAULT_MODE), "{bad:?}");
        assert!(!list.contains(bad.0, bad.1));
    }
    let list = ModeList::build(Some((16384, 16384)), None, ALL);
    assert_eq!(list.preferred(), Some(Mode::new(16384, 16384)));
}

#[test]
fn edid_modes_and_preferred() {
    let e = edid::parse(&edid::build(5120, 2880).unwrap()).unwrap();
    let list = ModeList::build(None, Some(&e), ALL);
    let p = list.preferred().unwrap();
    assert_eq!((p.width, p.height), (5120, 2880));
    assert!((59_900..=60_100).contains(&p.refresh_mhz.unwrap()));
    // 5120x2880 is also built in: no duplicate.
    assert_eq!(list.len(), 27);
    assert_eq!(list.iter().filter(|m| m.width == 5120).count(), 1);
    // The EDID's 60 Hz rates fill in the built-in entries it also lists.
    let m = list
        .iter()
        .find(|m| m.width == 1920 && m.height == 1080)
        .unwrap();
    assert_eq!(m.refresh_mhz, Some(60_000));
    let m = list.iter().find(|m| m.width == 3840).unwrap();
    assert_eq!(m.refresh_mhz, None);

    // The device size wins over the EDID's preferred mode; the EDID mode stays in the list.
    let list = ModeList::build(Some((1600, 900)), Some(&e), ALL);
    assert_eq!(
        list.preferred().map(|m| (m.width, m.height)),
        Some((1600, 900))
    );
    assert!(list.contains(5120, 2880));
}

#[test]
fn edid_only_size_is_offered() {
    let e = edid::parse(&edid::build(1000, 700).unwrap()).unwrap();
    let list = ModeList::build(None, Some(&e), 1280 * 1024 * 4);
    assert_eq!(
        sizes(&list),
        [
            (1000, 700),
            (640, 480),
            (800, 600),
            (1024, 768),
            (1152, 864),
            (1280, 720),
            (1280, 768),
            (1280, 800),
            (1280, 960),
            (1280, 1024),
            // The limit is in bytes, not per side: these have fewer pixels than 1280x1024.
            (1360, 768),
            (1366, 768),
            (1440, 900),
        ]
    );
}

#[test]
fn capacity_is_bounded_and_keeps_built_ins() {
    // An EDID with 250 distinct sizes.
    let mut e = edid::parse(&edid::build(1024, 768).unwrap()).unwrap();
    e.timings = (0..250)
        .map(|i| edid::Timing {
            width: 700 + i,
            height: 500 + i,
            refresh_mhz: 60_000,
            interlaced: false,
            source: edid::TimingSource::Detailed,
        })
        .collect();
    let list = ModeList::build(None, Some(&e), ALL);
    assert_eq!(list.len(), MAX_MODES);
    for (w, h) in BUILT_IN {
        assert!(list.contains(w, h), "{w}x{h}");
    }
    // 64 - 27 built-ins = 37 EDID sizes, the first ones in EDID order.
    assert!(list.contains(736, 536));
    assert!(!list.contains(737, 537));
    let rest = &list.as_slice()[1..];
    assert!(rest
        .windows(2)
        .all(|w| (w[0].width, w[0].height) < (w[1].width, w[1].height)));
}

#[test]
fn custom_mode_goes_first() {
    let list = ModeList::build(Some((1280, 800)), None, ALL)
        .with_custom(5486, 2818)
        .unwrap();
    assert_eq!(list.preferred(), Some(Mode::new(5486, 2818)));
    assert_eq!(list.len(), 28);
    let mut expected = alloc::vec![(5486, 2818)];
    expected.extend(built_in_without(&[], ALL));
    assert_eq!(sizes(&list), expected);

    // A size already listed moves to the front, keeping its refresh rate.
    let e = edid::parse(&edid::build(1920, 1080).unwrap()).unwrap();
    let list = ModeList::build(None, Some(&e), ALL)
        .with_custom(800, 600)
        .unwrap();
    assert_eq!(list.len(), 27);
    assert_eq!(sizes(&list)[..3], [(800, 600), (640, 480), (1024, 768)]);
    assert_eq!(list.as_slice()[0].refresh_mhz, Some(60_000));
    assert!(list.contains(1920, 1080));
}

#[test]
fn custom_mode_is_validated() {
    let list = ModeList::build(None, None, 1920 * 1080 * 4);
    assert_eq!(list.with_custom(639, 480), Err(Error::InvalidArgument));
    assert_eq!(list.with_custom(800, 16385), Err(Error::InvalidArgument));
    assert_eq!(list.with_custom(1920, 1081), Err(Error::ModeTooLarge));
    assert!(list.with_custom(1920, 1080).is_ok());
    assert_eq!(check_size(16384, 16384, ALL), Ok(()));
    assert_eq!(
        check_size(16384, 16384, 16384 * 16384 * 4 - 1),
        Err(Error::ModeTooLarge)
    );
}

#[test]
fn custom_mode_in_a_full_list_drops_the_last() {
    let mut e = edid::parse(&edid::build(1024, 768).unwrap()).unwrap();
    e.timings = (0..100)
        .map(|i| edid::Timing {
            width: 700 + i,
            height: 500,
            refresh_mhz: 60_000,
            interlaced: false,
            source: edid::TimingSource::Standard,
        })
        .collect();
    let full = ModeList::build(None, Some(&e), ALL);
    assert_eq!(full.len(), MAX_MODES);
    let last = *full.as_slice().last().unwrap();
    assert_eq!((last.width, last.height), (7680, 4320));
    let list = full.with_custom(3000, 2000).unwrap();
    assert_eq!(list.len(), MAX_MODES);
    assert_eq!(list.preferred(), Some(Mode::new(3000, 2000)));
    assert!(!list.contains(7680, 4320));
    assert!(list.contains(1024, 768));
}
