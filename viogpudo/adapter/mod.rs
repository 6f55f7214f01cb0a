//! The per-adapter context: everything the driver knows about one virtio-gpu device, from
//! `DxgkDdiAddDevice` (created, `Box::into_raw` into the miniport context) to
//! `DxgkDdiRemoveDevice` (dropped). Every DDI thunk turns the context pointer back into an
//! `&Adapter` and calls one method here; the submodules hold the methods, one DDI family each.
//!
//! **State and locking.** Windows calls the DDIs from several threads at once (Level 0 DDIs
//! such as PresentDisplayOnly overlap each other; the pointer DDIs overlap everything), so:
//! - The mutable state (the device once started, scanouts, modes, the resource-id allocator)
//!   sits in one [`os::PassiveMutex`] (a KMUTEX on Windows): a waitable lock taken only at
//!   PASSIVE_LEVEL, held across device waits (a mode change waits for several commands), where
//!   a contender sleeps instead of spinning.
//! - The hardware pointer has its own state and lock ([`PointerState`]), so a pointer move
//!   never waits behind a commit or a present. Lock order: state, then pointer; the pointer
//!   DDIs take only the pointer lock.
//! - The interrupt routine and the DPC take neither. They reach the started [`Hardware`]
//!   through the lifecycle's `lifecycle::IsrSlot`, whose parts have their own locks (the
//!   command queues, real spin locks held only around ring updates) or none (the ISR register
//!   window). The pointer DDIs use the pointer state's own reference to the hardware.
//! - The bugcheck screen takes no lock at all (see `bugcheck.rs`).
//!
//! **Lifecycle.** Where the device is (stopped, on, powered down, handed off) is one enum,
//! `lifecycle::Device`, owned by the state; surprise removal and the bugcheck screen are
//! one-way latches beside it (see `lifecycle.rs`).
//!
//! **Ids.** Source id = target id = child uid = virtio scanout index, `0..num_scanouts`.

pub mod adapter_info;
pub mod bugcheck;
pub mod child;
pub mod dxgk;
pub mod escape;
mod interrupt;
mod lifecycle;
pub mod pointer;
mod post_display;
mod power;
pub mod present;
pub mod resources;
mod screens;
pub mod start;
mod vga;

use alloc::vec::Vec;
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use viogpu_common::fallible::Shared;

use viogpu_common::gpu::{GpuDevice, Notify};
use viogpu_common::hal::RegisterAccess;
use viogpu_common::modes::ModeList;
use viogpu_common::protocol::VIRTIO_GPU_MAX_SCANOUTS as MAX_SCANOUTS;
use viogpu_common::resource_id::ResourceIdAllocator;
use viogpu_common::scanout::Scanout;
use viogpu_common::transport::{Features, RegionWindow, VirtioPciTransport};
use viogpu_common::Error;

use crate::ddi::*;
use crate::os;
use crate::vidpn::{SourceCommit, VidPnHost};
use viogpu_common::blit::Rotation;

pub use escape::{
    EscapeCustomMode, EscapeDisplay, EscapeHeader, EscapeQueryDisplays, ESCAPE_MAGIC,
    ESCAPE_QUERY_DISPLAYS, ESCAPE_SET_CUSTOM_MODE, ESCAPE_VERSION,
};

/// A mapping of one BAR; each register window cut from it holds a copy (a plain address
/// range: the mapping itself lives until `teardown` unmaps it, after every window is gone).
/// No `Arc`: sharing it needs no heap, so StartDevice has no allocation to fail here.
pub type BarMapping = os::Mmio;
/// One register window of the device (a virtio structure inside a BAR mapping).
pub type Window = RegionWindow<BarMapping>;
/// The virtio transport over the driver's windows.
pub type Transport = VirtioPciTransport<Window>;
/// The device layer with the driver's platform.
pub type Gpu = GpuDevice<os::Dma, os::OsPlatform, Notifier>;

/// Result of an adapter method: the NTSTATUS the DDI returns on failure.
pub type DdiResult<T> = core::result::Result<T, NTSTATUS>;

