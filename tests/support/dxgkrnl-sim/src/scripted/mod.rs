//! Scenarios written by bytes (for the fuzz targets, and for their regression tests, which
//! replay an input): the real driver on a [`ModelMachine`] whose device misbehaves as the
//! input says while the OS drives the driver through boot, mode changes, presents, pointer
//! updates, power cycles and stop.
//!
//! [`run_device_script`] reads the input as a small program. Device steps arm the model's
//! fault hooks: failed commands, broken used-ring entries (lengths, ids, duplicates),
//! response words overwritten (header types, display-info rectangles, EDID sizes), EDID
//! blobs, display-change events and raw `events_read` bits, a changed `num_scanouts`,
//! completions held back and released late (or never), spurious interrupts, time passing.
//! OS steps call the DDIs. Whatever the input, every step may fail, but these must hold,
//! and a broken one panics (the fuzzer's crash):
//! - no panic inside the driver, no DDI contract broken (`SimError::Contract`);
//! - no memory freed while the device could still use it (rings, requests it has not
//!   completed, resource backing: `ModelMachine::device_memory_freed`), no request made
//!   available again while the device holds it (`GpuBackend::reused_while_held`);
//! - after StopDevice and RemoveDevice: no DMA memory and no mapping left;
//! - no register access outside a mapping, no callback misuse, no broken Windows rule.
//!
//! The clock is virtual, so a command the device never answers times out at once.
//!
//! [`run_os_script`] (module `os`) is the other side: a healthy device, and present and VidPN
//! arguments written by the input, judged against an independent reading of the DDI rules
//! and a reference picture.

mod os;

pub use os::{run_os_script, OsScriptSummary};

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use viogpu_common::protocol::{CommandType, ResponseType};
use viogpudo::ddi::*;
use virtio_gpu_model::gpu::{GpuBackend, GpuConfig, PreferredDisplay};
use virtio_gpu_model::pci::ModelConfig;
use virtio_gpu_model::testbed::SharedBackend;
use virtio_gpu_model::{Corruption, EdidFault, EVENT_DISPLAY};

use crate::{
    Machine, ModelMachine, ModelMachineConfig, PointerShape, Sim, SimError, SimOptions, Surface,
};

/// RAM of a scripted machine: room for two 1024x768 sources and their copies, small enough
/// that a device asking for a huge mode makes the driver's allocations fail quickly.
const RAM: usize = 96 << 20;

/// Longest program read from one input.
const MAX_STEPS: usize = 48;

/// Display sizes the device and the OS pick from: small ones keep an input fast (the
/// driver's fallback mode, 1024x768, comes without being picked).
const SIZES: [(u32, u32); 6] = [
    (640, 480),
    (800, 600),
    (640, 400),
    (320, 240),
    (720, 400),
    (0, 0),
];

/// Control commands a failure can target.
const COMMANDS: [CommandType; 9] = [
    CommandType::GET_DISPLAY_INFO,
    CommandType::GET_EDID,
    CommandType::RESOURCE_CREATE_2D,
    CommandType::RESOURCE_UNREF,
    CommandType::RESOURCE_ATTACH_BACKING,
    CommandType::RESOURCE_DETACH_BACKING,
    CommandType::SET_SCANOUT,
    CommandType::TRANSFER_TO_HOST_2D,
    CommandType::RESOURCE_FLUSH,
];

/// Error answers a failure can give.
const ERRORS: [ResponseType; 6] = [
    ResponseType::ERR_UNSPEC,
    ResponseType::ERR_OUT_OF_MEMORY,
    ResponseType::ERR_INVALID_SCANOUT_ID,
    ResponseType::ERR_INVALID_RESOURCE_ID,
    ResponseType::ERR_INVALID_PARAMETER,
    ResponseType::OK_NODATA,
];

/// Reads the input: numbers from its bytes, zeros once it is used up.
pub(crate) struct Input<'a> {
    pub(crate) data: &'a [u8],
}

impl Input<'_> {
    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub(crate) fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head.to_vec()
    }

    /// One of `items`, chosen by the next byte.
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[usize::from(self.u8()) % items.len()]
    }
}

