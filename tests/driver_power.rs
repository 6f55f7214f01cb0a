//! Power and teardown: D3 and back keeps the mode; the bugcheck screen shows what
//! SystemDisplayWrite drew, without interrupts; stop/remove frees every DMA byte, host resource
//! and mapping; releasing the display to the next driver leaves the picture described.
#![allow(clippy::unwrap_used)]

mod sim_support;

use dxgkrnl_sim::{Event, Machine, Surface};
use sim_support::{assert_shows, Rig};
use viogpu_common::protocol::CommandType;
use viogpudo::ddi::*;

/// After D0 (the simulator made the source visible, as the OS does): the screen is black, and
/// the desktop's next present, even of one 8x8 rectangle, shows all of `desktop`.
fn assert_desktop_back_after_d0(rig: &mut Rig, desktop: &Surface) {
    let (w, h) = (desktop.width, desktop.height);
    assert_shows(&rig.screen(0), &Surface::new(w, h), D3DKMDT_VPPR_IDENTITY);
    let dirty = [RECT {
        left: 0,
        top: 0,
        right: 8,
        bottom: 8,
    }];
    rig.sim.present(0, desktop, &dirty, &[]).unwrap();
    assert_shows(&rig.screen(0), desktop, D3DKMDT_VPPR_IDENTITY);
}

#[test]
fn d3_and_back_to_d0_keeps_the_mode() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    rig.sim.set_mode(0, 1280, 1024).unwrap();
    let before = Surface::pattern(1280, 1024, 1);
    rig.sim.present_full(0, &before).unwrap();
    let resources = rig.gpu().resource_count();
    let creates = rig.gpu().count(CommandType::RESOURCE_CREATE_2D);
    rig.sim.set_power(PowerDeviceD3).unwrap();
    rig.sim.set_power(PowerDeviceD0).unwrap();
    assert!(
        rig.gpu().count(CommandType::RESOURCE_CREATE_2D) > creates,
        "the device was reset and its resources made again"
    );
    let rect = rig.gpu().scanout_rect(0).unwrap();
    assert_eq!((rect.width, rect.height), (1280, 1024));
    // Back in D0 the source shows black until the OS makes it visible and presents; that
    // first present, however small its dirty rectangle, brings the whole desktop back.
    assert_desktop_back_after_d0(&mut rig, &before);
    let again = Surface::pattern(1280, 1024, 2);
    rig.sim.present_full(0, &again).unwrap();
    assert_shows(&rig.screen(0), &again, D3DKMDT_VPPR_IDENTITY);
    assert_eq!(rig.gpu().resource_count(), resources);
    rig.assert_clean();
}

#[test]
fn the_bugcheck_screen_shows_the_written_bitmap() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    rig.sim
        .present_full(0, &Surface::pattern(1024, 768, 1))
        .unwrap();
    let bitmap = Surface::pattern(200, 100, 9);
    let isrs_before = isr_count(&rig);
    let (w, h, format) = rig.sim.bugcheck(0, &bitmap, 40, 30).unwrap();
    assert_eq!((w, h), (1024, 768));
    assert_eq!(format, D3DDDIFMT_X8R8G8B8);
    let screen = rig.screen(0);
    for y in 0..100 {
        for x in 0..200 {
            assert_eq!(
                screen.pixel(40 + x, 30 + y).unwrap() & 0x00FF_FFFF,
                bitmap.pixel(x, y).unwrap() & 0x00FF_FFFF,
                "bitmap pixel ({x}, {y})"
            );
        }
    }
    assert_eq!(isr_count(&rig), isrs_before, "no interrupts after a crash");
    // A second write (the OS draws the screen in pieces) lands too.
    let more = Surface::pattern(16, 16, 10);
    rig.sim.system_display_write(&more, 1000, 700).unwrap();
    assert_eq!(
        rig.screen(0).pixel(1000, 700).unwrap() & 0x00FF_FFFF,
        more.pixel(0, 0).unwrap() & 0x00FF_FFFF
    );
}

