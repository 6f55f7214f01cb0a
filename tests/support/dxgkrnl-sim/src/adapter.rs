//! The simulator's per-adapter state: what `DXGKRNL_INTERFACE::DeviceHandle` points to.
//!
//! It is shared by the [`Sim`](crate::Sim) that drives the DDIs, the `extern "system"`
//! callbacks the driver calls back into, and the hosted OS environment. Because the driver
//! calls back while the simulator is inside one of its DDIs (and the environment delivers
//! interrupts while the driver waits inside a DDI), nothing here is locked across a call into
//! the driver: flags are atomics and the record lists are locked only to push or copy.
//!
//! Interrupt delivery lives here too: [`AdapterState::deliver_interrupts`] plays the CPU taking
//! the device's pending interrupts — the driver's `DxgkDdiInterruptRoutine` for each message,
//! then its `DxgkDdiDpcRoutine` if the ISR queued a DPC — and repeats while the DPC's work makes
//! the device raise more.

use std::collections::{BTreeMap, HashMap};
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use viogpudo::ddi::{
    DXGK_CHILD_STATUS, DXGK_DISPLAY_INFORMATION, NTSTATUS, PDXGKDDI_DPC_ROUTINE,
    PDXGKDDI_INTERRUPT_ROUTINE,
};

use viogpudo::os::hosted::irql;

use crate::machine::Machine;
use crate::sync::DdiLocks;

/// Rounds of ISR + DPC one delivery runs before it calls the device an interrupt storm.
const MAX_DELIVERY_ROUNDS: usize = 1000;
/// Trace lines kept (the oldest are dropped).
const MAX_TRACE_LINES: usize = 4096;

/// A child status the driver indicated with `DxgkCbIndicateChildStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildStatus {
    /// `DXGK_CHILD_STATUS::Type` (`StatusConnection` = 1, `StatusRotation` = 2).
    pub kind: i32,
    /// The child.
    pub child_uid: u32,
    /// `HotPlug.Connected` or `Rotation.Angle`.
    pub status: u8,
}

impl From<&DXGK_CHILD_STATUS> for ChildStatus {
    fn from(s: &DXGK_CHILD_STATUS) -> Self {
        Self {
            kind: s.Type.0,
            child_uid: s.ChildUid,
            status: s.Status,
        }
    }
}

/// Something that happened between the simulated OS and the driver, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The simulator called this DDI.
    Ddi(&'static str),
    /// The driver's interrupt routine ran for `message` and said whether it was its interrupt.
    Isr {
        /// The message number (0 for a line interrupt).
        message: u32,
        /// What the routine returned.
        claimed: bool,
    },
    /// The driver's DPC routine ran.
    Dpc,
    /// The driver called `DxgkCbQueueDpc` (`queued` false: a DPC was already pending).
    QueueDpc {
        /// Whether this call queued the DPC.
        queued: bool,
    },
    /// Device interrupts arrived while the interrupt was not connected and were dropped.
    DroppedInterrupts(usize),
    /// The driver indicated a child status.
    ChildStatus(ChildStatus),
    /// The driver mapped device memory.
    Map {
        /// The address returned.
        address: usize,
        /// The physical address mapped.
        phys: u64,
        /// The length mapped.
        len: u32,
    },
    /// The driver unmapped a mapping.
    Unmap {
        /// The address unmapped.
        address: usize,
    },
    /// The driver took over the POST display.
    AcquirePostDisplay,
    /// `DxgkCbNotifyInterrupt`.
    NotifyInterrupt,
    /// `DxgkCbNotifyDpc`.
    NotifyDpc,
    /// The driver reported present progress.
    PresentProgress {
        /// The source.
        source: u32,
        /// `DXGK_PRESENT_DISPLAY_ONLY_PROGRESS_ID`.
        progress: i32,
    },
    /// The driver saved the AVX state (`KeSaveExtendedProcessorState` with `XSTATE_MASK_AVX`)
    /// at this IRQL, to copy with YMM registers.
    AvxStateSaved {
        /// The IRQL of the save (and of its restore).
        irql: u8,
    },
    /// The driver called a callback the simulator does not provide (answered
    /// `STATUS_NOT_IMPLEMENTED`).
    Unexpected(&'static str),
    /// The driver misused a callback (bad handle, unknown mapping, out-of-range access...).
    Error(String),
    /// The driver broke a rule Windows enforces with a bugcheck or a hang: a kernel routine or
    /// callback called above its documented IRQL, a lock taken where it must not be. A
    /// [`Sim`](crate::Sim) that recorded one fails its test when dropped, unless the test
    /// took the violations with [`Sim::take_violations`](crate::Sim::take_violations).
    Violation(String),
}

/// A live `DxgkCbMapMemory` mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// The address the driver got.
    pub address: usize,
    /// The physical address mapped.
    pub phys: u64,
    /// The length mapped.
    pub len: u32,
    /// The caching type asked for.
    pub caching: i32,
}

