//! The core's hardware cursor (`viogpu_common::hardware_cursor`) against the device model:
//! its resource, shapes, moves across scanouts, rotation, hiding, and the trip through a
//! device reset, asserted on what the host shows.
#![allow(clippy::unwrap_used)]

use viogpu_common::blit::Rotation;
use viogpu_common::cursor::{PointerKind, PointerShape, CURSOR_SIZE};
use viogpu_common::hardware_cursor::{device_position, HardwareCursor, Placement};
use viogpu_common::protocol::{CommandType, ResponseType};
use viogpu_common::resource_id::ResourceIdAllocator;
use viogpu_common::Error;
use virtio_gpu_model::testbed::Testbed;
use virtio_gpu_model::{CursorState, GpuConfig, GuestMemoryHal};

struct Rig {
    bed: Testbed,
    ids: ResourceIdAllocator,
    cursor: HardwareCursor<GuestMemoryHal>,
}

fn rig() -> Rig {
    let bed = Testbed::with_config(GpuConfig {
        num_scanouts: 2,
        ..GpuConfig::default()
    });
    let cursor = HardwareCursor::new(&bed.hal).unwrap();
    let mut rig = Rig {
        bed,
        ids: ResourceIdAllocator::new(64),
        cursor,
    };
    rig.cursor.create(&rig.bed.gpu, &mut rig.ids).unwrap();
    rig
}

/// A 16x16 opaque colour arrow-ish shape: pixel (x, y) is red where x >= y, else clear.
fn shape_pixels() -> Vec<u8> {
    let mut px = vec![0u8; 16 * 16 * 4];
    for y in 0..16 {
        for x in y..16 {
            let at = (y * 16 + x) * 4;
            px[at..at + 4].copy_from_slice(&[0, 0, 0xFF, 0xFF]);
        }
    }
    px
}

fn shape(pixels: &[u8]) -> PointerShape<'_> {
    PointerShape {
        kind: PointerKind::Color,
        width: 16,
        height: 16,
        pitch: 64,
        hot_x: 2,
        hot_y: 1,
        pixels,
    }
}

fn at(source: u32, x: i32, y: i32) -> Placement {
    Placement {
        source,
        x,
        y,
        rotation: Rotation::Identity,
        desktop: (800, 600),
    }
}

/// A rig whose pointer has the test shape and is shown on source 0 at `(x, y)`.
fn shown_at(x: i32, y: i32) -> Rig {
    let mut rig = rig();
    let px = shape_pixels();
    rig.cursor
        .set_shape(&rig.bed.gpu, &shape(&px), at(0, 0, 0))
        .unwrap();
    rig.cursor
        .set_position(&rig.bed.gpu, at(0, x, y), true)
        .unwrap();
    rig
}

impl Rig {
    fn host_cursor(&self, scanout: u32) -> Option<CursorState> {
        self.bed.backend.lock().cursor(scanout).cloned()
    }
}

#[test]
fn create_makes_one_64x64_resource_over_the_buffer() {
    let rig = rig();
    let id = rig.cursor.resource_id();
    assert_ne!(id, 0);
    let res = rig.bed.backend.lock().resource(id).unwrap();
    assert_eq!((res.width, res.height), (CURSOR_SIZE, CURSOR_SIZE));
    assert_eq!(res.backing_entries, 1);
}

#[test]
fn a_shape_is_shown_once_the_pointer_is_visible_and_moves_with_move_cursor() {
    let mut rig = rig();
    let px = shape_pixels();
    rig.cursor
        .set_shape(&rig.bed.gpu, &shape(&px), at(0, 0, 0))
        .unwrap();
    let host = rig.host_cursor(0).unwrap();
    assert!(!host.visible, "defined hidden until the OS shows it");
    rig.cursor
        .set_position(&rig.bed.gpu, at(0, 100, 50), true)
        .unwrap();
    let host = rig.host_cursor(0).unwrap();
    assert!(host.visible);
    assert_eq!((host.x, host.y, host.hot_x, host.hot_y), (100, 50, 2, 1));
    let image = host.image.unwrap();
    // Straight-alpha B8G8R8A8 red where x >= y, transparent elsewhere.
    assert_eq!(image[3], 0xFFFF_0000, "(3, 0) red");
    assert_eq!(image[64 * 5 + 1], 0, "(1, 5) transparent");
    let updates = host.updates;
    rig.cursor
        .set_position(&rig.bed.gpu, at(0, 120, 60), true)
        .unwrap();
    let host = rig.host_cursor(0).unwrap();
    assert_eq!((host.x, host.y), (120, 60));
    assert_eq!(
        (host.updates, host.moves),
        (updates, 1),
        "a move, not a redefinition"
    );
}