/// `DISPLAY_ADAPTER_HW_ID`: the hardware uid `DxgkDdiSetPowerState` uses for the adapter
/// itself (other uids are children).
pub const DISPLAY_ADAPTER_HW_ID: u32 = 0xFFFF_FFFF;
/// `DXGKDDI_WDDMv1_2`, the WDDM version a WIN8 display-only driver reports.
pub const DXGKDDI_WDDMV1_2: DXGK_WDDMVERSION = DXGK_WDDMVERSION(0x1200);
/// Largest framebuffer the driver backs: 16384 x 16384 x 4 bytes (1 GiB), i.e. no limit below
/// the per-side maximum of the mode rules.
pub const MAX_FRAMEBUFFER_BYTES: u64 = 16384 * 16384 * 4;
/// Colour a new framebuffer starts with (black).
pub const BLACK: u32 = 0;
/// Registry DWORD that turns the hardware cursor off when 0.
pub const HARDWARE_CURSOR_VALUE: &str = "HardwareCursor";
/// Registry DWORDs: a resolution to start scanout 0 with (persisted by a resolution agent or
/// set by hand), used instead of the monitor's preferred mode when both are set and valid.
pub const PREFERRED_WIDTH_VALUE: &str = "PreferredWidth";
/// See [`PREFERRED_WIDTH_VALUE`].
pub const PREFERRED_HEIGHT_VALUE: &str = "PreferredHeight";
/// Most resource ids live at once (scanouts, retired framebuffers, cursor).
const MAX_LIVE_IDS: u32 = 256;

/// Maps a core error to the NTSTATUS a DDI returns.
pub fn status_of(e: Error) -> NTSTATUS {
    match e {
        Error::NoDmaMemory | Error::NoMemory | Error::ModeTooLarge => STATUS_NO_MEMORY,
        Error::InvalidArgument | Error::OutOfBounds => STATUS_INVALID_PARAMETER,
        Error::UnsupportedFormat => STATUS_GRAPHICS_INVALID_PIXELFORMAT,
        Error::ResourceIdsExhausted | Error::QueueFull | Error::ChainTooLong => {
            STATUS_INSUFFICIENT_RESOURCES
        }
        // A device behind an IOMMU: this driver gives it guest-physical addresses
        // (MmGetPhysicalAddress), so it does not support that configuration.
        Error::AccessPlatformRequired => STATUS_NOT_SUPPORTED,
        _ if e.is_device_fault() => STATUS_DEVICE_HARDWARE_ERROR,
        _ => STATUS_UNSUCCESSFUL,
    }
}

/// `.ddi()` turns a core `Result` into a [`DdiResult`].
pub trait IntoDdi<T> {
    /// Maps the error with [`status_of`].
    fn ddi(self) -> DdiResult<T>;
}

impl<T> IntoDdi<T> for viogpu_common::Result<T> {
    fn ddi(self) -> DdiResult<T> {
        self.map_err(status_of)
    }
}

/// Rings the doorbells of the control and cursor queues; owns its own notify window so the
/// device layer never needs the transport lock. It also answers whether the device is gone
/// (its status register, read through its own common-configuration window, reads all-ones),
/// so a waiter on a surprise-removed device gives up at once.
pub struct Notifier {
    window: Window,
    common: Window,
    offsets: [AtomicUsize; 2],
}

impl Notifier {
    const UNSET: usize = usize::MAX;

    fn new(window: Window, common: Window) -> Self {
        Self {
            window,
            common,
            offsets: [AtomicUsize::new(Self::UNSET), AtomicUsize::new(Self::UNSET)],
        }
    }

    fn set_offset(&self, queue: u16, offset: usize) {
        if let Some(slot) = self.offsets.get(usize::from(queue)) {
            slot.store(offset, Ordering::Release);
        }
    }
}

impl Notify for Notifier {
    fn device_gone(&self) -> bool {
        viogpu_common::transport::status_register_absent(&self.common)
    }

    fn notify(&self, queue: u16) {
        if let Some(slot) = self.offsets.get(usize::from(queue)) {
            let offset = slot.load(Ordering::Acquire);
            if offset != Self::UNSET {
                self.window.write_u16(offset, queue);
            }
        }
    }
}

/// Gives up a started device that could not be published (the heap had no room for its
/// shared block): reset it so its queues can be freed, or leak them if the reset is not
/// confirmed (the device may still read them).
pub(crate) fn give_up_unpublished(hw: Hardware) {
    if hw.transport.lock().reset().is_ok() {
        hw.gpu.reset_queues();
        drop(hw);
    } else {
        hw.transport.lock().fail();
        core::mem::forget(hw);
    }
}

/// How [`Adapter::end_device`] ends the started device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// StopDevice (or a failed start): reset, everything freed, lifecycle `Stopped`.
    Stop,
    /// A hand-off of a virtio framebuffer: no reset, the framebuffers leaked (the device keeps
    /// showing one), lifecycle `HandedOff`.
    HandOffShowing,
    /// A hand-off to the VGA: reset (the host then shows the VGA), everything freed,
    /// lifecycle `HandedOff`.
    HandOffReset,
}

