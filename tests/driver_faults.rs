//! Broken and vanishing devices: a StartDevice that fails leaves a reset device, no memory
//! and a stopped adapter; a surprise-removed device is never touched again.
#![allow(clippy::unwrap_used)]

mod sim_support;

use std::ptr;

use dxgkrnl_sim::{Event, Machine, PointerShape, Surface};
use sim_support::Rig;
use viogpu_common::protocol::{CommandType, ResponseType};
use viogpudo::ddi::*;
use virtio_queue::QueueT;

#[test]
fn a_bad_scanout_count_fails_start_before_the_device_knows_any_ring() {
    for bad in [0u32, 17] {
        let mut rig = Rig::load(&[(1024, 768)]);
        rig.sim.machine().device().set_num_scanouts(bad);
        let dma_before = rig.sim.machine().dma_allocated_bytes();
        rig.sim.add_device().unwrap();
        let err = rig.sim.start_device().unwrap_err();
        assert_eq!(
            err.status(),
            Some(STATUS_DEVICE_HARDWARE_ERROR),
            "num_scanouts {bad}"
        );
        let device = rig.sim.machine().device();
        assert_eq!(device.status(), 0, "device left reset");
        for q in 0..2 {
            assert_eq!(
                device.with_queue(q, |queue| queue.desc_table()),
                Some(0),
                "queue {q} never programmed"
            );
        }
        assert_eq!(rig.sim.machine().dma_allocated_bytes(), dma_before);
        assert!(rig.sim.live_mappings().is_empty(), "BARs unmapped");
        // Also checks that no ring memory was freed while the device had the ring enabled.
        rig.assert_clean();
    }
}

/// Issue 12, rule 10: the driver gives the device guest-physical addresses
/// (MmGetPhysicalAddress), right only while VIRTIO_F_ACCESS_PLATFORM is not negotiated. A
/// device behind an IOMMU that insists on it (QEMU's iommu_platform=on) is refused clearly:
/// StartDevice fails with STATUS_NOT_SUPPORTED, a trace line names the reason, the device is
/// left reset and nothing is leaked.
#[test]
fn a_device_that_requires_access_platform_fails_start_clearly() {
    let mut rig = Rig::load(&[(1024, 768)]);
    rig.sim.machine().device().set_require_access_platform(true);
    let dma_before = rig.sim.machine().dma_allocated_bytes();
    rig.sim.add_device().unwrap();
    let err = rig.sim.start_device().unwrap_err();
    assert_eq!(err.status(), Some(STATUS_NOT_SUPPORTED));
    let traces = rig.sim.trace_lines();
    assert!(
        traces
            .iter()
            .any(|l| l.contains("VIRTIO_F_ACCESS_PLATFORM") && l.contains("guest-physical")),
        "no trace line names the reason: {traces:?}"
    );
    let device = rig.sim.machine().device();
    assert_eq!(device.status(), 0, "device left reset");
    assert_eq!(
        device.driver_features() & (1 << 33),
        0,
        "ACCESS_PLATFORM never accepted"
    );
    assert_eq!(rig.sim.machine().dma_allocated_bytes(), dma_before);
    assert!(rig.sim.live_mappings().is_empty(), "BARs unmapped");
    rig.assert_clean();

    // The adapter answers as stopped, and starts once the device no longer insists.
    rig.sim
        .machine()
        .device()
        .set_require_access_platform(false);
    rig.sim.start_device().unwrap();
    rig.assert_clean();
}