#[test]
fn a_pointer_changing_scanout_is_hidden_where_it_was_and_defined_where_it_goes() {
    let mut rig = shown_at(10, 10);
    rig.cursor
        .set_position(&rig.bed.gpu, at(1, 30, 40), true)
        .unwrap();
    assert!(!rig.host_cursor(0).unwrap().visible);
    let there = rig.host_cursor(1).unwrap();
    assert!(there.visible);
    assert_eq!((there.x, there.y, there.moves), (30, 40, 0));
    // Hiding the pointer of a source it is not on changes nothing.
    rig.cursor
        .set_position(&rig.bed.gpu, at(0, 0, 0), false)
        .unwrap();
    assert!(rig.host_cursor(1).unwrap().visible);
}

#[test]
fn a_rotated_source_gets_the_image_turned_and_placed_by_its_hot_spot() {
    let mut rig = rig();
    let px = shape_pixels();
    let turned = Placement {
        rotation: Rotation::Rotate90,
        ..at(0, 100, 50)
    };
    rig.cursor
        .set_shape(&rig.bed.gpu, &shape(&px), turned)
        .unwrap();
    rig.cursor.set_position(&rig.bed.gpu, turned, true).unwrap();
    let host = rig.host_cursor(0).unwrap();
    // Rotate90 maps shape (x, y) to (y, 15 - x): the hot spot (2, 1) becomes (1, 13).
    assert_eq!((host.hot_x, host.hot_y), (1, 13));
    assert_eq!(
        (host.x, host.y),
        device_position(100, 50, (2, 1), (1, 13), Rotation::Rotate90, (800, 600))
    );
    // Shape (15, 0) is red; turned it is at (0, 0).
    assert_eq!(host.image.unwrap()[0], 0xFFFF_0000);
    assert_eq!(rig.cursor.rotation(), Rotation::Rotate90);
    // The source turns back: the image follows.
    rig.cursor
        .follow_rotation(&rig.bed.gpu, at(0, 100, 50))
        .unwrap();
    let host = rig.host_cursor(0).unwrap();
    assert_eq!((host.x, host.y, host.hot_x, host.hot_y), (100, 50, 2, 1));
}

#[test]
fn a_reset_forgets_the_resource_and_restore_shows_the_pointer_where_it_was() {
    let mut rig = shown_at(70, 80);
    rig.bed.backend.lock().reset();
    rig.cursor.forget_after_reset(&mut rig.ids);
    assert!(!rig.cursor.is_on_device());
    assert_eq!(rig.ids.live_count(), 0, "the id went back");
    // Moves while the device is away change nothing and fail nothing.
    rig.cursor
        .set_position(&rig.bed.gpu, at(0, 5, 5), true)
        .unwrap();
    assert_eq!(rig.bed.backend.lock().resource_count(), 0);
    rig.cursor.restore(&rig.bed.gpu, &mut rig.ids).unwrap();
    let id = rig.cursor.resource_id();
    assert_ne!(id, 0);
    let host = rig.host_cursor(0).unwrap();
    assert!(host.visible);
    assert_eq!((host.x, host.y, host.resource_id), (70, 80, id));
    assert_eq!(host.image.unwrap()[3], 0xFFFF_0000, "the image came back");
}

#[test]
fn a_failed_attach_undoes_the_resource_and_frees_its_id() {
    let bed = Testbed::new();
    let mut ids = ResourceIdAllocator::new(8);
    let mut cursor = HardwareCursor::new(&bed.hal).unwrap();
    bed.backend.lock().fail_next(
        CommandType::RESOURCE_ATTACH_BACKING,
        ResponseType::ERR_OUT_OF_MEMORY,
    );
    let failure = cursor.create(&bed.gpu, &mut ids).unwrap_err();
    assert!(matches!(failure.error, Error::DeviceError(_)));
    assert!(!failure.backing_in_use);
    assert_eq!(
        bed.backend.lock().resource_count(),
        0,
        "resource unreferenced"
    );
    assert_eq!(ids.live_count(), 0);
    assert!(!cursor.is_on_device());
}

#[test]
fn a_move_the_device_cannot_take_records_the_pointer_hidden_and_the_next_one_redefines_it() {
    let mut rig = shown_at(1, 1);
    // The device stops taking cursor requests back: the ring fills, then a move fails.
    rig.bed.backend.lock().hold_queue_completions(1, true);
    let failed = (0..200).find_map(|i| {
        rig.cursor
            .set_position(&rig.bed.gpu, at(0, i, i), true)
            .err()
    });
    assert!(failed.is_some(), "a full cursor queue fails a move");
    assert!(
        !rig.cursor.is_visible(),
        "recorded hidden after the failure"
    );
    rig.bed.backend.lock().hold_queue_completions(1, false);
    rig.bed.release_held(1);
    rig.bed.gpu.process_completions();
    let updates = rig.host_cursor(0).unwrap().updates;
    rig.cursor
        .set_position(&rig.bed.gpu, at(0, 300, 200), true)
        .unwrap();
    let host = rig.host_cursor(0).unwrap();
    assert_eq!(host.updates, updates + 1, "defined anew with UPDATE_CURSOR");
    assert_eq!((host.x, host.y), (300, 200));
    assert!(rig.cursor.is_visible());
    rig.cursor.hide(&rig.bed.gpu).unwrap();
    assert!(!rig.host_cursor(0).unwrap().visible);
}
