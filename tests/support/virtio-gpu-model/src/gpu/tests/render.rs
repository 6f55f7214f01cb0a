//! Pixels: transfers read guest memory with QEMU's offset rule, scanouts show what was
//! flushed, and the cursor takes its image from the host copy of its resource.

use super::*;

use viogpu_common::protocol::{CommandType, ResourceFlush, UpdateCursor};

use crate::gpu::{Image, CURSOR_SIZE, UNDEFINED_PIXEL};

/// A pixel value that encodes its coordinates and a generation tag.
fn px(tag: u32, x: u32, y: u32) -> u32 {
    (tag << 24) | (y << 12) | x
}

#[test]
fn sub_rect_transfer_uses_the_offset_and_the_resource_stride() {
    let mut h = Harness::default();
    let (w, hgt) = (64, 48);
    let fb = h.framebuffer(0, 1, w, hgt);
    paint(&h, fb, w, hgt, w * 4, |x, y| px(1, x, y));
    // The driver's rule: offset = y * stride + x * 4 for the rectangle's first pixel.
    let r = Rect::new(10, 7, 20, 5);
    let offset = u64::from(r.y * w * 4 + r.x * 4);
    h.transfer(1, r, offset);
    assert_eq!(
        h.gpu.transfers().copied().collect::<Vec<_>>(),
        vec![crate::gpu::TransferRecord {
            resource_id: 1,
            rect: r,
            offset
        }]
    );
    let host = h.gpu.resource_image(1).unwrap();
    for y in 0..hgt {
        for x in 0..w {
            let inside = (10..30).contains(&x) && (7..12).contains(&y);
            let want = if inside { px(1, x, y) } else { UNDEFINED_PIXEL };
            assert_eq!(host.pixel(x, y), Some(want), "host ({x},{y})");
        }
    }
}

#[test]
fn offset_is_where_the_first_row_is_read_whatever_the_rect_position() {
    // QEMU reads row h of the rectangle at `offset + h * stride`, independent of r.x/r.y:
    // a rectangle at (5, 2) fed from offset 0 gets the backing's top-left pixels.
    let mut h = Harness::default();
    let (w, hgt) = (32, 32);
    let fb = h.framebuffer(0, 1, w, hgt);
    paint(&h, fb, w, hgt, w * 4, |x, y| px(2, x, y));
    h.transfer(1, Rect::new(5, 2, 3, 2), 0);
    let host = h.gpu.resource_image(1).unwrap();
    assert_eq!(host.pixel(5, 2), Some(px(2, 0, 0)));
    assert_eq!(host.pixel(7, 2), Some(px(2, 2, 0)));
    assert_eq!(host.pixel(5, 3), Some(px(2, 0, 1)));
    assert_eq!(host.pixel(7, 3), Some(px(2, 2, 1)));
    assert_eq!(host.pixel(8, 2), Some(UNDEFINED_PIXEL));
}

#[test]
fn full_width_transfer_is_one_contiguous_copy_from_the_offset() {
    let mut h = Harness::default();
    let (w, hgt) = (16, 16);
    let fb = h.framebuffer(0, 1, w, hgt);
    paint(&h, fb, w, hgt, w * 4, |x, y| px(3, x, y));
    // Rows 4..7 from the backing's rows 4..7.
    h.transfer(1, Rect::new(0, 4, w, 3), u64::from(4 * w * 4));
    let host = h.gpu.resource_image(1).unwrap();
    assert_eq!(host.pixel(0, 3), Some(UNDEFINED_PIXEL));
    assert_eq!(host.pixel(0, 4), Some(px(3, 0, 4)));
    assert_eq!(host.pixel(15, 6), Some(px(3, 15, 6)));
    assert_eq!(host.pixel(0, 7), Some(UNDEFINED_PIXEL));
}

#[test]
fn transfer_reads_scattered_backing_pages_in_entry_order() {
    let mut h = Harness::default();
    let (w, hgt) = (32, 32); // 4 KiB; one row is 128 bytes
    h.create(1, w, hgt);
    // Four pieces at scattered addresses, attached out of address order, with lengths
    // that put entry boundaries in the middle of rows and of pixels.
    let pieces: Vec<u64> = (0..4).map(|_| h.alloc(4096)).collect();
    let order = [2usize, 0, 3, 1];
    let lengths = [950u32, 1098, 999, 1049];
    let entries: Vec<_> = order
        .iter()
        .zip(lengths)
        .map(|(&i, len)| MemEntry::new(pieces[i], len))
        .collect();
    assert_eq!(h.attach(1, &entries), ResponseType::OK_NODATA);
    // The backing's bytes, linear, scattered over the entries.
    let linear: Vec<u8> = (0..hgt)
        .flat_map(|y| (0..w).flat_map(move |x| px(4, x, y).to_le_bytes()))
        .collect();
    let mut at = 0usize;
    for entry in &entries {
        let len = entry.length as usize;
        h.write(entry.addr, &linear[at..at + len]);
        at += len;
    }
    let r = Rect::new(3, 6, 20, 5);
    h.transfer(1, r, u64::from(6 * w * 4 + 3 * 4));
    let host = h.gpu.resource_image(1).unwrap();
    for y in 0..hgt {
        for x in 0..w {
            let inside = (3..23).contains(&x) && (6..11).contains(&y);
            let want = if inside { px(4, x, y) } else { UNDEFINED_PIXEL };
            assert_eq!(host.pixel(x, y), Some(want), "({x},{y})");
        }
    }
}

