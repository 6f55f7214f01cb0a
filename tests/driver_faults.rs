//! Broken and vanishing devices: a StartDevice that fails leaves a reset device, no memory
//! and a stopped adapter; a surprise-removed device is never touched again.
#![allow(clippy::unwrap_used)]

mod sim_support;

use std::ptr;

use dxgkrnl_sim::Machine;
use sim_support::Rig;
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
