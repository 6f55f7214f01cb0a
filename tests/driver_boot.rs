//! Boot: the driver started by the simulated dxgkrnl comes up in the monitor's preferred mode
//! and shows what is presented; the monitor's mode list; several scanouts with their own modes.
#![allow(clippy::unwrap_used)]

mod sim_support;

use dxgkrnl_sim::{Machine, Surface};
use sim_support::{assert_shows, Rig};
use viogpu_common::protocol::{CommandType, ResponseType};
use viogpudo::ddi::*;

#[test]
fn boots_to_the_preferred_mode_and_shows_the_present() {
    let mut rig = Rig::booted(&[(1280, 800)]);
    assert_eq!(rig.sim.source_count(), 1);
    assert_eq!(
        rig.sim.committed_mode(0).map(|m| (m.0, m.1)),
        Some((1280, 800))
    );
    let rect = rig.gpu().scanout_rect(0).unwrap();
    assert_eq!((rect.width, rect.height), (1280, 800));

    let surface = Surface::pattern(1280, 800, 1);
    rig.sim.present_full(0, &surface).unwrap();
    assert_shows(&rig.screen(0), &surface, D3DKMDT_VPPR_IDENTITY);
    rig.assert_clean();
}

#[test]
fn the_driver_reports_sane_caps_and_one_video_output_child_per_scanout() {
    let mut rig = Rig::load(&[(1024, 768), (800, 600)]);
    let boot = rig.sim.boot_device().unwrap();
    assert_eq!(boot.sources, 2);
    assert_eq!(boot.children.len(), 2);
    for (i, child) in boot.children.iter().enumerate() {
        assert_eq!(child.uid, i as u32);
        assert_eq!(child.device_type, TypeVideoOutput.0);
        assert!(child.connected);
        let edid = viogpu_common::edid::parse(child.edid.as_deref().unwrap()).unwrap();
        let preferred = edid.preferred.unwrap();
        let want = [(1024, 768), (800, 600)][i];
        assert_eq!((preferred.width, preferred.height), want);
    }
    let caps = rig.sim.query_driver_caps().unwrap();
    assert_eq!(caps.SupportNonVGA, 1);
    assert!(caps.MaxPointerWidth >= 32 && caps.MaxPointerHeight >= 32);
    assert!(caps.PointerCaps.color() && caps.PointerCaps.monochrome());
    rig.assert_clean();
}

#[test]
fn the_monitor_mode_list_starts_with_the_preferred_mode_and_has_common_modes() {
    let mut rig = Rig::booted(&[(1920, 1080)]);
    let modes = rig.sim.recommend_monitor_modes(0).unwrap();
    assert_eq!(
        modes.first(),
        Some(&(1920, 1080)),
        "preferred first: {modes:?}"
    );
    assert!(modes.contains(&(1024, 768)), "{modes:?}");
    let mut dedup = modes.clone();
    dedup.sort_unstable();
    dedup.dedup();
    assert_eq!(dedup.len(), modes.len(), "no duplicates: {modes:?}");
    // Every mode offered can be set.
    for &(w, h) in modes.iter().filter(|&&(w, h)| w * h <= 1920 * 1080).take(8) {
        rig.sim.set_mode(0, w, h).unwrap();
        let rect = rig.gpu().scanout_rect(0).unwrap();
        assert_eq!((rect.width, rect.height), (w, h));
    }
    rig.assert_clean();
}

#[test]
fn two_scanouts_run_different_modes_with_their_own_pictures() {
    let mut rig = Rig::booted(&[(1024, 768), (1280, 720)]);
    assert_eq!(
        rig.sim.committed_mode(0).map(|m| (m.0, m.1)),
        Some((1024, 768))
    );
    assert_eq!(
        rig.sim.committed_mode(1).map(|m| (m.0, m.1)),
        Some((1280, 720))
    );
    rig.sim.set_mode(1, 800, 600).unwrap();
    let a = Surface::pattern(1024, 768, 10);
    let b = Surface::pattern(800, 600, 20);
    rig.sim.present_full(0, &a).unwrap();
    rig.sim.present_full(1, &b).unwrap();
    assert_shows(&rig.screen(0), &a, D3DKMDT_VPPR_IDENTITY);
    assert_shows(&rig.screen(1), &b, D3DKMDT_VPPR_IDENTITY);
    let gpu = rig.gpu();
    assert_ne!(gpu.scanout_resource(0), gpu.scanout_resource(1));
    drop(gpu);
    rig.assert_clean();
}

