//! Unit and property tests of the framebuffer backing, over the counting [`TestHal`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

extern crate std;

use proptest::prelude::*;
use std::vec;
use std::vec::Vec;

use super::test_hal::TestHal;
use super::*;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

type Fb = FramebufferBacking<TestHal>;

fn policy(max_chunk: usize, min_chunk: usize, max_entries: usize) -> AllocPolicy {
    AllocPolicy {
        max_chunk,
        min_chunk,
        max_entries,
        whole_pages: false,
    }
}

/// Checks everything the host and the blitter rely on: bands in order covering each row once,
/// one entry per band of exactly `rows * pitch` bytes inside one live DMA region, slices of
/// the same length, and the DMA accounting.
fn check_layout(fb: &mut Fb, hal: &TestHal) {
    let pitch = fb.pitch();
    assert_eq!(pitch, fb.width() * 4);
    let bands: Vec<Band> = fb.bands().collect();
    let entries: Vec<(u64, u32)> = fb.entries().collect();
    assert_eq!(bands.len(), fb.entry_count());
    assert_eq!(entries.len(), fb.entry_count());
    let mut next_row = 0;
    for (band, &(phys, len)) in bands.iter().zip(&entries) {
        assert_eq!(band.first_row, next_row, "bands not contiguous: {bands:?}");
        assert!(band.rows >= 1);
        assert_eq!(len, band.rows * pitch);
        assert!(
            hal.read_phys(phys, len as usize).is_some(),
            "entry {phys:#x}+{len} not inside one DMA region"
        );
        next_row += band.rows;
    }
    assert_eq!(next_row, fb.height());
    let total: u64 = entries.iter().map(|&(_, len)| u64::from(len)).sum();
    assert_eq!(total, fb.size_bytes());
    assert_eq!(fb.size_bytes(), u64::from(fb.height()) * u64::from(pitch));
    for (band_mut, band) in fb.bands_mut().zip(&bands) {
        assert_eq!(band_mut.first_row, band.first_row);
        assert_eq!(band_mut.rows, band.rows);
        assert_eq!(band_mut.bytes.len(), (band.rows * pitch) as usize);
    }
    assert_eq!(hal.live_bytes(), fb.dma_bytes());
    assert_eq!(hal.live_regions(), fb.entry_count());
}

/// The rows of each band, in order.
fn band_rows(fb: &Fb) -> Vec<u32> {
    fb.bands().map(|b| b.rows).collect()
}

/// Reads the pixel at `(x, y)` the way the host does: linear offset `y * pitch + x * 4` into
/// the concatenation of the mem entries.
fn host_pixel(fb: &Fb, hal: &TestHal, x: u32, y: u32) -> u32 {
    let mut offset = u64::from(y) * u64::from(fb.pitch()) + u64::from(x) * 4;
    for (phys, len) in fb.entries() {
        if offset < u64::from(len) {
            let bytes = hal.read_phys(phys + offset, 4).unwrap();
            return u32::from_le_bytes(bytes.try_into().unwrap());
        }
        offset -= u64::from(len);
    }
    panic!("offset past the end of the backing");
}

fn allocate(hal: &TestHal, width: u32, height: u32, policy: &AllocPolicy) -> Result<Fb> {
    Fb::allocate(hal, width, height, policy)
}

#[test]
fn default_policy_values() {
    let p = AllocPolicy::default();
    assert_eq!(p, AllocPolicy::DEFAULT);
    assert_eq!(p.max_chunk, 16 * MIB);
    assert_eq!(p.min_chunk, 64 * KIB);
    assert_eq!(p.max_entries, 4096);
    assert!(p.max_entries < QEMU_MAX_MEM_ENTRIES);
}

#[test]
fn eight_k_takes_eight_entries_and_frees_everything() {
    let hal = TestHal::new();
    let mut fb = allocate(&hal, 7680, 4320, &AllocPolicy::DEFAULT).unwrap();
    assert_eq!(fb.pitch(), 30720);
    assert_eq!(fb.size_bytes(), 132_710_400);
    // 16 MiB holds 546 rows of 30720 bytes.
    assert_eq!(fb.entry_count(), 8);
    assert_eq!(band_rows(&fb), vec![546, 546, 546, 546, 546, 546, 546, 498]);
    check_layout(&mut fb, &hal);
    assert!(hal.live_bytes() >= fb.size_bytes());
    drop(fb);
    assert_eq!(hal.live_bytes(), 0);
    assert_eq!(hal.live_regions(), 0);
}