/// The started device: transport and queues (the ISR status window is the adapter's
/// `isr_window`, which outlives it on both ends).
pub struct Hardware {
    /// The dxgkrnl callbacks (a copy of what StartDevice received).
    pub dxgk: DXGKRNL_INTERFACE,
    /// The transport; taken only at PASSIVE_LEVEL (start, power) and with `try_lock` by the
    /// DPC.
    transport: spin::Mutex<Transport>,
    /// The device layer.
    pub gpu: Gpu,
    /// Message-signaled interrupts: the ISR byte is not needed to claim an interrupt.
    msix: bool,
    /// The negotiated features.
    features: Features,
    /// The GET_DISPLAY_INFO the DPC posted after a display-change event, until its answer
    /// is taken (it lives and dies with this device layer).
    display_probe: spin::Mutex<Option<viogpu_common::command::Ticket>>,
    /// The VGA beside the virtio-gpu, on a virtio-vga: what the post-display hand-off gives.
    vga: Option<vga::VgaDisplay>,
}

// SAFETY: the only fields that are not Send + Sync by themselves are in `dxgk`: the device
// handle and the callback pointers of DXGKRNL_INTERFACE, opaque OS values that dxgkrnl lets
// any thread pass to its callbacks (each callback documents its own IRQL, which the callers
// respect). Every other field is either immutable after StartDevice or behind its own lock.
unsafe impl Send for Hardware {}
// SAFETY: as for Send: shared access goes through the callbacks, locks and atomics.
unsafe impl Sync for Hardware {}

/// One display head: the scanout and what the driver knows about its monitor.
pub struct Head {
    scanout: Scanout<os::Dma>,
    /// The device's preferred size when the scanout is enabled (GET_DISPLAY_INFO).
    display: Option<(u32, u32)>,
    /// The EDID the device gave (raw bytes), if any.
    edid: Option<Vec<u8>>,
    /// A size set by the resolution agent through the escape.
    custom: Option<(u32, u32)>,
    /// The modes offered for the target.
    modes: ModeList,
    /// The source mode Windows committed (desktop size), remembered across power cycles.
    source_mode: Option<(u32, u32)>,
    /// The committed path rotation.
    rotation: Rotation,
    /// `DxgkDdiSetVidPnSourceVisibility`; false from StartDevice and the return to D0 until
    /// the OS makes the source visible.
    visible: bool,
    /// The source was made visible again: the next present copies the whole source surface,
    /// whatever its dirty rectangles say, since the screen was black meanwhile (the KMDOD
    /// sample's FullscreenPresent).
    full_present: bool,
}

impl Head {
    fn new(index: u32) -> Self {
        Self {
            scanout: Scanout::new(index, viogpu_common::framebuffer::AllocPolicy::DEFAULT),
            display: None,
            edid: None,
            custom: None,
            modes: ModeList::build(None, None, MAX_FRAMEBUFFER_BYTES),
            source_mode: None,
            rotation: Rotation::Identity,
            visible: false,
            full_present: false,
        }
    }

    /// Rebuilds the mode list from the display info, the EDID and a custom size.
    fn rebuild_modes(&mut self) {
        let edid = self
            .edid
            .as_deref()
            .and_then(|b| viogpu_common::edid::parse(b).ok());
        let list = ModeList::build(self.display, edid.as_ref(), MAX_FRAMEBUFFER_BYTES);
        self.modes = match self.custom {
            Some((w, h)) => list.with_custom(w, h).unwrap_or(list),
            None => list,
        };
    }
}

/// The hardware cursor (the core's lifecycle type over the driver's DMA memory).
pub type Cursor = viogpu_common::hardware_cursor::HardwareCursor<os::Dma>;

/// What the pointer DDIs need to know of one source, copied from its [`Head`] by whatever
/// changes it (start, commit, power-up) with both locks held, so the pointer DDIs never need
/// the state lock.
#[derive(Clone, Copy)]
pub struct SourceGeometry {
    /// The source mode Windows committed (desktop size).
    source_mode: Option<(u32, u32)>,
    /// The framebuffer size shown on the scanout.
    framebuffer: Option<(u32, u32)>,
    /// The committed path rotation.
    rotation: Rotation,
}

impl SourceGeometry {
    const NONE: Self = Self {
        source_mode: None,
        framebuffer: None,
        rotation: Rotation::Identity,
    };

    fn of(head: &Head) -> Self {
        Self {
            source_mode: head.source_mode,
            framebuffer: head.scanout.mode(),
            rotation: head.rotation,
        }
    }
}

/// The hardware pointer's state, under its own lock (see the module docs).
pub struct PointerState {
    /// The hardware cursor, when it is on and its resource was made.
    cursor: Option<Cursor>,
    /// A cursor whose image the host may still have attached (the device did not confirm the
    /// undo of a failed creation): never used again, freed by the next confirmed device
    /// reset (or leaked with the framebuffers if none comes).
    retired_cursor: Option<Cursor>,
    /// Each source as the pointer sees it.
    sources: [SourceGeometry; MAX_SCANOUTS],
    /// The hardware while the device takes cursor commands (started, powered, not handed
    /// off); set and cleared only with both locks held.
    hw: Option<Shared<Hardware>>,
}