/// A bugcheck between a mode change and its first present: the new framebuffer is shown then
/// (the mode change left the host on the old one until the first picture), whole, with the
/// bitmap on it.
#[test]
fn the_bugcheck_screen_right_after_a_mode_change_shows_the_new_framebuffer() {
    let mut rig = Rig::booted(&[(1024, 768)]);
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
    assert_eq!(
        screen.pixel(100, 50).unwrap() & 0x00FF_FFFF,
        bitmap.pixel(0, 0).unwrap() & 0x00FF_FFFF
    );
    // The rest is the new framebuffer's black, not whatever the host resource held.
    assert_eq!(screen.pixel(1279, 1023).unwrap() & 0x00FF_FFFF, 0);
}

/// SystemDisplayEnable with D3DDDI_ID_UNINITIALIZED, or for a connected target whose path is
/// off, still gives a blue screen on the first scanout that shows a framebuffer; a target
/// without a monitor (or not a target at all) is STATUS_NOT_SUPPORTED, as the page requires.
#[test]
fn the_bugcheck_screen_finds_a_head_or_refuses_a_target_without_a_monitor() {
    for (target, expected) in [
        (D3DDDI_ID_UNINITIALIZED, Ok(0)),
        (1, Ok(0)),
        (2, Err(STATUS_NOT_SUPPORTED)),
        (7, Err(STATUS_NOT_SUPPORTED)),
    ] {
        // Head 1 has a monitor but its path is off; head 2 has no monitor.
        let mut rig = Rig::booted(&[(1024, 768), (800, 600), (0, 0)]);
        rig.sim.set_modes(&[(1, None)]).unwrap();
        let bitmap = Surface::pattern(32, 16, 4);
        let shown = rig.sim.bugcheck(target, &bitmap, 0, 0);
        match expected {
            Ok(head) => {
                let (w, h, _) = shown.unwrap_or_else(|e| panic!("target {target:#x}: {e}"));
                assert_eq!((w, h), (1024, 768), "target {target:#x}");
                assert_eq!(
                    rig.screen(head).pixel(5, 5).unwrap() & 0x00FF_FFFF,
                    bitmap.pixel(5, 5).unwrap() & 0x00FF_FFFF,
                    "target {target:#x}"
                );
            }
            Err(status) => {
                let err = shown.unwrap_err();
                assert_eq!(err.status(), Some(status), "target {target:#x}");
            }
        }
    }
}

/// The page: the driver must disable the signal of every other display, so only the bugcheck
/// picture is shown; the hardware pointer goes too.
#[test]
fn the_bugcheck_screen_turns_the_other_displays_off_and_hides_the_pointer() {
    let mut rig = Rig::booted(&[(1024, 768), (800, 600)]);
    rig.sim.set_mode(1, 800, 600).unwrap();
    assert!(rig.gpu().scanout_resource(1).is_some());
    let shape = dxgkrnl_sim::PointerShape::color(32, 32, &[0xFF; 4096], (0, 0));
    rig.sim.set_pointer_shape(0, &shape).unwrap();
    rig.sim.set_pointer_position(0, 10, 10, true).unwrap();
    assert!(rig.gpu().cursor(0).unwrap().visible);
    let bitmap = Surface::pattern(64, 64, 5);
    rig.sim.bugcheck(0, &bitmap, 0, 0).unwrap();
    assert_eq!(rig.gpu().scanout_resource(1), None, "head 1 is off");
    assert!(
        rig.gpu().scanout_resource(0).is_some(),
        "head 0 shows the bugcheck"
    );
    assert!(
        !rig.gpu().cursor(0).unwrap().visible,
        "no pointer over the bugcheck"
    );
}

fn isr_count(rig: &Rig) -> usize {
    rig.sim
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Isr { .. }))
        .count()
}

