//! The driver on a device with `VIRTIO_GPU_F_RESOURCE_BLOB` (QEMU's `blob=true`), through the
//! dxgkrnl simulator: every framebuffer is a guest-memory blob the host reads in place, so
//! boot, presents (rotated too), VidPN mode changes, D3/D0, the bugcheck screen and the
//! hand-off must show the right pixels without one TRANSFER_TO_HOST_2D of framebuffer pixels
//! (the hardware cursor, a 2D resource, still transfers its 64x64 image).
#![allow(clippy::unwrap_used)]

mod sim_support;

use dxgkrnl_sim::Surface;
use sim_support::{assert_shows, Rig};
use viogpu_common::protocol::CommandType;
use viogpudo::ddi::*;

/// The framebuffers were blobs, and nothing but cursor images was transferred: the device
/// model refuses a transfer to a blob (an error answer), so none may be in the log, and every
/// transfer it executed was at most a cursor's 64x64.
fn assert_blob_only(rig: &Rig) {
    let gpu = rig.gpu();
    let errors: Vec<_> = gpu.error_answers().collect();
    assert!(errors.is_empty(), "error answers: {errors:?}");
    assert!(gpu.count(CommandType::RESOURCE_CREATE_BLOB) >= 1);
    assert!(gpu.count(CommandType::SET_SCANOUT_BLOB) >= 1);
    for t in gpu.transfers() {
        assert!(
            t.rect.width <= 64 && t.rect.height <= 64,
            "a framebuffer transfer on a blob device: {t:?}"
        );
    }
    for scanout in 0..gpu.num_scanouts() {
        if let Some(id) = gpu.scanout_resource(scanout) {
            assert!(
                gpu.resource(id).unwrap().blob_size.is_some(),
                "scanout {scanout}"
            );
        }
    }
}

#[test]
fn boot_presents_and_mode_changes_show_blobs() {
    let mut rig = Rig::load_blob(&[(1024, 768)]);
    rig.sim.boot().unwrap();
    let desktop = Surface::pattern(1024, 768, 1);
    rig.sim.present_full(0, &desktop).unwrap();
    assert_shows(&rig.screen(0), &desktop, D3DKMDT_VPPR_IDENTITY);

    // A small dirty rect changes exactly its pixels.
    let mut next = desktop.clone();
    let patch = Surface::pattern(1024, 768, 2);
    let dirty = RECT {
        left: 100,
        top: 200,
        right: 164,
        bottom: 264,
    };
    for y in 200..264 {
        for x in 100..164 {
            next.set_pixel(x, y, patch.pixel(x, y).unwrap());
        }
    }
    rig.sim.present(0, &next, &[dirty], &[]).unwrap();
    assert_shows(&rig.screen(0), &next, D3DKMDT_VPPR_IDENTITY);

    // A VidPN mode change: one blob per mode, shown with the OS's repaint.
    rig.sim
        .commit_mode_rotated(0, 1920, 1080, D3DKMDT_VPPR_IDENTITY)
        .unwrap();
    let big = Surface::pattern(1920, 1080, 3);
    rig.sim.present_full(0, &big).unwrap();
    assert_shows(&rig.screen(0), &big, D3DKMDT_VPPR_IDENTITY);

    // Rotated: the blob holds the rotated picture.
    rig.sim
        .commit_mode_rotated(0, 480, 640, D3DKMDT_VPPR_ROTATE90)
        .unwrap();
    let portrait = Surface::pattern(480, 640, 4);
    rig.sim.present_full(0, &portrait).unwrap();
    assert_shows(&rig.screen(0), &portrait, D3DKMDT_VPPR_ROTATE90);

    assert_blob_only(&rig);
    // One blob on the host (the pointer's 2D resource aside): the old ones were destroyed.
    let gpu = rig.gpu();
    let blobs = gpu
        .resources()
        .iter()
        .filter(|r| r.blob_size.is_some())
        .count();
    assert_eq!(blobs, 1);
    drop(gpu);
    rig.assert_clean();
}

#[test]
fn d3_and_d0_bring_the_blob_back() {
    let mut rig = Rig::load_blob(&[(1024, 768)]);
    rig.sim.boot().unwrap();
    let desktop = Surface::pattern(1024, 768, 5);
    rig.sim.present_full(0, &desktop).unwrap();
    let created = rig.gpu().count(CommandType::RESOURCE_CREATE_BLOB);
    rig.sim.set_power(PowerDeviceD3).unwrap();
    rig.sim.set_power(PowerDeviceD0).unwrap();
    assert!(rig.gpu().count(CommandType::RESOURCE_CREATE_BLOB) > created);
    rig.sim.present_full(0, &desktop).unwrap();
    assert_shows(&rig.screen(0), &desktop, D3DKMDT_VPPR_IDENTITY);
    assert_blob_only(&rig);
    rig.assert_clean();
}

#[test]
fn the_bugcheck_screen_on_a_blob_right_after_a_mode_change() {
    let mut rig = Rig::load_blob(&[(1024, 768)]);
    rig.sim.boot().unwrap();
    rig.sim
        .present_full(0, &Surface::pattern(1024, 768, 1))
        .unwrap();
    rig.sim
        .commit_mode_rotated(0, 1280, 1024, D3DKMDT_VPPR_IDENTITY)
        .unwrap();
    let bitmap = Surface::pattern(64, 32, 9);
    let (w, h, _) = rig.sim.bugcheck(0, &bitmap, 100, 50).unwrap();
    assert_eq!((w, h), (1280, 1024));
    let screen = rig.screen(0);
    assert_eq!((screen.width, screen.height), (1280, 1024));
    for (x, y) in [(0, 0), (63, 31), (20, 10)] {
        assert_eq!(
            screen.pixel(100 + x, 50 + y).unwrap() & 0x00FF_FFFF,
            bitmap.pixel(x, y).unwrap() & 0x00FF_FFFF
        );
    }
    // The rest is the new framebuffer's black.
    assert_eq!(screen.pixel(1279, 1023).unwrap() & 0x00FF_FFFF, 0);
    assert_blob_only(&rig);
}

#[test]
fn the_hand_off_on_a_blob_device_leaves_a_black_visible_surface() {
    let mut rig = Rig::load_blob(&[(1024, 768)]);
    rig.sim.boot().unwrap();
    rig.sim
        .present_full(0, &Surface::pattern(1024, 768, 4))
        .unwrap();
    let info = rig.sim.stop_and_release_post_display(0).unwrap();
    assert_eq!((info.Width, info.Height), (1024, 768));
    assert_shows(
        &rig.screen(0),
        &Surface::new(1024, 768),
        D3DKMDT_VPPR_IDENTITY,
    );
    assert_blob_only(&rig);
    rig.sim.remove().unwrap();
    rig.assert_clean();
}
