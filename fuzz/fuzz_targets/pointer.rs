//! Fuzzes pointer shapes from DxgkDdiSetPointerShape: `viogpu_common::cursor::convert_pointer`
//! and `rotate_cursor`. Checks that a shape is accepted exactly when it is well-formed, that
//! nothing is written on failure, that each converted pixel follows the kind's truth table
//! (white outline only beside an inverting pixel), that nothing is drawn outside the shape and
//! its outline, and that rotating by `r` and then by the inverse gives the image back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use viogpu_common::blit::Rotation;
use viogpu_common::cursor::{
    convert_pointer, rotate_cursor, HotSpot, PointerKind, PointerShape, CURSOR_BYTES, CURSOR_SIZE,
};

const SENTINEL: u8 = 0xAB;
const BLACK: [u8; 4] = [0, 0, 0, 0xFF];
const WHITE: [u8; 4] = [0xFF; 4];
const CLEAR: [u8; 4] = [0; 4];
const N: usize = CURSOR_SIZE as usize;

fn at(image: &[u8; CURSOR_BYTES], x: usize, y: usize) -> [u8; 4] {
    let o = (y * N + x) * 4;
    [image[o], image[o + 1], image[o + 2], image[o + 3]]
}

fn rotation(bits: u8) -> Rotation {
    match bits & 3 {
        0 => Rotation::Identity,
        1 => Rotation::Rotate90,
        2 => Rotation::Rotate180,
        _ => Rotation::Rotate270,
    }
}

fn inverse(r: Rotation) -> Rotation {
    match r {
        Rotation::Rotate90 => Rotation::Rotate270,
        Rotation::Rotate270 => Rotation::Rotate90,
        other => other,
    }
}

/// What a shape pixel means before the outline: its final colour, or `None` for a pixel that
/// inverts the screen (drawn black, outlined in white).
enum Source {
    Pixel([u8; 4]),
    Inverts,
}

