//! The hardware pointer: monochrome, colour and masked-colour shapes reach the device's cursor
//! as 64x64 images with the right pixels, hot spot and position; hiding hides it.
#![allow(clippy::unwrap_used)]

mod sim_support;

use dxgkrnl_sim::PointerShape;
use sim_support::Rig;
use viogpu_common::protocol::CommandType;

const CURSOR: u32 = 64;

fn cursor_pixel(rig: &Rig, x: u32, y: u32) -> u32 {
    let gpu = rig.gpu();
    let image = gpu.cursor(0).unwrap().image.as_ref().unwrap();
    image[(y * CURSOR + x) as usize]
}

#[test]
fn a_color_pointer_is_shown_with_its_alpha_hot_spot_and_position() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    // 32x32: opaque red top half, transparent bottom half.
    let mut bgra = Vec::new();
    for y in 0..32u32 {
        for _ in 0..32 {
            bgra.extend_from_slice(if y < 16 {
                &[0, 0, 0xFF, 0xFF]
            } else {
                &[0, 0, 0, 0]
            });
        }
    }
    rig.sim
        .set_pointer_shape(0, &PointerShape::color(32, 32, &bgra, (3, 4)))
        .unwrap();
    rig.sim.set_pointer_position(0, 100, 50, true).unwrap();
    {
        let gpu = rig.gpu();
        let c = gpu.cursor(0).unwrap();
        assert!(c.visible);
        assert_eq!((c.x, c.y, c.hot_x, c.hot_y), (100, 50, 3, 4));
    }
    assert_eq!(cursor_pixel(&rig, 0, 0), 0xFFFF_0000);
    assert_eq!(cursor_pixel(&rig, 31, 15), 0xFFFF_0000);
    assert_eq!(cursor_pixel(&rig, 0, 16) >> 24, 0, "transparent");
    assert_eq!(cursor_pixel(&rig, 40, 0) >> 24, 0, "outside the shape");
    rig.sim.set_pointer_position(0, 100, 50, false).unwrap();
    assert!(!rig.gpu().cursor(0).unwrap().visible);
    rig.assert_clean();
}

#[test]
fn a_monochrome_pointer_maps_and_xor_masks_to_colours() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    // 16x2: row 0 AND=0 XOR=1 (white), row 1 AND=1 XOR=0 (transparent); columns 8..16 of row
    // 0 AND=0 XOR=0 (black).
    let and = [0x00, 0x00, 0xFF, 0xFF];
    let xor = [0xFF, 0x00, 0x00, 0x00];
    rig.sim
        .set_pointer_shape(0, &PointerShape::monochrome(16, 2, &and, &xor, (0, 0)))
        .unwrap();
    rig.sim.set_pointer_position(0, 0, 0, true).unwrap();
    assert_eq!(cursor_pixel(&rig, 0, 0), 0xFFFF_FFFF, "white");
    assert_eq!(cursor_pixel(&rig, 8, 0), 0xFF00_0000, "black");
    assert_eq!(cursor_pixel(&rig, 0, 1) >> 24, 0, "transparent");
    rig.assert_clean();
}

#[test]
fn a_masked_color_pointer_replaces_where_the_mask_is_clear() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    // 8x1: pixel 0 replaces with green (mask 0x00), pixel 1 XORs black (mask 0xFF: no change).
    let mut bgra = vec![0u8; 8 * 4];
    bgra[0..4].copy_from_slice(&[0, 0xFF, 0, 0x00]);
    bgra[4..8].copy_from_slice(&[0, 0, 0, 0xFF]);
    rig.sim
        .set_pointer_shape(0, &PointerShape::masked_color(8, 1, &bgra, (1, 0)))
        .unwrap();
    rig.sim.set_pointer_position(0, 10, 10, true).unwrap();
    assert_eq!(cursor_pixel(&rig, 0, 0), 0xFF00_FF00, "opaque green");
    assert_eq!(
        cursor_pixel(&rig, 1, 0) >> 24,
        0,
        "XOR with black leaves the screen"
    );
    rig.assert_clean();
}