impl PointerState {
    const fn new() -> Self {
        Self {
            cursor: None,
            retired_cursor: None,
            sources: [SourceGeometry::NONE; MAX_SCANOUTS],
            hw: None,
        }
    }

    /// Keeps `cursor`, whose image the host may still read, until a confirmed reset. A
    /// cursor retired before it is leaked: it has waited for a reset that did not come.
    fn retire_cursor(&mut self, cursor: Option<Cursor>) {
        if let Some(older) = core::mem::replace(&mut self.retired_cursor, cursor) {
            core::mem::forget(older);
        }
    }

    /// Copies the geometry of every head.
    fn follow_heads(&mut self, heads: &[Head]) {
        self.sources = [SourceGeometry::NONE; MAX_SCANOUTS];
        for (slot, head) in self.sources.iter_mut().zip(heads) {
            *slot = SourceGeometry::of(head);
        }
    }
}

/// The mutable state of an adapter (see the module docs for the locking rules).
pub struct State {
    dxgk: Option<DXGKRNL_INTERFACE>,
    device: lifecycle::Device,
    /// Kernel addresses of the BAR mappings, unmapped after the hardware is dropped.
    mappings: Vec<usize>,
    ids: ResourceIdAllocator,
    heads: Vec<Head>,
}

impl State {
    fn new() -> Self {
        Self {
            dxgk: None,
            device: lifecycle::Device::Stopped,
            mappings: Vec::new(),
            ids: ResourceIdAllocator::new(MAX_LIVE_IDS),
            heads: Vec::new(),
        }
    }
}

/// The adapter context (`MiniportDeviceContext`).
pub struct Adapter {
    /// The `PreferredWidth` x `PreferredHeight` setting, when valid.
    persisted_mode: Option<(u32, u32)>,
    pdo: *mut DEVICE_OBJECT,
    /// The started hardware as the ISR and the DPC reach it.
    isr_hw: lifecycle::IsrSlot,
    /// The device's ISR status register, from the moment its BARs are mapped until after
    /// its reset at teardown: a wider window than `isr_hw`, so that a line interrupt the
    /// device raises while it is ours but not (or no longer) started is still read and
    /// dismissed (an unread level-triggered line fires again at once).
    isr_window: lifecycle::IsrSlot<Window>,
    state: os::PassiveMutex<State>,
    pointer: os::PassiveMutex<PointerState>,
    /// The current framebuffers as the bugcheck screen reads them, without a lock.
    screens: screens::Screens,
    /// Set by the DPC on a display-change event; the next PASSIVE query re-reads display info.
    display_stale: AtomicBool,
    /// The ISR saw the configuration-change bit (line interrupts).
    config_changed: AtomicBool,
    /// Bit n set: child n was connected at the last display-info read.
    connected_mask: AtomicU32,
    /// Bit n set: child n is connected whatever the device says (child 0, custom sizes).
    forced_mask: AtomicU32,
    /// Number of sources = targets = children, fixed at StartDevice.
    num_sources: AtomicU32,
    /// One-way latch: the bugcheck screen took over, only polled commands from now on.
    bugcheck: AtomicBool,
    /// The target SystemDisplayEnable named.
    bugcheck_target: AtomicU32,
    /// One-way latch: the device was surprise-removed, no more device access.
    removed: AtomicBool,
    /// Pointer caps are reported (registry `HardwareCursor`, default on).
    hardware_cursor: bool,
    /// Resets of a device that broke the virtqueue protocol (see `power.rs`).
    ring_recoveries: AtomicU32,
}

/// The persisted resolution: both values set and a size the driver can show.
fn persisted_mode(width: Option<u32>, height: Option<u32>) -> Option<(u32, u32)> {
    let (w, h) = (width?, height?);
    viogpu_common::modes::check_size(w, h, MAX_FRAMEBUFFER_BYTES).ok()?;
    Some((w, h))
}

// SAFETY: the raw pointers (`pdo`, the DXGKRNL handle inside State) are opaque OS handles
// used only through dxgkrnl callbacks, which are callable from any thread; every mutable
// field is behind a lock or atomic.
unsafe impl Send for Adapter {}
// SAFETY: as for Send; shared access goes through the mutex and atomics.
unsafe impl Sync for Adapter {}