#[test]
fn stop_and_remove_free_everything() {
    let mut rig = Rig::load(&[(1024, 768), (800, 600)]);
    let dma_before = rig.sim.machine().dma_allocated_bytes();
    rig.sim.boot().unwrap();
    rig.sim
        .present_full(0, &Surface::pattern(1024, 768, 1))
        .unwrap();
    rig.sim
        .set_pointer_shape(
            0,
            &dxgkrnl_sim::PointerShape::color(32, 32, &[0xFF; 4096], (0, 0)),
        )
        .unwrap();
    assert!(!rig.sim.live_mappings().is_empty());
    rig.sim.stop().unwrap();
    assert!(rig.sim.live_mappings().is_empty(), "BARs unmapped at stop");
    assert_eq!(
        rig.gpu().resource_count(),
        0,
        "host resources destroyed (or reset)"
    );
    rig.sim.remove().unwrap();
    rig.sim.unload().unwrap();
    assert_eq!(rig.sim.machine().dma_allocated_bytes(), dma_before);
    assert_eq!(rig.sim.machine().live_mappings(), 0);
    rig.assert_clean();
}

#[test]
fn stop_then_start_again_works() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    rig.sim.stop().unwrap();
    rig.sim.start_device().unwrap();
    rig.sim.set_mode(0, 1024, 768).unwrap();
    let s = Surface::pattern(1024, 768, 3);
    rig.sim.present_full(0, &s).unwrap();
    assert_shows(&rig.screen(0), &s, D3DKMDT_VPPR_IDENTITY);
    rig.assert_clean();
}

#[test]
fn releasing_the_post_display_hands_over_a_black_visible_surface() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let s = Surface::pattern(1024, 768, 4);
    rig.sim.present_full(0, &s).unwrap();
    let info = rig.sim.stop_and_release_post_display(0).unwrap();
    assert_eq!((info.Width, info.Height, info.TargetId), (1024, 768, 0));
    assert_eq!(info.ColorFormat, D3DDDIFMT_X8R8G8B8);
    assert!(info.Pitch >= 4096);
    // The screen is black and still shown (the KMDOD sample blacks it out and keeps it
    // visible).
    assert_shows(
        &rig.screen(0),
        &Surface::new(1024, 768),
        D3DKMDT_VPPR_IDENTITY,
    );
    // The described memory is the black surface, row by row.
    let mut row = vec![0xAAu8; 4096];
    for y in [0u32, 383, 767] {
        let at = info.PhysicAddress.QuadPart as u64 + u64::from(y) * u64::from(info.Pitch);
        assert!(rig.sim.machine().read_phys(at, &mut row));
        assert!(row.iter().all(|&b| b == 0), "row {y}");
    }
    assert!(rig.sim.live_mappings().is_empty());
    rig.sim.remove().unwrap();
    rig.assert_clean();
}

#[test]
fn the_hand_off_takes_another_active_target_and_turns_the_others_off() {
    // Head 1 has no monitor; head 2 does and shows a desktop.
    let mut rig = Rig::booted(&[(1024, 768), (0, 0), (800, 600)]);
    rig.sim.set_mode(2, 800, 600).unwrap();
    assert!(rig.gpu().scanout_resource(2).is_some());
    let info = rig.sim.stop_and_release_post_display(1).unwrap();
    assert_eq!((info.TargetId, info.Width, info.Height), (0, 1024, 768));
    assert_eq!(
        rig.gpu().scanout_resource(2),
        None,
        "the other display is off"
    );
    assert!(rig.gpu().scanout_resource(0).is_some());
    rig.sim.remove().unwrap();
    rig.assert_clean();
}

#[test]
fn without_a_target_that_shows_anything_the_hand_off_is_not_supported_and_changes_nothing() {
    let mut rig = Rig::load(&[(1024, 768)]);
    let dma_before = rig.sim.machine().dma_allocated_bytes();
    rig.sim.boot().unwrap();
    rig.sim.set_modes(&[(0, None)]).unwrap();
    assert_hand_off_refused(&mut rig, STATUS_NOT_SUPPORTED, dma_before);
}