#[test]
fn on_a_rotated_path_the_hot_spot_lands_on_its_rotated_desktop_point() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    // A 480x640 desktop shown turned by 90 degrees on a 640x480 scan-out: desktop (x, y)
    // is screen (y, 479 - x) (see sim_support::rotate_point).
    rig.sim
        .set_mode_rotated(0, 480, 640, viogpudo::ddi::D3DKMDT_VPPR_ROTATE90)
        .unwrap();
    let bgra = [0xFFu8; 32 * 32 * 4];
    rig.sim
        .set_pointer_shape(0, &PointerShape::color(32, 32, &bgra, (3, 4)))
        .unwrap();
    rig.sim.set_pointer_position(0, 100, 50, true).unwrap();
    // The hot spot is at desktop (103, 54), which the rotation puts at screen (54, 376); the
    // unrotated image starts (3, 4) before it, and the host adds the hot spot back.
    let gpu = rig.gpu();
    let c = gpu.cursor(0).unwrap();
    assert!(c.visible);
    assert_eq!((c.x, c.y, c.hot_x, c.hot_y), (51, 372, 3, 4));
    drop(gpu);
    rig.assert_clean();
}

#[test]
fn moving_the_pointer_on_a_source_without_a_mode_changes_nothing() {
    let mut rig = Rig::load(&[(1024, 768), (800, 600)]);
    // Nothing connected to scanout 1: its source has no path and no mode.
    assert!(rig.gpu().set_display(1, 800, 600, false));
    rig.sim.boot().unwrap();
    assert_eq!(rig.gpu().scanout_resource(1), None);
    let bgra = [0xFFu8; 32 * 32 * 4];
    rig.sim
        .set_pointer_shape(0, &PointerShape::color(32, 32, &bgra, (3, 4)))
        .unwrap();
    rig.sim.set_pointer_position(0, 10, 20, true).unwrap();
    let cursors = |rig: &Rig| {
        let gpu = rig.gpu();
        (
            gpu.cursor(0).unwrap().clone(),
            gpu.cursor(1).unwrap().clone(),
        )
    };
    let counts = |rig: &Rig| {
        let gpu = rig.gpu();
        (
            gpu.count(CommandType::UPDATE_CURSOR),
            gpu.count(CommandType::MOVE_CURSOR),
        )
    };
    let (before, counts_before) = (cursors(&rig), counts(&rig));
    // DxgkDdiSetPointerPosition on a disabled path: success, no driver or hardware change.
    rig.sim.set_pointer_position(1, 50, 60, true).unwrap();
    rig.sim.set_pointer_position(1, 70, 80, false).unwrap();
    assert_eq!(counts(&rig), counts_before, "no cursor command sent");
    assert_eq!(cursors(&rig), before);
    // The driver still places the pointer where the OS last put it on source 0: a new
    // shape is shown there, visible.
    rig.sim
        .set_pointer_shape(0, &PointerShape::color(32, 32, &bgra, (3, 4)))
        .unwrap();
    let c = rig.gpu().cursor(0).unwrap().clone();
    assert!(c.visible);
    assert_eq!((c.x, c.y), (10, 20));
    assert_eq!(rig.gpu().cursor(1).unwrap().updates, 0);
    rig.assert_clean();
}

#[test]
fn a_pointer_that_goes_to_another_source_is_defined_there_and_hidden_where_it_was() {
    // The host keeps a cursor per scanout (QEMU moves only `scanout[id]`'s cursor on
    // MOVE_CURSOR): the image must be defined on the scanout the pointer enters.
    let mut rig = Rig::booted(&[(1024, 768), (800, 600)]);
    let bgra = [0xFFu8; 32 * 32 * 4];
    rig.sim
        .set_pointer_shape(0, &PointerShape::color(32, 32, &bgra, (3, 4)))
        .unwrap();
    rig.sim.set_pointer_position(0, 100, 50, true).unwrap();
    rig.sim.set_pointer_position(1, 10, 20, true).unwrap();
    rig.sim.set_pointer_position(1, 30, 40, true).unwrap();
    {
        let gpu = rig.gpu();
        let (on0, on1) = (gpu.cursor(0).unwrap(), gpu.cursor(1).unwrap());
        assert!(
            !on0.visible,
            "left behind on scanout 0 at ({}, {})",
            on0.x, on0.y
        );
        assert!(on1.visible);
        assert_eq!((on1.x, on1.y, on1.hot_x, on1.hot_y), (30, 40, 3, 4));
        assert_eq!((on1.updates, on1.moves, on1.rejected_images), (1, 1, 0));
        let image = on1.image.as_ref().unwrap();
        assert_eq!(image[0], 0xFFFF_FFFF, "the shape's pixels on scanout 1");
    }
    // Hiding the pointer of the source it left changes nothing; hiding it where it is does.
    rig.sim.set_pointer_position(0, 0, 0, false).unwrap();
    assert!(rig.gpu().cursor(1).unwrap().visible);
    rig.sim.set_pointer_position(1, 30, 40, false).unwrap();
    assert!(!rig.gpu().cursor(1).unwrap().visible);
    rig.assert_clean();
}