impl Adapter {
    /// A new adapter for the physical device object `pdo` (DxgkDdiAddDevice). Reads the
    /// `HardwareCursor` setting.
    pub fn new(pdo: *mut DEVICE_OBJECT) -> Self {
        let hardware_cursor = os::registry_dword(HARDWARE_CURSOR_VALUE) != Some(0);
        let persisted_mode = persisted_mode(
            os::registry_dword(PREFERRED_WIDTH_VALUE),
            os::registry_dword(PREFERRED_HEIGHT_VALUE),
        );
        Self {
            persisted_mode,
            pdo,
            isr_hw: lifecycle::IsrSlot::new(),
            isr_window: lifecycle::IsrSlot::new(),
            state: os::PassiveMutex::new("the adapter state lock", State::new()),
            pointer: os::PassiveMutex::new("the pointer lock", PointerState::new()),
            screens: screens::Screens::new(),
            display_stale: AtomicBool::new(false),
            config_changed: AtomicBool::new(false),
            connected_mask: AtomicU32::new(0),
            forced_mask: AtomicU32::new(1),
            num_sources: AtomicU32::new(0),
            bugcheck: AtomicBool::new(false),
            bugcheck_target: AtomicU32::new(0),
            removed: AtomicBool::new(false),
            hardware_cursor,
            ring_recoveries: AtomicU32::new(0),
        }
    }

    /// The physical device object given to AddDevice (for the DMA adapter of the IOMMU
    /// follow-up, see the README's Known gaps).
    pub fn pdo(&self) -> *mut DEVICE_OBJECT {
        self.pdo
    }

    /// DxgkDdiNotifySurpriseRemoval: the device is gone. From now on nothing touches it:
    /// the ISR claims nothing, the DPC returns at once, presents and pointer updates succeed
    /// as no-ops, commits and power changes do not reach it, and the teardown that follows
    /// (StopDevice, RemoveDevice) frees the driver's memory without resetting or waiting for
    /// the absent device, which can no longer reach that memory.
    pub fn surprise_removed(&self) {
        self.removed.store(true, Ordering::Release);
    }

    /// After a command failed: when the device reads as gone (a hot-unplug Windows did not
    /// announce), latches the removal as DxgkDdiNotifySurpriseRemoval would and says so.
    fn note_if_gone(&self, hw: &Hardware) -> bool {
        use viogpu_common::gpu::Notify;
        let gone = hw.gpu.notifier().device_gone();
        if gone && !self.removed.swap(true, Ordering::AcqRel) {
            crate::trace!("the device is gone (registers read all-ones): treated as removed");
        }
        gone
    }

    /// The DDI result of a device operation: its error, unless the device turned out to be
    /// gone, which makes it a success (nothing to show on an absent device; StopDevice follows).
    fn unless_gone(&self, hw: &Hardware, result: viogpu_common::Result<()>) -> DdiResult<()> {
        match result {
            Err(_) if self.note_if_gone(hw) => Ok(()),
            other => other.ddi(),
        }
    }

    /// True after DxgkDdiNotifySurpriseRemoval, or once the device read as gone.
    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    /// Number of VidPN sources (= targets = children); 0 before StartDevice.
    pub fn num_sources(&self) -> u32 {
        self.num_sources.load(Ordering::Acquire)
    }

    /// True when `id` names a source/target/child of this adapter.
    pub fn is_known_id(&self, id: u32) -> bool {
        id < self.num_sources()
    }

    /// The dxgkrnl interface copied at StartDevice.
    pub fn dxgk(&self) -> Option<DXGKRNL_INTERFACE> {
        self.state.lock().dxgk
    }

    /// Runs `f` on the started hardware, for the ISR and the DPC (never blocks).
    fn with_published_hw<R>(&self, f: impl FnOnce(&Hardware) -> R) -> Option<R> {
        self.isr_hw.with(f)
    }

    /// Makes `hw` the started device: the state's, the ISR's and (powered) the pointer's.
    fn start_using(&self, state: &mut State, hw: Shared<Hardware>) {
        self.isr_hw.publish(&hw);
        state.device = lifecycle::Device::On(hw);
    }

    /// Tears the started device down and leaves the lifecycle at `Stopped` (or `HandedOff`
    /// with `hand_off`): hides it from the ISR/DPC and the pointer DDIs, resets it (unless
    /// handed off or removed), drops the queues, scanouts' framebuffers and cursor, unmaps the
    /// BARs. Memory the device may still read is leaked instead of freed: on a hand-off (the
    /// device keeps showing it), when the device does not confirm its reset, and when an ISR
    /// or DPC still holds the hardware (then its registers stay mapped too).
    fn teardown(&self, state: &mut State, hand_off: bool) {
        let ending = if hand_off {
            Ending::HandOffShowing
        } else {
            Ending::Stop
        };
        self.end_device(state, ending);
    }

