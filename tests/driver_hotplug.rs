//! A display change on the host (new preferred size, unplug) reaches the OS: the driver's DPC
//! indicates the child's status, and the re-queried EDID and monitor modes show the new mode.
#![allow(clippy::unwrap_used)]

mod sim_support;

use dxgkrnl_sim::{preferred_mode, ChildStatus, Machine, SimError, Surface};
use sim_support::{assert_shows, Rig};
use viogpu_common::protocol::CommandType;
use viogpudo::ddi::*;

#[test]
fn a_new_preferred_size_reaches_the_os_and_can_be_set() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    rig.sim.clear_events();
    rig.display_change(0, 1920, 1080, true);
    assert!(rig.sim.indicated_child_status().contains(&ChildStatus {
        kind: StatusConnection.0,
        child_uid: 0,
        status: 1,
    }));
    let child = rig.sim.refresh_child(0).unwrap();
    assert!(child.connected);
    assert_eq!(preferred_mode(child.edid.as_deref()), (1920, 1080));
    let modes = rig.sim.recommend_monitor_modes(0).unwrap();
    assert!(modes.contains(&(1920, 1080)), "{modes:?}");
    rig.sim.set_mode(0, 1920, 1080).unwrap();
    let s = Surface::pattern(1920, 1080, 1);
    rig.sim.present_full(0, &s).unwrap();
    assert_shows(&rig.screen(0), &s, D3DKMDT_VPPR_IDENTITY);
    rig.assert_clean();
}

#[test]
fn unplugging_a_monitor_is_indicated_as_disconnected() {
    let mut rig = Rig::booted(&[(1024, 768), (800, 600)]);
    rig.sim.clear_events();
    rig.display_change(1, 0, 0, false);
    let indicated = rig.sim.indicated_child_status();
    assert!(
        indicated.contains(&ChildStatus {
            kind: StatusConnection.0,
            child_uid: 1,
            status: 0,
        }),
        "{indicated:?}"
    );
    assert!(!rig.sim.refresh_child(1).unwrap().connected);
    // The other monitor is untouched.
    let s = Surface::pattern(1024, 768, 2);
    rig.sim.present_full(0, &s).unwrap();
    assert_shows(&rig.screen(0), &s, D3DKMDT_VPPR_IDENTITY);
    rig.assert_clean();
}

#[test]
fn a_display_change_before_d3_is_read_at_d0_and_never_asked_of_the_powered_down_device() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    rig.display_change(0, 1920, 1080, true);
    rig.sim.set_power(PowerDeviceD3).unwrap();
    let infos = rig.gpu().count(CommandType::GET_DISPLAY_INFO);
    let clock = rig.sim.machine().now_us();
    // The OS re-queries the child while the device is off: answered from what the driver
    // knows, without a command to the reset device or a wait for its answer.
    for _ in 0..2 {
        rig.sim.refresh_child(0).unwrap();
        rig.sim.recommend_monitor_modes(0).unwrap();
    }
    assert_eq!(
        rig.sim.machine().now_us(),
        clock,
        "waited for the reset device"
    );
    assert_eq!(rig.gpu().count(CommandType::GET_DISPLAY_INFO), infos);
    // Power-up reads the displays once, and that read counts for the pending change.
    rig.sim.set_power(PowerDeviceD0).unwrap();
    assert_eq!(rig.gpu().count(CommandType::GET_DISPLAY_INFO), infos + 1);
    let child = rig.sim.refresh_child(0).unwrap();
    assert_eq!(preferred_mode(child.edid.as_deref()), (1920, 1080));
    assert_eq!(rig.gpu().count(CommandType::GET_DISPLAY_INFO), infos + 1);
    assert!(rig
        .sim
        .trace_lines()
        .iter()
        .all(|l| !l.contains("refresh failed")));
    rig.assert_clean();
}

/// The last connection status the driver indicated for `child`.
fn last_indication(rig: &Rig, child: u32) -> Option<u8> {
    rig.sim
        .indicated_child_status()
        .iter()
        .rev()
        .find(|s| s.kind == StatusConnection.0 && s.child_uid == child)
        .map(|s| s.status)
}

#[test]
fn after_a_display_change_the_last_indication_is_the_scanouts_real_state() {
    let mut rig = Rig::booted(&[(1024, 768), (800, 600), (0, 0)]);
    rig.sim.clear_events();
    rig.display_change(1, 0, 0, false);
    // Disabled scanouts end disconnected (scanout 2 never had a monitor), enabled ones
    // connected; scanout 0 always has the desktop.
    assert_eq!(
        last_indication(&rig, 1),
        Some(0),
        "{:?}",
        rig.sim.indicated_child_status()
    );
    assert_ne!(last_indication(&rig, 2), Some(1));
    assert_eq!(last_indication(&rig, 0), Some(1));
    // A monitor plugged into scanout 2 is indicated connected; scanout 1's last indication
    // (this one's, or the one before: the OS knows it is disconnected) stays disconnected.
    rig.display_change(2, 1280, 800, true);
    assert_eq!(last_indication(&rig, 2), Some(1));
    assert_eq!(last_indication(&rig, 1), Some(0));
    assert!(rig.sim.refresh_child(2).unwrap().connected);
    rig.assert_clean();
}

#[test]
fn an_enforced_commit_to_an_output_without_a_monitor_keeps_the_current_vidpn() {
    let mut rig = Rig::booted(&[(1024, 768), (0, 0)]);
    assert!(!rig.sim.refresh_child(1).unwrap().connected);
    let s = Surface::pattern(1024, 768, 3);
    rig.sim.present_full(0, &s).unwrap();
    // Extend the desktop to output 1, connectivity enforced (as dxgkrnl commits).
    assert_eq!(
        rig.sim.set_modes(&[(1, Some((1024, 768)))]),
        Err(SimError::Status {
            ddi: "DxgkDdiCommitVidPn",
            status: STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY,
        })
    );
    assert_eq!(rig.sim.take_violations(), Vec::<String>::new());
    // Nothing changed: output 0 still shows its desktop, output 1 nothing.
    assert_shows(&rig.screen(0), &s, D3DKMDT_VPPR_IDENTITY);
    assert!(rig.gpu().scanout_image(1).is_none());
    rig.assert_clean();
}