#[test]
fn a_failed_power_up_succeeds_stays_dark_and_the_next_power_cycle_brings_the_picture_back() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let before = Surface::pattern(1024, 768, 5);
    rig.sim.present_full(0, &before).unwrap();
    rig.sim.set_power(PowerDeviceD3).unwrap();
    // The device refuses the handshake: power-up fails, but SetPowerState must not (the sim
    // records a violation for any failure status).
    rig.sim.machine().device().set_reject_features(true);
    rig.sim.set_power(PowerDeviceD0).unwrap();
    assert_eq!(rig.gpu().scanout_resource(0), None, "nothing on screen");
    // Dark, the DDIs still succeed and nothing reaches the device.
    let transfers = rig.gpu().count(CommandType::TRANSFER_TO_HOST_2D);
    rig.sim
        .present_full(0, &Surface::pattern(1024, 768, 9))
        .unwrap();
    rig.sim.set_pointer_position(0, 5, 5, true).unwrap();
    assert_eq!(rig.gpu().count(CommandType::TRANSFER_TO_HOST_2D), transfers);
    // The OS's next power cycle powers it up for real.
    rig.sim.machine().device().set_reject_features(false);
    rig.sim.set_power(PowerDeviceD3).unwrap();
    rig.sim.set_power(PowerDeviceD0).unwrap();
    assert_desktop_back_after_d0(&mut rig, &before);
    let again = Surface::pattern(1024, 768, 6);
    rig.sim.present_full(0, &again).unwrap();
    assert_shows(&rig.screen(0), &again, D3DKMDT_VPPR_IDENTITY);
    rig.assert_clean();
}

#[test]
fn a_mode_committed_in_d3_is_the_one_shown_after_d0() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    rig.sim.set_power(PowerDeviceD3).unwrap();
    // Committed while the device is off: only remembered.
    rig.sim
        .set_mode_rotated(0, 600, 800, D3DKMDT_VPPR_ROTATE90)
        .unwrap();
    rig.sim.set_power(PowerDeviceD0).unwrap();
    let rect = rig.gpu().scanout_rect(0).unwrap();
    assert_eq!(
        (rect.width, rect.height),
        (800, 600),
        "600x800 desktop turned"
    );
    let id = rig.gpu().scanout_resource(0).unwrap();
    let res = rig.gpu().resource(id).unwrap();
    assert_eq!((res.width, res.height), (800, 600));
    let s = Surface::pattern(600, 800, 7);
    rig.sim.present_full(0, &s).unwrap();
    assert_shows(&rig.screen(0), &s, D3DKMDT_VPPR_ROTATE90);
    // Only the new framebuffer and the cursor are left on the host.
    assert_eq!(rig.gpu().resource_count(), 2);
    rig.assert_clean();
}

#[test]
fn a_device_that_hangs_in_reset_at_power_down_comes_back_once_it_resets() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let before = Surface::pattern(1024, 768, 8);
    rig.sim.present_full(0, &before).unwrap();
    let shape = dxgkrnl_sim::PointerShape::color(32, 32, &[0xFF; 4096], (0, 0));
    rig.sim.set_pointer_shape(0, &shape).unwrap();
    let resources = rig.gpu().resource_count();
    rig.sim.machine().device().set_ignore_reset(true);
    // Power-down cannot confirm the reset; the device keeps its rings and resources.
    rig.sim.set_power(PowerDeviceD3).unwrap();
    assert_ne!(rig.sim.machine().device().status(), 0, "not reset");
    assert_eq!(rig.gpu().resource_count(), resources);
    // Powered down, nothing is sent to it, although its resources are still known.
    let transfers = rig.gpu().count(CommandType::TRANSFER_TO_HOST_2D);
    let cursor_commands = |rig: &Rig| {
        let gpu = rig.gpu();
        gpu.count(CommandType::UPDATE_CURSOR) + gpu.count(CommandType::MOVE_CURSOR)
    };
    let cursor_before = cursor_commands(&rig);
    rig.sim
        .present_full(0, &Surface::pattern(1024, 768, 9))
        .unwrap();
    rig.sim.set_pointer_position(0, 5, 5, true).unwrap();
    assert_eq!(rig.gpu().count(CommandType::TRANSFER_TO_HOST_2D), transfers);
    assert_eq!(cursor_commands(&rig), cursor_before);
    // Power-up starts with a reset, which still hangs: the adapter stays dark (and the DDI
    // succeeds, as it must).
    rig.sim.set_power(PowerDeviceD0).unwrap();
    assert_ne!(rig.sim.machine().device().status(), 0, "still not reset");
    rig.sim.machine().device().set_ignore_reset(false);
    rig.sim.set_power(PowerDeviceD3).unwrap();
    rig.sim.set_power(PowerDeviceD0).unwrap();
    assert_desktop_back_after_d0(&mut rig, &before);
    assert_eq!(rig.gpu().resource_count(), resources);
    rig.sim.stop().unwrap();
    assert_eq!(rig.gpu().resource_count(), 0);
    rig.assert_clean();
}