#[test]
fn transfer_past_the_end_of_the_backing_copies_what_exists() {
    let mut h = Harness::default();
    h.create(1, 16, 16);
    let backing = h.attach_new(1, 16 * 4 * 2); // two rows only
    paint(&h, backing, 16, 2, 64, |x, y| px(5, x, y));
    h.transfer(1, Rect::new(0, 0, 16, 16), 0);
    let host = h.gpu.resource_image(1).unwrap();
    assert_eq!(host.pixel(15, 1), Some(px(5, 15, 1)));
    assert_eq!(
        host.pixel(0, 2),
        Some(UNDEFINED_PIXEL),
        "beyond the backing stays as it was"
    );
}

#[test]
fn scanout_shows_transferred_pixels_only_after_flush() {
    let mut h = Harness::default();
    let (w, hgt) = (64, 32);
    let fb = h.framebuffer(0, 1, w, hgt);
    paint(&h, fb, w, hgt, w * 4, |x, y| px(6, x, y));
    h.transfer(1, Rect::new(0, 0, w, hgt), 0);
    assert_eq!(
        h.gpu.pixel(0, 5, 5),
        Some(UNDEFINED_PIXEL),
        "not flushed yet"
    );
    // Flush only the top-left quarter.
    let q = Rect::new(0, 0, 32, 16);
    assert_eq!(
        h.command(&ResourceFlush::new(1, q)),
        ResponseType::OK_NODATA
    );
    assert_eq!(h.gpu.pixel(0, 5, 5), Some(px(6, 5, 5)));
    assert_eq!(h.gpu.pixel(0, 31, 15), Some(px(6, 31, 15)));
    assert_eq!(h.gpu.pixel(0, 32, 15), Some(UNDEFINED_PIXEL));
    assert_eq!(h.gpu.pixel(0, 31, 16), Some(UNDEFINED_PIXEL));
    assert_eq!(h.gpu.pixel(0, 64, 0), None);
    // The whole picture after a full flush.
    assert_eq!(
        h.command(&ResourceFlush::new(1, Rect::new(0, 0, w, hgt))),
        ResponseType::OK_NODATA
    );
    let img = h.gpu.scanout_image(0).unwrap();
    assert_eq!(
        (img.width, img.height, img.format),
        (w, hgt, Format::B8G8R8X8_UNORM)
    );
    let want: Vec<u32> = (0..hgt)
        .flat_map(|y| (0..w).map(move |x| px(6, x, y)))
        .collect();
    assert_eq!(img.pixels, want);
}

#[test]
fn scanout_of_a_sub_rect_is_clipped_and_flush_translates() {
    let mut h = Harness::new(GpuConfig {
        num_scanouts: 2,
        ..GpuConfig::default()
    });
    let (w, hgt) = (64, 64);
    h.create(1, w, hgt);
    let fb = h.attach_new(1, u64::from(w * hgt * 4));
    paint(&h, fb, w, hgt, w * 4, |x, y| px(7, x, y));
    h.transfer(1, Rect::new(0, 0, w, hgt), 0);
    // Two scanouts show the left and right halves of one resource.
    let left = Rect::new(0, 0, 32, 64);
    let right = Rect::new(32, 0, 32, 64);
    assert_eq!(
        h.command(&SetScanout::new(0, 1, left)),
        ResponseType::OK_NODATA
    );
    assert_eq!(
        h.command(&SetScanout::new(1, 1, right)),
        ResponseType::OK_NODATA
    );
    // SET_SCANOUT shows the current host image at once.
    assert_eq!(h.gpu.pixel(1, 0, 0), Some(px(7, 32, 0)));
    // New content, flushed across the seam.
    paint(&h, fb, w, hgt, w * 4, |x, y| px(8, x, y));
    h.transfer(1, Rect::new(0, 0, w, hgt), 0);
    let seam = Rect::new(30, 10, 4, 2);
    assert_eq!(
        h.command(&ResourceFlush::new(1, seam)),
        ResponseType::OK_NODATA
    );
    assert_eq!(h.gpu.pixel(0, 31, 10), Some(px(8, 31, 10)));
    assert_eq!(h.gpu.pixel(0, 29, 10), Some(px(7, 29, 10)));
    assert_eq!(h.gpu.pixel(1, 1, 11), Some(px(8, 33, 11)));
    assert_eq!(h.gpu.pixel(1, 2, 11), Some(px(7, 34, 11)));
    assert_eq!(h.gpu.pixel(1, 1, 12), Some(px(7, 33, 12)));
    let img = h.gpu.scanout_image(1).unwrap();
    assert_eq!((img.width, img.height), (32, 64));
}

