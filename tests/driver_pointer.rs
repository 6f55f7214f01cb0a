//! The hardware pointer: monochrome, colour and masked-colour shapes reach the device's cursor
//! as 64x64 images with the right pixels, hot spot and position; hiding hides it.
#![allow(clippy::unwrap_used)]

mod sim_support;

use dxgkrnl_sim::PointerShape;
use sim_support::{rotate_point, Rig};
use viogpu_common::protocol::CommandType;
use viogpudo::ddi::*;

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
        .set_mode_rotated(0, 480, 640, D3DKMDT_VPPR_ROTATE90)
        .unwrap();
    let bgra = [0xFFu8; 32 * 32 * 4];
    rig.sim
        .set_pointer_shape(0, &PointerShape::color(32, 32, &bgra, (3, 4)))
        .unwrap();
    rig.sim.set_pointer_position(0, 100, 50, true).unwrap();
    // The hot spot is at desktop (103, 54), which the rotation puts at screen (54, 376). The
    // image is turned too, which takes the hot spot (3, 4) of the 32x32 shape to (4, 28); the
    // image starts that far before the screen point, and the host adds the hot spot back.
    let gpu = rig.gpu();
    let c = gpu.cursor(0).unwrap();
    assert!(c.visible);
    assert_eq!((c.x, c.y, c.hot_x, c.hot_y), (50, 348, 4, 28));
    assert_eq!((c.x + c.hot_x, c.y + c.hot_y), (54, 376));
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

/// Width and height of the asymmetric test pointer.
const SHAPE: (u32, u32) = (5, 3);
/// Its hot spot: the right end of the middle row.
const SHAPE_HOT: (u32, u32) = (4, 1);

/// Opaque, distinct colour of pointer pixel `(x, y)` as the device model reads it (ARGB).
fn shape_colour(x: u32, y: u32) -> u32 {
    0xFF00_0080 | ((x + 1) << 16) | ((y + 1) << 8)
}

/// The 5x3 colour pointer whose fifteen pixels all differ, hot spot [`SHAPE_HOT`].
fn asymmetric_pointer() -> PointerShape {
    let mut bgra = Vec::new();
    for y in 0..SHAPE.1 {
        for x in 0..SHAPE.0 {
            bgra.extend_from_slice(&shape_colour(x, y).to_le_bytes());
        }
    }
    PointerShape::color(SHAPE.0, SHAPE.1, &bgra, SHAPE_HOT)
}

/// Checks that the pointer on `scanout`, put by the OS at `os` on a `desktop`-sized source
/// shown with `rotation`, looks on the screen exactly like the desktop pointer turned:
/// every pointer pixel, and so its hot spot, is where the rotation puts that desktop pixel,
/// and nothing else of the image is drawn.
fn assert_pointer_turned_with_the_desktop(
    rig: &Rig,
    scanout: u32,
    rotation: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION,
    desktop: (u32, u32),
    os: (u32, u32),
) {
    let gpu = rig.gpu();
    let c = gpu.cursor(scanout).unwrap();
    assert!(c.visible);
    let image = c.image.as_ref().unwrap();
    // The hot spot is where the host puts the pointer: the hot spot's desktop point turned.
    let hot_on_desktop = (os.0 + SHAPE_HOT.0, os.1 + SHAPE_HOT.1);
    assert_eq!(
        (c.x + c.hot_x, c.y + c.hot_y),
        rotate_point(
            rotation,
            desktop.0,
            desktop.1,
            hot_on_desktop.0,
            hot_on_desktop.1
        ),
        "hot spot on screen"
    );
    let mut drawn = 0;
    for y in 0..SHAPE.1 {
        for x in 0..SHAPE.0 {
            let (sx, sy) = rotate_point(rotation, desktop.0, desktop.1, os.0 + x, os.1 + y);
            let (ix, iy) = (sx - c.x, sy - c.y);
            assert!(ix < CURSOR && iy < CURSOR, "pixel ({x}, {y}) off the image");
            assert_eq!(
                image[(iy * CURSOR + ix) as usize],
                shape_colour(x, y),
                "pointer pixel ({x}, {y}) at image ({ix}, {iy})"
            );
            drawn += 1;
        }
    }
    let opaque = image.iter().filter(|&&p| p >> 24 != 0).count();
    assert_eq!(opaque, drawn, "only the pointer's pixels are drawn");
    // The image hot spot is the pointer's hot-spot pixel.
    assert_eq!(
        image[(c.hot_y * CURSOR + c.hot_x) as usize],
        shape_colour(SHAPE_HOT.0, SHAPE_HOT.1)
    );
}