/// 3000x2000 needs two 16 MiB bands (1398 rows of 12000 bytes, then the rest), and the first
/// band's rows do not end on a page boundary, so the two bands are never one linear block.
const BANDED: (u32, u32) = (3000, 2000);

#[test]
fn a_banded_framebuffer_is_handed_over_as_one_contiguous_block() {
    let mut rig = Rig::booted(&[BANDED]);
    let (w, h) = BANDED;
    let id = rig.gpu().scanout_resource(0).unwrap();
    assert_eq!(rig.gpu().resource(id).unwrap().backing_entries, 2);
    let s = Surface::pattern(w, h, 4);
    rig.sim.present_full(0, &s).unwrap();
    let info = rig.sim.stop_and_release_post_display(0).unwrap();
    assert_eq!((info.Width, info.Height, info.Pitch), (w, h, w * 4));
    // The scanout now shows one single-entry framebuffer with the same picture.
    let id = rig.gpu().scanout_resource(0).unwrap();
    let res = rig.gpu().resource(id).unwrap();
    assert_eq!(res.backing_entries, 1);
    assert_eq!(res.backing_len, u64::from(h) * u64::from(info.Pitch));
    assert_eq!(rig.gpu().resource_count(), 2, "the block and the cursor");
    assert_shows(&rig.screen(0), &Surface::new(w, h), D3DKMDT_VPPR_IDENTITY);
    // What the next owner sees: Height * Pitch linear bytes from the address, all black.
    let mut linear = vec![0xAAu8; (h * info.Pitch) as usize];
    assert!(rig
        .sim
        .machine()
        .read_phys(info.PhysicAddress.QuadPart as u64, &mut linear));
    assert!(
        linear.iter().all(|&b| b == 0),
        "the linear framebuffer is black"
    );
    rig.sim.remove().unwrap();
    rig.assert_clean();
}

#[test]
fn without_a_contiguous_block_no_address_is_handed_over_and_the_driver_stays_started() {
    let mut rig = Rig::load(&[BANDED]);
    let dma_before = rig.sim.machine().dma_allocated_bytes();
    rig.sim.boot().unwrap();
    let (w, h) = BANDED;
    let s = Surface::pattern(w, h, 5);
    rig.sim.present_full(0, &s).unwrap();
    let id = rig.gpu().scanout_resource(0).unwrap();
    let resources = rig.gpu().resource_count();
    let dma = rig.sim.machine().dma_allocated_bytes();
    rig.sim.machine().hal().fail_allocations_after(Some(0));
    let err = rig.sim.stop_and_release_post_display(0).unwrap_err();
    rig.sim.machine().hal().fail_allocations_after(None);
    assert_eq!(err.status(), Some(STATUS_NO_MEMORY));
    // Nothing changed: the same framebuffer is on screen, and presents still reach it.
    assert_eq!(rig.gpu().scanout_resource(0), Some(id));
    assert_eq!(rig.gpu().resource_count(), resources);
    assert_eq!(rig.sim.machine().dma_allocated_bytes(), dma);
    assert_shows(&rig.screen(0), &s, D3DKMDT_VPPR_IDENTITY);
    let again = Surface::pattern(w, h, 6);
    rig.sim.present_full(0, &again).unwrap();
    assert_shows(&rig.screen(0), &again, D3DKMDT_VPPR_IDENTITY);
    // The OS stops the device instead, which frees everything.
    rig.sim.stop().unwrap();
    rig.sim.remove().unwrap();
    rig.sim.unload().unwrap();
    assert_eq!(rig.sim.machine().dma_allocated_bytes(), dma_before);
    assert_eq!(rig.gpu().resource_count(), 0);
    rig.assert_clean();
}