#[test]
fn a_persisted_resolution_is_the_boot_mode_and_the_monitor_prefers_it() {
    let mut rig = Rig::load_with_registry(
        &[(1280, 800)],
        &[("PreferredWidth", 1600), ("PreferredHeight", 900)],
    );
    rig.sim.boot().unwrap();
    assert_eq!(
        rig.sim.committed_mode(0).map(|m| (m.0, m.1)),
        Some((1600, 900))
    );
    let rect = rig.gpu().scanout_rect(0).unwrap();
    assert_eq!((rect.width, rect.height), (1600, 900));
    let modes = rig.sim.recommend_monitor_modes(0).unwrap();
    assert_eq!(modes.first(), Some(&(1600, 900)));
    assert!(
        modes.contains(&(1280, 800)),
        "the host's size stays offered: {modes:?}"
    );
}

#[test]
fn an_invalid_persisted_resolution_is_ignored() {
    for registry in [
        &[("PreferredWidth", 1600)][..],
        &[("PreferredWidth", 100), ("PreferredHeight", 90)][..],
        &[("PreferredWidth", 70000), ("PreferredHeight", 900)][..],
    ] {
        let mut rig = Rig::load_with_registry(&[(1280, 800)], registry);
        rig.sim.boot().unwrap();
        assert_eq!(
            rig.sim.committed_mode(0).map(|m| (m.0, m.1)),
            Some((1280, 800)),
            "{registry:?}"
        );
    }
}

#[test]
fn a_persisted_resolution_the_device_refuses_is_dropped_and_the_monitor_mode_boots() {
    let mut rig = Rig::load_with_registry(
        &[(1280, 800)],
        &[("PreferredWidth", 2560), ("PreferredHeight", 1600)],
    );
    // The device has no host memory for the persisted size's framebuffer.
    rig.gpu().fail_next(
        CommandType::RESOURCE_CREATE_2D,
        ResponseType::ERR_OUT_OF_MEMORY,
    );
    rig.sim.boot().unwrap();
    assert_eq!(
        rig.sim.committed_mode(0).map(|m| (m.0, m.1)),
        Some((1280, 800))
    );
    let rect = rig.gpu().scanout_rect(0).unwrap();
    assert_eq!((rect.width, rect.height), (1280, 800));
    let modes = rig.sim.recommend_monitor_modes(0).unwrap();
    assert_eq!(modes.first(), Some(&(1280, 800)));
    // Only the framebuffer and the cursor live on the host: the refused one left nothing.
    assert_eq!(rig.gpu().resource_count(), 2);
    let s = Surface::pattern(1280, 800, 1);
    rig.sim.present_full(0, &s).unwrap();
    assert_shows(&rig.screen(0), &s, D3DKMDT_VPPR_IDENTITY);
    rig.assert_clean();
}

#[test]
fn a_line_interrupt_boots_presents_changes_modes_and_power_cycles() {
    let mut rig = Rig::load_line(&[(1024, 768)]);
    rig.sim.boot().unwrap();
    let s = Surface::pattern(1024, 768, 2);
    rig.sim.present_full(0, &s).unwrap();
    assert_shows(&rig.screen(0), &s, D3DKMDT_VPPR_IDENTITY);
    rig.sim.set_mode(0, 800, 600).unwrap();
    rig.sim.set_power(PowerDeviceD3).unwrap();
    rig.sim.set_power(PowerDeviceD0).unwrap();
    let s = Surface::pattern(800, 600, 3);
    rig.sim.present_full(0, &s).unwrap();
    assert_shows(&rig.screen(0), &s, D3DKMDT_VPPR_IDENTITY);
    rig.sim.stop().unwrap();
    rig.assert_clean();
    // Every interrupt the device raised was claimed and dismissed (the simulator records a
    // violation for a level-triggered line left asserted, and fails the test on drop).
}

