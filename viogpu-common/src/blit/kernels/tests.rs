#![allow(clippy::unwrap_used)]
use super::*;
use alloc::vec;
use alloc::vec::Vec;

/// The portable block kernel (used off x86_64) and the ones this build uses (SSE2, and AVX2
/// where the processor has it: the benchmark and CI machines do) agree, on blocks narrow and
/// wide enough for both walk orders, with pitches that are not multiples of 32 or 64 and a
/// last row without padding.
#[test]
fn portable_and_native_tile_transposes_agree() {
    for (tiles_h, tiles_w) in [
        (1, 1),
        (1, 3),
        (3, 1),
        (2, 3),
        (3, 4),
        (2, 5),
        (1, 7),
        (4, 7),
    ] {
        let (rows, cols) = (tiles_h * TILE, tiles_w * TILE);
        let (sp, dp) = (rows * PX + 12, cols * PX + 4);
        let src_len = block_len(sp, cols, rows).unwrap();
        let dst_len = block_len(dp, rows, cols).unwrap();
        let src: Vec<u8> = (0..src_len).map(|i| (i * 13 + 7) as u8).collect();
        for (rotate90, avx2) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut native = vec![0u8; dst_len];
            let mut portable = vec![0u8; dst_len];
            let tiles = (tiles_h, tiles_w);
            if rotate90 {
                transpose_tiles::<true>(&src, sp, &mut native, dp, tiles, avx2).unwrap();
                transpose_tiles_portable::<true>(&src, sp, &mut portable, dp, tiles).unwrap();
            } else {
                transpose_tiles::<false>(&src, sp, &mut native, dp, tiles, avx2).unwrap();
                transpose_tiles_portable::<false>(&src, sp, &mut portable, dp, tiles).unwrap();
            }
            assert_eq!(
                native, portable,
                "{tiles:?} rotate90 {rotate90} avx2 {avx2}"
            );
            // D(0, 1) is S(1, rows - 1) for 90 degrees and S(cols - 2, 0) for 270.
            let (r, c) = if rotate90 {
                (1, rows - 1)
            } else {
                (cols - 2, 0)
            };
            assert_eq!(
                native[PX..2 * PX],
                src[r * sp + c * PX..r * sp + c * PX + PX]
            );
        }
    }
}

/// The quad kernel that copies the whole-quad part of edge tiles (SSE2 on x86_64) agrees
/// with the per-pixel version on blocks of every quad shape an edge tile can have, with
/// pitches that are not multiples of 16 and a last row without padding, and puts a known
/// pixel where the rotation says.
#[test]
fn quad_kernel_matches_the_per_pixel_transpose() {
    for rows in [4, 8, 12, 16] {
        for cols in [4, 8, 12, 16] {
            let (sp, dp) = (rows * PX + 12, cols * PX + 8);
            let src_len = block_len(sp, cols, rows).unwrap();
            let dst_len = block_len(dp, rows, cols).unwrap();
            let src: Vec<u8> = (0..src_len).map(|i| (i * 29 + 3) as u8).collect();
            for rotate90 in [false, true] {
                let mut native = vec![0u8; dst_len];
                let mut portable = vec![0u8; dst_len];
                let shape = (rows, cols);
                if rotate90 {
                    transpose_quads::<true>(&src, sp, &mut native, dp, shape).unwrap();
                    transpose_quads_portable::<true>(&src, sp, &mut portable, dp, shape).unwrap();
                } else {
                    transpose_quads::<false>(&src, sp, &mut native, dp, shape).unwrap();
                    transpose_quads_portable::<false>(&src, sp, &mut portable, dp, shape).unwrap();
                }
                assert_eq!(native, portable, "{rows}x{cols} rotate90 {rotate90}");
                // D(1, 2) is S(2, rows - 2) for 90 degrees and S(cols - 3, 1) for 270.
                let (r, c) = if rotate90 {
                    (2, rows - 2)
                } else {
                    (cols - 3, 1)
                };
                let d = dp + 2 * PX;
                let s = r * sp + c * PX;
                assert_eq!(native[d..d + PX], src[s..s + PX]);
            }
        }
    }
}