    /// [`teardown`](Self::teardown), with the hand-off that resets the device too (the VGA of
    /// a virtio-vga shows from the reset on, so nothing of the virtio side is kept).
    fn end_device(&self, state: &mut State, ending: Ending) {
        let hand_off = ending != Ending::Stop;
        self.screens.hide_all();
        // Held to the end: no pointer DDI runs while the hardware goes.
        let mut pointer = self.pointer.lock();
        pointer.hw = None;
        pointer.follow_heads(&[]);
        self.isr_hw.retract();
        let device = core::mem::replace(
            &mut state.device,
            if hand_off {
                lifecycle::Device::HandedOff
            } else {
                lifecycle::Device::Stopped
            },
        );
        let hw = match device {
            lifecycle::Device::On(hw) | lifecycle::Device::Off { hw, .. } => hw,
            lifecycle::Device::Stopped | lifecycle::Device::HandedOff => {
                pointer.cursor = None;
                pointer.retired_cursor = None;
                self.isr_window.retract();
                return;
            }
        };
        let hw = match Shared::try_unwrap(hw) {
            Ok(hw) => hw,
            Err(still_used) => {
                // An ISR or DPC did not let go: everything stays, mapped, forever.
                core::mem::forget(still_used);
                Self::leak_device_memory(state, &mut pointer);
                state.mappings.clear();
                self.isr_window.retract();
                return;
            }
        };
        let dxgk = hw.dxgk;
        // A surprise-removed device is neither reset nor waited for: it is not there to
        // reach the memory any more. That includes one Windows did not announce (a hot-unplug
        // without DxgkDdiNotifySurpriseRemoval, the usual case): its registers read all-ones.
        let reset_ok = ending != Ending::HandOffShowing && {
            let mut transport = hw.transport.lock();
            self.is_removed() || transport.reset().is_ok() || transport.is_absent()
        };
        if reset_ok {
            hw.gpu.reset_queues();
            for head in &mut state.heads {
                head.scanout.forget_after_reset(&mut state.ids);
            }
            state.heads.clear();
            pointer.cursor = None;
            pointer.retired_cursor = None;
            state.ids.clear();
            drop(hw);
        } else {
            // Handed off, or a device that does not reset: it may still read its memory.
            core::mem::forget(hw);
            Self::leak_device_memory(state, &mut pointer);
        }
        // The device was reset (or is handed off, gone, or hung): from here on an interrupt
        // is not ours to dismiss, and the register window goes with the mappings. If an ISR
        // does not let go of the window in time, the mappings stay.
        if !self.isr_window.retract() {
            state.mappings.clear();
            return;
        }
        // Nothing uses the transport again, so the BAR mappings go.
        for virt in state.mappings.drain(..) {
            dxgk::unmap_memory(&dxgk, virt);
        }
    }

    /// Leaks the framebuffers and cursor: the device may still read them. Their host ids are
    /// forgotten with them: the next start resets the device before it hands out any, so
    /// repeated hand-offs and restarts never run out of ids.
    fn leak_device_memory(state: &mut State, pointer: &mut PointerState) {
        for head in state.heads.drain(..) {
            core::mem::forget(head);
        }
        core::mem::forget(pointer.cursor.take());
        core::mem::forget(pointer.retired_cursor.take());
        state.ids.clear();
    }

    /// DxgkDdiStopDevice: resets the device and frees everything but the adapter itself.
    pub fn stop_device(&self) -> DdiResult<()> {
        let mut state = self.state.lock();
        // Never called after a successful hand-off, but a stop of a handed-off adapter must
        // not touch the device either: teardown leaves HandedOff alone.
        self.teardown(&mut state, false);
        self.num_sources.store(0, Ordering::Release);
        Ok(())
    }

    /// Applies what CommitVidPn or UpdateActiveVidPnPresentPath decided: a new framebuffer
    /// per changed source, or the source disabled. All-or-nothing: every new framebuffer is
    /// built before any scanout switches, and if one switch fails the scanouts switched so far
    /// get their old framebuffers back (kept until every switch succeeded), so on error every
    /// source still shows, and records, its previous mode. While the device is powered down
    /// the modes are only remembered and set at power-up.
    pub fn apply_commits(&self, commits: &[SourceCommit]) -> DdiResult<()> {
        if self.is_removed() {
            return Err(STATUS_DEVICE_NOT_READY);
        }
        let mut guard = self.state.lock();
        let state = &mut *guard;
        for (i, commit) in commits.iter().enumerate() {
            if state.heads.get(commit.source as usize).is_none() {
                return Err(STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE);
            }
            if commits.iter().take(i).any(|c| c.source == commit.source) {
                return Err(STATUS_INVALID_PARAMETER);
            }
        }
        // A device that broke the ring protocol is reset first: the commit goes to a
        // device that answers. If it breaks it during the commit (which then fails with
        // every source as it was), it is reset again and the commit tried once more.
        self.recover_if_ring_broken(state);
        let mut switched = Self::switch_powered(state, &self.screens, commits);
        if switched.is_err() && self.recover_if_ring_broken(state) {
            switched = Self::switch_powered(state, &self.screens, commits);
        }
        switched?;
        let State { heads, .. } = state;
        // Switched (or powered down: remembered, applied by power-up).
        for commit in commits {
            if let Some(head) = heads.get_mut(commit.source as usize) {
                head.rotation = commit.rotation;
                head.source_mode = commit.mode;
            }
        }
        let mut pointer = self.pointer.lock();
        pointer.follow_heads(&state.heads);
        self.follow_rotation(&mut pointer);
        Ok(())
    }

