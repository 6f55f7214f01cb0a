//! Garbage from the device (issue 8, rule 9): a used ring that breaks the virtqueue protocol,
//! an EDID that fails its own checksums, a GET_DISPLAY_INFO answer that is not one. The driver
//! detects each, recovers, and hands Windows only sane data.
#![allow(clippy::unwrap_used)]

mod sim_support;

use dxgkrnl_sim::{rect, Machine, Surface};
use sim_support::{assert_shows, Rig};
use viogpu_common::edid;
use viogpudo::ddi::*;
use virtio_gpu_model::{Corruption, EdidFault};

/// Presents `surface` in full on source 0 and checks the screen shows it.
fn present_and_check(rig: &mut Rig, surface: &Surface) {
    rig.sim.present_full(0, surface).unwrap();
    assert_shows(&rig.screen(0), surface, D3DKMDT_VPPR_IDENTITY);
}

fn traced(rig: &Rig, words: &[&str]) -> bool {
    rig.sim
        .trace_lines()
        .iter()
        .any(|l| words.iter().all(|w| l.contains(w)))
}

/// Rule 9a: one duplicated used-ring entry (used.idx one ahead of the requests in flight)
/// used to wedge the control queue until a power cycle, every later mode change timing out.
/// Now the driver resets the device and brings it back over the same rings: the next mode
/// change works, the picture is right, and nothing leaks.
#[test]
fn a_duplicated_used_entry_after_a_present_is_recovered_by_a_device_reset() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let a = Surface::pattern(1024, 768, 1);
    present_and_check(&mut rig, &a);
    let dma = rig.sim.machine().dma_allocated_bytes();
    let resources = rig.gpu().resource_count();

    // The transfer of the next present is completed twice.
    rig.gpu().corrupt_next_response(Corruption::DuplicateUsed);
    let mut b = a.clone();
    b.fill(rect(10, 10, 200, 100), 0x00C0_FFEE);
    rig.sim
        .present(0, &b, &[rect(10, 10, 200, 100)], &[])
        .unwrap();

    // A mode change after the fault succeeds and shows what is presented.
    rig.sim.set_mode(0, 800, 600).unwrap();
    let c = Surface::pattern(800, 600, 2);
    present_and_check(&mut rig, &c);
    assert!(
        traced(&rig, &["virtqueue protocol", "reset"]),
        "the recovery is traced: {:?}",
        rig.sim.trace_lines()
    );

    // Back at 1024x768: the same memory and host resources as before the fault.
    rig.sim.set_mode(0, 1024, 768).unwrap();
    present_and_check(&mut rig, &a);
    assert_eq!(rig.sim.machine().dma_allocated_bytes(), dma);
    assert_eq!(rig.gpu().resource_count(), resources);
    rig.assert_clean();
}

/// Rule 9a, the fault inside a mode change: the command answered twice is that mode change's
/// own. The driver resets the device, restores the picture, and the mode change is applied
/// over the recovered device.
#[test]
fn a_duplicated_used_entry_inside_a_mode_change_does_not_fail_it() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let a = Surface::pattern(1024, 768, 3);
    present_and_check(&mut rig, &a);
    let dma = rig.sim.machine().dma_allocated_bytes();
    let resources = rig.gpu().resource_count();

    rig.gpu().corrupt_next_response(Corruption::DuplicateUsed);
    rig.sim.set_mode(0, 1280, 800).unwrap();
    let c = Surface::pattern(1280, 800, 4);
    present_and_check(&mut rig, &c);

    rig.sim.set_mode(0, 1024, 768).unwrap();
    present_and_check(&mut rig, &a);
    assert_eq!(rig.sim.machine().dma_allocated_bytes(), dma);
    assert_eq!(rig.gpu().resource_count(), resources);
    rig.assert_clean();
}

/// Rule 9a: the device is reset where the picture must stay: a present after the fault shows
/// the whole screen right (the restored framebuffer plus the new dirty rect), without a mode
/// change.
#[test]
fn after_the_recovery_the_screen_keeps_its_picture() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let a = Surface::pattern(1024, 768, 5);
    present_and_check(&mut rig, &a);
    rig.gpu().corrupt_next_response(Corruption::DuplicateUsed);
    let mut b = a.clone();
    b.fill(rect(0, 0, 64, 64), 0x0011_2233);
    rig.sim.present(0, &b, &[rect(0, 0, 64, 64)], &[]).unwrap();
    // The next present finds the broken ring, recovers, and draws into the kept picture.
    let mut c = b.clone();
    c.fill(rect(500, 500, 600, 600), 0x0044_5566);
    rig.sim
        .present(0, &c, &[rect(500, 500, 600, 600)], &[])
        .unwrap();
    assert_shows(&rig.screen(0), &c, D3DKMDT_VPPR_IDENTITY);
    assert!(traced(&rig, &["virtqueue protocol", "reset"]));
    rig.assert_clean();
}

/// Checks that the EDID Windows reads for child 0 is valid and prefers `w` x `h`.
fn assert_valid_edid(rig: &mut Rig, w: u32, h: u32) {
    let bytes = rig.sim.query_edid(0).unwrap().expect("a descriptor");
    let parsed = edid::parse(&bytes).expect("Windows gets a valid EDID");
    let preferred = parsed.preferred.unwrap();
    assert_eq!((preferred.width, preferred.height), (w, h));
}

/// Rule 9b: an EDID whose base-block checksum is wrong (the driver's own parser rejects it)
/// is not handed to Windows; the one generated for the preferred mode is.
#[test]
fn an_edid_with_a_bad_checksum_is_replaced_by_a_generated_one() {
    for fault in [EdidFault::BaseChecksum, EdidFault::ExtensionChecksum] {
        let mut rig = Rig::load(&[(1280, 800)]);
        rig.gpu().set_edid_fault(Some(fault));
        rig.sim.boot().unwrap();
        assert_valid_edid(&mut rig, 1280, 800);
        rig.assert_clean();
    }
}

/// Rule 9c: a GET_DISPLAY_INFO answer that is not one (a garbage response type) at
/// StartDevice no longer fails the start: scanout 0 gets the driver's default mode, the
/// others stay off, the read is retried, and presents work.
#[test]
fn a_corrupted_display_info_at_start_falls_back_to_a_safe_mode() {
    for corruption in [Corruption::ResponseType(0xdead), Corruption::UsedLength(8)] {
        let mut rig = Rig::load(&[(1280, 800), (1024, 768)]);
        // GET_DISPLAY_INFO is the first control command of StartDevice.
        rig.gpu().corrupt_next_response(corruption);
        rig.sim.add_device().unwrap();
        rig.sim.start_device().unwrap();
        assert!(
            traced(&rig, &["display info"]),
            "traced: {:?}",
            rig.sim.trace_lines()
        );
        let screen = rig.screen(0);
        assert_eq!((screen.width, screen.height), (1024, 768));
        assert!(rig.gpu().scanout_image(1).is_none(), "scanout 1 off");

        // The displays are read again (the OS's child queries): the real monitors appear.
        let child = rig.sim.refresh_child(1).unwrap();
        assert!(child.connected, "child 1 found after the re-read");
        rig.sim.set_mode(0, 1280, 800).unwrap();
        let a = Surface::pattern(1280, 800, 6);
        present_and_check(&mut rig, &a);
        rig.assert_clean();
    }
}
