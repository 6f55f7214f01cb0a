//! Exact-pixel tests of the blit on a small non-square surface, and a property test against a
//! per-pixel reference.

#![allow(clippy::unwrap_used)]

use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

/// AVX2 allowed: these tests run in a user-mode process, which has no YMM state to save.
// SAFETY: user mode; see `Simd::avx2_state_saved`.
const AVX2: Simd = unsafe { Simd::avx2_state_saved() };

/// Pixel value that encodes its own source position, so a wrong mapping is visible.
fn px(x: u32, y: u32) -> [u8; 4] {
    [x as u8, y as u8, 0xA0, 0xFF]
}

/// A `w` x `h` source with `pad` bytes of padding per row, pixels from [`px`].
fn source(w: u32, h: u32, pad: u32) -> (Vec<u8>, u32) {
    let pitch = w * 4 + pad;
    let mut bytes = vec![0xEE; (pitch * h) as usize];
    for y in 0..h {
        for x in 0..w {
            let o = (y * pitch + x * 4) as usize;
            bytes[o..o + 4].copy_from_slice(&px(x, y));
        }
    }
    (bytes, pitch)
}

fn pixel_at(bytes: &[u8], pitch: u32, x: u32, y: u32) -> [u8; 4] {
    let o = (y * pitch + x * 4) as usize;
    bytes[o..o + 4].try_into().unwrap()
}

const BLANK: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

/// A framebuffer of `w` x `h` filled with [`BLANK`].
fn framebuffer(w: u32, h: u32) -> (Vec<u8>, u32) {
    let pitch = w * 4;
    (BLANK.repeat((w * h) as usize), pitch)
}

/// Framebuffer contents as rows of source coordinates; `None` where still blank.
fn decode(bytes: &[u8], w: u32, h: u32) -> Vec<Vec<Option<(u8, u8)>>> {
    (0..h)
        .map(|y| {
            (0..w)
                .map(|x| {
                    let p = pixel_at(bytes, w * 4, x, y);
                    (p != BLANK).then_some((p[0], p[1]))
                })
                .collect()
        })
        .collect()
}

fn blit_full(rotation: Rotation) -> Vec<Vec<Option<(u8, u8)>>> {
    let (sb, sp) = source(5, 3, 8);
    let src = Surface::new(&sb, 5, 3, sp).unwrap();
    let (fw, fh) = rotation.framebuffer_size(5, 3);
    let (mut fb, fp) = framebuffer(fw, fh);
    let mut dst = SurfaceMut::new(&mut fb, fw, fh, fp).unwrap();
    let out = blit_rect(&mut dst, &src, &Rect::new(0, 0, 5, 3), rotation).unwrap();
    assert_eq!(out, Rect::new(0, 0, fw as i32, fh as i32));
    decode(&fb, fw, fh)
}

fn s(x: u8, y: u8) -> Option<(u8, u8)> {
    Some((x, y))
}

#[test]
fn identity_copies_every_pixel_in_place() {
    let got = blit_full(Rotation::Identity);
    for (y, row) in got.iter().enumerate() {
        for (x, p) in row.iter().enumerate() {
            assert_eq!(*p, s(x as u8, y as u8));
        }
    }
}

#[test]
fn rotate90_puts_the_top_row_on_the_left_column_bottom_up() {
    // Framebuffer is 3 wide, 5 tall: fb(u, v) = src(W - 1 - v, u) with W = 5.
    let expected = vec![
        vec![s(4, 0), s(4, 1), s(4, 2)],
        vec![s(3, 0), s(3, 1), s(3, 2)],
        vec![s(2, 0), s(2, 1), s(2, 2)],
        vec![s(1, 0), s(1, 1), s(1, 2)],
        vec![s(0, 0), s(0, 1), s(0, 2)],
    ];
    assert_eq!(blit_full(Rotation::Rotate90), expected);
}

#[test]
fn rotate180_reverses_rows_and_columns() {
    let expected = vec![
        vec![s(4, 2), s(3, 2), s(2, 2), s(1, 2), s(0, 2)],
        vec![s(4, 1), s(3, 1), s(2, 1), s(1, 1), s(0, 1)],
        vec![s(4, 0), s(3, 0), s(2, 0), s(1, 0), s(0, 0)],
    ];
    assert_eq!(blit_full(Rotation::Rotate180), expected);
}