fn lock(gpu: &Mutex<GpuBackend>) -> MutexGuard<'_, GpuBackend> {
    gpu.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The machine of one scripted run.
pub(crate) struct Run {
    pub(crate) sim: Sim<ModelMachine>,
    gpu: Arc<Mutex<GpuBackend>>,
    scanouts: u32,
    /// The device offers blob resources.
    blob: bool,
}

impl Run {
    /// A machine with `displays`, whose device offers blob resources when `blob`.
    pub(crate) fn new(displays: &[PreferredDisplay], blob: bool) -> Self {
        let scanouts = displays.len() as u32;
        let gpu = Arc::new(Mutex::new(GpuBackend::new(GpuConfig {
            num_scanouts: scanouts,
            displays: displays.to_vec(),
            blob,
            ..GpuConfig::default()
        })));
        let device = ModelConfig {
            num_scanouts: scanouts,
            ..ModelConfig::default()
        };
        let config = ModelMachineConfig {
            ram_size: RAM,
            device: if blob { device.with_blob() } else { device },
            ..ModelMachineConfig::default()
        };
        let machine = ModelMachine::new(config, Box::new(SharedBackend(Arc::clone(&gpu))))
            .unwrap_or_else(|e| panic!("scripted machine: {e}"));
        let sim = Sim::load_with(
            viogpudo::entry::initialization_data(),
            machine,
            SimOptions::default(),
        )
        .unwrap_or_else(|e| panic!("loading the driver: {e}"));
        Self {
            sim,
            gpu,
            scanouts,
            blob,
        }
    }