#[test]
fn the_contiguous_policy_gives_one_block_or_nothing() {
    let hal = TestHal::new();
    // 8K is eight bands by default; with the policy it is one block of the exact size.
    let bytes = 7680 * 4320 * 4;
    let mut fb = allocate(&hal, 7680, 4320, &AllocPolicy::contiguous(bytes)).unwrap();
    assert_eq!(fb.entry_count(), 1);
    assert_eq!(fb.entries().next().unwrap().1 as usize, bytes);
    check_layout(&mut fb, &hal);
    drop(fb);
    // A framebuffer larger than the block is refused before anything is allocated.
    assert_eq!(
        allocate(&hal, 7680, 4321, &AllocPolicy::contiguous(bytes)).unwrap_err(),
        Error::ModeTooLarge
    );
    assert_eq!(hal.live_regions(), 0);
}

#[test]
fn xga_fits_one_entry() {
    let hal = TestHal::new();
    let mut fb = allocate(&hal, 1024, 768, &AllocPolicy::DEFAULT).unwrap();
    assert_eq!((fb.width(), fb.height(), fb.pitch()), (1024, 768, 4096));
    assert_eq!(fb.entry_count(), 1);
    assert_eq!(fb.dma_bytes(), 3 * MIB as u64);
    check_layout(&mut fb, &hal);
}

#[test]
fn odd_sizes_have_whole_row_bands() {
    let hal = TestHal::new();
    let mut fb = allocate(&hal, 1366, 768, &AllocPolicy::DEFAULT).unwrap();
    assert_eq!(fb.pitch(), 5464);
    assert_eq!(fb.entry_count(), 1);
    check_layout(&mut fb, &hal);

    drop(fb);
    let hal = TestHal::new();
    let mut fb = allocate(&hal, 5486, 2818, &AllocPolicy::DEFAULT).unwrap();
    assert_eq!(fb.pitch(), 21944);
    // 16 MiB / 21944 = 764 rows.
    assert_eq!(band_rows(&fb), vec![764, 764, 764, 526]);
    check_layout(&mut fb, &hal);

    // Small chunks with a pitch that does not divide them: 64 KiB / 5464 = 11 rows.
    drop(fb);
    let hal = TestHal::new();
    let mut fb = allocate(&hal, 1366, 768, &policy(64 * KIB, 64 * KIB, 4096)).unwrap();
    assert_eq!(fb.entry_count(), 70);
    assert!(band_rows(&fb)[..69].iter().all(|&r| r == 11));
    assert_eq!(band_rows(&fb)[69], 768 - 69 * 11);
    check_layout(&mut fb, &hal);
}

#[test]
fn row_wider_than_chunk_gets_one_row_per_chunk() {
    let hal = TestHal::new();
    // pitch 65536 > max_chunk and min_chunk: the minimum becomes one row.
    let mut fb = allocate(&hal, 16384, 10, &policy(4 * KIB, 4 * KIB, 100)).unwrap();
    assert_eq!(fb.entry_count(), 10);
    assert!(fb.entries().all(|(_, len)| len == 65536));
    check_layout(&mut fb, &hal);
    // A row of 5000 bytes with 4 KiB chunks: one row per two pages.
    drop(fb);
    let hal = TestHal::new();
    let mut fb = allocate(&hal, 1250, 3, &policy(4 * KIB, 4 * KIB, 100)).unwrap();
    assert_eq!(band_rows(&fb), vec![1, 1, 1]);
    check_layout(&mut fb, &hal);
}

