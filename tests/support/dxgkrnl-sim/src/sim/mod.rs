//! [`Sim`]: dxgkrnl's side of one display adapter. It loads a display-only driver from its
//! `KMDDOD_INITIALIZATION_DATA`, and calls its DDIs in the order and with the arguments
//! dxgkrnl uses (see the Microsoft "display-only driver" call sequences): device start and
//! child enumeration here, mode setting in `modeset`, present, pointer and bugcheck output in
//! `display`.
//!
//! Every DDI call is recorded as [`Event::Ddi`] and followed by interrupt delivery (the device
//! may have raised interrupts that the driver did not wait for). A DDI that fails comes back as
//! [`SimError::Status`] with its NTSTATUS; the `*_raw` variants take hand-built argument
//! structures and return the NTSTATUS as is, for bad-input tests: bad sizes, counts, ids and
//! null pointers inside them are fair game (the driver must refuse them), dangling non-null
//! pointers are not (no driver could detect them).

mod display;
mod modeset;
mod threads;

pub use display::{rect, PointerShape, Surface};
pub use modeset::{preferred_mode, FALLBACK_MODE};
pub use threads::{OsThread, ThreadEnv};

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use viogpudo::ddi::*;
use viogpudo::os::hosted;

use crate::adapter::{AdapterState, ChildStatus, Event, Mapping, PostDisplay};
use crate::callbacks;
use crate::env::SimEnv;
use crate::machine::Machine;

/// `DISPLAY_ADAPTER_HW_ID`: the device uid of the adapter itself in `DxgkDdiSetPowerState`.
pub const DISPLAY_ADAPTER_HW_ID: u32 = 0xFFFF_FFFF;
/// `PowerActionNone`.
pub const POWER_ACTION_NONE: POWER_ACTION = POWER_ACTION(0);
/// `PowerActionSleep`.
pub const POWER_ACTION_SLEEP: POWER_ACTION = POWER_ACTION(2);
/// Size of one EDID block as `DxgkDdiQueryDeviceDescriptor` hands them out.
pub const EDID_BLOCK: u32 = 128;

/// Why a simulator step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimError {
    /// The driver's table lacks a DDI the step needs.
    MissingDdi(&'static str),
    /// The table's `Version` is not a display-only version (WIN8 or later).
    BadVersion(u32),
    /// A DDI returned an error status.
    Status {
        /// The DDI.
        ddi: &'static str,
        /// What it returned.
        status: NTSTATUS,
    },
    /// The driver broke the DDI contract (e.g. success with a null context).
    Contract(String),
    /// The step is not valid in the adapter's current phase.
    Phase {
        /// The step.
        step: &'static str,
        /// The phase the adapter is in.
        phase: Phase,
    },
    /// The VidPN manager could not build the VidPN it wanted (e.g. a path to a source the
    /// adapter does not have): the object model's status.
    VidPn {
        /// What the VidPN manager was doing.
        step: &'static str,
        /// What the object model answered.
        status: NTSTATUS,
    },
    /// The driver did not offer a target mode for the pinned source mode.
    ModeNotOffered {
        /// The source (= target).
        source: u32,
        /// Target width looked for.
        width: u32,
        /// Target height looked for.
        height: u32,
    },
    /// `DxgkDdiIsSupportedVidPn` answered FALSE for the VidPN of a mode change.
    VidPnNotSupported,
}

impl SimError {
    /// The NTSTATUS of a failed DDI.
    pub fn status(&self) -> Option<NTSTATUS> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingDdi(name) => write!(f, "the driver does not implement {name}"),
            Self::BadVersion(v) => write!(f, "initialization data version {v:#x} is not KMDOD"),
            Self::Status { ddi, status } => write!(f, "{ddi} failed: {:#010x}", *status as u32),
            Self::Contract(what) => write!(f, "DDI contract broken: {what}"),
            Self::Phase { step, phase } => write!(f, "{step} is not valid while {phase:?}"),
            Self::VidPn { step, status } => {
                write!(f, "VidPN manager: {step} failed: {:#010x}", *status as u32)
            }
            Self::ModeNotOffered {
                source,
                width,
                height,
            } => write!(
                f,
                "no {width}x{height} target mode offered on source {source}"
            ),
            Self::VidPnNotSupported => {
                f.write_str("IsSupportedVidPn said the VidPN is not supported")
            }
        }
    }
}

impl std::error::Error for SimError {}

/// Where the adapter is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The driver is loaded; no device added.
    Loaded,
    /// `DxgkDdiAddDevice` succeeded.
    Added,
    /// `DxgkDdiStartDevice` succeeded.
    Started,
    /// Stopped (`DxgkDdiStopDevice` or the release of the POST display).
    Stopped,
    /// A bugcheck took over the display.
    Crashed,
    /// `DxgkDdiRemoveDevice` ran.
    Removed,
    /// `DxgkDdiUnload` ran.
    Unloaded,
}

