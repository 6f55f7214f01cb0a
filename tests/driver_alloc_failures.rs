//! The heap-failure sweep (issue 12, rule 11): the driver never allocates infallibly.
//!
//! For N = 0, 1, 2, ... the N-th heap allocation the driver's own code makes (the simulator's
//! and the device model's are left out: `irql::sim_code`) fails, as ExAllocatePool2 returns
//! NULL when pool runs out, during boot (AddDevice + StartDevice), during a D3 -> D0 power
//! cycle, and during a display-info refresh after a display-change event, until the operation
//! runs without reaching the N-th allocation. A driver that still has an infallible
//! allocation (`Box::new`, `Vec::push` without `try_reserve`, `to_vec`, `collect`, ...) on
//! such a path calls `handle_alloc_error`, which aborts this test process (a bugcheck on
//! Windows): the sweep finishing at all is the proof. Each run must also end with a
//! documented status or a graceful outcome, no broken Windows rule, and nothing leaked (DMA
//! memory, BAR mappings, the driver's heap after RemoveDevice).
#![allow(clippy::unwrap_used)]

mod sim_support;

use dxgkrnl_sim::Machine;
use sim_support::Rig;
use viogpudo::ddi::*;
use viogpudo::os::hosted::irql;

/// No operation here makes anywhere near this many allocations; reaching it means the
/// sweep never ends (a failure that is never delivered).
const MAX_SWEEP: u64 = 5_000;

/// The displays of every run: two heads, both connected (EDIDs, mode lists, two framebuffers).
const DISPLAYS: [(u32, u32); 2] = [(1024, 768), (800, 600)];

/// Runs `op` with the `n`-th driver allocation failing; true when that failure was delivered.
fn with_failure_at<R>(n: u64, op: impl FnOnce() -> R) -> (R, bool) {
    irql::fail_driver_allocation_after(Some(n));
    let r = op();
    (r, irql::take_injected_failure())
}

/// A failed heap allocation ends a DDI that cannot go on with one of these.
fn is_no_memory(status: NTSTATUS) -> bool {
    status == STATUS_NO_MEMORY || status == STATUS_INSUFFICIENT_RESOURCES
}

/// Stops (when started) and removes the adapter, then checks that nothing is left: no DMA
/// memory, no mapping, the device reset, and the driver's heap back where it was before
/// AddDevice.
fn remove_and_check_nothing_leaked(mut rig: Rig, heap_before: i64, started: bool, n: u64) {
    if started {
        rig.sim.stop().unwrap();
    }
    rig.sim.remove().unwrap();
    assert_eq!(
        rig.sim.machine().dma_allocated_bytes(),
        0,
        "N={n}: DMA memory"
    );
    assert!(rig.sim.live_mappings().is_empty(), "N={n}: BAR mappings");
    assert_eq!(
        rig.sim.machine().device().status(),
        0,
        "N={n}: device reset"
    );
    assert_eq!(
        irql::driver_heap_bytes(),
        heap_before,
        "N={n}: driver heap after RemoveDevice"
    );
    rig.assert_clean();
}

#[test]
fn boot_survives_each_failed_allocation() {
    let mut completed = false;
    for n in 0..MAX_SWEEP {
        let mut rig = Rig::load(&DISPLAYS);
        let heap_before = irql::driver_heap_bytes();
        let ((added, started), hit) = with_failure_at(n, || {
            let added = rig.sim.add_device();
            let started = added.is_ok().then(|| rig.sim.start_device());
            (added, started)
        });
        match (&added, &started) {
            (Err(e), _) => {
                assert!(
                    hit,
                    "N={n}: AddDevice failed without a failed allocation: {e:?}"
                );
                assert_eq!(e.status(), Some(STATUS_NO_MEMORY), "N={n}: AddDevice");
                assert_eq!(irql::driver_heap_bytes(), heap_before, "N={n}: heap");
                rig.assert_clean();
                continue;
            }
            (Ok(()), Some(Err(e))) => {
                assert!(
                    hit,
                    "N={n}: StartDevice failed without a failed allocation: {e:?}"
                );
                let status = e.status().unwrap_or(STATUS_SUCCESS);
                assert!(
                    is_no_memory(status),
                    "N={n}: StartDevice failed with {status:#x}"
                );
            }
            (Ok(()), _) => {}
        }
        let started = matches!(started, Some(Ok(())));
        if started {
            // A failure the driver absorbed (an EDID it could not keep, say) still leaves a
            // working adapter.
            assert!(rig.sim.source_count() >= 1, "N={n}");
        }
        remove_and_check_nothing_leaked(rig, heap_before, started, n);
        if !hit {
            completed = true;
            eprintln!("boot: {n} driver allocations, each failed once");
            break;
        }
    }
    assert!(completed, "the sweep never ran out of allocations to fail");
}

#[test]
fn a_power_cycle_survives_each_failed_allocation() {
    let mut completed = false;
    for n in 0..MAX_SWEEP {
        let mut rig = Rig::load(&DISPLAYS);
        let heap_before = irql::driver_heap_bytes();
        rig.sim.boot().unwrap();
        // SetPowerState must not fail (the simulator records a violation if it does), so
        // both transitions succeed whatever the heap does.
        let (result, hit) = with_failure_at(n, || {
            rig.sim.set_power(PowerDeviceD3)?;
            rig.sim.set_power(PowerDeviceD0)
        });
        result.unwrap_or_else(|e| panic!("N={n}: power cycle: {e:?}"));
        // Whatever the failure cost, the next cycle brings the adapter back.
        rig.sim.set_power(PowerDeviceD3).unwrap();
        rig.sim.set_power(PowerDeviceD0).unwrap();
        assert!(rig.screen(0).width > 0, "N={n}: scanout 0 shows nothing");
        remove_and_check_nothing_leaked(rig, heap_before, true, n);
        if !hit {
            completed = true;
            eprintln!("power cycle: {n} driver allocations, each failed once");
            break;
        }
    }
    assert!(completed, "the sweep never ran out of allocations to fail");
}

#[test]
fn a_display_refresh_survives_each_failed_allocation() {
    let mut completed = false;
    for n in 0..MAX_SWEEP {
        let mut rig = Rig::load(&DISPLAYS);
        let heap_before = irql::driver_heap_bytes();
        rig.sim.boot().unwrap();
        let (status, hit) = with_failure_at(n, || {
            // The event (ISR, DPC posting GET_DISPLAY_INFO, the DPC that reads the answer),
            // then the OS asks: the driver re-reads display info and EDIDs at PASSIVE_LEVEL.
            rig.display_change(0, 1280, 800, true);
            let mut child = DXGK_CHILD_STATUS {
                Type: StatusConnection,
                ChildUid: 0,
                Status: 0,
            };
            rig.sim.query_child_status_raw(&mut child)
        });
        let status = status.unwrap();
        assert!(
            status == STATUS_SUCCESS || is_no_memory(status),
            "N={n}: QueryChildStatus {status:#x}"
        );
        // The refresh happens again on the next query when it could not complete.
        let child = rig.sim.refresh_child(0).unwrap();
        assert!(child.connected, "N={n}");
        remove_and_check_nothing_leaked(rig, heap_before, true, n);
        if !hit {
            completed = true;
            eprintln!("display refresh: {n} driver allocations, each failed once");
            break;
        }
    }
    assert!(completed, "the sweep never ran out of allocations to fail");
}