/// What `DxgkCbAcquirePostDisplayOwnership` answers.
#[derive(Debug, Clone, Copy, Default)]
pub enum PostDisplay {
    /// No firmware framebuffer on this adapter: success with an all-zero
    /// `DXGK_DISPLAY_INFORMATION` (Width 0), as on a secondary or non-POST adapter. The
    /// virtio-gpu-pci device has no boot framebuffer, so this is the default.
    #[default]
    Zeroed,
    /// The call fails with `STATUS_UNSUCCESSFUL` (e.g. after a pre-WDDM 1.2 driver).
    Fail,
    /// A framebuffer left on screen by the firmware or the previous driver.
    Framebuffer(DXGK_DISPLAY_INFORMATION),
}

/// The per-adapter state `DeviceHandle` points to (see the module documentation).
pub struct AdapterState {
    pub(crate) machine: Arc<dyn Machine>,
    pub(crate) isr: PDXGKDDI_INTERRUPT_ROUTINE,
    pub(crate) dpc: PDXGKDDI_DPC_ROUTINE,
    pub(crate) context: AtomicPtr<c_void>,
    /// The interrupt is connected: device interrupts reach the driver.
    pub(crate) connected: AtomicBool,
    pub(crate) dpc_queued: AtomicBool,
    /// Set while interrupts are being delivered (or masked by DxgkCbSynchronizeExecution).
    pub(crate) in_interrupt: AtomicBool,
    /// Set by the driver's `signal()`; a pending signal ends the next wait at once.
    pub(crate) signalled: AtomicBool,
    pub(crate) post_display: PostDisplay,
    /// The CM_RESOURCE_LIST bytes, 8-byte aligned.
    pub(crate) resource_list: Box<[u64]>,
    pub(crate) resource_list_len: usize,
    /// The registry path, UTF-16 without terminator.
    pub(crate) registry_path: Box<[u16]>,
    /// What DXGK_DEVICE_INFO::PhysicalDeviceObject points to (never dereferenced).
    pub(crate) pdo: Box<[u64; 4]>,
    pub(crate) registry: Mutex<HashMap<String, u32>>,
    /// Whether the thread calling an escape holds the privilege the driver asks for.
    pub(crate) caller_trusted: std::sync::atomic::AtomicBool,
    events: Mutex<Vec<Event>>,
    /// Interrupt messages raised by the test, not by the device (see `Sim::inject_interrupt`).
    injected: Mutex<Vec<u32>>,
    mappings: Mutex<BTreeMap<usize, Mapping>>,
    trace: Mutex<Vec<String>>,
    echo_trace: bool,
    /// dxgkrnl's DDI synchronization (`sync.rs`).
    ddi_locks: DdiLocks,
    /// The IRQL SystemDisplayEnable/Write run at: HIGH_LEVEL, as after a crash, or
    /// DISPATCH_LEVEL, which the documentation ("any IRQL") also allows.
    pub(crate) bugcheck_irql: AtomicU8,
    /// What the OS knows of each child's connection: the driver's last
    /// `DxgkCbIndicateChildStatus`, or its last `DxgkDdiQueryChildStatus` answer, whichever
    /// came later (kept across `clear_events`).
    connection: Mutex<BTreeMap<u32, bool>>,
}