#[test]
fn falls_back_to_smaller_chunks() {
    let hal = TestHal::new();
    hal.refuse_above(MIB);
    // The whole 1080p mode (7.9 MiB), then 4 MiB and 2 MiB chunks are refused; 1 MiB chunks
    // hold 136 rows.
    let mut fb = allocate(&hal, 1920, 1080, &AllocPolicy::DEFAULT).unwrap();
    assert_eq!(band_rows(&fb), vec![136, 136, 136, 136, 136, 136, 136, 128]);
    check_layout(&mut fb, &hal);

    // 8K at 1 MiB: 34 rows per chunk, 128 entries.
    drop(fb);
    let hal = TestHal::new();
    hal.refuse_above(MIB);
    let mut fb = allocate(&hal, 7680, 4320, &AllocPolicy::DEFAULT).unwrap();
    assert_eq!(fb.entry_count(), 128);
    check_layout(&mut fb, &hal);
    drop(fb);

    // 8K when only the minimum (64 KiB = 2 rows) succeeds still fits the default budget.
    let hal = TestHal::new();
    hal.refuse_above(64 * KIB);
    let mut fb = allocate(&hal, 7680, 4320, &AllocPolicy::DEFAULT).unwrap();
    assert_eq!(fb.entry_count(), 2160);
    check_layout(&mut fb, &hal);
}

#[test]
fn stays_at_the_smaller_size_after_a_failure() {
    let hal = TestHal::new();
    hal.fail_call(1);
    // The first (16 MiB-sized) request fails once; all later chunks are 8 MiB = 382 rows.
    let mut fb = allocate(&hal, 5486, 2818, &AllocPolicy::DEFAULT).unwrap();
    assert_eq!(
        band_rows(&fb),
        vec![382; 7].into_iter().chain([144]).collect::<Vec<_>>()
    );
    check_layout(&mut fb, &hal);
    assert_eq!(hal.calls(), 9);
}

#[test]
fn failure_at_every_call_leaves_nothing_allocated() {
    let probe = TestHal::new();
    probe.refuse_above(256 * KIB);
    // Refused: the whole mode, then 4M, 2M, 1M, 512K; then 32 chunks of 256 KiB (34 rows).
    let fb = allocate(&probe, 1920, 1080, &AllocPolicy::DEFAULT).unwrap();
    assert_eq!(fb.entry_count(), 32);
    let calls = probe.calls();
    assert_eq!(calls, 37);
    drop(fb);
    for n in 1..=calls {
        let hal = TestHal::new();
        hal.refuse_above(256 * KIB);
        hal.fail_from(n);
        let result = allocate(&hal, 1920, 1080, &AllocPolicy::DEFAULT);
        assert_eq!(
            result.err(),
            Some(Error::NoDmaMemory),
            "failing from call {n}"
        );
        assert_eq!(hal.live_bytes(), 0, "failing from call {n}");
        assert_eq!(hal.live_regions(), 0);
    }
}

#[test]
fn mode_needing_too_many_entries_is_refused_before_allocating() {
    let hal = TestHal::new();
    let four = policy(16 * MIB, 64 * KIB, 4);
    assert_eq!(four.entries_for(5486, 2818), Ok(4));
    let mut fb = allocate(&hal, 5486, 2818, &four).unwrap();
    check_layout(&mut fb, &hal);
    drop(fb);

    let three = policy(16 * MIB, 64 * KIB, 3);
    let calls = hal.calls();
    assert_eq!(three.entries_for(5486, 2818), Err(Error::ModeTooLarge));
    assert_eq!(
        allocate(&hal, 5486, 2818, &three).err(),
        Some(Error::ModeTooLarge)
    );
    assert_eq!(hal.calls(), calls);
    assert_eq!(hal.live_bytes(), 0);

    let none = policy(16 * MIB, 64 * KIB, 0);
    assert_eq!(allocate(&hal, 1, 1, &none).err(), Some(Error::ModeTooLarge));
    assert_eq!(AllocPolicy::DEFAULT.entries_for(16384, 16384), Ok(64));
}

#[test]
fn fragmentation_beyond_the_budget_fails_early_without_leaks() {
    let hal = TestHal::new();
    hal.refuse_above(64 * KIB);
    // 8K needs 2160 chunks at 64 KiB: over a budget of 1000, so it stops while shrinking.
    let result = allocate(&hal, 7680, 4320, &policy(16 * MIB, 64 * KIB, 1000));
    assert_eq!(result.err(), Some(Error::NoDmaMemory));
    assert_eq!(hal.live_bytes(), 0);
    assert!(hal.calls() < 10, "{} calls", hal.calls());
}