#[test]
fn rotate270_puts_the_top_row_on_the_right_column_top_down() {
    // fb(u, v) = src(v, H - 1 - u) with H = 3.
    let expected = vec![
        vec![s(0, 2), s(0, 1), s(0, 0)],
        vec![s(1, 2), s(1, 1), s(1, 0)],
        vec![s(2, 2), s(2, 1), s(2, 0)],
        vec![s(3, 2), s(3, 1), s(3, 0)],
        vec![s(4, 2), s(4, 1), s(4, 0)],
    ];
    assert_eq!(blit_full(Rotation::Rotate270), expected);
}

#[test]
fn partial_rect_rotate90_writes_only_its_image() {
    let (sb, sp) = source(5, 3, 0);
    let src = Surface::new(&sb, 5, 3, sp).unwrap();
    let (mut fb, fp) = framebuffer(3, 5);
    let mut dst = SurfaceMut::new(&mut fb, 3, 5, fp).unwrap();
    // Columns 1..3, rows 0..2 of the source.
    let out = blit_rect(&mut dst, &src, &Rect::new(1, 0, 3, 2), Rotation::Rotate90).unwrap();
    assert_eq!(out, Rect::new(0, 2, 2, 4));
    let n = None;
    let expected = vec![
        vec![n, n, n],
        vec![n, n, n],
        vec![s(2, 0), s(2, 1), n],
        vec![s(1, 0), s(1, 1), n],
        vec![n, n, n],
    ];
    assert_eq!(decode(&fb, 3, 5), expected);
}

#[test]
fn rotate_rect_matches_the_table() {
    let r = Rect::new(1, 0, 3, 2);
    assert_eq!(rotate_rect(&r, Rotation::Identity, 5, 3), r);
    assert_eq!(
        rotate_rect(&r, Rotation::Rotate90, 5, 3),
        Rect::new(0, 2, 2, 4)
    );
    assert_eq!(
        rotate_rect(&r, Rotation::Rotate180, 5, 3),
        Rect::new(2, 1, 4, 3)
    );
    assert_eq!(
        rotate_rect(&r, Rotation::Rotate270, 5, 3),
        Rect::new(1, 1, 3, 3)
    );
}

#[test]
fn rotation_from_vppr_values() {
    assert_eq!(Rotation::from_vppr(1), Ok(Rotation::Identity));
    assert_eq!(Rotation::from_vppr(2), Ok(Rotation::Rotate90));
    assert_eq!(Rotation::from_vppr(3), Ok(Rotation::Rotate180));
    assert_eq!(Rotation::from_vppr(4), Ok(Rotation::Rotate270));
    assert_eq!(Rotation::from_vppr(0), Err(Error::InvalidArgument));
    assert_eq!(Rotation::from_vppr(5), Err(Error::InvalidArgument));
}

#[test]
fn surface_geometry_is_validated() {
    let bytes = [0u8; 64];
    assert!(Surface::new(&bytes, 4, 4, 16).is_ok());
    // The last row needs only width * 4 bytes, not a full pitch.
    assert!(Surface::new(&bytes, 2, 4, 18).is_ok());
    assert_eq!(
        Surface::new(&bytes, 2, 4, 19).unwrap_err(),
        Error::OutOfBounds
    );
    assert_eq!(
        Surface::new(&bytes, 4, 4, 12).unwrap_err(),
        Error::InvalidArgument
    );
    assert_eq!(
        Surface::new(&bytes, 0, 4, 16).unwrap_err(),
        Error::InvalidArgument
    );
    assert_eq!(
        Surface::new(&bytes, 4, 0, 16).unwrap_err(),
        Error::InvalidArgument
    );
    assert_eq!(
        Surface::new(&bytes, 4, 5, 16).unwrap_err(),
        Error::OutOfBounds
    );
    assert_eq!(
        Surface::new(&bytes, u32::MAX / 2, 1, u32::MAX).unwrap_err(),
        Error::InvalidArgument
    );
    assert_eq!(
        Surface::new(&bytes, 1, u32::MAX, u32::MAX).unwrap_err(),
        Error::InvalidArgument
    );
}