/// Options of [`Sim::load_with`].
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// What `DxgkCbAcquirePostDisplayOwnership` answers.
    pub post_display: PostDisplay,
    /// Registry DWORD values of the driver's key.
    pub registry: Vec<(String, u32)>,
}

/// What [`Sim::boot_device`] learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceBoot {
    /// `NumberOfVideoPresentSources` from StartDevice.
    pub sources: u32,
    /// The children from QueryChildRelations.
    pub children: Vec<Child>,
}

/// One child (video output) of the adapter as the OS sees it after enumeration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// `ChildUid` (the VidPN target id).
    pub uid: u32,
    /// `ChildDeviceType`.
    pub device_type: i32,
    /// `HpdAwareness`.
    pub hpd_awareness: i32,
    /// `HotPlug.Connected` from QueryChildStatus.
    pub connected: bool,
    /// The EDID read with QueryDeviceDescriptor (`None`: the child has no descriptor).
    pub edid: Option<Vec<u8>>,
}

/// dxgkrnl's side of one display adapter; see the module documentation.
pub struct Sim<M: Machine + 'static> {
    machine: Arc<M>,
    adapter: Arc<AdapterState>,
    init: KMDDOD_INITIALIZATION_DATA,
    interface: Box<DXGKRNL_INTERFACE>,
    start_info: Box<DXGK_START_INFO>,
    phase: Phase,
    sources: u32,
    children: u32,
    /// The mode committed per source (width, height, rotation), as the OS knows it.
    modes: Vec<Option<(u32, u32, D3DKMDT_VIDPN_PRESENT_PATH_ROTATION)>>,
    /// The EDID the OS last read per child (`None`: the child has none).
    edids: BTreeMap<u32, Option<Vec<u8>>>,
    /// How long the last [`present`](Self::present) spent copying the surface into user-mode
    /// memory and unmapping it (simulator work, not the driver's).
    source_copy: std::time::Duration,
}

impl<M: Machine + 'static> std::fmt::Debug for Sim<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("phase", &self.phase)
            .field("sources", &self.sources)
            .field("children", &self.children)
            .finish_non_exhaustive()
    }
}