#[test]
fn minimum_size_failure_is_no_dma_memory() {
    let hal = TestHal::new();
    hal.refuse_above(32 * KIB);
    let result = allocate(&hal, 1024, 768, &AllocPolicy::DEFAULT);
    assert_eq!(result.err(), Some(Error::NoDmaMemory));
    assert_eq!(hal.live_bytes(), 0);
}

#[test]
fn zero_and_absurd_dimensions_are_refused() {
    let hal = TestHal::new();
    let p = AllocPolicy::DEFAULT;
    for (w, h, want) in [
        (0, 768, Error::InvalidArgument),
        (1024, 0, Error::InvalidArgument),
        (0, 0, Error::InvalidArgument),
        (16385, 16, Error::ModeTooLarge),
        (16, 16385, Error::ModeTooLarge),
        (u32::MAX, u32::MAX, Error::ModeTooLarge),
        (1 << 30, 4, Error::ModeTooLarge),
    ] {
        assert_eq!(allocate(&hal, w, h, &p).err(), Some(want), "{w}x{h}");
        assert_eq!(p.entries_for(w, h), Err(want), "{w}x{h}");
    }
    assert_eq!(hal.calls(), 0);
    assert_eq!(hal.live_bytes(), 0);
}

#[test]
fn pixels_land_at_the_linear_host_offset() {
    let hal = TestHal::new();
    // 11 rows per band, so rows 10/11 and 21/22 straddle band boundaries.
    let mut fb = allocate(&hal, 1366, 40, &policy(64 * KIB, 64 * KIB, 100)).unwrap();
    assert_eq!(band_rows(&fb), vec![11, 11, 11, 7]);
    let points = [(0, 0), (1365, 10), (0, 11), (700, 21), (3, 22), (1365, 39)];
    for (i, &(x, y)) in points.iter().enumerate() {
        fb.write_pixel(x, y, 0x00AB_0000 | i as u32).unwrap();
    }
    for (i, &(x, y)) in points.iter().enumerate() {
        assert_eq!(fb.read_pixel(x, y), Some(0x00AB_0000 | i as u32));
        assert_eq!(host_pixel(&fb, &hal, x, y), 0x00AB_0000 | i as u32);
    }
    assert_eq!(fb.read_pixel(1, 0), Some(0));
    assert_eq!(fb.read_pixel(1366, 0), None);
    assert_eq!(fb.read_pixel(0, 40), None);
    assert_eq!(fb.write_pixel(1366, 0, 1), Err(Error::OutOfBounds));
    assert_eq!(fb.write_pixel(0, 40, 1), Err(Error::OutOfBounds));
    // Little-endian BGRX in memory.
    fb.write_pixel(2, 0, 0x0011_2233).unwrap();
    assert_eq!(&fb.row(0).unwrap()[8..12], &[0x33, 0x22, 0x11, 0x00]);
}

#[test]
fn band_for_row_and_rows() {
    let hal = TestHal::new();
    let mut fb = allocate(&hal, 1366, 40, &policy(64 * KIB, 64 * KIB, 100)).unwrap();
    for (row, first) in [(0, 0), (10, 0), (11, 11), (32, 22), (33, 33), (39, 33)] {
        let band = fb.band_for_row(row).unwrap();
        assert_eq!(band.first_row, first, "row {row}");
        assert_eq!(band.bytes.len(), band.rows as usize * 5464);
    }
    assert!(fb.band_for_row(40).is_none());
    assert!(fb.row(40).is_none());
    assert!(fb.row_mut(u32::MAX).is_none());
    for y in 0..40 {
        assert_eq!(fb.row(y).unwrap().len(), 5464);
    }
    // Writing through a band shows up in the row view.
    let band = fb.band_for_row(12).unwrap();
    band.bytes[5464] = 0x5A; // row 12, first byte
    assert_eq!(fb.row(12).unwrap()[0], 0x5A);
}