#[test]
fn bad_rects_are_rejected_and_nothing_is_written() {
    let (sb, sp) = source(5, 3, 0);
    let src = Surface::new(&sb, 5, 3, sp).unwrap();
    for rotation in [
        Rotation::Identity,
        Rotation::Rotate90,
        Rotation::Rotate180,
        Rotation::Rotate270,
    ] {
        let (fw, fh) = rotation.framebuffer_size(5, 3);
        let (mut fb, fp) = framebuffer(fw, fh);
        let before = fb.clone();
        let mut dst = SurfaceMut::new(&mut fb, fw, fh, fp).unwrap();
        let cases = [
            (Rect::new(-1, 0, 2, 2), Error::OutOfBounds),
            (Rect::new(0, -1, 2, 2), Error::OutOfBounds),
            (Rect::new(0, 0, 6, 2), Error::OutOfBounds),
            (Rect::new(0, 0, 2, 4), Error::OutOfBounds),
            (Rect::new(i32::MIN, 0, i32::MAX, 3), Error::OutOfBounds),
            (Rect::new(3, 0, 2, 2), Error::InvalidArgument),
            (Rect::new(0, 2, 2, 1), Error::InvalidArgument),
        ];
        for (rect, err) in cases {
            assert_eq!(blit_rect(&mut dst, &src, &rect, rotation), Err(err));
        }
        // Empty rects are a no-op, even far outside the surface.
        for rect in [Rect::new(2, 1, 2, 3), Rect::new(-9, -9, -9, 100)] {
            assert_eq!(blit_rect(&mut dst, &src, &rect, rotation), Ok(Rect::EMPTY));
        }
        assert_eq!(fb, before, "{rotation:?}");
    }
}

#[test]
fn framebuffer_too_small_for_the_rotated_image_is_rejected() {
    let (sb, sp) = source(5, 3, 0);
    let src = Surface::new(&sb, 5, 3, sp).unwrap();
    // An unrotated-size framebuffer cannot take the 90-degree image of the bottom-left corner.
    let (mut fb, fp) = framebuffer(5, 3);
    let before = fb.clone();
    let mut dst = SurfaceMut::new(&mut fb, 5, 3, fp).unwrap();
    assert_eq!(
        blit_rect(&mut dst, &src, &Rect::new(0, 0, 1, 1), Rotation::Rotate90),
        Err(Error::OutOfBounds)
    );
    assert_eq!(fb, before);
}

#[test]
fn move_rect_copies_the_destination_from_the_source() {
    let (sb, sp) = source(5, 3, 4);
    let src = Surface::new(&sb, 5, 3, sp).unwrap();
    let (mut fb, fp) = framebuffer(5, 3);
    let mut dst = SurfaceMut::new(&mut fb, 5, 3, fp).unwrap();
    // A scroll up by one row: the OS says rows 1..3 moved to rows 0..2.
    let out = move_rect(
        &mut dst,
        &src,
        Point { x: 0, y: 1 },
        &Rect::new(0, 0, 5, 2),
        Rotation::Identity,
    )
    .unwrap();
    assert_eq!(out, Rect::new(0, 0, 5, 2));
    let got = decode(&fb, 5, 3);
    // The new desktop image is already in the source, so row 0 comes from source row 0.
    assert_eq!(got[0], (0..5).map(|x| s(x, 0)).collect::<Vec<_>>());
    assert_eq!(got[1], (0..5).map(|x| s(x, 1)).collect::<Vec<_>>());
    assert_eq!(got[2], vec![None; 5]);
}

#[test]
fn move_rect_rotated_returns_the_framebuffer_rect() {
    let (sb, sp) = source(5, 3, 0);
    let src = Surface::new(&sb, 5, 3, sp).unwrap();
    let (mut fb, fp) = framebuffer(3, 5);
    let mut dst = SurfaceMut::new(&mut fb, 3, 5, fp).unwrap();
    let out = move_rect(
        &mut dst,
        &src,
        Point { x: 3, y: 2 },
        &Rect::new(4, 0, 5, 1),
        Rotation::Rotate270,
    )
    .unwrap();
    assert_eq!(out, Rect::new(2, 4, 3, 5));
    assert_eq!(decode(&fb, 3, 5)[4][2], s(4, 0));
}