#[test]
fn the_hand_off_hides_the_hardware_pointer() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let s = Surface::pattern(1024, 768, 10);
    rig.sim.present_full(0, &s).unwrap();
    let shape = dxgkrnl_sim::PointerShape::color(32, 32, &[0xFF; 4096], (0, 0));
    rig.sim.set_pointer_shape(0, &shape).unwrap();
    rig.sim.set_pointer_position(0, 100, 100, true).unwrap();
    assert!(rig.gpu().cursor(0).unwrap().visible);
    rig.sim.stop_and_release_post_display(0).unwrap();
    let cursor = rig.gpu().cursor(0).unwrap().clone();
    assert!(!cursor.visible);
    assert_eq!(cursor.resource_id, 0);
    assert_shows(
        &rig.screen(0),
        &Surface::new(1024, 768),
        D3DKMDT_VPPR_IDENTITY,
    );
    rig.sim.remove().unwrap();
    rig.assert_clean();
}

/// A refused hand-off: the error, and nothing changed (the OS stops the device instead,
/// which frees everything).
fn assert_hand_off_refused(rig: &mut Rig, status: NTSTATUS, dma_before: usize) {
    let resources = rig.gpu().resource_count();
    let device_status = rig.sim.machine().device().status();
    let updates = rig.gpu().count(CommandType::UPDATE_CURSOR);
    let dma = rig.sim.machine().dma_allocated_bytes();
    let err = rig.sim.stop_and_release_post_display(0).unwrap_err();
    assert_eq!(err.status(), Some(status));
    assert_eq!(
        rig.sim.machine().device().status(),
        device_status,
        "the device was not reset"
    );
    assert_eq!(rig.gpu().resource_count(), resources);
    assert_eq!(rig.gpu().count(CommandType::UPDATE_CURSOR), updates);
    assert_eq!(rig.sim.machine().dma_allocated_bytes(), dma);
    assert!(!rig.sim.live_mappings().is_empty());
    rig.sim.stop().unwrap();
    rig.sim.remove().unwrap();
    rig.sim.unload().unwrap();
    assert_eq!(rig.sim.machine().dma_allocated_bytes(), dma_before);
    rig.assert_clean();
}

#[test]
fn no_hand_off_while_powered_down_or_after_surprise_removal() {
    for removed in [false, true] {
        let mut rig = Rig::load(&[(1024, 768)]);
        let dma_before = rig.sim.machine().dma_allocated_bytes();
        rig.sim.boot().unwrap();
        let shape = dxgkrnl_sim::PointerShape::color(32, 32, &[0xFF; 4096], (0, 0));
        rig.sim.set_pointer_shape(0, &shape).unwrap();
        rig.sim.set_pointer_position(0, 100, 100, true).unwrap();
        if removed {
            // Unplugged, and noticed by the next present (Windows sends this driver no
            // removal notification).
            rig.sim.machine().surprise_remove();
            rig.sim
                .present_full(0, &Surface::pattern(1024, 768, 1))
                .unwrap();
        } else {
            rig.sim.set_power(PowerDeviceD3).unwrap();
        }
        assert_hand_off_refused(&mut rig, STATUS_DEVICE_NOT_READY, dma_before);
    }
}

#[test]
fn hand_off_and_restart_cycles_never_run_out_of_resource_ids() {
    // Each start takes two ids (framebuffer, cursor) of the 256 the driver keeps live; a
    // hand-off leaves them on the device, and the next start resets it.
    let mut rig = Rig::booted(&[(640, 480)]);
    for cycle in 0..140 {
        rig.sim.stop_and_release_post_display(0).unwrap();
        rig.sim
            .start_device()
            .unwrap_or_else(|e| panic!("start {cycle}: {e:?}"));
        assert_eq!(rig.gpu().resource_count(), 2, "cycle {cycle}");
    }
    let s = Surface::pattern(640, 480, 11);
    rig.sim.set_mode(0, 640, 480).unwrap();
    rig.sim.present_full(0, &s).unwrap();
    assert_shows(&rig.screen(0), &s, D3DKMDT_VPPR_IDENTITY);
    rig.assert_clean();
}

