//! The hosted OS environment of the simulated machine: the driver's `os::hosted` backend calls
//! this for DMA memory, register access, time, waiting, registry values and the probing and
//! locking of user-mode memory ([`crate::user_memory`]).
//!
//! Waiting is where the simulated device gets to interrupt the driver. The device model does
//! its work synchronously when the driver rings a doorbell, so by the time the driver waits its
//! interrupts are already pending: `wait` delivers them (ISR, then DPC) on the waiting thread,
//! exactly as an interrupt preempts a waiting thread on Windows, and returns after a token
//! microsecond. When nothing is pending the whole timeout passes on the machine's clock (a
//! virtual clock jumps, so timeout paths cost no real time) and anything that arrived meanwhile
//! is delivered before returning.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use viogpu_common::hal::DmaRegion;
use viogpudo::ddi::NTSTATUS;
use viogpudo::os::hosted::{irql, HostEnvironment};
use viogpudo::os::STATUS_ACCESS_VIOLATION;

use crate::adapter::{AdapterState, Event};
use crate::user_memory::{self, ProbeError};

/// The [`HostEnvironment`] of one simulated adapter.
#[derive(Debug)]
pub struct SimEnv {
    adapter: Arc<AdapterState>,
}

impl SimEnv {
    pub(crate) fn new(adapter: Arc<AdapterState>) -> Self {
        Self { adapter }
    }
}

// The machine and the kernel behind these services are not the driver: their own heap use
// is not the driver's, so it is left out of the heap IRQL check (`irql::heap_not_counted`).
impl HostEnvironment for SimEnv {
    fn dma_alloc(&self, len: usize) -> Option<DmaRegion> {
        irql::heap_not_counted(|| self.adapter.machine.dma_alloc(len))
    }

    unsafe fn dma_free(&self, region: DmaRegion) {
        // SAFETY: the caller keeps Hal::dma_free's contract, which is the machine's.
        irql::heap_not_counted(|| unsafe { self.adapter.machine.dma_free(region) })
    }

    fn mmio_read(&self, address: usize, width: u8) -> u32 {
        irql::heap_not_counted(|| self.adapter.machine.mmio_read(address, width))
    }

    fn mmio_write(&self, address: usize, width: u8, value: u32) {
        irql::heap_not_counted(|| self.adapter.machine.mmio_write(address, width, value));
        // A register write can make the device raise an interrupt (a doorbell answered at
        // once, DRIVER_OK): the CPU takes it now, whatever the driver is in the middle of.
        self.adapter.deliver_interrupts();
    }

    fn now_us(&self) -> u64 {
        self.adapter.machine.now_us()
    }

    fn wait(&self, timeout_us: u64) {
        let _sim = irql::sim_code();
        let machine = &self.adapter.machine;
        if self.adapter.signalled.swap(false, Ordering::SeqCst) {
            return;
        }
        if self.adapter.deliver_interrupts() > 0 {
            // Whatever the DPC signalled was for this wait.
            self.adapter.signalled.store(false, Ordering::SeqCst);
            irql::heap_not_counted(|| machine.advance(timeout_us.min(1)));
            return;
        }
        irql::heap_not_counted(|| machine.advance(timeout_us));
        if self.adapter.deliver_interrupts() > 0 {
            self.adapter.signalled.store(false, Ordering::SeqCst);
        }
    }

    fn is_user_address(&self, address: usize) -> bool {
        irql::heap_not_counted(|| user_memory::is_user_address(address))
    }

    fn probe_and_lock_read(&self, address: usize, len: usize) -> Result<(), NTSTATUS> {
        match irql::heap_not_counted(|| user_memory::probe_and_lock(address, len)) {
            Ok(()) => Ok(()),
            Err(ProbeError::Fault) => Err(STATUS_ACCESS_VIOLATION),
            Err(ProbeError::OtherThread) => {
                self.adapter.violation(format!(
                    "MmProbeAndLockPages of user address {address:#x} outside the thread \
                     (process context) of the DDI that passed it"
                ));
                Err(STATUS_ACCESS_VIOLATION)
            }
        }
    }

    fn unlock_pages(&self, address: usize, len: usize) {
        if let Err(what) = irql::heap_not_counted(|| user_memory::unlock(address, len)) {
            self.adapter.violation(what);
        }
    }

    fn signal(&self) {
        self.adapter.signalled.store(true, Ordering::SeqCst);
    }

    fn caller_is_trusted(&self) -> bool {
        self.adapter
            .caller_trusted
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    fn registry_dword(&self, name: &str) -> Option<u32> {
        let _sim = irql::sim_code();
        self.adapter
            .registry
            .lock()
            .ok()
            .and_then(|r| r.get(name).copied())
    }

    fn trace(&self, line: &str) {
        irql::heap_not_counted(|| self.adapter.push_trace(line));
    }

    fn rule_broken(&self, what: &str) {
        irql::heap_not_counted(|| self.adapter.violation(what.to_owned()));
    }

    fn avx_state_saved(&self, irql: irql::Irql) {
        irql::heap_not_counted(|| self.adapter.record(Event::AvxStateSaved { irql }));
    }
}