    pub(crate) fn gpu(&self) -> MutexGuard<'_, GpuBackend> {
        lock(&self.gpu)
    }

    /// Completes what the device held on `queue`, with the interrupt it deserves, delivered.
    fn release(&self, queue: u16) {
        let gpu = Arc::clone(&self.gpu);
        self.sim
            .machine()
            .device()
            .service_queue(queue, move |_, q, mem| {
                let mut gpu = lock(&gpu);
                gpu.hold_queue_completions(queue, false);
                gpu.complete_held(queue, q, mem);
            });
        self.sim.interrupt();
    }

    /// One device step: arms what the device does next.
    fn device_step(&mut self, op: u8, input: &mut Input) {
        match op % 10 {
            0 => {
                let n = u32::from(input.u8() % 4) + 1;
                let command = input.pick(&COMMANDS);
                let error = input.pick(&ERRORS);
                // A device that answers a detach with OK, or with QEMU's "nothing to detach"
                // (`gpu::detach_confirmed`), and keeps the pages cannot be told from an honest
                // one: the driver trusts those answers, so such lies are not scripted. On a
                // blob device the same holds for UNREF, which is how a blob gives its pages
                // back (OK, or "no such resource").
                let detach = command == CommandType::RESOURCE_DETACH_BACKING;
                let nothing_to_detach = error == ResponseType::OK_NODATA
                    || error == ResponseType::ERR_UNSPEC
                    || error == ResponseType::ERR_INVALID_RESOURCE_ID;
                let unref = command == CommandType::RESOURCE_UNREF && self.blob;
                let unref_done = error == ResponseType::OK_NODATA
                    || error == ResponseType::ERR_INVALID_RESOURCE_ID;
                let undetectable_lie = (detach && nothing_to_detach) || (unref && unref_done);
                if !undetectable_lie {
                    self.gpu().fail_nth(n, command, error);
                }
            }
            1 => {
                let corruption = match input.u8() % 6 {
                    0 => Corruption::UsedLength(input.u32() % 0x500),
                    1 => Corruption::BogusUsedId,
                    2 => Corruption::WrongUsedId(u16::from(input.u8() % 80)),
                    3 => Corruption::ResponseType(
                        input.pick(&[0x1100, 0x1101, 0x1104, 0x1200, 0x1203, 0xdead]),
                    ),
                    4 => Corruption::DuplicateUsed,
                    _ => Corruption::ResponseWord {
                        offset: input.u16() % 1100,
                        value: input.u32(),
                    },
                };
                self.gpu().corrupt_next_response(corruption);
            }
            2 => {
                let queue = u16::from(input.u8() & 1);
                self.gpu().hold_queue_completions(queue, true);
            }
            3 => self.release(u16::from(input.u8() & 1)),
            4 => match input.u8() % 4 {
                0 => self.gpu().set_edid_fault(Some(EdidFault::BaseChecksum)),
                1 => self
                    .gpu()
                    .set_edid_fault(Some(EdidFault::ExtensionChecksum)),
                2 => {
                    let len = usize::from(input.u16() % 400);
                    let blob = input.bytes(len);
                    self.gpu().set_edid_blob(Some(blob));
                }
                _ => {
                    let mut gpu = self.gpu();
                    gpu.set_edid_fault(None);
                    gpu.set_edid_blob(None);
                }
            },
            5 => {
                let scanout = u32::from(input.u8()) % (self.scanouts + 1);
                let (w, h) = input.pick(&SIZES);
                let enabled = input.u8() & 1 != 0;
                self.gpu().set_display(scanout, w, h, enabled);
                self.sim
                    .machine()
                    .device()
                    .raise_config_change(EVENT_DISPLAY);
                self.sim.interrupt();
            }
            6 => {
                let events = input.u32();
                self.sim.machine().device().raise_config_change(events);
                self.sim.interrupt();
            }
            7 => {
                let n = u32::from(input.u8() % 18);
                self.sim.machine().device().set_num_scanouts(n);
            }
            8 => {
                let message = u32::from(input.u8() % 4);
                self.sim.inject_interrupt(message);
            }
            _ => {
                // Up to about 17 s: past every command timeout.
                let us = u64::from(input.u16()) << 8;
                self.sim.advance(us);
            }
        }
    }

    /// One OS step: a DDI sequence; whether it succeeded. Failures are the driver's answer;
    /// only a broken contract is an error.
    fn os_step(&mut self, op: u8, input: &mut Input) -> Result<bool, SimError> {
        // The sources the driver reported at StartDevice (the device's num_scanouts then,
        // which a device step may have changed from the displays configured).
        let sources = self.sim.source_count();
        if sources == 0 {
            return Ok(false);
        }
        let source = u32::from(input.u8()) % sources;
        let result = match op % 7 {
            0 => {
                let (w, h) = input.pick(&SIZES[..5]);
                self.sim.set_mode(source, w, h)
            }
            1 => {
                let Some((w, h, _)) = self.sim.committed_mode(source) else {
                    return Ok(false);
                };
                let surface = Surface::pattern(w, h, u32::from(input.u8()));
                let (x, y) = (i32::from(input.u16()), i32::from(input.u16()));
                let (dx, dy) = (i32::from(input.u8()) * 4, i32::from(input.u8()) * 4);
                let dirty = crate::rect(x, y, x + dx, y + dy);
                if input.u8() & 1 == 0 {
                    self.sim.present_full(source, &surface)
                } else {
                    self.sim.present(source, &surface, &[dirty], &[])
                }
            }
            2 => {
                let side = u32::from(input.u8() % 64) + 1;
                let bgra = input.bytes((side * side * 4) as usize);
                let shape = PointerShape::color(side, side, &bgra, (side / 2, side / 2));
                self.sim.set_pointer_shape(source, &shape)
            }
            3 => {
                let (x, y) = (i32::from(input.u16() as i16), i32::from(input.u16() as i16));
                let visible = input.u8() & 1 != 0;
                self.sim.set_pointer_position(source, x, y, visible)
            }
            4 => self
                .sim
                .set_power(PowerDeviceD3)
                .and_then(|()| self.sim.set_power(PowerDeviceD0)),
            5 => self.sim.refresh_child(source).map(drop),
            _ => {
                let visible = input.u8() & 1 != 0;
                self.sim.set_source_visibility(source, visible)
            }
        };
        match result {
            Err(e @ SimError::Contract(_)) => Err(e),
            other => Ok(other.is_ok()),
        }
    }

    /// The rules checked once the adapter is removed: no mapping left, no callback misuse,
    /// no broken Windows rule.
    pub(crate) fn check_os_rules(&self) {
        assert!(self.sim.live_mappings().is_empty(), "mappings left");
        assert_eq!(self.sim.errors(), Vec::<String>::new(), "callback misuse");
        assert_eq!(self.sim.unexpected_calls(), Vec::<&str>::new());
        let violations = self.sim.take_violations();
        assert!(
            violations.is_empty(),
            "Windows rules broken: {violations:#?}; the driver's trace:\n{}",
            self.sim.trace_lines().join("\n")
        );
    }

    /// The invariants that hold at any moment.
    pub(crate) fn check_device_rules(&self) {
        let machine = self.sim.machine();
        assert_eq!(
            machine.device_memory_freed(),
            0,
            "memory freed while the device could still use it; the driver's trace:\n{}",
            self.sim.trace_lines().join("\n")
        );
        assert_eq!(
            self.gpu().reused_while_held(),
            0,
            "a request made available again while the device held it"
        );
        assert_eq!(
            machine.stray_accesses(),
            0,
            "register access outside a mapping"
        );
    }
}