/// What the next owner of a handed-over display does: writes `surface` row by row at
/// `info.PhysicAddress` with `info.Pitch` (RAM or device memory alike).
fn draw_as_next_owner(rig: &Rig, info: &DXGK_DISPLAY_INFORMATION, surface: &Surface) {
    let row_bytes = (surface.width * 4) as usize;
    for y in 0..surface.height {
        let at = info.PhysicAddress.QuadPart as u64 + u64::from(y) * u64::from(info.Pitch);
        let from = (y * surface.pitch) as usize;
        let row = &surface.bytes[from..from + row_bytes];
        assert!(rig.sim.machine().write_phys(at, row), "row {y} at {at:#x}");
    }
}

/// The physical address of the virtio-vga's VGA memory (BAR 0).
fn vga_memory_address(rig: &Rig) -> u64 {
    let bars = rig.sim.machine().bars();
    bars.iter().find(|b| b.index == 0).unwrap().phys
}

#[test]
fn on_virtio_vga_the_hand_off_gives_the_vga_and_what_the_next_owner_draws_is_shown() {
    let mut rig = Rig::load_virtio_vga(&[(1024, 768)]);
    let dma_before = rig.sim.machine().dma_allocated_bytes();
    rig.sim.boot().unwrap();
    let desktop = Surface::pattern(1024, 768, 4);
    rig.sim.present_full(0, &desktop).unwrap();
    assert_shows(&rig.host_view(0).unwrap(), &desktop, D3DKMDT_VPPR_IDENTITY);
    let info = rig.sim.stop_and_release_post_display(0).unwrap();
    assert_eq!(
        (info.Width, info.Height, info.Pitch, info.TargetId),
        (1024, 768, 4096, 0)
    );
    assert_eq!(info.ColorFormat, D3DDDIFMT_X8R8G8B8);
    assert_eq!(info.PhysicAddress.QuadPart as u64, vga_memory_address(&rig));
    // The device left virtio mode (reset): the host shows the VGA, cleared, in the mode.
    assert_eq!(rig.sim.machine().device().status(), 0, "device reset");
    assert!(!rig.gpu().virtio_display_active());
    assert_eq!(rig.gpu().resource_count(), 0);
    assert_shows(
        &rig.host_view(0).unwrap(),
        &Surface::new(1024, 768),
        D3DKMDT_VPPR_IDENTITY,
    );
    // The next owner's drawing reaches the screen, with no help from the driver.
    let next = Surface::pattern(1024, 768, 9);
    draw_as_next_owner(&rig, &info, &next);
    assert_shows(&rig.host_view(0).unwrap(), &next, D3DKMDT_VPPR_IDENTITY);
    // Everything was given back: the device no longer reads any of it.
    assert!(rig.sim.live_mappings().is_empty());
    assert_eq!(rig.sim.machine().device().vga_unmodelled_accesses(), 0);
    rig.sim.remove().unwrap();
    rig.sim.unload().unwrap();
    assert_eq!(rig.sim.machine().dma_allocated_bytes(), dma_before);
    rig.assert_clean();
}

#[test]
fn on_virtio_vga_a_mode_the_vga_cannot_show_is_handed_over_in_one_it_can() {
    // 2560x1600 needs 16 MB; the VGA has 8 MiB. 1366 is not a multiple of 8: the VGA shows
    // 1360 columns, and that is what is described.
    for ((w, h), (hw, hh)) in [((2560, 1600), (1024, 768)), ((1366, 768), (1360, 768))] {
        let mut rig = Rig::load_virtio_vga(&[(w, h)]);
        rig.sim.boot().unwrap();
        let info = rig.sim.stop_and_release_post_display(0).unwrap();
        assert_eq!((info.Width, info.Height, info.Pitch), (hw, hh, hw * 4));
        let next = Surface::pattern(hw, hh, 3);
        draw_as_next_owner(&rig, &info, &next);
        assert_shows(&rig.host_view(0).unwrap(), &next, D3DKMDT_VPPR_IDENTITY);
        rig.sim.remove().unwrap();
        rig.assert_clean();
    }
}