#[test]
fn image_rgb_decodes_the_format() {
    let img = Image {
        width: 1,
        height: 1,
        format: Format::B8G8R8X8_UNORM,
        pixels: vec![0x00_11_22_33],
    };
    assert_eq!(img.rgb(0, 0), Some([0x11, 0x22, 0x33]));
    let img = Image {
        format: Format::R8G8B8A8_UNORM,
        ..img
    };
    assert_eq!(img.rgb(0, 0), Some([0x33, 0x22, 0x11]));
    assert_eq!(img.rgb(1, 0), None);
}

#[test]
fn cursor_update_copies_the_host_image_and_move_keeps_it() {
    let mut h = Harness::new(GpuConfig {
        num_scanouts: 2,
        ..GpuConfig::default()
    });
    let side = CURSOR_SIZE;
    h.create(9, side, side);
    let backing = h.attach_new(9, u64::from(side * side * 4));
    paint(&h, backing, side, side, side * 4, |x, y| px(9, x, y));
    // Before the transfer the host image is still undefined: the cursor takes the host copy.
    h.cursor_command(&UpdateCursor::update(1, 100, 200, 9, 3, 4));
    let c = h.gpu.cursor(1).unwrap();
    assert_eq!(
        (c.x, c.y, c.hot_x, c.hot_y, c.resource_id, c.visible),
        (100, 200, 3, 4, 9, true)
    );
    assert!(c
        .image
        .as_ref()
        .unwrap()
        .iter()
        .all(|&p| p == UNDEFINED_PIXEL));

    h.transfer(9, Rect::new(0, 0, side, side), 0);
    h.cursor_command(&UpdateCursor::update(1, 100, 200, 9, 3, 4));
    let image = h.gpu.cursor(1).unwrap().image.clone().unwrap();
    assert_eq!(image[0], px(9, 0, 0));
    assert_eq!(image[(63 * 64 + 5) as usize], px(9, 5, 63));

    // A move with the resource id keeps the image and the cursor visible.
    let mut mv = UpdateCursor::move_to(1, 150, 250);
    mv.resource_id = 9;
    h.cursor_command(&mv);
    let c = h.gpu.cursor(1).unwrap();
    assert_eq!(
        (c.x, c.y, c.visible, c.updates, c.moves),
        (150, 250, true, 2, 1)
    );
    assert_eq!(c.image.as_ref().unwrap(), &image);
    // QEMU: a move whose resource id is 0 hides the cursor.
    h.cursor_command(&UpdateCursor::move_to(1, 160, 260));
    assert!(!h.gpu.cursor(1).unwrap().visible);
    assert_eq!(
        h.gpu.cursor(0).unwrap(),
        &crate::gpu::CursorState::default()
    );
    assert_eq!(h.gpu.count(CommandType::UPDATE_CURSOR), 2);
    assert_eq!(h.gpu.count(CommandType::MOVE_CURSOR), 2);
}

#[test]
fn cursor_rejects_wrong_sizes_hides_on_zero_and_ignores_bad_scanouts() {
    let mut h = Harness::default();
    h.create(9, 64, 64);
    let backing = h.attach_new(9, 64 * 64 * 4);
    paint(&h, backing, 64, 64, 256, |x, y| px(1, x, y));
    h.transfer(9, Rect::new(0, 0, 64, 64), 0);
    h.cursor_command(&UpdateCursor::update(0, 1, 2, 9, 0, 0));
    let good = h.gpu.cursor(0).unwrap().image.clone().unwrap();
    h.create(10, 32, 32);
    h.cursor_command(&UpdateCursor::update(0, 5, 6, 10, 7, 8));
    let c = h.gpu.cursor(0).unwrap();
    assert_eq!(
        c.image.as_ref().unwrap(),
        &good,
        "a 32x32 resource leaves the image"
    );
    assert_eq!(
        (c.rejected_images, c.hot_x, c.hot_y, c.visible),
        (1, 7, 8, true)
    );
    h.cursor_command(&UpdateCursor::update(0, 5, 6, 77, 0, 0));
    assert_eq!(
        h.gpu.cursor(0).unwrap().rejected_images,
        2,
        "missing resource"
    );
    h.cursor_command(&UpdateCursor::update(0, 5, 6, 0, 0, 0));
    let c = h.gpu.cursor(0).unwrap();
    assert_eq!((c.visible, c.resource_id), (false, 0));
    assert_eq!(c.rejected_images, 2, "resource 0 is not a rejection");
    // Out-of-range scanout: ignored, still completed.
    h.cursor_command(&UpdateCursor::update(5, 1, 1, 9, 0, 0));
    assert_eq!(h.gpu.cursor(5), None);
    // Short cursor request: completed, no effect.
    let sub = h.submit(CURSOR_QUEUE, &[Seg::Out(vec![0; 30])], false);
    assert!(h.process(CURSOR_QUEUE));
    assert_eq!(
        h.take_used(CURSOR_QUEUE),
        vec![Used {
            id: u32::from(sub.head),
            len: 0
        }]
    );
    assert_eq!(h.gpu.cursor(0).unwrap().updates, 4);
}