/// What a scripted run did, for tests that check a seed exercises what it is meant to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScriptSummary {
    /// The boot left the adapter started.
    pub started: bool,
    /// Device steps run (before and after the boot).
    pub device_steps: usize,
    /// OS steps run, and how many of them the driver answered with success.
    pub os_steps: usize,
    /// OS steps that succeeded.
    pub os_steps_ok: usize,
}

/// Runs the device-side scenario `data` describes (see the module documentation) and panics
/// if the driver broke a rule.
pub fn run_device_script(data: &[u8]) -> ScriptSummary {
    run_device_script_on(data, false)
}

/// [`run_device_script`] on a device that offers `VIRTIO_GPU_F_RESOURCE_BLOB`: the driver's
/// framebuffers are guest-memory blobs, so the same faults hit RESOURCE_CREATE_BLOB,
/// SET_SCANOUT_BLOB and flush-only presents.
pub fn run_blob_device_script(data: &[u8]) -> ScriptSummary {
    run_device_script_on(data, true)
}

fn run_device_script_on(data: &[u8], blob: bool) -> ScriptSummary {
    let mut summary = ScriptSummary::default();
    let mut input = Input { data };
    let first = input.u8();
    let scanouts = 1 + usize::from(first & 1);
    let displays: Vec<PreferredDisplay> = (0..scanouts)
        .map(|_| match input.pick(&SIZES) {
            (0, 0) => PreferredDisplay::DISABLED,
            (w, h) => PreferredDisplay::enabled(w, h),
        })
        .collect();
    let mut run = Run::new(&displays, blob);
    let dma_before = run.sim.machine().dma_allocated_bytes();

    // Device faults armed before the boot, then the boot itself.
    for _ in 0..(first >> 1) % 6 {
        let op = input.u8();
        run.device_step(op, &mut input);
        summary.device_steps += 1;
    }
    summary.started = match run.sim.boot() {
        Ok(_) => true,
        Err(SimError::Contract(what)) => panic!("boot broke a DDI contract: {what}"),
        Err(_) => run.sim.phase() == crate::Phase::Started,
    };
    run.check_device_rules();

    if summary.started {
        for _ in 0..MAX_STEPS {
            if input.is_empty() {
                break;
            }
            let op = input.u8();
            if op & 0x80 == 0 {
                run.device_step(op, &mut input);
                summary.device_steps += 1;
            } else {
                summary.os_steps += 1;
                match run.os_step(op, &mut input) {
                    Ok(true) => summary.os_steps_ok += 1,
                    Ok(false) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            run.check_device_rules();
        }
    }

    // Stop and remove with whatever the device still does wrong: nothing may stay behind.
    if run.sim.phase() == crate::Phase::Started {
        if let Err(SimError::Contract(what)) = run.sim.stop() {
            panic!("StopDevice broke a DDI contract: {what}");
        }
    }
    if let Err(SimError::Contract(what)) = run.sim.remove() {
        panic!("RemoveDevice broke a DDI contract: {what}");
    }
    run.check_device_rules();
    assert_eq!(
        run.sim.machine().dma_allocated_bytes(),
        dma_before,
        "DMA memory left after StopDevice and RemoveDevice; the driver's trace:\n{}",
        run.sim.trace_lines().join("\n")
    );
    run.check_os_rules();
    summary
}
