//! Interrupt and DPC delivery, and the virtual clock of the hosted environment.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::Mutex;

use viogpu_common::gpu::Platform;
use viogpu_common::hal::{DmaRegion, RegisterAccess};
use viogpudo::ddi::*;
use virtio_gpu_model::EVENT_DISPLAY;

use super::*;
use crate::{Bar, Event, Machine};

/// A [`ModelMachine`] whose interrupts come from a script instead of the device.
struct ScriptedMachine {
    inner: ModelMachine,
    script: Mutex<VecDeque<Vec<u32>>>,
    /// Raise this message on every poll (an interrupt storm).
    storm: Mutex<Option<u32>>,
}

impl Machine for ScriptedMachine {
    fn config_space_len(&self) -> u32 {
        self.inner.config_space_len()
    }
    fn config_read(&self, offset: u32, buf: &mut [u8]) -> usize {
        self.inner.config_read(offset, buf)
    }
    fn config_write(&self, offset: u32, data: &[u8]) -> usize {
        self.inner.config_write(offset, data)
    }
    fn bars(&self) -> Vec<Bar> {
        self.inner.bars()
    }
    fn interrupt_mode(&self) -> InterruptMode {
        self.inner.interrupt_mode()
    }
    fn map(&self, phys: u64, len: u64) -> Option<usize> {
        self.inner.map(phys, len)
    }
    fn unmap(&self, address: usize) -> bool {
        self.inner.unmap(address)
    }
    fn mmio_read(&self, address: usize, width: u8) -> u32 {
        self.inner.mmio_read(address, width)
    }
    fn mmio_write(&self, address: usize, width: u8, value: u32) {
        self.inner.mmio_write(address, width, value)
    }
    fn dma_alloc(&self, len: usize) -> Option<DmaRegion> {
        self.inner.dma_alloc(len)
    }
    unsafe fn dma_free(&self, region: DmaRegion) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.dma_free(region) }
    }
    fn dma_allocated_bytes(&self) -> usize {
        self.inner.dma_allocated_bytes()
    }
    fn read_phys(&self, phys: u64, buf: &mut [u8]) -> bool {
        self.inner.read_phys(phys, buf)
    }
    fn take_interrupts(&self) -> Vec<u32> {
        if let Some(m) = *self.storm.lock().unwrap() {
            return vec![m];
        }
        self.script.lock().unwrap().pop_front().unwrap_or_default()
    }
    fn now_us(&self) -> u64 {
        self.inner.now_us()
    }
    fn advance(&self, us: u64) {
        self.inner.advance(us)
    }
}

/// A started simulator whose machine then raises `script` (one entry per poll) or storms.
fn scripted(script: Vec<Vec<u32>>, storm: Option<u32>) -> Sim<ScriptedMachine> {
    let machine = ScriptedMachine {
        inner: machine(InterruptMode::Msix { messages: 3 }),
        script: Mutex::new(VecDeque::new()),
        storm: Mutex::new(None),
    };
    let mut sim = Sim::load(fake_init(), machine).unwrap();
    sim.add_device().unwrap();
    sim.start_device().unwrap();
    sim.machine().script.lock().unwrap().extend(script);
    *sim.machine().storm.lock().unwrap() = storm;
    sim
}

/// Points the device's config-change interrupt at MSI-X vector 0, as a driver does.
fn config_vector_0(sim: &Sim<ModelMachine>) {
    sim.machine().device().bar(4).write_u16(0x10, 0);
}

fn isr_and_dpc(events: Vec<Event>) -> Vec<Event> {
    events
        .into_iter()
        .filter(|e| matches!(e, Event::Isr { .. } | Event::Dpc | Event::QueueDpc { .. }))
        .collect()
}

#[test]
fn a_device_interrupt_runs_the_isr_then_the_dpc_it_queued() {
    let sim = started();
    config_vector_0(&sim);
    sim.machine().device().raise_config_change(EVENT_DISPLAY);
    assert_eq!(sim.interrupt(), 2);
    assert_eq!(fake_log()[2..], ["ISR 0", "DPC"]);
    assert_eq!(
        isr_and_dpc(sim.events()),
        [
            Event::QueueDpc { queued: true },
            Event::Isr {
                message: 0,
                claimed: true
            },
            Event::Dpc,
        ]
    );
    assert_eq!(sim.interrupt(), 0, "nothing left pending");
}