#[test]
fn on_every_rotation_the_pointer_image_turns_with_the_desktop() {
    for (rotation, desktop) in [
        (D3DKMDT_VPPR_IDENTITY, (640, 480)),
        (D3DKMDT_VPPR_ROTATE90, (480, 640)),
        (D3DKMDT_VPPR_ROTATE180, (640, 480)),
        (D3DKMDT_VPPR_ROTATE270, (480, 640)),
    ] {
        let mut rig = Rig::booted(&[(1024, 768)]);
        rig.sim
            .set_mode_rotated(0, desktop.0, desktop.1, rotation)
            .unwrap();
        rig.sim.set_pointer_shape(0, &asymmetric_pointer()).unwrap();
        rig.sim.set_pointer_position(0, 100, 50, true).unwrap();
        assert_pointer_turned_with_the_desktop(&rig, 0, rotation, desktop, (100, 50));
        // A move keeps the hot spot on its turned desktop point.
        rig.sim.set_pointer_position(0, 300, 7, true).unwrap();
        assert_pointer_turned_with_the_desktop(&rig, 0, rotation, desktop, (300, 7));
        rig.assert_clean();
    }
}

#[test]
fn on_a_90_degree_path_the_image_and_hot_spot_are_turned_exactly() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    rig.sim
        .set_mode_rotated(0, 480, 640, D3DKMDT_VPPR_ROTATE90)
        .unwrap();
    rig.sim.set_pointer_shape(0, &asymmetric_pointer()).unwrap();
    rig.sim.set_pointer_position(0, 100, 50, true).unwrap();
    let gpu = rig.gpu();
    let c = gpu.cursor(0).unwrap();
    // Shape (x, y) -> image (y, 4 - x): the top row is the left column read upwards, the
    // 5x3 shape a 3x5 image, and the hot spot (4, 1) is (1, 0).
    let image = c.image.as_ref().unwrap();
    let px = |x: u32, y: u32| image[(y * CURSOR + x) as usize];
    assert_eq!(px(0, 0), shape_colour(4, 0));
    assert_eq!(px(2, 0), shape_colour(4, 2));
    assert_eq!(px(0, 4), shape_colour(0, 0));
    assert_eq!(px(2, 4), shape_colour(0, 2));
    assert_eq!(px(3, 0) >> 24, 0, "the turned shape is 3 wide");
    assert_eq!(px(0, 5) >> 24, 0, "the turned shape is 5 high");
    assert_eq!((c.hot_x, c.hot_y), (1, 0));
    // Desktop hot spot (104, 51) is screen (51, 375) on the 640x480 scan-out.
    assert_eq!((c.x, c.y), (50, 375));
    drop(gpu);
    rig.assert_clean();
}

#[test]
fn a_shown_pointer_is_turned_again_when_its_path_is_rotated() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    rig.sim.set_mode(0, 640, 480).unwrap();
    rig.sim.set_pointer_shape(0, &asymmetric_pointer()).unwrap();
    rig.sim.set_pointer_position(0, 100, 50, true).unwrap();
    assert_pointer_turned_with_the_desktop(&rig, 0, D3DKMDT_VPPR_IDENTITY, (640, 480), (100, 50));
    let shapes = rig.gpu().count(CommandType::UPDATE_CURSOR);
    // The commit turns the path; the OS sends no new shape: the driver re-sends its own.
    rig.sim
        .set_mode_rotated(0, 480, 640, D3DKMDT_VPPR_ROTATE90)
        .unwrap();
    assert_eq!(rig.gpu().count(CommandType::UPDATE_CURSOR), shapes + 1);
    assert_pointer_turned_with_the_desktop(&rig, 0, D3DKMDT_VPPR_ROTATE90, (480, 640), (100, 50));
    rig.sim
        .set_mode_rotated(0, 480, 640, D3DKMDT_VPPR_ROTATE270)
        .unwrap();
    assert_pointer_turned_with_the_desktop(&rig, 0, D3DKMDT_VPPR_ROTATE270, (480, 640), (100, 50));
    // Back to identity: the original image again.
    rig.sim.set_mode(0, 640, 480).unwrap();
    assert_pointer_turned_with_the_desktop(&rig, 0, D3DKMDT_VPPR_IDENTITY, (640, 480), (100, 50));
    let c = rig.gpu().cursor(0).unwrap().clone();
    assert_eq!((c.x, c.y, c.hot_x, c.hot_y), (100, 50, 4, 1));
    // A commit that does not turn the path leaves the pointer alone.
    let shapes = rig.gpu().count(CommandType::UPDATE_CURSOR);
    rig.sim.set_mode(0, 800, 600).unwrap();
    assert_eq!(rig.gpu().count(CommandType::UPDATE_CURSOR), shapes);
    rig.assert_clean();
}