#[test]
fn move_rect_with_source_outside_is_rejected_and_nothing_is_written() {
    let (sb, sp) = source(5, 3, 0);
    let src = Surface::new(&sb, 5, 3, sp).unwrap();
    let (mut fb, fp) = framebuffer(5, 3);
    let before = fb.clone();
    let mut dst = SurfaceMut::new(&mut fb, 5, 3, fp).unwrap();
    let dest = Rect::new(0, 0, 2, 2);
    for point in [
        Point { x: 4, y: 0 },
        Point { x: 0, y: 2 },
        Point { x: -1, y: 0 },
        Point {
            x: i32::MAX,
            y: i32::MAX,
        },
    ] {
        assert_eq!(
            move_rect(&mut dst, &src, point, &dest, Rotation::Identity),
            Err(Error::OutOfBounds)
        );
    }
    assert_eq!(
        move_rect(
            &mut dst,
            &src,
            Point { x: 0, y: 0 },
            &Rect::new(0, 0, 6, 1),
            Rotation::Identity
        ),
        Err(Error::OutOfBounds)
    );
    assert_eq!(fb, before);
}

/// Per-pixel reference: the mapping table of the module docs, written out naively.
fn reference(
    fb: &mut [u8],
    fb_pitch: u32,
    src: &[u8],
    src_pitch: u32,
    (w, h): (u32, u32),
    rect: &Rect,
    rotation: Rotation,
) {
    for y in rect.top as u32..rect.bottom as u32 {
        for x in rect.left as u32..rect.right as u32 {
            let (u, v) = match rotation {
                Rotation::Identity => (x, y),
                Rotation::Rotate90 => (y, w - 1 - x),
                Rotation::Rotate180 => (w - 1 - x, h - 1 - y),
                Rotation::Rotate270 => (h - 1 - y, x),
            };
            let p = pixel_at(src, src_pitch, x, y);
            let o = (v * fb_pitch + u * 4) as usize;
            fb[o..o + 4].copy_from_slice(&p);
        }
    }
}

/// Rotated blits on surfaces big enough for several bands of whole tiles plus edge strips:
/// sizes and rect corners that are not multiples of the tile, pitches that are not multiples
/// of 64, and a last row without padding, against the per-pixel reference.
#[test]
fn rotated_blits_across_bands_and_tile_edges_match_the_reference() {
    let rects = [
        Rect::new(0, 0, 150, 131),
        Rect::new(3, 5, 67, 69),
        Rect::new(16, 32, 80, 96),
        Rect::new(1, 0, 150, 130),
        Rect::new(37, 11, 142, 128),
        Rect::new(149, 0, 150, 131),
        Rect::new(0, 130, 150, 131),
        // Edge strips of whole 4x4 quads with and without a remainder: 8 columns (as at the
        // right of a 1080-pixel-wide framebuffer), 12, and 9 rows in the last band.
        Rect::new(0, 0, 120, 72),
        Rect::new(5, 7, 105, 83),
        Rect::new(20, 3, 93, 109),
    ];
    let (w, h) = (150, 131);
    let modes = [Rotation::Rotate90, Rotation::Rotate270]
        .into_iter()
        .flat_map(|rotation| [Simd::BASELINE, AVX2].map(|simd| BlitMode { rotation, simd }));
    for (src_pad, fb_pad) in [(0, 0), (12, 4), (36, 60)] {
        for mode in modes.clone() {
            let rotation = mode.rotation;
            for rect in &rects {
                let spitch = w * 4 + src_pad;
                let sb: Vec<u8> = (0..spitch * h)
                    .map(|i| (i as u8).wrapping_mul(29))
                    .collect();
                let src = Surface::new(&sb, w, h, spitch).unwrap();
                let (fw, fh) = rotation.framebuffer_size(w, h);
                let fpitch = fw * 4 + fb_pad;
                let mut fb = vec![0x5Au8; (fpitch * (fh - 1) + fw * 4) as usize];
                let mut expected = fb.clone();
                reference(&mut expected, fpitch, &sb, spitch, (w, h), rect, rotation);
                let mut dst = SurfaceMut::new(&mut fb, fw, fh, fpitch).unwrap();
                let out = blit_rect(&mut dst, &src, rect, mode).unwrap();
                assert_eq!(out, rotate_rect(rect, rotation, w, h));
                assert!(fb == expected, "{mode:?} {rect:?} pads {src_pad}/{fb_pad}");
            }
        }
    }
}

fn rotation_strategy() -> impl Strategy<Value = Rotation> {
    prop_oneof![
        Just(Rotation::Identity),
        Just(Rotation::Rotate90),
        Just(Rotation::Rotate180),
        Just(Rotation::Rotate270),
    ]
}