#[test]
fn after_a_failed_start_the_adapter_answers_as_stopped() {
    let mut rig = Rig::load(&[(1024, 768)]);
    rig.sim.machine().device().set_num_scanouts(0);
    rig.sim.add_device().unwrap();
    assert!(rig.sim.start_device().is_err());
    // A null VidPN is supported by a started adapter; a stopped one has no interface to
    // inspect VidPNs with.
    assert_eq!(
        rig.sim.is_supported_vidpn_raw(ptr::null_mut()).unwrap(),
        (STATUS_DEVICE_NOT_READY, false)
    );
    // The device recovers: the next start works.
    rig.sim.machine().device().set_num_scanouts(1);
    rig.sim.start_device().unwrap();
    assert_eq!(
        rig.sim.is_supported_vidpn_raw(ptr::null_mut()).unwrap(),
        (STATUS_SUCCESS, true)
    );
    rig.assert_clean();
}

fn isr_answers(rig: &Rig) -> Vec<bool> {
    rig.sim
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Isr { claimed, .. } => Some(*claimed),
            _ => None,
        })
        .collect()
}

fn ran_dpc(rig: &Rig) -> bool {
    rig.sim.events().iter().any(|e| matches!(e, Event::Dpc))
}

/// A hot-unplug as Windows handles it for this driver (its caps do not ask for
/// DxgkDdiNotifySurpriseRemoval): the device vanishes, DDIs keep coming until StopDevice and
/// RemoveDevice. The driver notices the all-ones registers at once instead of waiting out its
/// 5 s command timeouts, stops touching the device, and frees everything at StopDevice (an
/// absent device cannot reach memory any more).
#[test]
fn a_hot_unplug_is_noticed_at_once_and_stop_frees_everything() {
    let mut rig = Rig::load(&[(1024, 768)]);
    let dma_before = rig.sim.machine().dma_allocated_bytes();
    rig.sim.boot().unwrap();
    let shape = PointerShape::color(32, 32, &[0xFF; 32 * 32 * 4], (0, 0));
    rig.sim.set_pointer_shape(0, &shape).unwrap();
    rig.sim.set_pointer_position(0, 10, 10, true).unwrap();
    rig.sim
        .present_full(0, &Surface::pattern(1024, 768, 1))
        .unwrap();
    // Windows never sends the notification to a driver whose caps do not ask for it.
    assert_eq!(
        rig.sim
            .query_driver_caps()
            .unwrap()
            .SupportSurpriseRemovalInHibernation,
        0
    );
    assert!(matches!(
        rig.sim.notify_surprise_removal(),
        Err(dxgkrnl_sim::SimError::Contract(_))
    ));

    // The device vanishes. An interrupt still arrives: the ISR byte reads all-ones, which is
    // not ours, and no DPC runs.
    rig.sim.machine().surprise_remove();
    rig.sim.clear_events();
    rig.sim.inject_interrupt(0);
    assert_eq!(isr_answers(&rig), [false]);
    assert!(!ran_dpc(&rig));

    // A present and a pointer shape (whose upload waits for the device) succeed without
    // waiting out a timeout: the driver finds the device gone.
    let before = rig.sim.machine().now_us();
    rig.sim
        .present_full(0, &Surface::pattern(1024, 768, 2))
        .unwrap();
    rig.sim.set_pointer_shape(0, &shape).unwrap();
    let waited = rig.sim.machine().now_us() - before;
    assert!(waited < 100_000, "waited {waited} us for an absent device");
    let accesses = rig.sim.machine().removed_accesses();
    // From then on nothing touches it: presents and pointer succeed, a commit cannot be
    // carried out, a power change does not reach it.
    rig.sim
        .present_full(0, &Surface::pattern(1024, 768, 3))
        .unwrap();
    rig.sim.set_pointer_shape(0, &shape).unwrap();
    rig.sim.set_pointer_position(0, 20, 20, true).unwrap();
    assert_eq!(
        rig.sim.set_mode(0, 800, 600).unwrap_err(),
        dxgkrnl_sim::SimError::Status {
            ddi: "DxgkDdiCommitVidPn",
            status: STATUS_DEVICE_NOT_READY
        }
    );
    rig.sim.set_power(PowerDeviceD3).unwrap();
    assert_eq!(
        rig.sim.machine().removed_accesses(),
        accesses,
        "no register access"
    );

    // The OS tears the adapter down: quickly, and every byte comes back.
    assert_quick_clean_teardown(&mut rig, dma_before, |rig| {
        rig.sim.stop().unwrap();
        rig.sim.remove().unwrap();
    });
}