/// A 16x16 quad block is a tile: the quad kernels and the tile kernels agree on it.
#[test]
fn a_tile_sized_quad_block_is_transposed_like_a_tile() {
    let (sp, dp) = (TILE * PX + 20, TILE * PX + 36);
    let src: Vec<u8> = (0..block_len(sp, TILE, TILE).unwrap())
        .map(|i| (i * 7 + 1) as u8)
        .collect();
    let dst_len = block_len(dp, TILE, TILE).unwrap();
    let (mut quads, mut tiles) = (vec![0u8; dst_len], vec![0u8; dst_len]);
    transpose_quads::<true>(&src, sp, &mut quads, dp, (TILE, TILE)).unwrap();
    transpose_tiles_portable::<true>(&src, sp, &mut tiles, dp, (1, 1)).unwrap();
    assert_eq!(quads, tiles);
    transpose_quads::<false>(&src, sp, &mut quads, dp, (TILE, TILE)).unwrap();
    transpose_tiles_portable::<false>(&src, sp, &mut tiles, dp, (1, 1)).unwrap();
    assert_eq!(quads, tiles);
}

#[test]
fn quad_kernels_reject_short_slices_and_partial_quads() {
    let pitch = 8 * PX;
    let need = block_len(pitch, 8, 8).unwrap();
    let (src, mut dst) = (vec![0u8; need], vec![0u8; need]);
    let (short_src, mut short_dst) = (vec![0u8; need - 1], vec![0u8; need - 1]);
    assert_eq!(
        transpose_quads::<true>(&short_src, pitch, &mut dst, pitch, (8, 8)),
        Err(Error::OutOfBounds)
    );
    assert_eq!(
        transpose_quads::<false>(&src, pitch, &mut short_dst, pitch, (8, 8)),
        Err(Error::OutOfBounds)
    );
    assert_eq!(
        transpose_quads_portable::<true>(&short_src, pitch, &mut dst, pitch, (8, 8)),
        Err(Error::OutOfBounds)
    );
    assert_eq!(
        transpose_quads_portable::<false>(&src, pitch, &mut short_dst, pitch, (8, 8)),
        Err(Error::OutOfBounds)
    );
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        transpose_quads::<true>(&src, pitch, &mut dst, pitch, (8, 6)),
        Err(Error::InvalidArgument)
    );
}

#[test]
fn tile_kernels_reject_short_slices() {
    let pitch = 2 * TILE * PX;
    let need = block_len(pitch, 2 * TILE, 2 * TILE).unwrap();
    let src = vec![0u8; need - 1];
    let mut dst = vec![0u8; need];
    assert_eq!(
        transpose_tiles::<true>(&src, pitch, &mut dst, pitch, (2, 2), true),
        Err(Error::OutOfBounds)
    );
    assert_eq!(
        transpose_tiles_portable::<true>(&src, pitch, &mut dst, pitch, (2, 2)),
        Err(Error::OutOfBounds)
    );
    let src = vec![0u8; need];
    let mut dst = vec![0u8; need - 1];
    assert_eq!(
        transpose_tiles::<false>(&src, pitch, &mut dst, pitch, (2, 2), true),
        Err(Error::OutOfBounds)
    );
    assert_eq!(
        transpose_tiles_portable::<false>(&src, pitch, &mut dst, pitch, (2, 2)),
        Err(Error::OutOfBounds)
    );
}

/// `avx2_usable` agrees with the standard library's detection, which checks the same CPUID
/// bits and XCR0.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[test]
fn avx2_is_found_where_the_standard_library_finds_it() {
    extern crate std;
    assert_eq!(x86::avx2_usable(), std::is_x86_feature_detected!("avx2"));
}