impl std::fmt::Debug for AdapterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdapterState")
            .field("context", &self.context)
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AdapterState {
    pub(crate) fn new(
        machine: Arc<dyn Machine>,
        isr: PDXGKDDI_INTERRUPT_ROUTINE,
        dpc: PDXGKDDI_DPC_ROUTINE,
        post_display: PostDisplay,
    ) -> Self {
        let list = crate::resources::build(&machine.bars(), machine.interrupt_mode());
        let resource_list_len = list.len();
        let mut resource_list = vec![0u64; list.len().div_ceil(8)].into_boxed_slice();
        for (word, chunk) in resource_list.iter_mut().zip(list.chunks(8)) {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            *word = u64::from_le_bytes(bytes);
        }
        let path = "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\viogpudo";
        Self {
            machine,
            isr,
            dpc,
            context: AtomicPtr::new(ptr::null_mut()),
            connected: AtomicBool::new(false),
            dpc_queued: AtomicBool::new(false),
            in_interrupt: AtomicBool::new(false),
            signalled: AtomicBool::new(false),
            post_display,
            resource_list,
            resource_list_len,
            registry_path: path.encode_utf16().collect(),
            pdo: Box::new([0; 4]),
            registry: Mutex::new(HashMap::new()),
            caller_trusted: std::sync::atomic::AtomicBool::new(true),
            events: Mutex::new(Vec::new()),
            injected: Mutex::new(Vec::new()),
            mappings: Mutex::new(BTreeMap::new()),
            trace: Mutex::new(Vec::new()),
            echo_trace: std::env::var_os("DXGKRNL_SIM_TRACE").is_some(),
            ddi_locks: DdiLocks::default(),
            bugcheck_irql: AtomicU8::new(irql::HIGH_LEVEL),
            connection: Mutex::new(BTreeMap::new()),
        }
    }

    /// Appends an event.
    pub(crate) fn record(&self, event: Event) {
        irql::heap_not_counted(|| lock(&self.events).push(event));
    }

    /// Notes what the driver said about child `uid`'s connection.
    pub(crate) fn note_connection(&self, uid: u32, connected: bool) {
        lock(&self.connection).insert(uid, connected);
    }

    /// Whether child `uid` has a monitor, as far as the OS knows (`None`: never told).
    pub(crate) fn connection(&self, uid: u32) -> Option<bool> {
        lock(&self.connection).get(&uid).copied()
    }

    /// Records a misuse by the driver.
    pub(crate) fn error(&self, what: String) {
        self.record(Event::Error(what));
    }

    /// Records a broken Windows rule (see [`Event::Violation`]).
    pub(crate) fn violation(&self, what: String) {
        if self.echo_trace {
            eprintln!("dxgkrnl-sim: VIOLATION: {what}");
        }
        self.record(Event::Violation(what));
    }

    /// A copy of every event so far.
    pub(crate) fn events(&self) -> Vec<Event> {
        lock(&self.events).clone()
    }

    /// The violations recorded so far, oldest first.
    pub(crate) fn violations(&self) -> Vec<String> {
        lock(&self.events)
            .iter()
            .filter_map(|e| match e {
                Event::Violation(what) => Some(what.clone()),
                _ => None,
            })
            .collect()
    }

    /// The violations recorded so far, removed from the events (under one lock, so none
    /// recorded meanwhile by another thread is lost).
    pub(crate) fn take_violations(&self) -> Vec<String> {
        let mut events = lock(&self.events);
        let mut taken = Vec::new();
        events.retain(|e| match e {
            Event::Violation(what) => {
                taken.push(what.clone());
                false
            }
            _ => true,
        });
        taken
    }

    /// Forgets the events so far, but for the violations (which fail the test).
    pub(crate) fn clear_events(&self) {
        lock(&self.events).retain(|e| matches!(e, Event::Violation(_)));
    }

    pub(crate) fn add_mapping(&self, m: Mapping) {
        lock(&self.mappings).insert(m.address, m);
    }

    pub(crate) fn remove_mapping(&self, address: usize) -> Option<Mapping> {
        lock(&self.mappings).remove(&address)
    }

    pub(crate) fn mappings(&self) -> Vec<Mapping> {
        lock(&self.mappings).values().copied().collect()
    }

    pub(crate) fn push_trace(&self, line: &str) {
        if self.echo_trace {
            eprintln!("{line}");
        }
        let mut trace = lock(&self.trace);
        if trace.len() >= MAX_TRACE_LINES {
            trace.remove(0);
        }
        trace.push(line.to_owned());
    }

    pub(crate) fn trace_lines(&self) -> Vec<String> {
        lock(&self.trace).clone()
    }

    /// The resource list bytes.
    pub(crate) fn resource_list_bytes(&self) -> Vec<u8> {
        self.resource_list
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .take(self.resource_list_len)
            .collect()
    }

    /// Calls DDI `name` as dxgkrnl does: waits until the DDI's synchronization level lets it
    /// run (`sync.rs`), records it, runs `call` at the DDI's IRQL on this thread, then
    /// delivers the interrupts it left pending. The calling thread must be at PASSIVE_LEVEL
    /// (dxgkrnl's own threads are).
    pub(crate) fn run_ddi<R: 'static>(&self, name: &'static str, call: impl FnOnce() -> R) -> R {
        let level = match name {
            "DxgkDdiSystemDisplayEnable" | "DxgkDdiSystemDisplayWrite" => {
                self.bugcheck_irql.load(Ordering::SeqCst)
            }
            _ => irql::PASSIVE_LEVEL,
        };
        let sync = self.ddi_locks.enter(name);
        self.record(Event::Ddi(name));
        let at = irql::run_at(level);
        let driver = irql::driver_code();
        let r = call();
        drop(driver);
        drop(at);
        self.check_heap_irql(name);
        drop(sync);
        if let Some(&status) = (&r as &dyn std::any::Any).downcast_ref::<NTSTATUS>() {
            self.check_documented(name, status);
        }
        self.deliver_interrupts();
        r
    }

    /// Reports the heap allocations the driver made above DISPATCH_LEVEL during `ddi` (counted
    /// by `IrqlCheckedAllocator` when the test binary installs it): ExAllocatePool2 and
    /// ExFreePoolWithTag need IRQL <= DISPATCH_LEVEL.
    fn check_heap_irql(&self, ddi: &str) {
        let n = irql::take_heap_allocations_above_dispatch();
        if n > 0 {
            self.violation(format!(
                "IRQL: {ddi} used the heap {n} time(s) above DISPATCH_LEVEL \
                 (ExAllocatePool2/ExFreePoolWithTag: at most DISPATCH_LEVEL)"
            ));
        }
    }

    /// Records a violation when `ddi` returned a status outside the set its page documents
    /// (`documented_statuses`).
    pub(crate) fn check_documented(&self, ddi: &'static str, status: NTSTATUS) {
        if let Some(allowed) = documented_statuses(ddi) {
            if !allowed.contains(&status) {
                self.violation(format!(
                    "{ddi} returned {status:#x}, which is not among its documented return codes \
                     {allowed:x?}"
                ));
            }
        }
    }

    /// DxgkDdiSystemDisplayEnable's page: a target without a monitor (as the driver last told
    /// the OS) must be answered STATUS_NOT_SUPPORTED.
    pub(crate) fn check_bugcheck_target(&self, target: u32, status: NTSTATUS) {
        if self.connection(target) == Some(false) && status != viogpudo::ddi::STATUS_NOT_SUPPORTED {
            self.violation(format!(
                "DxgkDdiSystemDisplayEnable for target {target}, which has no monitor, returned \
                 {status:#x}; the page requires STATUS_NOT_SUPPORTED"
            ));
        }
    }

    /// Queues an interrupt on `message` that the device did not raise, for the next delivery.
    pub(crate) fn inject_interrupt(&self, message: u32) {
        lock(&self.injected).push(message);
    }

    /// Delivers the device's pending interrupts (and the DPCs they queue) to the driver, like
    /// a CPU taking them: the ISR at DIRQL, the DPC at DISPATCH_LEVEL. Returns how many ISR and
    /// DPC calls were made. Does nothing when called from inside an interrupt or DPC (they do
    /// not nest on one CPU) or from a thread at DIRQL or above (interrupts are masked there);
    /// a thread at DISPATCH_LEVEL takes the ISRs but leaves the DPC queued.
    pub(crate) fn deliver_interrupts(&self) -> usize {
        // The kernel's interrupt dispatch, not the driver: its heap use is its own (this runs
        // inside the driver's waits too).
        let _sim = irql::sim_code();
        let level = irql::current();
        if level >= irql::DIRQL || self.in_interrupt.swap(true, Ordering::SeqCst) {
            return 0;
        }
        let dpcs_allowed = level < irql::DISPATCH_LEVEL;
        let mut calls = 0;
        let mut rounds = 0;
        loop {
            rounds += 1;
            if rounds > MAX_DELIVERY_ROUNDS {
                self.error(format!(
                    "interrupt storm: still busy after {MAX_DELIVERY_ROUNDS} rounds of ISR + DPC"
                ));
                break;
            }
            let mut messages = self.machine.take_interrupts();
            messages.extend(lock(&self.injected).drain(..));
            let context = self.context.load(Ordering::SeqCst);
            if !self.connected.load(Ordering::SeqCst) || context.is_null() {
                if !messages.is_empty() {
                    self.record(Event::DroppedInterrupts(messages.len()));
                }
                break;
            }
            for &message in &messages {
                let Some(isr) = self.isr else {
                    self.error("interrupt arrived and the driver has no InterruptRoutine".into());
                    break;
                };
                let at = irql::run_at(irql::DIRQL);
                let driver = irql::driver_code();
                // SAFETY: calling the driver's ISR with the context its AddDevice returned, as
                // dxgkrnl does; the driver vouches for the routine's soundness.
                let claimed = unsafe { isr(context, message) } != 0;
                drop(driver);
                drop(at);
                self.check_heap_irql("DxgkDdiInterruptRoutine");
                if self.machine.line_asserted() {
                    // A level-triggered line the ISR left asserted fires again at once: an
                    // interrupt storm, which Windows ends by disabling the line.
                    self.violation(format!(
                        "DxgkDdiInterruptRoutine returned {} and left the device's \
                         level-triggered interrupt asserted (its ISR status was not read)",
                        if claimed { "TRUE" } else { "FALSE" }
                    ));
                }
                self.record(Event::Isr { message, claimed });
                calls += 1;
            }
            let dpc_ran = if dpcs_allowed && self.dpc_queued.swap(false, Ordering::SeqCst) {
                if let Some(dpc) = self.dpc {
                    self.record(Event::Dpc);
                    let at = irql::run_at(irql::DISPATCH_LEVEL);
                    let driver = irql::driver_code();
                    // SAFETY: as for the ISR: the driver's DPC with its own context.
                    unsafe { dpc(context) };
                    drop(driver);
                    drop(at);
                    calls += 1;
                    true
                } else {
                    self.error("a DPC was queued and the driver has no DpcRoutine".into());
                    false
                }
            } else {
                false
            };
            if messages.is_empty() && !dpc_ran {
                break;
            }
        }
        self.in_interrupt.store(false, Ordering::SeqCst);
        calls
    }
}