    /// [`switch_all`] on a powered device; nothing to do (only remembered) otherwise.
    fn switch_powered(
        state: &mut State,
        screens: &screens::Screens,
        commits: &[SourceCommit],
    ) -> DdiResult<()> {
        let State {
            device, heads, ids, ..
        } = state;
        match device.powered() {
            Some(hw) => switch_all(&hw.gpu, heads, ids, screens, commits),
            None => Ok(()),
        }
    }

    /// DxgkDdiSetVidPnSourceVisibility. Invisible shows black (the framebuffer is painted
    /// black and sent; its host resource stays, so no mode change is needed) and drops
    /// presents; visible again makes the next present a full one, which brings the whole
    /// desktop back. This is the KMDOD sample's behaviour; the page requires only that an
    /// invisible source show nothing of the desktop.
    /// `D3DDDI_ID_ALL` applies it to every source (as the KMDOD sample accepts).
    pub fn set_source_visibility(&self, source: u32, visible: bool) -> DdiResult<()> {
        let mut guard = self.state.lock();
        if !visible && !self.is_removed() {
            self.recover_if_ring_broken(&mut guard);
        }
        let State {
            device, heads, ids, ..
        } = &mut *guard;
        let range = if source == D3DDDI_ID_ALL {
            0..heads.len()
        } else if (source as usize) < heads.len() {
            source as usize..source as usize + 1
        } else {
            return Err(STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE);
        };
        for (index, head) in heads
            .iter_mut()
            .enumerate()
            .skip(range.start)
            .take(range.len())
        {
            if !visible && head.visible && !self.is_removed() {
                if let Some(hw) = device.powered() {
                    if let Err(e) = head.scanout.paint(&hw.gpu, ids, BLACK) {
                        // Not blank; presents stop anyway, and the next commit repaints.
                        crate::trace!("source {index}: not blanked: {e}");
                    }
                }
            }
            head.full_present |= visible && !head.visible;
            head.visible = visible;
        }
        Ok(())
    }

    /// Re-reads display info and EDIDs when a display-change event marked them stale. Only
    /// a powered device is asked: a powered-down one was reset and would never answer, so
    /// the flag stays set and power-up (which re-reads the displays anyway) clears it.
    pub fn refresh_displays_if_stale(&self) {
        if self.is_removed() || !self.display_stale.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.state.lock();
        if state.device.powered().is_none() {
            return;
        }
        self.recover_if_ring_broken(&mut state);
        if self.display_stale.swap(false, Ordering::AcqRel) {
            match start::read_displays(&mut state) {
                Ok(()) => self.update_connected_mask(&state),
                Err(status) => {
                    // The connections stay as last indicated to the OS (the DPC's), not as
                    // the stale display info says.
                    crate::trace!("display info refresh failed: {status:#x}");
                    self.display_stale.store(true, Ordering::Release);
                }
            }
        }
    }

    /// The mode list of `target` (for tests and the escape).
    pub fn modes(&self, target: u32) -> Option<ModeList> {
        self.state
            .lock()
            .heads
            .get(target as usize)
            .map(|h| h.modes)
    }
}

/// What a commit does to a scanout.
#[derive(Clone, Copy)]
enum Change {
    /// A new framebuffer of this size.
    Mode(u32, u32),
    /// Turned off.
    Off,
}