#[test]
fn a_pointer_going_to_a_source_with_another_rotation_is_turned_for_it() {
    let mut rig = Rig::booted(&[(1024, 768), (800, 600)]);
    rig.sim
        .set_mode_rotated(1, 600, 800, D3DKMDT_VPPR_ROTATE90)
        .unwrap();
    rig.sim.set_pointer_shape(0, &asymmetric_pointer()).unwrap();
    rig.sim.set_pointer_position(0, 100, 50, true).unwrap();
    assert_pointer_turned_with_the_desktop(&rig, 0, D3DKMDT_VPPR_IDENTITY, (1024, 768), (100, 50));
    rig.sim.set_pointer_position(1, 20, 30, true).unwrap();
    assert_pointer_turned_with_the_desktop(&rig, 1, D3DKMDT_VPPR_ROTATE90, (600, 800), (20, 30));
    rig.sim.set_pointer_position(1, 40, 60, true).unwrap();
    assert_pointer_turned_with_the_desktop(&rig, 1, D3DKMDT_VPPR_ROTATE90, (600, 800), (40, 60));
    // And back: unturned on the identity source.
    rig.sim.set_pointer_position(0, 10, 10, true).unwrap();
    assert!(!rig.gpu().cursor(1).unwrap().visible);
    assert_pointer_turned_with_the_desktop(&rig, 0, D3DKMDT_VPPR_IDENTITY, (1024, 768), (10, 10));
    rig.assert_clean();
}

/// A two-scanout rig with a visible pointer on source 0, its device holding back cursor-queue
/// completions (so the queue fills up).
fn pointer_rig_holding_completions() -> Rig {
    let mut rig = Rig::booted(&[(1024, 768), (800, 600)]);
    let shape = PointerShape::color(32, 32, &[0xFF; 32 * 32 * 4], (0, 0));
    rig.sim.set_pointer_shape(0, &shape).unwrap();
    rig.sim.set_pointer_position(0, 10, 10, true).unwrap();
    assert!(rig.gpu().cursor(0).unwrap().visible);
    rig.gpu().hold_completions(true);
    rig
}

/// The device answers everything it held back.
fn release_cursor_queue(rig: &Rig) {
    rig.gpu().hold_completions(false);
    rig.sim.machine().device().service_queue(1, |_, q, mem| {
        rig.gpu().complete_held(1, q, mem);
    });
    rig.sim.interrupt();
}

#[test]
fn after_a_failed_move_to_another_source_the_pointer_is_defined_there_not_just_moved() {
    // How many cursor requests fit while the device does not answer.
    let mut probe = pointer_rig_holding_completions();
    let mut room = 0;
    while probe.sim.set_pointer_position(0, 11, 11, true).is_ok() {
        room += 1;
        assert!(room < 10_000);
    }
    // The move to source 1 hides the pointer on scanout 0 (the last free slot), then its
    // UPDATE_CURSOR on scanout 1 finds the queue full: the call fails.
    let mut rig = pointer_rig_holding_completions();
    for _ in 0..room - 1 {
        rig.sim.set_pointer_position(0, 11, 11, true).unwrap();
    }
    assert!(rig.sim.set_pointer_position(1, 20, 20, true).is_err());
    release_cursor_queue(&rig);
    assert!(!rig.gpu().cursor(0).unwrap().visible);
    // The next moves define the pointer on scanout 1 with UPDATE_CURSOR, then move it there.
    rig.sim.set_pointer_position(1, 30, 30, true).unwrap();
    rig.sim.set_pointer_position(1, 40, 40, true).unwrap();
    let gpu = rig.gpu();
    let on_1 = gpu.cursor(1).unwrap();
    assert!(on_1.visible);
    assert!(on_1.image.is_some(), "moved where it was never defined");
    assert_eq!(on_1.updates, 1);
    assert_eq!(on_1.moves, 1);
    assert_eq!((on_1.x, on_1.y), (40, 40));
    drop(gpu);
    rig.assert_clean();
}