proptest! {
    #[test]
    fn blit_matches_the_per_pixel_reference(
        w in 1u32..70,
        h in 1u32..70,
        src_pad in 0u32..9,
        fb_pad in 0u32..9,
        rotation in rotation_strategy(),
        avx2 in any::<bool>(),
        a in any::<(u32, u32, u32, u32)>(),
        seed in any::<u8>(),
    ) {
        let simd = if avx2 { AVX2 } else { Simd::BASELINE };
        let spitch = w * 4 + src_pad;
        let sb: Vec<u8> = (0..spitch * h).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
        let src = Surface::new(&sb, w, h, spitch).unwrap();
        let (fw, fh) = rotation.framebuffer_size(w, h);
        let fpitch = fw * 4 + fb_pad;
        // The last row of both buffers is exactly width * 4 long: no slack past the end.
        let mut fb = vec![0x5Au8; (fpitch * (fh - 1) + fw * 4) as usize];
        let mut expected = fb.clone();
        let rect = Rect::new(
            (a.0 % w) as i32,
            (a.1 % h) as i32,
            (a.0 % w + 1 + a.2 % (w - a.0 % w)) as i32,
            (a.1 % h + 1 + a.3 % (h - a.1 % h)) as i32,
        );
        reference(&mut expected, fpitch, &sb, spitch, (w, h), &rect, rotation);
        let mut dst = SurfaceMut::new(&mut fb, fw, fh, fpitch).unwrap();
        let out = blit_rect(&mut dst, &src, &rect, BlitMode { rotation, simd }).unwrap();
        prop_assert_eq!(out, rotate_rect(&rect, rotation, w, h));
        prop_assert!(fb == expected);
    }
}

/// A surface that holds only some rows: rects inside them copy as from the whole surface,
/// under every rotation; a rect reaching another row is refused and writes nothing; bad row
/// ranges and short byte slices are refused.
#[test]
fn a_surface_holding_some_rows_reads_only_those() {
    let (w, h) = (40, 30);
    let (whole, pitch) = source(w, h, 8);
    let held = 10..20;
    let bytes = &whole[(held.start * pitch) as usize..(held.end * pitch) as usize];
    let part = Surface::rows(bytes, w, h, pitch, held.clone()).unwrap();
    assert_eq!(part.rows_held(), held);
    let full = Surface::new(&whole, w, h, pitch).unwrap();
    for rotation in [
        Rotation::Identity,
        Rotation::Rotate90,
        Rotation::Rotate180,
        Rotation::Rotate270,
    ] {
        let (fw, fh) = rotation.framebuffer_size(w, h);
        let (mut from_part, fpitch) = framebuffer(fw, fh);
        let (mut from_full, _) = framebuffer(fw, fh);
        let inside = Rect::new(3, 10, 37, 20);
        let mut dst = SurfaceMut::new(&mut from_part, fw, fh, fpitch).unwrap();
        blit_rect(&mut dst, &part, &inside, rotation).unwrap();
        let mut dst = SurfaceMut::new(&mut from_full, fw, fh, fpitch).unwrap();
        blit_rect(&mut dst, &full, &inside, rotation).unwrap();
        assert!(from_part == from_full, "{rotation:?}");
        for reaching in [Rect::new(0, 9, 4, 12), Rect::new(0, 19, 4, 21)] {
            let before = from_part.clone();
            let mut dst = SurfaceMut::new(&mut from_part, fw, fh, fpitch).unwrap();
            assert_eq!(
                blit_rect(&mut dst, &part, &reaching, rotation),
                Err(Error::OutOfBounds),
                "{rotation:?} {reaching:?}"
            );
            assert!(from_part == before);
        }
    }
    let inverted = core::ops::Range { start: 20, end: 10 };
    assert_eq!(
        Surface::rows(bytes, w, h, pitch, inverted).err(),
        Some(Error::InvalidArgument)
    );
    assert_eq!(
        Surface::rows(bytes, w, h, pitch, 25..31).err(),
        Some(Error::InvalidArgument)
    );
    assert_eq!(
        Surface::rows(
            &bytes[..bytes.len() - pitch as usize - 1],
            w,
            h,
            pitch,
            held
        )
        .err(),
        Some(Error::OutOfBounds)
    );
    assert!(Surface::rows(&[], w, h, pitch, 5..5).is_ok());
}