/// The scanout changes of `commits` (sources checked by the caller), all or none of them:
/// framebuffers prepared, then scanouts switched (mode changes first, then the ones turned
/// off), then the old framebuffers taken down. On error nothing changed and nothing leaked.
fn switch_all(
    gpu: &Gpu,
    heads: &mut [Head],
    ids: &mut ResourceIdAllocator,
    screens: &screens::Screens,
    commits: &[SourceCommit],
) -> DdiResult<()> {
    // Fixed-size lists: this runs on error paths too, where an allocation failure would
    // abort. A device has at most 16 scanouts and each source is changed at most once.
    let change_of = |commit: &SourceCommit| -> Option<(usize, Change)> {
        let head = heads.get(commit.source as usize)?;
        let current = head.scanout.mode();
        match commit.mode {
            None if current.is_some() => Some((commit.source as usize, Change::Off)),
            None => None,
            Some((w, h)) => {
                let (fw, fh) = commit.rotation.framebuffer_size(w, h);
                (current != Some((fw, fh)))
                    .then_some((commit.source as usize, Change::Mode(fw, fh)))
            }
        }
    };
    let mut change_slots = [(0usize, Change::Off); MAX_SCANOUTS];
    let mut count = 0;
    // Turning a scanout off comes after every mode change.
    for off in [false, true] {
        for change in commits.iter().filter_map(change_of) {
            if matches!(change.1, Change::Off) != off {
                continue;
            }
            let slot = change_slots
                .get_mut(count)
                .ok_or(STATUS_INVALID_PARAMETER)?;
            *slot = change;
            count += 1;
        }
    }
    let changes = change_slots.get(..count).unwrap_or(&[]);

    let discard_all = |heads: &mut [Head], ids: &mut ResourceIdAllocator| {
        for &(index, _) in changes {
            if let Some(head) = heads.get_mut(index) {
                head.scanout.discard_prepared(gpu, ids);
            }
        }
    };
    for &(index, change) in changes {
        let (Some(head), Change::Mode(w, h)) = (heads.get_mut(index), change) else {
            continue;
        };
        if let Err(e) = head.scanout.prepare(gpu, ids, w, h, BLACK) {
            discard_all(heads, ids);
            return Err(status_of(e));
        }
    }

    let mut switched_slots = [0usize; MAX_SCANOUTS];
    let mut switched_count = 0;
    for &(index, change) in changes {
        let Some(head) = heads.get_mut(index) else {
            continue;
        };
        let result = match change {
            Change::Mode(..) => head.scanout.switch_to_prepared(gpu, ids),
            Change::Off => head.scanout.switch_off(gpu),
        };
        // Shown now, so published before the old framebuffer can be freed (screens.rs).
        screens.publish(index, head.scanout.current());
        let switched = switched_slots.get(..switched_count).unwrap_or(&[]);
        if let Err(e) = result {
            for &undo in switched.iter().rev() {
                if let Some(head) = heads.get_mut(undo) {
                    if let Err(e) = head.scanout.revert_switch(gpu, ids) {
                        crate::trace!("scanout {undo}: switching back failed: {e}");
                    }
                    screens.publish(undo, head.scanout.current());
                }
            }
            discard_all(heads, ids);
            return Err(status_of(e));
        }
        // `changes` has at most MAX_SCANOUTS entries, so there is always a slot.
        if let Some(slot) = switched_slots.get_mut(switched_count) {
            *slot = index;
            switched_count += 1;
        }
    }
    for &index in switched_slots.get(..switched_count).unwrap_or(&[]) {
        if let Some(head) = heads.get_mut(index) {
            head.scanout.confirm_switch(gpu, ids);
        }
    }
    Ok(())
}

impl VidPnHost for Adapter {
    fn source_count(&self) -> u32 {
        self.num_sources()
    }

    fn target_modes(&self, target: u32) -> Option<ModeList> {
        self.modes(target)
    }

    fn current_mode(&self, source: u32) -> Option<(u32, u32)> {
        let state = self.state.lock();
        let head = state.heads.get(source as usize)?;
        head.source_mode.or_else(|| {
            head.scanout
                .mode()
                .map(|(w, h)| head.rotation.framebuffer_size(w, h))
        })
    }

    fn target_connected(&self, target: u32) -> bool {
        self.refresh_displays_if_stale();
        target < u32::BITS && self.connected_mask.load(Ordering::Acquire) & (1 << target) != 0
    }

    fn current_rotation(&self, source: u32) -> Rotation {
        let state = self.state.lock();
        state
            .heads
            .get(source as usize)
            .map_or(Rotation::Identity, |head| head.rotation)
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        let mut state = self.state.lock();
        self.teardown(&mut state, false);
    }
}

/// Reads `len` bytes at `ptr` as a slice, or an empty slice for a null pointer or zero length.
///
/// # Safety
/// A non-null `ptr` is valid for reads of `len` bytes for `'a`.
pub(crate) unsafe fn os_bytes<'a>(ptr: *const c_void, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: the caller guarantees `len` readable bytes at a non-null `ptr`.
    unsafe { core::slice::from_raw_parts(ptr.cast::<u8>(), len) }
}

/// Mutable form of [`os_bytes`].
///
/// # Safety
/// A non-null `ptr` is valid for reads and writes of `len` bytes for `'a`, and not aliased.
pub(crate) unsafe fn os_bytes_mut<'a>(ptr: *mut c_void, len: usize) -> &'a mut [u8] {
    if ptr.is_null() || len == 0 {
        return &mut [];
    }
    // SAFETY: the caller guarantees `len` exclusive, writable bytes at a non-null `ptr`.
    unsafe { core::slice::from_raw_parts_mut(ptr.cast::<u8>(), len) }
}