/// Runs `teardown` and unloads: within 100 ms of (virtual) time, with every DMA byte and
/// mapping given back and no contract broken.
fn assert_quick_clean_teardown(rig: &mut Rig, dma_before: usize, teardown: impl FnOnce(&mut Rig)) {
    let before = rig.sim.machine().now_us();
    teardown(rig);
    rig.sim.unload().unwrap();
    let waited = rig.sim.machine().now_us() - before;
    assert!(waited < 100_000, "teardown waited {waited} us");
    assert_eq!(rig.sim.machine().dma_allocated_bytes(), dma_before);
    assert_eq!(rig.sim.machine().live_mappings(), 0);
    rig.assert_clean();
}

/// The same unplug in the middle of a mode change's commands, without any DDI in between:
/// StopDevice finds the registers all-ones, does not wait, and frees everything.
#[test]
fn a_device_unplugged_before_stop_is_torn_down_without_leaks() {
    let mut rig = Rig::load(&[(1024, 768)]);
    let dma_before = rig.sim.machine().dma_allocated_bytes();
    rig.sim.boot().unwrap();
    assert_quick_clean_teardown(&mut rig, dma_before, |rig| {
        assert!(
            !rig.sim.hot_unplug().unwrap(),
            "no notification for this driver"
        );
    });
}

#[test]
fn a_cursor_backing_the_device_may_still_hold_is_kept_until_the_reset_and_its_id_never_reused() {
    let mut rig = Rig::load(&[(1024, 768)]);
    let dma_before = rig.sim.machine().dma_allocated_bytes();
    // The cursor's ATTACH_BACKING (the second one of the boot, after scanout 0's) and the
    // DETACH_BACKING that undoes it get answers that confirm nothing.
    rig.gpu().fail_nth(
        2,
        CommandType::RESOURCE_ATTACH_BACKING,
        ResponseType::OK_DISPLAY_INFO,
    );
    rig.gpu().fail_next(
        CommandType::RESOURCE_DETACH_BACKING,
        ResponseType::OK_DISPLAY_INFO,
    );
    rig.sim.boot().unwrap();
    assert_eq!(rig.gpu().count(CommandType::RESOURCE_DETACH_BACKING), 1);
    assert_eq!(
        rig.gpu().count(CommandType::RESOURCE_UNREF),
        0,
        "nothing more is sent for a resource whose backing may still be attached"
    );
    // Later framebuffers get other ids: every creation succeeds.
    rig.sim.set_mode(0, 1280, 1024).unwrap();
    rig.sim.set_mode(0, 800, 600).unwrap();
    let creates: Vec<_> = rig
        .gpu()
        .log()
        .filter(|r| r.command == Some(CommandType::RESOURCE_CREATE_2D))
        .map(|r| r.response)
        .collect();
    assert_eq!(creates.len(), 4, "{creates:?}");
    assert!(
        creates.iter().all(|r| *r == Some(ResponseType::OK_NODATA)),
        "{creates:?}"
    );
    // The 64x64 cursor image is kept while the device runs: the 1024x768 framebuffer, the
    // rings and request buffers, and the image.
    let running = rig.sim.machine().dma_allocated_bytes();
    rig.sim.stop().unwrap();
    // StopDevice resets the device: from then on nothing can read the image, and it is freed
    // with the rest.
    rig.sim.remove().unwrap();
    rig.sim.unload().unwrap();
    assert!(running > dma_before + 64 * 64 * 4);
    assert_eq!(rig.sim.machine().dma_allocated_bytes(), dma_before);
    rig.assert_clean();
}