#[test]
fn fill_sets_every_pixel() {
    let hal = TestHal::new();
    let mut fb = allocate(&hal, 37, 230, &policy(4 * KIB, 4 * KIB, 100)).unwrap();
    assert!(fb.entry_count() > 1);
    fb.fill(0x00C0_FFEE);
    for y in 0..230 {
        for x in 0..37 {
            assert_eq!(fb.read_pixel(x, y), Some(0x00C0_FFEE));
        }
    }
    assert_eq!(host_pixel(&fb, &hal, 36, 229), 0x00C0_FFEE);
}

#[test]
fn copy_rows_from_copies_the_shared_top_left_area() {
    let hal = TestHal::new();
    let small = policy(16 * KIB, 4 * KIB, 1000);
    let mut old = allocate(&hal, 100, 50, &small).unwrap();
    for y in 0..50 {
        for x in 0..100 {
            old.write_pixel(x, y, (y << 8) | x).unwrap();
        }
    }
    let mut new = allocate(&hal, 80, 70, &small).unwrap();
    new.copy_rows_from(&old);
    for y in 0..70 {
        for x in 0..80 {
            let want = if y < 50 { (y << 8) | x } else { 0 };
            assert_eq!(new.read_pixel(x, y), Some(want), "({x},{y})");
        }
    }
    // And the other direction: a narrower, taller source.
    let mut wide = allocate(&hal, 120, 30, &small).unwrap();
    wide.copy_rows_from(&new);
    assert_eq!(wide.read_pixel(79, 29), Some((29 << 8) | 79));
    assert_eq!(wide.read_pixel(80, 0), Some(0));
}

proptest! {
    // Under Miri, the default case count of scripts/miri.
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 96 }))]

    /// Any size, policy and failure pattern: either a backing whose bands cover every row
    /// once within the budget, or an error with nothing left allocated.
    #[test]
    fn success_covers_every_row_or_error_leaks_nothing(
        width in 1u32..=2048,
        height in 1u32..=1024,
        max_pages in 0usize..=512,
        min_pages in 0usize..=16,
        max_entries in 0usize..=300,
        refuse_above in proptest::option::of(0usize..=2 * MIB),
        fail_call in proptest::option::of(1u64..=30),
        fail_from in proptest::option::of(1u64..=60),
    ) {
        let hal = TestHal::new();
        if let Some(len) = refuse_above { hal.refuse_above(len); }
        if let Some(n) = fail_call { hal.fail_call(n); }
        if let Some(n) = fail_from { hal.fail_from(n); }
        let p = policy(max_pages * PAGE, min_pages * PAGE, max_entries);
        let injected = refuse_above.is_some() || fail_call.is_some() || fail_from.is_some();
        match allocate(&hal, width, height, &p) {
            Ok(mut fb) => {
                check_layout(&mut fb, &hal);
                prop_assert!(fb.entry_count() <= max_entries);
                prop_assert!(fb.entry_count() >= p.entries_for(width, height).unwrap());
                let (x, y) = (width - 1, height - 1);
                fb.write_pixel(x, y, 0x0012_3456).unwrap();
                prop_assert_eq!(host_pixel(&fb, &hal, x, y), 0x0012_3456);
                let last_band_start = fb.bands().last().unwrap().first_row;
                fb.write_pixel(0, last_band_start, 0x0065_4321).unwrap();
                prop_assert_eq!(host_pixel(&fb, &hal, 0, last_band_start), 0x0065_4321);
                drop(fb);
                prop_assert_eq!(hal.live_bytes(), 0);
            }
            Err(e) => {
                prop_assert_eq!(hal.live_bytes(), 0);
                prop_assert_eq!(hal.live_regions(), 0);
                match e {
                    Error::ModeTooLarge => {
                        prop_assert_eq!(p.entries_for(width, height), Err(Error::ModeTooLarge));
                    }
                    Error::NoDmaMemory => prop_assert!(injected, "failed without injected faults"),
                    other => prop_assert!(false, "unexpected error {:?}", other),
                }
            }
        }
    }
}

const PAGE: usize = crate::hal::PAGE_SIZE;