impl<M: Machine + 'static> Sim<M> {
    /// Loads the driver whose `DriverEntry` produced `init` onto `machine`, as
    /// `DxgkInitializeDisplayOnlyDriver` does, and installs the machine as this thread's
    /// hosted OS environment.
    pub fn load(init: KMDDOD_INITIALIZATION_DATA, machine: M) -> Result<Self, SimError> {
        Self::load_with(init, machine, SimOptions::default())
    }

    /// [`load`](Self::load) with options.
    pub fn load_with(
        init: KMDDOD_INITIALIZATION_DATA,
        machine: M,
        options: SimOptions,
    ) -> Result<Self, SimError> {
        if init.Version < DXGKDDI_INTERFACE_VERSION_WIN8 {
            return Err(SimError::BadVersion(init.Version));
        }
        let required = [
            ("DxgkDdiAddDevice", init.DxgkDdiAddDevice.is_some()),
            ("DxgkDdiStartDevice", init.DxgkDdiStartDevice.is_some()),
            ("DxgkDdiStopDevice", init.DxgkDdiStopDevice.is_some()),
            ("DxgkDdiRemoveDevice", init.DxgkDdiRemoveDevice.is_some()),
            (
                "DxgkDdiInterruptRoutine",
                init.DxgkDdiInterruptRoutine.is_some(),
            ),
            ("DxgkDdiDpcRoutine", init.DxgkDdiDpcRoutine.is_some()),
            ("DxgkDdiUnload", init.DxgkDdiUnload.is_some()),
        ];
        if let Some((name, _)) = required.iter().find(|(_, present)| !present) {
            return Err(SimError::MissingDdi(name));
        }
        // VSync control is declared by providing both; one without the other is a KMDOD
        // dxgkrnl refuses to load (DxgkDdiGetScanLine / DxgkDdiControlInterrupt pages).
        if init.DxgkDdiGetScanLine.is_some() != init.DxgkDdiControlInterrupt.is_some() {
            return Err(SimError::Contract(
                "DxgkDdiGetScanLine and DxgkDdiControlInterrupt must both be set (VSync \
                 control) or both be NULL; dxgkrnl refuses to load this KMDOD"
                    .into(),
            ));
        }
        let machine = Arc::new(machine);
        let dyn_machine: Arc<dyn Machine> = machine.clone();
        let adapter = Arc::new(AdapterState::new(
            dyn_machine,
            init.DxgkDdiInterruptRoutine,
            init.DxgkDdiDpcRoutine,
            options.post_display,
        ));
        if let Ok(mut registry) = adapter.registry.lock() {
            registry.extend(options.registry);
        }
        callbacks::register(&adapter);
        hosted::install(Arc::new(SimEnv::new(Arc::clone(&adapter))));
        let interface = Box::new(callbacks::interface(&adapter));
        let start_info = Box::new(DXGK_START_INFO {
            RequiredDmaQueueEntry: 0,
            AdapterGuid: GUID {
                Data1: 0x5649_4f47,
                Data2: 0x5055,
                Data3: 0x444f,
                Data4: *b"dxgksim\0",
            },
            AdapterLuid: LUID {
                LowPart: 0x1_0001,
                HighPart: 0,
            },
        });
        Ok(Self {
            machine,
            adapter,
            init,
            interface,
            start_info,
            phase: Phase::Loaded,
            sources: 0,
            children: 0,
            modes: Vec::new(),
            edids: BTreeMap::new(),
            source_copy: std::time::Duration::ZERO,
        })
    }

    /// Time the last present spent mapping, copying and unmapping its user-mode source (the
    /// simulator's work): subtract it from a present's wall time to time the driver alone.
    pub fn last_source_copy(&self) -> std::time::Duration {
        self.source_copy
    }

    /// The machine, for pixel reads and device-side checks.
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// Where the adapter is in its life.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// `NumberOfVideoPresentSources` from StartDevice.
    pub fn source_count(&self) -> u32 {
        self.sources
    }

    /// `NumberOfChildren` from StartDevice.
    pub fn child_count(&self) -> u32 {
        self.children
    }

    /// The driver's adapter context (null before AddDevice and after RemoveDevice).
    pub fn context(&self) -> *mut c_void {
        self.adapter.context.load(Ordering::SeqCst)
    }

    /// The `DXGKRNL_INTERFACE` handed to StartDevice.
    pub fn interface(&self) -> &DXGKRNL_INTERFACE {
        &self.interface
    }

    /// Every event so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.adapter.events()
    }

    /// Forgets the events so far (to look at one scenario step's events).
    pub fn clear_events(&self) {
        self.adapter.clear_events();
    }

    /// Callbacks the driver called that the simulator does not provide.
    pub fn unexpected_calls(&self) -> Vec<&'static str> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Unexpected(name) => Some(name),
                _ => None,
            })
            .collect()
    }

    /// The Windows rules the driver broke so far (IRQL, locks; see [`Event::Violation`]), and
    /// forgets them, so that dropping the simulator does not fail the test: for tests that
    /// break a rule on purpose.
    pub fn take_violations(&self) -> Vec<String> {
        self.adapter.take_violations()
    }

    /// The IRQL the bugcheck DDIs are called at from now on: HIGH_LEVEL (the default, as after
    /// a crash) or DISPATCH_LEVEL (also allowed: "any IRQL").
    pub fn set_bugcheck_irql(&self, level: u8) {
        self.adapter.bugcheck_irql.store(level, Ordering::SeqCst);
    }

    /// A handle for calling the driver's unsynchronized and Level 0/1 DDIs from other threads,
    /// as Windows does (see [`OsThread`]).
    pub fn os_thread(&self) -> OsThread {
        OsThread::new(Arc::clone(&self.adapter), self.init)
    }

    /// Misuses of callbacks the simulator detected.
    pub fn errors(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Error(what) => Some(what),
                _ => None,
            })
            .collect()
    }

    /// The child statuses the driver indicated, oldest first.
    pub fn indicated_child_status(&self) -> Vec<ChildStatus> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::ChildStatus(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    /// The names of the DDIs called so far, in order.
    pub fn ddi_calls(&self) -> Vec<&'static str> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Ddi(name) => Some(name),
                _ => None,
            })
            .collect()
    }

    /// The live `DxgkCbMapMemory` mappings.
    pub fn live_mappings(&self) -> Vec<Mapping> {
        self.adapter.mappings()
    }

    /// The driver's trace output so far.
    pub fn trace_lines(&self) -> Vec<String> {
        self.adapter.trace_lines()
    }

    /// The translated resource list the driver gets, as bytes.
    pub fn resource_list(&self) -> Vec<u8> {
        self.adapter.resource_list_bytes()
    }

    /// Delivers the device's pending interrupts now (ISR, then the DPC if one was queued);
    /// returns the number of driver routines run.
    pub fn interrupt(&self) -> usize {
        self.adapter.deliver_interrupts()
    }

    /// An interrupt on `message` that the device did not raise (another device on a shared
    /// line, or a device that vanished mid-interrupt), delivered now with whatever the device
    /// has pending; returns the number of driver routines run. The driver's answer is in
    /// the [`Event::Isr`] events.
    pub fn inject_interrupt(&self, message: u32) -> usize {
        self.adapter.inject_interrupt(message);
        self.adapter.deliver_interrupts()
    }

    /// Lets `us` microseconds pass on the machine and delivers what arrived.
    pub fn advance(&self, us: u64) -> usize {
        self.machine.advance(us);
        self.adapter.deliver_interrupts()
    }

    /// Calls one DDI as dxgkrnl does (`AdapterState::run_ddi`): at its synchronization level
    /// and IRQL, recorded, then the interrupts it left pending delivered.
    fn ddi<R: 'static>(&self, name: &'static str, call: impl FnOnce() -> R) -> R {
        self.adapter.run_ddi(name, call)
    }

    /// Calls a DDI of the form `(context, args) -> NTSTATUS` with a caller-built argument:
    /// recorded, interrupts delivered afterwards, the status returned as it is.
    fn call_ddi<A>(
        &mut self,
        name: &'static str,
        ddi: Option<unsafe extern "system" fn(HANDLE, A) -> NTSTATUS>,
        args: A,
    ) -> Result<NTSTATUS, SimError> {
        let f = ddi.ok_or(SimError::MissingDdi(name))?;
        let context = self.context();
        // SAFETY: the driver's own DDI, with the context its AddDevice returned and an argument
        // the caller built for it (valid for the call, as dxgkrnl guarantees).
        Ok(self.ddi(name, || unsafe { f(context, args) }))
    }

    fn expect_phase(&self, step: &'static str, allowed: &[Phase]) -> Result<(), SimError> {
        if allowed.contains(&self.phase) {
            Ok(())
        } else {
            Err(SimError::Phase {
                step,
                phase: self.phase,
            })
        }
    }

    fn check(ddi: &'static str, status: NTSTATUS) -> Result<(), SimError> {
        if nt_success(status) {
            Ok(())
        } else {
            Err(SimError::Status { ddi, status })
        }
    }

    /// Everything dxgkrnl does before the first mode set: AddDevice, StartDevice,
    /// QueryChildRelations, then per child QueryChildStatus and (if connected)
    /// QueryDeviceDescriptor, and QueryAdapterInfo(DRIVERCAPS).
    pub fn boot_device(&mut self) -> Result<DeviceBoot, SimError> {
        self.add_device()?;
        self.start_device()?;
        let mut children = Vec::new();
        for descriptor in self.query_child_relations()? {
            let uid = descriptor.ChildUid;
            let status = self.query_child_status(uid, StatusConnection)?;
            let connected = status.hot_plug_connected();
            let edid = if connected {
                self.query_edid(uid)?
            } else {
                None
            };
            self.edids.insert(uid, edid.clone());
            children.push(Child {
                uid,
                device_type: descriptor.ChildDeviceType.0,
                hpd_awareness: descriptor.ChildCapabilities.HpdAwareness.0,
                connected,
                edid,
            });
        }
        self.query_driver_caps()?;
        Ok(DeviceBoot {
            sources: self.sources,
            children,
        })
    }

    /// `DxgkDdiAddDevice` with the adapter's physical device object.
    pub fn add_device(&mut self) -> Result<(), SimError> {
        self.expect_phase("AddDevice", &[Phase::Loaded, Phase::Removed])?;
        let add = self
            .init
            .DxgkDdiAddDevice
            .ok_or(SimError::MissingDdi("DxgkDdiAddDevice"))?;
        let pdo: *mut DEVICE_OBJECT = self.adapter.pdo.as_ptr().cast_mut().cast();
        let mut context: *mut c_void = ptr::null_mut();
        // SAFETY: the driver's AddDevice with a PDO pointer and an out pointer it may write.
        let status = self.ddi("DxgkDdiAddDevice", || unsafe { add(pdo, &mut context) });
        Self::check("DxgkDdiAddDevice", status)?;
        if context.is_null() {
            return Err(SimError::Contract(
                "AddDevice succeeded with a null MiniportDeviceContext".into(),
            ));
        }
        self.adapter.context.store(context, Ordering::SeqCst);
        self.phase = Phase::Added;
        Ok(())
    }

    /// `DxgkDdiStartDevice`: connects the interrupt, hands over `DXGKRNL_INTERFACE`, and
    /// learns the number of sources and children.
    pub fn start_device(&mut self) -> Result<(), SimError> {
        self.expect_phase("StartDevice", &[Phase::Added, Phase::Stopped])?;
        let start = self
            .init
            .DxgkDdiStartDevice
            .ok_or(SimError::MissingDdi("DxgkDdiStartDevice"))?;
        let context = self.context();
        let (mut sources, mut children) = (0u32, 0u32);
        self.adapter.connected.store(true, Ordering::SeqCst);
        let start_info: *mut DXGK_START_INFO = &mut *self.start_info;
        let interface: *mut DXGKRNL_INTERFACE = &mut *self.interface;
        // SAFETY: the driver's StartDevice with its context and valid in/out pointers.
        let status = self.ddi("DxgkDdiStartDevice", || unsafe {
            start(context, start_info, interface, &mut sources, &mut children)
        });
        if !nt_success(status) {
            self.adapter.connected.store(false, Ordering::SeqCst);
            return Err(SimError::Status {
                ddi: "DxgkDdiStartDevice",
                status,
            });
        }
        if sources == 0 || children == 0 {
            return Err(SimError::Contract(format!(
                "StartDevice reported {sources} sources and {children} children"
            )));
        }
        self.sources = sources;
        self.children = children;
        self.modes = vec![None; sources as usize];
        self.phase = Phase::Started;
        Ok(())
    }

    /// `DxgkDdiQueryChildRelations` with a zeroed array of `NumberOfChildren + 1` entries;
    /// checks that the terminating entry stayed zero.
    pub fn query_child_relations(&mut self) -> Result<Vec<DXGK_CHILD_DESCRIPTOR>, SimError> {
        let f = self
            .init
            .DxgkDdiQueryChildRelations
            .ok_or(SimError::MissingDdi("DxgkDdiQueryChildRelations"))?;
        let n = self.children as usize;
        let mut relations = vec![DXGK_CHILD_DESCRIPTOR::default(); n + 1];
        let size = (relations.len() * core::mem::size_of::<DXGK_CHILD_DESCRIPTOR>()) as u32;
        let context = self.context();
        let array = relations.as_mut_ptr();
        // SAFETY: the array holds `size` bytes of zeroed descriptors.
        let status = self.ddi("DxgkDdiQueryChildRelations", || unsafe {
            f(context, array, size)
        });
        Self::check("DxgkDdiQueryChildRelations", status)?;
        let terminator = relations.pop().unwrap_or_default();
        if terminator.ChildUid != 0 || terminator.ChildDeviceType.0 != 0 {
            return Err(SimError::Contract(
                "QueryChildRelations wrote the terminating zero entry".into(),
            ));
        }
        Ok(relations)
    }

    /// `DxgkDdiQueryChildStatus` for `uid` (`NonDestructiveOnly` FALSE).
    pub fn query_child_status(
        &mut self,
        uid: u32,
        kind: DXGK_CHILD_STATUS_TYPE,
    ) -> Result<DXGK_CHILD_STATUS, SimError> {
        let mut status = DXGK_CHILD_STATUS {
            Type: kind,
            ChildUid: uid,
            Status: 0,
        };
        let nt = self.query_child_status_raw(&mut status)?;
        Self::check("DxgkDdiQueryChildStatus", nt)?;
        if kind == StatusConnection {
            self.adapter
                .note_connection(uid, status.hot_plug_connected());
        }
        Ok(status)
    }

    /// `DxgkDdiQueryChildStatus` with a caller-built argument; returns the NTSTATUS.
    pub fn query_child_status_raw(
        &mut self,
        status: &mut DXGK_CHILD_STATUS,
    ) -> Result<NTSTATUS, SimError> {
        let f = self
            .init
            .DxgkDdiQueryChildStatus
            .ok_or(SimError::MissingDdi("DxgkDdiQueryChildStatus"))?;
        let context = self.context();
        // SAFETY: the driver's DDI with the caller's argument (possibly bad on purpose).
        Ok(self.ddi("DxgkDdiQueryChildStatus", || unsafe {
            f(context, status, 0)
        }))
    }

    /// Reads the EDID of `uid` as the monitor stack does: block 0, then each extension block
    /// its byte 126 announces. `None` when the child has no descriptor.
    pub fn query_edid(&mut self, uid: u32) -> Result<Option<Vec<u8>>, SimError> {
        let mut edid = Vec::new();
        let mut blocks = 1u32;
        let mut index = 0u32;
        while index < blocks {
            let mut block = vec![0u8; EDID_BLOCK as usize];
            let status = self.query_device_descriptor(uid, index * EDID_BLOCK, &mut block)?;
            if !nt_success(status) {
                let no_descriptor = status == STATUS_MONITOR_NO_DESCRIPTOR
                    || status == STATUS_GRAPHICS_CHILD_DESCRIPTOR_NOT_SUPPORTED;
                if index == 0 && no_descriptor {
                    return Ok(None);
                }
                if index > 0 && status == STATUS_MONITOR_NO_MORE_DESCRIPTOR_DATA {
                    break;
                }
                return Err(SimError::Status {
                    ddi: "DxgkDdiQueryDeviceDescriptor",
                    status,
                });
            }
            if index == 0 {
                blocks = 1 + u32::from(block[126]);
            }
            edid.extend_from_slice(&block);
            index += 1;
        }
        Ok(Some(edid))
    }

    /// `DxgkDdiQueryDeviceDescriptor` for `buf.len()` bytes at `offset`; returns the NTSTATUS.
    pub fn query_device_descriptor(
        &mut self,
        uid: u32,
        offset: u32,
        buf: &mut [u8],
    ) -> Result<NTSTATUS, SimError> {
        let f = self
            .init
            .DxgkDdiQueryDeviceDescriptor
            .ok_or(SimError::MissingDdi("DxgkDdiQueryDeviceDescriptor"))?;
        let mut descriptor = DXGK_DEVICE_DESCRIPTOR {
            DescriptorOffset: offset,
            DescriptorLength: buf.len() as u32,
            DescriptorBuffer: buf.as_mut_ptr().cast(),
        };
        let context = self.context();
        // SAFETY: the descriptor names a buffer of DescriptorLength bytes.
        Ok(self.ddi("DxgkDdiQueryDeviceDescriptor", || unsafe {
            f(context, uid, &mut descriptor)
        }))
    }

    /// `DxgkDdiQueryAdapterInfo(DXGKQAITYPE_DRIVERCAPS)`.
    pub fn query_driver_caps(&mut self) -> Result<DXGK_DRIVERCAPS, SimError> {
        let mut caps = DXGK_DRIVERCAPS::default();
        let args = DXGKARG_QUERYADAPTERINFO {
            Type: DXGKQAITYPE_DRIVERCAPS,
            pInputData: ptr::null_mut(),
            InputDataSize: 0,
            pOutputData: (&mut caps as *mut DXGK_DRIVERCAPS).cast(),
            OutputDataSize: core::mem::size_of::<DXGK_DRIVERCAPS>() as u32,
        };
        let status = self.query_adapter_info_raw(&args)?;
        Self::check("DxgkDdiQueryAdapterInfo", status)?;
        Ok(caps)
    }

    /// `DxgkDdiQueryAdapterInfo` with a caller-built argument; returns the NTSTATUS.
    pub fn query_adapter_info_raw(
        &mut self,
        args: &DXGKARG_QUERYADAPTERINFO,
    ) -> Result<NTSTATUS, SimError> {
        self.call_ddi(
            "DxgkDdiQueryAdapterInfo",
            self.init.DxgkDdiQueryAdapterInfo,
            core::ptr::from_ref(args),
        )
    }

    /// Whether the user-mode thread of the next escapes runs as a trusted service (LocalSystem)
    /// or as an ordinary user.
    pub fn set_escape_caller_trusted(&mut self, trusted: bool) {
        self.adapter.caller_trusted.store(trusted, Ordering::SeqCst);
    }

    /// `DxgkDdiControlInterrupt` for `kind`; returns the NTSTATUS. Any type but
    /// `DXGK_INTERRUPT_CRTC_VSYNC` must be `STATUS_NOT_IMPLEMENTED` (the page), else a
    /// violation is recorded.
    pub fn control_interrupt(
        &mut self,
        kind: DXGK_INTERRUPT_TYPE,
        enable: bool,
    ) -> Result<NTSTATUS, SimError> {
        let f = self
            .init
            .DxgkDdiControlInterrupt
            .ok_or(SimError::MissingDdi("DxgkDdiControlInterrupt"))?;
        let context = self.context();
        // SAFETY: the driver's DDI with scalar arguments.
        let status = self.ddi("DxgkDdiControlInterrupt", || unsafe {
            f(context, kind, u8::from(enable))
        });
        if kind != DXGK_INTERRUPT_CRTC_VSYNC && status != STATUS_NOT_IMPLEMENTED {
            self.adapter.violation(format!(
                "DxgkDdiControlInterrupt({}) returned {status:#x}; the page requires \
                 STATUS_NOT_IMPLEMENTED for every type but DXGK_INTERRUPT_CRTC_VSYNC",
                kind.0
            ));
        }
        Ok(status)
    }

    /// `DxgkDdiEscape` with `data` as the private driver data (copied in and out, as dxgkrnl
    /// does with a user-mode escape); returns the NTSTATUS.
    pub fn escape_raw(&mut self, data: &mut [u8]) -> Result<NTSTATUS, SimError> {
        let f = self
            .init
            .DxgkDdiEscape
            .ok_or(SimError::MissingDdi("DxgkDdiEscape"))?;
        let mut buffer = data.to_vec();
        let args = DXGKARG_ESCAPE {
            hDevice: ptr::null_mut(),
            Flags: D3DDDI_ESCAPEFLAGS::default(),
            pPrivateDriverData: buffer.as_mut_ptr().cast(),
            PrivateDriverDataSize: buffer.len() as u32,
            hContext: ptr::null_mut(),
        };
        let context = self.context();
        // SAFETY: the driver's DDI with a private data buffer of PrivateDriverDataSize bytes.
        let status = self.ddi("DxgkDdiEscape", || unsafe { f(context, &args) });
        data.copy_from_slice(&buffer);
        Ok(status)
    }

    /// The OS's answer to an indicated child status: re-queries the child's connection and
    /// (if connected) its EDID, as the monitor stack does after `DxgkCbIndicateChildStatus`.
    pub fn refresh_child(&mut self, uid: u32) -> Result<Child, SimError> {
        let relations = self.query_child_relations()?;
        let descriptor = relations
            .iter()
            .find(|d| d.ChildUid == uid)
            .copied()
            .ok_or(SimError::Contract(format!("no child with uid {uid}")))?;
        let status = self.query_child_status(uid, StatusConnection)?;
        let connected = status.hot_plug_connected();
        let edid = if connected {
            self.query_edid(uid)?
        } else {
            None
        };
        self.edids.insert(uid, edid.clone());
        Ok(Child {
            uid,
            device_type: descriptor.ChildDeviceType.0,
            hpd_awareness: descriptor.ChildCapabilities.HpdAwareness.0,
            connected,
            edid,
        })
    }

    /// `DxgkDdiSetPowerState` for one device (`DISPLAY_ADAPTER_HW_ID` or a child uid).
    pub fn set_power_state(
        &mut self,
        device_uid: u32,
        state: DEVICE_POWER_STATE,
        action: POWER_ACTION,
    ) -> Result<NTSTATUS, SimError> {
        let f = self
            .init
            .DxgkDdiSetPowerState
            .ok_or(SimError::MissingDdi("DxgkDdiSetPowerState"))?;
        let context = self.context();
        // SAFETY: the driver's DDI with scalar arguments.
        let status = self.ddi("DxgkDdiSetPowerState", || unsafe {
            f(context, device_uid, state, action)
        });
        // The page: "any return value must pass NT_SUCCESS"; the power manager cannot undo a
        // transition, so a driver that fails it leaves the OS believing a state it is not in.
        if !nt_success(status) {
            self.adapter.violation(format!(
                "DxgkDdiSetPowerState(uid {device_uid:#x}, D{}) returned {status:#x}: it must not fail",
                state.0.saturating_sub(1)
            ));
        }
        Ok(status)
    }

    /// A system power transition: to D3 the children go first, then the adapter; back to D0
    /// the adapter goes first, then the children.
    pub fn set_power(&mut self, state: DEVICE_POWER_STATE) -> Result<(), SimError> {
        self.expect_phase("SetPowerState", &[Phase::Started])?;
        let children: Vec<u32> = self
            .query_child_relations()?
            .iter()
            .map(|c| c.ChildUid)
            .collect();
        let (action, adapter_first) = if state == PowerDeviceD0 {
            (POWER_ACTION_NONE, true)
        } else {
            (POWER_ACTION_SLEEP, false)
        };
        if adapter_first {
            let s = self.set_power_state(DISPLAY_ADAPTER_HW_ID, state, action)?;
            Self::check("DxgkDdiSetPowerState", s)?;
        }
        for uid in children {
            let s = self.set_power_state(uid, state, action)?;
            Self::check("DxgkDdiSetPowerState", s)?;
        }
        if !adapter_first {
            let s = self.set_power_state(DISPLAY_ADAPTER_HW_ID, state, action)?;
            Self::check("DxgkDdiSetPowerState", s)?;
        }
        if state == PowerDeviceD0 {
            // Back in D0 every source starts invisible (the driver shows black); the OS makes
            // the active ones visible again, and the desktop's next present repaints them.
            let active: Vec<u32> = (0u32..)
                .zip(&self.modes)
                .filter_map(|(source, mode)| mode.map(|_| source))
                .collect();
            for source in active {
                self.set_source_visibility(source, true)?;
            }
        }
        Ok(())
    }

    /// `DxgkDdiStopDevice`; the interrupt is disconnected afterwards.
    pub fn stop(&mut self) -> Result<(), SimError> {
        self.expect_phase("StopDevice", &[Phase::Started])?;
        let f = self
            .init
            .DxgkDdiStopDevice
            .ok_or(SimError::MissingDdi("DxgkDdiStopDevice"))?;
        let context = self.context();
        // SAFETY: the driver's DDI with its context.
        let status = self.ddi("DxgkDdiStopDevice", || unsafe { f(context) });
        self.adapter.connected.store(false, Ordering::SeqCst);
        self.phase = Phase::Stopped;
        self.modes.iter_mut().for_each(|m| *m = None);
        Self::check("DxgkDdiStopDevice", status)
    }

    /// `DxgkDdiStopDeviceAndReleasePostDisplayOwnership` for `target`: the driver stops and
    /// leaves its current picture on screen for the next (basic display) driver, described by
    /// the returned information. If the driver fails the call, the adapter is still started:
    /// dxgkrnl then calls `DxgkDdiStopDevice` (the DDI page), which is [`stop`](Self::stop).
    pub fn stop_and_release_post_display(
        &mut self,
        target: u32,
    ) -> Result<DXGK_DISPLAY_INFORMATION, SimError> {
        self.expect_phase(
            "StopDeviceAndReleasePostDisplayOwnership",
            &[Phase::Started],
        )?;
        let f = self
            .init
            .DxgkDdiStopDeviceAndReleasePostDisplayOwnership
            .ok_or(SimError::MissingDdi(
                "DxgkDdiStopDeviceAndReleasePostDisplayOwnership",
            ))?;
        let mut info = DXGK_DISPLAY_INFORMATION::default();
        let context = self.context();
        // SAFETY: the driver's DDI with its context and an out structure.
        let status = self.ddi(
            "DxgkDdiStopDeviceAndReleasePostDisplayOwnership",
            || unsafe { f(context, target, &mut info) },
        );
        // The page: a target without a display is STATUS_NOT_SUPPORTED, so a display handed
        // over on a target the driver reported without a monitor is a broken rule; so is a
        // surface in another format than the page allows.
        if nt_success(status) {
            if self.adapter.connection(info.TargetId) == Some(false) {
                self.adapter.violation(format!(
                    "DxgkDdiStopDeviceAndReleasePostDisplayOwnership handed over target {}, \
                     which has no monitor",
                    info.TargetId
                ));
            }
            if ![D3DDDIFMT_X8R8G8B8, D3DDDIFMT_A8R8G8B8].contains(&info.ColorFormat) {
                self.adapter.violation(format!(
                    "DxgkDdiStopDeviceAndReleasePostDisplayOwnership: ColorFormat {:?} is not \
                     X8R8G8B8 or A8R8G8B8",
                    info.ColorFormat
                ));
            }
        }
        Self::check("DxgkDdiStopDeviceAndReleasePostDisplayOwnership", status)?;
        self.adapter.connected.store(false, Ordering::SeqCst);
        self.phase = Phase::Stopped;
        Ok(info)
    }

    /// `DxgkDdiNotifySurpriseRemoval(DxgkRemovalHibernation)`: the device is gone. The
    /// adapter stays started as far as the OS is concerned; StopDevice and RemoveDevice
    /// follow, and the driver must not touch the hardware in them. Windows calls it only for a
    /// driver whose caps set `SupportSurpriseRemovalInHibernation`: for any other driver this
    /// is refused (see [`Self::hot_unplug`] for what Windows does instead).
    pub fn notify_surprise_removal(&mut self) -> Result<(), SimError> {
        self.expect_phase("NotifySurpriseRemoval", &[Phase::Started])?;
        if self
            .query_driver_caps()?
            .SupportSurpriseRemovalInHibernation
            == 0
        {
            return Err(SimError::Contract(
                "Windows calls DxgkDdiNotifySurpriseRemoval only when the driver's caps set \
                 SupportSurpriseRemovalInHibernation; this driver's do not"
                    .into(),
            ));
        }
        let f = self
            .init
            .DxgkDdiNotifySurpriseRemoval
            .ok_or(SimError::MissingDdi("DxgkDdiNotifySurpriseRemoval"))?;
        let context = self.context();
        // SAFETY: the driver's DDI with its context and a valid removal type.
        let status = self.ddi("DxgkDdiNotifySurpriseRemoval", || unsafe {
            f(context, DxgkRemovalHibernation)
        });
        Self::check("DxgkDdiNotifySurpriseRemoval", status)
    }

    /// `DxgkDdiRemoveDevice`: the driver frees its adapter context.
    pub fn remove(&mut self) -> Result<(), SimError> {
        self.expect_phase(
            "RemoveDevice",
            &[Phase::Added, Phase::Stopped, Phase::Crashed],
        )?;
        let f = self
            .init
            .DxgkDdiRemoveDevice
            .ok_or(SimError::MissingDdi("DxgkDdiRemoveDevice"))?;
        let context = self.context();
        // SAFETY: the driver's DDI with its context; the context is forgotten afterwards.
        let status = self.ddi("DxgkDdiRemoveDevice", || unsafe { f(context) });
        self.adapter.connected.store(false, Ordering::SeqCst);
        self.adapter
            .context
            .store(ptr::null_mut(), Ordering::SeqCst);
        self.phase = Phase::Removed;
        Self::check("DxgkDdiRemoveDevice", status)
    }

    /// `DxgkDdiUnload`.
    pub fn unload(&mut self) -> Result<(), SimError> {
        self.expect_phase("Unload", &[Phase::Loaded, Phase::Removed])?;
        let f = self
            .init
            .DxgkDdiUnload
            .ok_or(SimError::MissingDdi("DxgkDdiUnload"))?;
        // SAFETY: the driver's DDI without arguments.
        self.ddi("DxgkDdiUnload", || unsafe { f() });
        self.phase = Phase::Unloaded;
        Ok(())
    }

    /// The mode the OS committed on `source` (width, height, rotation).
    pub fn committed_mode(
        &self,
        source: u32,
    ) -> Option<(u32, u32, D3DKMDT_VIDPN_PRESENT_PATH_ROTATION)> {
        self.modes.get(source as usize).copied().flatten()
    }
}