#[test]
fn no_dpc_runs_unless_the_isr_queues_one() {
    FAKE.with(|f| f.borrow_mut().isr_queues_dpc = false);
    let sim = started();
    config_vector_0(&sim);
    sim.machine().device().raise_config_change(EVENT_DISPLAY);
    assert_eq!(sim.interrupt(), 1);
    assert_eq!(fake_log()[2..], ["ISR 0"]);
}

#[test]
fn several_pending_messages_get_one_isr_each_and_one_dpc() {
    let sim = scripted(vec![vec![1, 2]], None);
    assert_eq!(sim.interrupt(), 3);
    assert_eq!(fake_log()[2..], ["ISR 1", "ISR 2", "DPC"]);
    let events = isr_and_dpc(sim.events());
    assert_eq!(
        events,
        [
            Event::QueueDpc { queued: true },
            Event::Isr {
                message: 1,
                claimed: true
            },
            Event::QueueDpc { queued: false },
            Event::Isr {
                message: 2,
                claimed: true
            },
            Event::Dpc,
        ]
    );
}

#[test]
fn interrupts_raised_by_the_dpc_are_delivered_in_the_same_go() {
    // Round 1: message 1; round 2 (as if the DPC kicked the device): message 2.
    let sim = scripted(vec![vec![1], vec![2]], None);
    assert_eq!(sim.interrupt(), 4);
    assert_eq!(fake_log()[2..], ["ISR 1", "DPC", "ISR 2", "DPC"]);
}

#[test]
fn an_interrupt_storm_is_cut_off_and_reported() {
    let sim = scripted(Vec::new(), Some(0));
    let calls = sim.interrupt();
    assert_eq!(calls, 2000, "1000 rounds of ISR + DPC");
    assert!(sim.errors().iter().any(|e| e.contains("interrupt storm")));
}

#[test]
fn line_interrupts_arrive_as_message_zero() {
    let sim = started_with(InterruptMode::Line, SimOptions::default());
    assert!(!sim.machine().device().msix_enabled());
    sim.machine().device().raise_config_change(EVENT_DISPLAY);
    sim.machine().device().raise_config_change(EVENT_DISPLAY);
    assert_eq!(sim.interrupt(), 2, "one level-triggered ISR, one DPC");
    assert_eq!(fake_log()[2..], ["ISR 0", "DPC"]);
    // The fake ISR claims without reading the device's ISR status, so the level-triggered
    // line stays asserted: an interrupt storm on Windows, a violation here.
    let violations = sim.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].contains("left the device's level-triggered interrupt asserted"));
}

#[test]
fn msix_interrupts_without_a_vector_are_dropped() {
    let sim = started();
    assert!(sim.machine().device().msix_enabled(), "granted by the bus");
    sim.machine().device().raise_config_change(EVENT_DISPLAY);
    assert_eq!(sim.interrupt(), 0);
    assert_eq!(sim.machine().dropped_interrupts(), 1);
}

#[test]
fn interrupts_before_start_are_not_delivered() {
    let mut sim = Sim::load(fake_init(), machine(InterruptMode::Line)).unwrap();
    sim.add_device().unwrap();
    sim.machine().device().raise_config_change(EVENT_DISPLAY);
    assert_eq!(sim.interrupt(), 0);
    assert!(sim.events().contains(&Event::DroppedInterrupts(1)));
    assert_eq!(fake_log(), ["AddDevice"]);
}

#[test]
fn waiting_inside_a_ddi_lets_the_interrupt_preempt_the_driver() {
    let mut sim = started();
    config_vector_0(&sim);
    let device = sim.machine().device().clone();
    set_hook(move || {
        device.raise_config_change(EVENT_DISPLAY);
        let platform = viogpudo::os::OsPlatform::current().unwrap();
        let before = platform.now_us();
        platform.wait_for_completion(1_000_000);
        log(format!("waited {}", platform.now_us() - before));
    });
    sim.query_driver_caps().unwrap();
    assert_eq!(
        fake_log()[2..],
        [
            "QueryAdapterInfo begin",
            "ISR 0",
            "DPC",
            "waited 1",
            "QueryAdapterInfo end"
        ]
    );
}