/// The return codes a DDI's page documents (and, where a DDI page lists codes and Microsoft's
/// KMDOD sample returns another for a case the page does not cover, that code too), for the
/// DDIs whose pages give a closed set. `None`: not checked.
pub(crate) fn documented_statuses(ddi: &str) -> Option<&'static [NTSTATUS]> {
    use viogpudo::ddi::*;
    use viogpudo::thunks::{STATUS_ILLEGAL_INSTRUCTION, STATUS_PRIVILEGED_INSTRUCTION};
    Some(match ddi {
        // DxgkDdiQueryAdapterInfo page; STATUS_NOT_SUPPORTED for a type the driver does not
        // know is what the KMDOD sample answers.
        "DxgkDdiQueryAdapterInfo" => &[
            STATUS_SUCCESS,
            STATUS_INVALID_PARAMETER,
            STATUS_NO_MEMORY,
            STATUS_GRAPHICS_DRIVER_MISMATCH,
            STATUS_NOT_SUPPORTED,
        ],
        // DxgkDdiEscape page.
        "DxgkDdiEscape" => &[
            STATUS_SUCCESS,
            STATUS_INVALID_PARAMETER,
            STATUS_NO_MEMORY,
            STATUS_PRIVILEGED_INSTRUCTION,
            STATUS_ILLEGAL_INSTRUCTION,
            STATUS_GRAPHICS_DRIVER_MISMATCH,
        ],
        // DxgkDdiSetPointerShape page: STATUS_SUCCESS, STATUS_NO_MEMORY. The KMDOD sample
        // also answers STATUS_INVALID_PARAMETER (a malformed shape) and
        // STATUS_NOT_IMPLEMENTED (no hardware pointer).
        "DxgkDdiSetPointerShape" => &[
            STATUS_SUCCESS,
            STATUS_NO_MEMORY,
            STATUS_INVALID_PARAMETER,
            STATUS_NOT_IMPLEMENTED,
        ],
        // DxgkDdiRecommendMonitorModes page: STATUS_SUCCESS, STATUS_NO_MEMORY, and the error
        // codes of the monitor source mode set interface passed through.
        "DxgkDdiRecommendMonitorModes" => &[
            STATUS_SUCCESS,
            STATUS_NO_MEMORY,
            STATUS_INVALID_PARAMETER,
            STATUS_GRAPHICS_INVALID_MONITOR_SOURCEMODESET,
            STATUS_GRAPHICS_INVALID_MONITOR_SOURCE_MODE,
            STATUS_GRAPHICS_MODE_ID_MUST_BE_UNIQUE,
        ],
        // DxgkDdiUpdateActiveVidPnPresentPath page (and STATUS_NO_MEMORY, which reprogramming
        // a path may meet).
        "DxgkDdiUpdateActiveVidPnPresentPath" => &[
            STATUS_SUCCESS,
            STATUS_GRAPHICS_PATH_NOT_IN_TOPOLOGY,
            STATUS_GRAPHICS_PATH_CONTENT_GEOMETRY_TRANSFORMATION_NOT_SUPPORTED,
            STATUS_NO_MEMORY,
        ],
        // DxgkDdiControlInterrupt page: any type but DXGK_INTERRUPT_CRTC_VSYNC is
        // STATUS_NOT_IMPLEMENTED (checked per type by `Sim::control_interrupt`).
        "DxgkDdiControlInterrupt" => &[STATUS_SUCCESS, STATUS_NOT_IMPLEMENTED],
        _ => return None,
    })
}