impl<M: Machine + 'static> Drop for Sim<M> {
    /// Unloads the simulator, and fails the test if the driver broke a Windows rule that the
    /// test did not take with [`Sim::take_violations`]: every scenario checks the rules.
    fn drop(&mut self) {
        let violations = self.adapter.violations();
        callbacks::unregister(&self.adapter);
        hosted::uninstall();
        if !violations.is_empty() && !std::thread::panicking() {
            panic!(
                "the driver broke {} Windows rule(s):\n  {}",
                violations.len(),
                violations.join("\n  ")
            );
        }
    }
}

impl Sim<crate::machine::ModelMachine> {
    /// A hot-unplug as Windows handles it: the device vanishes (its registers read all-ones,
    /// its DMA stops), DxgkDdiNotifySurpriseRemoval comes only if the driver's caps ask for it
    /// (`SupportSurpriseRemovalInHibernation`), then StopDevice and RemoveDevice. Returns
    /// whether the notification was sent.
    pub fn hot_unplug(&mut self) -> Result<bool, SimError> {
        self.machine().surprise_remove();
        let notified = self
            .query_driver_caps()?
            .SupportSurpriseRemovalInHibernation
            != 0;
        if notified {
            self.notify_surprise_removal()?;
        }
        self.stop()?;
        self.remove()?;
        Ok(notified)
    }
}