#[test]
fn the_virtual_clock_jumps_by_the_whole_timeout_when_nothing_happens() {
    let sim = started();
    let platform = viogpudo::os::OsPlatform::current().unwrap();
    let t0 = platform.now_us();
    platform.wait_for_completion(250_000);
    assert_eq!(platform.now_us() - t0, 250_000);
    platform.stall_us(7);
    assert_eq!(platform.now_us() - t0, 250_007);
    // A pending signal ends the next wait at once, without time passing.
    platform.signal_completion();
    platform.wait_for_completion(1_000);
    assert_eq!(platform.now_us() - t0, 250_007);
    platform.wait_for_completion(1_000);
    assert_eq!(platform.now_us() - t0, 251_007, "the signal was used up");
    assert_eq!(sim.advance(5), 0);
    assert_eq!(sim.machine().now_us() - t0, 251_012);
}

/// A KSYNCHRONIZE_ROUTINE that raises an interrupt and stalls (at DIRQL it may not wait): the
/// ISR must not run inside.
unsafe extern "system" fn synchronized(context: *mut c_void) -> BOOLEAN {
    // SAFETY: the test passes a pointer to a live VirtioGpuPci.
    let device = unsafe { &*context.cast::<virtio_gpu_model::VirtioGpuPci>() };
    device.raise_config_change(EVENT_DISPLAY);
    viogpudo::os::OsPlatform::current().unwrap().stall_us(10);
    log("synchronized");
    0x5A
}

#[test]
fn synchronize_execution_masks_the_interrupt_while_the_routine_runs() {
    let sim = started();
    config_vector_0(&sim);
    let i = fake_interface();
    let device = sim.machine().device().clone();
    let mut ret = 0u8;
    // SAFETY: the simulator's callback; the context outlives the call.
    let status = unsafe {
        i.DxgkCbSynchronizeExecution.unwrap()(
            i.DeviceHandle,
            Some(synchronized),
            (&device as *const virtio_gpu_model::VirtioGpuPci)
                .cast_mut()
                .cast(),
            0,
            &mut ret,
        )
    };
    assert_eq!((status, ret), (STATUS_SUCCESS, 0x5A));
    assert_eq!(fake_log()[2..], ["synchronized"]);
    assert_eq!(sim.interrupt(), 2, "delivered once the routine returned");
    assert_eq!(fake_log()[2..], ["synchronized", "ISR 0", "DPC"]);
}

#[test]
fn kernel_services_above_their_documented_irql_are_violations() {
    use viogpudo::os::hosted::irql;
    let sim = started();
    let platform = viogpudo::os::OsPlatform::current().unwrap();
    {
        let _dpc = irql::run_at(irql::DISPATCH_LEVEL);
        platform.wait_for_completion(10);
        let _ = viogpudo::os::registry_dword("HardwareCursor");
    }
    {
        let _isr = irql::run_at(irql::DIRQL);
        platform.signal_completion();
    }
    let lock = viogpudo::os::PassiveMutex::new("a test lock", ());
    {
        let _dpc = irql::run_at(irql::DISPATCH_LEVEL);
        drop(lock.lock());
    }
    let violations = sim.take_violations();
    assert_eq!(violations.len(), 4, "{violations:?}");
    assert!(
        violations[0].contains("KeWaitForSingleObject"),
        "{violations:?}"
    );
    assert!(
        violations[1].contains("RtlQueryRegistryValues"),
        "{violations:?}"
    );
    assert!(violations[2].contains("KeSetEvent"), "{violations:?}");
    assert!(violations[3].contains("a test lock"), "{violations:?}");
    // At their documented levels the same calls are fine.
    platform.wait_for_completion(10);
    drop(lock.lock());
    assert_eq!(sim.take_violations(), Vec::<String>::new());
}

#[test]
#[should_panic(expected = "taken recursively")]
fn a_passive_lock_taken_twice_by_one_thread_fails_the_test() {
    let _sim = started();
    let lock = viogpudo::os::PassiveMutex::new("a test lock", ());
    let _held = lock.lock();
    let _again = lock.lock();
}