fuzz_target!(|data: &[u8]| {
    // Header: flags, width, height, pitch (2 bytes), hot spot x and y; then the pixels.
    let Some((head, pixels)) = data.split_first_chunk::<7>() else {
        return;
    };
    let [flags, w, h, p0, p1, hx, hy] = *head;
    let kind = match flags & 3 {
        0 => PointerKind::Monochrome,
        1 => PointerKind::Color,
        _ => PointerKind::MaskedColor,
    };
    // Sizes and hot spots a little past the limits, so both sides of each check are reached.
    let (width, height) = (u32::from(w) % 67, u32::from(h) % 67);
    let (hot_x, hot_y) = (u32::from(hx) % 67, u32::from(hy) % 67);
    let row_bytes = match kind {
        PointerKind::Monochrome => width.div_ceil(8),
        _ => width * 4,
    };
    // Mostly a pitch at or just above a row; sometimes any 16-bit value.
    let raw_pitch = u32::from(u16::from_le_bytes([p0, p1]));
    let pitch = if flags & 0x10 != 0 {
        raw_pitch
    } else {
        row_bytes + raw_pitch % 8
    };
    let shape = PointerShape {
        kind,
        width,
        height,
        pitch,
        hot_x,
        hot_y,
        pixels,
    };
    let mut out = [SENTINEL; CURSOR_BYTES];
    let result = convert_pointer(&shape, &mut out);

    // The independent verdict on the shape.
    let rows = match kind {
        PointerKind::Monochrome => 2 * height as usize,
        _ => height as usize,
    };
    let (w, h, pitch) = (width as usize, height as usize, pitch as usize);
    let well_formed = (1..=N).contains(&w)
        && (1..=N).contains(&h)
        && hot_x < width
        && hot_y < height
        && pitch >= row_bytes as usize
        && pitch * (rows - 1) + row_bytes as usize <= pixels.len();
    let px = |x: usize, y: usize| -> [u8; 4] {
        let o = y * pitch + x * 4;
        [pixels[o], pixels[o + 1], pixels[o + 2], pixels[o + 3]]
    };
    let masks_ok = kind != PointerKind::MaskedColor
        || !well_formed
        || (0..h).all(|y| (0..w).all(|x| matches!(px(x, y)[3], 0 | 0xFF)));
    let Ok(hot) = result else {
        assert!(!(well_formed && masks_ok), "{shape:?} refused: {result:?}");
        assert!(out.iter().all(|&b| b == SENTINEL), "written on failure");
        return;
    };
    assert!(well_formed && masks_ok, "{shape:?} accepted");
    assert_eq!(hot, HotSpot { x: hot_x, y: hot_y });

    let premultiplied = kind == PointerKind::Color
        && (0..h).all(|y| {
            (0..w).all(|x| {
                let [b, g, r, a] = px(x, y);
                b.max(g).max(r) <= a
            })
        });
    let source = |x: usize, y: usize| -> Source {
        match kind {
            PointerKind::Monochrome => {
                let bit = |row: usize| pixels[row * pitch + x / 8] & (0x80 >> (x % 8)) != 0;
                match (bit(y), bit(h + y)) {
                    (false, false) => Source::Pixel(BLACK),
                    (false, true) => Source::Pixel(WHITE),
                    (true, false) => Source::Pixel(CLEAR),
                    (true, true) => Source::Inverts,
                }
            }
            PointerKind::Color => {
                let [b, g, r, a] = px(x, y);
                if !premultiplied {
                    Source::Pixel([b, g, r, a])
                } else if a == 0 {
                    Source::Pixel(CLEAR)
                } else {
                    let un = |c: u8| ((u32::from(c) * 255 + u32::from(a) / 2) / u32::from(a)) as u8;
                    Source::Pixel([un(b), un(g), un(r), a])
                }
            }
            PointerKind::MaskedColor => match px(x, y) {
                [b, g, r, 0] => Source::Pixel([b, g, r, 0xFF]),
                [0, 0, 0, _] => Source::Pixel(CLEAR),
                _ => Source::Inverts,
            },
        }
    };
    // The expected image: each shape pixel from its kind's truth table, then the white outline
    // on transparent pixels beside an inverting one (inside the shape or one past its edge).
    let mut inverts = [[false; N + 1]; N + 1];
    let mut expected = [[CLEAR; N]; N];
    for y in 0..h {
        for x in 0..w {
            match source(x, y) {
                Source::Inverts => {
                    inverts[y][x] = true;
                    expected[y][x] = BLACK;
                }
                Source::Pixel(p) => expected[y][x] = p,
            }
        }
    }
    for y in 0..N {
        for x in 0..N {
            let beside_inverting = (x > 0 && inverts[y][x - 1])
                || inverts[y][x + 1]
                || (y > 0 && inverts[y - 1][x])
                || inverts[y + 1][x];
            if beside_inverting && expected[y][x][3] == 0 {
                expected[y][x] = WHITE;
            }
            assert_eq!(
                at(&out, x, y),
                expected[y][x],
                "pixel ({x}, {y}) of {shape:?}"
            );
        }
    }

    // Rotation: the content stays in its box at the top-left corner, the hot spot inside it,
    // and the inverse rotation restores the image exactly.
    let r = rotation(flags >> 2);
    let mut turned = [SENTINEL; CURSOR_BYTES];
    let rotated = rotate_cursor(&out, width, height, hot, r, &mut turned).expect("valid shape");
    assert!(rotated.width <= CURSOR_SIZE && rotated.height <= CURSOR_SIZE);
    assert!(rotated.hot.x < rotated.width && rotated.hot.y < rotated.height);
    let (bw, bh) = (rotated.width as usize, rotated.height as usize);
    for y in 0..N {
        for x in 0..N {
            if x >= bw || y >= bh {
                assert_eq!(
                    at(&turned, x, y),
                    CLEAR,
                    "rotated pixel ({x}, {y}) outside its box"
                );
            }
        }
    }
    let mut back = [SENTINEL; CURSOR_BYTES];
    let restored = rotate_cursor(
        &turned,
        rotated.width,
        rotated.height,
        rotated.hot,
        inverse(r),
        &mut back,
    )
    .expect("rotated box is valid");
    assert_eq!(restored.hot, hot);
    assert!(
        back == out,
        "rotation {r:?} and back changed the image of {shape:?}"
    );

    // Any image (not only converted ones) rotates without writing outside its box.
    if let Some(image) = pixels.first_chunk::<CURSOR_BYTES>() {
        let mut turned = [SENTINEL; CURSOR_BYTES];
        if let Ok(any) = rotate_cursor(image, width, height, hot, r, &mut turned) {
            assert!(any.width <= CURSOR_SIZE && any.height <= CURSOR_SIZE);
            assert!(any.hot.x < any.width && any.hot.y < any.height);
        }
    }
});