#[test]
fn a_line_interrupt_raised_the_moment_the_device_is_started_is_dismissed() {
    let mut rig = Rig::load_line(&[(1024, 768)]);
    // The host signals a display change as soon as DRIVER_OK is set, before the driver has
    // handed the started device to its interrupt routine.
    rig.sim
        .machine()
        .device()
        .set_events_on_driver_ok(virtio_gpu_model::EVENT_DISPLAY);
    rig.sim.boot().unwrap();
    assert!(!rig.sim.machine().line_asserted(), "line left asserted");
    let s = Surface::pattern(1024, 768, 4);
    rig.sim.present_full(0, &s).unwrap();
    assert_shows(&rig.screen(0), &s, D3DKMDT_VPPR_IDENTITY);
    // And again at the return to D0 (the handshake runs again).
    rig.sim.set_power(PowerDeviceD3).unwrap();
    rig.sim.set_power(PowerDeviceD0).unwrap();
    assert!(!rig.sim.machine().line_asserted(), "line left asserted");
    rig.assert_clean();
}

fn firmware_framebuffer(width: u32, height: u32) -> DXGK_DISPLAY_INFORMATION {
    DXGK_DISPLAY_INFORMATION {
        Width: width,
        Height: height,
        Pitch: width * 4,
        ColorFormat: D3DDDIFMT_X8R8G8B8,
        PhysicAddress: PHYSICAL_ADDRESS::new(0x8000_0000),
        TargetId: 0,
        AcpiId: 0,
    }
}

/// StartDevice takes the display over from the firmware (DxgkCbAcquirePostDisplayOwnership,
/// as both samples do); when the device describes no monitor for scanout 0 (no preferred
/// size, no EDID), the mode the firmware showed is the boot mode instead of a default.
#[test]
fn the_firmware_mode_is_the_boot_mode_when_the_device_names_none() {
    let mut rig = Rig::load_after_firmware(&[(0, 0)], firmware_framebuffer(1280, 720));
    // Its EDID is broken, so the driver does not use it.
    rig.gpu()
        .set_edid_fault(Some(virtio_gpu_model::EdidFault::BaseChecksum));
    rig.sim.boot().unwrap();
    assert!(rig
        .sim
        .events()
        .contains(&dxgkrnl_sim::Event::AcquirePostDisplay));
    assert_eq!(
        rig.sim.committed_mode(0).map(|m| (m.0, m.1)),
        Some((1280, 720))
    );
    let rect = rig.gpu().scanout_rect(0).unwrap();
    assert_eq!((rect.width, rect.height), (1280, 720));
    rig.assert_clean();
}

/// The device's own preferred size wins over the firmware's, and a framebuffer in a format
/// the driver cannot show is ignored.
#[test]
fn the_device_preferred_mode_beats_the_firmware_one() {
    let mut rig = Rig::load_after_firmware(&[(1600, 900)], firmware_framebuffer(1280, 720));
    rig.sim.boot().unwrap();
    assert_eq!(
        rig.sim.committed_mode(0).map(|m| (m.0, m.1)),
        Some((1600, 900))
    );
    let mut odd = firmware_framebuffer(1280, 720);
    odd.ColorFormat = D3DDDIFMT_R5G6B5;
    let mut rig = Rig::load_after_firmware(&[(0, 0)], odd);
    rig.sim.boot().unwrap();
    assert_ne!(
        rig.sim.committed_mode(0).map(|m| (m.0, m.1)),
        Some((1280, 720))
    );
    rig.assert_clean();
}