#[test]
fn on_virtio_vga_the_hand_off_takes_the_vga_head_whichever_target_was_asked() {
    // The VGA is shown where scanout 0 is; head 1 is asked for.
    let mut rig = Rig::load_virtio_vga(&[(1024, 768), (800, 600)]);
    rig.sim.boot().unwrap();
    rig.sim.set_mode(1, 800, 600).unwrap();
    let info = rig.sim.stop_and_release_post_display(1).unwrap();
    assert_eq!((info.TargetId, info.Width, info.Height), (0, 1024, 768));
    assert_eq!(info.PhysicAddress.QuadPart as u64, vga_memory_address(&rig));
    assert_eq!(
        rig.gpu().scanout_resource(1),
        None,
        "the other display is off"
    );
    rig.sim.remove().unwrap();
    rig.assert_clean();
}

#[test]
fn a_vga_that_does_not_take_the_mode_fails_the_hand_off_and_changes_nothing_visible() {
    let mut rig = Rig::load_virtio_vga(&[(1024, 768)]);
    let dma_before = rig.sim.machine().dma_allocated_bytes();
    rig.sim.boot().unwrap();
    let desktop = Surface::pattern(1024, 768, 5);
    rig.sim.present_full(0, &desktop).unwrap();
    rig.sim.machine().device().edit_vga(|v| v.set_frozen(true));
    let err = rig.sim.stop_and_release_post_display(0).unwrap_err();
    assert_eq!(err.status(), Some(STATUS_DEVICE_HARDWARE_ERROR));
    // Still in virtio mode, showing the desktop; the OS stops the device instead.
    assert_ne!(rig.sim.machine().device().status(), 0, "not reset");
    assert_shows(&rig.host_view(0).unwrap(), &desktop, D3DKMDT_VPPR_IDENTITY);
    rig.sim.stop().unwrap();
    rig.sim.remove().unwrap();
    rig.sim.unload().unwrap();
    assert_eq!(rig.sim.machine().dma_allocated_bytes(), dma_before);
    rig.assert_clean();
}

#[test]
fn a_vga_class_device_without_dispi_gets_the_virtio_hand_off() {
    let mut rig = Rig::load_virtio_vga(&[(1024, 768)]);
    rig.sim.machine().device().edit_vga(|v| v.set_id(0));
    rig.sim.boot().unwrap();
    let info = rig.sim.stop_and_release_post_display(0).unwrap();
    assert_ne!(info.PhysicAddress.QuadPart as u64, vga_memory_address(&rig));
    // The guest-RAM framebuffer, shown by the virtio scanout as before.
    assert!(rig.gpu().virtio_display_active());
    let mut row = vec![0xAAu8; 4096];
    assert!(rig
        .sim
        .machine()
        .read_phys(info.PhysicAddress.QuadPart as u64, &mut row));
    assert!(row.iter().all(|&b| b == 0));
    rig.sim.remove().unwrap();
    rig.assert_clean();
}

#[test]
fn after_a_vga_hand_off_the_driver_starts_again_in_virtio_mode() {
    let mut rig = Rig::load_virtio_vga(&[(1024, 768)]);
    rig.sim.boot().unwrap();
    rig.sim.stop_and_release_post_display(0).unwrap();
    assert!(!rig.gpu().virtio_display_active());
    rig.sim.start_device().unwrap();
    rig.sim.set_mode(0, 1024, 768).unwrap();
    let s = Surface::pattern(1024, 768, 12);
    rig.sim.present_full(0, &s).unwrap();
    assert!(rig.gpu().virtio_display_active());
    assert_shows(&rig.host_view(0).unwrap(), &s, D3DKMDT_VPPR_IDENTITY);
    rig.assert_clean();
}
